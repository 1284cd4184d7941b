// Keystore administration: generating and importing keys with the policy of
// their usage (PKCS#11 v2.40 §5.14 C_GenerateKey / C_GenerateKeyPair, §5.7
// C_CreateObject), the Security Officer path for the trusted wrapping key,
// listing, describing and destroying keys (§5.7 C_DestroyObject).
#include <algorithm>
#include <tuple>
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

// ---- creating keys -----------------------------------------------------------

Result<KeyInfo> Keystore::GenerateKeyPairLocked(CK_MECHANISM_TYPE mechanism_type, KeyPairTemplates templates) {
  Session& session = login_.session();
  CK_MECHANISM mechanism{mechanism_type, nullptr, 0};
  CK_OBJECT_HANDLE pub_handle = pkcs11::kInvalidHandle;
  CK_OBJECT_HANDLE priv_handle = pkcs11::kInvalidHandle;
  TKMS_RETURN_IF_ERROR(FromCkRv(
      session.fns().C_GenerateKeyPair(session.handle(), &mechanism, templates.public_key.data(),
                                      templates.public_key.size(), templates.private_key.data(),
                                      templates.private_key.size(), &pub_handle, &priv_handle),
      "C_GenerateKeyPair"));
  Result<KeyInfo> pub_info = AddObjectLocked(pub_handle);
  if (!pub_info.ok()) return pub_info.error();
  return AddObjectLocked(priv_handle);
}

Result<KeyInfo> Keystore::GenerateLocked(KeyType type, KeyUsage usage, std::string label, Bytes id) {
  TKMS_RETURN_IF_ERROR(module_->CheckProcess());
  TKMS_RETURN_IF_ERROR(CheckNewKeyLocked(label, id, usage));
  if (usage == KeyUsage::kTlsServer || type == KeyType::kRsa2048) {
    if (usage != KeyUsage::kTlsServer || type != KeyType::kRsa2048) {
      return InvalidArgument("TLS server keys are rsa-2048 key pairs, and rsa-2048 is for TLS server keys");
    }
    return GenerateKeyPairLocked(CKM_RSA_PKCS_KEY_PAIR_GEN, TlsKeyPairTemplates(label, id));
  }
  if (usage == KeyUsage::kSigning || type == KeyType::kEcP256) {
    if (usage != KeyUsage::kSigning || type != KeyType::kEcP256) {
      return InvalidArgument("signing keys are ec-p256 key pairs, and ec-p256 is for signing");
    }
    return GenerateKeyPairLocked(CKM_EC_KEY_PAIR_GEN, SigningKeyPairTemplates(label, id));
  }
  Result<Policy> policy = PolicyFor(type, usage);
  if (!policy.ok()) return policy.error();
  AttributeTemplate tmpl = SecretTemplate(*policy, label, id);
  tmpl.Ulong(CKA_VALUE_LEN, policy->value_len);
  Session& session = login_.session();
  CK_MECHANISM mechanism{policy->keygen, nullptr, 0};
  CK_OBJECT_HANDLE handle = pkcs11::kInvalidHandle;
  TKMS_RETURN_IF_ERROR(FromCkRv(
      session.fns().C_GenerateKey(session.handle(), &mechanism, tmpl.data(), tmpl.size(), &handle),
      "C_GenerateKey"));
  return AddObjectLocked(handle);
}

Result<KeyInfo> Keystore::GenerateKey(KeyType type, KeyUsage usage, std::string label, Bytes id) {
  return Guarded("Keystore::GenerateKey", [&]() -> Result<KeyInfo> {
    auto lock = WriteLock();
    return GenerateLocked(type, usage, std::move(label), std::move(id));
  });
}

Status Keystore::CheckHmacKeyLength(KeyType type, size_t length) const {
  // The token's own limits (SoftHSM2: at least the hash length).
  const CK_MECHANISM_TYPE mech = type == KeyType::kHmacSha1 ? CKM_SHA_1_HMAC : CKM_SHA256_HMAC;
  CK_MECHANISM_INFO mi{};
  size_t min_len = 1;
  size_t max_len = 4096;
  if (module_->fns().C_GetMechanismInfo(token_.slot_id, mech, &mi) == CKR_OK) {
    min_len = std::max<size_t>(min_len, mi.ulMinKeySize);
    if (mi.ulMaxKeySize >= min_len) max_len = mi.ulMaxKeySize;
  }
  if (length < min_len || length > max_len) {
    return InvalidArgument(std::string(KeyTypeName(type)) + " keys on this token are " + std::to_string(min_len) +
                           " to " + std::to_string(max_len) + " bytes, got " + std::to_string(length));
  }
  return Status::Ok();
}

