// HttpClient: the small blocking HTTP/1.1 client a UE uses to reach the KMS.
//
// Why: TS 33.328 Annex A carries the Ticket Request and Ticket Resolve
// exchanges (RFC 6043 §4.2.1, §4.2.3, §7) as HTTP POSTs of base64 MIKEY
// messages; the UE library, the integration tests and the load generator all
// need one client that keeps a connection alive between requests (a KMS
// measured at thousands of requests per second must not be measured at the
// speed of TCP handshakes) and that treats every byte of the response as
// untrusted input.
//
// Behaviour:
//   - one TCP connection, opened on first use (names resolved with
//     getaddrinfo, every address tried), TCP_NODELAY, reused across requests
//     (HTTP/1.1 keep-alive) until the server says "Connection: close", sends
//     an HTTP/1.0 response without keep-alive, or an error occurs;
//   - if a reused (idle) connection turns out to be closed by the server
//     (nothing of the response received), the request is sent once more on a
//     fresh connection, transparently. POST is not idempotent, but a server
//     that closed an idle connection has not seen the request; a KMS with a
//     replay cache would refuse a duplicate anyway;
//   - every request has one deadline (options.timeout) covering connect,
//     send and the complete response (poll(2) on non-blocking sockets);
//   - the response is parsed by HttpResponseParser (http_response_parser.h),
//     which holds every limit and refusal: the status line plus headers at
//     most max_header_bytes (16 KiB), the body at most max_body_bytes (1 MiB);
//     the body length comes from Content-Length, from bounded chunked
//     transfer coding (chunk-size lines at most 64 bytes, trailers at most
//     max_header_bytes), or, without either, from the server closing the
//     connection. Conflicting Content-Length values, Content-Length together
//     with Transfer-Encoding, transfer codings other than "chunked", obsolete
//     header line folding and control characters inside header lines are
//     refused; bytes after the end of a response (nothing was asked for)
//     make the client drop the connection instead of reusing it. The socket
//     loop here only moves the bytes it receives into the parser;
//   - requests carry Host, Content-Length and (for POST) Content-Type;
//   - https:// URLs (RFC 2818) run the same HTTP over TLS (tls_client.h):
//     the handshake happens on connect, within the request's deadline, and
//     the TLS session lives as long as the connection, so keep-alive reuses
//     one TLS session across requests; Close sends close_notify. https needs
//     options.tls.ca_file (there is no unverified mode) and a host name, not
//     an IP literal: mbedTLS 2.28 cannot match iPAddress subjectAltNames, so
//     the KMS is named by a DNS name in its certificate. TLS files given for
//     an http:// URL are refused rather than ignored;
//   - WithTls: HTTPS with a prepared (in-memory) TlsClientConfig and a
//     ServerVerifier that judges the server instead of a host name (the Zk
//     client, firmware/zk; the host may be an IP address). With
//     options.connect_timeout, connecting (TCP + TLS handshake) has its own
//     deadline and the request's `timeout` starts once connected;
//     last_failure() tells a failed connect from a failed exchange.
//
// Errors (Status codes): kUnavailable for connect/send/receive failures,
// timeouts and a connection closed mid-response; kResourceExhausted for a
// response over the size limits; kInvalidArgument for a malformed response
// (or a malformed URL / request argument); TLS errors as in tls_client.h
// (kPermissionDenied for a server certificate refused). Not thread-safe: one client per
// thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "firmware/base/status.h"
#include "web/client/http_response_parser.h"
#include "web/client/tls_client.h"

