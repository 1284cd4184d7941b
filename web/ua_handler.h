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

#include "firmware/kms/service.h"
#include "web/http_handler.h"
#include "web/metrics.h"

namespace tkms::web {

class UaHandler final : public HttpHandler {
 public:
  // `stopping` is raised by the owner when it shuts down: requests then get
  // 503 with Retry-After and Connection: close.
  UaHandler(size_t max_body_bytes, kms::KmsService& service, Metrics& metrics,
            const std::atomic<bool>& stopping)
      : max_body_bytes_(max_body_bytes), service_(service), metrics_(metrics), stopping_(stopping) {}

  BodyPlan PlanBody(const HttpRequest& head) override;
  HttpResponse Handle(const HttpRequest& request) override;
  void OnProtocolError(int status) noexcept override { metrics_.RecordProtocolError(status); }
  void OnConnectionEvent(ConnectionEvent event) noexcept override {
    metrics_.RecordConnectionEvent(Metrics::ListenerKind::kUa, event);
  }

 private:
  size_t max_body_bytes_;
  kms::KmsService& service_;
  Metrics& metrics_;
  const std::atomic<bool>& stopping_;
};

}  // namespace tkms::web
