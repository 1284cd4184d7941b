#include "web/admin_handler.h"

#include <exception>
#include <optional>
#include <utility>

#include "firmware/base/log.h"
#include "web/http_framing.h"

namespace tkms::web {
namespace {

// JSON string contents: quotes, backslashes and control characters escaped;
// bytes outside ASCII replaced (details are ASCII by contract).
std::string JsonEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else if (u >= 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

const char* JsonBool(bool b) { return b ? "true" : "false"; }

// Why the body of a POST to a route cannot be handed over, or nullopt.
std::optional<HttpResponse> RefuseBody(const HttpRequest& request, size_t max_body_bytes) {
  if (request.framing.error != FramingError::kNone) {
    return TextResponse(400, FramingErrorText(request.framing.error));
  }
  if (request.framing.kind == BodyFraming::Kind::kNone) {
    return TextResponse(411, "Content-Length required");
  }
  switch (request.body_state) {
    case BodyState::kEmpty:
    case BodyState::kComplete: return std::nullopt;
    case BodyState::kTooLarge:
      return TextResponse(413, "body larger than " + std::to_string(max_body_bytes) + " bytes");
    case BodyState::kIncomplete: return TextResponse(400, "incomplete body");
    case BodyState::kBadChunked: return TextResponse(400, "malformed or incomplete chunked body");
    case BodyState::kNotRead: break;
  }
  return TextResponse(500, "internal error");
}

// POST to an admin route: method, framing and size checks (the transport
// read the body as planned), then the route's handler (exceptions become 500).
HttpResponse ServePost(const HttpRequest& request, const AdminPostRoute& route) {
  if (request.method != "POST") {
    HttpResponse r = TextResponse(405, "method not allowed");
    r.extra_headers.emplace_back("Allow", "POST");
    return r;
  }
  if (auto refused = RefuseBody(request, route.max_body_bytes)) return std::move(*refused);
  AdminPostReply reply;
  try {
    reply = route.handler(request.body, request.peer);
  } catch (const std::exception& e) {
    LogLine(LogLevel::kError, "admin_handler_threw").Add("path", route.path).Add("what", e.what());
    reply = AdminPostReply{500, "{\"error\":\"internal error\"}\n"};
  } catch (...) {
    reply = AdminPostReply{500, "{\"error\":\"internal error\"}\n"};
  }
  HttpResponse r;
  r.status = reply.status;
  r.content_type = "application/json";
  r.body = std::move(reply.json_body);
  return r;
}

}  // namespace

const AdminPostRoute* AdminHandler::FindRoute(const HttpRequest& request) const {
  for (const AdminPostRoute& route : routes_) {
    if (PathIs(request, route.path)) return &route;
  }
  return nullptr;
}

BodyPlan AdminHandler::PlanBody(const HttpRequest& head) {
  const AdminPostRoute* route = FindRoute(head);
  if (route == nullptr || head.method != "POST") return BodyPlan::Skip();
  return BodyPlan::Read(route->max_body_bytes);
}

HttpResponse AdminHandler::Readyz() {
  kms::Readiness readiness;
  bool failed = false;
  try {
    readiness = service_.CheckReadiness();
  } catch (const std::exception& e) {
    failed = true;
    readiness.detail = std::string("readiness check threw: ") + e.what();
  }
  bool ready = !failed && readiness.ready();
  std::string detail = readiness.detail;
  if (stopping_.load()) {
    ready = false;
    detail = "shutting down" + (detail.empty() ? std::string() : "; " + detail);
  } else if (ua_ready_ && !ua_ready_()) {
    ready = false;
    detail = "Ua listener at capacity (connections or queued requests)" + (detail.empty() ? std::string() : "; " + detail);
  }
  HttpResponse response;
  response.status = ready ? 200 : 503;
  response.content_type = "application/json";
  response.body = std::string("{\"ready\":") + JsonBool(ready) +
                  ",\"token\":" + JsonBool(readiness.token_ready) +
                  ",\"config\":" + JsonBool(readiness.config_loaded) +
                  ",\"keys\":" + JsonBool(readiness.keys_present) + ",\"detail\":\"" +
                  JsonEscape(detail) + "\"}\n";
  return response;
}

HttpResponse AdminHandler::Handle(const HttpRequest& request) {
  const AdminPostRoute* route = FindRoute(request);
  const bool healthz = PathIs(request, "/healthz");
  const bool readyz = PathIs(request, "/readyz");
  const bool metrics = PathIs(request, "/metrics");

  HttpResponse response;
  if (route != nullptr) {
    response = ServePost(request, *route);
  } else if (!healthz && !readyz && !metrics) {
    response = TextResponse(404, "not found");
  } else if (request.method != "GET") {
    response = TextResponse(405, "method not allowed");
    response.extra_headers.emplace_back("Allow", "GET");
  } else if (healthz) {
    response = TextResponse(200, "ok");
  } else if (readyz) {
    response = Readyz();
  } else {
    response.status = 200;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = metrics_.RenderPrometheus();
  }
  // The admin listener never keeps connections alive.
  response.keep_alive = false;
  LogLine(LogLevel::kDebug, "admin_request")
      .Add("id", request.id)
      .Add("peer", request.peer.address)
      .Add("path", request.path())
      .Add("status", response.status);
  return response;
}

}  // namespace tkms::web
