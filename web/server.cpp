#include "web/server.h"

#include <civetweb.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <optional>
#include <utility>

#include "firmware/base/encoding.h"
#include "firmware/base/log.h"
#include "web/annex_a.h"
#include "web/civet_listener.h"

namespace tkms::web {
namespace {

using Clock = std::chrono::steady_clock;

// Everything the request log line and the metrics need about one Ua request.
struct UaRecord {
  std::string id;
  std::string peer;
  std::optional<kms::RequestType> type;
  // Set when an Annex A check refused the request (tkms_http_rejections_total).
  std::optional<int> rejection_status;
  // Set when the request reached the service.
  std::optional<kms::KmsReply> reply;
  std::string outcome = "rejected";
  std::string refusal = "-";
  std::string detail;
  size_t bytes_in = 0;
  // The request body has been read completely (or there was none), so the
  // connection can carry another request.
  bool body_consumed = false;
};

// Counts a Ua request as in progress for Stop()'s drain.
class InFlight {
 public:
  InFlight(std::mutex& mu, std::condition_variable& cv, size_t& count)
      : mu_(mu), cv_(cv), count_(count) {
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
  }
  ~InFlight() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --count_;
    }
    cv_.notify_all();
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::mutex& mu_;
  std::condition_variable& cv_;
  size_t& count_;
};

std::string_view LocalPath(const mg_request_info& info) {
  return info.local_uri_raw != nullptr ? std::string_view(info.local_uri_raw) : std::string_view();
}

// After a refusal that did not read the body: reads and drops a small,
// Content-Length-framed body so the connection can be reused. Chunked or
// oversized bodies, conflicting lengths and bodies the client is waiting to
// be invited for (Expect: 100-continue) are not read: the connection closes.
bool DrainForReuse(mg_connection* conn, const mg_request_info& info, size_t max_body_bytes) {
  if (mg_get_header(conn, "Transfer-Encoding") != nullptr) return false;
  if (internal::CountHeaders(info, "Content-Length") > 1) return false;
  if (info.content_length <= 0) return true;  // no body (-1: no Content-Length)
  if (static_cast<unsigned long long>(info.content_length) > max_body_bytes) return false;
  if (mg_get_header(conn, "Expect") != nullptr) return false;
  return internal::DiscardBody(conn, static_cast<size_t>(info.content_length));
}

HttpResponse Refuse(UaRecord& rec, const Rejection& rejection) {
  rec.rejection_status = rejection.status;
  rec.refusal = rejection.label;
  return TextResponse(rejection.status, rejection.reason);
}

// Maps a KmsReply onto the Annex A response.
HttpResponse ReplyToResponse(const kms::KmsReply& reply) {
  switch (reply.outcome) {
    case kms::Outcome::kOk:
    case kms::Outcome::kMikeyError: {
      HttpResponse response;
      response.status = 200;
      response.content_type = std::string(kMikeyMediaType);
      response.body = Base64Encode(reply.mikey);
      return response;
    }
    case kms::Outcome::kBadRequest: return TextResponse(400, "not a MIKEY message");
    case kms::Outcome::kUnavailable: {
      HttpResponse response = TextResponse(503, "KMS temporarily unavailable");
      response.extra_headers.emplace_back("Retry-After", "1");
      return response;
    }
    case kms::Outcome::kInternal: break;
  }
  return TextResponse(500, "internal error");
}

// The Annex A checks in their documented order (docs/http.md), then the
// service. Fills `rec`; returns the response to send.
HttpResponse ServeUa(mg_connection* conn, const mg_request_info& info,
                     const WebServerOptions& options, bool stopping, kms::KmsService& service,
                     UaRecord& rec) {
  if (stopping) {
    rec.refusal = "stopping";
    rec.body_consumed = DrainForReuse(conn, info, options.max_body_bytes);
    HttpResponse response = TextResponse(503, "KMS is shutting down");
    response.extra_headers.emplace_back("Retry-After", "1");
    return response;
  }

  // 1-4: refusals decided from the request head alone.
  std::optional<HttpResponse> refused;
  if (LocalPath(info) != kKeyManagementPath) {
    refused = Refuse(rec, {404, "path", "not found"});
  } else if (info.request_method == nullptr || std::strcmp(info.request_method, "POST") != 0) {
    refused = Refuse(rec, {405, "method", "method not allowed"});
    refused->extra_headers.emplace_back("Allow", "POST");
  } else if (auto type = ParseRequestType(info.query_string != nullptr ? info.query_string : "");
             !type.ok()) {
    refused = Refuse(rec, type.error());
  } else {
    rec.type = *type;
    const char* content_type = mg_get_header(conn, "Content-Type");
    if (content_type == nullptr || internal::CountHeaders(info, "Content-Type") != 1 ||
        !IsMikeyContentType(content_type)) {
      refused = Refuse(rec, {415, "content_type", "Content-Type must be application/mikey"});
    }
  }
  if (refused.has_value()) {
    rec.body_consumed = DrainForReuse(conn, info, options.max_body_bytes);
    return std::move(*refused);
  }

  // 5: body framing and size, before reading a byte of it.
  if (internal::CountHeaders(info, "Content-Length") > 1) {
    return Refuse(rec, {400, "content_length_repeated", "repeated Content-Length"});
  }
  if (mg_get_header(conn, "Transfer-Encoding") != nullptr) {
    return Refuse(rec, {411, "length_required",
                        "Transfer-Encoding is not accepted; send the body with Content-Length"});
  }
  if (info.content_length < 0) {
    return Refuse(rec, {411, "length_required", "Content-Length required"});
  }
  if (static_cast<unsigned long long>(info.content_length) > options.max_body_bytes) {
    return Refuse(rec, {413, "too_large",
                        "body larger than " + std::to_string(options.max_body_bytes) + " bytes"});
  }

  // 6: read exactly Content-Length bytes (at most max_body_bytes), decode.
  std::string body;
  const auto length = static_cast<size_t>(info.content_length);
  if (length > 0) internal::SendContinueIfExpected(conn);
  if (!internal::ReadBody(conn, length, body)) {
    rec.bytes_in = body.size();
    return Refuse(rec, {400, "incomplete_body", "body shorter than Content-Length"});
  }
  rec.bytes_in = body.size();
  rec.body_consumed = true;
  auto mikey = DecodeMikeyBody(body);
  if (!mikey.ok()) return Refuse(rec, mikey.error());

  // 7: the KMS service.
  const kms::RequestContext context{*rec.type, kms::Interface::kUa, rec.id, rec.peer};
  kms::KmsReply reply;
  try {
    reply = service.Handle(context, *mikey);
  } catch (const std::exception& e) {
    reply = kms::KmsReply{};
    reply.outcome = kms::Outcome::kInternal;
    reply.detail = std::string("service threw: ") + e.what();
  } catch (...) {
    reply = kms::KmsReply{};
    reply.outcome = kms::Outcome::kInternal;
    reply.detail = "service threw a non-standard exception";
  }
  if ((reply.outcome == kms::Outcome::kOk || reply.outcome == kms::Outcome::kMikeyError) &&
      reply.mikey.empty()) {
    reply.outcome = kms::Outcome::kInternal;
    reply.detail = "service returned no MIKEY message" +
                   (reply.detail.empty() ? std::string() : "; " + reply.detail);
  }
  HttpResponse response = ReplyToResponse(reply);
  rec.outcome = std::string(kms::OutcomeName(reply.outcome));
  rec.refusal =
      reply.refusal == kms::Refusal::kNone ? "-" : std::string(kms::RefusalName(reply.refusal));
  rec.reply = std::move(reply);
  return response;
}

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

}  // namespace