Result<KeyInfo> Keystore::ImportSecret(KeyUsage usage, std::string label, Bytes id, const SecretBytes& value,
                                       std::optional<KeyType> type) {
  return Guarded("Keystore::ImportSecret", [&]() -> Result<KeyInfo> {
    if (usage == KeyUsage::kProvisioningCounter) {
      return InvalidArgument("the provisioning counter key is generated in the token, never imported");
    }
    if (!type.has_value()) type = DefaultImportType(usage, value.size());
    if (usage == KeyUsage::kSigning || !type.has_value() || *type == KeyType::kEcP256 ||
        *type == KeyType::kRsa2048) {
      return InvalidArgument("importing EC or RSA keys is not supported; generate them in the token");
    }
    Result<Policy> policy = PolicyFor(*type, usage);
    if (!policy.ok()) return policy.error();
    if (policy->ck_type == CKK_AES && value.size() != 32) {
      return InvalidArgument("an aes-256 key is 32 bytes, got " + std::to_string(value.size()));
    }

    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    TKMS_RETURN_IF_ERROR(CheckNewKeyLocked(label, id, usage));
    if (policy->ck_type == CKK_GENERIC_SECRET) TKMS_RETURN_IF_ERROR(CheckHmacKeyLength(*type, value.size()));
    AttributeTemplate tmpl = SecretTemplate(*policy, label, id);
    tmpl.Bytes(CKA_VALUE, value);
    Session& session = login_.session();
    CK_OBJECT_HANDLE handle = pkcs11::kInvalidHandle;
    TKMS_RETURN_IF_ERROR(FromCkRv(
        session.fns().C_CreateObject(session.handle(), tmpl.data(), tmpl.size(), &handle), "C_CreateObject"));
    return AddObjectLocked(handle);
  });
}

Status Keystore::CreateTrustedKeyAsSoLocked(const std::string& label, const Bytes& id, const SecretBytes& value,
                                            const SecretBytes& so_pin) {
  // Logging out ends the user's login on every session of this process and
  // makes the token drop private session objects: drop our copies first,
  // and close idle pooled sessions (none is leased under this lock).
  catalog_->DropCopies();
  pool_->CloseIdle();
  TKMS_RETURN_IF_ERROR(login_.Logout());
  TKMS_RETURN_IF_ERROR(login_.Login(CKU_SO, so_pin));
  AttributeTemplate tmpl = TrustedWrappingKeyTemplate(label, id, value);
  CK_OBJECT_HANDLE handle = pkcs11::kInvalidHandle;
  Session& session = login_.session();
  return FromCkRv(session.fns().C_CreateObject(session.handle(), tmpl.data(), tmpl.size(), &handle),
                  "C_CreateObject");
}

Status Keystore::ReturnToUserLoginLocked() {
  if (login_.logged_in()) (void)login_.Logout();
  Status relogin = login_.Login(CKU_USER, pin_);
  if (!relogin.ok()) {
    return Unavailable("could not log the user back in after the SO session (" + relogin.message() +
                       "): re-open the keystore");
  }
  return Status::Ok();
}

Result<KeyInfo> Keystore::ImportTrustedWrappingKey(std::string label, Bytes id, const SecretBytes& value,
                                                   const SecretBytes& so_pin) {
  return Guarded("Keystore::ImportTrustedWrappingKey", [&]() -> Result<KeyInfo> {
    if (value.size() != 32) {
      return InvalidArgument("a trusted wrapping key is aes-256 (32 bytes), got " + std::to_string(value.size()));
    }
    if (so_pin.empty()) return InvalidArgument("the SO PIN is empty");
    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    TKMS_RETURN_IF_ERROR(CheckNewKeyLocked(label, id, KeyUsage::kWrapping));
    const Status created = CreateTrustedKeyAsSoLocked(label, id, value, so_pin);
    // Whatever happened, return to the user login and rebuild the catalogue.
    TKMS_RETURN_IF_ERROR(ReturnToUserLoginLocked());
    TKMS_RETURN_IF_ERROR(RefreshLocked());
    TKMS_RETURN_IF_ERROR(created);
    std::shared_ptr<KeyEntry> entry = catalog_->Find(Identity{CKO_SECRET_KEY, label, id});
    if (entry == nullptr) return Internal("the trusted key vanished");
    return entry->info;
  });
}

