#include "web/civet_listener.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <thread>
#include <utility>
#include <vector>

#include "firmware/base/log.h"

namespace tkms::web::internal {
namespace {

// CivetWeb's library state (mg_init_library / mg_exit_library) is process
// wide and not thread-safe: one reference per running context, under a lock.
std::mutex g_library_mu;
int g_library_users = 0;

void AcquireLibrary() {
  std::lock_guard<std::mutex> lock(g_library_mu);
  if (g_library_users++ == 0) {
    // No features: in particular not MG_FEATURES_TLS (never initialise
    // CivetWeb's OpenSSL binding, docs/http.md).
    mg_init_library(MG_FEATURES_DEFAULT);
  }
}

void ReleaseLibrary() {
  std::lock_guard<std::mutex> lock(g_library_mu);
  if (--g_library_users == 0) mg_exit_library();
}

// While mg_start2 runs on this thread, CivetWeb's messages are collected here
// (they name the failing bind) instead of being logged.
thread_local std::string* t_start_messages = nullptr;

CivetListener* ListenerOf(const mg_connection* conn) {
  if (conn == nullptr) return nullptr;
  return static_cast<CivetListener*>(mg_get_user_context_data(conn));
}

int BeginRequestCallback(mg_connection* conn) {
  CivetListener* self = ListenerOf(conn);
  return self != nullptr ? self->OnRequest(conn) : 0;
}

int HttpErrorCallback(mg_connection* conn, int status, const char* message) {
  CivetListener* self = ListenerOf(conn);
  return self != nullptr ? self->OnHttpError(conn, status, message) : 1;
}

int LogMessageCallback(const mg_connection* conn, const char* message) {
  try {
    if (t_start_messages != nullptr) {
      if (t_start_messages->empty() && message != nullptr) *t_start_messages = message;
      return 1;
    }
    if (CivetListener* self = ListenerOf(conn)) {
      self->OnLog(message);
    } else {
      LogLine(LogLevel::kWarn, "civetweb").Add("detail", message != nullptr ? message : "");
    }
  } catch (...) {
    // Nothing may escape into C; a lost diagnostic is acceptable.
  }
  return 1;  // never let CivetWeb print
}

// Last resort when a handler threw: a 500 that closes the connection.
void WriteEmergency500(mg_connection* conn) noexcept {
  static constexpr char kResponse[] =
      "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "Content-Length: 15\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
      "internal error\n";
  mg_disable_connection_keep_alive(conn);
  mg_write(conn, kResponse, sizeof kResponse - 1);
}

// Opens a TCP connection to the listener and closes it again, to wake
// CivetWeb's master thread from its poll(). False once nothing listens there
// any more (connection refused).
bool Poke(const std::string& address, uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return true;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  if (inet_pton(AF_INET, address == "0.0.0.0" ? "127.0.0.1" : address.c_str(), &to.sin_addr) != 1) {
    close(fd);
    return false;
  }
  const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  const int err = errno;
  close(fd);
  return rc == 0 || err != ECONNREFUSED;
}

}  // namespace

Result<std::unique_ptr<CivetListener>> CivetListener::Start(ListenerConfig config,
                                                            RequestHandler handler,
                                                            ProtocolErrorHook on_protocol_error) {
  const std::string prefix = config.name + " " + config.listen + ": ";
  auto address = ParseListenAddress(config.listen);
  if (!address.ok()) return Status(address.error().code(), prefix + address.error().message());
  if (config.threads == 0) return InvalidArgument(prefix + "needs at least one worker thread");
  if (config.request_timeout_ms == 0)
    return InvalidArgument(prefix + "request timeout must be > 0");
  if (!handler) return InvalidArgument(prefix + "no request handler");

  std::unique_ptr<CivetListener> self(
      new CivetListener(std::move(config), std::move(handler), std::move(on_protocol_error)));
  const ListenerConfig& c = self->config_;

  // name, value pairs; see docs/http.md "CivetWeb settings" for each reason.
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"listening_ports", address->ToString()},
      {"num_threads", std::to_string(c.threads)},
      {"request_timeout_ms", std::to_string(c.request_timeout_ms)},
      {"enable_keep_alive", c.keep_alive_timeout_ms > 0 ? "yes" : "no"},
      {"keep_alive_timeout_ms",
       std::to_string(c.keep_alive_timeout_ms > 0 ? c.keep_alive_timeout_ms : 1)},
      {"tcp_nodelay", "1"},
      {"max_request_size", std::to_string(c.max_header_bytes)},
      {"decode_url", "yes"},
      {"enable_directory_listing", "no"},
      {"access_control_allow_origin", ""},
      {"allow_sendfile_call", "no"},
  };
  std::vector<const char*> options;
  for (const auto& [name, value] : settings) {
    options.push_back(name.c_str());
    options.push_back(value.c_str());
  }
  options.push_back(nullptr);

  mg_callbacks callbacks{};
  callbacks.begin_request = BeginRequestCallback;
  callbacks.http_error = HttpErrorCallback;
  callbacks.log_message = LogMessageCallback;

  std::array<char, 256> error_text{};
  unsigned error_code = 0;
  mg_error_data error{&error_code, error_text.data(), error_text.size()};
  mg_init_data init{&callbacks, self.get(), options.data()};

  AcquireLibrary();
  self->library_acquired_ = true;
  std::string messages;
  t_start_messages = &messages;
  mg_context* ctx = mg_start2(&init, &error);
  t_start_messages = nullptr;
  if (ctx == nullptr) {
    std::string why = !messages.empty() ? messages : std::string(error_text.data());
    if (why.empty()) why = "CivetWeb could not start";
    return FailedPrecondition(prefix + why);  // the destructor releases the library
  }
  self->ctx_ = ctx;
  self->address_ = address->address;

  mg_server_port ports[2]{};
  const int n = mg_get_server_ports(ctx, 2, ports);
  if (n < 1 || ports[0].port <= 0 || ports[0].port > 65535) {
    return Internal(prefix + "CivetWeb did not report the bound port");
  }
  self->port_ = static_cast<uint16_t>(ports[0].port);
  return self;
}

