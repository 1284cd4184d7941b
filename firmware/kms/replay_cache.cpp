#include "firmware/kms/replay_cache.h"

#include <mbedtls/sha256.h>

#include <algorithm>

#include "firmware/base/big_endian.h"

namespace tkms::kms {

ReplayCache::ReplayCache(size_t max_entries)
    : per_shard_(std::max<size_t>(1, (max_entries + kShards - 1) / kShards)) {}

Status ReplayCache::Insert(ByteSpan key, Clock::time_point expires, Clock::time_point now) {
  uint8_t hash[32];
  mbedtls_sha256_ret(key.data(), key.size(), hash, 0);
  Digest d;
  d.hi = LoadBe64(std::span<const uint8_t>(hash).first<8>());
  d.lo = LoadBe64(std::span<const uint8_t>(hash).subspan<8, 8>());
  Shard& shard = shards_[d.hi % kShards];
  std::lock_guard lock(shard.mutex);
  while (!shard.expiries.empty() && shard.expiries.top().at <= now) {
    shard.digests.erase(shard.expiries.top().digest);
    shard.expiries.pop();
  }
  if (shard.digests.contains(d)) return PermissionDenied("replayed message");
  if (shard.digests.size() >= per_shard_) {
    return ResourceExhausted("replay cache full (" + std::to_string(max_entries()) + " entries)");
  }
  shard.digests.insert(d);
  shard.expiries.push(Expiry{std::max(expires, now), d});
  return Status::Ok();
}

size_t ReplayCache::size() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    n += shard.digests.size();
  }
  return n;
}

}  // namespace tkms::kms
