// KEMAC / V MACs (RFC 3830 §4.2.4, RFC 6043 §6.2) against vectors computed by
// Python's hmac in kat_gen.py, and the verification failure paths.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/mikey/crypto/mac.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/crypto/kat_file.h"

namespace tkms::mikey::crypto {
namespace {

using Bytes = std::vector<uint8_t>;

class ForeignKey final : public SecretKey {
 public:
  size_t size() const override { return 20; }
};

std::vector<ByteSpan> Spans(const std::vector<Bytes>& parts) {
  return std::vector<ByteSpan>(parts.begin(), parts.end());
}

TEST(crypto_Mac, MatchesIndependentVectors) {
  auto records = test::LoadKatKind(test::CryptoKatPath(), "mac");
  ASSERT_TRUE(records.ok()) << records.error().ToString();
  ASSERT_GE(records->size(), 3u);
  TransientCryptoProvider provider;
  for (test::KatRecord& r : *records) {
    SCOPED_TRACE(r.where());
    const auto alg = static_cast<MacAlg>(r.Uint("mac_alg"));
    SecretKeyPtr key = TransientCryptoProvider::MakeKey(r.Hex("auth_key"));
    const std::vector<Bytes> parts = r.HexList("parts");
    const Bytes expected = r.Hex("mac");
    ASSERT_TRUE(r.Finish().ok()) << r.Finish().ToString();
    EXPECT_GE(parts.size(), 2u);
    auto mac = ComputeMac(provider, alg, *key, Spans(parts));
    ASSERT_TRUE(mac.ok()) << mac.error().ToString();
    EXPECT_EQ(HexEncode(*mac), HexEncode(expected));
    EXPECT_EQ(mac->size(), MacLength(alg));
    Status verified = VerifyMac(provider, alg, *key, Spans(parts), expected);
    EXPECT_TRUE(verified.ok()) << verified.ToString();
  }
}

class crypto_MacVerify : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = TransientCryptoProvider::MakeKey(Bytes(20, 0x0b));
    parts_ = {Bytes{'H', 'i', ' '}, Bytes{'T', 'h', 'e', 'r', 'e'}};
    auto mac = ComputeMac(provider_, MacAlg::kHmacSha1_160, *key_, Spans(parts_));
    ASSERT_TRUE(mac.ok());
    mac_ = *mac;
  }
  Status Verify(const Bytes& mac) {
    return VerifyMac(provider_, MacAlg::kHmacSha1_160, *key_, Spans(parts_), mac);
  }

  TransientCryptoProvider provider_;
  SecretKeyPtr key_;
  std::vector<Bytes> parts_;
  Bytes mac_;
};

TEST_F(crypto_MacVerify, AcceptsTheRightMac) {
  // RFC 2202 test case 1 split over two parts.
  EXPECT_EQ(HexEncode(mac_), "b617318655057264e28bc0b6fb378c8ef146be00");
  EXPECT_TRUE(Verify(mac_).ok());
}

TEST_F(crypto_MacVerify, RejectsEveryFlippedBit) {
  for (size_t bit = 0; bit < mac_.size() * 8; ++bit) {
    Bytes bad = mac_;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    Status status = Verify(bad);
    ASSERT_EQ(status.code(), StatusCode::kPermissionDenied) << "bit " << bit;
    EXPECT_EQ(status.message(), "MAC verification failed");
  }
}

TEST_F(crypto_MacVerify, RejectsWrongLengths) {
  EXPECT_EQ(Verify(Bytes(mac_.begin(), mac_.end() - 1)).code(), StatusCode::kPermissionDenied);
  Bytes longer = mac_;
  longer.push_back(0);
  EXPECT_EQ(Verify(longer).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Verify(Bytes()).code(), StatusCode::kPermissionDenied);
}

TEST_F(crypto_MacVerify, RejectsChangedData) {
  parts_[1][0] ^= 1;
  EXPECT_EQ(Verify(mac_).code(), StatusCode::kPermissionDenied);
}

TEST(crypto_Mac, NullMacIsEmpty) {
  TransientCryptoProvider provider;
  SecretKeyPtr key = TransientCryptoProvider::MakeKey(ByteSpan());
  const Bytes data = {1, 2, 3};
  const ByteSpan parts[] = {data};
  auto mac = ComputeMac(provider, MacAlg::kNull, *key, parts);
  ASSERT_TRUE(mac.ok());
  EXPECT_TRUE(mac->empty());
  EXPECT_TRUE(VerifyMac(provider, MacAlg::kNull, *key, parts, Bytes()).ok());
  EXPECT_EQ(VerifyMac(provider, MacAlg::kNull, *key, parts, data).code(),
            StatusCode::kPermissionDenied);
}

TEST(crypto_Mac, RejectsUnknownAlgorithmAndForeignKey) {
  TransientCryptoProvider provider;
  SecretKeyPtr key = TransientCryptoProvider::MakeKey(Bytes(20, 1));
  ForeignKey foreign;
  const Bytes data = {1, 2, 3};
  const ByteSpan parts[] = {data};
  EXPECT_EQ(ComputeMac(provider, static_cast<MacAlg>(3), *key, parts).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ComputeMac(provider, MacAlg::kHmacSha256_256, foreign, parts).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyMac(provider, MacAlg::kHmacSha1_160, foreign, parts, Bytes(20)).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tkms::mikey::crypto