WebServer::WebServer(const WebServerOptions& options, kms::KmsService& service)
    : options_(options), service_(service) {}

WebServer::~WebServer() { Stop(); }

namespace {

// POST to an admin route: method, Content-Length and size checks, then the
// route's handler (exceptions become 500). The body is read completely or
// the request is refused; the admin listener closes every connection.
HttpResponse ServeAdminPost(mg_connection* conn, const mg_request_info& info, const AdminPostRoute& route) {
  const bool post = info.request_method != nullptr && std::strcmp(info.request_method, "POST") == 0;
  if (!post) {
    HttpResponse r = TextResponse(405, "method not allowed");
    r.extra_headers.emplace_back("Allow", "POST");
    return r;
  }
  if (info.content_length < 0) return TextResponse(411, "Content-Length required");
  if (static_cast<unsigned long long>(info.content_length) > route.max_body_bytes) {
    return TextResponse(413, "body larger than " + std::to_string(route.max_body_bytes) + " bytes");
  }
  std::string body;
  if (!internal::ReadBody(conn, static_cast<size_t>(info.content_length), body)) {
    return TextResponse(400, "incomplete body");
  }
  AdminPostReply reply;
  try {
    reply = route.handler(body);
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

Result<std::unique_ptr<WebServer>> WebServer::Start(const WebServerOptions& options,
                                                    kms::KmsService& service) {
  if (options.max_body_bytes == 0) return InvalidArgument("max_body_bytes must be > 0");
  for (const AdminPostRoute& route : options.admin_post_routes) {
    if (route.path.rfind("/admin/", 0) != 0 || route.path.size() > 128) {
      return InvalidArgument("admin POST route '" + route.path + "' must be a path under /admin/");
    }
    if (!route.handler) return InvalidArgument("admin POST route " + route.path + " has no handler");
    if (route.max_body_bytes == 0 || route.max_body_bytes > (size_t{64} << 20)) {
      return InvalidArgument("admin POST route " + route.path + ": max_body_bytes must be 1..64 MiB");
    }
  }
  if (options.max_body_bytes > (size_t{1} << 30))
    return InvalidArgument("max_body_bytes too large");
  std::unique_ptr<WebServer> server(new WebServer(options, service));
  WebServer* self = server.get();

  // (Built with the constructor of each string: g++ 12 at -O2 reports a
  // false -Wmaybe-uninitialized for short-literal assignment into the SSO
  // buffer of a member string.)
  internal::ListenerConfig ua_config{std::string("Ua listener"), std::string("ua"), options.ua_listen};
  ua_config.threads = options.worker_threads;
  ua_config.request_timeout_ms = options.request_timeout_ms;
  ua_config.keep_alive_timeout_ms = options.keep_alive_timeout_ms;
  auto ua = internal::CivetListener::Start(
      ua_config, [self](mg_connection* conn) { return self->HandleUa(conn); },
      [self](int status) { self->metrics_.RecordProtocolError(status); });
  if (!ua.ok()) return std::move(ua).error();
  server->ua_ = std::move(*ua);
  server->ua_port_ = server->ua_->port();

  internal::ListenerConfig admin_config{std::string("admin listener"), std::string("admin"),
                                        options.admin_listen};
  admin_config.threads = options.admin_threads;
  admin_config.request_timeout_ms = options.request_timeout_ms;
  admin_config.keep_alive_timeout_ms = 0;
  auto admin = internal::CivetListener::Start(
      admin_config, [self](mg_connection* conn) { return self->HandleAdmin(conn); });
  if (!admin.ok()) return std::move(admin).error();  // ~WebServer stops the Ua listener
  server->admin_ = std::move(*admin);
  server->admin_port_ = server->admin_->port();

  LogLine(LogLevel::kInfo, "web_started")
      .Add("ua_listen", options.ua_listen)
      .Add("admin_listen", options.admin_listen)
      .Add("ua_port", static_cast<unsigned>(server->ua_port_))
      .Add("admin_port", static_cast<unsigned>(server->admin_port_))
      .Add("workers", options.worker_threads);
  return server;
}

void WebServer::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  stopping_.store(true);
  {
    // CivetWeb drops any response written after mg_stop begins, so let the
    // Ua requests in progress finish first. Each is bounded by the request
    // timeout (socket I/O) and by the service's own bounds.
    std::unique_lock<std::mutex> drain(drain_mu_);
    drain_cv_.wait(drain, [this] { return in_flight_ == 0; });
  }
  if (ua_) ua_->Stop();
  if (admin_) admin_->Stop();
}

int WebServer::HandleUa(mg_connection* conn) {
  const Clock::time_point started = Clock::now();
  InFlight in_flight(drain_mu_, drain_cv_, in_flight_);
  const mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr) return 0;

  UaRecord rec;
  rec.id = NewRequestId();
  rec.peer = internal::PeerOf(*info);
  HttpResponse response;
  try {
    response = ServeUa(conn, *info, options_, stopping_.load(), service_, rec);
  } catch (const std::exception& e) {
    response = TextResponse(500, "internal error");
    rec.outcome = "internal";
    rec.detail = std::string("front end threw: ") + e.what();
  } catch (...) {
    response = TextResponse(500, "internal error");
    rec.outcome = "internal";
    rec.detail = "front end threw a non-standard exception";
  }

  // Counted before the response leaves, so a client that has its response
  // also sees it in /metrics. The latency ends here too: the one mg_write
  // that follows is a single send() of a small buffer.
  const auto latency = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started);
  if (rec.rejection_status.has_value()) metrics_.RecordRejection(*rec.rejection_status);
  std::string mikey_error = "-";
  std::string user = "-";
  if (rec.reply.has_value()) {
    const kms::KmsReply& reply = *rec.reply;
    if (rec.type.has_value()) metrics_.RecordRequest(*rec.type, reply.outcome, latency);
    metrics_.RecordRefusal(reply.refusal);
    if (reply.mikey_error.has_value()) {
      metrics_.RecordMikeyError(*reply.mikey_error);
      mikey_error = std::to_string(*reply.mikey_error);
    }
    if (!reply.user.empty()) user = reply.user;
    if (rec.detail.empty()) rec.detail = reply.detail;
  }

