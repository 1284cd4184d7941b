// ByteWriter: appends big-endian fields to a growable buffer, with
// placeholders that are patched later (next-payload bytes, length fields).
//
// Why: serialisation of MIKEY messages needs to patch the previous payload's
// next-payload byte and length prefixes once the following content is known.
// Writes never fail; length fields that do not fit their width are reported
// by EndLengthPrefix, so a caller can refuse to emit a truncated length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace tkms {

class ByteWriter {
 public:
  ByteWriter() = default;

  ByteWriter& U8(uint8_t v);
  ByteWriter& U16(uint16_t v);
  ByteWriter& U32(uint32_t v);
  ByteWriter& U64(uint64_t v);
  // Writes the low n bytes of v, big-endian (n <= 8).
  ByteWriter& Uint(size_t n, uint64_t v);
  ByteWriter& Bytes(std::span<const uint8_t> bytes);

  // Reserves a `width`-byte (1 or 2) length field and returns its position.
  size_t BeginLengthPrefix(size_t width);
  // Fills the length field at `pos` with the number of bytes written since.
  // Returns false (and sets the writer to failed) if the length does not fit.
  [[nodiscard]] bool EndLengthPrefix(size_t pos, size_t width);
  // Overwrites one byte previously written.
  void PatchU8(size_t pos, uint8_t v);

  size_t size() const { return buf_.size(); }
  bool ok() const { return ok_; }
  const std::vector<uint8_t>& bytes() const { return buf_; }
  std::vector<uint8_t> Take() { return std::move(buf_); }

 private:
  std::vector<uint8_t> buf_;
  bool ok_ = true;
};

}  // namespace tkms
