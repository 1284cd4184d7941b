// KeystoreKeys: the ticket service's KmsKeys (firmware/kms/keys.h) backed by
// a Keystore.
//
// Why: the KMS core sees only the KmsKeys interface (a user's PSK by PSK id,
// the decoy key for unknown users, the ticket keys by id for rotation per
// RFC 6043 Appendix A, the token RNG, the token-backed MIKEY crypto provider
// and the token's health), never PKCS#11 or the keystore's custody rules.
// The health is what the daemon's token monitor last saw
// (firmware/tkmsd/token_monitor.h); token failures the KMS meets on the
// request path go to the failure listener (the monitor). This adapter is the one place that maps that
// interface onto the keystore: a PSK id is the CKA_ID of a user PSK object
// (user_psk.h), a ticket key id names "tkms-ticket-<id>". It lives with the
// keystore, which depends on the kms interface header only (CMake target
// tkms_kms_keys), so tkms_kms never links the keystore. Errors keep the
// keystore's codes: kUnavailable = token trouble (HTTP 503), kNotFound = no
// such key.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "firmware/kms/keys.h"

namespace tkms::keystore {

class Keystore;

// The token's user PSK objects (user_psk.h) as the ticket service takes them.
Result<std::vector<kms::TokenUser>> ListTokenUsers(Keystore& keystore);

class KeystoreKeys final : public kms::KmsKeys {
 public:
  // `keystore` must outlive this adapter.
  explicit KeystoreKeys(Keystore& keystore) : keystore_(keystore) {}
  mikey::crypto::CryptoProvider& provider() override;
  Result<mikey::crypto::SecretKeyPtr> UserPsk(ByteSpan psk_id) override;
  Result<mikey::crypto::SecretKeyPtr> DecoyPsk() override;
  Result<uint32_t> CurrentTicketKeyId() override;
  Result<mikey::crypto::SecretKeyPtr> TicketKey(uint32_t key_id) override;
  Status Random(std::span<uint8_t> out) override;
  Status Health() override;
  void OnTokenFailure(const std::string& detail) override;

  // What the token monitor saw last: Ok, or kUnavailable with the reason.
  void ReportHealth(Status health);
  // Who hears of token failures on the request path (the token monitor).
  void SetFailureListener(std::function<void(const Status&)> listener);

 private:
  Keystore& keystore_;
  std::atomic<bool> healthy_{true};
  std::mutex mu_;  // health_ and failure_listener_
  Status health_;
  std::function<void(const Status&)> failure_listener_;
};

}  // namespace tkms::keystore
