// MonotonicCounter: a persistent number that only goes up (anti-rollback).
//
// Why: a signed configuration bundle must never be replaced by an older one
// that was also validly signed (issue 6, docs/bundles.md). The appliance keeps
// the highest accepted bundle version in a counter that the host's file
// system cannot quietly lower; the production implementation lives in the
// token (firmware/keystore/provisioning_store.h), tests use MemoryCounter. Each counter
// state also records a 32-byte tag — the digest of what the value was
// advanced for — so that "the same version again" can be told from "another
// document claiming the same version".
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
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

// An in-memory counter (tests, and tools that verify without applying).
class MemoryCounter final : public MonotonicCounter {
 public:
  Result<CounterState> Read() override {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
  }
  Status Advance(uint64_t value, std::span<const uint8_t, 32> tag) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (value <= state_.value) {
      return FailedPrecondition("counter is at " + std::to_string(state_.value) + "; " +
                                std::to_string(value) + " does not advance it");
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
