// ZkPeerClient: see peer_client.h.
#include "firmware/zk/peer_client.h"

#include <cstdio>
#include <optional>
#include <utility>

#include "firmware/base/encoding.h"
#include "firmware/base/log.h"
#include "firmware/base/printable.h"
#include "web/client/http_client.h"

namespace tkms::zk {
namespace {

using web::client::FailurePhase;
using web::client::HttpClient;

constexpr std::string_view kResolveTarget = "/keymanagement?requesttype=ticketresolve";
constexpr std::string_view kMikeyContentType = "application/mikey";

// The results of tkms_zk_peer_requests_total, in rendering order.
constexpr const char* kResults[] = {"ok",           "connect_failed", "unavailable", "http_error",
                                    "bad_response", "refused_busy",   "retry_pause"};
constexpr size_t kResultCount = sizeof kResults / sizeof kResults[0];

size_t ResultIndex(std::string_view result) {
  for (size_t i = 0; i < kResultCount; ++i) {
    if (result == kResults[i]) return i;
  }
  return kResultCount;
}

// A Prometheus label value: backslash, double quote and newline escaped.
std::string LabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// The body without ASCII whitespace, base64-decoded.
std::optional<std::vector<uint8_t>> DecodeBody(std::string_view body) {
  std::string compact;
  compact.reserve(body.size());
  for (char c : body) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') compact += c;
  }
  return Base64Decode(compact);
}

const hal::SystemClock g_system_clock;

}  // namespace

ZkPeerSettings ZkPeerSettings::From(const provisioning::ZkConfig& config) {
  ZkPeerSettings s;
  s.connect_timeout = std::chrono::milliseconds(config.connect_timeout_ms);
  s.response_timeout = std::chrono::milliseconds(config.response_timeout_ms);
  s.max_connections_per_peer = config.max_connections_per_peer;
  s.retry_after_failure = std::chrono::milliseconds(config.retry_after_failure_ms);
  return s;
}

// The connections of one relation's transport (endpoint + certificate or
// CA, under one TLS identity and settings); shared by the Peer of every
// configuration that kept them. Guarded by ZkPeerClient::mu_.
struct ZkPool {
  std::vector<std::unique_ptr<HttpClient>> idle;  // keep-alive connections, newest last
  unsigned in_flight = 0;
  std::chrono::steady_clock::time_point paused_until{};
};

// One relation of the current configuration (immutable but for the pool).
struct ZkPeerClient::Peer {
  ZkRelation relation;
  std::shared_ptr<const web::client::ServerVerifier> verifier;
  std::shared_ptr<ZkPool> pool;
};

// Counters of one peer (relaxed atomics would do; they are under mu_).
struct ZkPeerClient::PeerMetrics {
  uint64_t results[kResultCount] = {};
  uint64_t connections = 0;
  uint64_t duration_count = 0;
  std::chrono::nanoseconds duration_sum{0};
};

ZkPeerClient::ZkPeerClient(std::shared_ptr<const ZkTrust> trust, ZkPeerSettings settings,
                           std::shared_ptr<web::client::TlsClientConfig> tls, const hal::Clock* clock)
    : clock_(clock != nullptr ? clock : &g_system_clock) {
  if (Status s = Update(std::move(trust), settings, std::move(tls)); !s.ok()) {
    LogLine(LogLevel::kError, "zk_client_config_refused").Add("reason", s.message());
  }
}

ZkPeerClient::~ZkPeerClient() = default;

Status ZkPeerClient::Check(const std::shared_ptr<const ZkTrust>& trust,
                           const std::shared_ptr<web::client::TlsClientConfig>& tls) {
  if (!trust) return InvalidArgument("Zk client: no trust relations");
  if (!tls || !tls->verifier_required()) return InvalidArgument("Zk client: no in-memory TLS identity");
  return Status::Ok();
}