namespace tkms::web::client {

struct HttpClientOptions {
  std::chrono::milliseconds timeout{10000};  // per request: connect + send + response
  // 0: connecting counts against `timeout`. Otherwise TCP connect + TLS
  // handshake have this deadline, and `timeout` covers send + response
  // from the moment the connection is ready (a stale idle connection
  // replaced during a request keeps the request's first deadline).
  std::chrono::milliseconds connect_timeout{0};
  size_t max_header_bytes = 16 * 1024;       // status line + header fields (+ chunked trailers)
  size_t max_body_bytes = 1024 * 1024;
  TlsClientOptions tls;                      // https only: --cacert [--cert --key]
};

// The parts of an "http[s]://host[:port][/base]" URL.
struct HttpUrl {
  bool https = false;
  std::string host;       // without brackets for IPv6 literals
  uint16_t port = 80;     // default 80, or 443 for https
  std::string base_path;  // "" or "/base" (no trailing slash)
};
// The http and https schemes; no user info, query or fragment in a base URL.
Result<HttpUrl> ParseHttpUrl(std::string_view url);

// Where the last failed request failed.
enum class FailurePhase : uint8_t {
  kNone,      // the last request succeeded (or none was made)
  kConnect,   // resolving, TCP connect or the TLS handshake
  kExchange,  // sending the request or receiving the response
};

class HttpClient {
 public:
  // Plain HTTP to host:port.
  HttpClient(std::string host, uint16_t port, HttpClientOptions options = {});
  // HTTPS to host:port with an in-memory configuration
  // (TlsClientConfig::Create) and the verifier of this server
  // (options.tls is not used). kInvalidArgument if either is missing or the
  // configuration is a file-based one.
  static Result<HttpClient> WithTls(std::string host, uint16_t port, std::shared_ptr<TlsClientConfig> tls,
                                    std::shared_ptr<const ServerVerifier> verifier, HttpClientOptions options = {});
  // From "http://127.0.0.1:8080[/base]" or "https://kms.example.org:8443"
  // (loads options.tls); request paths are appended to /base.
  static Result<HttpClient> FromUrl(std::string_view url, HttpClientOptions options = {});

  ~HttpClient();
  HttpClient(HttpClient&& other) noexcept;
  HttpClient& operator=(HttpClient&& other) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POST base_path + path_and_query with the given body.
  Result<HttpResponse> Post(std::string_view path_and_query, std::string_view content_type,
                            std::string_view body);
  // GET base_path + path.
  Result<HttpResponse> Get(std::string_view path);

  // Closes the connection (the next request opens a new one).
  void Close();

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  const std::string& base_path() const { return base_path_; }
  const HttpClientOptions& options() const { return options_; }
  void set_timeout(std::chrono::milliseconds timeout) { options_.timeout = timeout; }
  // Number of TCP connections opened so far (tests: keep-alive reuse); with
  // https, also the number of TLS handshakes.
  uint64_t connections_opened() const { return connections_opened_; }
  bool connected() const { return fd_ >= 0; }
  FailurePhase last_failure() const { return last_failure_; }
  bool https() const { return tls_config_ != nullptr; }
  // The current connection's TLS version and cipher suite ("" without one).
  std::string tls_version() const { return tls_ ? tls_->version() : ""; }
  std::string tls_cipher_suite() const { return tls_ ? tls_->cipher_suite() : ""; }

 private:
  using Clock = std::chrono::steady_clock;

  Result<HttpResponse> Send(std::string_view method, std::string_view target,
                            std::string_view content_type, std::string_view body);
  Status Connect(Clock::time_point deadline);
  bool IdleConnectionClosed();
  Status WriteAll(std::string_view data, Clock::time_point deadline);
  // Reads at most into.size() bytes; 0 on orderly close.
  Result<size_t> ReadSome(std::span<uint8_t> into, Clock::time_point deadline);
  // Moves received bytes into an HttpResponseParser until it has a response.
  Result<ParsedHttpResponse> ReadResponse(std::string_view method, Clock::time_point deadline,
                                          bool& nothing_received);

  std::string host_;
  uint16_t port_ = 80;
  std::string base_path_;
  HttpClientOptions options_;
  std::shared_ptr<TlsClientConfig> tls_config_;  // https only
  std::shared_ptr<const ServerVerifier> verifier_;  // WithTls only
  std::optional<TlsSession> tls_;                // the connection's TLS session
  int fd_ = -1;
  uint64_t connections_opened_ = 0;
  FailurePhase last_failure_ = FailurePhase::kNone;
};

}  // namespace tkms::web::client
