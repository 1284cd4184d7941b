// Custody: no secret tkms creates can be read out of the token, protections
// only tighten, CKA_TRUSTED is the Security Officer's, and the token itself
// enforces CKA_WRAP_WITH_TRUSTED. These checks call PKCS#11 directly, past
// the keystore, because they are about what the TOKEN allows.
#include <gtest/gtest.h>

#include "tests/keystore/keystore_test_base.h"

namespace tkms::keystore {
namespace {

using test::KeystoreTestBase;
using test::SoftHsmToken;

class keystore_Custody : public KeystoreTestBase {
 protected:
  // One key of every kind tkms creates, by every path it creates them.
  void CreateEverything() {
    ASSERT_TRUE(ks().RotateTicketKey(KeyType::kAes256).ok());
    ASSERT_TRUE(ks().RotateTicketKey(KeyType::kHmacSha256).ok());
    ASSERT_TRUE(ks().GenerateKey(KeyType::kHmacSha256, KeyUsage::kUserPsk, "psk-gen", {0x10}).ok());
    ASSERT_TRUE(ks().ImportSecret(KeyUsage::kUserPsk, "psk-imp", {0x11}, Secret(32, 3)).ok());
    ASSERT_TRUE(ks().ImportSecret(KeyUsage::kWrapping, "kek", {0x20}, Secret(32, 9)).ok());
    ASSERT_TRUE(ks().GenerateKey(KeyType::kEcP256, KeyUsage::kSigning, "sig", {0x30}).ok());
    ASSERT_TRUE(ks().GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "gen", {0x40}).ok());
    auto trusted =
        ks().ImportTrustedWrappingKey("kek-trusted", {0x21}, Secret(32, 9), SoftHsmToken::SoPin());
    ASSERT_TRUE(trusted.ok()) << trusted.error().ToString();
    auto wrapped = ks().ExportWrapped(TicketKeySelector(1), KeySelector::Label("kek-trusted"));
    ASSERT_TRUE(wrapped.ok()) << wrapped.error().ToString();
    auto unwrapped = ks().ImportWrapped(*wrapped, KeySelector::Label("kek"), KeyType::kAes256,
                                        KeyUsage::kTicket, "clone", {0x50});
    ASSERT_TRUE(unwrapped.ok()) << unwrapped.error().ToString();
  }
};

TEST_F(keystore_Custody, NoSecretValueCanBeRead) {
  ASSERT_NO_FATAL_FAILURE(CreateEverything());
  Session raw = RawSession();
  // Every secret and private key object, token objects and the keystore's
  // session copies alike.
  size_t checked = 0;
  size_t copies = 0;
  for (CK_OBJECT_CLASS cls : {CKO_SECRET_KEY, CKO_PRIVATE_KEY}) {
    AttributeTemplate tmpl;
    tmpl.Ulong(CKA_CLASS, cls);
    auto handles = FindObjects(raw, tmpl);
    ASSERT_TRUE(handles.ok());
    for (CK_OBJECT_HANDLE handle : *handles) {
      EXPECT_EQ(ReadValueRv(raw, handle), static_cast<CK_RV>(CKR_ATTRIBUTE_SENSITIVE));
      auto attributes = ReadKeyAttributes(raw, handle);
      ASSERT_TRUE(attributes.ok());
      EXPECT_EQ(attributes->sensitive, true);
      if (attributes->token == false) ++copies;
      ++checked;
    }
  }
  // 2 ticket keys + 2 PSKs + kek + EC private + gen + trusted + clone = 9
  // token objects, and session copies of the 6 modifiable secret keys.
  EXPECT_EQ(checked, 9u + 6u);
  EXPECT_EQ(copies, 6u);
}

TEST_F(keystore_Custody, ListKeysReportsTheProtections) {
  ASSERT_NO_FATAL_FAILURE(CreateEverything());
  Result<std::vector<KeyInfo>> keys = ks().ListKeys();
  ASSERT_TRUE(keys.ok());
  for (const KeyInfo& key : *keys) {
    if (key.key_class == KeyClass::kPublicKey) continue;
    SCOPED_TRACE(key.label);
    const KeyAttributes& a = key.attributes;
    EXPECT_TRUE(a.sensitive);
    EXPECT_TRUE(a.token);
    if (key.label == "kek-trusted") {
      EXPECT_TRUE(a.trusted);
      EXPECT_FALSE(a.is_private);  // created by the SO, who cannot create private objects
      EXPECT_TRUE(a.wrap);
      EXPECT_FALSE(a.unwrap);
    } else {
      EXPECT_TRUE(a.is_private);
      EXPECT_FALSE(a.trusted);
    }
    if (key.label == "tkms-ticket-1" || key.label == "tkms-ticket-2" || key.label == "clone") {
      EXPECT_TRUE(a.extractable);
      EXPECT_TRUE(a.wrap_with_trusted);
      EXPECT_FALSE(a.never_extractable);
    } else {
      EXPECT_FALSE(a.extractable);
    }
    // Generated keys never existed outside the token.
    if (key.label == "psk-gen" || key.label == "sig" || key.label == "gen") {
      EXPECT_TRUE(a.always_sensitive);
      EXPECT_TRUE(a.never_extractable);
    }
  }
}

TEST_F(keystore_Custody, TheTokenEnforcesWrapWithTrusted) {
  ASSERT_NO_FATAL_FAILURE(CreateEverything());
  Session raw = RawSession();
  const auto ticket = RawFind(raw, "tkms-ticket-1");
  const auto kek = RawFind(raw, "kek");
  const auto trusted = RawFind(raw, "kek-trusted");
  const auto psk = RawFind(raw, "psk-gen");
  ASSERT_FALSE(ticket.empty() || kek.empty() || trusted.empty() || psk.empty());
  CK_MECHANISM mech{CKM_AES_KEY_WRAP, nullptr, 0};
  uint8_t out[64];
  CK_ULONG len = sizeof(out);
  // ticket.front() may be the token object or the copy: both carry the flag.
  for (CK_OBJECT_HANDLE t : ticket) {
    len = sizeof(out);
    EXPECT_EQ(raw.fns().C_WrapKey(raw.handle(), &mech, kek.front(), t, out, &len),
              static_cast<CK_RV>(CKR_KEY_NOT_WRAPPABLE));
    len = sizeof(out);
    EXPECT_EQ(raw.fns().C_WrapKey(raw.handle(), &mech, trusted.front(), t, out, &len),
              static_cast<CK_RV>(CKR_OK));
  }
  for (CK_OBJECT_HANDLE p : psk) {
    len = sizeof(out);
    EXPECT_EQ(raw.fns().C_WrapKey(raw.handle(), &mech, trusted.front(), p, out, &len),
              static_cast<CK_RV>(CKR_KEY_UNEXTRACTABLE));
  }
}

TEST_F(keystore_Custody, ProtectionsOnlyTighten) {
  ASSERT_NO_FATAL_FAILURE(CreateEverything());
  Session raw = RawSession();
  const CK_OBJECT_HANDLE ticket = RawFind(raw, "tkms-ticket-1").front();
  const CK_OBJECT_HANDLE psk = RawFind(raw, "psk-gen").front();
  auto set = [&](CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, bool value) {
    AttributeTemplate t;
    t.Bool(type, value);
    return raw.fns().C_SetAttributeValue(raw.handle(), h, t.data(), t.size());
  };
  auto copy = [&](CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, bool value) {
    AttributeTemplate t;
    t.Bool(CKA_TOKEN, false).Bool(type, value);
    CK_OBJECT_HANDLE out = kInvalidHandle;
    const CK_RV rv = raw.fns().C_CopyObject(raw.handle(), h, t.data(), t.size(), &out);
    if (rv == CKR_OK) (void)raw.fns().C_DestroyObject(raw.handle(), out);
    return rv;
  };
  const CK_RV read_only = CKR_ATTRIBUTE_READ_ONLY;
  EXPECT_EQ(set(ticket, CKA_SENSITIVE, false), read_only);
  EXPECT_EQ(set(ticket, CKA_WRAP_WITH_TRUSTED, false), read_only);
  EXPECT_EQ(set(psk, CKA_EXTRACTABLE, true), read_only);
  EXPECT_EQ(set(psk, CKA_TRUSTED, true), read_only);
  EXPECT_EQ(copy(psk, CKA_SENSITIVE, false), read_only);
  EXPECT_EQ(copy(psk, CKA_EXTRACTABLE, true), read_only);
  EXPECT_EQ(copy(ticket, CKA_WRAP_WITH_TRUSTED, false), read_only);
  // Wrapping keys are not modifiable at all (no CKA_DECRYPT can be added to
  // decrypt wrapped blobs by hand).
  const CK_OBJECT_HANDLE kek = RawFind(raw, "kek").front();
  EXPECT_EQ(set(kek, CKA_DECRYPT, true), static_cast<CK_RV>(CKR_ACTION_PROHIBITED));
}

TEST_F(keystore_Custody, OnlyTheSecurityOfficerSetsTrusted) {
  Session raw = RawSession();
  AttributeTemplate t;
  t.Ulong(CKA_CLASS, CKO_SECRET_KEY)
      .Ulong(CKA_KEY_TYPE, CKK_AES)
      .Bool(CKA_TOKEN, false)
      .Bool(CKA_TRUSTED, true)
      .Bool(CKA_WRAP, true)
      .Bytes(CKA_VALUE, Secret(32, 1));
  CK_OBJECT_HANDLE h = kInvalidHandle;
  EXPECT_EQ(raw.fns().C_CreateObject(raw.handle(), t.data(), t.size(), &h),
            static_cast<CK_RV>(CKR_ATTRIBUTE_READ_ONLY));
}

TEST_F(keystore_Custody, WrongSoPinLeavesTheKeystoreWorking) {
  ASSERT_TRUE(ks().ImportSecret(KeyUsage::kUserPsk, "psk", {}, Secret(32, 5)).ok());
  auto key = ks().FindSecretKey(KeySelector::Label("psk"));
  ASSERT_TRUE(key.ok());
  const SecretBytes wrong_so{'n', 'o', 't', '-', 's', 'o'};
  Result<KeyInfo> trusted = ks().ImportTrustedWrappingKey("t", {}, Secret(32, 1), wrong_so);
  ASSERT_FALSE(trusted.ok());
  EXPECT_EQ(trusted.error().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(trusted.error().message(), "C_Login failed: CKR_PIN_INCORRECT (0xa0)");
  // The user is logged in again, the copies are back, the old key works.
  EXPECT_TRUE(ks().DescribeKey(KeySelector::Label("psk"))->session_copy);
  std::array<uint8_t, 32> mac{};
  const ByteSpan parts[] = {ByteSpan(mac)};
  EXPECT_TRUE(ks().provider().Hmac(mikey::crypto::HashAlg::kSha256, **key, parts, mac).ok());
  EXPECT_EQ(ks().ImportTrustedWrappingKey("t", {}, Secret(16, 1), SoftHsmToken::SoPin())
                .error()
                .code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tkms::keystore
