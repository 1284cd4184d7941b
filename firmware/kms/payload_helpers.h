// Small helpers the ticket service's files share for MIKEY payloads: identity
// bytes as text, a URI-typed IDR payload (RFC 6043 §6.6), the TGK key types
// that key forking applies to (RFC 6043 §5.1.1), and the SPIs the KMS gives
// the keys it sends (RFC 6043 §6.2.1).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "firmware/base/secret_bytes.h"

#include "firmware/mikey/message.h"

namespace tkms::kms {

// The ID Data of an IDR payload as a string (identities are compared and
// logged as text).
inline std::string IdText(const mikey::Bytes& id_data) { return std::string(id_data.begin(), id_data.end()); }

inline mikey::IdrPayload UriIdr(mikey::IdRole role, std::string_view identity) {
  return mikey::IdrPayload{static_cast<uint8_t>(role), static_cast<uint8_t>(mikey::IdType::kUri),
                           mikey::Bytes(identity.begin(), identity.end())};
}

// TGK or TGK+SALT: the session keys that are forked (never TEK or GTGK).
inline bool IsTgk(uint8_t key_type) {
  return key_type == static_cast<uint8_t>(mikey::KeyType::kTgk) ||
         key_type == static_cast<uint8_t>(mikey::KeyType::kTgkSalt);
}

// RFC 6043 §6.2.1: "An SPI (or MKI) MUST be specified for each key". The
// ticket's MPK has a random 4-byte SPI; MPKi / MPKr(') are sent with that SPI
// followed by 0x01 / 0x02; session keys without a requested SPI get the MPK
// SPI followed by 0x10 + their index. The SPIs travel inside the ticket, so
// initiator and responder see the same SPI for the same key.
inline constexpr size_t kMpkSpiBytes = 4;
inline constexpr uint8_t kMpkiSpiSuffix = 0x01;
inline constexpr uint8_t kMpkrSpiSuffix = 0x02;
inline constexpr uint8_t kSessionKeySpiBase = 0x10;

inline mikey::KeyValidity SpiWithSuffix(const mikey::Bytes& base, uint8_t suffix) {
  mikey::KeyValidity kv;
  kv.kv_type = static_cast<uint8_t>(mikey::KvType::kSpi);
  kv.spi = base;
  kv.spi.push_back(suffix);
  return kv;
}

// An MPK (key type 6) Key data sub-payload with the SPI `base || suffix`.
inline mikey::KeyDataPayload MpkKeyData(const SecretBytes& key, const mikey::Bytes& base, uint8_t suffix) {
  return mikey::KeyDataPayload{static_cast<uint8_t>(mikey::KeyType::kMpk), key, std::nullopt,
                               SpiWithSuffix(base, suffix)};
}

}  // namespace tkms::kms
