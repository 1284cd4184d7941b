// KmsKeys: the long-term keys the ticket service uses, by reference.
//
// Why: the KMS logic needs exactly four things from the token: a user's PSK
// (to verify and protect that user's messages), the current ticket
// protection key and any older one by id (rotation: RFC 6043 Appendix A lets
// IDRpsk in the Ticket Data identify the TPK), the token RNG, and the crypto
// provider that runs PRF/MAC/AES with token keys inside the token. Keeping it
// to this interface lets tests count token operations and lets a future
// multi-token appliance route keys. Errors keep the keystore's codes:
// kUnavailable = token trouble (HTTP 503), kNotFound = no such key. The
// implementation over the token is keystore::KeystoreKeys
// (firmware/keystore/kms_keys.h); the KMS core never sees PKCS#11.
#pragma once

#include <cstdint>
#include <span>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/mikey/crypto/provider.h"

namespace tkms::kms {

class KmsKeys {
 public:
  virtual ~KmsKeys() = default;
  virtual mikey::crypto::CryptoProvider& provider() = 0;
  virtual Result<mikey::crypto::SecretKeyPtr> UserPsk(ByteSpan psk_id) = 0;
  virtual Result<uint32_t> CurrentTicketKeyId() = 0;
  virtual Result<mikey::crypto::SecretKeyPtr> TicketKey(uint32_t key_id) = 0;
  virtual Status Random(std::span<uint8_t> out) = 0;
};

}  // namespace tkms::kms
