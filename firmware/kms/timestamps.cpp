#include "firmware/kms/timestamps.h"

namespace tkms::kms {
namespace {

// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
constexpr int64_t kNtpToUnixSeconds = 2208988800;
constexpr int64_t kEraSeconds = int64_t{1} << 32;

// NTP seconds of RFC 4330 §3: MSB set = era 0 (1968-2036), clear = era 1.
int64_t UnixSecondsFromNtpSeconds(uint32_t ntp_seconds) {
  int64_t seconds = ntp_seconds;
  if ((ntp_seconds & 0x80000000u) == 0) seconds += kEraSeconds;
  return seconds - kNtpToUnixSeconds;
}

}  // namespace

uint64_t NtpFromTime(TimePoint t) {
  const auto since_epoch = t.time_since_epoch();
  const auto secs = std::chrono::floor<std::chrono::seconds>(since_epoch);
  const auto frac_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs).count();
  const uint64_t ntp_seconds = static_cast<uint64_t>(secs.count() + kNtpToUnixSeconds) & 0xFFFFFFFFu;
  const uint64_t fraction = (static_cast<uint64_t>(frac_ns) << 32) / 1000000000u;
  return (ntp_seconds << 32) | (fraction & 0xFFFFFFFFu);
}

std::optional<uint64_t> TimestampValue(mikey::TsType ts_type, TimePoint t) {
  switch (ts_type) {
    case mikey::TsType::kNtpUtc:
    case mikey::TsType::kNtp:
      return NtpFromTime(t);
    case mikey::TsType::kNtpUtc32:
      return NtpFromTime(t) >> 32;
    case mikey::TsType::kCounter:
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<TimePoint> TimeFromTimestamp(uint8_t ts_type, uint64_t value) {
  uint32_t seconds = 0;
  uint32_t fraction = 0;
  switch (static_cast<mikey::TsType>(ts_type)) {
    case mikey::TsType::kNtpUtc:
    case mikey::TsType::kNtp:
      seconds = static_cast<uint32_t>(value >> 32);
      fraction = static_cast<uint32_t>(value);
      break;
    case mikey::TsType::kNtpUtc32:
      if (value > 0xFFFFFFFFu) return std::nullopt;
      seconds = static_cast<uint32_t>(value);
      break;
    default:
      return std::nullopt;
  }
  const auto unix_seconds = std::chrono::seconds(UnixSecondsFromNtpSeconds(seconds));
  const auto nanos = std::chrono::nanoseconds((static_cast<uint64_t>(fraction) * 1000000000u) >> 32);
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(unix_seconds + nanos));
}

}  // namespace tkms::kms
