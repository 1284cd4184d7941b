// Tokens: listing, finding and initialising PKCS#11 tokens (v2.40 §5.5
// C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo, C_InitToken, C_InitPIN;
// RFC 7512 token attributes).
//
// Why: the keystore is configured with a token name, not a slot number (slot
// ids are not stable: SoftHSM2 derives them from the token serial, real HSMs
// renumber on hot-plug). FindToken accepts a label, "serial:<serial>", or a
// PKCS#11 URI and says which tokens exist when nothing matches.
//
// InitToken creates a token without putting a PIN on any command line (never
// run softhsm2-util or pkcs11-tool with --pin in production): it initialises
// the first slot whose token is not initialised (SoftHSM2 always offers one)
// with C_InitToken, then logs in as SO and sets the user PIN with C_InitPIN.
//
// Errors that tell "try again later" from "misconfigured":
//   kUnavailable   the module reports the device or token gone/failing, or a
//                  URI's slot-id names a slot that exists but holds no token
//   kNotFound      no present token matches (the message lists the labels
//                  of the tokens that do exist)
//   kFailedPrecondition  more than one token matches, or the spec is not
//                  usable (a URI that names an object, a bad serial: prefix)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "pkcs11/module.h"
#include "pkcs11/pkcs11_api.h"
#include "pkcs11/uri.h"

namespace tkms::pkcs11 {

struct TokenInfo {
  CK_SLOT_ID slot_id = 0;
  std::string label;
  std::string serial;
  std::string manufacturer;
  std::string model;
  std::string slot_description;
  std::string slot_manufacturer;
  bool initialized = false;           // CKF_TOKEN_INITIALIZED
  bool user_pin_initialized = false;  // CKF_USER_PIN_INITIALIZED
  bool login_required = false;        // CKF_LOGIN_REQUIRED
  bool has_rng = false;               // CKF_RNG
  bool write_protected = false;       // CKF_WRITE_PROTECTED
  bool user_pin_locked = false;       // CKF_USER_PIN_LOCKED
  bool so_pin_locked = false;         // CKF_SO_PIN_LOCKED
  size_t min_pin_len = 0;             // ulMinPinLen / ulMaxPinLen
  size_t max_pin_len = 0;
  // Memory in bytes, when the token reports it (nullopt for
  // CK_UNAVAILABLE_INFORMATION; CK_EFFECTIVELY_INFINITE is reported as 0).
  std::optional<uint64_t> free_public_memory, total_public_memory;
  std::optional<uint64_t> free_private_memory, total_private_memory;
};

// Every slot with a token present, in the module's slot order.
Result<std::vector<TokenInfo>> ListTokens(Module& module);

// The one token named by `spec`: a label ("tkms"), "serial:<serial>", or a
// PKCS#11 URI ("pkcs11:token=tkms;serial=..."; token, manufacturer, serial,
// model, slot-* and library-* attributes are matched; object, id and type are
// refused, query attributes ignored). See the error table above.
Result<TokenInfo> FindToken(Module& module, std::string_view spec);

// True if `token` (from `module`) satisfies every token/slot/library
// attribute present in `uri`.
bool TokenMatchesUri(const Module& module, const TokenInfo& token, const Pkcs11Uri& uri);

// Initialises a new token labelled `label` (1..32 bytes) in the first slot
// whose token is not initialised, with SO PIN `so_pin`, then sets the user
// PIN. kFailedPrecondition if a token with this label already exists or no
// uninitialised token is offered; kInvalidArgument for a PIN outside the
// token's ulMinPinLen..ulMaxPinLen (checked first: SoftHSM2 answers a short
// SO PIN with CKR_PIN_INCORRECT) or refused as CKR_PIN_LEN_RANGE /
// CKR_PIN_INVALID.
Status InitToken(Module& module, std::string_view label, const SecretBytes& so_pin,
                 const SecretBytes& user_pin);

}  // namespace tkms::pkcs11
