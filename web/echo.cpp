#include "web/echo.h"

#include <string>
#include <utility>

#include "web/annex_a.h"
#include "web/http_framing.h"

namespace tkms::web {
namespace {

bool IsEcho(const HttpRequest& request) {
  return request.method == "POST" && PathIs(request, kKeyManagementPath);
}

}  // namespace

BodyPlan EchoHandler::PlanBody(const HttpRequest& head) {
  return IsEcho(head) ? BodyPlan::Read(max_body_bytes_) : BodyPlan::Skip();
}

HttpResponse EchoHandler::Handle(const HttpRequest& request) {
  if (!IsEcho(request)) return TextResponse(404, "not found");
  if (request.framing.error != FramingError::kNone) {
    return TextResponse(400, FramingErrorText(request.framing.error));
  }
  switch (request.body_state) {
    case BodyState::kEmpty:
    case BodyState::kComplete: break;
    case BodyState::kTooLarge: return TextResponse(413, "body too large");
    case BodyState::kIncomplete:
    case BodyState::kBadChunked: return TextResponse(400, "incomplete body");
    case BodyState::kNotRead: return TextResponse(500, "internal error");
  }
  HttpResponse response;
  response.status = 200;
  response.content_type = std::string(kMikeyMediaType);
  response.body = request.body;
  return response;
}

EchoServer::~EchoServer() { Stop(); }

void EchoServer::Stop() {
  if (listener_) listener_->Stop();
}

Result<std::unique_ptr<EchoServer>> StartEchoServer(const WebServerOptions& options) {
  if (options.max_body_bytes == 0) return InvalidArgument("max_body_bytes must be > 0");
  // The same listener settings as the Ua listener, HTTPS when options.ua_tls is set.
  ListenerConfig config = UaListenerConfig(options, "Echo listener", options.ua_listen, options.ua_tls);
  config.log_name = "echo";
  std::unique_ptr<EchoServer> server(new EchoServer(options.max_body_bytes));
  auto listener = StartListener(config, server->handler_);
  if (!listener.ok()) return std::move(listener).error();
  server->port_ = (*listener)->port();
  server->listener_ = std::move(*listener);
  return server;
}

}  // namespace tkms::web