CivetListener::CivetListener(ListenerConfig config, RequestHandler handler, ProtocolErrorHook hook)
    : config_(std::move(config)),
      handler_(std::move(handler)),
      on_protocol_error_(std::move(hook)) {}

CivetListener::~CivetListener() {
  Stop();
  if (library_acquired_) ReleaseLibrary();
}

void CivetListener::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (ctx_ == nullptr) return;
  // mg_stop raises CivetWeb's stop flag and joins its master thread, which
  // sees the flag only when its poll() on the listening socket returns: after
  // up to 2 s (SOCKET_TIMEOUT_QUANTUM) when no client connects. A connection
  // attempt of our own ends that poll at once. (Workers idle on a kept-alive
  // connection still notice the flag only within their own 2 s quantum.)
  std::atomic<bool> done{false};
  mg_context* ctx = ctx_;
  std::thread stopper([ctx, &done] {
    mg_stop(ctx);
    done.store(true);
  });
  bool listening = true;
  auto pause = std::chrono::milliseconds(1);
  while (!done.load() && listening) {
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
    if (!done.load()) listening = Poke(address_, port_);
  }
  stopper.join();
  ctx_ = nullptr;
}

int CivetListener::OnRequest(mg_connection* conn) noexcept {
  try {
    return handler_(conn);
  } catch (const std::exception& e) {
    try {
      LogLine(LogLevel::kError, "handler_exception")
          .Add("listener", config_.log_name)
          .Add("detail", e.what());
    } catch (...) {
    }
  } catch (...) {
    try {
      LogLine(LogLevel::kError, "handler_exception").Add("listener", config_.log_name);
    } catch (...) {
    }
  }
  WriteEmergency500(conn);
  return 500;
}

