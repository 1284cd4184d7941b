#include "firmware/tkmsd/zk_node.h"

#include <chrono>
#include <utility>
#include <vector>

#include "firmware/base/log.h"
#include "firmware/pki/x509.h"

namespace tkms::tkmsd {
namespace {

// The SHA-256 of no certificate: a pin nobody can present. It stands in when
// the listener trusts no one yet (no relation, no network function), so the
// Zk listener still starts and refuses every client until a bundle names one.
constexpr web::CertificateFingerprint kNobody{};

}  // namespace

struct ZkNode::Built {
  std::shared_ptr<const zk::ZkTrust> trust;
  std::shared_ptr<const web::TlsCredentials> listener;  // nullptr: no identity (the listener cannot start)
  std::shared_ptr<const zk::ZkIdentity> identity;       // nullptr: no identity (calls to peers fail)
  zk::ZkClientSettings settings;
};

Result<std::shared_ptr<ZkNode::Built>> ZkNode::Build(const provisioning::KmsConfig& config) {
  auto built = std::make_shared<Built>();
  auto trust = zk::ZkTrust::Build(config);
  if (!trust.ok()) return trust.error();
  built->trust = std::move(*trust);
  built->settings.connect_timeout = std::chrono::milliseconds(config.zk.connect_timeout_ms);
  built->settings.response_timeout = std::chrono::milliseconds(config.zk.response_timeout_ms);
  built->settings.max_connections_per_peer = config.zk.max_connections_per_peer;
  built->settings.retry_after_failure = std::chrono::milliseconds(config.zk.retry_after_failure_ms);

  auto chain = ZkCertificateChain(config);
  if (!chain.ok()) return chain.error();
  if (chain->empty()) return built;  // no identity: nothing to serve or call with
  // One token key context for the listener and one for the client: each is
  // an RSA-alt context signing in the token.
  auto server_key = TokenTlsKey(config.tls, keystore_, on_token_failure_);
  if (!server_key.ok()) return server_key.error();
  web::TlsServerSettings server;
  server.chain_der = *chain;
  server.key = std::move(*server_key);
  server.client_auth = built->trust->ListenerClientAuth();
  server.client_auth.required = true;
  if (server.client_auth.trust_anchors_der.empty() && server.client_auth.pinned.empty()) {
    server.client_auth.pinned.push_back(kNobody);
  }
  auto listener = web::TlsCredentials::Build(std::move(server));
  if (!listener.ok()) {
    return Status(listener.error().code(), "the Zk certificate chain with TLS key '" + config.tls.key_label +
                                               "': " + listener.error().message());
  }
  built->listener = std::move(*listener);
  auto client_key = TokenTlsKey(config.tls, keystore_, on_token_failure_);
  if (!client_key.ok()) return client_key.error();
  auto identity = zk::ZkIdentity::Create(std::move(*chain), std::move(*client_key));
  if (!identity.ok()) return identity.error();
  built->identity = std::move(*identity);
  return built;
}

Result<std::unique_ptr<ZkNode>> ZkNode::Create(const provisioning::KmsConfig& config, keystore::Keystore& keystore,
                                               TokenFailureListener on_token_failure) {
  std::unique_ptr<ZkNode> node(new ZkNode(keystore, std::move(on_token_failure)));
  auto built = node->Build(config);
  if (!built.ok()) return built.error();
  if (!config.listen.zk.empty() && (*built)->listener == nullptr) {
    return InvalidArgument("listen.zk " + config.listen.zk +
                           ": the Zk listener needs a TLS identity (kms_certificate_chain, or "
                           "tls.certificate_chain_file)");
  }
  node->client_ = std::make_unique<zk::ZkPeerClient>();
  if ((*built)->listener) node->listener_tls_ = std::make_shared<web::TlsServer>((*built)->listener);
  node->Apply(*built);
  return node;
}

Result<ZkNode::Commit> ZkNode::Prepare(const provisioning::KmsConfig& config) {
  auto built = Build(config);
  if (!built.ok()) return built.error();
  if (listener_tls_ && (*built)->listener == nullptr) {
    return InvalidArgument("the Zk listener is running and needs a TLS identity (kms_certificate_chain, or "
                           "tls.certificate_chain_file)");
  }
  std::shared_ptr<Built> ready = std::move(*built);
  return Commit([this, ready] { Apply(ready); });
}

void ZkNode::Apply(const std::shared_ptr<Built>& built) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    trust_ = built->trust;
  }
  if (listener_tls_ && built->listener) listener_tls_->Replace(built->listener);
  client_->Update(built->trust, built->settings, built->identity);
}

std::shared_ptr<const zk::ZkTrust> ZkNode::trust() const {
  std::lock_guard<std::mutex> lock(mu_);
  return trust_;
}

web::ZkAuthorizer ZkNode::authorizer() {
  return [this](const web::PeerIdentity& identity) {
    web::ZkAuthorization out;
    const auto trust = this->trust();
    const auto client = trust->Authorize(identity.certificate_der, std::time(nullptr));
    if (!client) {
      out.refusal = "the certificate belongs to no trust relation or network function";
      return out;
    }
    if (client->kind == zk::ZkClientKind::kNetworkFunction && !client->may_resolve) {
      out.refusal = "network function '" + client->name + "' has no resolve role";
      return out;
    }
    out.kind = client->kind == zk::ZkClientKind::kPeerKms ? kms::ZkClientKind::kPeerKms
                                                           : kms::ZkClientKind::kNetworkFunction;
    out.name = client->name;
    return out;
  };
}

}  // namespace tkms::tkmsd
