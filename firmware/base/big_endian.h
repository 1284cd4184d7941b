// Big-endian (network byte order) loads and stores over fixed-size spans: the
// one place where tkms turns bytes into integers and back outside
// ByteReader / ByteWriter, which use it too.
//
// Why: MIKEY (RFC 3830 §6: "all integer fields are in network byte order"),
// RTP (RFC 3550 §5.1) and the KEMAC IV (RFC 3830 §4.2.3) are big-endian, and
// hand-written shifts ((uint32_t{b[0]} << 24) | ...) had been copied across
// the tree, each a chance to read the wrong index or forget a widening cast.
// LoadBe16/32/64 and StoreBe16/32/64 take std::span<..., N> with N fixed at
// compile time, so a caller cannot load more bytes than it holds: fixed-size
// arrays convert directly, and a run-time span must be narrowed explicitly
// (first<N>() after a size check) -- or read through ByteReader, which checks
// at run time. LoadBeUint / StoreBeUint are the variable-width core (at most
// 8 bytes) behind all of them.
#pragma once

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>

namespace tkms {

// The bytes of `in` (at most 8) as a big-endian unsigned integer; 0 for none.
constexpr uint64_t LoadBeUint(std::span<const uint8_t> in) {
  assert(in.size() <= 8);
  uint64_t v = 0;
  for (uint8_t b : in) v = (v << 8) | b;
  return v;
}

// Writes the low out.size() (at most 8) bytes of `v` into `out`, big-endian.
constexpr void StoreBeUint(uint64_t v, std::span<uint8_t> out) {
  assert(out.size() <= 8);
  for (size_t i = out.size(); i > 0; --i) {
    out[i - 1] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

constexpr uint16_t LoadBe16(std::span<const uint8_t, 2> in) { return static_cast<uint16_t>(LoadBeUint(in)); }
constexpr uint32_t LoadBe32(std::span<const uint8_t, 4> in) { return static_cast<uint32_t>(LoadBeUint(in)); }
constexpr uint64_t LoadBe64(std::span<const uint8_t, 8> in) { return LoadBeUint(in); }

constexpr void StoreBe16(uint16_t v, std::span<uint8_t, 2> out) { StoreBeUint(v, out); }
constexpr void StoreBe32(uint32_t v, std::span<uint8_t, 4> out) { StoreBeUint(v, out); }
constexpr void StoreBe64(uint64_t v, std::span<uint8_t, 8> out) { StoreBeUint(v, out); }

// The big-endian bytes of `v` as a value (for initialisers and comparisons).
constexpr std::array<uint8_t, 4> Be32Bytes(uint32_t v) {
  std::array<uint8_t, 4> out{};
  StoreBe32(v, out);
  return out;
}
constexpr std::array<uint8_t, 8> Be64Bytes(uint64_t v) {
  std::array<uint8_t, 8> out{};
  StoreBe64(v, out);
  return out;
}

}  // namespace tkms
