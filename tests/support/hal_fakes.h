// Test fakes of the platform seams in hal/: a clock the test sets and
// advances, and a monotonic counter kept in memory.
//
// Why: time-dependent rules (timestamp window, replay expiry, ticket
// validity, certificate dates) and anti-rollback are tested without waiting
// and without a token; the production implementations are hal::SystemClock
// and the token's counter.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <span>
#include <string>

#include "hal/clock.h"
#include "hal/monotonic_counter.h"

namespace tkms::hal {

// Wall and monotonic time move together: Set() moves only the wall clock
// (a stepped clock), Advance() moves both.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point start) : now_(start.time_since_epoch().count()) {}
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::time_point(std::chrono::system_clock::duration(now_.load()));
  }
  std::chrono::steady_clock::time_point MonotonicNow() const override {
    return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(mono_.load()));
  }
  void Set(std::chrono::system_clock::time_point t) { now_.store(t.time_since_epoch().count()); }
  void Advance(std::chrono::system_clock::duration d) {
    now_.fetch_add(d.count());
    mono_.fetch_add(std::chrono::duration_cast<std::chrono::steady_clock::duration>(d).count());
  }

 private:
  std::atomic<std::chrono::system_clock::rep> now_;
  std::atomic<std::chrono::steady_clock::rep> mono_{std::chrono::hours(1) / std::chrono::steady_clock::duration(1)};
};

// An in-memory counter.
class MemoryCounter final : public MonotonicCounter {
 public:
  Result<CounterState> Read() override {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
  }
  Status Advance(uint64_t value, std::span<const uint8_t, 32> tag) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (value <= state_.value) {
      return FailedPrecondition("counter is at " + std::to_string(state_.value) + "; " + std::to_string(value) +
                                " does not advance it");
    }
    state_.value = value;
    for (size_t i = 0; i < 32; ++i) state_.tag[i] = tag[i];
    return Status::Ok();
  }

 private:
  std::mutex mu_;
  CounterState state_;
};

}  // namespace tkms::hal
