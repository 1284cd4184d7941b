// HttpRequest and HttpResponse: the transport-neutral values that web/'s
// handlers (Annex A Ua, admin, echo) take and return.
//
// Why: the handlers must not depend on the HTTP library that reads the
// socket. Today one plaintext transport (civet_transport.cpp) feeds them; the
// next one terminates TLS in tkms's own code (mbedTLS) and fills the peer's
// verified certificate identity. Both build the same HttpRequest (RFC 7230
// §3: request line, header fields, message body already read and bounded),
// call the same handler and write the HttpResponse the handler returns in one
// write (the Nagle trap, docs/http.md). Everything here is plain data and
// pure functions, so handlers are tested without sockets.
//
// Thread-safety: values; NewRequestId() is thread-safe (one atomic counter).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tkms::web {

// The identity a TLS transport verified for the peer (its client certificate,
// RFC 5246 §7.4.6 / RFC 5280). Only a transport that terminated TLS itself
// fills it; it is never derived from request headers (X-SSL-Client-*,
// Forwarded, ...), so nothing sent in plaintext can produce one.
struct PeerIdentity {
  std::string subject;                          // subject DN, RFC 4514 text
  std::vector<std::string> subject_alt_names;   // e.g. "DNS:kms.example.org"
  std::array<uint8_t, 32> certificate_sha256{};  // SHA-256 of the DER certificate
  // The DER certificate itself (public), for decisions that need more than
  // the names: which Zk trust relation or network function it belongs to.
  std::vector<uint8_t> certificate_der;
};

// Who is at the other end of the connection, as the transport knows it.
struct Peer {
  std::string address;  // "ip:port" from the socket (never from headers)
  std::optional<PeerIdentity> tls_identity;  // empty on plaintext listeners
};

struct HttpHeader {
  std::string name;
  std::string value;
};

// How the request body is framed (RFC 7230 §3.3.3), decided from the head by
// DecideBodyFraming (http_framing.h). Errors are refusals the handler words.
enum class FramingError : uint8_t {
  kNone,
  kRepeatedContentLength,             // Content-Length given more than once
  kBadContentLength,                  // not 1*DIGIT, or too large to represent
  kContentLengthAndTransferEncoding,  // both present (RFC 7230 §3.3.3 item 3: smuggling)
  kUnsupportedTransferCoding,         // Transfer-Encoding other than exactly "chunked", or repeated
};
struct BodyFraming {
  enum class Kind : uint8_t { kNone, kContentLength, kChunked };
  Kind kind = Kind::kNone;      // kNone: no Content-Length, no Transfer-Encoding
  uint64_t content_length = 0;  // kContentLength
  FramingError error = FramingError::kNone;  // set: kind is kNone and the body is not read
};

// What became of the body before the handler's Handle() ran.
enum class BodyState : uint8_t {
  kEmpty,       // the request has no body (no framing, or Content-Length: 0)
  kComplete,    // read completely, within the handler's cap: `body` holds it
  kNotRead,     // the handler's plan did not ask for it (refused from the head)
  kTooLarge,    // Content-Length above the cap (not read), or the decoded chunked
                // body passed the cap (reading stopped at cap + 1 bytes; dropped)
  kIncomplete,  // the peer closed or the request timeout passed before
                // Content-Length bytes arrived: `body` holds what came
  kBadChunked,  // chunked framing broken or cut short (RFC 7230 §4.1)
};

struct HttpRequest {
  std::string id;       // X-Request-Id of the answer, chosen by the transport
  std::string method;   // "POST", case-sensitive (RFC 7230 §3.1.1)
  std::string target;   // origin-form request-target "path[?query]", not percent-decoded
  std::string version;  // "1.0" or "1.1"
  std::vector<HttpHeader> headers;  // in arrival order
  Peer peer;
  std::chrono::steady_clock::time_point received;  // the head was complete
  BodyFraming framing;
  BodyState body_state = BodyState::kEmpty;
  std::string body;  // see body_state; never more than the handler's cap

  std::string_view path() const;   // target before the first '?'
  std::string_view query() const;  // target after the first '?', "" without one
  // The first header called `name` (ASCII case-insensitive), or nullptr.
  const std::string* FindHeader(std::string_view name) const;
  size_t CountHeaders(std::string_view name) const;
};

// One response. The transport serializes it (SerializeResponse) and writes
// it with a single write.
struct HttpResponse {
  int status = 500;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Added after the standard headers, e.g. {"Allow", "POST"}.
  std::vector<std::pair<std::string, std::string>> extra_headers;
  // The handler's consent to keep the connection; the transport also needs
  // keep-alive enabled, the body consumed and the request allowing it
  // (RequestAllowsKeepAlive), and says the outcome in the Connection header.
  bool keep_alive = true;
  // Called by the transport after the write (true: written completely), e.g.
  // for the request's log line. Must not throw.
  std::function<void(bool written)> on_written;
};

// A short text/plain response whose body is `reason` plus a newline.
HttpResponse TextResponse(int status, std::string_view reason);

// "OK", "Bad Request", ... ("Unknown" for codes tkms never sends).
std::string_view StatusReason(int status);

// Status line, Content-Type, Content-Length, X-Request-Id, Cache-Control:
// no-store, Connection: keep-alive|close, the extra headers, an empty line and
// the body, as one buffer. Without include_body (the answer to a HEAD
// request) the body is left out but Content-Length still gives its size.
std::string SerializeResponse(const HttpResponse& response, std::string_view request_id,
                              bool keep_alive, bool include_body = true);

// A request id unique in this process and unlikely to repeat across
// restarts: "r-<8 hex digits chosen at random once per process>-<counter>",
// e.g. "r-3f2a9c1b-17".
std::string NewRequestId();

// ASCII case-insensitive equality (header names, tokens).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// `s` without leading and trailing optional whitespace (RFC 7230 §3.2.3 OWS).
std::string_view TrimOws(std::string_view s);

// True when a comma-separated header value (e.g. Connection) contains `token`
// (case-insensitive, surrounding spaces ignored).
bool HeaderHasToken(std::string_view value, std::string_view token);

// Whether the request itself allows keeping the connection open (RFC 7230
// §6.3): with a Connection header only if it lists "keep-alive" (also for
// HTTP/1.1, the rule tkms has always applied); without
// one, only for HTTP/1.1.
bool RequestAllowsKeepAlive(const HttpRequest& request);

// Whether an HTTP/1.1 request carries "Expect: 100-continue" (RFC 7231
// §5.1.1): the transport then sends "100 Continue" before reading the body.
bool ExpectsContinue(const HttpRequest& request);

// Percent-decodes a path ('+' stays '+'); false on a malformed escape.
bool PercentDecodePath(std::string_view in, std::string& out);

// True when the request's path, percent-decoded, is exactly `path`.
bool PathIs(const HttpRequest& request, std::string_view path);

}  // namespace tkms::web