  // (ua_ is not used here: a request can arrive before Start() has stored it.)
  const bool keep_alive = options_.keep_alive_timeout_ms > 0 && !stopping_.load() &&
                          rec.body_consumed && internal::RequestAllowsKeepAlive(conn);
  const bool written = internal::SendResponse(conn, response, rec.id, keep_alive);

  LogLine line(response.status >= 500 ? LogLevel::kWarn : LogLevel::kInfo, "request");
  line.Add("id", rec.id)
      .Add("peer", rec.peer)
      .Add("type", rec.type.has_value() ? kms::RequestTypeName(*rec.type) : std::string_view("-"))
      .Add("status", response.status)
      .Add("outcome", rec.outcome)
      .Add("refusal", rec.refusal)
      .Add("mikey_error", mikey_error)
      .Add("user", user)
      .Add("bytes_in", static_cast<uint64_t>(rec.bytes_in))
      .Add("bytes_out", static_cast<uint64_t>(response.body.size()))
      .Add("us", static_cast<int64_t>(latency.count() / 1000));
  if (!written) line.Add("write", "failed");
  if (!rec.detail.empty()) line.Add("detail", rec.detail);
  return response.status;
}

int WebServer::HandleAdmin(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr) return 0;
  const std::string id = NewRequestId();
  const std::string_view path = LocalPath(*info);
  const AdminPostRoute* route = nullptr;
  for (const AdminPostRoute& r : options_.admin_post_routes) {
    if (path == r.path) route = &r;
  }
  const bool known = route != nullptr || path == "/healthz" || path == "/readyz" || path == "/metrics";
  const bool get = info->request_method != nullptr && std::strcmp(info->request_method, "GET") == 0;

  HttpResponse response;
  if (route != nullptr) {
    response = ServeAdminPost(conn, *info, *route);
  } else if (!known) {
    response = TextResponse(404, "not found");
  } else if (!get) {
    response = TextResponse(405, "method not allowed");
    response.extra_headers.emplace_back("Allow", "GET");
  } else if (path == "/healthz") {
    response = TextResponse(200, "ok");
  } else if (path == "/readyz") {
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
    }
    response.status = ready ? 200 : 503;
    response.content_type = "application/json";
    response.body = std::string("{\"ready\":") + JsonBool(ready) +
                    ",\"token\":" + JsonBool(readiness.token_ready) +
                    ",\"config\":" + JsonBool(readiness.config_loaded) +
                    ",\"keys\":" + JsonBool(readiness.keys_present) + ",\"detail\":\"" +
                    JsonEscape(detail) + "\"}\n";
  } else {
    response.status = 200;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = metrics_.RenderPrometheus();
  }
  // The admin listener never keeps connections alive.
  internal::SendResponse(conn, response, id, false);
  LogLine(LogLevel::kDebug, "admin_request")
      .Add("id", id)
      .Add("peer", internal::PeerOf(*info))
      .Add("path", path)
      .Add("status", response.status);
  return response.status;
}

}  // namespace tkms::web
