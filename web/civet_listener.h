// CivetListener: one CivetWeb 1.15 context (mg_start2 .. mg_stop) on one
// IPv4 ADDR:PORT, with tkms's fixed, narrowed settings. Internal to web/.
//
// Why: the Ua listener (TS 33.328 Annex A), the admin listener and the
// benchmark echo server must be configured identically and safely: every
// request goes to our begin_request callback before CivetWeb's own dispatch
// (no document root, no file/CGI/SSI serving, no directory listings, no CORS
// pre-flight, no TLS: CivetWeb's TLS is broken as packaged in Debian 12),
// TCP_NODELAY is set and each response is written with exactly one mg_write
// (the Nagle trap: docs/http.md). CivetWeb's diagnostics are captured: at
// start they become the Status message ("Ua listener 127.0.0.1:8080: cannot
// bind to ...: Address already in use"), later they are logged as logfmt
// lines; nothing is printed by CivetWeb itself. CivetWeb's own HTTP error
// pages (malformed request line, headers too large, ...) are replaced by the
// same short text/plain responses the handlers send.
//
// No C++ exception crosses into CivetWeb: the C callbacks catch everything;
// an exception from a RequestHandler becomes a 500 with Connection: close.
//
// Thread-safety: the handler runs on CivetWeb worker threads, concurrently.
// Start/Stop/port are for the owning thread; Stop is idempotent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "firmware/base/status.h"
#include "web/annex_a.h"

struct mg_connection;
struct mg_context;
struct mg_request_info;

namespace tkms::web::internal {

struct ListenerConfig {
  std::string name;      // "Ua listener": prefixes every Start error
  std::string log_name;  // "ua": the listener= field of log lines
  std::string listen;    // "ADDR:PORT" (see ParseListenAddress)
  unsigned threads = 8;
  unsigned request_timeout_ms = 10000;
  unsigned keep_alive_timeout_ms = 30000;  // 0: no keep-alive
  // CivetWeb's max_request_size: request line plus headers.
  size_t max_header_bytes = 8192;
};

// Handles one request completely (reads the body, writes the response) and
// returns the HTTP status written (for CivetWeb's bookkeeping).
using RequestHandler = std::function<int(mg_connection*)>;
// Told about each request CivetWeb's parser refused (status 4xx/5xx).
using ProtocolErrorHook = std::function<void(int status)>;

class CivetListener {
 public:
  // Validates the listen address and starts the context. Errors name the
  // listener and address: "Ua listener 127.0.0.1:8080: cannot bind to
  // 127.0.0.1:8080: 98 (Address already in use)".
  static Result<std::unique_ptr<CivetListener>> Start(ListenerConfig config, RequestHandler handler,
                                                      ProtocolErrorHook on_protocol_error = {});
  ~CivetListener();
  CivetListener(const CivetListener&) = delete;
  CivetListener& operator=(const CivetListener&) = delete;

  // Stops the context (mg_stop): waits for handlers to return. A response
  // written after this began is dropped by CivetWeb, so drain first.
  void Stop();
  // The bound port (the real one when the configuration said port 0).
  uint16_t port() const { return port_; }
  bool keep_alive_enabled() const { return config_.keep_alive_timeout_ms > 0; }
  const ListenerConfig& config() const { return config_; }

  // Entry points for the C callbacks; never throw.
  int OnRequest(mg_connection* conn) noexcept;
  int OnHttpError(mg_connection* conn, int status, const char* message) noexcept;
  void OnLog(const char* message) noexcept;

 private:
  CivetListener(ListenerConfig config, RequestHandler handler, ProtocolErrorHook hook);

  ListenerConfig config_;
  RequestHandler handler_;
  ProtocolErrorHook on_protocol_error_;
  std::mutex stop_mu_;
  mg_context* ctx_ = nullptr;
  std::string address_;  // the bound IPv4 address
  uint16_t port_ = 0;
  bool library_acquired_ = false;
};

// ---- helpers for handlers ---------------------------------------------------

// Whether the request itself allows keeping the connection open, exactly as
// CivetWeb 1.15 decides it: with a Connection header, only if it lists
// "keep-alive"; without one, only for HTTP/1.1.
bool RequestAllowsKeepAlive(const mg_connection* conn);
// Number of request headers called `name` (case-insensitive).
int CountHeaders(const mg_request_info& info, std::string_view name);
// The peer as "ip:port".
std::string PeerOf(const mg_request_info& info);
// Answers "Expect: 100-continue" of an HTTP/1.1 request with the interim
// "100 Continue" (CivetWeb 1.15 does not do it for callback handlers), so a
// client that waits for it sends its body at once. Call only when the body
// is going to be read.
void SendContinueIfExpected(mg_connection* conn);
// Reads exactly `n` body bytes into `out`; false if the peer closed or the
// request timeout expired first. The caller bounds `n`.
bool ReadBody(mg_connection* conn, size_t n, std::string& out);
// Reads and drops `n` body bytes; false as for ReadBody.
bool DiscardBody(mg_connection* conn, size_t n);
// Serializes and writes the response with one mg_write (without the body
// when the request was HEAD). Without keep_alive, also tells CivetWeb to
// close the connection afterwards. False when the
// response could not be written completely.
bool SendResponse(mg_connection* conn, const HttpResponse& response, std::string_view request_id,
                  bool keep_alive);

}  // namespace tkms::web::internal
