// Cluster cloning: a ticket key leaves the token only wrapped with
// CKM_AES_KEY_WRAP (RFC 3394) under a CKA_TRUSTED key (PKCS#11 v2.40 §5.14
// C_WrapKey, §4.9 CKA_WRAP_WITH_TRUSTED) and arrives in a peer's token with
// the same protections (C_UnwrapKey). The procedure is in docs/keystore.md.
#include <utility>

#include "firmware/keystore/catalog.h"
#include "firmware/keystore/guarded.h"
#include "firmware/keystore/key_policy.h"
#include "firmware/keystore/keystore.h"
#include "pkcs11/attributes.h"
#include "pkcs11/ck_status.h"

namespace tkms::keystore {

using pkcs11::AttributeTemplate;
using pkcs11::FromCkRv;
using pkcs11::Session;
using pkcs11::SessionPool;

namespace {

// Why `key` cannot be wrapped by `wrapper`, or Ok.
Status CheckWrappable(const KeyEntry& key, const KeyEntry& wrapper) {
  if (!key.info.attributes.extractable) {
    return FailedPrecondition("key '" + key.info.label +
                              "' is not extractable (CKA_EXTRACTABLE false): it never leaves the token");
  }
  if (key.info.bits == 0 || (key.info.bits / 8) % 8 != 0) {
    return FailedPrecondition("key '" + key.info.label + "' is not a multiple of 8 bytes: RFC 3394 cannot wrap it");
  }
  if (wrapper.ck_type != CKK_AES || !wrapper.info.attributes.wrap) {
    return FailedPrecondition("key '" + wrapper.info.label + "' is not an AES key with CKA_WRAP");
  }
  return Status::Ok();
}

// C_WrapKey's two calls (length, then bytes).
Result<Bytes> WrapKey(Session& session, const KeyEntry& key, const KeyEntry& wrapper) {
  CK_MECHANISM mechanism{CKM_AES_KEY_WRAP, nullptr, 0};
  CK_ULONG len = 0;
  TKMS_RETURN_IF_ERROR(FromCkRv(session.fns().C_WrapKey(session.handle(), &mechanism, wrapper.token_handle,
                                                        key.token_handle, nullptr, &len),
                                "C_WrapKey"));
  Bytes wrapped(len);
  TKMS_RETURN_IF_ERROR(FromCkRv(session.fns().C_WrapKey(session.handle(), &mechanism, wrapper.token_handle,
                                                        key.token_handle, wrapped.data(), &len),
                                "C_WrapKey"));
  wrapped.resize(len);
  return wrapped;
}

}  // namespace

Result<Bytes> Keystore::ExportWrapped(const KeySelector& key, const KeySelector& wrapping_key) {
  return Guarded("Keystore::ExportWrapped", [&]() -> Result<Bytes> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<std::shared_ptr<KeyEntry>> target = catalog_->MatchOne(key, KeyClass::kSecretKey);
    if (!target.ok()) return target.error();
    Result<std::shared_ptr<KeyEntry>> wrapper = catalog_->MatchOne(wrapping_key, KeyClass::kSecretKey);
    if (!wrapper.ok()) return wrapper.error();
    TKMS_RETURN_IF_ERROR(CheckWrappable(**target, **wrapper));
    Result<SessionPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.error();
    Result<Bytes> wrapped = WrapKey(**lease, **target, **wrapper);
    if (!wrapped.ok() && pkcs11::IsRetryable(wrapped.error())) lease->Discard();
    return wrapped;
  });
}

Result<KeyInfo> Keystore::ImportWrapped(ByteSpan wrapped, const KeySelector& wrapping_key, KeyType type,
                                        KeyUsage usage, std::string label, Bytes id) {
  return Guarded("Keystore::ImportWrapped", [&]() -> Result<KeyInfo> {
    if (wrapped.size() != kUnwrappedKeyBytes + 8) {
      return InvalidArgument("a wrapped key is the RFC 3394 wrapping of a 32-byte key (40 bytes), "
                             "got " + std::to_string(wrapped.size()) + " bytes");
    }
    if (usage == KeyUsage::kProvisioningCounter) {
      return InvalidArgument("the provisioning counter key is generated in the token, never imported");
    }
    Result<Policy> policy = PolicyFor(type, usage);
    if (!policy.ok()) return policy.error();
    if (policy->value_len != kUnwrappedKeyBytes) {
      return InvalidArgument(std::string(KeyTypeName(type)) +
                             " keys are not 32 bytes: only aes-256 and hmac-sha256 keys are unwrapped");
    }
    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    TKMS_RETURN_IF_ERROR(CheckNewKeyLocked(label, id, usage));
    Result<std::shared_ptr<KeyEntry>> unwrapper = catalog_->MatchOne(wrapping_key, KeyClass::kSecretKey);
    if (!unwrapper.ok()) return unwrapper.error();
    const KeyEntry& w = **unwrapper;
    if (w.ck_type != CKK_AES || !w.info.attributes.unwrap) {
      return FailedPrecondition("key '" + w.info.label + "' is not an AES key with CKA_UNWRAP");
    }
    AttributeTemplate tmpl = SecretTemplate(*policy, label, id);
    Session& session = login_.session();
    CK_MECHANISM mechanism{CKM_AES_KEY_WRAP, nullptr, 0};
    CK_OBJECT_HANDLE handle = pkcs11::kInvalidHandle;
    TKMS_RETURN_IF_ERROR(FromCkRv(
        session.fns().C_UnwrapKey(session.handle(), &mechanism, w.token_handle, const_cast<CK_BYTE*>(wrapped.data()),
                                  static_cast<CK_ULONG>(wrapped.size()), tmpl.data(), tmpl.size(), &handle),
        "C_UnwrapKey"));
    Result<KeyInfo> info = AddObjectLocked(handle);
    if (!info.ok()) return info.error();
    if (info->bits != kUnwrappedKeyBytes * 8) {
      const Identity identity{CKO_SECRET_KEY, info->label, info->id};
      catalog_->DropCopy(identity);
      (void)session.fns().C_DestroyObject(session.handle(), handle);
      catalog_->Forget(identity);
      return InvalidArgument("the unwrapped key has " + std::to_string(info->bits / 8) +
                             " bytes, which does not fit " + std::string(KeyTypeName(type)));
    }
    return info;
  });
}

}  // namespace tkms::keystore
