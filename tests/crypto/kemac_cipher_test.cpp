// KEMAC encryption (RFC 3830 §4.2.3) against IVs computed by kat_gen.py and
// ciphertexts computed by `openssl enc -aes-*-ctr`, plus the timestamp
// widening of RFC 6043 §6.3 / RFC 3830 §6.6 and argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "firmware/base/big_endian.h"
#include "firmware/base/encoding.h"
#include "firmware/mikey/crypto/kemac_cipher.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/crypto/kat_file.h"

namespace tkms::mikey::crypto {
namespace {

using Bytes = std::vector<uint8_t>;

uint64_t BigEndian(const Bytes& bytes) {
  EXPECT_LE(bytes.size(), 8u);
  return LoadBeUint(std::span<const uint8_t>(bytes).first(std::min<size_t>(bytes.size(), 8)));
}

TEST(crypto_KemacCipher, MatchesIndependentVectors) {
  auto records = test::LoadKatKind(test::CryptoKatPath(), "kemac");
  ASSERT_TRUE(records.ok()) << records.error().ToString();
  ASSERT_GE(records->size(), 6u);
  TransientCryptoProvider provider;
  for (test::KatRecord& r : *records) {
    SCOPED_TRACE(r.where());
    const auto alg = static_cast<EncrAlg>(r.Uint("encr_alg"));
    SecretKeyPtr encr_key = TransientCryptoProvider::MakeKey(r.Hex("encr_key"));
    const Bytes salt_key = r.Hex("salt_key");
    const auto csb_id = static_cast<uint32_t>(r.Uint("csb_id"));
    const auto ts_type = static_cast<TsType>(r.Uint("ts_type"));
    const Bytes ts_value = r.Hex("ts_value");
    const Bytes plaintext = r.Hex("plaintext");
    const Bytes ts64_bytes = r.Hex("ts64");
    const std::string iv_hex = HexEncode(r.Hex("iv"));
    const std::string ciphertext_hex = HexEncode(r.Hex("ciphertext"));
    ASSERT_TRUE(r.Finish().ok()) << r.Finish().ToString();
    ASSERT_EQ(ts_value.size(), TsLength(ts_type));

    auto ts64 = TimestampForIv(ts_type, BigEndian(ts_value));
    ASSERT_TRUE(ts64.ok()) << ts64.error().ToString();
    EXPECT_EQ(*ts64, BigEndian(ts64_bytes));
    auto iv = KemacIv(salt_key, csb_id, *ts64);
    ASSERT_TRUE(iv.ok()) << iv.error().ToString();
    EXPECT_EQ(HexEncode(*iv), iv_hex);

    auto ciphertext = KemacEncrypt(provider, alg, *encr_key, salt_key, csb_id, *ts64, plaintext);
    ASSERT_TRUE(ciphertext.ok()) << ciphertext.error().ToString();
    EXPECT_EQ(HexEncode(*ciphertext), ciphertext_hex);
    auto decrypted =
        KemacDecrypt(provider, alg, *encr_key, salt_key, csb_id, *ts64, *ciphertext);
    ASSERT_TRUE(decrypted.ok()) << decrypted.error().ToString();
    EXPECT_EQ(Bytes(decrypted->begin(), decrypted->end()), plaintext);
  }
}

TEST(crypto_KemacCipher, TimestampWidening) {
  EXPECT_EQ(*TimestampForIv(TsType::kNtpUtc, 0xc8e350ea00000001u), 0xc8e350ea00000001u);
  EXPECT_EQ(*TimestampForIv(TsType::kNtp, 0x0102030405060708u), 0x0102030405060708u);
  EXPECT_EQ(*TimestampForIv(TsType::kNtpUtc32, 0xe8c7b3a1u), 0xe8c7b3a100000000u);
  EXPECT_EQ(*TimestampForIv(TsType::kCounter, 0xe8c7b3a1u), 0x00000000e8c7b3a1u);
  EXPECT_EQ(TimestampForIv(TsType::kCounter, 0x100000000u).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TimestampForIv(TsType::kNtpUtc32, 0x100000000u).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TimestampForIv(static_cast<TsType>(4), 1).error().code(),
            StatusCode::kInvalidArgument);
}

TEST(crypto_KemacCipher, IvLayout) {
  const Bytes zero_salt(14, 0);
  auto iv = KemacIv(zero_salt, 0x01020304, 0x05060708090a0b0cu);
  ASSERT_TRUE(iv.ok());
  EXPECT_EQ(HexEncode(*iv), "0000" "01020304" "05060708090a0b0c" "0000");
  const Bytes ones(14, 0xff);
  iv = KemacIv(ones, 0x01020304, 0x05060708090a0b0cu);
  ASSERT_TRUE(iv.ok());
  EXPECT_EQ(HexEncode(*iv), "ffff" "fefdfcfb" "faf9f8f7f6f5f4f3" "0000");
  EXPECT_EQ(KemacIv(Bytes(13, 0), 1, 1).error().code(), StatusCode::kInvalidArgument);
}

TEST(crypto_KemacCipher, DecryptInvertsEncrypt) {
  TransientCryptoProvider provider;
  for (EncrAlg alg : {EncrAlg::kAesCm128, EncrAlg::kAesCm256, EncrAlg::kNull}) {
    const size_t key_len = alg == EncrAlg::kAesCm256 ? 32 : 16;
    Bytes key_bytes(key_len), salt(14), plaintext(1000);
    ASSERT_TRUE(provider.Random(key_bytes).ok());
    ASSERT_TRUE(provider.Random(salt).ok());
    ASSERT_TRUE(provider.Random(plaintext).ok());
    SecretKeyPtr key = TransientCryptoProvider::MakeKey(key_bytes);
    auto ciphertext = KemacEncrypt(provider, alg, *key, salt, 0xabcdef01, 42, plaintext);
    ASSERT_TRUE(ciphertext.ok()) << ciphertext.error().ToString();
    EXPECT_EQ(*ciphertext == plaintext, alg == EncrAlg::kNull);
    auto decrypted = KemacDecrypt(provider, alg, *key, salt, 0xabcdef01, 42, *ciphertext);
    ASSERT_TRUE(decrypted.ok());
    EXPECT_EQ(Bytes(decrypted->begin(), decrypted->end()), plaintext);
    // A different timestamp gives a different keystream.
    if (alg != EncrAlg::kNull) {
      auto other = KemacDecrypt(provider, alg, *key, salt, 0xabcdef01, 43, *ciphertext);
      ASSERT_TRUE(other.ok());
      EXPECT_NE(Bytes(other->begin(), other->end()), plaintext);
    }
  }
}

TEST(crypto_KemacCipher, AesKeyWrapIsUnimplemented) {
  TransientCryptoProvider provider;
  SecretKeyPtr key = TransientCryptoProvider::MakeKey(Bytes(16, 1));
  const Bytes salt(8, 2), data(24, 3);
  auto decrypted = KemacDecrypt(provider, EncrAlg::kAesKw128, *key, salt, 1, 1, data);
  ASSERT_FALSE(decrypted.ok());
  EXPECT_EQ(decrypted.error().code(), StatusCode::kUnimplemented);
  EXPECT_NE(decrypted.error().message().find("AES-KW"), std::string::npos);
  EXPECT_EQ(KemacEncrypt(provider, EncrAlg::kAesKw128, *key, salt, 1, 1, data).error().code(),
            StatusCode::kUnimplemented);
}

TEST(crypto_KemacCipher, RejectsBadArguments) {
  TransientCryptoProvider provider;
  SecretKeyPtr key16 = TransientCryptoProvider::MakeKey(Bytes(16, 1));
  SecretKeyPtr key32 = TransientCryptoProvider::MakeKey(Bytes(32, 1));
  const Bytes salt(14, 2), short_salt(13, 2), data(24, 3);
  EXPECT_EQ(KemacEncrypt(provider, EncrAlg::kAesCm128, *key32, salt, 1, 1, data).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(KemacEncrypt(provider, EncrAlg::kAesCm256, *key16, salt, 1, 1, data).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      KemacDecrypt(provider, EncrAlg::kAesCm128, *key16, short_salt, 1, 1, data).error().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(KemacEncrypt(provider, static_cast<EncrAlg>(4), *key16, salt, 1, 1, data)
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  const Bytes too_long(kMaxAesCmBytes + 1, 0);
  EXPECT_EQ(
      KemacEncrypt(provider, EncrAlg::kAesCm128, *key16, salt, 1, 1, too_long).error().code(),
      StatusCode::kInvalidArgument);
  EXPECT_TRUE(KemacEncrypt(provider, EncrAlg::kAesCm128, *key16, salt, 1, 1, Bytes()).ok());
}

}  // namespace
}  // namespace tkms::mikey::crypto
