// TransientCryptoProvider against published vectors (RFC 2202, RFC 4231,
// NIST SP 800-38A F.5.1/F.5.5), the independent AES-CTR vectors of kat.txt,
// and the provider contract (key slicing, foreign keys, argument checks).
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/crypto/kat_file.h"

namespace tkms::mikey::crypto {
namespace {

std::vector<uint8_t> FromHex(std::string_view hex) { return HexDecode(hex).value(); }
std::vector<uint8_t> FromText(std::string_view text) { return {text.begin(), text.end()}; }

class ForeignKey final : public SecretKey {
 public:
  size_t size() const override { return 16; }
};

std::string HmacHex(CryptoProvider& provider, HashAlg alg, ByteSpan key,
                    std::vector<ByteSpan> parts) {
  SecretKeyPtr k = TransientCryptoProvider::MakeKey(key);
  std::vector<uint8_t> out(DigestLength(alg));
  Status status = provider.Hmac(alg, *k, parts, out);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return HexEncode(out);
}

std::string HmacHex(CryptoProvider& provider, HashAlg alg, ByteSpan key, ByteSpan data) {
  return HmacHex(provider, alg, key, std::vector<ByteSpan>{data});
}

struct HmacVector {
  const char* name;
  std::vector<uint8_t> key;
  std::vector<uint8_t> data;
  const char* sha1;    // RFC 2202
  const char* sha256;  // RFC 4231
};

std::vector<HmacVector> PublishedHmacVectors() {
  const std::string large_key_text = "Test Using Larger Than Block-Size Key - Hash Key First";
  return {
      {"test case 1", std::vector<uint8_t>(20, 0x0b), FromText("Hi There"),
       "b617318655057264e28bc0b6fb378c8ef146be00",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"test case 2", FromText("Jefe"), FromText("what do ya want for nothing?"),
       "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {"test case 3", std::vector<uint8_t>(20, 0xaa), std::vector<uint8_t>(50, 0xdd),
       "125d7342b9ac11cd91a39af48aa17b4f63f175d3",
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
  };
}

TEST(crypto_TransientProvider, DigestLengths) {
  EXPECT_EQ(DigestLength(HashAlg::kSha1), 20u);
  EXPECT_EQ(DigestLength(HashAlg::kSha256), 32u);
}

TEST(crypto_TransientProvider, HmacSha1MatchesRfc2202) {
  TransientCryptoProvider provider;
  for (const HmacVector& v : PublishedHmacVectors()) {
    EXPECT_EQ(HmacHex(provider, HashAlg::kSha1, v.key, v.data), v.sha1) << v.name;
  }
  // RFC 2202 test case 6: an 80-byte key, longer than the SHA-1 block.
  EXPECT_EQ(HmacHex(provider, HashAlg::kSha1, std::vector<uint8_t>(80, 0xaa),
                    FromText("Test Using Larger Than Block-Size Key - Hash Key First")),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112");
}

TEST(crypto_TransientProvider, HmacSha256MatchesRfc4231) {
  TransientCryptoProvider provider;
  for (const HmacVector& v : PublishedHmacVectors()) {
    EXPECT_EQ(HmacHex(provider, HashAlg::kSha256, v.key, v.data), v.sha256) << v.name;
  }
  // RFC 4231 test case 6: a 131-byte key.
  EXPECT_EQ(HmacHex(provider, HashAlg::kSha256, std::vector<uint8_t>(131, 0xaa),
                    FromText("Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(crypto_TransientProvider, HmacOverPartsEqualsHmacOverConcatenation) {
  TransientCryptoProvider provider;
  const std::vector<uint8_t> data = FromText("what do ya want for nothing?");
  const ByteSpan all(data);
  const std::vector<ByteSpan> parts = {all.first(4), ByteSpan(), all.subspan(4, 10),
                                       all.subspan(14)};
  EXPECT_EQ(HmacHex(provider, HashAlg::kSha256, FromText("Jefe"), parts),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(crypto_TransientProvider, HmacRejectsWrongOutputSize) {
  TransientCryptoProvider provider;
  SecretKeyPtr key = TransientCryptoProvider::MakeKey(std::vector<uint8_t>(20, 1));
  std::vector<uint8_t> out(32);
  Status status = provider.Hmac(HashAlg::kSha1, *key, {}, out);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
}

struct CtrVector {
  const char* name;
  const char* key;
  const char* ciphertext;
};

TEST(crypto_TransientProvider, AesCtrMatchesSp800_38a) {
  // NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt) and F.5.5 (CTR-AES256.Encrypt).
  const std::vector<uint8_t> plaintext = FromHex(
      "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
      "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710");
  const std::vector<uint8_t> counter = FromHex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  const CtrVector vectors[] = {
      {"F.5.1", "2b7e151628aed2a6abf7158809cf4f3c",
       "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
       "5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee"},
      {"F.5.5", "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
       "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
       "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"},
  };
  TransientCryptoProvider provider;
  for (const CtrVector& v : vectors) {
    SCOPED_TRACE(v.name);
    SecretKeyPtr key = TransientCryptoProvider::MakeKey(FromHex(v.key));
    std::vector<uint8_t> out(plaintext.size());
    Status status = provider.AesCtr(*key, std::span<const uint8_t, 16>(counter.data(), 16),
                                    plaintext, out);
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(HexEncode(out), v.ciphertext);
    // Decryption is the same operation, here done in place.
    status = provider.AesCtr(*key, std::span<const uint8_t, 16>(counter.data(), 16), out, out);
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(out, plaintext);
  }
}

TEST(crypto_TransientProvider, AesCtrMatchesOpensslVectors) {
  auto records = test::LoadKatKind(test::CryptoKatPath(), "aes_ctr");
  ASSERT_TRUE(records.ok()) << records.error().ToString();
  ASSERT_GE(records->size(), 3u);
  TransientCryptoProvider provider;
  for (test::KatRecord& r : *records) {
    SCOPED_TRACE(r.where());
    SecretKeyPtr key = TransientCryptoProvider::MakeKey(r.Hex("aes_key"));
    const std::vector<uint8_t> iv = r.Hex("iv");
    const std::vector<uint8_t> in = r.Hex("in");
    const std::string expected = HexEncode(r.Hex("out"));
    ASSERT_TRUE(r.Finish().ok()) << r.Finish().ToString();
    ASSERT_EQ(iv.size(), 16u);
    std::vector<uint8_t> out(in.size());
    Status status =
        provider.AesCtr(*key, std::span<const uint8_t, 16>(iv.data(), 16), in, out);
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(HexEncode(out), expected);
  }
}

TEST(crypto_TransientProvider, AesCtrRejectsBadArguments) {
  TransientCryptoProvider provider;
  const std::array<uint8_t, 16> iv{};
  std::vector<uint8_t> in(20, 0), out(20, 0), short_out(19, 0);
  SecretKeyPtr key15 = TransientCryptoProvider::MakeKey(FromHex("000102030405060708090a0b0c0d0e"));
  Status status = provider.AesCtr(*key15, iv, in, out);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message().find("000102"), std::string::npos) << "key bytes leaked";
  SecretKeyPtr key16 = TransientCryptoProvider::MakeKey(std::vector<uint8_t>(16, 7));
  EXPECT_EQ(provider.AesCtr(*key16, iv, in, short_out).code(), StatusCode::kInvalidArgument);
  // Partially overlapping buffers.
  std::vector<uint8_t> buffer(40, 0);
  EXPECT_EQ(provider.AesCtr(*key16, iv, ByteSpan(buffer).first(20),
                            std::span<uint8_t>(buffer).subspan(1, 20))
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(provider.AesCtr(*key16, iv, ByteSpan(), std::span<uint8_t>()).ok());
}

TEST(crypto_TransientProvider, SliceKeyGivesTheSubrange) {
  TransientCryptoProvider provider;
  const std::vector<uint8_t> bytes = FromHex(
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324");
  SecretKeyPtr key = TransientCryptoProvider::MakeKey(bytes);
  auto slice = provider.SliceKey(*key, 32, 5);
  ASSERT_TRUE(slice.ok()) << slice.error().ToString();
  EXPECT_EQ((*slice)->size(), 5u);
  const std::vector<uint8_t> data = FromText("slice");
  std::vector<uint8_t> from_slice(20);
  const ByteSpan parts[] = {data};
  ASSERT_TRUE(provider.Hmac(HashAlg::kSha1, **slice, parts, from_slice).ok());
  EXPECT_EQ(HexEncode(from_slice),
            HmacHex(provider, HashAlg::kSha1, ByteSpan(bytes).subspan(32, 5), data));
}

TEST(crypto_TransientProvider, SliceKeyChecksBounds) {
  TransientCryptoProvider provider;
  SecretKeyPtr key = TransientCryptoProvider::MakeKey(std::vector<uint8_t>(40, 9));
  EXPECT_TRUE(provider.SliceKey(*key, 0, 40).ok());
  EXPECT_TRUE(provider.SliceKey(*key, 39, 1).ok());
  EXPECT_EQ(provider.SliceKey(*key, 0, 0).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(provider.SliceKey(*key, 0, 41).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(provider.SliceKey(*key, 40, 1).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(provider.SliceKey(*key, 41, 0).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(provider.SliceKey(*key, SIZE_MAX, 2).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(provider.SliceKey(*key, 8, SIZE_MAX).error().code(), StatusCode::kInvalidArgument);
}

TEST(crypto_TransientProvider, RejectsKeysOfAnotherProvider) {
  TransientCryptoProvider provider;
  ForeignKey foreign;
  std::vector<uint8_t> out(20);
  const std::array<uint8_t, 16> iv{};
  std::vector<uint8_t> in(4), ctr_out(4);
  EXPECT_EQ(provider.Hmac(HashAlg::kSha1, foreign, {}, out).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(provider.AesCtr(foreign, iv, in, ctr_out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(provider.SliceKey(foreign, 0, 8).error().code(), StatusCode::kInvalidArgument);
}

TEST(crypto_TransientProvider, KeysWorkAcrossInstances) {
  TransientCryptoProvider first;
  TransientCryptoProvider second;
  auto key = first.ImportTransientKey(FromText("Jefe"));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ((*key)->size(), 4u);
  const std::vector<uint8_t> data = FromText("what do ya want for nothing?");
  const ByteSpan parts[] = {data};
  std::vector<uint8_t> out(20);
  ASSERT_TRUE(second.Hmac(HashAlg::kSha1, **key, parts, out).ok());
  EXPECT_EQ(HexEncode(out), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
}

TEST(crypto_TransientProvider, RandomFillsBuffers) {
  TransientCryptoProvider provider;
  std::vector<uint8_t> a(3000, 0), b(3000, 0);  // more than one DRBG request
  ASSERT_TRUE(provider.Random(a).ok());
  ASSERT_TRUE(provider.Random(b).ok());
  EXPECT_NE(a, b);
  EXPECT_NE(a, std::vector<uint8_t>(3000, 0));
  EXPECT_NE(std::vector<uint8_t>(a.end() - 16, a.end()), std::vector<uint8_t>(16, 0));
  EXPECT_TRUE(provider.Random(std::span<uint8_t>()).ok());
}

}  // namespace
}  // namespace tkms::mikey::crypto
