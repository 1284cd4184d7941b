// Cluster cloning: a ticket key exported under a trusted wrapping key
// imports into a SECOND token (another SoftHSM2 token in the same token
// directory) and computes the same HMAC / AES-CTR output there. Keys that
// must never leave the token cannot be exported.
#include <gtest/gtest.h>

#include <array>

#include "tests/keystore/keystore_test_base.h"

namespace tkms::keystore {
namespace {

using mikey::crypto::HashAlg;
using test::KeystoreTestBase;
using test::OpenKeystore;
using test::SoftHsmToken;

class keystore_Clone : public KeystoreTestBase {
 protected:
  void SetUp() override {
    KeystoreTestBase::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(token_->AddToken("tkms-peer").ok());
    auto peer = OpenKeystore(*token_, "tkms-peer");
    ASSERT_TRUE(peer.ok()) << peer.error().ToString();
    peer_ = std::move(*peer);
    // The cluster KEK: key ceremony material, installed on both members.
    kek_.resize(32);
    ASSERT_TRUE(ks().GenerateRandom(kek_).ok());
    auto trusted = ks().ImportTrustedWrappingKey("kek-trusted", {0x71}, kek_, SoftHsmToken::SoPin());
    ASSERT_TRUE(trusted.ok()) << trusted.error().ToString();
    ASSERT_TRUE(peer_->ImportSecret(KeyUsage::kWrapping, "kek", {0x70}, kek_).ok());
  }
  void TearDown() override { peer_.reset(); }

  std::unique_ptr<Keystore> peer_;
  SecretBytes kek_;
};

TEST_F(keystore_Clone, TicketKeysWorkTheSameOnThePeer) {
  ASSERT_TRUE(ks().RotateTicketKey(KeyType::kAes256).ok());
  ASSERT_TRUE(ks().RotateTicketKey(KeyType::kHmacSha256).ok());
  for (uint32_t id : {1u, 2u}) {
    Result<Bytes> wrapped = ks().ExportWrapped(TicketKeySelector(id), KeySelector::Label("kek-trusted"));
    ASSERT_TRUE(wrapped.ok()) << wrapped.error().ToString();
    EXPECT_EQ(wrapped->size(), 40u);  // RFC 3394: 32 bytes + 8
    const KeyType type = id == 1 ? KeyType::kAes256 : KeyType::kHmacSha256;
    Result<KeyInfo> imported = peer_->ImportWrapped(*wrapped, KeySelector::Label("kek"), type,
                                                    KeyUsage::kTicket, TicketKeyLabel(id),
                                                    TicketKeyId(id));
    ASSERT_TRUE(imported.ok()) << imported.error().ToString();
    // Same protections on the peer: sensitive, wrapped export only.
    EXPECT_TRUE(imported->attributes.sensitive);
    EXPECT_TRUE(imported->attributes.wrap_with_trusted);
    EXPECT_TRUE(imported->attributes.is_private);
    EXPECT_EQ(imported->ticket_key_id, id);
  }
  EXPECT_EQ(*peer_->CurrentTicketKeyId(), 2u);

  auto aes_here = ks().FindTicketKey(1);
  auto aes_there = peer_->FindTicketKey(1);
  ASSERT_TRUE(aes_here.ok() && aes_there.ok());
  std::array<uint8_t, 16> iv{};
  iv[3] = 0x42;
  std::array<uint8_t, 64> plain{};
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i);
  std::array<uint8_t, 64> here{};
  std::array<uint8_t, 64> there{};
  ASSERT_TRUE(ks().provider().AesCtr(**aes_here, iv, plain, here).ok());
  ASSERT_TRUE(peer_->provider().AesCtr(**aes_there, iv, plain, there).ok());
  EXPECT_EQ(here, there);
  EXPECT_NE(here, plain);

  auto mac_here = ks().FindTicketKey(2);
  auto mac_there = peer_->FindTicketKey(2);
  ASSERT_TRUE(mac_here.ok() && mac_there.ok());
  const ByteSpan parts[] = {ByteSpan(plain), ByteSpan(iv)};
  std::array<uint8_t, 32> tag_here{};
  std::array<uint8_t, 32> tag_there{};
  ASSERT_TRUE(ks().provider().Hmac(HashAlg::kSha256, **mac_here, parts, tag_here).ok());
  ASSERT_TRUE(peer_->provider().Hmac(HashAlg::kSha256, **mac_there, parts, tag_there).ok());
  EXPECT_EQ(tag_here, tag_there);
}

TEST_F(keystore_Clone, AnUntrustedWrappingKeyIsRefusedByTheToken) {
  ASSERT_TRUE(ks().RotateTicketKey(KeyType::kAes256).ok());
  ASSERT_TRUE(ks().ImportSecret(KeyUsage::kWrapping, "kek-plain", {0x72}, kek_).ok());
  Result<Bytes> wrapped = ks().ExportWrapped(TicketKeySelector(1), KeySelector::Label("kek-plain"));
  ASSERT_FALSE(wrapped.ok());
  EXPECT_EQ(wrapped.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(wrapped.error().message(), "C_WrapKey failed: CKR_KEY_NOT_WRAPPABLE (0x69)");
}

TEST_F(keystore_Clone, NeverExtractableKeysCannotBeExported) {
  ASSERT_TRUE(ks().GenerateKey(KeyType::kHmacSha256, KeyUsage::kUserPsk, "psk", {}).ok());
  ASSERT_TRUE(ks().ImportSecret(KeyUsage::kUserPsk, "psk-imported", {}, kek_).ok());
  for (const char* label : {"psk", "psk-imported"}) {
    Result<Bytes> wrapped = ks().ExportWrapped(KeySelector::Label(label),
                                               KeySelector::Label("kek-trusted"));
    ASSERT_FALSE(wrapped.ok());
    EXPECT_EQ(wrapped.error().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(wrapped.error().message(),
              "key '" + std::string(label) +
                  "' is not extractable (CKA_EXTRACTABLE false): it never leaves the token");
  }
}

TEST_F(keystore_Clone, RefusesBadBlobsAndWrongKeys) {
  ASSERT_TRUE(ks().RotateTicketKey(KeyType::kAes256).ok());
  Result<Bytes> wrapped = ks().ExportWrapped(TicketKeySelector(1), KeySelector::Label("kek-trusted"));
  ASSERT_TRUE(wrapped.ok());
  // The trusted key wraps only; it cannot unwrap.
  EXPECT_EQ(ks().ImportWrapped(*wrapped, KeySelector::Label("kek-trusted"), KeyType::kAes256,
                               KeyUsage::kTicket, "x", {})
                .error()
                .code(),
            StatusCode::kFailedPrecondition);
  Bytes corrupted = *wrapped;
  corrupted[5] ^= 0x01;
  Result<KeyInfo> bad = peer_->ImportWrapped(corrupted, KeySelector::Label("kek"), KeyType::kAes256,
                                             KeyUsage::kTicket, "x", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("C_UnwrapKey failed"), std::string::npos);
  EXPECT_EQ(peer_->ImportWrapped(Bytes(20), KeySelector::Label("kek"), KeyType::kAes256,
                                 KeyUsage::kTicket, "x", {})
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  // An AES key does not unwrap into an HMAC key of the wrong type silently.
  EXPECT_EQ(peer_->ImportWrapped(*wrapped, KeySelector::Label("kek"), KeyType::kEcP256,
                                 KeyUsage::kSigning, "x", {})
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(peer_->ListKeys()->size(), 1u);  // only the kek
}

}  // namespace
}  // namespace tkms::keystore
