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
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "firmware/base/status.h"
#include "firmware/keystore/keystore.h"
#include "firmware/tkmsd/listener_tls.h"
#include "firmware/zk/peer_client.h"
#include "firmware/zk/zk_trust.h"
#include "web/client/tls_client.h"
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
  // For the KMS: the Zk client (lives as long as the ZkNode). Without a TLS
  // identity every call is kUnavailable, naming what is missing.
  kms::PeerKmsClient& client() { return client_; }
  // Per-peer metrics (Prometheus text) for /metrics.
  std::string MetricsText() const;

 private:
  struct Built;
  // Forwards to the ZkPeerClient of the moment.
  class Client final : public kms::PeerKmsClient {
   public:
    explicit Client(ZkNode& node) : node_(node) {}
    Result<std::vector<uint8_t>> Resolve(const std::string& kms_uri, ByteSpan resolve_init) override;

   private:
    ZkNode& node_;
  };

  ZkNode(keystore::Keystore& keystore, TokenFailureListener on_token_failure)
      : keystore_(keystore), on_token_failure_(std::move(on_token_failure)), client_(*this) {}
  Result<std::shared_ptr<Built>> Build(const provisioning::KmsConfig& config);
  void Apply(const std::shared_ptr<Built>& built);
  std::shared_ptr<const zk::ZkTrust> trust() const;
  std::shared_ptr<zk::ZkPeerClient> peers() const;
  // ZkTrust::Authorize, remembered per certificate (SHA-256) for the trust
  // in force: the CA signature check costs milliseconds, and a peer KMS sends
  // many requests on one certificate. Forgotten on every Apply, when the
  // certificate's validity ends, and after kAuthorizationTtlSeconds.
  std::optional<zk::ZkClient> AuthorizeCached(const web::PeerIdentity& identity);
  static constexpr std::time_t kAuthorizationTtlSeconds = 60;
  static constexpr size_t kMaxCachedAuthorizations = 1024;
  struct CachedAuthorization {
    std::shared_ptr<const zk::ZkTrust> trust;
    std::optional<zk::ZkClient> client;
    std::time_t valid_from = 0;
    std::time_t valid_until = 0;
  };

  keystore::Keystore& keystore_;
  TokenFailureListener on_token_failure_;
  Client client_;
  mutable std::mutex mu_;
  std::shared_ptr<const zk::ZkTrust> trust_;  // guarded by mu_
  std::map<web::CertificateFingerprint, CachedAuthorization> authorized_;  // guarded by mu_
  std::shared_ptr<zk::ZkPeerClient> peers_;   // guarded by mu_; nullptr without a TLS identity
  // The client TLS configuration in use and what it was made from: kept
  // across reloads that do not change the identity, so the pools survive.
  std::shared_ptr<web::client::TlsClientConfig> client_tls_;  // guarded by mu_
  std::vector<pki::Bytes> client_chain_;                      // guarded by mu_
  std::string client_key_label_;                              // guarded by mu_
  std::shared_ptr<web::TlsServer> listener_tls_;
};

}  // namespace tkms::tkmsd
