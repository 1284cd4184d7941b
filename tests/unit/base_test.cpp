// Tests of the base library: the big-endian load/store helpers, the
// bounds-checked reader, the writer, encodings and secret buffers.
#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "firmware/base/big_endian.h"
#include "firmware/base/byte_reader.h"
#include "firmware/base/byte_writer.h"
#include "firmware/base/encoding.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"

namespace tkms {
namespace {

// Compile-time evaluation: the helpers are constexpr and agree with the
// numbers written out.
static_assert(LoadBe16(std::array<uint8_t, 2>{0x12, 0x34}) == 0x1234);
static_assert(LoadBe32(std::array<uint8_t, 4>{0xDE, 0xAD, 0xBE, 0xEF}) == 0xDEADBEEFu);
static_assert(Be32Bytes(0x01020304u) == std::array<uint8_t, 4>{1, 2, 3, 4});

TEST(BigEndian, LoadsKnownAnswers) {
  // The RTP fixed header of RFC 3550 §5.1 as sent: seq 0x1234, timestamp
  // 0x00000A0B, SSRC 0xCAFEBABE.
  const uint8_t rtp[12] = {0x80, 0x00, 0x12, 0x34, 0x00, 0x00, 0x0A, 0x0B, 0xCA, 0xFE, 0xBA, 0xBE};
  const std::span<const uint8_t, 12> h(rtp);
  EXPECT_EQ(LoadBe16(h.subspan<2, 2>()), 0x1234);
  EXPECT_EQ(LoadBe32(h.subspan<4, 4>()), 0x00000A0Bu);
  EXPECT_EQ(LoadBe32(h.subspan<8, 4>()), 0xCAFEBABEu);
  EXPECT_EQ(LoadBe64(h.subspan<4, 8>()), 0x00000A0BCAFEBABEull);
  const std::array<uint8_t, 8> top{0x80, 0, 0, 0, 0, 0, 0, 0x01};
  EXPECT_EQ(LoadBe64(top), 0x8000000000000001ull);  // no sign extension, no truncation
  EXPECT_EQ(LoadBeUint(ByteSpan(rtp).subspan(2, 3)), 0x123400u);
  EXPECT_EQ(LoadBeUint(ByteSpan()), 0u);
}

TEST(BigEndian, StoresKnownAnswersAndRoundTrips) {
  std::array<uint8_t, 2> two{};
  StoreBe16(0xABCD, two);
  EXPECT_EQ(two, (std::array<uint8_t, 2>{0xAB, 0xCD}));
  std::array<uint8_t, 4> four{};
  StoreBe32(0x11223344u, four);
  EXPECT_EQ(four, (std::array<uint8_t, 4>{0x11, 0x22, 0x33, 0x44}));
  EXPECT_EQ(Be64Bytes(0x0102030405060708ull), (std::array<uint8_t, 8>{1, 2, 3, 4, 5, 6, 7, 8}));
  uint8_t three[3] = {};
  StoreBeUint(0xFF123456ull, three);  // only the low 3 bytes
  EXPECT_EQ(LoadBeUint(three), 0x123456u);
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{0xFF}, uint64_t{0x0123456789ABCDEF}, ~uint64_t{0}}) {
    EXPECT_EQ(LoadBe64(Be64Bytes(v)), v);
    EXPECT_EQ(LoadBe32(Be32Bytes(static_cast<uint32_t>(v))), static_cast<uint32_t>(v));
  }
  // ByteWriter and ByteReader agree with the helpers.
  ByteWriter w;
  w.U16(0xABCD).U32(0x11223344u).Uint(3, 0x123456u);
  EXPECT_EQ(w.bytes(), (std::vector<uint8_t>{0xAB, 0xCD, 0x11, 0x22, 0x33, 0x44, 0x12, 0x34, 0x56}));
  ByteReader r(w.bytes());
  uint64_t three_bytes = 0;
  ASSERT_TRUE(r.Skip(6));
  ASSERT_TRUE(r.ReadUint(3, three_bytes));
  EXPECT_EQ(three_bytes, 0x123456u);
}

