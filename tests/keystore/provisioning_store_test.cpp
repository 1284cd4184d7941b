// The token's provisioning state (firmware/keystore/provisioning_store.h):
// the pinned anchor and the bundle version counter, against a real SoftHSM2
// token.
#include "firmware/keystore/provisioning_store.h"

#include <gtest/gtest.h>

#include <array>

#include "firmware/keystore/user_psk.h"
#include "tests/keystore/keystore_test_base.h"

namespace tkms::keystore::test {
namespace {

class keystore_ProvisioningStore : public KeystoreTestBase {};

std::array<uint8_t, 32> Tag(uint8_t b) {
  std::array<uint8_t, 32> t{};
  t.fill(b);
  return t;
}

TEST_F(keystore_ProvisioningStore, AnchorIsPinnedOnceAndNeverReplaced) {
  auto none = ReadProvisioningAnchor(ks());
  ASSERT_TRUE(none.ok()) << none.error().ToString();
  EXPECT_FALSE(none->has_value());
  const Bytes der = {0x30, 0x03, 0x02, 0x01, 0x01};  // the store does not parse it
  Status pinned = PinProvisioningAnchor(ks(), der);
  ASSERT_TRUE(pinned.ok()) << pinned.ToString();
  auto read = ReadProvisioningAnchor(ks());
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ(**read, der);
  EXPECT_EQ(PinProvisioningAnchor(ks(), Bytes{0x30, 0x00}).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(**ReadProvisioningAnchor(ks()), der);

  // A public, non-modifiable certificate object: the value cannot be changed
  // behind the keystore's back either.
  Session raw = RawSession();
  auto handles = RawFind(raw, kAnchorLabel);
  ASSERT_EQ(handles.size(), 1u);
  uint8_t other[] = {0x30, 0x00};
  CK_ATTRIBUTE value{CKA_VALUE, other, sizeof other};
  EXPECT_NE(raw.fns().C_SetAttributeValue(raw.handle(), handles[0], &value, 1), static_cast<CK_RV>(CKR_OK));
}

TEST_F(keystore_ProvisioningStore, CounterStartsAtZeroAndOnlyGoesUp) {
  TokenCounter counter(ks());
  auto start = counter.Read();
  ASSERT_TRUE(start.ok()) << start.error().ToString();
  EXPECT_EQ(start->value, 0u);
  ASSERT_TRUE(counter.Advance(3, Tag(3)).ok());
  auto now = counter.Read();
  ASSERT_TRUE(now.ok()) << now.error().ToString();
  EXPECT_EQ(now->value, 3u);
  EXPECT_EQ(now->tag, Tag(3));
  EXPECT_EQ(counter.Advance(3, Tag(4)).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(counter.Advance(2, Tag(2)).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(counter.Advance(uint64_t{1} << 40, Tag(9)).ok());
  EXPECT_EQ(counter.Read()->value, uint64_t{1} << 40);
  // Another instance (a restarted daemon) reads the same state.
  TokenCounter again(ks());
  EXPECT_EQ(again.Read()->value, uint64_t{1} << 40);
  EXPECT_EQ(again.Read()->tag, Tag(9));
}

TEST_F(keystore_ProvisioningStore, ForgedCounterIsRefused) {
  TokenCounter counter(ks());
  ASSERT_TRUE(counter.Advance(7, Tag(7)).ok());  // slot .a
  const std::string slot = std::string(kCounterLabel) + ".a";
  auto stored = ks().ReadObjectValue(TokenObjectKind::kPrivateData, slot);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  Bytes forged = **stored;
  forged[11] = 1;  // the value's last byte: 7 -> 1, MAC unchanged
  ASSERT_TRUE(ks().DestroyObject(TokenObjectKind::kPrivateData, slot).ok());
  Status created = ks().CreateObject(TokenObjectKind::kPrivateData, slot, forged);
  ASSERT_TRUE(created.ok()) << created.ToString();
  auto read = counter.Read();
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code(), StatusCode::kInternal);
  EXPECT_NE(read.error().message().find("does not authenticate"), std::string::npos);
  EXPECT_FALSE(counter.Advance(8, Tag(8)).ok());  // nothing builds on a forged state

  ASSERT_TRUE(ks().DestroyObject(TokenObjectKind::kPrivateData, slot).ok());
  ASSERT_TRUE(ks().CreateObject(TokenObjectKind::kPrivateData, slot, Bytes{1, 2, 3}).ok());
  EXPECT_EQ(counter.Read().error().code(), StatusCode::kInternal);  // malformed
}

TEST_F(keystore_ProvisioningStore, SlotsAreNotInterchangeable) {
  // A slot's MAC covers its label: copying the newer slot's bytes over the
  // older one does not authenticate.
  TokenCounter counter(ks());
  ASSERT_TRUE(counter.Advance(1, Tag(1)).ok());  // .a
  ASSERT_TRUE(counter.Advance(2, Tag(2)).ok());  // .b
  ASSERT_TRUE(counter.Advance(3, Tag(3)).ok());  // .a again (the older)
  EXPECT_EQ(counter.Read()->value, 3u);
  const std::string a = std::string(kCounterLabel) + ".a";
  const std::string b = std::string(kCounterLabel) + ".b";
  auto a_bytes = ks().ReadObjectValue(TokenObjectKind::kPrivateData, a);
  ASSERT_TRUE(a_bytes.ok() && a_bytes->has_value());
  ASSERT_TRUE(ks().DestroyObject(TokenObjectKind::kPrivateData, b).ok());
  ASSERT_TRUE(ks().CreateObject(TokenObjectKind::kPrivateData, b, **a_bytes).ok());
  EXPECT_EQ(counter.Read().error().code(), StatusCode::kInternal);
}

TEST_F(keystore_ProvisioningStore, LosingOneSlotNeverLowersBelowThePreviousValue) {
  // What a crash between destroy and create leaves: one slot gone.
  TokenCounter counter(ks());
  ASSERT_TRUE(counter.Advance(4, Tag(4)).ok());  // .a
  ASSERT_TRUE(counter.Advance(5, Tag(5)).ok());  // .b
  ASSERT_TRUE(ks().DestroyObject(TokenObjectKind::kPrivateData, std::string(kCounterLabel) + ".a").ok());
  EXPECT_EQ(counter.Read()->value, 5u);
  ASSERT_TRUE(counter.Advance(6, Tag(6)).ok());
  EXPECT_EQ(counter.Read()->value, 6u);
}

TEST_F(keystore_ProvisioningStore, CounterWithoutItsKeyIsRefused) {
  TokenCounter counter(ks());
  ASSERT_TRUE(counter.Advance(1, Tag(1)).ok());
  ASSERT_TRUE(ks().DestroyKey(KeySelector::Label(kCounterKeyLabel)).ok());
  auto read = counter.Read();
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code(), StatusCode::kInternal);
}

TEST_F(keystore_ProvisioningStore, CounterKeyStaysInTheToken) {
  TokenCounter counter(ks());
  ASSERT_TRUE(counter.Advance(1, Tag(1)).ok());
  Session raw = RawSession();
  auto handles = RawFind(raw, kCounterKeyLabel);
  ASSERT_FALSE(handles.empty());
  for (CK_OBJECT_HANDLE h : handles) EXPECT_EQ(ReadValueRv(raw, h), static_cast<CK_RV>(CKR_ATTRIBUTE_SENSITIVE));
}

// The counter's HMAC key has a user PSK's attributes (generic secret, SIGN,
// never extractable); `tkmsctl key list` once called it "user-psk". Its
// reserved label tells it apart, also on tokens where an older tkms
// generated it as a generic key.
TEST_F(keystore_ProvisioningStore, CounterKeyIsListedAsTheProvisioningCounter) {
  ASSERT_TRUE(AddUserPsk(ks(), {"sip:alice@example.org"}, Secret(32, 1)).ok());
  TokenCounter counter(ks());
  ASSERT_TRUE(counter.Advance(1, Tag(1)).ok());
  auto keys = ks().ListKeys();
  ASSERT_TRUE(keys.ok()) << keys.error().ToString();
  ASSERT_EQ(keys->size(), 2u);  // data objects are not keys
  for (const KeyInfo& key : *keys) {
    SCOPED_TRACE(key.label);
    if (key.label == kCounterKeyLabel) {
      EXPECT_EQ(key.usage, KeyUsage::kProvisioningCounter);
      EXPECT_EQ(KeyUsageName(*key.usage), "provisioning-counter");
      EXPECT_EQ(key.type, KeyType::kHmacSha256);
      EXPECT_TRUE(key.attributes.sensitive && key.attributes.never_extractable);
    } else {
      EXPECT_EQ(key.label, "user:sip:alice@example.org");
      EXPECT_EQ(key.usage, KeyUsage::kUserPsk);
    }
  }
  EXPECT_EQ(ks().DescribeKey(KeySelector::Label(kCounterKeyLabel))->usage, KeyUsage::kProvisioningCounter);
  auto users = ListUserPsks(ks());
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(users->size(), 1u);

  // A counter key made by an older tkms (the same attributes, created as a
  // generic HMAC key behind this keystore's back) is recognised too.
  ASSERT_TRUE(ks().DestroyKey(KeySelector::Label(kCounterKeyLabel)).ok());
  Session raw = RawSession();
  AttributeTemplate t;
  t.Ulong(CKA_CLASS, CKO_SECRET_KEY)
      .Ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
      .Bool(CKA_TOKEN, true)
      .Bool(CKA_PRIVATE, true)
      .Bool(CKA_SENSITIVE, true)
      .Bool(CKA_EXTRACTABLE, false)
      .Bool(CKA_SIGN, true)
      .Bool(CKA_VERIFY, true)
      .Text(CKA_LABEL, kCounterKeyLabel)
      .Ulong(CKA_VALUE_LEN, 32);
  CK_MECHANISM mech{CKM_GENERIC_SECRET_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE h = kInvalidHandle;
  ASSERT_EQ(raw.fns().C_GenerateKey(raw.handle(), &mech, t.data(), t.size(), &h), static_cast<CK_RV>(CKR_OK));
  ASSERT_TRUE(ks().Refresh().ok());
  EXPECT_EQ(ks().DescribeKey(KeySelector::Label(kCounterKeyLabel))->usage, KeyUsage::kProvisioningCounter);
}

TEST_F(keystore_ProvisioningStore, ObjectValuesAreBounded) {
  EXPECT_EQ(ks().CreateObject(TokenObjectKind::kPrivateData, "x", Bytes{}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().CreateObject(TokenObjectKind::kPrivateData, "", Bytes{1}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().CreateObject(TokenObjectKind::kPrivateData, "x", Bytes(Keystore::kMaxObjectValueBytes + 1)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().DestroyObject(TokenObjectKind::kPrivateData, "absent").code(), StatusCode::kNotFound);
  ASSERT_TRUE(ks().CreateObject(TokenObjectKind::kPrivateData, "x", Bytes{1}).ok());
  EXPECT_EQ(ks().CreateObject(TokenObjectKind::kPrivateData, "x", Bytes{2}).code(), StatusCode::kFailedPrecondition);
  // Data objects do not appear among keys.
  auto keys = ks().ListKeys();
  ASSERT_TRUE(keys.ok());
  for (const auto& key : *keys) EXPECT_NE(key.label, "x");
}

}  // namespace
}  // namespace tkms::keystore::test
