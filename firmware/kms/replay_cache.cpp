#include "firmware/kms/replay_cache.h"

#include <algorithm>
#include <functional>
#include <string_view>

namespace tkms::kms {

ReplayCache::ReplayCache(size_t max_entries, std::chrono::seconds lifetime)
    : per_shard_(std::max<size_t>(1, (max_entries + kShards - 1) / kShards)), lifetime_(lifetime) {}

Status ReplayCache::Insert(ByteSpan key, Clock::time_point now) {
  std::string k(reinterpret_cast<const char*>(key.data()), key.size());
  Shard& shard = shards_[std::hash<std::string>{}(k) % kShards];
  std::lock_guard lock(shard.mutex);
  while (!shard.order.empty() && shard.order.front().first + lifetime_ <= now) {
    shard.keys.erase(shard.order.front().second);
    shard.order.pop_front();
  }
  if (shard.keys.contains(k)) return PermissionDenied("replayed message");
  if (shard.keys.size() >= per_shard_) {
    return ResourceExhausted("replay cache full (" + std::to_string(max_entries()) + " entries)");
  }
  shard.keys.insert(k);
  shard.order.emplace_back(now, std::move(k));
  return Status::Ok();
}

size_t ReplayCache::size() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    n += shard.keys.size();
  }
  return n;
}

}  // namespace tkms::kms
