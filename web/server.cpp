#include "web/server.h"

#include <utility>

#include "firmware/base/log.h"

namespace tkms::web {
namespace {

Status ValidateOptions(const WebServerOptions& options) {
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
  if (options.max_body_bytes > (size_t{1} << 30)) return InvalidArgument("max_body_bytes too large");
  return Status::Ok();
}

}  // namespace

WebServer::WebServer(const WebServerOptions& options, kms::KmsService& service)
    : options_(options),
      ua_handler_(options.max_body_bytes, service, metrics_, stopping_),
      admin_handler_(options.admin_post_routes, service, metrics_, stopping_) {}

WebServer::~WebServer() { Stop(); }

Result<std::unique_ptr<WebServer>> WebServer::Start(const WebServerOptions& options,
                                                    kms::KmsService& service) {
  TKMS_RETURN_IF_ERROR(ValidateOptions(options));
  std::unique_ptr<WebServer> server(new WebServer(options, service));

  // (Built with the constructor of each string: g++ 12 at -O2 reports a
  // false -Wmaybe-uninitialized for short-literal assignment into the SSO
  // buffer of a member string.)
  ListenerConfig ua_config{std::string("Ua listener"), std::string("ua"), options.ua_listen};
  ua_config.threads = options.worker_threads;
  ua_config.request_timeout_ms = options.request_timeout_ms;
  ua_config.keep_alive_timeout_ms = options.keep_alive_timeout_ms;
  auto ua = StartPlaintextListener(ua_config, server->ua_handler_);
  if (!ua.ok()) return std::move(ua).error();
  server->ua_ = std::move(*ua);
  server->ua_port_ = server->ua_->port();

  ListenerConfig admin_config{std::string("admin listener"), std::string("admin"),
                              options.admin_listen};
  admin_config.threads = options.admin_threads;
  admin_config.request_timeout_ms = options.request_timeout_ms;
  admin_config.keep_alive_timeout_ms = 0;
  auto admin = StartPlaintextListener(admin_config, server->admin_handler_);
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
  // New Ua requests now get 503 and /readyz reports the shutdown; each
  // listener lets the requests in progress write their responses before it
  // stops (a response written after the stop began would be dropped).
  stopping_.store(true);
  if (ua_) ua_->Stop();
  if (admin_) admin_->Stop();
}

}  // namespace tkms::web
