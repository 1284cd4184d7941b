// EchoServer: a bare CivetWeb server that answers POST /keymanagement with
// the request body echoed back, for the HTTP benchmark's ceiling.
//
// Why: the cost of the Annex A front end (TS 33.328 Annex A: checks, base64,
// the KMS service, metrics, logging) is only meaningful next to what the same
// CivetWeb configuration costs with no work at all. The echo server is
// configured exactly like the Ua listener of WebServer (same CivetListener:
// worker threads, TCP_NODELAY, keep-alive and timeouts from the same
// WebServerOptions, one mg_write per response); its handler does no
// validation: any POST /keymanagement gets 200, Content-Type
// application/mikey and the body it sent (read up to max_body_bytes, the
// same bound as the Ua listener; a larger declared body gets 413). Anything
// else gets 404. It logs nothing per request and has no admin listener.
// Never run it on a production appliance.
#pragma once

#include <cstdint>
#include <memory>

#include "firmware/base/status.h"
#include "web/server.h"

namespace tkms::web {

namespace internal {
class CivetListener;
}  // namespace internal

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
  EchoServer() = default;

  std::unique_ptr<internal::CivetListener> listener_;
  uint16_t port_ = 0;
};

// Starts the echo server on options.ua_listen ("Echo listener ADDR:PORT: ..."
// on errors); options.admin_listen is not used.
Result<std::unique_ptr<EchoServer>> StartEchoServer(const WebServerOptions& options);

}  // namespace tkms::web
