// UaHandler: the Ua interface of 3GPP TS 33.328 Annex A as an HttpHandler
// (http_handler.h): HttpRequest in, HttpResponse out, no sockets.
//
// Why: Annex A fixes the HTTP binding of the MIKEY-TICKET exchanges (RFC
// 6043):
//   POST /keymanagement?requesttype=ticketrequest|ticketresolve   (A.2)
//   Content-Type: application/mikey, body = base64(MIKEY message)
//   200 + base64 MIKEY response or MIKEY Error; 4xx: the UE erred; 5xx: the
//   KMS erred.
// This handler performs every HTTP-level check in the documented order
// (docs/http.md, "The checks, in order"), hands the decoded MIKEY bytes to
// kms::KmsService, maps its KmsReply onto the status codes, counts
// everything in Metrics before the response leaves, and logs one logfmt line
// per request after it was written (never body bytes). The body is read by
// the transport up to max_body_bytes (Content-Length or chunked, RFC 7230
// §3.3.3, §4.1); PlanBody asks for it only when checks 1-4 passed.
//
// Thread-safety: PlanBody/Handle run concurrently on transport workers; the
// service must be thread-safe (kms::KmsService says so), Metrics is.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>

#include "firmware/kms/service.h"
#include "web/http_handler.h"
#include "web/metrics.h"

namespace tkms::web {

// The Zk listener (docs/zk.md; TS 33.328 B.2.2.3, TR 33.828 step 5) serves
// the same Annex A binding to peer KMSs and authorised network functions. Who
// the client is comes from its TLS client certificate alone (the listener
// verified it against the trust relations' CAs and the pinned certificates);
// the owner (tkmsd) maps that certificate to a client with its current trust
// relations on every request, so a relation removed by a reload stops being
// honoured at once, also on open connections.
struct ZkAuthorization {
  kms::ZkClientKind kind = kms::ZkClientKind::kNone;  // kNone: 403
  std::string name;     // the peer's kms_uri or the network function's name (also when refused, if known)
  std::string refusal;  // why not, when kind is kNone (log-safe)
};
using ZkAuthorizer = std::function<ZkAuthorization(const PeerIdentity&)>;

class UaHandler final : public HttpHandler {
 public:
  // `stopping` is raised by the owner when it shuts down: requests then get
  // 503 with Retry-After and Connection: close.
  UaHandler(size_t max_body_bytes, kms::KmsService& service, Metrics& metrics,
            const std::atomic<bool>& stopping)
      : max_body_bytes_(max_body_bytes), service_(service), metrics_(metrics), stopping_(stopping) {}
  // The handler of the Zk listener: only requesttype=ticketresolve, from a
  // client `authorizer` names (else 403 and an audit line); the service gets
  // Interface::kZk with the client; every request is logged as an audit line
  // (zk_request: client, certificate, ticket initiator and responders) and
  // counted in tkms_zk_requests_total.
  UaHandler(size_t max_body_bytes, kms::KmsService& service, Metrics& metrics,
            const std::atomic<bool>& stopping, ZkAuthorizer authorizer)
      : max_body_bytes_(max_body_bytes),
        service_(service),
        metrics_(metrics),
        stopping_(stopping),
        zk_authorizer_(std::move(authorizer)) {}

  BodyPlan PlanBody(const HttpRequest& head) override;
  HttpResponse Handle(const HttpRequest& request) override;
  void OnProtocolError(int status) noexcept override { metrics_.RecordProtocolError(status); }
  void OnConnectionEvent(ConnectionEvent event) noexcept override {
    metrics_.RecordConnectionEvent(zk() ? Metrics::ListenerKind::kZk : Metrics::ListenerKind::kUa, event);
  }

 private:
  bool zk() const { return static_cast<bool>(zk_authorizer_); }

  size_t max_body_bytes_;
  kms::KmsService& service_;
  Metrics& metrics_;
  const std::atomic<bool>& stopping_;
  ZkAuthorizer zk_authorizer_;  // set: the Zk listener
};

}  // namespace tkms::web
