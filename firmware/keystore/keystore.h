// Keystore: every long-term secret of tkms lives in one PKCS#11 token, and
// this is the API the rest of tkms uses to create, find, use, clone and retire
// those keys. Callers get key REFERENCES (labels/ids, opaque SecretKeys),
// never object handles and never key bytes.
//
// Why: the appliance's security rests on key custody (PKCS#11 v2.40 §4.9
// secret-key attributes, Table 10 footnotes 8/11: CKA_SENSITIVE, CKA_EXTRACTABLE,
// CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_WRAP_WITH_TRUSTED). Every key
// is created here with a fixed attribute policy per usage (key_policy.h):
//
//   usage     type(s)                  token object attributes (all: CKA_TOKEN,
//                                      CKA_PRIVATE, CKA_SENSITIVE = TRUE,
//                                      CKA_DERIVE = FALSE)
//   kTicket   AES-256 | HMAC-SHA-256   ENCRYPT+DECRYPT (AES) or SIGN+VERIFY
//                                      (32-byte generic secret); EXTRACTABLE
//                                      + WRAP_WITH_TRUSTED: leaves the token
//                                      only wrapped by a CKA_TRUSTED key
//   kUserPsk  HMAC-SHA-256 (32 B) |    CKK_GENERIC_SECRET, SIGN+VERIFY only,
//             HMAC-SHA-1 (>= 20 B)     EXTRACTABLE = FALSE (never leaves)
//   kWrapping AES-256                  WRAP+UNWRAP, EXTRACTABLE = FALSE,
//                                      MODIFIABLE = FALSE
//   kSigning  EC P-256                 private: SIGN, EXTRACTABLE = FALSE,
//                                      MODIFIABLE = FALSE; public: VERIFY
//   kGeneric  AES-256 | HMAC-*         ENCRYPT+DECRYPT or SIGN+VERIFY,
//                                      EXTRACTABLE = FALSE
//   kProvisioningCounter HMAC-SHA-256  as a generic HMAC key; label reserved
//                                      ("tkms-counter-key", provisioning_store.h)
//   kTlsServer RSA-2048 (e = 65537)    private: SIGN only (no DECRYPT,
//                                      SIGN_RECOVER, UNWRAP), EXTRACTABLE =
//                                      FALSE, MODIFIABLE = FALSE; public:
//                                      VERIFY; labels "tkms-tls-..." reserved
//                                      (docs/tls.md)
//
// Keys that get session copies (ticket, PSK, generic) are CKA_MODIFIABLE =
// TRUE on the token because SoftHSM2 2.6.1 refuses C_CopyObject with
// CKA_TOKEN = FALSE from a non-modifiable object; their copies are made
// non-modifiable. PKCS#11 makes CKA_SENSITIVE, CKA_EXTRACTABLE and
// CKA_WRAP_WITH_TRUSTED one-way (§4.9 footnote 11), so modifiability only lets
// a PIN holder change usage flags, which FindSecretKey re-checks.
//
// CKA_TRUSTED can only be set by the Security Officer (SoftHSM2 2.6.1 returns
// CKR_ATTRIBUTE_READ_ONLY to the user), and an SO session cannot see or create
// private objects (CKR_USER_NOT_LOGGED_IN). So a trusted wrapping key is a
// PUBLIC object (CKA_PRIVATE = FALSE; still sensitive, non-extractable and
// non-modifiable) created in an SO session by ImportTrustedWrappingKey, with
// CKA_WRAP only (no UNWRAP, so a session without login cannot unwrap blobs
// with it). The receiving token holds the same key bytes as an ordinary
// private kWrapping key and unwraps with that. See docs/keystore.md.
//
// Speed: at Open every secret key is copied into a session object
// (CKA_TOKEN = FALSE, same protections, owned by the pinned login session)
// and operations use the copy: SoftHSM2 re-reads persistent key files per
// call, the copy is ~3x faster. Admin calls made through this Keystore update
// the copies; changes made by another process appear after Refresh().
//
// Thread-safety: every member function may be called from any thread. Crypto
// operations, lookups and listings run in parallel, each on its own pooled
// session (KeystoreOptions::sessions); admin calls (generate, import, destroy,
// rotate, refresh, the SO path) are serialised and wait for running
// operations. One Keystore per token per process (the login belongs to the
// token); one Module per library per process (share it with Open(module, ..)).
//
// fork(): every entry point fails with kFailedPrecondition in a child; the
// child must Open its own Keystore (with its own Module::Load).
//
// Errors (see pkcs11/ck_status.h): kUnavailable = token/device trouble, retry later
// (HTTP 503); kPermissionDenied = wrong/locked PIN; kNotFound = no such
// key/token; kFailedPrecondition = misconfiguration or a key that cannot do
// the operation; kInvalidArgument = bad input. No exception escapes; no
// message contains key bytes or PINs.
#pragma once

