// TokenSecretKey: the crypto::SecretKey that stands for a key held in the
// token, and KeyEntry, the keystore's catalogue record behind it.
//
// Why: MIKEY code passes SecretKeys to a CryptoProvider without knowing where
// the bytes are (firmware/mikey/crypto/provider.h). For token keys the
// SecretKey is only a reference: which keystore, and which catalogue entry.
// The entry holds the PKCS#11 object handles (v2.40 §2.4 object handles are
// session-independent within one application); they are read under the
// keystore's shared lock and changed only under its exclusive lock (after an
// admin change or a re-login the same entry gets new handles; a destroyed
// key's entry is marked dead, so stale references give kNotFound instead of
// reaching another object). Internal to firmware/keystore.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

#include "firmware/keystore/key_info.h"
#include "firmware/mikey/crypto/provider.h"
#include "pkcs11/pkcs11_api.h"

namespace tkms::keystore {

class Keystore;

struct KeyEntry {
  KeyInfo info;
  CK_OBJECT_CLASS ck_class = CKO_SECRET_KEY;
  CK_KEY_TYPE ck_type = 0;
  CK_OBJECT_HANDLE token_handle = pkcs11::kInvalidHandle;
  CK_OBJECT_HANDLE op_handle = pkcs11::kInvalidHandle;  // the session copy, or token_handle
  bool live = true;        // false once destroyed or gone from the token
  bool ambiguous = false;  // another object has the same class, label and id
};

class TokenSecretKey final : public mikey::crypto::SecretKey {
 public:
  TokenSecretKey(const Keystore* owner, std::shared_ptr<const KeyEntry> entry, size_t size)
      : owner_(owner), entry_(std::move(entry)), size_(size) {}
  size_t size() const override { return size_; }
  const Keystore* owner() const { return owner_; }
  // Read under the owner's shared lock.
  const KeyEntry& entry() const { return *entry_; }

 private:
  const Keystore* owner_;
  std::shared_ptr<const KeyEntry> entry_;
  size_t size_;
};

}  // namespace tkms::keystore
