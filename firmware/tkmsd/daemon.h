// tkmsd: the KMS daemon. Wires the keystore (firmware/keystore, on the
// PKCS#11 plumbing in pkcs11/), the configuration (provisioning/), the ticket
// service (firmware/kms, which sees the token only as KmsKeys: the keystore's
// KeystoreKeys adapter) and the HTTP front end (web/), and owns the process:
// signals, start-up and shutdown logs.
//
// Why: TS 33.328 §6.2 / Annex A put a KMS behind an HTTP endpoint; this is the
// program an operator runs (docs/tkmsd.md). Two ways to start:
//   tkmsd --config FILE                 a production configuration
//   tkmsd --dev --state-dir DIR         a throw-away SoftHSM2 token in DIR,
//                                       a ticket key, demo users alice and
//                                       bob (UE PSK copies in DIR/ue/*.psk)
//   tkmsd --config LOCAL --bundle FILE  provisioned by a signed bundle
//                                       (also with --dev)
// Signals: SIGTERM / SIGINT stop accepting, finish in-flight requests and
// exit 0; SIGHUP re-reads the token's user objects (and the configuration
// file, or the bundle file) and swaps in a new snapshot; a refused reload
// changes nothing. With --bundle, POST /admin/bundle on the admin listener
// applies a new bundle too.
#pragma once

#include <optional>
#include <string>

namespace tkms::tkmsd {

struct DaemonOptions {
  std::optional<std::string> config_file;  // --config
  bool dev = false;                        // --dev
  std::optional<std::string> state_dir;    // --state-dir (with --dev)
  std::optional<std::string> kms_identity; // --kms-identity (overrides)
  std::optional<std::string> listen;       // --listen ADDR:PORT
  std::optional<std::string> admin_listen; // --admin-listen ADDR:PORT
  std::optional<std::string> tls_listen;   // --tls-listen ADDR:PORT (HTTPS Ua; --dev default 127.0.0.1:8443)
  std::optional<std::string> zk_listen;    // --zk-listen ADDR:PORT (Zk, mutual TLS; docs/zk.md)
  std::optional<std::string> ready_file;   // --ready-file: ports as JSON once serving
  std::string log_level = "info";
  // Signed configuration bundle (docs/bundles.md): the provisioned sections
  // (users, policy, trust relations, ...) come from it; --config then holds
  // only the local sections (listeners, HTTP, token, MIKEY settings).
  std::optional<std::string> bundle_file;    // --bundle
  std::optional<std::string> audit_log;      // --audit-log (default: next to the bundle)
  // --dev only: pin this certificate as the provisioning anchor of the
  // development token if it pins none yet (production tokens get theirs from
  // `tkmsctl token init --provisioning-anchor`).
  std::optional<std::string> provisioning_anchor;
  // Least privilege (docs/tkmsd.md, "Privileges"): started as root, tkmsd
  // drops to this user once its listeners are bound (--user, or the local
  // configuration's "user"); as root without one it refuses to start unless
  // allow_root (--allow-root) says so.
  std::optional<std::string> user;  // --user NAME
  bool allow_root = false;          // --allow-root
};

// Runs the daemon until SIGTERM/SIGINT; returns the process exit code.
int RunDaemon(const DaemonOptions& options);

}  // namespace tkms::tkmsd
