// Pkcs11CryptoProvider (firmware/keystore/crypto_provider.h): MIKEY crypto with keys
// held in the token gives exactly what the same key bytes give in host
// memory (TransientCryptoProvider, mbedTLS), and ECDSA signatures from the
// token verify with mbedTLS.
#include <gtest/gtest.h>
#include <mbedtls/aes.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/sha256.h>

#include <array>
#include <string>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/mikey/crypto/mac.h"
#include "firmware/mikey/crypto/prf.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "firmware/keystore/crypto_provider.h"
#include "tests/keystore/keystore_test_base.h"

namespace tkms::keystore {
namespace {

using mikey::MacAlg;
using mikey::PrfFunc;
using mikey::crypto::HashAlg;
using mikey::crypto::SecretKeyPtr;
using mikey::crypto::TransientCryptoProvider;
using test::KeystoreTestBase;
using test::OpenKeystore;

class keystore_Provider : public KeystoreTestBase {
 protected:
  SecretKeyPtr TokenKey(const std::string& label) {
    auto key = ks().FindSecretKey(KeySelector::Label(label));
    EXPECT_TRUE(key.ok()) << key.error().ToString();
    return key.ok() ? std::move(*key) : nullptr;
  }
  mikey::crypto::CryptoProvider& provider() { return ks().provider(); }
};

// AES-CTR with the whole 16-byte block as a big-endian counter (mbedTLS).
std::vector<uint8_t> MbedAesCtr(const SecretBytes& key, std::array<uint8_t, 16> iv,
                                const std::vector<uint8_t>& in) {
  mbedtls_aes_context ctx;
  mbedtls_aes_init(&ctx);
  EXPECT_EQ(mbedtls_aes_setkey_enc(&ctx, key.data(), 256), 0);
  std::vector<uint8_t> out(in.size());
  size_t offset = 0;
  std::array<uint8_t, 16> stream{};
  if (!in.empty()) {
    EXPECT_EQ(mbedtls_aes_crypt_ctr(&ctx, in.size(), &offset, iv.data(), stream.data(), in.data(),
                                    out.data()),
              0);
  }
  mbedtls_aes_free(&ctx);
  return out;
}

TEST_F(keystore_Provider, PrfWithATokenKeyEqualsThePrfWithTheSameBytes) {
  const SecretBytes bytes = Secret(32, 0x20);
  ASSERT_TRUE(ks().ImportSecret(KeyUsage::kUserPsk, "psk", {0x01}, bytes).ok());
  SecretKeyPtr token_key = TokenKey("psk");
  ASSERT_NE(token_key, nullptr);
  EXPECT_EQ(token_key->size(), 32u);
  TransientCryptoProvider host;
  SecretKeyPtr host_key = TransientCryptoProvider::MakeKey(bytes);
  const std::array<uint8_t, 9> label = {0x2a, 0xd0, 0x1c, 0x64, 0xff, 0xff, 0xff, 0xff, 0x00};
  for (PrfFunc prf : {PrfFunc::kHmacSha256, PrfFunc::kMikey1}) {
    for (size_t out_len : {16u, 20u, 32u, 46u, 64u}) {
      SCOPED_TRACE(std::to_string(static_cast<int>(prf)) + "/" + std::to_string(out_len));
      Result<SecretBytes> from_token = mikey::crypto::Prf(provider(), prf, *token_key, label, out_len);
      ASSERT_TRUE(from_token.ok()) << from_token.error().ToString();
      Result<SecretBytes> from_host = mikey::crypto::Prf(host, prf, *host_key, label, out_len);
      ASSERT_TRUE(from_host.ok());
      EXPECT_EQ(HexEncode(*from_token), HexEncode(*from_host));
    }
  }
}

TEST_F(keystore_Provider, ShortPskWorksWithSha1OnlyAsTheTokenAllows) {
  const SecretBytes bytes = Secret(20, 0x40);
  ASSERT_TRUE(ks().ImportSecret(KeyUsage::kUserPsk, "psk20", {}, bytes).ok());
  SecretKeyPtr token_key = TokenKey("psk20");
  TransientCryptoProvider host;
  SecretKeyPtr host_key = TransientCryptoProvider::MakeKey(bytes);
  const std::array<uint8_t, 4> label = {1, 2, 3, 4};
  auto from_token = mikey::crypto::Prf(provider(), PrfFunc::kMikey1, *token_key, label, 20);
  auto from_host = mikey::crypto::Prf(host, PrfFunc::kMikey1, *host_key, label, 20);
  ASSERT_TRUE(from_token.ok() && from_host.ok());
  EXPECT_EQ(*from_token, *from_host);
  // SoftHSM2 needs HMAC-SHA-256 keys of at least 32 bytes.
  auto sha256 = mikey::crypto::Prf(provider(), PrfFunc::kHmacSha256, *token_key, label, 32);
  ASSERT_FALSE(sha256.ok());
  EXPECT_EQ(sha256.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(sha256.error().message(), "C_SignInit failed: CKR_KEY_SIZE_RANGE (0x62)");
}

TEST_F(keystore_Provider, MacsWithTokenKeys) {
  const SecretBytes bytes = Secret(32, 0x60);
  ASSERT_TRUE(ks().ImportSecret(KeyUsage::kUserPsk, "auth", {}, bytes).ok());
  SecretKeyPtr token_key = TokenKey("auth");
  TransientCryptoProvider host;
  SecretKeyPtr host_key = TransientCryptoProvider::MakeKey(bytes);
  const std::vector<uint8_t> message(150, 0x5a);
  const std::vector<uint8_t> ids = {'a', 'l', 'i', 'c', 'e'};
  const ByteSpan parts[] = {message, ids, ByteSpan()};
  for (MacAlg alg : {MacAlg::kHmacSha256_256, MacAlg::kHmacSha1_160}) {
    auto mac = mikey::crypto::ComputeMac(provider(), alg, *token_key, parts);
    auto expected = mikey::crypto::ComputeMac(host, alg, *host_key, parts);
    ASSERT_TRUE(mac.ok() && expected.ok());
    EXPECT_EQ(*mac, *expected);
    EXPECT_TRUE(mikey::crypto::VerifyMac(provider(), alg, *token_key, parts, *mac).ok());
    std::vector<uint8_t> bad = *mac;
    bad.back() ^= 0x80;
    Status status = mikey::crypto::VerifyMac(provider(), alg, *token_key, parts, bad);
    EXPECT_EQ(status.code(), StatusCode::kPermissionDenied);
  }
  // One part, and no data at all.
  std::array<uint8_t, 32> out{};
  std::array<uint8_t, 32> host_out{};
  const ByteSpan none[] = {ByteSpan()};
  ASSERT_TRUE(provider().Hmac(HashAlg::kSha256, *token_key, none, out).ok());
  ASSERT_TRUE(host.Hmac(HashAlg::kSha256, *host_key, none, host_out).ok());
  EXPECT_EQ(out, host_out);
  EXPECT_EQ(provider().Hmac(HashAlg::kSha256, *token_key, none, std::span(out).first(20)).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(keystore_Provider, AesCtrWithATokenKeyEqualsMbedTls) {
  const SecretBytes bytes = Secret(32, 0x80);
  ASSERT_TRUE(ks().ImportSecret(KeyUsage::kGeneric, "aes", {}, bytes, KeyType::kAes256).ok());
  SecretKeyPtr token_key = TokenKey("aes");
  struct Case {
    std::array<uint8_t, 16> iv;
    size_t len;
  };
  std::array<uint8_t, 16> zero{};
  std::array<uint8_t, 16> srtp{};  // a KEMAC-like IV: low 16 bits zero
  for (size_t i = 0; i < 14; ++i) srtp[i] = static_cast<uint8_t>(0xa0 + i);
  std::array<uint8_t, 16> near_wrap{};
  near_wrap.fill(0xff);
  near_wrap[15] = 0xfe;  // IV + 2 wraps past 2^128
  std::array<uint8_t, 16> all_ones{};
  all_ones.fill(0xff);
  std::array<uint8_t, 16> low_wrap{};  // the low 64 bits wrap, the high do not
  for (size_t i = 8; i < 16; ++i) low_wrap[i] = 0xff;
  const Case cases[] = {{zero, 0},      {zero, 1},       {zero, 15},     {zero, 16},
                        {zero, 17},     {srtp, 64},      {srtp, 1000},   {near_wrap, 64},
                        {near_wrap, 33}, {all_ones, 16}, {all_ones, 17}, {low_wrap, 48}};
  for (const Case& c : cases) {
    SCOPED_TRACE(HexEncode(c.iv) + " len " + std::to_string(c.len));
    std::vector<uint8_t> plain(c.len);
    for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i * 7);
    std::vector<uint8_t> out(c.len);
    Status status = provider().AesCtr(*token_key, c.iv, plain, out);
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(HexEncode(out), HexEncode(MbedAesCtr(bytes, c.iv, plain)));
    // In place gives the same.
    std::vector<uint8_t> in_place = plain;
    ASSERT_TRUE(provider().AesCtr(*token_key, c.iv, in_place, in_place).ok());
    EXPECT_EQ(in_place, out);
  }
  std::vector<uint8_t> buffer(48);
  EXPECT_EQ(provider().AesCtr(*token_key, zero, ByteSpan(buffer).first(32),
                              std::span(buffer).subspan(8, 32))
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(provider().AesCtr(*token_key, zero, ByteSpan(buffer).first(16),
                              std::span(buffer).subspan(16, 17))
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_F(keystore_Provider, TransientKeysStayInHostMemory) {
  const std::array<uint8_t, 16> key_bytes = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  Result<SecretKeyPtr> key = provider().ImportTransientKey(key_bytes);
  ASSERT_TRUE(key.ok());
  EXPECT_FALSE(Pkcs11CryptoProvider::IsTokenKey(**key));
  TransientCryptoProvider host;
  SecretKeyPtr host_key = TransientCryptoProvider::MakeKey(key_bytes);
  std::array<uint8_t, 16> iv{};
  std::array<uint8_t, 40> in{};
  std::array<uint8_t, 40> a{};
  std::array<uint8_t, 40> b{};
  ASSERT_TRUE(provider().AesCtr(**key, iv, in, a).ok());
  ASSERT_TRUE(host.AesCtr(*host_key, iv, in, b).ok());
  EXPECT_EQ(a, b);
  Result<SecretKeyPtr> slice = provider().SliceKey(**key, 4, 8);
  ASSERT_TRUE(slice.ok());
  EXPECT_EQ((*slice)->size(), 8u);
}

TEST_F(keystore_Provider, TokenKeysCannotBeSliced) {
  ASSERT_TRUE(ks().GenerateKey(KeyType::kHmacSha256, KeyUsage::kUserPsk, "psk", {}).ok());
  SecretKeyPtr token_key = TokenKey("psk");
  EXPECT_TRUE(Pkcs11CryptoProvider::IsTokenKey(*token_key));
  Result<SecretKeyPtr> slice = provider().SliceKey(*token_key, 0, 16);
  ASSERT_FALSE(slice.ok());
  EXPECT_EQ(slice.error().code(), StatusCode::kUnimplemented);
  // And a token key is not a transient key anywhere else.
  TransientCryptoProvider host;
  std::array<uint8_t, 32> out{};
  const ByteSpan parts[] = {ByteSpan()};
  EXPECT_EQ(host.Hmac(HashAlg::kSha256, *token_key, parts, out).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(keystore_Provider, KeysOfAnotherKeystoreAreRefused) {
  ASSERT_TRUE(token_->AddToken("other").ok());
  auto other = OpenKeystore(*token_, "other");
  ASSERT_TRUE(other.ok()) << other.error().ToString();
  ASSERT_TRUE((*other)->GenerateKey(KeyType::kHmacSha256, KeyUsage::kUserPsk, "psk", {}).ok());
  auto foreign = (*other)->FindSecretKey(KeySelector::Label("psk"));
  ASSERT_TRUE(foreign.ok());
  std::array<uint8_t, 32> out{};
  const ByteSpan parts[] = {ByteSpan()};
  Status status = provider().Hmac(HashAlg::kSha256, **foreign, parts, out);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "key belongs to another keystore");
}

TEST_F(keystore_Provider, RandomFromTheToken) {
  std::array<uint8_t, 64> a{};
  std::array<uint8_t, 64> b{};
  ASSERT_TRUE(provider().Random(a).ok());
  ASSERT_TRUE(provider().Random(b).ok());
  EXPECT_NE(a, b);
  EXPECT_NE(a, (std::array<uint8_t, 64>{}));
}

TEST_F(keystore_Provider, EcdsaSignaturesVerifyWithMbedTls) {
  ASSERT_TRUE(ks().GenerateKey(KeyType::kEcP256, KeyUsage::kSigning, "kms-sign", {0x99}).ok());
  Result<Bytes> point = ks().PublicKeyEcPoint(KeySelector::Label("kms-sign"));
  ASSERT_TRUE(point.ok()) << point.error().ToString();
  ASSERT_EQ(point->size(), 65u);
  EXPECT_EQ((*point)[0], 0x04);

  const std::string message = "ticket to sign";
  std::array<uint8_t, 32> digest{};
  ASSERT_EQ(mbedtls_sha256_ret(reinterpret_cast<const unsigned char*>(message.data()),
                               message.size(), digest.data(), 0),
            0);
  Result<Bytes> signature = ks().SignEcdsaP256(KeySelector::Label("kms-sign"), digest);
  ASSERT_TRUE(signature.ok()) << signature.error().ToString();
  ASSERT_EQ(signature->size(), 64u);

  mbedtls_ecp_group group;
  mbedtls_ecp_point q;
  mbedtls_mpi r;
  mbedtls_mpi s;
  mbedtls_ecp_group_init(&group);
  mbedtls_ecp_point_init(&q);
  mbedtls_mpi_init(&r);
  mbedtls_mpi_init(&s);
  ASSERT_EQ(mbedtls_ecp_group_load(&group, MBEDTLS_ECP_DP_SECP256R1), 0);
  ASSERT_EQ(mbedtls_ecp_point_read_binary(&group, &q, point->data(), point->size()), 0);
  ASSERT_EQ(mbedtls_mpi_read_binary(&r, signature->data(), 32), 0);
  ASSERT_EQ(mbedtls_mpi_read_binary(&s, signature->data() + 32, 32), 0);
  EXPECT_EQ(mbedtls_ecdsa_verify(&group, digest.data(), digest.size(), &q, &r, &s), 0);
  digest[0] ^= 1;
  EXPECT_NE(mbedtls_ecdsa_verify(&group, digest.data(), digest.size(), &q, &r, &s), 0);
  mbedtls_mpi_free(&s);
  mbedtls_mpi_free(&r);
  mbedtls_ecp_point_free(&q);
  mbedtls_ecp_group_free(&group);

  EXPECT_EQ(ks().SignEcdsaP256(KeySelector::Label("kms-sign"), ByteSpan(digest).first(20))
                .error()
                .code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tkms::keystore
