// Clock: the appliance's source of time for MIKEY timestamps.
//
// Why: every MIKEY-TICKET decision that depends on time (the timestamp window
// and replay cache of RFC 3830 §5.4 / RFC 6043 §12.4, ticket validity TRs/TRe
// of RFC 6043 §6.10, fresh response timestamps of §4.2.1.5) reads this one
// interface, so production uses the system clock (NTP-disciplined on the
// appliance) and tests use a clock they set.
#pragma once

#include <atomic>
#include <chrono>

namespace tkms::hal {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
};

// The host's real-time clock.
class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
};

// A clock the caller sets and advances (tests).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point start) : now_(start.time_since_epoch().count()) {}
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::time_point(std::chrono::system_clock::duration(now_.load()));
  }
  void Set(std::chrono::system_clock::time_point t) { now_.store(t.time_since_epoch().count()); }
  void Advance(std::chrono::system_clock::duration d) { now_.fetch_add(d.count()); }

 private:
  std::atomic<std::chrono::system_clock::rep> now_;
};

}  // namespace tkms::hal
