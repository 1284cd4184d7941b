// User pre-shared keys on the token: how tkms stores a UE's security
// association for the PSK variants of Ticket Request / Resolve (RFC 6043
// §4.2.1.2, §4.2.3.2; TS 33.328 operator-provisioned credentials).
//
// Why: the token is the user database for PSK users, so tkmsctl (which adds
// them) and tkmsd (which serves them) must agree on one format. A user is one
// kUserPsk key object: CKK_GENERIC_SECRET (HMAC-SHA-256, 32 bytes),
// non-extractable; CKA_ID = the PSK id (16 random bytes; what a UE may send
// in IDRpsk); CKA_LABEL = "user:" followed by the user's identities separated
// by single spaces (identities are URIs: 1..255 bytes, no whitespace).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "firmware/keystore/keystore.h"

namespace tkms::keystore {

inline constexpr std::string_view kUserLabelPrefix = "user:";
inline constexpr size_t kUserPskBytes = 32;
inline constexpr size_t kUserPskIdBytes = 16;

struct UserPskEntry {
  Bytes psk_id;
  std::vector<std::string> identities;
  std::string label;
};

// 1..255 bytes, no space or control character.
Status CheckUserIdentity(std::string_view identity);
std::string UserPskLabel(const std::vector<std::string>& identities);
// The identities of a "user:" label (empty if the label is not one).
std::vector<std::string> IdentitiesFromUserLabel(std::string_view label);

// Every user PSK object on the token.
Result<std::vector<UserPskEntry>> ListUserPsks(Keystore& keystore);

// Stores `psk` (>= 32 bytes) for `identities` under a fresh random PSK id.
// Refused (kFailedPrecondition) if an identity already belongs to a user.
Result<UserPskEntry> AddUserPsk(Keystore& keystore, const std::vector<std::string>& identities,
                                const SecretBytes& psk);

}  // namespace tkms::keystore