#include <chrono>
#include <functional>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "firmware/keystore/key_info.h"
#include "firmware/mikey/crypto/provider.h"
#include "firmware/pki/pk.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"

namespace tkms::keystore {

struct KeystoreOptions {
  std::string module_path;  // e.g. /usr/lib/softhsm/libsofthsm2.so
  std::string token;        // label, "serial:XYZ", or a pkcs11: URI
  SecretBytes pin;          // user PIN
  size_t sessions = 4;      // pooled sessions for operations (>= 1)
  bool session_copies = true;
  // How long an operation waits for a pooled session before failing with
  // kResourceExhausted.
  std::chrono::milliseconds session_wait{2000};
};

struct KeyEntry;
struct KeyPairTemplates;
class Catalog;
class TokenRsaSigner;
class Pkcs11CryptoProvider;
class TokenSecretKey;

class Keystore final {
 public:
  // Loads options.module_path, finds options.token, logs in, copies keys.
  //   module missing / not PKCS#11 / misconfigured  kFailedPrecondition
  //   token absent (no token with that name)        kNotFound, listing the
  //                                                 labels present
  //   device trouble, slot without token            kUnavailable (retry)
  //   wrong PIN                                     kPermissionDenied
  //                                                 "C_Login failed:
  //                                                 CKR_PIN_INCORRECT (0xa0)"
  //   token not initialised / no user PIN           kFailedPrecondition
  static Result<std::unique_ptr<Keystore>> Open(const KeystoreOptions& options);
  // Same, with an already loaded module (options.module_path is ignored).
  static Result<std::unique_ptr<Keystore>> Open(std::shared_ptr<pkcs11::Module> module,
                                                const KeystoreOptions& options);

  ~Keystore();
  Keystore(const Keystore&) = delete;
  Keystore& operator=(const Keystore&) = delete;

  const pkcs11::TokenInfo& token() const { return token_; }
  pkcs11::Module& module() const { return *module_; }

  // --- creating keys (admin; key_admin.cpp) ---
  // A new key on the token with the policy of `usage` (table above). label:
  // 1..128 bytes; id: 0..64 bytes. Refused (kFailedPrecondition) if a key
  // with the same label or the same non-empty id exists. Labels starting
  // with "tkms-ticket-" are reserved for ticket keys (TicketKeyLabel/Id), and
  // "tkms-counter-key" for the kProvisioningCounter key (kInvalidArgument).
  Result<KeyInfo> GenerateKey(KeyType type, KeyUsage usage, std::string label, Bytes id);
  // A key from known bytes (C_CreateObject; the caller's SecretBytes wipes
  // the host copy). kUserPsk / kGeneric default to HMAC-SHA-256 for >= 32
  // bytes and HMAC-SHA-1 below; the token's minimum HMAC key length applies
  // (SoftHSM2: 32 bytes for SHA-256, 20 for SHA-1). kWrapping and kTicket
  // take 32-byte AES keys (kTicket also HMAC-SHA-256). kSigning and
  // kProvisioningCounter are refused (generated in the token only).
  // Imported keys are reported by the token as not always-sensitive /
  // not never-extractable: their value once existed outside the token.
  Result<KeyInfo> ImportSecret(KeyUsage usage, std::string label, Bytes id,
                               const SecretBytes& value,
                               std::optional<KeyType> type = std::nullopt);
  // The Security Officer path: creates the CKA_TRUSTED wrap-only AES-256 key
  // (public object, see above) from `value`, logging out the user, logging in
  // as SO with `so_pin`, and logging the user back in. Running operations are
  // waited for; copies are rebuilt afterwards.
  Result<KeyInfo> ImportTrustedWrappingKey(std::string label, Bytes id, const SecretBytes& value,
                                           const SecretBytes& so_pin);

