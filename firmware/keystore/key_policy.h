// The custody rules: which PKCS#11 attributes a key of each usage gets, which
// keys tkms agrees to use, how a key's usage is read back, and which names
// are reserved.
//
// Why: the appliance's security rests on key custody (PKCS#11 v2.40 §4.9
// secret-key attributes, Table 10 footnotes 8/11: CKA_SENSITIVE,
// CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE,
// CKA_WRAP_WITH_TRUSTED; §4.8 CKA_PRIVATE; §4.4 CKA_MODIFIABLE). Every template
// the keystore hands to C_GenerateKey, C_GenerateKeyPair, C_CreateObject and
// C_UnwrapKey is built here, so the table in keystore.h and docs/keystore.md
// has exactly one implementation. Internal to firmware/keystore.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "firmware/keystore/key_info.h"
#include "firmware/keystore/token_key.h"
#include "pkcs11/attributes.h"
#include "pkcs11/pkcs11_api.h"

namespace tkms::keystore {

inline constexpr size_t kMaxLabelBytes = 128;
inline constexpr size_t kMaxIdBytes = 64;
// The one key length tkms wraps and unwraps (RFC 3394 adds 8 bytes).
inline constexpr size_t kUnwrappedKeyBytes = 32;
// CKA_EC_PARAMS of P-256: DER OID 1.2.840.10045.3.1.7 (prime256v1).
inline constexpr uint8_t kP256Params[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

// The attribute policy of a secret key (see the table in keystore.h).
struct Policy {
  CK_KEY_TYPE ck_type = CKK_AES;
  CK_MECHANISM_TYPE keygen = CKM_AES_KEY_GEN;
  size_t value_len = 32;  // generated length
  bool encrypt = false, decrypt = false, sign = false, verify = false;
  bool wrap = false, unwrap = false;
  bool extractable = false, wrap_with_trusted = false, modifiable = true;
};

// The policy of a secret key of `type` created for `usage`; kInvalidArgument
// for combinations tkms does not make (e.g. an HMAC wrapping key, an EC key).
Result<Policy> PolicyFor(KeyType type, KeyUsage usage);

// The type ImportSecret uses when the caller names none: HMAC-SHA-256 for
// PSK and generic keys of at least 32 bytes (HMAC-SHA-1 below), AES-256 for
// ticket and wrapping keys; nullopt for keys that are never imported
// (signing keys, the provisioning counter key).
std::optional<KeyType> DefaultImportType(KeyUsage usage, size_t value_bytes);

// The template of a long-term secret key: CKA_TOKEN, CKA_PRIVATE,
// CKA_SENSITIVE TRUE, CKA_DERIVE FALSE, and the policy's flags.
pkcs11::AttributeTemplate SecretTemplate(const Policy& policy, const std::string& label, const Bytes& id);

// The templates of an EC P-256 signing key pair: a public VERIFY-only key and
// a private, sensitive, never-extractable, non-modifiable SIGN-only key.
struct KeyPairTemplates {
  pkcs11::AttributeTemplate public_key;
  pkcs11::AttributeTemplate private_key;
};
KeyPairTemplates SigningKeyPairTemplates(const std::string& label, const Bytes& id);

// RSA-2048 with public exponent 65537 (F4) for the TLS server key.
inline constexpr CK_ULONG kTlsKeyModulusBits = 2048;
inline constexpr uint8_t kTlsKeyPublicExponent[] = {0x01, 0x00, 0x01};
// The templates of the TLS server key pair (CKM_RSA_PKCS_KEY_PAIR_GEN): a
// public VERIFY-only key (a public object, like the EC signing key's) and a
// private, sensitive, never-extractable, non-modifiable key that can SIGN
// and nothing else (no DECRYPT, SIGN_RECOVER, UNWRAP or DERIVE).
KeyPairTemplates TlsKeyPairTemplates(const std::string& label, const Bytes& id);

// The Security Officer's trusted wrapping key: a PUBLIC (an SO session cannot
// create private objects), CKA_TRUSTED, wrap-only, sensitive, non-extractable,
// non-modifiable AES-256 key holding `value`.
pkcs11::AttributeTemplate TrustedWrappingKeyTemplate(const std::string& label, const Bytes& id,
                                                     const SecretBytes& value);

// A new key's label and id: lengths (label 1..128, id 0..64 bytes) and the
// reserved names (ticket labels for ticket keys with the matching id only;
// kCounterKeyLabel for the provisioning counter key only, and that key only
// under that label; "tkms-tls-..." labels for TLS server keys only, and those
// keys only under such labels and with a non-empty id). Uniqueness is the
// catalogue's business.
Status CheckNewKeyName(const std::string& label, const Bytes& id, KeyUsage usage);

// The usage a key was created for, read back from its attributes and label
// (see KeyInfo::usage); nullopt for objects that are not tkms keys.
std::optional<KeyUsage> InferUsage(const KeyEntry& entry);

// The secret keys tkms agrees to use: inside the token for good (private,
// sensitive, and non-extractable or extractable only wrapped by a trusted
// key). kFailedPrecondition otherwise, whoever created the key.
Status CheckProtected(const KeyEntry& entry);

// The private keys tkms agrees to sign TLS handshakes with: an RSA-2048
// private key labelled "tkms-tls-...", on the token, private, sensitive,
// never extractable and always sensitive (generated in the token), with
// CKA_SIGN and without CKA_DECRYPT, CKA_UNWRAP or CKA_DERIVE.
// kFailedPrecondition naming what is wrong otherwise, whoever created the
// key.
Status CheckTlsServerKey(const KeyEntry& private_key);

}  // namespace tkms::keystore
