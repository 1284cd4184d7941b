// tkmsd: see daemon.h and docs/tkmsd.md.
#include <iostream>

#include <CLI/CLI.hpp>

#include "firmware/tkmsd/daemon.h"

int main(int argc, char** argv) {
  tkms::tkmsd::DaemonOptions options;
  CLI::App app{"tkmsd: MIKEY-TICKET Key Management Service (RFC 6043, 3GPP TS 33.328)"};
  app.set_version_flag("--version", std::string("tkmsd ") + TKMS_VERSION);
  auto* config = app.add_option("--config", options.config_file, "JSON configuration file (docs/config.md)");
  auto* dev = app.add_flag("--dev", options.dev,
                           "Development mode: throw-away SoftHSM2 token and demo users in --state-dir");
  auto* state = app.add_option("--state-dir", options.state_dir, "State directory of --dev");
  app.add_option("--kms-identity", options.kms_identity,
                 "KMS identity (IDRkms); default kms.example.org in --dev");
  app.add_option("--listen", options.listen, "Ua listener ADDR:PORT (port 0 = any free port)");
  app.add_option("--admin-listen", options.admin_listen, "Admin listener ADDR:PORT (port 0 = any free port)");
  app.add_option("--tls-listen", options.tls_listen,
                 "HTTPS Ua listener ADDR:PORT (port 0 = any free port; --dev: default 127.0.0.1:8443)");
  app.add_option("--zk-listen", options.zk_listen,
                 "Zk listener ADDR:PORT for peer KMSs and network functions, mutual TLS (port 0 = any free port)");
  app.add_option("--ready-file", options.ready_file,
                 "Write {\"ua_port\":N,\"ua_tls_port\":T,\"admin_port\":M,\"zk_port\":Z,\"pid\":P} to this "
                 "file once serving");
  app.add_option("--log-level", options.log_level, "debug | info | warn | error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  auto* bundle = app.add_option("--bundle", options.bundle_file,
                                "Signed configuration bundle (docs/bundles.md); with it --config holds only "
                                "the local sections");
  app.add_option("--audit-log", options.audit_log,
                 "Bundle audit log, JSON lines (default: bundle-audit.log beside the bundle)")
      ->needs(bundle);
  app.add_option("--provisioning-anchor", options.provisioning_anchor,
                 "--dev only: pin this certificate (PEM or DER) as the development token's provisioning anchor")
      ->needs(dev);
  app.add_option("--user", options.user,
                 "Started as root: run as this user once the listeners are bound (overrides the configuration's "
                 "\"user\")");
  app.add_flag("--allow-root", options.allow_root,
               "Keep running as root when no --user is given (not for production)");
  config->excludes(dev);
  state->needs(dev);
  dev->needs(state);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!options.config_file && !options.dev) {
    std::cerr << "tkmsd: give --config FILE or --dev --state-dir DIR (see --help)\n";
    return 2;
  }
  return tkms::tkmsd::RunDaemon(options);
}
