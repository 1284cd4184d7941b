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
// A third, optional listener serves Zk (docs/zk.md): the same Annex A
// binding, mutual TLS only, for peer KMSs and authorised network functions
// (a UaHandler in its Zk mode).
// WebServer wires the pieces: a UaHandler (ua_handler.h: every HTTP-level
// check in a fixed order, docs/http.md has the table; the KmsService; the
// metrics; one log line per request) and an AdminHandler (admin_handler.h),
// each behind its own listeners (transport.h: plaintext and/or HTTPS for Ua,
// one for admin), sharing one Metrics.
//
// Separate listeners with separate handler threads and connection caps, so
// the admin listener keeps answering (health checks, scrapes) while the Ua
// listeners are flooded; /readyz reports not-ready while a Ua listener
// cannot take a new request.
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
#include "web/tls_server.h"
#include "web/transport.h"
#include "web/ua_handler.h"

namespace tkms::web {

struct WebServerOptions {
  // "ADDR:PORT", IPv4 dotted quad; port 0 picks a free port (see ua_port()).
  // The plaintext Ua listener; "" for none.
  std::string ua_listen = "127.0.0.1:8080";
  // The HTTPS Ua listener ("" for none) and its credentials (required then).
  std::string ua_tls_listen;
  std::shared_ptr<TlsServer> ua_tls;
  std::string admin_listen = "127.0.0.1:8081";
  // Set: the admin listener speaks HTTPS with these credentials (which
  // require client certificates when the admin listener is off loopback).
  std::shared_ptr<TlsServer> admin_tls;
  // Largest accepted Ua body (base64 text, before decoding; for chunked
  // bodies after removing the chunk framing); larger: 413.
  size_t max_body_bytes = 16384;
  // Handler threads of each Ua listener.
  unsigned worker_threads = 8;
  // Total time for one request, head and body (and the TLS handshake for a
  // connection's first request).
  unsigned request_timeout_ms = 10000;
  // Idle time a kept-alive Ua connection may wait for its next request;
  // 0 = no keep-alive (Connection: close after every response).
  unsigned keep_alive_timeout_ms = 30000;
  // Per Ua listener (transport.h).
  size_t max_connections = 4096;
  size_t max_connections_per_source = 256;
  size_t max_pending_requests = 256;
  size_t max_header_bytes = 8192;
  size_t max_header_fields = 100;
  unsigned drain_timeout_ms = 5000;
  bool reuse_port = false;
  // Handler threads of the admin listener (which never keeps connections
  // alive, and has its own connection caps, so a Ua flood cannot reach it).
  unsigned admin_threads = 2;
  // POST routes of the admin listener, besides GET /healthz, /readyz, /metrics.
  std::vector<AdminPostRoute> admin_post_routes;
  // The Zk listener for peer KMSs and network functions (docs/zk.md), "" for
  // none; with it, zk_tls (credentials that require a client certificate)
  // and zk_authorizer are required. Its own handler threads; the other
  // limits are the Ua listener's.
  std::string zk_listen;
  std::shared_ptr<TlsServer> zk_tls;
  ZkAuthorizer zk_authorizer;
  unsigned zk_threads = 4;
  // Sockets bound before the server starts (tkmsd binds its ports before it
  // drops privileges): a listener with one uses it instead of binding its
  // *_listen address.
  struct BoundSockets {
    std::shared_ptr<ListenSocket> ua, ua_tls, admin, zk;
  };
  BoundSockets sockets;
};

// The ListenerConfig of a Ua-style listener from `options` (threads,
// deadlines, caps; shared by WebServer's Ua listeners and the echo server).
ListenerConfig UaListenerConfig(const WebServerOptions& options, std::string name, std::string listen,
                                std::shared_ptr<TlsServer> tls);

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
  uint16_t ua_port() const { return ua_port_; }          // 0 without a plaintext Ua listener
  uint16_t ua_tls_port() const { return ua_tls_port_; }  // 0 without an HTTPS Ua listener
  uint16_t admin_port() const { return admin_port_; }
  uint16_t zk_port() const { return zk_port_; }  // 0 without a Zk listener
  // Whether every Ua listener can take a new request now (for /readyz).
  bool UaReady() const;

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
  std::unique_ptr<UaHandler> zk_handler_;
  // Declared after the handlers they call, so they are destroyed first.
  std::unique_ptr<HttpListener> zk_;
  std::unique_ptr<HttpListener> ua_;
  std::unique_ptr<HttpListener> ua_tls_;
  std::unique_ptr<HttpListener> admin_;
  uint16_t ua_port_ = 0;
  uint16_t ua_tls_port_ = 0;
  uint16_t admin_port_ = 0;
  uint16_t zk_port_ = 0;
};

}  // namespace tkms::web