  // --- inspecting and retiring (admin; key_admin.cpp) ---
  // Every key object on the token (secret, private and public), read from
  // the token now. Attributes only; never values.
  Result<std::vector<KeyInfo>> ListKeys();
  // The catalogued key `selector` names (secret keys first, then private).
  Result<KeyInfo> DescribeKey(const KeySelector& selector);
  // Destroys the key `selector` names (both halves of an EC key pair).
  // kNotFound if none, kFailedPrecondition if it matches several keys.
  Status DestroyKey(const KeySelector& selector);
  // Re-reads the token's keys (after changes by another process).
  Status Refresh();
  // Whether the token itself (not the catalogue) holds a secret key token
  // object labelled `label`: one C_FindObjects on the token, whatever the
  // number of keys. The health probe of tkmsd's token monitor; kUnavailable
  // if the token cannot be searched.
  Result<bool> TokenHoldsSecretKey(std::string_view label);
  // Starts over with the module (Module::Reinitialize): closes every
  // session, finds the token again by its label, logs in with the PIN and
  // re-reads the keys. Keys handed out before keep naming their catalogue
  // entries, which get the new handles (or are dead if gone). Running
  // operations are waited for. The way back after the token was unreadable
  // (tkmsd's token monitor); kUnavailable while the token is still away.
  Status Reconnect();

  // --- cloning (key_cloning.cpp) ---
  // `key` wrapped with CKM_AES_KEY_WRAP (RFC 3394) under `wrapping_key` (a
  // key with CKA_WRAP; for ticket keys it must be CKA_TRUSTED, the token
  // enforces CKA_WRAP_WITH_TRUSTED with CKR_KEY_NOT_WRAPPABLE). A
  // non-extractable key (PSK) gives kFailedPrecondition.
  Result<Bytes> ExportWrapped(const KeySelector& key, const KeySelector& wrapping_key);
  // Unwraps `wrapped` with `wrapping_key` (a key with CKA_UNWRAP) into a new
  // token key with the policy of (type, usage). `wrapped` must be the RFC
  // 3394 wrapping of a 32-byte key (40 bytes): aes-256 or hmac-sha256.
  Result<KeyInfo> ImportWrapped(ByteSpan wrapped, const KeySelector& wrapping_key, KeyType type,
                                KeyUsage usage, std::string label, Bytes id);

  // --- ticket keys (ticket_keys.cpp) ---
  // Generates ticket key max(id) + 1 (1 if none), which becomes current.
  // type: kAes256 or kHmacSha256. Older ticket keys stay usable until
  // destroyed (retired) with DestroyKey(TicketKeySelector(id)).
  Result<KeyInfo> RotateTicketKey(KeyType type);
  // The highest ticket key id; kNotFound if there is none.
  Result<uint32_t> CurrentTicketKeyId();
  // The highest id of a ticket key that can seal tickets: tickets are
  // protected with keys derived by HMAC-SHA-256 from it (kms/base_ticket),
  // so an aes-256 ticket key is skipped. kNotFound if there is none.
  Result<uint32_t> CurrentSealingTicketKeyId();

