// The plaintext HTTP/1.1 transport (transport.h: StartPlaintextListener) on
// CivetWeb 1.15 from Debian (C API). The only file of tkms that knows
// CivetWeb: it turns each request CivetWeb parsed into an HttpRequest, reads
// the body as the handler planned (http_handler.h), and writes the handler's
// HttpResponse with one mg_write.
//
// Why CivetWeb is narrowed this way (docs/http.md, "CivetWeb settings"):
// every request is answered by our begin_request callback before CivetWeb's
// own dispatch (no document root, no file/CGI/SSI serving, no directory
// listings, no CORS pre-flight); no TLS (CivetWeb's is broken as packaged in
// Debian 12); TCP_NODELAY and one mg_write per response (the Nagle trap);
// decode_url=no, so the handler gets the raw request-target like any other
// transport would give it. CivetWeb's diagnostics are captured: at start
// they become the Status message, later logfmt lines. Its own error pages
// are replaced by short text/plain answers.
//
// Measured facts this file builds on (tests/web/transport_test.cpp):
//   - CivetWeb dechunks chunked request bodies itself inside mg_read (RFC
//     7230 §4.1); there is no raw-body API, so this transport bounds what
//     mg_read returns: at most the handler's cap + 1 decoded bytes are read.
//     Its decoder refuses chunk extensions, spaces, bare LF, size lines over
//     63 bytes and sizes of 2^64 or more (mg_read < 0), but some sizes of
//     2^63 or more (8000000000000000) make its signed length negative and it
//     reads until the peer closes: the cap stops that.
//   - It reads 2 bytes after the last chunk and keeps the connection only
//     when they are CRLF (no trailer); it does not tell which happened, so a
//     chunked request's connection is always closed after the response.
//   - With Transfer-Encoding: chunked it ignores Content-Length, uses only
//     the first Transfer-Encoding header, frames "identity" by
//     Content-Length, and answers other codings with 400 itself; it reads
//     "+5" and "5abc" as Content-Length 5. DecideBodyFraming refuses all of
//     these before any body byte is read.
//   - It keeps at most 64 header fields and drops the rest silently (a
//     Content-Length among them would be lost): a request with 64 or more is
//     answered 431 here.
//
// No C++ exception crosses into CivetWeb: the C callbacks catch everything;
// an exception from a handler becomes a 500 with Connection: close.
#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "firmware/base/log.h"
#include "web/annex_a.h"
#include "web/http_framing.h"
#include "web/transport.h"

namespace tkms::web {
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

class CivetListener final : public HttpListener {
 public:
  CivetListener(ListenerConfig config, HttpHandler& handler)
      : config_(std::move(config)), handler_(handler) {}
  ~CivetListener() override {
    Stop();
    if (library_acquired_) ReleaseLibrary();
  }
  CivetListener(const CivetListener&) = delete;
  CivetListener& operator=(const CivetListener&) = delete;

  Status Start(const ListenAddress& address);
  uint16_t port() const override { return port_; }
  void Stop() override;

  // Entry points for the C callbacks; never throw.
  int OnRequest(mg_connection* conn) noexcept;
  int OnHttpError(mg_connection* conn, int status, const char* message) noexcept;
  void OnLog(const char* message) noexcept;

 private:
  int Exchange(mg_connection* conn);
  bool PerformPlan(mg_connection* conn, const BodyPlan& plan, HttpRequest& request);
  void AnswerProtocolError(mg_connection* conn, int status, const char* message);
  void WaitUntilIdle();

  ListenerConfig config_;
  HttpHandler& handler_;
  std::mutex stop_mu_;
  mg_context* ctx_ = nullptr;
  std::string address_;  // the bound IPv4 address
  uint16_t port_ = 0;
  bool library_acquired_ = false;