int CivetListener::OnHttpError(mg_connection* conn, int status, const char* message) noexcept {
  try {
    if (on_protocol_error_) on_protocol_error_(status);
    const std::string id = NewRequestId();
    const mg_request_info* info = mg_get_request_info(conn);
    LogLine(LogLevel::kInfo, "http_error")
        .Add("listener", config_.log_name)
        .Add("id", id)
        .Add("peer", info != nullptr ? PeerOf(*info) : std::string("-"))
        .Add("status", status)
        .Add("detail", message != nullptr ? message : "");
    SendResponse(conn, TextResponse(status, StatusReason(status)), id, false);
    return 0;  // handled: CivetWeb sends nothing itself
  } catch (...) {
    return 1;  // let CivetWeb send its own page
  }
}

void CivetListener::OnLog(const char* message) noexcept {
  try {
    LogLine(LogLevel::kWarn, "civetweb")
        .Add("listener", config_.log_name)
        .Add("detail", message != nullptr ? message : "");
  } catch (...) {
  }
}

bool RequestAllowsKeepAlive(const mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr) return false;
  const char* connection = mg_get_header(conn, "Connection");
  if (connection != nullptr) return HeaderHasToken(connection, "keep-alive");
  return info->http_version != nullptr && std::strcmp(info->http_version, "1.1") == 0;
}

int CountHeaders(const mg_request_info& info, std::string_view name) {
  int count = 0;
  for (int i = 0; i < info.num_headers && i < MG_MAX_HEADERS; ++i) {
    const char* header = info.http_headers[i].name;
    if (header == nullptr) continue;
    const std::string_view h(header);
    if (h.size() != name.size()) continue;
    bool same = true;
    for (size_t k = 0; k < h.size() && same; ++k) {
      const auto a = static_cast<unsigned char>(h[k]);
      const auto b = static_cast<unsigned char>(name[k]);
      same = std::tolower(a) == std::tolower(b);
    }
    if (same) ++count;
  }
  return count;
}

std::string PeerOf(const mg_request_info& info) {
  const size_t len = strnlen(info.remote_addr, sizeof info.remote_addr);
  return std::string(info.remote_addr, len) + ":" + std::to_string(info.remote_port);
}

void SendContinueIfExpected(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  const char* expect = mg_get_header(conn, "Expect");
  if (info == nullptr || expect == nullptr || info->http_version == nullptr ||
      std::strcmp(info->http_version, "1.1") != 0 || !HeaderHasToken(expect, "100-continue")) {
    return;
  }
  static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
  mg_write(conn, kContinue, sizeof kContinue - 1);
}

bool ReadBody(mg_connection* conn, size_t n, std::string& out) {
  out.assign(n, '\0');
  size_t got = 0;
  while (got < n) {
    const int r = mg_read(conn, out.data() + got, n - got);
    if (r <= 0) {
      out.resize(got);
      return false;
    }
    got += static_cast<size_t>(r);
  }
  return true;
}

bool DiscardBody(mg_connection* conn, size_t n) {
  char buf[4096];
  while (n > 0) {
    const int r = mg_read(conn, buf, n < sizeof buf ? n : sizeof buf);
    if (r <= 0) return false;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool SendResponse(mg_connection* conn, const HttpResponse& response, std::string_view request_id,
                  bool keep_alive) {
  if (!keep_alive) mg_disable_connection_keep_alive(conn);
  const mg_request_info* info = mg_get_request_info(conn);
  const bool head = info != nullptr && info->request_method != nullptr &&
                    std::strcmp(info->request_method, "HEAD") == 0;
  const std::string wire = SerializeResponse(response, request_id, keep_alive, !head);
  const int written = mg_write(conn, wire.data(), wire.size());
  return written > 0 && static_cast<size_t>(written) == wire.size();
}

}  // namespace tkms::web::internal
