// A minimal HTTP/1.1 client over a raw TCP socket, for the web/ tests.
//
// Why: the tests must see exactly what goes over the wire (status line,
// every header, Content-Length framing, whether the server keeps or closes
// the connection) and must be able to send malformed requests, so no HTTP
// library sits in between. Only what the tests need: Content-Length-framed
// responses, keep-alive, timeouts via poll().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tkms::web::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpReply {
  std::string version;  // "HTTP/1.1"
  int status = 0;
  std::string reason;
  Headers headers;
  std::string body;

  // The first header called `name` (case-insensitive), or "" if none.
  std::string header(std::string_view name) const;
  int count_header(std::string_view name) const;
  bool has_header(std::string_view name) const { return count_header(name) > 0; }
};

class HttpClient {
 public:
  explicit HttpClient(uint16_t port) : port_(port) {}
  ~HttpClient() { Close(); }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  bool Connect();
  void Close();
  bool connected() const { return fd_ >= 0; }
  // How many TCP connections this client has opened.
  int connects() const { return connects_; }

  // Sends raw bytes on the current connection (connecting first if needed).
  bool SendRaw(std::string_view bytes);
  // Reads one Content-Length-framed response (only the head when it answers
  // a HEAD request); nullopt on timeout, EOF or a malformed response.
  std::optional<HttpReply> ReadReply(int timeout_ms = 5000, bool head_request = false);
  // Half-closes the connection: the server sees the end of the request bytes.
  void ShutdownWrite();
  // True when the server closes the connection within the timeout (any
  // unread bytes are discarded).
  bool WaitForClose(int timeout_ms = 2000);

  // One request on the kept-alive connection; reconnects when the previous
  // response said Connection: close. Adds Host, and Content-Length when a
  // body is given or the method is POST.
  std::optional<HttpReply> Request(std::string_view method, std::string_view target,
                                   const Headers& headers = {}, std::string_view body = {});
  // POST with Content-Type application/mikey (or the given type; "" = none).
  std::optional<HttpReply> Post(std::string_view target, std::string_view body,
                                std::string_view content_type = "application/mikey");

 private:
  bool ReadMore(int timeout_ms);

  uint16_t port_;
  int fd_ = -1;
  int connects_ = 0;
  bool must_reconnect_ = false;
  std::string buffer_;
};

// Opens a connection, sends `raw`, reads one response.
std::optional<HttpReply> OneShot(uint16_t port, std::string_view raw, int timeout_ms = 5000);
// True when nothing accepts TCP connections on 127.0.0.1:port.
bool ConnectionRefused(uint16_t port);

}  // namespace tkms::web::testing