  std::mutex in_flight_mu_;
  std::condition_variable in_flight_cv_;
  size_t in_flight_ = 0;  // requests inside OnRequest
};

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

std::string PeerOf(const mg_request_info& info) {
  const size_t len = strnlen(info.remote_addr, sizeof info.remote_addr);
  return std::string(info.remote_addr, len) + ":" + std::to_string(info.remote_port);
}

// The transport-neutral request head. The peer comes from the socket only;
// no header can set Peer::tls_identity (a plaintext listener has none).
HttpRequest BuildRequest(const mg_request_info& info) {
  HttpRequest request;
  request.id = NewRequestId();
  request.received = std::chrono::steady_clock::now();
  request.method = info.request_method != nullptr ? info.request_method : "";
  // decode_url=no: local_uri_raw is the path as sent (origin form; CivetWeb
  // reduces an absolute-form target for this server to it, else NULL).
  request.target = info.local_uri_raw != nullptr ? info.local_uri_raw : "";
  if (info.query_string != nullptr) request.target.append("?").append(info.query_string);
  request.version = info.http_version != nullptr ? info.http_version : "";
  const int count = std::min(info.num_headers, MG_MAX_HEADERS);
  for (int i = 0; i < count; ++i) {
    const mg_header& header = info.http_headers[i];
    request.headers.push_back(HttpHeader{header.name != nullptr ? header.name : "",
                                         header.value != nullptr ? header.value : ""});
  }
  request.peer.address = PeerOf(info);
  request.framing = DecideBodyFraming(request.headers);
  request.body_state = BodyState::kNotRead;
  return request;
}

void SendContinueIfExpected(mg_connection* conn, const HttpRequest& request) {
  if (!ExpectsContinue(request)) return;
  static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
  mg_write(conn, kContinue, sizeof kContinue - 1);
}

// Reads exactly `n` Content-Length body bytes into `out`; false if the peer
// closed or the request timeout expired first (`out` keeps what came).
bool ReadExactly(mg_connection* conn, size_t n, std::string& out) {
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

// Reads and drops `n` body bytes; false as for ReadExactly.
bool Discard(mg_connection* conn, size_t n) {
  char buf[4096];
  while (n > 0) {
    const int r = mg_read(conn, buf, n < sizeof buf ? n : sizeof buf);
    if (r <= 0) return false;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Reads a chunked body, which mg_read dechunks, keeping at most cap + 1
// decoded bytes: more than `cap` is kTooLarge (and dropped).
BodyState ReadChunked(mg_connection* conn, size_t cap, std::string& out) {
  out.clear();
  char buf[4096];
  while (true) {
    const size_t want = std::min(sizeof buf, cap + 1 - out.size());
    const int r = mg_read(conn, buf, want);
    if (r == 0) return BodyState::kComplete;
    if (r < 0) return BodyState::kBadChunked;
    out.append(buf, static_cast<size_t>(r));
    if (out.size() > cap) {
      out.clear();
      return BodyState::kTooLarge;
    }
  }
}

}  // namespace

Status CivetListener::Start(const ListenAddress& address) {
  const std::string prefix = config_.name + " " + config_.listen + ": ";
  const ListenerConfig& c = config_;
  // name, value pairs; see docs/http.md "CivetWeb settings" for each reason.
  const std::vector<std::pair<std::string, std::string>> settings = {
      {"listening_ports", address.ToString()},
      {"num_threads", std::to_string(c.threads)},
      {"request_timeout_ms", std::to_string(c.request_timeout_ms)},
      {"enable_keep_alive", c.keep_alive_timeout_ms > 0 ? "yes" : "no"},
      {"keep_alive_timeout_ms",
       std::to_string(c.keep_alive_timeout_ms > 0 ? c.keep_alive_timeout_ms : 1)},
      {"tcp_nodelay", "1"},
      {"max_request_size", std::to_string(c.max_header_bytes)},
      {"decode_url", "no"},
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
  mg_init_data init{&callbacks, this, options.data()};

  AcquireLibrary();
  library_acquired_ = true;
  std::string messages;
  t_start_messages = &messages;
  mg_context* ctx = mg_start2(&init, &error);
  t_start_messages = nullptr;
  if (ctx == nullptr) {
    std::string why = !messages.empty() ? messages : std::string(error_text.data());
    if (why.empty()) why = "CivetWeb could not start";
    return FailedPrecondition(prefix + why);  // the destructor releases the library
  }
  ctx_ = ctx;
  address_ = address.address;

  mg_server_port ports[2]{};
  const int n = mg_get_server_ports(ctx, 2, ports);
  if (n < 1 || ports[0].port <= 0 || ports[0].port > 65535) {
    return Internal(prefix + "CivetWeb did not report the bound port");
  }
  port_ = static_cast<uint16_t>(ports[0].port);
  return Status::Ok();
}

void CivetListener::WaitUntilIdle() {
  // CivetWeb drops any response written after mg_stop begins, so the
  // requests in progress finish first. Each is bounded by the request
  // timeout (socket I/O) and by the handler's own bounds.
  std::unique_lock<std::mutex> lock(in_flight_mu_);
  in_flight_cv_.wait(lock, [this] { return in_flight_ == 0; });
}

void CivetListener::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (ctx_ == nullptr) return;
  WaitUntilIdle();
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
  {
    std::lock_guard<std::mutex> lock(in_flight_mu_);
    ++in_flight_;
  }
  int status = 500;
  try {
    status = Exchange(conn);
  } catch (const std::exception& e) {
    try {
      LogLine(LogLevel::kError, "handler_exception")
          .Add("listener", config_.log_name)
          .Add("detail", e.what());
    } catch (...) {
    }
    WriteEmergency500(conn);
  } catch (...) {
    try {
      LogLine(LogLevel::kError, "handler_exception").Add("listener", config_.log_name);
    } catch (...) {
    }
    WriteEmergency500(conn);
  }
  {
    std::lock_guard<std::mutex> lock(in_flight_mu_);
    --in_flight_;
  }
  in_flight_cv_.notify_all();
  return status;
}

// One request: build the head, read the body as the handler planned, answer
// with one write (http_handler.h, "The exchange").
int CivetListener::Exchange(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr) return 0;
  if (info->num_headers >= MG_MAX_HEADERS) {
    // CivetWeb kept only the first 64 header fields: the framing cannot be
    // trusted (a dropped Content-Length would frame the body as a request).
    AnswerProtocolError(conn, 431, "64 or more header fields");
    return 431;
  }
  HttpRequest request = BuildRequest(*info);
  const BodyPlan plan = handler_.PlanBody(request);
  const bool body_consumed = PerformPlan(conn, plan, request);
  HttpResponse response = handler_.Handle(request);
  const bool keep_alive = config_.keep_alive_timeout_ms > 0 && response.keep_alive &&
                          body_consumed && RequestAllowsKeepAlive(request);
  if (!keep_alive) mg_disable_connection_keep_alive(conn);
  const std::string wire =
      SerializeResponse(response, request.id, keep_alive, request.method != "HEAD");
  const int written = mg_write(conn, wire.data(), wire.size());
  if (response.on_written) response.on_written(written > 0 && static_cast<size_t>(written) == wire.size());
  return response.status;
}

// Step 3 of the exchange. Sets request.body_state / body; true when the body
// has been consumed completely, so the connection could carry another request.
bool CivetListener::PerformPlan(mg_connection* conn, const BodyPlan& plan, HttpRequest& request) {
  const BodyFraming& framing = request.framing;
  if (framing.error != FramingError::kNone) return false;  // never read past a framing error
  const bool length_framed = framing.kind == BodyFraming::Kind::kContentLength;
  if (framing.kind == BodyFraming::Kind::kNone || (length_framed && framing.content_length == 0)) {
    request.body_state = BodyState::kEmpty;
    return true;
  }
  switch (plan.action) {
    case BodyPlan::Action::kSkip: return false;
    case BodyPlan::Action::kDiscard:
      // Only a small Content-Length body the client is not waiting to be
      // invited for (Expect) is worth reading to keep the connection.
      if (!length_framed || framing.content_length > plan.max_body_bytes ||
          request.FindHeader("Expect") != nullptr) {
        return false;
      }
      return Discard(conn, static_cast<size_t>(framing.content_length));
    case BodyPlan::Action::kRead: break;
  }
  if (length_framed) {
    if (framing.content_length > plan.max_body_bytes) {
      request.body_state = BodyState::kTooLarge;
      return false;
    }
    SendContinueIfExpected(conn, request);
    const bool complete = ReadExactly(conn, static_cast<size_t>(framing.content_length), request.body);
    request.body_state = complete ? BodyState::kComplete : BodyState::kIncomplete;
    return complete;
  }
  SendContinueIfExpected(conn, request);
  request.body_state = ReadChunked(conn, plan.max_body_bytes, request.body);
  return false;  // chunked: CivetWeb does not say whether a trailer followed; close
}

void CivetListener::AnswerProtocolError(mg_connection* conn, int status, const char* message) {
  handler_.OnProtocolError(status);
  const std::string id = NewRequestId();
  const mg_request_info* info = mg_get_request_info(conn);
  LogLine(LogLevel::kInfo, "http_error")
      .Add("listener", config_.log_name)
      .Add("id", id)
      .Add("peer", info != nullptr ? PeerOf(*info) : std::string("-"))
      .Add("status", status)
      .Add("detail", message != nullptr ? message : "");
  mg_disable_connection_keep_alive(conn);
  const std::string wire = SerializeResponse(TextResponse(status, StatusReason(status)), id, false);
  mg_write(conn, wire.data(), wire.size());
}

int CivetListener::OnHttpError(mg_connection* conn, int status, const char* message) noexcept {
  try {
    AnswerProtocolError(conn, status, message);
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

Result<std::unique_ptr<HttpListener>> StartPlaintextListener(const ListenerConfig& config,
                                                             HttpHandler& handler) {
  const std::string prefix = config.name + " " + config.listen + ": ";
  auto address = ParseListenAddress(config.listen);
  if (!address.ok()) return Status(address.error().code(), prefix + address.error().message());
  if (config.threads == 0) return InvalidArgument(prefix + "needs at least one worker thread");
  if (config.request_timeout_ms == 0) return InvalidArgument(prefix + "request timeout must be > 0");
  auto listener = std::make_unique<CivetListener>(config, handler);
  if (Status started = listener->Start(*address); !started.ok()) return started;
  return std::unique_ptr<HttpListener>(std::move(listener));
}

}  // namespace tkms::web
