// AdminHandler: the admin listener's requests as an HttpHandler
// (http_handler.h): GET /healthz, /readyz, /metrics and the POST routes the
// daemon registers (POST /admin/bundle, docs/bundles.md).
//
// Why: the operator, the orchestrator and Prometheus need answers while
// every Ua worker is busy, so the admin listener is a separate transport
// with its own workers; its handler is plain values in, values out, and
// testable without sockets. A POST route declares its own body cap, which
// the transport enforces before the route's handler runs (Content-Length or
// chunked, RFC 7230 §3.3.3, §4.1; 413 above the cap, RFC 7231 §6.5.11).
//
// Thread-safety: called concurrently from the admin workers; route handlers
// must be thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/kms/service.h"
#include "web/http_handler.h"
#include "web/metrics.h"

namespace tkms::web {

// An operator action on the admin listener (POST PATH, e.g. /admin/bundle):
// the handler gets the request body (at most max_body_bytes, sent with
// Content-Length or chunked) and returns the status and a JSON body. It runs
// on an admin worker thread; an exception it throws becomes a 500.
struct AdminPostReply {
  int status = 200;
  std::string json_body;
};
struct AdminPostRoute {
  std::string path;
  size_t max_body_bytes = 1 << 20;
  // `peer` is who sent it: the address and, on a mutual-TLS admin
  // listener, the operator's verified certificate identity (for the audit).
  std::function<AdminPostReply(std::string_view body, const Peer& peer)> handler;
};

class AdminHandler final : public HttpHandler {
 public:
  // `stopping` makes /readyz answer 503 "shutting down".
  AdminHandler(std::vector<AdminPostRoute> routes, kms::KmsService& service, Metrics& metrics,
               const std::atomic<bool>& stopping)
      : routes_(std::move(routes)), service_(service), metrics_(metrics), stopping_(stopping) {}

  // /readyz also reports not-ready while this says the Ua listeners cannot
  // take a new request. Set before the admin listener starts.
  void SetUaReadiness(std::function<bool()> ua_ready) { ua_ready_ = std::move(ua_ready); }

  BodyPlan PlanBody(const HttpRequest& head) override;
  HttpResponse Handle(const HttpRequest& request) override;
  void OnConnectionEvent(ConnectionEvent event) noexcept override {
    metrics_.RecordConnectionEvent(Metrics::ListenerKind::kAdmin, event);
  }

 private:
  const AdminPostRoute* FindRoute(const HttpRequest& request) const;
  HttpResponse Readyz();

  std::vector<AdminPostRoute> routes_;
  kms::KmsService& service_;
  Metrics& metrics_;
  const std::atomic<bool>& stopping_;
  std::function<bool()> ua_ready_;
};

}  // namespace tkms::web
