#include "firmware/base/byte_writer.h"

#include <cassert>

#include "firmware/base/big_endian.h"

namespace tkms {

ByteWriter& ByteWriter::Uint(size_t n, uint64_t v) {
  assert(n <= 8);
  const size_t at = buf_.size();
  buf_.resize(at + n);
  StoreBeUint(v, std::span<uint8_t>(buf_).subspan(at, n));
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
  StoreBeUint(len, std::span<uint8_t>(buf_).subspan(pos, width));
  return true;
}

void ByteWriter::PatchU8(size_t pos, uint8_t v) {
  assert(pos < buf_.size());
  buf_[pos] = v;
}

}  // namespace tkms
