// Keystore (firmware/keystore/keystore.h): opening, key creation policy, selectors,
// ticket-key rotation, refresh, errors, fork and threads, on a real token.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <thread>
#include <vector>

#include "firmware/base/encoding.h"
#include "tests/keystore/keystore_test_base.h"

namespace tkms::keystore {
namespace {

using mikey::crypto::HashAlg;
using test::KeystoreTestBase;
using test::KeystoreOptionsFor;
using test::OpenKeystore;
using test::SoftHsmToken;

class keystore_Keystore : public KeystoreTestBase {};

TEST_F(keystore_Keystore, OpensTheNamedToken) {
  EXPECT_EQ(ks().token().label, token_->label());
  EXPECT_TRUE(ks().token().user_pin_initialized);
  Result<std::vector<KeyInfo>> keys = ks().ListKeys();
  ASSERT_TRUE(keys.ok()) << keys.error().ToString();
  EXPECT_TRUE(keys->empty());
}

TEST_F(keystore_Keystore, TokenHoldsSecretKeyAsksTheTokenNotTheCatalogue) {
  ASSERT_TRUE(ks().RotateTicketKey(KeyType::kHmacSha256).ok());
  auto held = ks().TokenHoldsSecretKey(TicketKeyLabel(1));
  ASSERT_TRUE(held.ok()) << held.error().ToString();
  EXPECT_TRUE(*held);
  EXPECT_FALSE(*ks().TokenHoldsSecretKey(TicketKeyLabel(2)));
  // The decoy key is a session object: the token does not hold it.
  ASSERT_TRUE(ks().DecoyKey().ok());
  EXPECT_FALSE(*ks().TokenHoldsSecretKey(kDecoyKeyLabel));
  // A key destroyed behind the keystore's back (another session) is gone
  // from the token at once, before any Refresh.
  Session other = RawSession();
  pkcs11::AttributeTemplate tmpl;
  tmpl.Text(CKA_LABEL, TicketKeyLabel(1)).Bool(CKA_TOKEN, true);
  auto handles = pkcs11::FindObjects(other, tmpl, 2);
  ASSERT_TRUE(handles.ok() && handles->size() == 1);
  ASSERT_EQ(other.fns().C_DestroyObject(other.handle(), handles->front()), CKR_OK);
  EXPECT_FALSE(*ks().TokenHoldsSecretKey(TicketKeyLabel(1)));
  EXPECT_TRUE(ks().CurrentTicketKeyId().ok());  // the catalogue has not noticed
}

TEST_F(keystore_Keystore, GeneratesEveryKindWithItsPolicy) {
  ASSERT_TRUE(ks().GenerateKey(KeyType::kHmacSha256, KeyUsage::kUserPsk, "psk", {0x10}).ok());
  ASSERT_TRUE(ks().GenerateKey(KeyType::kHmacSha1, KeyUsage::kUserPsk, "psk1", {0x11}).ok());
  ASSERT_TRUE(ks().GenerateKey(KeyType::kAes256, KeyUsage::kWrapping, "kek", {0x20}).ok());
  ASSERT_TRUE(ks().GenerateKey(KeyType::kEcP256, KeyUsage::kSigning, "sig", {0x30}).ok());
  ASSERT_TRUE(ks().GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "gen", {0x40}).ok());
  Result<KeyInfo> ticket = ks().RotateTicketKey(KeyType::kAes256);
  ASSERT_TRUE(ticket.ok()) << ticket.error().ToString();

