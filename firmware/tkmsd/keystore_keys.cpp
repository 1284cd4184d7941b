#include "firmware/tkmsd/keystore_keys.h"

#include <array>

namespace tkms::tkmsd {

Result<mikey::crypto::SecretKeyPtr> KeystoreKeys::UserPsk(ByteSpan psk_id) {
  return keystore_.FindSecretKey(pkcs11::KeySelector::Id(pkcs11::Bytes(psk_id.begin(), psk_id.end())));
}

Result<mikey::crypto::SecretKeyPtr> KeystoreKeys::DecoyPsk() {
  // TODO(keystore split): a session-object key in the token.
  std::array<uint8_t, 32> bytes{};
  TKMS_RETURN_IF_ERROR(keystore_.GenerateRandom(bytes));
  return keystore_.provider().ImportTransientKey(bytes);
}

Status KeystoreKeys::Health() {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
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

void KeystoreKeys::ReportHealth(Status health) {
  std::lock_guard<std::mutex> lock(mu_);
  health_ = std::move(health);
}

}  // namespace tkms::tkmsd
