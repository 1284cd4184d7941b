// MIKEY timestamps and the system clock (RFC 3830 §6.6, RFC 6043 §6.3/§6.4).
//
// Why: the KMS checks a request's T against its clock, stamps its responses
// with fresh timestamps, and compares the ticket's validity TRs/TRe with the
// current time. NTP timestamps are 64-bit (32-bit seconds since 1900 and a
// 32-bit fraction); NTP-UTC-32 is the seconds part only. Seconds are read in
// the 1968-2104 window of RFC 4330 §3 (RFC 6043 §6.10): a value with the most
// significant bit clear belongs to NTP era 1 (from 2036-02-07). COUNTER
// timestamps carry no time and are refused where a time is needed.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "firmware/mikey/types.h"

namespace tkms::kms {

using TimePoint = std::chrono::system_clock::time_point;

// 64-bit NTP timestamp of `t` (NTP-UTC / NTP).
uint64_t NtpFromTime(TimePoint t);
// The value of a T/TR payload of type `ts_type` for time `t`; COUNTER is not
// a time and gives nullopt.
std::optional<uint64_t> TimestampValue(mikey::TsType ts_type, TimePoint t);
// The time a T/TR payload value names; nullopt for COUNTER or unknown types.
std::optional<TimePoint> TimeFromTimestamp(uint8_t ts_type, uint64_t value);

}  // namespace tkms::kms
