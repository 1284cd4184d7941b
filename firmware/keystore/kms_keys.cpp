#include "firmware/keystore/kms_keys.h"

#include "firmware/keystore/keystore.h"

namespace tkms::keystore {

mikey::crypto::CryptoProvider& KeystoreKeys::provider() { return keystore_.provider(); }

Result<mikey::crypto::SecretKeyPtr> KeystoreKeys::UserPsk(ByteSpan psk_id) {
  return keystore_.FindSecretKey(KeySelector::Id(Bytes(psk_id.begin(), psk_id.end())));
}

Result<uint32_t> KeystoreKeys::CurrentTicketKeyId() { return keystore_.CurrentTicketKeyId(); }

Result<mikey::crypto::SecretKeyPtr> KeystoreKeys::TicketKey(uint32_t key_id) {
  return keystore_.FindTicketKey(key_id);
}

Status KeystoreKeys::Random(std::span<uint8_t> out) { return keystore_.GenerateRandom(out); }

}  // namespace tkms::keystore