  Result<std::vector<KeyInfo>> keys = ks().ListKeys();
  ASSERT_TRUE(keys.ok()) << keys.error().ToString();
  ASSERT_EQ(keys->size(), 7u);  // the EC pair counts twice
  for (const KeyInfo& key : *keys) {
    SCOPED_TRACE(key.label + " " + std::string(KeyClassName(key.key_class)));
    const KeyAttributes& a = key.attributes;
    EXPECT_TRUE(a.token);
    EXPECT_FALSE(a.derive);
    if (key.key_class == KeyClass::kPublicKey) {
      EXPECT_EQ(key.type, KeyType::kEcP256);
      EXPECT_TRUE(a.verify);
      EXPECT_FALSE(a.encrypt || a.wrap);
      continue;
    }
    EXPECT_TRUE(a.is_private);
    EXPECT_TRUE(a.sensitive);
    EXPECT_TRUE(a.always_sensitive);
    EXPECT_FALSE(a.trusted);
    const bool is_ticket = key.label == TicketKeyLabel(1);
    EXPECT_EQ(a.extractable, is_ticket);
    EXPECT_EQ(a.never_extractable, !is_ticket);
    EXPECT_EQ(a.wrap_with_trusted, is_ticket);
    // Only the usage flags the key needs.
    const bool aes_crypt = key.label == "gen" || is_ticket;
    const bool hmac = key.label == "psk" || key.label == "psk1";
    EXPECT_EQ(a.encrypt, aes_crypt);
    EXPECT_EQ(a.decrypt, aes_crypt);
    EXPECT_EQ(a.sign, hmac || key.label == "sig");
    EXPECT_EQ(a.verify, hmac);
    EXPECT_EQ(a.wrap, key.label == "kek");
    EXPECT_EQ(a.unwrap, key.label == "kek");
  }
  auto find = [&](const std::string& label) {
    for (const KeyInfo& key : *keys) {
      if (key.label == label && key.key_class != KeyClass::kPublicKey) return key;
    }
    ADD_FAILURE() << "no " << label;
    return KeyInfo{};
  };
  EXPECT_EQ(find("psk").type, KeyType::kHmacSha256);
  EXPECT_EQ(find("psk").bits, 256u);
  EXPECT_EQ(find("psk").usage, KeyUsage::kUserPsk);
  EXPECT_EQ(find("psk").ck_key_type, "CKK_GENERIC_SECRET");
  EXPECT_EQ(find("psk1").type, KeyType::kHmacSha1);
  EXPECT_EQ(find("psk1").bits, 160u);
  EXPECT_EQ(find("kek").usage, KeyUsage::kWrapping);
  EXPECT_FALSE(find("kek").attributes.modifiable);
  EXPECT_EQ(find("sig").type, KeyType::kEcP256);
  EXPECT_EQ(find("sig").key_class, KeyClass::kPrivateKey);
  EXPECT_EQ(find("sig").usage, KeyUsage::kSigning);
  EXPECT_EQ(find(TicketKeyLabel(1)).usage, KeyUsage::kTicket);
  EXPECT_EQ(find(TicketKeyLabel(1)).ticket_key_id, 1u);
  EXPECT_EQ(find(TicketKeyLabel(1)).id, TicketKeyId(1));
  EXPECT_EQ(find("gen").ck_key_type, "CKK_AES");
}

TEST_F(keystore_Keystore, SessionCopiesForHotKeysOnly) {
  ASSERT_TRUE(ks().GenerateKey(KeyType::kHmacSha256, KeyUsage::kUserPsk, "psk", {}).ok());
  ASSERT_TRUE(ks().GenerateKey(KeyType::kAes256, KeyUsage::kWrapping, "kek", {}).ok());
  EXPECT_TRUE(ks().DescribeKey(KeySelector::Label("psk"))->session_copy);
  EXPECT_FALSE(ks().DescribeKey(KeySelector::Label("kek"))->session_copy);  // not modifiable

  keystore_.reset();  // one keystore per token per process
  KeystoreOptions options = KeystoreOptionsFor(*token_);
  options.session_copies = false;
  auto without = Keystore::Open(token_->module(), options);
  ASSERT_TRUE(without.ok()) << without.error().ToString();
  EXPECT_FALSE((*without)->DescribeKey(KeySelector::Label("psk"))->session_copy);
  auto key = (*without)->FindSecretKey(KeySelector::Label("psk"));
  ASSERT_TRUE(key.ok());
  std::array<uint8_t, 32> mac{};
  const ByteSpan parts[] = {ByteSpan()};
  EXPECT_TRUE((*without)->provider().Hmac(HashAlg::kSha256, **key, parts, mac).ok());
}

TEST_F(keystore_Keystore, RefusesInvalidCombinationsAndDuplicates) {
  EXPECT_EQ(ks().GenerateKey(KeyType::kHmacSha1, KeyUsage::kTicket, "t", {}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().GenerateKey(KeyType::kEcP256, KeyUsage::kUserPsk, "e", {}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().GenerateKey(KeyType::kAes256, KeyUsage::kSigning, "s", {}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().GenerateKey(KeyType::kHmacSha256, KeyUsage::kWrapping, "w", {}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "", {}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "x", Bytes(65)).error().code(),
            StatusCode::kInvalidArgument);
  // Ticket labels are reserved for ticket keys with the matching id.
  EXPECT_EQ(ks().GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "tkms-ticket-1", TicketKeyId(1))
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().GenerateKey(KeyType::kAes256, KeyUsage::kTicket, "tkms-ticket-1", {0x01})
                .error()
                .code(),
            StatusCode::kInvalidArgument);

  ASSERT_TRUE(ks().GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "a", {0x01}).ok());
  Result<KeyInfo> same_label = ks().GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "a", {0x02});
  ASSERT_FALSE(same_label.ok());
  EXPECT_EQ(same_label.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(same_label.error().message(), "a key labelled 'a' already exists");
  Result<KeyInfo> same_id = ks().GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "b", {0x01});
  ASSERT_FALSE(same_id.ok());
  EXPECT_EQ(same_id.error().message(), "a key with id 01 already exists");
}

TEST_F(keystore_Keystore, CounterKeyLabelIsReserved) {
  // "tkms-counter-key" is the provisioning counter's key and nothing else's,
  // and that key is generated in the token under that label only.
  Result<KeyInfo> generic = ks().GenerateKey(KeyType::kHmacSha256, KeyUsage::kGeneric, kCounterKeyLabel, {});
  ASSERT_FALSE(generic.ok());
  EXPECT_EQ(generic.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(generic.error().message().find("reserved for the provisioning counter key"), std::string::npos);
  EXPECT_EQ(ks().ImportSecret(KeyUsage::kUserPsk, kCounterKeyLabel, {}, Secret(32, 1)).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().GenerateKey(KeyType::kHmacSha256, KeyUsage::kProvisioningCounter, "counter", {}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().GenerateKey(KeyType::kAes256, KeyUsage::kProvisioningCounter, kCounterKeyLabel, {}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ks().ImportSecret(KeyUsage::kProvisioningCounter, kCounterKeyLabel, {}, Secret(32, 1)).error().code(),
      StatusCode::kInvalidArgument);
  Result<KeyInfo> counter_key =
      ks().GenerateKey(KeyType::kHmacSha256, KeyUsage::kProvisioningCounter, kCounterKeyLabel, {});
  ASSERT_TRUE(counter_key.ok()) << counter_key.error().ToString();
  EXPECT_EQ(counter_key->usage, KeyUsage::kProvisioningCounter);
  EXPECT_TRUE(counter_key->attributes.sign && !counter_key->attributes.extractable);
  EXPECT_TRUE(ks().ListKeys()->size() == 1u);
}

TEST_F(keystore_Keystore, ImportSecretChecksLengths) {
  Result<KeyInfo> psk = ks().ImportSecret(KeyUsage::kUserPsk, "psk", {0x01}, Secret(32, 1));
  ASSERT_TRUE(psk.ok()) << psk.error().ToString();
  EXPECT_EQ(psk->type, KeyType::kHmacSha256);
  EXPECT_TRUE(psk->attributes.sensitive);
  EXPECT_FALSE(psk->attributes.extractable);
  // The value once existed outside the token, and the token says so.
  EXPECT_FALSE(psk->attributes.always_sensitive);
  EXPECT_FALSE(psk->attributes.never_extractable);

  Result<KeyInfo> sha1 = ks().ImportSecret(KeyUsage::kUserPsk, "psk20", {0x02}, Secret(20, 1));
  ASSERT_TRUE(sha1.ok()) << sha1.error().ToString();
  EXPECT_EQ(sha1->type, KeyType::kHmacSha1);

  Result<KeyInfo> short_psk = ks().ImportSecret(KeyUsage::kUserPsk, "psk16", {0x03}, Secret(16, 1));
  ASSERT_FALSE(short_psk.ok());
  EXPECT_EQ(short_psk.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(short_psk.error().message(), "hmac-sha1 keys on this token are 20 to 512 bytes, got 16");
  EXPECT_EQ(ks().ImportSecret(KeyUsage::kUserPsk, "psk24", {0x04}, Secret(24, 1), KeyType::kHmacSha256)
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().ImportSecret(KeyUsage::kWrapping, "kek", {0x05}, Secret(16, 1)).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().ImportSecret(KeyUsage::kSigning, "sig", {0x06}, Secret(32, 1)).error().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(keystore_Keystore, SelectorsFindExactlyOneKey) {
  ASSERT_TRUE(ks().GenerateKey(KeyType::kHmacSha256, KeyUsage::kUserPsk, "alice", {0xa1}).ok());
  EXPECT_TRUE(ks().FindSecretKey(KeySelector::Label("alice")).ok());
  EXPECT_TRUE(ks().FindSecretKey(KeySelector::Id({0xa1})).ok());
  EXPECT_TRUE(ks().FindSecretKey(*KeySelectorFromUri("pkcs11:object=alice;id=%A1")).ok());

  Result<mikey::crypto::SecretKeyPtr> missing = ks().FindSecretKey(KeySelector::Label("bob"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.error().message(), "no secret-key with label 'bob'");
  EXPECT_EQ(ks().FindSecretKey(KeySelector{"alice", Bytes{0xa2}}).error().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(ks().FindSecretKey(KeySelector{}).error().code(), StatusCode::kInvalidArgument);
}

TEST_F(keystore_Keystore, AmbiguousSelectorsAreRefused) {
  // Two objects with one label, created behind the keystore's back.
  Session raw = RawSession();
  for (uint8_t id : {0x01, 0x02}) {
    AttributeTemplate t;
    t.Ulong(CKA_CLASS, CKO_SECRET_KEY)
        .Ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
        .Bool(CKA_TOKEN, true)
        .Bool(CKA_PRIVATE, true)
        .Bool(CKA_SENSITIVE, true)
        .Bool(CKA_EXTRACTABLE, false)
        .Bool(CKA_SIGN, true)
        .Text(CKA_LABEL, "twin")
        .Bytes(CKA_ID, Bytes{id})
        .Ulong(CKA_VALUE_LEN, 32);
    CK_MECHANISM mech{CKM_GENERIC_SECRET_KEY_GEN, nullptr, 0};
    CK_OBJECT_HANDLE h = kInvalidHandle;
    ASSERT_EQ(raw.fns().C_GenerateKey(raw.handle(), &mech, t.data(), t.size(), &h), CKR_OK);
  }
  EXPECT_EQ(ks().FindSecretKey(KeySelector::Label("twin")).error().code(), StatusCode::kNotFound);
  ASSERT_TRUE(ks().Refresh().ok());
  Result<mikey::crypto::SecretKeyPtr> twin = ks().FindSecretKey(KeySelector::Label("twin"));
  ASSERT_FALSE(twin.ok());
  EXPECT_EQ(twin.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(twin.error().message(),
            "2 keys match secret-key with label 'twin': give both label and id");
  EXPECT_EQ(ks().DestroyKey(KeySelector::Label("twin")).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ks().FindSecretKey(KeySelector{"twin", Bytes{0x02}}).ok());
  EXPECT_TRUE(ks().DestroyKey(KeySelector{"twin", Bytes{0x02}}).ok());
  EXPECT_TRUE(ks().FindSecretKey(KeySelector::Label("twin")).ok());
}

TEST_F(keystore_Keystore, UnprotectedKeysAreNotUsed) {
  Session raw = RawSession();
  struct Weak {
    const char* label;
    bool sensitive;
    bool extractable;
  };
  for (const Weak& weak : {Weak{"plain", false, false}, Weak{"exportable", true, true}}) {
    AttributeTemplate t;
    t.Ulong(CKA_CLASS, CKO_SECRET_KEY)
        .Ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
        .Bool(CKA_TOKEN, true)
        .Bool(CKA_PRIVATE, true)
        .Bool(CKA_SENSITIVE, weak.sensitive)
        .Bool(CKA_EXTRACTABLE, weak.extractable)
        .Bool(CKA_SIGN, true)
        .Text(CKA_LABEL, weak.label)
        .Ulong(CKA_VALUE_LEN, 32);
    CK_MECHANISM mech{CKM_GENERIC_SECRET_KEY_GEN, nullptr, 0};
    CK_OBJECT_HANDLE h = kInvalidHandle;
    ASSERT_EQ(raw.fns().C_GenerateKey(raw.handle(), &mech, t.data(), t.size(), &h), CKR_OK);
  }
  ASSERT_TRUE(ks().Refresh().ok());
  for (const char* label : {"plain", "exportable"}) {
    Result<mikey::crypto::SecretKeyPtr> key = ks().FindSecretKey(KeySelector::Label(label));
    ASSERT_FALSE(key.ok()) << label;
    EXPECT_EQ(key.error().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(key.error().message().find("not protected by the token"), std::string::npos);
  }
}

TEST_F(keystore_Keystore, RefreshSeesKeysFromElsewhereAndForgetsDeletedOnes) {
  Session raw = RawSession();
  AttributeTemplate t;
  t.Ulong(CKA_CLASS, CKO_SECRET_KEY)
      .Ulong(CKA_KEY_TYPE, CKK_AES)
      .Bool(CKA_TOKEN, true)
      .Bool(CKA_PRIVATE, true)
      .Bool(CKA_SENSITIVE, true)
      .Bool(CKA_EXTRACTABLE, false)
      .Bool(CKA_ENCRYPT, true)
      .Text(CKA_LABEL, "outside")
      .Ulong(CKA_VALUE_LEN, 32);
  CK_MECHANISM mech{CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE h = kInvalidHandle;
  ASSERT_EQ(raw.fns().C_GenerateKey(raw.handle(), &mech, t.data(), t.size(), &h), CKR_OK);
  EXPECT_EQ(ks().FindSecretKey(KeySelector::Label("outside")).error().code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(ks().Refresh().ok());
  Result<mikey::crypto::SecretKeyPtr> key = ks().FindSecretKey(KeySelector::Label("outside"));
  ASSERT_TRUE(key.ok()) << key.error().ToString();
  EXPECT_TRUE(ks().DescribeKey(KeySelector::Label("outside"))->session_copy);

  ASSERT_EQ(raw.fns().C_DestroyObject(raw.handle(), h), CKR_OK);
  ASSERT_TRUE(ks().Refresh().ok());
  std::array<uint8_t, 16> iv{};
  std::array<uint8_t, 16> block{};
  Status status = ks().provider().AesCtr(**key, iv, block, block);
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "key 'outside' has been destroyed");
}

TEST_F(keystore_Keystore, TicketKeyRotation) {
  Result<uint32_t> none = ks().CurrentTicketKeyId();
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), StatusCode::kNotFound);

  Result<KeyInfo> first = ks().RotateTicketKey(KeyType::kAes256);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_EQ(first->label, "tkms-ticket-1");
  EXPECT_EQ(first->id, (Bytes{0, 0, 0, 1}));
  EXPECT_EQ(*ks().CurrentTicketKeyId(), 1u);
  Result<mikey::crypto::SecretKeyPtr> old_key = ks().FindTicketKey(1);
  ASSERT_TRUE(old_key.ok());

  Result<KeyInfo> second = ks().RotateTicketKey(KeyType::kHmacSha256);
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  EXPECT_EQ(second->ticket_key_id, 2u);
  EXPECT_EQ(second->type, KeyType::kHmacSha256);
  EXPECT_EQ(*ks().CurrentTicketKeyId(), 2u);
  EXPECT_EQ(ks().RotateTicketKey(KeyType::kHmacSha1).error().code(), StatusCode::kInvalidArgument);

  // The old key still resolves and works.
  std::array<uint8_t, 16> iv{};
  std::array<uint8_t, 32> data{};
  EXPECT_TRUE(ks().FindTicketKey(1).ok());
  EXPECT_TRUE(ks().provider().AesCtr(**old_key, iv, data, data).ok());

  // The current key cannot be retired (its id would be handed out again).
  Status current = ks().DestroyKey(TicketKeySelector(2));
  EXPECT_EQ(current.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(current.message(), "ticket key 2 is current: rotate before retiring it");

  // Retiring the old one.
  ASSERT_TRUE(ks().DestroyKey(TicketKeySelector(1)).ok());
  EXPECT_EQ(ks().FindTicketKey(1).error().code(), StatusCode::kNotFound);
  EXPECT_EQ(ks().provider().AesCtr(**old_key, iv, data, data).code(), StatusCode::kNotFound);
  EXPECT_EQ(ks().DestroyKey(TicketKeySelector(1)).code(), StatusCode::kNotFound);
  EXPECT_EQ(*ks().CurrentTicketKeyId(), 2u);
  Result<KeyInfo> third = ks().RotateTicketKey(KeyType::kAes256);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->ticket_key_id, 3u);
}

TEST_F(keystore_Keystore, WrongKeyTypeForTheOperation) {
  ASSERT_TRUE(ks().GenerateKey(KeyType::kHmacSha256, KeyUsage::kUserPsk, "mac", {}).ok());
  ASSERT_TRUE(ks().GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "aes", {}).ok());
  auto mac = ks().FindSecretKey(KeySelector::Label("mac"));
  auto aes = ks().FindSecretKey(KeySelector::Label("aes"));
  ASSERT_TRUE(mac.ok() && aes.ok());
  std::array<uint8_t, 16> iv{};
  std::array<uint8_t, 16> data{};
  Status ctr = ks().provider().AesCtr(**mac, iv, data, data);
  EXPECT_EQ(ctr.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ctr.message(),
            "key 'mac' (CKK_GENERIC_SECRET) is not an AES key with CKA_ENCRYPT");
  std::array<uint8_t, 32> out{};
  const ByteSpan parts[] = {ByteSpan(data)};
  Status hmac = ks().provider().Hmac(HashAlg::kSha256, **aes, parts, out);
  EXPECT_EQ(hmac.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ks().SignEcdsaP256(KeySelector::Label("aes"), out).error().code(),
            StatusCode::kNotFound);  // no private key with that label
}

TEST_F(keystore_Keystore, WrongPinIsPermissionDeniedWithoutThePin) {
  keystore_.reset();
  KeystoreOptions options = KeystoreOptionsFor(*token_);
  const std::string wrong = "wrong-pin-7391";
  options.pin = SecretBytes(wrong.begin(), wrong.end());
  Result<std::unique_ptr<Keystore>> keystore = Keystore::Open(token_->module(), options);
  ASSERT_FALSE(keystore.ok());
  EXPECT_EQ(keystore.error().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(keystore.error().message(), "C_Login failed: CKR_PIN_INCORRECT (0xa0)");
  EXPECT_EQ(keystore.error().ToString().find(wrong), std::string::npos);
  // The right PIN still works (the failed attempt left no login behind).
  EXPECT_TRUE(OpenKeystore(*token_).ok());
}

TEST_F(keystore_Keystore, MissingTokenListsTheLabels) {
  keystore_.reset();
  KeystoreOptions options = KeystoreOptionsFor(*token_);
  options.token = "not-there";
  Result<std::unique_ptr<Keystore>> keystore = Keystore::Open(token_->module(), options);
  ASSERT_FALSE(keystore.ok());
  EXPECT_EQ(keystore.error().code(), StatusCode::kNotFound);
  EXPECT_EQ(keystore.error().message(),
            "no token labelled 'not-there' (available tokens: '" + token_->label() + "')");
}

TEST_F(keystore_Keystore, BadModulePathsAreClearErrors) {
  KeystoreOptions options = KeystoreOptionsFor(*token_);
  options.module_path = "/nonexistent/libpkcs11.so";
  Result<std::unique_ptr<Keystore>> missing = Keystore::Open(options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.error().message().find("not found"), std::string::npos);

  options.module_path = "/lib/x86_64-linux-gnu/libc.so.6";
  if (access(options.module_path.c_str(), R_OK) == 0) {
    Result<std::unique_ptr<Keystore>> libc = Keystore::Open(options);
    ASSERT_FALSE(libc.ok());
    EXPECT_EQ(libc.error().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(libc.error().message().find("is not a PKCS#11 module"), std::string::npos);
  }
  // And the real module while it is loaded already: one Module per process.
  options.module_path = token_->module_path();
  Result<std::unique_ptr<Keystore>> twice = Keystore::Open(options);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code(), StatusCode::kFailedPrecondition);
  // The keystore that is open is unaffected.
  std::array<uint8_t, 8> random{};
  EXPECT_TRUE(ks().GenerateRandom(random).ok());
}

TEST_F(keystore_Keystore, OneKeystorePerToken) {
  Result<std::unique_ptr<Keystore>> second = OpenKeystore(*token_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.error().message(), "C_Login failed: CKR_USER_ALREADY_LOGGED_IN (0x100)");
}

TEST_F(keystore_Keystore, OpenRefusesBadOptions) {
  keystore_.reset();
  KeystoreOptions options = KeystoreOptionsFor(*token_);
  options.sessions = 0;
  EXPECT_EQ(Keystore::Open(token_->module(), options).error().code(), StatusCode::kInvalidArgument);
  options = KeystoreOptionsFor(*token_);
  options.pin.clear();
  EXPECT_EQ(Keystore::Open(token_->module(), options).error().code(), StatusCode::kInvalidArgument);
  options = KeystoreOptionsFor(*token_);
  options.token = "pkcs11:token=" + token_->label();
  EXPECT_TRUE(Keystore::Open(token_->module(), options).ok());
}

TEST_F(keystore_Keystore, UseAfterForkIsRefusedInTheChild) {
  ASSERT_TRUE(ks().GenerateKey(KeyType::kHmacSha256, KeyUsage::kUserPsk, "psk", {}).ok());
  auto key = ks().FindSecretKey(KeySelector::Label("psk"));
  ASSERT_TRUE(key.ok());
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::array<uint8_t, 16> random{};
    const Status status = ks().GenerateRandom(random);
    std::array<uint8_t, 32> mac{};
    const ByteSpan parts[] = {ByteSpan(random)};
    const Status hmac = ks().provider().Hmac(HashAlg::kSha256, **key, parts, mac);
    const bool all_refused = hmac.code() == status.code() &&
                             ks().FindSecretKey(KeySelector::Label("psk")).error().code() ==
                                 status.code() &&
                             ks().ListKeys().error().code() == status.code() &&
                             status.message() ==
                                 "PKCS#11 module used after fork(): re-open the keystore in the "
                                 "child";
    _exit(all_refused ? static_cast<int>(status.code()) : 100);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), static_cast<int>(StatusCode::kFailedPrecondition));
  // The parent is unaffected.
  std::array<uint8_t, 16> random{};
  EXPECT_TRUE(ks().GenerateRandom(random).ok());
}

TEST_F(keystore_Keystore, ParallelOperationsOnPooledSessions) {
  ASSERT_TRUE(ks().ImportSecret(KeyUsage::kUserPsk, "psk", {}, Secret(32, 7)).ok());
  auto key = ks().FindSecretKey(KeySelector::Label("psk"));
  ASSERT_TRUE(key.ok());
  const std::array<uint8_t, 5> message = {'h', 'e', 'l', 'l', 'o'};
  const ByteSpan parts[] = {ByteSpan(message)};
  std::array<uint8_t, 32> expected{};
  ASSERT_TRUE(ks().provider().Hmac(HashAlg::kSha256, **key, parts, expected).ok());
  std::vector<std::thread> threads;
  std::array<int, 6> failures{};
  for (size_t t = 0; t < failures.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::array<uint8_t, 32> mac{};
        if (!ks().provider().Hmac(HashAlg::kSha256, **key, parts, mac).ok() || mac != expected) {
          ++failures[t];
        }
      }
    });
  }
  // An admin change in the middle waits for running operations.
  ASSERT_TRUE(ks().GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "during", {}).ok());
  for (std::thread& thread : threads) thread.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

TEST_F(keystore_Keystore, RandomComesFromTheToken) {
  std::array<uint8_t, 32> a{};
  std::array<uint8_t, 32> b{};
  ASSERT_TRUE(ks().GenerateRandom(a).ok());
  ASSERT_TRUE(ks().GenerateRandom(b).ok());
  EXPECT_NE(a, b);
  EXPECT_TRUE(ks().GenerateRandom(std::span<uint8_t>()).ok());
}

TEST_F(keystore_Keystore, DestroyKeyRemovesBothHalvesOfAKeyPair) {
  ASSERT_TRUE(ks().GenerateKey(KeyType::kEcP256, KeyUsage::kSigning, "sig", {0x51}).ok());
  EXPECT_EQ(ks().ListKeys()->size(), 2u);
  ASSERT_TRUE(ks().DestroyKey(KeySelector::Id({0x51})).ok());
  EXPECT_TRUE(ks().ListKeys()->empty());
  EXPECT_EQ(ks().DestroyKey(KeySelector::Label("sig")).code(), StatusCode::kNotFound);
  EXPECT_EQ(ks().DestroyKey(KeySelector{}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tkms::keystore
