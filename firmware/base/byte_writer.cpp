#include "firmware/base/byte_writer.h"

#include <cassert>

namespace tkms {

ByteWriter& ByteWriter::Uint(size_t n, uint64_t v) {
  assert(n <= 8);
  for (size_t i = n; i > 0; --i) {
    buf_.push_back(static_cast<uint8_t>(v >> (8 * (i - 1))));
  }
  return *this;
}

ByteWriter& ByteWriter::U8(uint8_t v) { return Uint(1, v); }
ByteWriter& ByteWriter::U16(uint16_t v) { return Uint(2, v); }
ByteWriter& ByteWriter::U32(uint32_t v) { return Uint(4, v); }
ByteWriter& ByteWriter::U64(uint64_t v) { return Uint(8, v); }

ByteWriter& ByteWriter::Bytes(std::span<const uint8_t> bytes) {
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  return *this;
}

size_t ByteWriter::BeginLengthPrefix(size_t width) {
  assert(width == 1 || width == 2);
  const size_t pos = buf_.size();
  buf_.resize(buf_.size() + width, 0);
  return pos;
}

bool ByteWriter::EndLengthPrefix(size_t pos, size_t width) {
  assert(pos + width <= buf_.size());
  const size_t len = buf_.size() - pos - width;
  const size_t max = width == 1 ? 0xFF : 0xFFFF;
  if (len > max) {
    ok_ = false;
    return false;
  }
  for (size_t i = 0; i < width; ++i) {
    buf_[pos + i] = static_cast<uint8_t>(len >> (8 * (width - 1 - i)));
  }
  return true;
}

void ByteWriter::PatchU8(size_t pos, uint8_t v) {
  assert(pos < buf_.size());
  buf_[pos] = v;
}

}  // namespace tkms
