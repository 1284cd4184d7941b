// tkmsctl's signed configuration bundle commands (docs/bundles.md,
// docs/tkmsctl.md#signed-bundles):
//   tkmsctl bundle sign   --key PKCS11-URI --cert FILE [--chain FILE...] --in config.json --out BUNDLE [--force]
//   tkmsctl bundle verify --anchor FILE [--at TIME] BUNDLE
//   tkmsctl bundle show   BUNDLE
//   tkmsctl bundle pubkey --key PKCS11-URI --out FILE [--force]
//
// Why: the provisioning authority signs bundles with an EC P-256 key that
// never leaves its own token (Keystore::SignEcdsaP256, raw r || s, turned
// into DER by EcdsaRawToDer), and anyone can check a bundle against the
// anchor an appliance pins before it is delivered. The key is named by an
// RFC 7512 URI: token= (or another token attribute) selects the token,
// object= and/or id= the key, the query's module-path= the PKCS#11 module
// and pin-source=file:PATH the file holding the user PIN. PINs never come
// from argv: the PIN is read from that file, from --pin-file, or from
// $TKMS_PIN (secret_files.h). `sign` refuses a payload that is not a valid
// bundle configuration before the token is opened, checks the signature
// against the certificate before writing, and writes the bundle atomically
// (temporary file + rename), never over an existing file without --force.
#pragma once

#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tools/tkmsctl/mikey_command.h"

namespace CLI {
class App;
}

namespace tkms::tkmsctl {

// Where the authority's key is and how to log in to its token.
struct BundleKeyOptions {
  std::string key_uri;                   // --key pkcs11:token=...;object=...[?pin-source=file:...]
  std::optional<std::string> state_dir;  // --state-dir: SoftHSM2 state (DIR/softhsm2.conf)
  std::string module_path;               // --module (or the URI's module-path; not both)
  std::optional<std::string> pin_file;   // --pin-file (or the URI's pin-source; not both); else $TKMS_PIN
};

struct BundleSignOptions {
  BundleKeyOptions key;
  std::string cert_file;                 // the signer's certificate, PEM or DER
  std::vector<std::string> chain_files;  // intermediates, signer's issuer first
  std::string in_file;                   // the configuration (role "bundle"); "-" = stdin
  std::string out_file;
  bool force = false;                    // replace an existing out_file
};
CommandOutput RunBundleSign(const BundleSignOptions& options);

struct BundleVerifyOptions {
  std::string anchor_file;         // the provisioning anchor, PEM or DER
  std::string bundle_file;         // "-" = stdin
  std::optional<std::time_t> at;   // verify as of this time instead of now
};
CommandOutput RunBundleVerify(const BundleVerifyOptions& options);

// Prints what the bundle says about itself, marked NOT VERIFIED.
CommandOutput RunBundleShow(const std::string& bundle_file);

struct BundlePubkeyOptions {
  BundleKeyOptions key;
  std::string out_file;
  bool force = false;
};
CommandOutput RunBundlePubkey(const BundlePubkeyOptions& options);

// "2030-01-01T00:00:00Z" (UTC, seconds, the form of FormatUtcTime) or a
// number of seconds since the epoch.
std::optional<std::time_t> ParseUtcTime(const std::string& text);

// Registers the `bundle` command group on `app`; the parsed command is put
// into `action` (which must outlive the parse).
void AddBundleCommands(CLI::App& app, std::function<CommandOutput()>& action);

}  // namespace tkms::tkmsctl