// ---- inspecting and retiring -------------------------------------------------

Result<bool> Keystore::TokenHoldsSecretKey(std::string_view label) {
  return Guarded("Keystore::TokenHoldsSecretKey", [&]() -> Result<bool> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<SessionPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.error();
    AttributeTemplate tmpl;
    tmpl.Ulong(CKA_CLASS, CKO_SECRET_KEY).Bool(CKA_TOKEN, true).Text(CKA_LABEL, label);
    auto found = pkcs11::FindObjects(**lease, tmpl, 1);
    if (!found.ok()) {
      lease->Discard();
      return found.error();
    }
    return !found->empty();
  });
}

Result<std::vector<KeyInfo>> Keystore::ListKeys() {
  return Guarded("Keystore::ListKeys", [&]() -> Result<std::vector<KeyInfo>> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<SessionPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.error();
    Result<std::vector<KeyEntry>> scanned = ScanToken(**lease);
    if (!scanned.ok()) {
      lease->Discard();
      return scanned.error();
    }
    std::vector<KeyInfo> keys;
    keys.reserve(scanned->size());
    for (KeyEntry& entry : *scanned) {
      if (std::shared_ptr<KeyEntry> known = catalog_->Find(IdentityOf(entry))) {
        entry.info.session_copy = known->info.session_copy;
      }
      keys.push_back(std::move(entry.info));
    }
    std::sort(keys.begin(), keys.end(), [](const KeyInfo& a, const KeyInfo& b) {
      return std::tie(a.key_class, a.label, a.id) < std::tie(b.key_class, b.label, b.id);
    });
    return keys;
  });
}

Result<KeyInfo> Keystore::DescribeKey(const KeySelector& selector) {
  return Guarded("Keystore::DescribeKey", [&]() -> Result<KeyInfo> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<std::shared_ptr<KeyEntry>> entry = catalog_->MatchOne(selector, KeyClass::kSecretKey);
    if (!entry.ok() && entry.error().code() == StatusCode::kNotFound) {
      entry = catalog_->MatchOne(selector, KeyClass::kPrivateKey);
    }
    if (!entry.ok()) return entry.error();
    return (*entry)->info;
  });
}

Status Keystore::DestroyKey(const KeySelector& selector) {
  return Guarded("Keystore::DestroyKey", [&]() -> Status {
    if (!selector.label.has_value() && !selector.id.has_value()) {
      return InvalidArgument("a key selector needs a label or an id");
    }
    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    const std::vector<std::shared_ptr<KeyEntry>> matches = catalog_->MatchAll(selector);
    if (matches.empty()) return NotFound("no key with " + selector.ToString());
    for (const auto& entry : matches) {
      if (entry->info.label != matches.front()->info.label || entry->info.id != matches.front()->info.id) {
        return FailedPrecondition("several keys match " + selector.ToString() + ": give both label and id");
      }
      if (entry->ambiguous) {
        return FailedPrecondition("several token objects are the key with " + selector.ToString() +
                                  ": remove the duplicates by hand");
      }
    }
    // Retiring the current ticket key would let RotateTicketKey hand out its
    // id again; tickets protected under the old key would then resolve to
    // the new one.
    if (Result<uint32_t> current = catalog_->CurrentTicketKeyId();
        current.ok() && matches.front()->info.ticket_key_id == *current) {
      return FailedPrecondition("ticket key " + std::to_string(*current) + " is current: rotate before retiring it");
    }
    Session& session = login_.session();
    for (const auto& entry : matches) {
      const Identity identity = IdentityOf(*entry);
      catalog_->DropCopy(identity);  // the copy first, then the token object
      const CK_RV rv = session.fns().C_DestroyObject(session.handle(), entry->token_handle);
      catalog_->Forget(identity);
      TKMS_RETURN_IF_ERROR(FromCkRv(rv, "C_DestroyObject"));
    }
    return Status::Ok();
  });
}

}  // namespace tkms::keystore
