// KeystoreKeys: kms::KmsKeys over the keystore (the token), as tkmsd wires it.
//
// Why: the KMS core sees interfaces only (firmware/kms/keys.h); this adapter
// is where the token's keys, its RNG, a decoy key for unknown users and the
// token's health meet that interface. The health is what the token monitor
// (token_monitor.h) last saw.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <mutex>

#include "firmware/kms/keys.h"
#include "pkcs11/keystore.h"

namespace tkms::tkmsd {

class KeystoreKeys final : public kms::KmsKeys {
 public:
  explicit KeystoreKeys(pkcs11::Keystore& keystore) : keystore_(keystore) {}
  mikey::crypto::CryptoProvider& provider() override { return keystore_.provider(); }
  Result<mikey::crypto::SecretKeyPtr> UserPsk(ByteSpan psk_id) override;
  Result<mikey::crypto::SecretKeyPtr> DecoyPsk() override;
  Result<uint32_t> CurrentTicketKeyId() override { return keystore_.CurrentTicketKeyId(); }
  Result<mikey::crypto::SecretKeyPtr> TicketKey(uint32_t key_id) override { return keystore_.FindTicketKey(key_id); }
  Status Random(std::span<uint8_t> out) override { return keystore_.GenerateRandom(out); }
  Status Health() override;
  void OnTokenFailure(const std::string& detail) override;

  // What the token monitor saw last: Ok, or kUnavailable with the reason.
  void ReportHealth(Status health);
  // Who hears of token failures on the request path (the token monitor).
  void SetFailureListener(std::function<void(const Status&)> listener);

 private:
  pkcs11::Keystore& keystore_;
  std::mutex mu_;
  Status health_;
  std::function<void(const Status&)> failure_listener_;
};

}  // namespace tkms::tkmsd
