// tkmsctl's token, key and user administration (docs/tkmsctl.md):
//   tkmsctl token init | status
//   tkmsctl key generate | list | destroy | rotate | export-wrapped |
//               import-wrapped | import-wrapping-key
//   tkmsctl user add | list | remove
//   tkmsctl tls key create | show, tls csr   (the TLS server key, docs/tls.md)
//
// Why: operators create and inspect the appliance's long-term secrets only
// through the keystore (firmware/keystore/keystore.h), so every key tkmsctl
// creates gets the custody attributes of its usage and no value ever leaves
// the token (cloning: wrapped under a trusted wrapping key). PINs come from
// files or environment variables (secret_files.h), never argv. A user is one PSK
// object: CKK_GENERIC_SECRET, non-extractable, CKA_ID = its PSK id (16 random
// bytes, what a UE may send in IDRpsk), CKA_LABEL = "user:" followed by its
// identities separated by spaces (URIs contain no spaces). The UE's copy of a
// generated PSK is the only secret written to a file (hex, mode 0600).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tools/tkmsctl/mikey_command.h"

namespace tkms::tkmsctl {

// Where the token is and how to log in; shared by every keystore command.
struct KeystoreCommandOptions {
  std::string module_path;               // --module; default DefaultModulePath()
  std::optional<std::string> state_dir;  // --state-dir: SoftHSM2 state (DIR/softhsm2.conf)
  std::string token = "tkms";            // --token: label, serial:X, or pkcs11: URI
  std::optional<std::string> pin_file;   // --pin-file; else $TKMS_PIN
  bool json = false;                     // --json for list/status output
};

// $TKMS_PKCS11_MODULE, or Debian's SoftHSM2 module.
std::string DefaultModulePath();

// The SoftHSM2 configuration file of a state directory.
std::string SoftHsmConfPath(const std::string& state_dir);

struct TokenInitOptions {
  std::string label = "tkms";
  std::optional<std::string> so_pin_file;  // else $TKMS_SO_PIN
  // With --state-dir: generate both PINs and write DIR/token.pin and
  // DIR/so.pin (mode 0600) instead of reading them.
  bool generate_pins = false;
  // Pin this certificate (PEM or DER, a CA) as the provisioning trust anchor
  // that signed configuration bundles are verified against (docs/bundles.md).
  std::optional<std::string> provisioning_anchor;
};

CommandOutput RunTokenInit(const KeystoreCommandOptions& ks, const TokenInitOptions& init);
CommandOutput RunTokenStatus(const KeystoreCommandOptions& ks);
// The token's provisioning anchor (docs/bundles.md): shown, or pinned from
// `pin_file` if the token pins none yet.
CommandOutput RunTokenAnchor(const KeystoreCommandOptions& ks, const std::optional<std::string>& pin_file);

struct KeyGenerateOptions {
  std::string type;   // aes256 | hmac-sha256 | ec-p256
  std::string usage;  // ticket | wrapping | signing | generic ("" = by type)
  std::string label;
  std::string id_hex;
};
CommandOutput RunKeyGenerate(const KeystoreCommandOptions& ks, const KeyGenerateOptions& key);
CommandOutput RunKeyList(const KeystoreCommandOptions& ks);
// `key` is a label, a pkcs11:object=...;id=... URI, or "id:HEX".
CommandOutput RunKeyDestroy(const KeystoreCommandOptions& ks, const std::string& key);
CommandOutput RunKeyRotate(const KeystoreCommandOptions& ks, const std::string& type);
CommandOutput RunKeyExportWrapped(const KeystoreCommandOptions& ks, const std::string& key,
                                  const std::string& wrapping_key, const std::string& out_file);
struct KeyImportWrappedOptions {
  std::string in_file;
  std::string wrapping_key;
  std::string type;   // aes256 | hmac-sha256
  std::string usage;  // ticket (default) | generic
  std::string label;
  std::string id_hex;
};
CommandOutput RunKeyImportWrapped(const KeystoreCommandOptions& ks, const KeyImportWrappedOptions& in);
struct WrappingKeyImportOptions {
  std::string label;
  std::string id_hex;
  std::string value_file;                  // hex, mode 0600 (key ceremony component)
  bool trusted = false;                    // wrap-only CKA_TRUSTED key (SO)
  std::optional<std::string> so_pin_file;  // else $TKMS_SO_PIN
};
CommandOutput RunKeyImportWrappingKey(const KeystoreCommandOptions& ks,
                                      const WrappingKeyImportOptions& in);

struct UserAddOptions {
  std::vector<std::string> ids;           // --id, one or more identity URIs
  std::optional<std::string> psk_out;     // generate; write the UE's copy here
  std::optional<std::string> psk_file;    // import this hex PSK
};
CommandOutput RunUserAdd(const KeystoreCommandOptions& ks, const UserAddOptions& user);
CommandOutput RunUserList(const KeystoreCommandOptions& ks);
// `who` is an identity URI or "psk:HEX" (the PSK id).
CommandOutput RunUserRemove(const KeystoreCommandOptions& ks, const std::string& who);

// The KMS's TLS server key (docs/tls.md): an RSA-2048 key pair made in the
// token (labels "tkms-tls-...", reserved), its public key as PEM, and a
// PKCS#10 request the token signs (SHA-256, subjectAltName dNSNames).
struct TlsKeyOptions {
  std::string label;  // default keystore::kDefaultTlsKeyLabel
};
// Creates the key pair; prints the public key PEM (stdout) and a summary
// (stderr). Refused if a key with the label exists.
CommandOutput RunTlsKeyCreate(const KeystoreCommandOptions& ks, const TlsKeyOptions& key);
// Prints the public key PEM of an existing TLS key.
CommandOutput RunTlsKeyShow(const KeystoreCommandOptions& ks, const TlsKeyOptions& key);
struct TlsCsrOptions {
  std::string label;                   // default keystore::kDefaultTlsKeyLabel
  std::string subject;                 // "CN=kms.example.org,O=Example"
  std::vector<std::string> dns_names;  // subjectAltName dNSNames
};
// Prints the PEM CSR signed by the token key.
CommandOutput RunTlsCsr(const KeystoreCommandOptions& ks, const TlsCsrOptions& csr);

// Bytes of a generated PSK.
inline constexpr size_t kPskBytes = 32;

}  // namespace tkms::tkmsctl
