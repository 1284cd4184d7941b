// KeystoreKeys: the ticket service's KmsKeys (firmware/kms/keys.h) backed by
// a Keystore.
//
// Why: the KMS core sees only the KmsKeys interface (a user's PSK by PSK id,
// the ticket keys by id for rotation per RFC 6043 Appendix A, the token RNG
// and the token-backed MIKEY crypto provider), never PKCS#11 or the
// keystore's custody rules. This adapter is the one place that maps that
// interface onto the keystore: a PSK id is the CKA_ID of a user PSK object
// (user_psk.h), a ticket key id names "tkms-ticket-<id>". It lives with the
// keystore, which depends on the kms interface header only (CMake target
// tkms_kms_keys), so tkms_kms never links the keystore. Errors keep the
// keystore's codes: kUnavailable = token trouble (HTTP 503), kNotFound = no
// such key.
#pragma once

#include <cstdint>
#include <span>

#include "firmware/kms/keys.h"

namespace tkms::keystore {

class Keystore;

class KeystoreKeys final : public kms::KmsKeys {
 public:
  // `keystore` must outlive this adapter.
  explicit KeystoreKeys(Keystore& keystore) : keystore_(keystore) {}
  mikey::crypto::CryptoProvider& provider() override;
  Result<mikey::crypto::SecretKeyPtr> UserPsk(ByteSpan psk_id) override;
  Result<uint32_t> CurrentTicketKeyId() override;
  Result<mikey::crypto::SecretKeyPtr> TicketKey(uint32_t key_id) override;
  Status Random(std::span<uint8_t> out) override;

 private:
  Keystore& keystore_;
};

}  // namespace tkms::keystore
