// ZkPeerClient: the KMS's calls to peer KMSs over Zk, the transport of
// kms::PeerKmsClient (firmware/kms/peer_kms.h; TS 33.328 B.2.2.3 steps 6-11,
// RFC 6043 §10).
//
// Why: a responder's KMS (KMS_R) resolving a ticket of another domain sends
// the RESOLVE_INIT to the issuing KMS (KMS_I) and waits for its answer while
// a UE waits for KMS_R. A dead, slow or flooded peer must cost that UE a
// bounded time, must never hold more than a bounded share of KMS_R's handler
// threads, and must not be hammered with handshakes while it is down; a
// healthy peer must not cost a TLS handshake (RSA in the token) per request.
//
// Behaviour (the contract of peer_kms.h, with the `zk` settings):
//   - transport: HTTPS with mutual TLS (RFC 5246 §7.4.4, §7.4.6) on one
//     shared in-memory web::client::TlsClientConfig (the KMS's own chain
//     and token key, TlsClientConfig::Create); the server is verified per
//     relation by ZkTrust::ServerVerifierFor (pinned certificate or the
//     relation's CA, and the certificate names the relation's kms_uri; the
//     endpoint's host is only where to connect);
//   - wire (TS 33.328 Annex A): POST /keymanagement?requesttype=ticketresolve,
//     Content-Type application/mikey, the message in base64; 200 -> the
//     base64-decoded body; any other status, or a body that is not base64,
//     -> kUnavailable naming it;
//   - per peer a pool of keep-alive connections, at most
//     max_connections_per_peer, which is also the number of requests in
//     progress: one more is refused at once with kResourceExhausted (no
//     queue, no waiting);
//   - deadlines: connect (TCP + TLS handshake) connect_timeout_ms, then the
//     request written and the response read response_timeout_ms; an idle
//     pooled connection the peer had closed is replaced once, transparently
//     (web/client/http_client.h);
//   - after a connect or handshake failure the peer is in a retry pause:
//     kUnavailable at once for retry_after_failure_ms, then it is tried again
//     (it recovers without a restart);
//   - Update applies a new configuration at once: a removed relation gives
//     kNotFound to new calls and its idle connections are closed (calls in
//     progress finish, their connections are not pooled again); a relation
//     whose endpoint, certificate or CA changed loses its pool and pause; new
//     settings or a new TLS identity drop every pool;
//   - metrics per peer (MetricsText, Prometheus text format 0.0.4):
//     tkms_zk_peer_requests_total{peer,result} with result one of ok,
//     connect_failed, unavailable, http_error, bad_response, refused_busy,
//     retry_pause; tkms_zk_peer_connections_total{peer} (connections opened,
//     each a TLS handshake); tkms_zk_peer_request_duration_seconds_sum /
//     _count{peer} (requests that were sent). The peer label is a configured
//     kms_uri, never a value from a request; series of removed peers stay.
//   - log lines (firmware/base/log.h): a failed request (peer, result,
//     reason) and the start of a retry pause; never message bytes.
// Thread-safety: all methods may be called from any thread at once; no lock
// is held during network I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/kms/peer_kms.h"
#include "firmware/zk/zk_trust.h"
#include "hal/clock.h"
#include "provisioning/config.h"
#include "web/client/tls_client.h"

namespace tkms::zk {

struct ZkPool;  // one relation's connections (peer_client.cpp)

// The `zk` section (provisioning::ZkConfig), as durations.
struct ZkPeerSettings {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds response_timeout{5000};
  unsigned max_connections_per_peer = 4;
  std::chrono::milliseconds retry_after_failure{1000};
  // Largest answer body accepted (base64 of a RESOLVE_RESP or Error).
  size_t max_response_bytes = 256 * 1024;

  static ZkPeerSettings From(const provisioning::ZkConfig& config);
  bool operator==(const ZkPeerSettings&) const = default;
};

class ZkPeerClient final : public kms::PeerKmsClient {
 public:
  // `tls`: the KMS's Zk client identity, from
  // web::client::TlsClientConfig::Create({chain_der, key}) (shared by every
  // connection). `clock` (monotonic time of the retry pause) must outlive
  // the client; nullptr: the system clock.
  ZkPeerClient(std::shared_ptr<const ZkTrust> trust, ZkPeerSettings settings,
               std::shared_ptr<web::client::TlsClientConfig> tls, const hal::Clock* clock = nullptr);
  ~ZkPeerClient() override;
  ZkPeerClient(const ZkPeerClient&) = delete;
  ZkPeerClient& operator=(const ZkPeerClient&) = delete;

  // kms::PeerKmsClient (peer_kms.h).
  Result<std::vector<uint8_t>> Resolve(const std::string& kms_uri, ByteSpan resolve_init) override;

  // Applies a new configuration at once (see above). kInvalidArgument if
  // `trust` or `tls` is null or `tls` is not an in-memory configuration (the
  // old configuration stays then).
  Status Update(std::shared_ptr<const ZkTrust> trust, ZkPeerSettings settings,
                std::shared_ptr<web::client::TlsClientConfig> tls);

  // The per-peer series in the Prometheus text format (appended to /metrics).
  std::string MetricsText() const;

  // Readers for tests and tkmsd.
  uint64_t requests(const std::string& kms_uri, const std::string& result) const;
  uint64_t connections_opened(const std::string& kms_uri) const;
  size_t idle_connections(const std::string& kms_uri) const;

 private:
  struct Peer;
  struct PeerMetrics;
  class Lease;

  void Record(const std::string& kms_uri, const char* result, uint64_t handshakes,
              std::chrono::nanoseconds latency, bool sent);
  static Status Check(const std::shared_ptr<const ZkTrust>& trust,
                      const std::shared_ptr<web::client::TlsClientConfig>& tls);

  const hal::Clock* clock_;
  mutable std::mutex mu_;
  ZkPeerSettings settings_;
  std::shared_ptr<web::client::TlsClientConfig> tls_;
  std::shared_ptr<const ZkTrust> trust_;
  std::map<std::string, std::shared_ptr<Peer>> peers_;  // by kms_uri
  std::map<std::string, std::unique_ptr<PeerMetrics>> metrics_;
};

}  // namespace tkms::zk
