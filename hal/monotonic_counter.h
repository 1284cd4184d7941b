// MonotonicCounter: a persistent number that only goes up (anti-rollback).
//
// Why: a signed configuration bundle must never be replaced by an older one
// that was also validly signed (issue 6, docs/bundles.md). The appliance keeps
// the highest accepted bundle version in a counter that the host's file
// system cannot quietly lower; the production implementation lives in the
// token (firmware/keystore/provisioning_store.h), tests use MemoryCounter
// (tests/support/hal_fakes.h). Each counter
// state also records a 32-byte tag — the digest of what the value was
// advanced for — so that "the same version again" can be told from "another
// document claiming the same version".
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "firmware/base/status.h"

namespace tkms::hal {

struct CounterState {
  uint64_t value = 0;             // 0: never advanced
  std::array<uint8_t, 32> tag{};  // all zero when value is 0
  bool operator==(const CounterState&) const = default;
};

class MonotonicCounter {
 public:
  virtual ~MonotonicCounter() = default;
  // The current state. kInternal if the stored state does not authenticate
  // (a corrupt store), kUnavailable if the store cannot be reached.
  virtual Result<CounterState> Read() = 0;
  // Moves the counter to `value`, which must be greater than the current
  // value (kFailedPrecondition otherwise; nothing changes).
  virtual Status Advance(uint64_t value, std::span<const uint8_t, 32> tag) = 0;
};

}  // namespace tkms::hal
