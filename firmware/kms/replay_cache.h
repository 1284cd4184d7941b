// ReplayCache: the bounded memory of recently accepted requests (RFC 3830
// §5.4, RFC 6043 §12.4).
//
// Why: timestamps alone let an attacker replay a captured REQUEST_INIT or
// RESOLVE_INIT within the window; the KMS remembers every authenticated
// request (by its V MAC, unique per message and key) until its timestamp has
// left the window, and refuses a second copy. It is the KMS's only per-request
// state: bounded in entries (a full cache refuses new requests rather than
// forgetting live entries, which would re-open the replay window) and in time
// (entries expire `lifetime` after insertion; lifetime = 2 x the timestamp
// window, so a message cannot outlive its entry). Thread-safe, sharded.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"

namespace tkms::kms {

class ReplayCache {
 public:
  using Clock = std::chrono::steady_clock;

  ReplayCache(size_t max_entries, std::chrono::seconds lifetime);

  // Records `key`. Ok the first time; kAlreadyExists-like kPermissionDenied
  // ("replayed") if it is present; kResourceExhausted if the cache holds
  // max_entries live entries.
  Status Insert(ByteSpan key, Clock::time_point now = Clock::now());

  size_t size() const;
  size_t max_entries() const { return shards_.size() * per_shard_; }

 private:
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_set<std::string> keys;
    std::deque<std::pair<Clock::time_point, std::string>> order;  // insertion order
  };
  static constexpr size_t kShards = 16;

  std::array<Shard, kShards> shards_;
  size_t per_shard_;
  std::chrono::seconds lifetime_;
};

}  // namespace tkms::kms
