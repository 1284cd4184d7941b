// Tests of the base library: the bounds-checked reader, the writer, encodings
// and secret buffers.
#include <gtest/gtest.h>

#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/byte_writer.h"
#include "firmware/base/encoding.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"

namespace tkms {
namespace {

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