  // --- using keys (keystore.cpp, token_crypto.cpp) ---
  // A SecretKey for provider() naming the secret key `selector` selects.
  // kFailedPrecondition if the key is not protected by the token (not
  // sensitive, or extractable without CKA_WRAP_WITH_TRUSTED). The key refers
  // to this Keystore and must not outlive it.
  Result<mikey::crypto::SecretKeyPtr> FindSecretKey(const KeySelector& selector);
  Result<mikey::crypto::SecretKeyPtr> FindTicketKey(uint32_t key_id) {
    return FindSecretKey(TicketKeySelector(key_id));
  }
  // The decoy key (decoy_key.cpp): a session-only HMAC-SHA-256 key like a
  // user PSK that no user holds, generated in the token at first use, for
  // the same token work on unknown users as on known ones.
  Result<mikey::crypto::SecretKeyPtr> DecoyKey();
  // The MIKEY crypto provider backed by this token (see crypto_provider.h).
  mikey::crypto::CryptoProvider& provider();

  // Fills `out` from the token's RNG (C_GenerateRandom).
  Status GenerateRandom(std::span<uint8_t> out);
  // ECDSA P-256 (CKM_ECDSA) over a SHA-256 digest computed by the caller:
  // 64 bytes r || s.
  Result<Bytes> SignEcdsaP256(const KeySelector& key, ByteSpan sha256_digest);
  // The uncompressed public point (65 bytes, 0x04 || X || Y) of an EC key.
  Result<Bytes> PublicKeyEcPoint(const KeySelector& key);

  // --- the TLS server key (tls_key.cpp, docs/tls.md) ---
  // An RSA-2048 key pair generated in the token (CKM_RSA_PKCS_KEY_PAIR_GEN)
  // with the kTlsServer policy: both halves labelled `label` (reserved
  // prefix "tkms-tls-", IsTlsKeyLabel) with one new random 8-byte CKA_ID.
  // Returns the private key's KeyInfo. kFailedPrecondition if a key with
  // that label exists; kInvalidArgument for a label without the prefix.
  Result<KeyInfo> CreateTlsKey(std::string label);
  // The public half of the TLS key `label`: modulus and public exponent
  // (big-endian, as CKA_MODULUS / CKA_PUBLIC_EXPONENT), for
  // pki::PkContext::RsaPublicKey. kNotFound if there is no such key pair;
  // kFailedPrecondition if its private half fails CheckTlsServerKey.
  struct RsaPublicKey {
    Bytes modulus;
    Bytes exponent;
  };
  Result<RsaPublicKey> TlsKeyPublic(std::string_view label);
  // A signer for pki::PkContext::RsaAlt that signs with the private TLS key
  // `label` in the token: RSASSA-PKCS1-v1_5, the DigestInfo (RFC 8017 §9.2
  // note 1) built here and signed by C_Sign with CKM_RSA_PKCS on a pooled
  // session. Thread-safe. Refused (kFailedPrecondition) unless the private
  // key passes the custody check (key_policy.h CheckTlsServerKey: RSA-2048,
  // sensitive, never extractable, sign only), which every signature
  // repeats. Like a SecretKey, the signer names the catalogue entry of the
  // key it was made for: after Reconnect it follows the key's new handle,
  // and once the key is destroyed it fails (kNotFound) rather than signing
  // with another key of the same label. Token failures (kUnavailable, e.g.
  // the device went away during a handshake) are also given to
  // `on_token_failure` (e.g. KeystoreKeys' failure listener, tkmsd's token
  // monitor) if set. The signer refers to this Keystore, which must outlive
  // it (and every PkContext holding it).
  Result<std::shared_ptr<pki::RsaSigner>> TlsSigner(
      std::string_view label, std::function<void(const Status&)> on_token_failure = nullptr);

