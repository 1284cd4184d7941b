// ZkNode: the daemon's part in KMS-to-KMS resolution (docs/zk.md; TS 33.328
// B.2.2.3, RFC 6043 §10): the Zk listener's TLS credentials and client
// authorisation, and the client the KMS resolves other KMSs' tickets through.
//
// Why one object: the three are made from the same provisioned facts (the
// trust relations, the network functions, the KMS's own Zk certificate
// chain and the token's TLS key) and must change together: a bundle that
// removes a relation must stop both the listener accepting that peer and the
// client calling it, from the next request on. Prepare builds everything a
// configuration needs and fails, changing nothing, if any of it is wrong (a
// chain that does not match the token key, a certificate that does not
// parse); the returned commit swaps it all in. That is the bundle applier's
// Prepare/Commit, so a reload that would break Zk is refused.
//
// The listener's trust (anchors: the relations' CAs; pins: the relations'
// and the network functions' certificates) decides who completes a
// handshake; the authoriser then maps the client certificate to exactly one
// peer KMS or network function with the trust of the moment
// (zk::ZkTrust::Authorize), on every request.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "firmware/base/status.h"
#include "firmware/keystore/keystore.h"
#include "firmware/tkmsd/listener_tls.h"
#include "firmware/zk/peer_client.h"
#include "firmware/zk/zk_trust.h"
#include "provisioning/config.h"
#include "web/tls_server.h"
#include "web/ua_handler.h"

namespace tkms::tkmsd {

class ZkNode {
 public:
  // Builds everything for `config`; errors name the setting
  // ("kms_certificate_chain: ...", "TLS key 'tkms-tls-server': ...").
  static Result<std::unique_ptr<ZkNode>> Create(const provisioning::KmsConfig& config, keystore::Keystore& keystore,
                                                TokenFailureListener on_token_failure);

  // A new configuration (bundle, SIGHUP): everything built, or an error and
  // nothing changed. Calling the commit applies it at once.
  using Commit = std::function<void()>;
  Result<Commit> Prepare(const provisioning::KmsConfig& config);

  // For the web server: the listener's credentials (rotated by commits) and
  // the per-request authoriser.
  std::shared_ptr<web::TlsServer> listener_tls() const { return listener_tls_; }
  web::ZkAuthorizer authorizer();
  // For the KMS: the Zk client (lives as long as the ZkNode).
  kms::PeerKmsClient& client() { return *client_; }
  // Per-peer metrics (Prometheus text) for /metrics.
  std::string MetricsText() const { return client_->MetricsText(); }

 private:
  struct Built;
  ZkNode(keystore::Keystore& keystore, TokenFailureListener on_token_failure)
      : keystore_(keystore), on_token_failure_(std::move(on_token_failure)) {}
  Result<std::shared_ptr<Built>> Build(const provisioning::KmsConfig& config);
  void Apply(const std::shared_ptr<Built>& built);
  std::shared_ptr<const zk::ZkTrust> trust() const;

  keystore::Keystore& keystore_;
  TokenFailureListener on_token_failure_;
  mutable std::mutex mu_;
  std::shared_ptr<const zk::ZkTrust> trust_;  // guarded by mu_
  std::shared_ptr<web::TlsServer> listener_tls_;
  std::unique_ptr<zk::ZkPeerClient> client_;
};

}  // namespace tkms::tkmsd
