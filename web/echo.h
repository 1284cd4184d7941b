// EchoServer: a bare server that answers POST /keymanagement with the
// request body echoed back, for the HTTP benchmark's ceiling.
//
// Why: the cost of the Annex A front end (TS 33.328 Annex A: checks, base64,
// the KMS service, metrics, logging) is only meaningful next to what the
// same transport costs with no work at all. The echo server runs on the same
// plaintext listener as the Ua interface of WebServer (transport.h: worker
// threads, TCP_NODELAY, keep-alive and timeouts from the same
// WebServerOptions, one write per response); its handler (EchoHandler) does
// no validation: any POST /keymanagement gets 200, Content-Type
// application/mikey and the body it sent (Content-Length or chunked, read up
// to max_body_bytes, the same bound as the Ua listener; a larger body gets
// 413). Anything else gets 404. It logs nothing per request and has no admin
// listener. Never run it on a production appliance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "firmware/base/status.h"
#include "web/http_handler.h"
#include "web/server.h"
#include "web/transport.h"

namespace tkms::web {

class EchoHandler final : public HttpHandler {
 public:
  explicit EchoHandler(size_t max_body_bytes) : max_body_bytes_(max_body_bytes) {}
  BodyPlan PlanBody(const HttpRequest& head) override;
  HttpResponse Handle(const HttpRequest& request) override;

 private:
  size_t max_body_bytes_;
};

class EchoServer {
 public:
  ~EchoServer();
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  // The bound port of the listener (options.ua_listen).
  uint16_t port() const { return port_; }
  // Stops the listener; idempotent, also from the destructor.
  void Stop();

 private:
  friend Result<std::unique_ptr<EchoServer>> StartEchoServer(const WebServerOptions& options);
  explicit EchoServer(size_t max_body_bytes) : handler_(max_body_bytes) {}

  EchoHandler handler_;
  std::unique_ptr<HttpListener> listener_;  // after handler_: destroyed first
  uint16_t port_ = 0;
};

// Starts the echo server on options.ua_listen ("Echo listener ADDR:PORT: ..."
// on errors), HTTPS when options.ua_tls is set; options.admin_listen is not used.
Result<std::unique_ptr<EchoServer>> StartEchoServer(const WebServerOptions& options);

}  // namespace tkms::web
