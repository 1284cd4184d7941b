// ByteReader: the one bounds-checked cursor through which tkms reads untrusted
// bytes (MIKEY messages, configuration bundles, HTTP bodies).
//
// Why: parsers must never read past their slice, allocate from an input length
// before checking it, or silently accept short input. Every Read* either
// consumes exactly what it reports and returns true, or returns false and
// leaves the reader unchanged. Sub-readers over length-prefixed fields know
// their absolute offset in the outermost input so errors can name the byte.
// Modelled on BoringSSL's CBS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace tkms {

using ByteSpan = std::span<const uint8_t>;

class ByteReader {
 public:
  ByteReader() = default;
  explicit ByteReader(ByteSpan in, size_t base_offset = 0)
      : all_(in), rest_(in), base_offset_(base_offset) {}

  [[nodiscard]] bool ReadU8(uint8_t& out);
  [[nodiscard]] bool ReadU16(uint16_t& out);
  [[nodiscard]] bool ReadU32(uint32_t& out);
  [[nodiscard]] bool ReadU64(uint64_t& out);
  // Reads an n-byte big-endian unsigned integer (n <= 8).
  [[nodiscard]] bool ReadUint(size_t n, uint64_t& out);
  [[nodiscard]] bool ReadBytes(size_t n, ByteSpan& out);
  // Splits off the next n bytes as a sub-reader whose offsets stay absolute.
  [[nodiscard]] bool ReadSub(size_t n, ByteReader& out);
  [[nodiscard]] bool Skip(size_t n);
  // Looks at the next byte without consuming it.
  [[nodiscard]] bool PeekU8(uint8_t& out) const;
  // Looks for `needle` in the unread bytes without consuming anything: the
  // position, relative to the cursor, of its first occurrence that starts at
  // or after `from` and lies entirely within the first `window` unread bytes.
  // nullopt if there is none (or `needle` is empty). Scanning is bounded by
  // `window`, so a caller can look for a delimiter within a length limit and
  // resume a scan (`from`) when more bytes arrive.
  [[nodiscard]] std::optional<size_t> Find(ByteSpan needle, size_t from = 0,
                                           size_t window = SIZE_MAX) const;

  bool empty() const { return rest_.empty(); }
  size_t remaining() const { return rest_.size(); }
  ByteSpan rest() const { return rest_; }
  // The bytes consumed so far: what a MIKEY MAC covers.
  ByteSpan consumed() const { return all_.first(all_.size() - rest_.size()); }
  ByteSpan all() const { return all_; }
  // Absolute offset (in the outermost input) of the next unread byte.
  size_t offset() const { return base_offset_ + (all_.size() - rest_.size()); }

 private:
  // Take is the only function that moves the cursor.
  [[nodiscard]] bool Take(size_t n, ByteSpan& out);

  ByteSpan all_;
  ByteSpan rest_;
  size_t base_offset_ = 0;
};

}  // namespace tkms