  // --- non-key token objects (admin; token_objects.cpp) ---
  // The appliance keeps integrity-critical state that is not a key in the
  // token too: the provisioning trust anchor (a CKO_CERTIFICATE, X.509,
  // public, CKA_MODIFIABLE = FALSE) and the bundle version counter (a private
  // CKO_DATA object, so SoftHSM2 encrypts it at rest). Objects are named by
  // CKA_LABEL (1..128 bytes); two objects of one kind with the same label are
  // refused as ambiguous. Values are at most kMaxObjectValueBytes.
  static constexpr size_t kMaxObjectValueBytes = 64 * 1024;
  // The value of the object, nullopt if there is none.
  Result<std::optional<Bytes>> ReadObjectValue(TokenObjectKind kind, std::string_view label);
  // Creates the object; kFailedPrecondition if one with the label exists.
  Status CreateObject(TokenObjectKind kind, std::string_view label, ByteSpan value);
  // Destroys the object of `kind` with this label (kNotFound if none).
  // SoftHSM2 keeps CKA_VALUE of data objects read-only, so a value changes by
  // destroy + create; see TokenCounter for how that stays crash-safe.
  Status DestroyObject(TokenObjectKind kind, std::string_view label);

 private:
  friend class Pkcs11CryptoProvider;
  friend class TokenRsaSigner;

  Keystore(std::shared_ptr<pkcs11::Module> module, pkcs11::TokenInfo token, const KeystoreOptions& options,
           pkcs11::TokenLogin login);

  // Operations on token keys for Pkcs11CryptoProvider (token_crypto.cpp).
  Status TokenHmac(const TokenSecretKey& key, mikey::crypto::HashAlg alg,
                   std::span<const ByteSpan> parts, std::span<uint8_t> out);
  Status TokenAesCtr(const TokenSecretKey& key, std::span<const uint8_t, 16> iv, ByteSpan in,
                     std::span<uint8_t> out);
  // CKM_RSA_PKCS over `digest_info` with the private key `entry` (tls_key.cpp).
  Result<Bytes> TokenRsaSign(const KeyEntry& entry, ByteSpan digest_info, size_t modulus_bytes);

  // Helpers; the *Locked ones expect state_mutex_ held exclusively.
  std::shared_lock<std::shared_mutex> ReadLock() const;
  std::unique_lock<std::shared_mutex> WriteLock() const;
  Status RefreshLocked();
  // Reads the object just created on the token into the catalogue.
  Result<KeyInfo> AddObjectLocked(CK_OBJECT_HANDLE handle);
  Status CheckNewKeyLocked(const std::string& label, const Bytes& id, KeyUsage usage) const;
  Result<KeyInfo> GenerateLocked(KeyType type, KeyUsage usage, std::string label, Bytes id);
  // C_GenerateKeyPair with `templates` (key_policy.h), both halves catalogued.
  Result<KeyInfo> GenerateKeyPairLocked(CK_MECHANISM_TYPE mechanism, KeyPairTemplates templates);
  // kInvalidArgument unless `length` is within the token's HMAC key lengths.
  Status CheckHmacKeyLength(KeyType type, size_t length) const;
  // The SO path of ImportTrustedWrappingKey: logs the user out and the SO
  // in and creates the trusted wrapping key; ReturnToUserLoginLocked then
  // ends the SO session and logs the user back in, whatever happened.
  Status CreateTrustedKeyAsSoLocked(const std::string& label, const Bytes& id, const SecretBytes& value,
                                    const SecretBytes& so_pin);
  Status ReturnToUserLoginLocked();
  Status MakeDecoyLocked();

  std::shared_ptr<pkcs11::Module> module_;
  pkcs11::TokenInfo token_;
  SecretBytes pin_;  // kept to log the user back in after the SO path
  bool session_copies_;
  mutable std::mutex gate_;  // see WriteLock()
  mutable std::shared_mutex state_mutex_;
  pkcs11::TokenLogin login_;                   // exclusive lock
  std::unique_ptr<pkcs11::SessionPool> pool_;  // shared lock (the pool is thread-safe)
  std::unique_ptr<Catalog> catalog_;           // read: shared lock; write: exclusive
  std::unique_ptr<Pkcs11CryptoProvider> provider_;
  std::shared_ptr<KeyEntry> decoy_;  // see DecoyKey(); read: shared lock; made: exclusive
};

}  // namespace tkms::keystore
