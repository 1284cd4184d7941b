#include "web/server.h"

#include <thread>
#include <utility>

#include "firmware/base/log.h"

namespace tkms::web {
namespace {

Status ValidateOptions(const WebServerOptions& options) {
  if (options.max_body_bytes == 0) return InvalidArgument("max_body_bytes must be > 0");
  if (options.ua_listen.empty() && options.ua_tls_listen.empty()) return InvalidArgument("no Ua listener");
  if (!options.ua_tls_listen.empty() && !options.ua_tls) {
    return InvalidArgument("Ua TLS listener " + options.ua_tls_listen + ": no TLS credentials");
  }
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
  if (!options.zk_listen.empty()) {
    if (!options.zk_tls) return InvalidArgument("Zk listener " + options.zk_listen + ": no TLS credentials");
    if (!options.zk_tls->Current()->client_auth().required) {
      return InvalidArgument("Zk listener " + options.zk_listen + ": its TLS credentials must require client certificates");
    }
    if (!options.zk_authorizer) return InvalidArgument("Zk listener " + options.zk_listen + ": no authorizer");
    if (options.zk_threads == 0) return InvalidArgument("zk_threads must be > 0");
  }
  return Status::Ok();
}

}  // namespace

ListenerConfig UaListenerConfig(const WebServerOptions& options, std::string name, std::string listen,
                                std::shared_ptr<TlsServer> tls) {
  ListenerConfig c;
  c.name = std::move(name);
  c.log_name = std::string("ua");
  c.listen = std::move(listen);
  c.threads = options.worker_threads;
  c.request_timeout_ms = options.request_timeout_ms;
  c.keep_alive_timeout_ms = options.keep_alive_timeout_ms;
  c.max_connections = options.max_connections;
  c.max_connections_per_source = options.max_connections_per_source;
  c.max_pending_requests = options.max_pending_requests;
  c.max_header_bytes = options.max_header_bytes;
  c.max_header_fields = options.max_header_fields;
  c.drain_timeout_ms = options.drain_timeout_ms;
  c.reuse_port = options.reuse_port;
  c.tls = std::move(tls);
  return c;
}

WebServer::WebServer(const WebServerOptions& options, kms::KmsService& service)
    : options_(options),
      ua_handler_(options.max_body_bytes, service, metrics_, stopping_),
      admin_handler_(options.admin_post_routes, service, metrics_, stopping_) {
  if (!options.zk_listen.empty()) {
    zk_handler_ = std::make_unique<UaHandler>(options.max_body_bytes, service, metrics_, stopping_,
                                              options.zk_authorizer);
  }
}

WebServer::~WebServer() { Stop(); }

Result<std::unique_ptr<WebServer>> WebServer::Start(const WebServerOptions& options,
                                                    kms::KmsService& service) {
  TKMS_RETURN_IF_ERROR(ValidateOptions(options));
  std::unique_ptr<WebServer> server(new WebServer(options, service));

  if (!options.ua_listen.empty()) {
    ListenerConfig ua_config = UaListenerConfig(options, "Ua listener", options.ua_listen, nullptr);
    ua_config.socket = options.sockets.ua;
    auto ua = StartListener(ua_config, server->ua_handler_);
    if (!ua.ok()) return std::move(ua).error();
    server->ua_ = std::move(*ua);
    server->ua_port_ = server->ua_->port();
  }
  if (!options.ua_tls_listen.empty()) {
    ListenerConfig ua_tls_config = UaListenerConfig(options, "Ua TLS listener", options.ua_tls_listen, options.ua_tls);
    ua_tls_config.socket = options.sockets.ua_tls;
    auto ua_tls = StartListener(ua_tls_config, server->ua_handler_);
    if (!ua_tls.ok()) return std::move(ua_tls).error();  // ~WebServer stops the others
    server->ua_tls_ = std::move(*ua_tls);
    server->ua_tls_port_ = server->ua_tls_->port();
  }

  if (!options.zk_listen.empty()) {
    ListenerConfig zk_config = UaListenerConfig(options, "Zk listener", options.zk_listen, options.zk_tls);
    zk_config.log_name = std::string("zk");
    zk_config.threads = options.zk_threads;
    zk_config.socket = options.sockets.zk;
    auto zk = StartListener(zk_config, *server->zk_handler_);
    if (!zk.ok()) return std::move(zk).error();
    server->zk_ = std::move(*zk);
    server->zk_port_ = server->zk_->port();
  }

  WebServer* self = server.get();
  server->admin_handler_.SetUaReadiness([self] { return self->UaReady(); });
  ListenerConfig admin_config;
  admin_config.name = std::string("admin listener");
  admin_config.log_name = std::string("admin");
  admin_config.listen = options.admin_listen;
  admin_config.threads = options.admin_threads;
  admin_config.request_timeout_ms = options.request_timeout_ms;
  admin_config.keep_alive_timeout_ms = 0;
  admin_config.max_connections = 64;
  admin_config.max_connections_per_source = 16;
  admin_config.max_pending_requests = 64;
  admin_config.drain_timeout_ms = options.drain_timeout_ms;
  admin_config.tls = options.admin_tls;
  admin_config.socket = options.sockets.admin;
  auto admin = StartListener(admin_config, server->admin_handler_);
  if (!admin.ok()) return std::move(admin).error();
  server->admin_ = std::move(*admin);
  server->admin_port_ = server->admin_->port();

  LogLine(LogLevel::kInfo, "web_started")
      .Add("ua_listen", options.ua_listen)
      .Add("ua_tls_listen", options.ua_tls_listen)
      .Add("admin_listen", options.admin_listen)
      .Add("admin_tls", options.admin_tls != nullptr)
      .Add("ua_port", static_cast<unsigned>(server->ua_port_))
      .Add("ua_tls_port", static_cast<unsigned>(server->ua_tls_port_))
      .Add("admin_port", static_cast<unsigned>(server->admin_port_))
      .Add("zk_listen", options.zk_listen.empty() ? std::string("-") : options.zk_listen)
      .Add("zk_port", static_cast<unsigned>(server->zk_port_))
      .Add("workers", options.worker_threads);
  return server;
}

void WebServer::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  // New Ua requests now get 503 and /readyz reports the shutdown; each
  // listener lets the requests in progress write their responses before it
  // stops (a response written after the stop began would be dropped).
  stopping_.store(true);
  // The two Ua listeners drain at the same time.
  std::thread tls_stopper;
  std::thread zk_stopper;
  if (ua_tls_) tls_stopper = std::thread([this] { ua_tls_->Stop(); });
  if (zk_) zk_stopper = std::thread([this] { zk_->Stop(); });
  if (ua_) ua_->Stop();
  if (tls_stopper.joinable()) tls_stopper.join();
  if (zk_stopper.joinable()) zk_stopper.join();
  if (admin_) admin_->Stop();
}

bool WebServer::UaReady() const {
  return (!ua_ || ua_->Ready()) && (!ua_tls_ || ua_tls_->Ready());
}

}  // namespace tkms::web
