// The decoy key: a session-only HMAC key of the same kind as a user PSK that
// no user holds (PKCS#11 v2.40 §5.14 C_GenerateKey with CKA_TOKEN = FALSE,
// §4.4 session objects).
//
// Why: an unknown user must cost the ticket service the same token work as
// a known user with a wrong MAC (the same PRF HMACs, in the token), so
// neither the answer nor the token's load tells a prober which users exist
// (docs/kms.md "No user enumeration"). The key is generated in the token at
// first use and never leaves it (sensitive, non-extractable, SIGN only);
// it is public (CKA_PRIVATE = FALSE) so that the user logout of the SO path
// does not destroy it, and it lives as long as the pinned login session.
#include "firmware/keystore/guarded.h"
#include "firmware/keystore/keystore.h"
#include "firmware/keystore/token_key.h"
#include "pkcs11/attributes.h"
#include "pkcs11/ck_status.h"

namespace tkms::keystore {

namespace {
constexpr CK_ULONG kDecoyBytes = 32;  // an HMAC-SHA-256 user PSK
}  // namespace

Status Keystore::MakeDecoyLocked() {
  TKMS_RETURN_IF_ERROR(module_->CheckProcess());
  pkcs11::AttributeTemplate tmpl;
  tmpl.Ulong(CKA_CLASS, CKO_SECRET_KEY)
      .Ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
      .Ulong(CKA_VALUE_LEN, kDecoyBytes)
      .Bool(CKA_TOKEN, false)
      .Bool(CKA_PRIVATE, false)
      .Bool(CKA_SENSITIVE, true)
      .Bool(CKA_EXTRACTABLE, false)
      .Bool(CKA_MODIFIABLE, false)
      .Bool(CKA_DERIVE, false)
      .Bool(CKA_SIGN, true)
      .Bool(CKA_VERIFY, false)
      .Text(CKA_LABEL, kDecoyKeyLabel);
  pkcs11::Session& session = login_.session();
  CK_MECHANISM mechanism{CKM_GENERIC_SECRET_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE handle = pkcs11::kInvalidHandle;
  TKMS_RETURN_IF_ERROR(pkcs11::FromCkRv(
      session.fns().C_GenerateKey(session.handle(), &mechanism, tmpl.data(), tmpl.size(), &handle),
      "C_GenerateKey (decoy)"));
  auto entry = std::make_shared<KeyEntry>();
  entry->info.label = std::string(kDecoyKeyLabel);
  entry->info.key_class = KeyClass::kSecretKey;
  entry->info.type = KeyType::kHmacSha256;
  entry->info.ck_key_type = "CKK_GENERIC_SECRET";
  entry->info.bits = kDecoyBytes * 8;
  entry->info.attributes.sensitive = true;
  entry->info.attributes.sign = true;
  entry->info.session_copy = true;
  entry->ck_class = CKO_SECRET_KEY;
  entry->ck_type = CKK_GENERIC_SECRET;
  entry->op_handle = handle;
  decoy_ = std::move(entry);
  return Status::Ok();
}

Result<mikey::crypto::SecretKeyPtr> Keystore::DecoyKey() {
  return Guarded("Keystore::DecoyKey", [&]() -> Result<mikey::crypto::SecretKeyPtr> {
    {
      auto lock = ReadLock();
      if (decoy_ != nullptr) {
        return mikey::crypto::SecretKeyPtr(std::make_unique<TokenSecretKey>(this, decoy_, kDecoyBytes));
      }
    }
    auto lock = WriteLock();
    if (decoy_ == nullptr) TKMS_RETURN_IF_ERROR(MakeDecoyLocked());
    return mikey::crypto::SecretKeyPtr(std::make_unique<TokenSecretKey>(this, decoy_, kDecoyBytes));
  });
}

}  // namespace tkms::keystore
