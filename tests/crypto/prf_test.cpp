// The MIKEY PRF (RFC 3830 §4.1.2, RFC 6043 §6.1) against the vectors that
// kat_gen.py computes independently, and its argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/mikey/crypto/prf.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/crypto/kat_file.h"

namespace tkms::mikey::crypto {
namespace {

// Delegates to a TransientCryptoProvider but, like a token that cannot derive
// key objects, refuses SliceKey.
class NoSliceProvider final : public CryptoProvider {
 public:
  Result<SecretKeyPtr> ImportTransientKey(ByteSpan bytes) override {
    return inner_.ImportTransientKey(bytes);
  }
  Result<SecretKeyPtr> SliceKey(const SecretKey&, size_t, size_t) override {
    return Unimplemented("token keys cannot be sliced");
  }
  Status Hmac(HashAlg alg, const SecretKey& key, std::span<const ByteSpan> parts,
              std::span<uint8_t> out) override {
    return inner_.Hmac(alg, key, parts, out);
  }
  Status AesCtr(const SecretKey& key, std::span<const uint8_t, 16> iv, ByteSpan in,
                std::span<uint8_t> out) override {
    return inner_.AesCtr(key, iv, in, out);
  }
  Status Random(std::span<uint8_t> out) override { return inner_.Random(out); }

 private:
  TransientCryptoProvider inner_;
};

class ForeignKey final : public SecretKey {
 public:
  size_t size() const override { return 16; }
};

TEST(crypto_Prf, MatchesIndependentVectors) {
  auto records = test::LoadKatKind(test::CryptoKatPath(), "prf");
  ASSERT_TRUE(records.ok()) << records.error().ToString();
  // 2 hashes x 6 inkey lengths x 6 output lengths.
  ASSERT_GE(records->size(), 72u);
  TransientCryptoProvider provider;
  size_t multi_chunk = 0;
  for (test::KatRecord& r : *records) {
    SCOPED_TRACE(r.where());
    const auto prf = static_cast<PrfFunc>(r.Uint("prf"));
    SecretKeyPtr inkey = TransientCryptoProvider::MakeKey(r.Hex("inkey"));
    const std::vector<uint8_t> label = r.Hex("label");
    const size_t outlen = r.Uint("outlen");
    const std::string expected = HexEncode(r.Hex("out"));
    ASSERT_TRUE(r.Finish().ok()) << r.Finish().ToString();
    if (inkey->size() > 32) ++multi_chunk;
    Result<SecretBytes> out = Prf(provider, prf, *inkey, label, outlen);
    ASSERT_TRUE(out.ok()) << out.error().ToString();
    EXPECT_EQ(HexEncode(*out), expected);
  }
  EXPECT_GE(multi_chunk, 36u);
}

TEST(crypto_Prf, ShorterOutputIsAPrefix) {
  TransientCryptoProvider provider;
  SecretKeyPtr inkey = TransientCryptoProvider::MakeKey(std::vector<uint8_t>(70, 0x5a));
  const std::vector<uint8_t> label = {0x2a, 0xd0, 0x1c, 0x64, 0x01};
  for (PrfFunc prf : {PrfFunc::kMikey1, PrfFunc::kHmacSha256}) {
    auto long_out = Prf(provider, prf, *inkey, label, 100);
    auto short_out = Prf(provider, prf, *inkey, label, 21);
    ASSERT_TRUE(long_out.ok() && short_out.ok());
    EXPECT_TRUE(std::equal(short_out->begin(), short_out->end(), long_out->begin()));
  }
}

TEST(crypto_Prf, RejectsEmptyKeyAndZeroLength) {
  TransientCryptoProvider provider;
  SecretKeyPtr empty = TransientCryptoProvider::MakeKey(ByteSpan());
  SecretKeyPtr key = TransientCryptoProvider::MakeKey(std::vector<uint8_t>(16, 1));
  const std::vector<uint8_t> label = {1, 2, 3};
  EXPECT_EQ(Prf(provider, PrfFunc::kMikey1, *empty, label, 16).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Prf(provider, PrfFunc::kMikey1, *key, label, 0).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Prf(provider, static_cast<PrfFunc>(2), *key, label, 16).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(PrfHash(static_cast<PrfFunc>(5)).error().code(), StatusCode::kInvalidArgument);
}

TEST(crypto_Prf, RejectsForeignKey) {
  TransientCryptoProvider provider;
  ForeignKey foreign;
  const std::vector<uint8_t> label = {1, 2, 3};
  EXPECT_EQ(Prf(provider, PrfFunc::kHmacSha256, foreign, label, 16).error().code(),
            StatusCode::kInvalidArgument);
}

TEST(crypto_Prf, KeysUpTo256BitsAreNotSliced) {
  NoSliceProvider token;
  TransientCryptoProvider transient;
  const std::vector<uint8_t> label = {0x15, 0x05, 0x33, 0xe1, 0xff};
  for (size_t key_len : {16u, 20u, 32u}) {
    SecretKeyPtr key = TransientCryptoProvider::MakeKey(std::vector<uint8_t>(key_len, 0x33));
    auto from_token = Prf(token, PrfFunc::kHmacSha256, *key, label, 48);
    auto from_transient = Prf(transient, PrfFunc::kHmacSha256, *key, label, 48);
    ASSERT_TRUE(from_token.ok()) << from_token.error().ToString();
    ASSERT_TRUE(from_transient.ok());
    EXPECT_EQ(*from_token, *from_transient);
  }
  // Longer keys need slicing; the provider's refusal is passed on.
  SecretKeyPtr long_key = TransientCryptoProvider::MakeKey(std::vector<uint8_t>(33, 0x33));
  EXPECT_EQ(Prf(token, PrfFunc::kMikey1, *long_key, label, 16).error().code(),
            StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace tkms::mikey::crypto
