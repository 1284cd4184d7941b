// ReplayCache: the bounded memory of recently accepted requests (RFC 3830
// §5.4, RFC 6043 §12.4).
//
// Why: timestamps alone let an attacker replay a captured REQUEST_INIT or
// RESOLVE_INIT within the window; the KMS remembers every authenticated
// request until its timestamp has left the window, and refuses a second copy.
// It is the KMS's only per-request state, bounded two ways:
//   - time: an entry expires when the message's own timestamp leaves the
//     window (T + window), after which the timestamp check refuses the
//     message anyway; the caller passes that expiry;
//   - entries: a full cache refuses new requests (kResourceExhausted, HTTP
//     503) rather than forgetting live entries, which would re-open the
//     replay window.
// An entry is 16 bytes: SHA-256 of the caller's key (data type, PSK id and V
// MAC) truncated to 128 bits, so memory is about 80 bytes per entry whatever
// the MAC length. Thread-safe, 16 shards with one lock each.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <queue>
#include <unordered_set>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"

namespace tkms::kms {

class ReplayCache {
 public:
  // Monotonic time (hal::Clock::MonotonicNow): expiry must not move when
  // the wall clock is stepped.
  using Clock = std::chrono::steady_clock;

  explicit ReplayCache(size_t max_entries);

  // Records `key` until `expires`. Ok the first time; kPermissionDenied
  // ("replayed message") while it is present; kResourceExhausted if the cache
  // holds max_entries live entries.
  Status Insert(ByteSpan key, Clock::time_point expires, Clock::time_point now);

  size_t size() const;
  size_t max_entries() const { return shards_.size() * per_shard_; }

 private:
  struct Digest {
    uint64_t hi = 0, lo = 0;
    bool operator==(const Digest&) const = default;
  };
  struct DigestHash {
    size_t operator()(const Digest& d) const { return static_cast<size_t>(d.lo); }
  };
  struct Expiry {
    Clock::time_point at;
    Digest digest;
    bool operator>(const Expiry& o) const { return at > o.at; }
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_set<Digest, DigestHash> digests;
    std::priority_queue<Expiry, std::vector<Expiry>, std::greater<Expiry>> expiries;  // earliest first
  };
  static constexpr size_t kShards = 16;

  std::array<Shard, kShards> shards_;
  size_t per_shard_;
};

}  // namespace tkms::kms
