// KeystoreTestBase: a GoogleTest fixture with a fresh SoftHSM2 token and a
// Keystore open on it, plus raw-PKCS#11 helpers for checks that must bypass
// the keystore (custody: reading CKA_VALUE, wrapping by hand).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "firmware/keystore/keystore.h"
#include "pkcs11/attributes.h"
#include "pkcs11/session.h"
#include "tests/keystore/keystore_fixture.h"
#include "tests/pkcs11/softhsm_fixture.h"

namespace tkms::keystore {

// The keystore's tests reach past the keystore to the token itself.
using pkcs11::AttributeTemplate;
using pkcs11::FindObjects;
using pkcs11::kInvalidHandle;
using pkcs11::ReadKeyAttributes;
using pkcs11::Session;

namespace test {

class KeystoreTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    auto token = SoftHsmToken::Create();
    ASSERT_TRUE(token.ok()) << token.error().ToString();
    token_ = std::move(*token);
    auto keystore = OpenKeystore(*token_);
    ASSERT_TRUE(keystore.ok()) << keystore.error().ToString();
    keystore_ = std::move(*keystore);
  }

  Keystore& ks() { return *keystore_; }

  // A raw session on the keystore's token (logged in: the login belongs to
  // the token and the keystore holds it).
  Session RawSession() {
    Result<Session> session = Session::Open(token_->module(), keystore_->token().slot_id);
    EXPECT_TRUE(session.ok()) << session.error().ToString();
    return session.ok() ? std::move(*session) : Session();
  }

  // Raw handles of the objects with this label (token and session objects).
  std::vector<CK_OBJECT_HANDLE> RawFind(Session& session, const std::string& label) {
    AttributeTemplate tmpl;
    tmpl.Text(CKA_LABEL, label);
    auto handles = FindObjects(session, tmpl);
    EXPECT_TRUE(handles.ok());
    return handles.ok() ? *handles : std::vector<CK_OBJECT_HANDLE>{};
  }

  // The CK_RV of reading CKA_VALUE of `object`.
  CK_RV ReadValueRv(Session& session, CK_OBJECT_HANDLE object) {
    uint8_t buffer[512];
    CK_ATTRIBUTE attribute{CKA_VALUE, buffer, sizeof(buffer)};
    return session.fns().C_GetAttributeValue(session.handle(), object, &attribute, 1);
  }

  static SecretBytes Secret(size_t n, uint8_t start) {
    SecretBytes out(n);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(start + i);
    return out;
  }

  std::unique_ptr<SoftHsmToken> token_;
  std::unique_ptr<Keystore> keystore_;
};

}  // namespace test
}  // namespace tkms::keystore
