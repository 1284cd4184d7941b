#include "firmware/keystore/kms_keys.h"

#include "firmware/keystore/keystore.h"
#include "firmware/keystore/user_psk.h"

namespace tkms::keystore {

Result<std::vector<kms::TokenUser>> ListTokenUsers(Keystore& keystore) {
  auto entries = ListUserPsks(keystore);
  if (!entries.ok()) return entries.error();
  std::vector<kms::TokenUser> users;
  users.reserve(entries->size());
  for (auto& e : *entries) users.push_back(kms::TokenUser{std::move(e.psk_id), std::move(e.identities)});
  return users;
}

mikey::crypto::CryptoProvider& KeystoreKeys::provider() { return keystore_.provider(); }

Result<mikey::crypto::SecretKeyPtr> KeystoreKeys::UserPsk(ByteSpan psk_id) {
  return keystore_.FindSecretKey(KeySelector::Id(Bytes(psk_id.begin(), psk_id.end())));
}

// Sealing needs an HMAC key: a newer aes-256 ticket key never becomes the
// one tickets are sealed with (PrepareSnapshot refuses the reload that
// brings it, tkmsd/reload.cpp).
Result<uint32_t> KeystoreKeys::CurrentTicketKeyId() { return keystore_.CurrentSealingTicketKeyId(); }

Result<mikey::crypto::SecretKeyPtr> KeystoreKeys::TicketKey(uint32_t key_id) {
  return keystore_.FindTicketKey(key_id);
}

Status KeystoreKeys::Random(std::span<uint8_t> out) { return keystore_.GenerateRandom(out); }

Result<mikey::crypto::SecretKeyPtr> KeystoreKeys::DecoyPsk() { return keystore_.DecoyKey(); }

Status KeystoreKeys::Health() {
  if (healthy_.load(std::memory_order_acquire)) return Status::Ok();  // every request: no lock
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

void KeystoreKeys::ReportHealth(Status health) {
  std::lock_guard<std::mutex> lock(mu_);
  healthy_.store(health.ok(), std::memory_order_release);
  health_ = std::move(health);
}

void KeystoreKeys::OnTokenFailure(const std::string& detail) {
  std::function<void(const Status&)> listener;
  {
    std::lock_guard<std::mutex> lock(mu_);
    listener = failure_listener_;
  }
  if (listener) listener(Unavailable(detail));
}

void KeystoreKeys::SetFailureListener(std::function<void(const Status&)> listener) {
  std::lock_guard<std::mutex> lock(mu_);
  failure_listener_ = std::move(listener);
}

}  // namespace tkms::keystore