Status ZkPeerClient::Update(std::shared_ptr<const ZkTrust> trust, ZkPeerSettings settings,
                            std::shared_ptr<web::client::TlsClientConfig> tls) {
  TKMS_RETURN_IF_ERROR(Check(trust, tls));
  if (settings.max_connections_per_peer == 0) settings.max_connections_per_peer = 1;
  std::vector<std::unique_ptr<HttpClient>> closing;  // closed after the lock is released
  const size_t peers = trust->relations().size();
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool keep_pools = settings == settings_ && tls == tls_;
    std::map<std::string, std::shared_ptr<Peer>> next;
    for (const ZkRelation& relation : trust->relations()) {
      auto peer = std::make_shared<Peer>();
      peer->relation = relation;
      peer->verifier = trust->ServerVerifierFor(relation.kms_uri);
      auto old = peers_.find(relation.kms_uri);
      if (old != peers_.end() && keep_pools && old->second->relation.SameTransport(relation)) {
        peer->pool = old->second->pool;  // same peer, same way: its connections and pause stay
      } else {
        peer->pool = std::make_shared<ZkPool>();
      }
      next.emplace(relation.kms_uri, std::move(peer));
    }
    for (auto& [uri, old] : peers_) {
      auto kept = next.find(uri);
      if (kept != next.end() && kept->second->pool == old->pool) continue;
      for (auto& client : old->pool->idle) closing.push_back(std::move(client));
      old->pool->idle.clear();
    }
    peers_ = std::move(next);
    trust_ = std::move(trust);
    settings_ = settings;
    tls_ = std::move(tls);
  }
  LogLine(LogLevel::kInfo, "zk_client_configured")
      .Add("peers", static_cast<uint64_t>(peers))
      .Add("closed_connections", static_cast<uint64_t>(closing.size()));
  return Status::Ok();
}

// A request in progress on one peer: holds one of its max_connections_per_peer
// slots and a connection, and gives both back (the connection to the pool of
// the peer's *current* Peer if it is still the same transport and healthy).
class ZkPeerClient::Lease {
 public:
  Lease(ZkPeerClient& owner, std::string kms_uri, std::shared_ptr<ZkPool> pool, std::unique_ptr<HttpClient> client)
      : owner_(owner), kms_uri_(std::move(kms_uri)), pool_(std::move(pool)), client_(std::move(client)) {}
  ~Lease() {
    std::unique_ptr<HttpClient> closing;
    {
      std::lock_guard<std::mutex> lock(owner_.mu_);
      if (pool_->in_flight > 0) --pool_->in_flight;
      if (Current() && client_->connected() && pool_->idle.size() < owner_.settings_.max_connections_per_peer) {
        pool_->idle.push_back(std::move(client_));
      } else {
        closing = std::move(client_);
      }
    }
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  HttpClient& client() { return *client_; }
  // After a connect or handshake failure: the pool's peer pauses.
  void Pause() {
    std::lock_guard<std::mutex> lock(owner_.mu_);
    pool_->paused_until = owner_.clock_->MonotonicNow() + owner_.settings_.retry_after_failure;
  }

 private:
  // The pool still serves the peer's current relation (mu_ held).
  bool Current() const {
    auto it = owner_.peers_.find(kms_uri_);
    return it != owner_.peers_.end() && it->second->pool == pool_;
  }

  ZkPeerClient& owner_;
  std::string kms_uri_;
  std::shared_ptr<ZkPool> pool_;
  std::unique_ptr<HttpClient> client_;
};

Result<std::vector<uint8_t>> ZkPeerClient::Resolve(const std::string& kms_uri, ByteSpan resolve_init) {
  std::optional<Lease> lease;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = peers_.find(kms_uri);
    if (it == peers_.end()) {
      return NotFound("no trust relation with the KMS \"" + EscapedDetail(kms_uri) + "\"");
    }
    const Peer& peer = *it->second;
    ZkPool& pool = *peer.pool;
    const auto now = clock_->MonotonicNow();
    if (now < pool.paused_until) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(pool.paused_until - now);
      lock.unlock();
      Record(kms_uri, "retry_pause", 0, {}, false);
      return Unavailable("peer KMS " + EscapedDetail(kms_uri) + " is in its retry pause after a failure (" +
                         std::to_string(left.count()) + " ms left)");
    }
    if (pool.in_flight >= settings_.max_connections_per_peer) {
      lock.unlock();
      Record(kms_uri, "refused_busy", 0, {}, false);
      return ResourceExhausted("peer KMS " + EscapedDetail(kms_uri) + ": " +
                               std::to_string(settings_.max_connections_per_peer) + " requests already in progress");
    }
    std::unique_ptr<HttpClient> client;
    if (!pool.idle.empty()) {
      client = std::move(pool.idle.back());
      pool.idle.pop_back();
    } else {
      web::client::HttpClientOptions options;
      options.timeout = settings_.response_timeout;
      options.connect_timeout = settings_.connect_timeout;
      options.max_body_bytes = settings_.max_response_bytes;
      auto made = HttpClient::WithTls(peer.relation.host, peer.relation.port, tls_, peer.verifier, options);
      if (!made.ok()) return made.error();  // a programming error: Update checked both
      client = std::make_unique<HttpClient>(std::move(*made));
    }
    ++pool.in_flight;
    lease.emplace(*this, kms_uri, peer.pool, std::move(client));
  }

  HttpClient& http = lease->client();
  const uint64_t opened_before = http.connections_opened();
  const auto started = std::chrono::steady_clock::now();
  auto response = http.Post(kResolveTarget, kMikeyContentType, Base64Encode(resolve_init));
  const auto latency = std::chrono::steady_clock::now() - started;
  const uint64_t handshakes = http.connections_opened() - opened_before;
  const std::string peer_name = EscapedDetail(kms_uri);

  if (!response.ok()) {
    const bool connect_failed = http.last_failure() == FailurePhase::kConnect;
    if (connect_failed) lease->Pause();
    const char* result = connect_failed ? "connect_failed" : "unavailable";
    Record(kms_uri, result, handshakes, latency, !connect_failed);
    LogLine(LogLevel::kWarn, "zk_peer_failed")
        .Add("peer", kms_uri)
        .Add("result", result)
        .Add("reason", response.error().message());
    return Unavailable("peer KMS " + peer_name + ": " + response.error().message());
  }
  if (response->status != 200) {
    Record(kms_uri, "http_error", handshakes, latency, true);
    LogLine(LogLevel::kWarn, "zk_peer_failed").Add("peer", kms_uri).Add("result", "http_error").Add("status", response->status);
    return Unavailable("peer KMS " + peer_name + " answered HTTP " + std::to_string(response->status));
  }
  auto decoded = DecodeBody(response->body);
  if (!decoded) {
    Record(kms_uri, "bad_response", handshakes, latency, true);
    LogLine(LogLevel::kWarn, "zk_peer_failed").Add("peer", kms_uri).Add("result", "bad_response");
    return Unavailable("peer KMS " + peer_name + " answered 200 with a body that is not base64");
  }
  Record(kms_uri, "ok", handshakes, latency, true);
  return std::move(*decoded);
}

