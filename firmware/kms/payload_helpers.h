// Small helpers the ticket service's files share for MIKEY payloads: identity
// bytes as text, a URI-typed IDR payload (RFC 6043 §6.6), and the TGK key
// types that key forking applies to (RFC 6043 §5.1.1).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

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

}  // namespace tkms::kms
