// What the keystore says about a key: its type, its usage (the custody rules
// it was created under), its class, the attributes the token reports, and the
// names tkms reserves for its own keys (ticket keys, the provisioning counter
// key).
//
// Why: callers (tkmsd, tkmsctl, tests) inspect keys without ever seeing an
// object handle or a value; KeyInfo is that view. Usage is not a PKCS#11
// attribute: the keystore infers it from the attributes it sets per usage
// (PKCS#11 v2.40 §4.9 secret-key attributes; see key_policy.h) and from the
// reserved labels below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pkcs11/key_selector.h"

namespace tkms::keystore {

using Bytes = std::vector<uint8_t>;
using pkcs11::KeySelector;
using pkcs11::KeySelectorFromUri;

enum class KeyType : uint8_t { kAes256, kHmacSha256, kHmacSha1, kEcP256, kRsa2048 };
// kProvisioningCounter: the HMAC-SHA-256 key that authenticates the bundle
// version counter (provisioning_store.h); only ever labelled kCounterKeyLabel.
// kTlsServer: the RSA-2048 key pair of the KMS's TLS server certificate
// (docs/tls.md); only ever labelled kTlsKeyLabelPrefix + name.
enum class KeyUsage : uint8_t { kTicket, kUserPsk, kWrapping, kSigning, kGeneric, kProvisioningCounter, kTlsServer };
enum class KeyClass : uint8_t { kSecretKey, kPrivateKey, kPublicKey };
// Non-key objects the keystore stores (see Keystore::ReadObjectValue).
enum class TokenObjectKind : uint8_t { kPrivateData, kCertificate };

// "aes-256", "hmac-sha256", "hmac-sha1", "ec-p256", "rsa-2048"
std::string_view KeyTypeName(KeyType type);
// "ticket", "user-psk", "wrapping", "signing", "generic", "provisioning-counter",
// "tls-server"
std::string_view KeyUsageName(KeyUsage usage);
std::string_view KeyClassName(KeyClass key_class);  // "secret-key", "private-key", "public-key"

// Ticket-protection keys: CKA_LABEL "tkms-ticket-<id>" (decimal) and CKA_ID
// the 32-bit key id big-endian. The label prefix is reserved for them.
inline constexpr std::string_view kTicketKeyLabelPrefix = "tkms-ticket-";
std::string TicketKeyLabel(uint32_t key_id);
Bytes TicketKeyId(uint32_t key_id);
KeySelector TicketKeySelector(uint32_t key_id);
// The key id of a well-formed ticket label ("tkms-ticket-<decimal>", no
// leading zero, at most UINT32_MAX); nullopt for any other label.
std::optional<uint32_t> ParseTicketKeyLabel(std::string_view label);

// The label reserved for the provisioning counter key (KeyUsage::
// kProvisioningCounter). Generated in the token on the first counter advance.
inline constexpr const char* kCounterKeyLabel = "tkms-counter-key";
// The label of the decoy key (Keystore::DecoyKey): a session object only,
// never on the token.
inline constexpr const char* kDecoyKeyLabel = "tkms-decoy";
// TLS server keys (KeyUsage::kTlsServer): both halves of the RSA key pair
// are labelled "tkms-tls-<name>" and share one CKA_ID. The prefix is
// reserved for them, and they have no other labels. tkmsctl and tkmsd use
// kDefaultTlsKeyLabel unless told otherwise.
inline constexpr std::string_view kTlsKeyLabelPrefix = "tkms-tls-";
inline constexpr const char* kDefaultTlsKeyLabel = "tkms-tls-server";
// A label of 1..128 bytes starting with kTlsKeyLabelPrefix and longer than it.
bool IsTlsKeyLabel(std::string_view label);

// What the token says about a key object. Never a value.
struct KeyAttributes {
  bool token = false;
  bool is_private = false;
  bool modifiable = false;
  bool sensitive = false;
  bool extractable = false;
  bool always_sensitive = false;
  bool never_extractable = false;
  bool wrap_with_trusted = false;
  bool trusted = false;
  bool encrypt = false, decrypt = false, sign = false, verify = false;
  bool wrap = false, unwrap = false, derive = false;
};

struct KeyInfo {
  std::string label;
  Bytes id;
  KeyClass key_class = KeyClass::kSecretKey;
  std::optional<KeyType> type;  // nullopt: a key type tkms does not use
  std::string ck_key_type;      // "CKK_AES", "CKK_GENERIC_SECRET", "CKK_EC", ...
  size_t bits = 0;              // secret: CKA_VALUE_LEN * 8; EC: curve size; RSA: modulus
  // False when the token did not record CKA_VALUE_LEN (SoftHSM2 2.6.1 leaves
  // it 0 on keys made by C_UnwrapKey and refuses it in the unwrap template).
  // tkms then assumes 32 bytes: the only length it unwraps (ImportWrapped
  // checks the RFC 3394 blob is 40 bytes).
  bool length_reported = true;
  KeyAttributes attributes;
  // Inferred from the attributes and reserved labels: EC -> kSigning; RSA
  // labelled "tkms-tls-..." -> kTlsServer (other RSA keys: nullopt);
  // WRAP_WITH_TRUSTED with a ticket label -> kTicket; AES with WRAP/UNWRAP ->
  // kWrapping; HMAC (generic secret) non-extractable with SIGN ->
  // kProvisioningCounter if labelled kCounterKeyLabel, else kUserPsk; else
  // kGeneric. (A generic HMAC key has a PSK's attributes, so it is reported
  // as kUserPsk too: usage is not stored in the token.)
  std::optional<KeyUsage> usage;
  std::optional<uint32_t> ticket_key_id;  // for "tkms-ticket-<id>" keys
  bool session_copy = false;  // operations use a CKA_TOKEN = FALSE copy
};

}  // namespace tkms::keystore
