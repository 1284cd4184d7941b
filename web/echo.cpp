#include "web/echo.h"

#include <civetweb.h>

#include <cstring>
#include <string>
#include <utility>

#include "web/annex_a.h"
#include "web/civet_listener.h"

namespace tkms::web {
namespace {

int HandleEcho(mg_connection* conn, size_t max_body_bytes, bool keep_alive_enabled) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr) return 0;
  const bool echo =
      info->local_uri_raw != nullptr && std::strcmp(info->local_uri_raw, "/keymanagement") == 0 &&
      info->request_method != nullptr && std::strcmp(info->request_method, "POST") == 0;
  HttpResponse response;
  bool consumed = false;
  if (!echo) {
    response = TextResponse(404, "not found");
    consumed = info->content_length <= 0;
  } else if (info->content_length < 0) {
    response.status = 200;
    response.content_type = std::string(kMikeyMediaType);
    consumed = mg_get_header(conn, "Transfer-Encoding") == nullptr;
  } else if (static_cast<unsigned long long>(info->content_length) > max_body_bytes) {
    response = TextResponse(413, "body too large");
  } else {
    response.status = 200;
    response.content_type = std::string(kMikeyMediaType);
    if (info->content_length > 0) internal::SendContinueIfExpected(conn);
    consumed = internal::ReadBody(conn, static_cast<size_t>(info->content_length), response.body);
  }
  const bool keep_alive = keep_alive_enabled && consumed && internal::RequestAllowsKeepAlive(conn);
  // The same framing as the Ua listener: every header, one mg_write.
  internal::SendResponse(conn, response, NewRequestId(), keep_alive);
  return response.status;
}

}  // namespace

EchoServer::~EchoServer() { Stop(); }

void EchoServer::Stop() {
  if (listener_) listener_->Stop();
}

Result<std::unique_ptr<EchoServer>> StartEchoServer(const WebServerOptions& options) {
  if (options.max_body_bytes == 0) return InvalidArgument("max_body_bytes must be > 0");
  internal::ListenerConfig config;
  config.name = "Echo listener";
  config.log_name = "echo";
  config.listen = options.ua_listen;
  config.threads = options.worker_threads;
  config.request_timeout_ms = options.request_timeout_ms;
  config.keep_alive_timeout_ms = options.keep_alive_timeout_ms;
  const size_t max_body = options.max_body_bytes;
  const bool keep_alive = options.keep_alive_timeout_ms > 0;
  auto listener = internal::CivetListener::Start(std::move(config),
                                                 [max_body, keep_alive](mg_connection* conn) {
                                                   return HandleEcho(conn, max_body, keep_alive);
                                                 });
  if (!listener.ok()) return std::move(listener).error();
  std::unique_ptr<EchoServer> server(new EchoServer());
  server->port_ = (*listener)->port();
  server->listener_ = std::move(*listener);
  return server;
}

}  // namespace tkms::web
