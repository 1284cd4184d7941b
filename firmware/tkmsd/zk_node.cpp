#include "firmware/tkmsd/zk_node.h"

#include <algorithm>
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
  std::shared_ptr<web::client::TlsClientConfig> client_tls;  // nullptr: no identity (calls to peers fail)
  std::vector<pki::Bytes> chain;
  std::string key_label;
  zk::ZkPeerSettings settings;
};

Result<std::shared_ptr<ZkNode::Built>> ZkNode::Build(const provisioning::KmsConfig& config) {
  auto built = std::make_shared<Built>();
  auto trust = zk::ZkTrust::Build(config);
  if (!trust.ok()) return trust.error();
  built->trust = std::move(*trust);
  built->settings = zk::ZkPeerSettings::From(config.zk);
  // A Ua handler thread waits for the peer's answer: one silent peer may
  // hold at most half of them, so local requests are still served.
  const unsigned half_the_workers = std::max(1u, config.http.worker_threads / 2);
  built->settings.max_connections_per_peer = std::min(built->settings.max_connections_per_peer, half_the_workers);

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
  built->chain = *chain;
  built->key_label = config.tls.key_label;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (client_tls_ && client_chain_ == built->chain && client_key_label_ == built->key_label) {
      built->client_tls = client_tls_;  // the same identity: the pools stay
      return built;
    }
  }
  auto client_key = TokenTlsKey(config.tls, keystore_, on_token_failure_);
  if (!client_key.ok()) return client_key.error();
  web::client::TlsClientSettings client;
  client.chain_der = std::move(*chain);
  client.key = std::move(*client_key);
  auto client_tls = web::client::TlsClientConfig::Create(std::move(client));
  if (!client_tls.ok()) {
    return Status(client_tls.error().code(), "the Zk client identity with TLS key '" + config.tls.key_label +
                                                 "': " + client_tls.error().message());
  }
  built->client_tls = std::move(*client_tls);
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
  std::shared_ptr<zk::ZkPeerClient> stale;  // destroyed outside the lock
  {
    std::lock_guard<std::mutex> lock(mu_);
    trust_ = built->trust;
    authorized_.clear();  // decided under the old trust
    client_chain_ = built->chain;
    client_key_label_ = built->key_label;
    client_tls_ = built->client_tls;
    if (!built->client_tls) {
      stale = std::move(peers_);
    } else if (!peers_) {
      peers_ = std::make_shared<zk::ZkPeerClient>(built->trust, built->settings, built->client_tls);
    } else if (Status s = peers_->Update(built->trust, built->settings, built->client_tls); !s.ok()) {
      // Built from a verified configuration: a failure here is a bug; keep
      // serving with the previous peers, loudly.
      LogLine(LogLevel::kError, "zk_update_failed").Add("error", s.message());
    }
  }
  if (listener_tls_ && built->listener) listener_tls_->Replace(built->listener);
}

std::shared_ptr<zk::ZkPeerClient> ZkNode::peers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peers_;
}

std::string ZkNode::MetricsText() const {
  const auto p = peers();
  return p ? p->MetricsText() : std::string();
}

Result<std::vector<uint8_t>> ZkNode::Client::Resolve(const std::string& kms_uri, ByteSpan resolve_init) {
  const auto p = node_.peers();
  if (!p) {
    return Unavailable("this KMS has no TLS identity for Zk (kms_certificate_chain, or tls.certificate_chain_file)");
  }
  return p->Resolve(kms_uri, resolve_init);
}

std::shared_ptr<const zk::ZkTrust> ZkNode::trust() const {
  std::lock_guard<std::mutex> lock(mu_);
  return trust_;
}

std::optional<zk::ZkClient> ZkNode::AuthorizeCached(const web::PeerIdentity& identity) {
  const std::time_t now = std::time(nullptr);
  std::shared_ptr<const zk::ZkTrust> trust;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = authorized_.find(identity.certificate_sha256);
    if (it != authorized_.end() && it->second.trust == trust_ && now >= it->second.valid_from &&
        now <= it->second.valid_until) {
      return it->second.client;
    }
    trust = trust_;
  }
  // A miss: the whole rule (a CA signature check, ~ms), then remembered for
  // this trust until the certificate's validity ends or kAuthorizationTtl.
  auto client = trust->Authorize(identity.certificate_der, now);
  pki::X509Chain parsed;
  if (!parsed.AddDer(identity.certificate_der, "client certificate").ok()) return client;
  CachedAuthorization entry{trust, client, parsed.front().not_before(),
                            std::min<std::time_t>(parsed.front().not_after(), now + kAuthorizationTtlSeconds)};
  std::lock_guard<std::mutex> lock(mu_);
  if (trust != trust_) return client;  // a reload happened meanwhile: do not remember
  if (authorized_.size() >= kMaxCachedAuthorizations) authorized_.clear();
  authorized_[identity.certificate_sha256] = std::move(entry);
  return client;
}

web::ZkAuthorizer ZkNode::authorizer() {
  return [this](const web::PeerIdentity& identity) {
    web::ZkAuthorization out;
    const auto client = AuthorizeCached(identity);
    if (!client) {
      out.refusal = "the certificate belongs to no trust relation or network function";
      return out;
    }
    if (!client->may_resolve) {
      out.name = client->name;  // named in the audit line, still refused
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