void ZkPeerClient::Record(const std::string& kms_uri, const char* result, uint64_t handshakes,
                          std::chrono::nanoseconds latency, bool sent) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = metrics_[kms_uri];
  if (!slot) slot = std::make_unique<PeerMetrics>();
  const size_t index = ResultIndex(result);
  if (index < kResultCount) ++slot->results[index];
  slot->connections += handshakes;
  if (sent) {
    ++slot->duration_count;
    slot->duration_sum += latency;
  }
}

std::string ZkPeerClient::MetricsText() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += "# HELP tkms_zk_peer_requests_total Ticket resolutions sent to peer KMSs over Zk, by result.\n";
  out += "# TYPE tkms_zk_peer_requests_total counter\n";
  for (const auto& [uri, m] : metrics_) {
    for (size_t i = 0; i < kResultCount; ++i) {
      out += "tkms_zk_peer_requests_total{peer=\"" + LabelValue(uri) + "\",result=\"" + kResults[i] + "\"} " +
             std::to_string(m->results[i]) + "\n";
    }
  }
  out += "# HELP tkms_zk_peer_connections_total Connections (TLS handshakes) opened to peer KMSs over Zk.\n";
  out += "# TYPE tkms_zk_peer_connections_total counter\n";
  for (const auto& [uri, m] : metrics_) {
    out += "tkms_zk_peer_connections_total{peer=\"" + LabelValue(uri) + "\"} " + std::to_string(m->connections) + "\n";
  }
  out += "# HELP tkms_zk_peer_request_duration_seconds Time from a Zk request's start to its answer or failure.\n";
  out += "# TYPE tkms_zk_peer_request_duration_seconds summary\n";
  for (const auto& [uri, m] : metrics_) {
    char sum[64];
    std::snprintf(sum, sizeof sum, "%.6f", std::chrono::duration<double>(m->duration_sum).count());
    out += "tkms_zk_peer_request_duration_seconds_sum{peer=\"" + LabelValue(uri) + "\"} " + sum + "\n";
    out += "tkms_zk_peer_request_duration_seconds_count{peer=\"" + LabelValue(uri) + "\"} " +
           std::to_string(m->duration_count) + "\n";
  }
  return out;
}

uint64_t ZkPeerClient::requests(const std::string& kms_uri, const std::string& result) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = metrics_.find(kms_uri);
  const size_t index = ResultIndex(result);
  return it == metrics_.end() || index >= kResultCount ? 0 : it->second->results[index];
}

uint64_t ZkPeerClient::connections_opened(const std::string& kms_uri) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = metrics_.find(kms_uri);
  return it == metrics_.end() ? 0 : it->second->connections;
}

size_t ZkPeerClient::idle_connections(const std::string& kms_uri) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(kms_uri);
  return it == peers_.end() ? 0 : it->second->pool->idle.size();
}

}  // namespace tkms::zk