TEST(ByteReader, FindIsBoundedAndDoesNotConsume) {
  const std::string text = "ab\r\ncd\r\n";
  const ByteSpan in(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  const uint8_t crlf[] = {'\r', '\n'};
  ByteReader r(in);
  EXPECT_EQ(r.Find(crlf), std::optional<size_t>(2));
  EXPECT_EQ(r.Find(crlf, 3), std::optional<size_t>(6));   // resumed after the first
  EXPECT_EQ(r.Find(crlf, 0, 4), std::optional<size_t>(2));  // ends exactly at the window
  EXPECT_EQ(r.Find(crlf, 0, 3), std::nullopt);              // would end past the window
  EXPECT_EQ(r.Find(crlf, 3, 7), std::nullopt);
  EXPECT_EQ(r.Find(crlf, 9), std::nullopt);                 // from past the end
  EXPECT_EQ(r.Find(ByteSpan()), std::nullopt);
  EXPECT_EQ(r.offset(), 0u);                                // nothing consumed
  ASSERT_TRUE(r.Skip(3));
  EXPECT_EQ(r.Find(crlf), std::optional<size_t>(3));        // relative to the cursor
  ByteReader sub;
  ASSERT_TRUE(r.ReadSub(4, sub));                           // "\ncd\r"
  EXPECT_EQ(sub.Find(crlf), std::nullopt);                  // never past the slice
}

TEST(ByteReader, ReadsBigEndianAndTracksOffset) {
  const std::vector<uint8_t> in{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
  ByteReader r(in);
  uint8_t a = 0;
  uint16_t b = 0;
  uint32_t c = 0;
  ASSERT_TRUE(r.ReadU8(a));
  ASSERT_TRUE(r.ReadU16(b));
  ASSERT_TRUE(r.ReadU32(c));
  EXPECT_EQ(a, 0x01);
  EXPECT_EQ(b, 0x0203);
  EXPECT_EQ(c, 0x04050607u);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.offset(), 7u);
  EXPECT_EQ(r.consumed().size(), 7u);
}

TEST(ByteReader, FailedReadLeavesReaderUnchanged) {
  const std::vector<uint8_t> in{0xAA, 0xBB, 0xCC};
  ByteReader r(in);
  uint32_t v = 0;
  EXPECT_FALSE(r.ReadU32(v));
  EXPECT_EQ(r.remaining(), 3u);
  ByteSpan s;
  EXPECT_FALSE(r.ReadBytes(4, s));
  ByteReader sub;
  EXPECT_FALSE(r.ReadSub(4, sub));
  EXPECT_EQ(r.offset(), 0u);
  uint16_t w = 0;
  ASSERT_TRUE(r.ReadU16(w));
  EXPECT_EQ(w, 0xAABB);
}

TEST(ByteReader, SubReaderKeepsAbsoluteOffsets) {
  const std::vector<uint8_t> in{1, 2, 3, 4, 5, 6};
  ByteReader r(in);
  ASSERT_TRUE(r.Skip(2));
  ByteReader sub;
  ASSERT_TRUE(r.ReadSub(3, sub));
  EXPECT_EQ(sub.offset(), 2u);
  uint8_t x = 0;
  ASSERT_TRUE(sub.ReadU8(x));
  EXPECT_EQ(x, 3);
  EXPECT_EQ(sub.offset(), 3u);
  EXPECT_EQ(sub.remaining(), 2u);
  uint32_t y = 0;
  EXPECT_FALSE(sub.ReadU32(y));  // cannot read past the sub-slice
  EXPECT_EQ(r.remaining(), 1u);
}

TEST(ByteReader, EveryTruncationFails) {
  const std::vector<uint8_t> in{1, 2, 3, 4, 5, 6, 7, 8};
  for (size_t n = 0; n < in.size(); ++n) {
    ByteReader r(ByteSpan(in).first(n));
    uint64_t v = 0;
    EXPECT_FALSE(r.ReadU64(v)) << n;
  }
}

TEST(ByteWriter, PatchesLengthPrefixes) {
  ByteWriter w;
  w.U8(9);
  const size_t at = w.BeginLengthPrefix(2);
  w.Bytes(std::vector<uint8_t>{1, 2, 3});
  ASSERT_TRUE(w.EndLengthPrefix(at, 2));
  w.PatchU8(0, 7);
  EXPECT_EQ(w.bytes(), (std::vector<uint8_t>{7, 0, 3, 1, 2, 3}));
  EXPECT_TRUE(w.ok());
}

TEST(ByteWriter, OverlongLengthFails) {
  ByteWriter w;
  const size_t at = w.BeginLengthPrefix(1);
  w.Bytes(std::vector<uint8_t>(256, 0));
  EXPECT_FALSE(w.EndLengthPrefix(at, 1));
  EXPECT_FALSE(w.ok());
}

TEST(Encoding, HexRoundTrip) {
  const std::vector<uint8_t> b{0x00, 0x0f, 0xa0, 0xff};
  EXPECT_EQ(HexEncode(b), "000fa0ff");
  EXPECT_EQ(HexDecode("000FA0ff"), b);
  EXPECT_FALSE(HexDecode("abc").has_value());
  EXPECT_FALSE(HexDecode("zz").has_value());
}

TEST(Encoding, Base64Rfc4648Vectors) {
  // RFC 4648 §10 test vectors.
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},     {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    const std::string p(plain);
    const std::vector<uint8_t> bytes(p.begin(), p.end());
    EXPECT_EQ(Base64Encode(bytes), encoded);
    EXPECT_EQ(Base64Decode(encoded), bytes);
  }
}

TEST(Encoding, Base64RejectsNonCanonical) {
  EXPECT_FALSE(Base64Decode("Zg=").has_value());    // bad length
  EXPECT_FALSE(Base64Decode("Zh==").has_value());   // non-zero unused bits
  EXPECT_FALSE(Base64Decode("Zm 9v").has_value());  // whitespace
  EXPECT_FALSE(Base64Decode("Z===").has_value());
  EXPECT_FALSE(Base64Decode("Zm=v").has_value());
  EXPECT_FALSE(Base64Decode("Zm9v!A==").has_value());
}

TEST(SecretBytes, ConstantTimeEquals) {
  const std::vector<uint8_t> a{1, 2, 3}, b{1, 2, 3}, c{1, 2, 4}, d{1, 2};
  EXPECT_TRUE(ConstantTimeEquals(a, b));
  EXPECT_FALSE(ConstantTimeEquals(a, c));
  EXPECT_FALSE(ConstantTimeEquals(a, d));
}

TEST(Status, ResultCarriesValueOrError) {
  Result<int> ok(5);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 5);
  Result<int> bad(InvalidArgument("nope"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.error().ToString(), "INVALID_ARGUMENT: nope");
}

}  // namespace
}  // namespace tkms
