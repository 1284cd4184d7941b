// The TLS credentials of tkmsd's listeners, made from the configuration's
// `tls` section and the token (docs/tls.md).
//
// Why: the web listeners take ready credentials (web/tls_server.h); where
// they come from is the daemon's business. The server key is the token's
// RSA key `tls.key_label`, used through an RSA-alt context that signs with
// C_Sign (the key never leaves the token); the certificate chain, the
// operators' CA and their pinned certificates are files. The same chain and
// key serve the HTTPS Ua listener and, with client certificates required,
// the admin listener.
//
// Rotation: RefreshListenerTls (SIGHUP) re-reads the files and the key and
// replaces the credentials of each listener only if all of it is good
// (the key matches the new leaf, every file parses): new handshakes use the
// new certificate, connections already open keep theirs, and a bad file
// leaves the running credentials as they were (a reload never makes things
// worse).
//
// --dev: PrepareDevTls makes a development CA and the TLS key in the
// throw-away token (both RSA keys in the token, so no private key is ever
// in a file), issues a certificate for "localhost" and 127.0.0.1, and writes
// dev-ca.pem (what curl --cacert needs) and tls-chain.pem to the state dir.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "firmware/base/status.h"
#include "firmware/keystore/keystore.h"
#include "firmware/pki/pk.h"
#include "provisioning/config.h"
#include "web/tls_server.h"

namespace tkms::tkmsd {

struct ListenerTls {
  std::shared_ptr<web::TlsServer> ua;     // set when listen.ua_tls is
  std::shared_ptr<web::TlsServer> admin;  // set when the admin listener requires client certificates
};

using TokenFailureListener = std::function<void(const Status&)>;

// Errors name the file or setting: "tls.certificate_chain_file
// /etc/tkms/chain.pem: ...", "TLS key 'tkms-tls-server': not found in the
// token (create it with tkmsctl tls key create)".
Result<ListenerTls> PrepareListenerTls(const provisioning::KmsConfig& config, keystore::Keystore& keystore,
                                       TokenFailureListener on_token_failure);

// The token's TLS key `tls.key_label` as an RSA-alt context (signatures made
// by C_Sign in the token).
Result<pki::PkContext> TokenTlsKey(const provisioning::TlsConfig& tls, keystore::Keystore& keystore,
                                   TokenFailureListener on_token_failure);

// The KMS's certificate chain on Zk (docs/zk.md): kms_certificate_chain, else
// the file tls.certificate_chain_file, else none (empty).
Result<std::vector<pki::Bytes>> ZkCertificateChain(const provisioning::KmsConfig& config);

// SIGHUP: new credentials for the listeners that have TLS, or the reason
// nothing changed.
Status RefreshListenerTls(const provisioning::KmsConfig& config, keystore::Keystore& keystore,
                          TokenFailureListener on_token_failure, ListenerTls& tls);

// --dev: see above. Sets config.tls.certificate_chain_file (and leaves
// config.listen.ua_tls to the caller). Idempotent across restarts with the
// same state dir: the CA and its certificate are kept, the server
// certificate is issued anew.
Status PrepareDevTls(keystore::Keystore& keystore, const std::string& state_dir, provisioning::KmsConfig& config);

}  // namespace tkms::tkmsd
