#include "firmware/base/byte_reader.h"

#include <algorithm>

#include "firmware/base/big_endian.h"

namespace tkms {

bool ByteReader::Take(size_t n, ByteSpan& out) {
  if (rest_.size() < n) {
    return false;
  }
  out = rest_.first(n);
  rest_ = rest_.subspan(n);
  return true;
}

bool ByteReader::ReadUint(size_t n, uint64_t& out) {
  if (n > 8) {
    return false;
  }
  ByteSpan bytes;
  if (!Take(n, bytes)) {
    return false;
  }
  out = LoadBeUint(bytes);
  return true;
}

bool ByteReader::ReadU8(uint8_t& out) {
  uint64_t v = 0;
  if (!ReadUint(1, v)) {
    return false;
  }
  out = static_cast<uint8_t>(v);
  return true;
}

bool ByteReader::ReadU16(uint16_t& out) {
  uint64_t v = 0;
  if (!ReadUint(2, v)) {
    return false;
  }
  out = static_cast<uint16_t>(v);
  return true;
}

bool ByteReader::ReadU32(uint32_t& out) {
  uint64_t v = 0;
  if (!ReadUint(4, v)) {
    return false;
  }
  out = static_cast<uint32_t>(v);
  return true;
}

bool ByteReader::ReadU64(uint64_t& out) { return ReadUint(8, out); }

bool ByteReader::ReadBytes(size_t n, ByteSpan& out) { return Take(n, out); }

bool ByteReader::ReadSub(size_t n, ByteReader& out) {
  const size_t at = offset();
  ByteSpan bytes;
  if (!Take(n, bytes)) {
    return false;
  }
  out = ByteReader(bytes, at);
  return true;
}

bool ByteReader::Skip(size_t n) {
  ByteSpan ignored;
  return Take(n, ignored);
}

std::optional<size_t> ByteReader::Find(ByteSpan needle, size_t from, size_t window) const {
  const size_t limit = std::min(window, rest_.size());
  if (needle.empty() || from > limit || needle.size() > limit - from) {
    return std::nullopt;
  }
  const ByteSpan hay = rest_.subspan(from, limit - from);
  const auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end());
  if (it == hay.end()) {
    return std::nullopt;
  }
  return from + static_cast<size_t>(it - hay.begin());
}

bool ByteReader::PeekU8(uint8_t& out) const {
  if (rest_.empty()) {
    return false;
  }
  out = rest_[0];
  return true;
}

}  // namespace tkms
