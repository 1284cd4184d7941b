// Clock: the appliance's sources of time, wall and monotonic.
//
// Why: every MIKEY-TICKET decision that depends on time reads this one
// interface, so production uses the host's clocks (the wall clock
// NTP-disciplined on the appliance) and tests use a clock they set
// (tests/support/hal_fakes.h):
//   - wall time (Now): the timestamp window of RFC 3830 §5.4 / RFC 6043
//     §12.4, ticket validity TRs/TRe (RFC 6043 §6.10), fresh response
//     timestamps (§4.2.1.5), certificate dates of signed bundles;
//   - monotonic time (MonotonicNow): how long something has been kept, which
//     must not jump when the wall clock is stepped: replay-cache expiry,
//     deadlines, health-check intervals.
#pragma once

#include <chrono>

namespace tkms::hal {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
  virtual std::chrono::steady_clock::time_point MonotonicNow() const = 0;
};

// The host's real-time and monotonic clocks.
class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override { return std::chrono::system_clock::now(); }
  std::chrono::steady_clock::time_point MonotonicNow() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace tkms::hal
