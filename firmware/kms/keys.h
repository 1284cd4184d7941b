// KmsKeys: the long-term keys and the entropy the ticket service uses, by
// reference.
//
// Why: the KMS logic needs exactly these things from the token: a user's PSK
// (to verify and protect that user's messages), a decoy key of the same kind
// (so that an unknown user costs the same token work as a known one: no
// user enumeration), the current ticket protection key and any older one by
// id (rotation: RFC 6043 Appendix A lets IDRpsk in the Ticket Data identify
// the TPK), the token RNG (hal::EntropySource), the crypto provider that runs
// PRF/MAC/AES with token keys inside the token, and whether the token can be
// used at all. Keeping it to this interface keeps PKCS#11 out of the KMS
// core, lets tests count token operations, and lets a future multi-token
// appliance route keys. Errors: kUnavailable = token trouble (HTTP 503),
// kNotFound = no such key. The implementation over the token is
// keystore::KeystoreKeys (firmware/keystore/kms_keys.h).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/mikey/crypto/provider.h"
#include "hal/entropy.h"

namespace tkms::kms {

// A user PSK object on the token, as the token's owner lists it: its CKA_ID
// and the identities it belongs to (UserDirectory::Build takes these).
struct TokenUser {
  std::vector<uint8_t> psk_id;
  std::vector<std::string> identities;
};

class KmsKeys : public hal::EntropySource {
 public:
  virtual mikey::crypto::CryptoProvider& provider() = 0;
  virtual Result<mikey::crypto::SecretKeyPtr> UserPsk(ByteSpan psk_id) = 0;
  // A token key like a user PSK (HMAC-SHA-256, 32 bytes) that belongs to no
  // user and whose value nobody knows.
  virtual Result<mikey::crypto::SecretKeyPtr> DecoyPsk() = 0;
  virtual Result<uint32_t> CurrentTicketKeyId() = 0;
  virtual Result<mikey::crypto::SecretKeyPtr> TicketKey(uint32_t key_id) = 0;
  // Ok while the token can be used; otherwise kUnavailable with the reason.
  // Cheap (the last verdict of whoever watches the token): the KMS asks it
  // before every request and for /readyz.
  virtual Status Health() = 0;
  // The KMS saw the token fail on a request (the request got 503); whoever
  // watches the token should look at once.
  virtual void OnTokenFailure(const std::string& /*detail*/) {}
};

}  // namespace tkms::kms
