// WebServer: the KMS's HTTP front end. The Ua listener speaks 3GPP TS 33.328
// Annex A (MIKEY-TICKET, RFC 6043, over HTTP) to UEs; the admin listener
// serves /healthz, /readyz and /metrics to the operator, and the POST
// actions tkmsd registers (POST /admin/bundle, docs/bundles.md).
//
// Why: Annex A fixes the HTTP binding of the MIKEY-TICKET exchanges:
//   POST /keymanagement?requesttype=ticketrequest|ticketresolve   (A.2)
//   Content-Type: application/mikey, body = base64(MIKEY message)
//   200 + base64 MIKEY response or MIKEY Error; 4xx: the UE erred; 5xx: the
//   KMS erred.
// WebServer wires the pieces: a UaHandler (ua_handler.h: every HTTP-level
// check in a fixed order, docs/http.md has the table; the KmsService; the
// metrics; one log line per request) and an AdminHandler (admin_handler.h),
// each behind its own plaintext listener (transport.h), sharing one Metrics.
//
// Two listeners with separate worker pools, so the admin listener keeps
// answering (health checks, scrapes) while every Ua worker is busy.
// Transport security comes with the TLS transport of the next issue, which
// feeds the same handlers.
//
// Lifecycle: Start() binds both listeners or fails with a Status naming the
// listener ("Ua listener 127.0.0.1:8080: cannot bind to ..."). Stop() first
// refuses new Ua requests (503, Connection: close) and reports not-ready on
// /readyz, waits for the Ua requests already in progress to finish and write
// their responses, then stops both listeners. Stop() is idempotent,
// also runs from the destructor, and must not be called from a handler
// thread (it would wait for itself).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "firmware/base/status.h"
#include "firmware/kms/service.h"
#include "web/admin_handler.h"
#include "web/metrics.h"
#include "web/transport.h"
#include "web/ua_handler.h"

namespace tkms::web {

struct WebServerOptions {
  // "ADDR:PORT", IPv4 dotted quad; port 0 picks a free port (see ua_port()).
  std::string ua_listen = "127.0.0.1:8080";
  std::string admin_listen = "127.0.0.1:8081";
  // Largest accepted Ua body (base64 text, before decoding; for chunked
  // bodies after removing the chunk framing); larger: 413.
  size_t max_body_bytes = 16384;
  // Worker threads of the Ua listener; a keep-alive connection holds its
  // worker while idle, up to keep_alive_timeout_ms.
  unsigned worker_threads = 8;
  // Socket read/write timeout per request.
  unsigned request_timeout_ms = 10000;
  // Idle time a kept-alive Ua connection may wait for its next request;
  // 0 = no keep-alive (Connection: close after every response).
  unsigned keep_alive_timeout_ms = 30000;
  // Worker threads of the admin listener (which never keeps connections
  // alive, so a scraper cannot park on a worker).
  unsigned admin_threads = 2;
  // POST routes of the admin listener, besides GET /healthz, /readyz, /metrics.
  std::vector<AdminPostRoute> admin_post_routes;
};

class WebServer {
 public:
  // Starts the Ua listener, then the admin listener. Errors (kInvalidArgument
  // for bad options or addresses, kFailedPrecondition when a listener cannot
  // start, e.g. the port is in use) name the listener and its address.
  static Result<std::unique_ptr<WebServer>> Start(const WebServerOptions& options,
                                                  kms::KmsService& service);

  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // The bound ports (the real ones also when the options said port 0).
  uint16_t ua_port() const { return ua_port_; }
  uint16_t admin_port() const { return admin_port_; }

  // See "Lifecycle" above.
  void Stop();

  Metrics& metrics() { return metrics_; }
  const WebServerOptions& options() const { return options_; }

 private:
  WebServer(const WebServerOptions& options, kms::KmsService& service);

  WebServerOptions options_;
  Metrics metrics_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;  // serialises Stop()
  UaHandler ua_handler_;
  AdminHandler admin_handler_;
  // Declared after the handlers they call, so they are destroyed first.
  std::unique_ptr<HttpListener> ua_;
  std::unique_ptr<HttpListener> admin_;
  uint16_t ua_port_ = 0;
  uint16_t admin_port_ = 0;
};

}  // namespace tkms::web
