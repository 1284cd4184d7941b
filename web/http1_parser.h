// A strict, incremental HTTP/1.1 request parser: finds the end of a request
// head in the bytes buffered so far, parses the head into an HttpRequest, and
// decodes a chunked body as it arrives.
//
// Why: tkms's own event-driven listener replaces CivetWeb, which keeps only 64
// header fields and silently drops the rest, accepts `Name : value`, and drops
// `OPTIONS *` and absolute-form requests without an answer. Every byte here
// comes from an unauthenticated peer, and any leniency is a place where this
// parser and another one (a proxy, a load balancer) can read the same bytes as
// different requests. So it implements RFC 9112 (HTTP/1.1 message syntax)
// strictly and refuses, with a status and a metric label, everything else:
//   - request line (§3): method SP request-target SP HTTP-version CRLF,
//     exactly one SP each, method a token; "HTTP/1.1" and "HTTP/1.0" only,
//     any other HTTP/x.y (the HTTP/2 preface "PRI * HTTP/2.0" too) -> 505,
//     anything else -> 400;
//   - request-target (§3.2): origin-form per RFC 3986 (no SP, CTL, non-ASCII,
//     '#', malformed %XX); absolute-form "http(s)://authority/path?query"
//     (§3.2.2: a server MUST accept it) reduced to its origin-form part, the
//     authority reported in RequestTargetInfo; asterisk-form "*" only for
//     OPTIONS; authority-form only for CONNECT, which tkms does not implement
//     (501); longer than HeadLimits::max_target_bytes -> 414;
//   - header fields (§5): name ":" OWS value OWS CRLF, name a token,
//     whitespace before the colon (§5.1 MUST) and obs-fold (§5.2) -> 400,
//     values VCHAR / obs-text / SP / HTAB only (RFC 9110 §5.5); more than
//     max_header_fields fields or more than max_header_bytes -> 431, nothing
//     is ever dropped;
//   - Host (§3.2): exactly one in HTTP/1.1, at most one in HTTP/1.0, its value
//     uri-host [":" port] (RFC 3986 §3.2.2), empty only when the target has no
//     authority (origin-form, asterisk-form);
//   - line endings: CRLF only. A bare LF is allowed by §2.2 as a leniency
//     ("MAY recognize"); tkms refuses it (400 bare_lf) because a parser
//     that splits lines differently from a front proxy is a smuggling vector,
//     and the UEs tkms serves send CRLF;
//   - chunked bodies (§7.1): chunk-size 1..16 HEXDIG below 2^63, extensions
//     parsed per §7.1.1 and ignored, chunk lines at most 4096 bytes, data
//     followed by exactly CRLF, trailer fields validated like header fields,
//     bounded and discarded.
// Body framing (Content-Length / Transfer-Encoding) is decided afterwards by
// DecideBodyFraming (http_framing.h), on the complete, undropped header list.
//
// Untrusted bytes are read through ByteReader or bounded index loops; nothing
// recurses on input; allocations are bounded by the head size or the body cap.
//
// Thread-safety: the functions are pure; a ChunkedDecoder belongs to one
// connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "web/http_message.h"

namespace tkms::web {

struct HeadLimits {
  size_t max_header_bytes = 8192;  // request line + all header lines + final CRLF
  size_t max_header_fields = 100;
  size_t max_target_bytes = 4096;
};

// Why a head was refused: the HTTP status to answer (400, 414, 431, 501,
// 505), a short metric/log label (see the list in http1_parser.cpp, e.g.
// "bad_request_line", "too_many_headers", "space_before_colon", "bare_lf")
// and a one-line printable text for the response body and the log. No byte of
// the request appears in it unescaped (names are quoted with
// firmware/base/printable.h).
struct HeadError {
  int status = 400;
  std::string label;
  std::string detail;
};

// Empty lines (CRLF) accepted before the request line (RFC 9112 §2.2: a
// server SHOULD ignore at least one). With more, the request line is empty
// and the head is refused (400 bad_request_line).
inline constexpr size_t kMaxLeadingEmptyLines = 4;

enum class HeadScan : uint8_t { kIncomplete, kComplete, kTooLarge };

// Looks for the end of the head (the first CRLF CRLF after the leading empty
// lines) in the bytes buffered so far; `buffered` may continue past the head
// (pipelined requests).
//   kComplete: *head_length = the bytes up to and including that empty line,
//     leading empty lines included; at most max_header_bytes. Also returned
//     early, with *head_length ending just after the offending byte, when a
//     bare LF (one not preceded by CR) appears before the end: such a head
//     can only be refused, and ParseRequestHead refuses it (400 bare_lf)
//     without waiting for bytes that may never come.
//   kTooLarge: max_header_bytes bytes are buffered without a complete head
//     (answer 431).
//   kIncomplete: read more.
// Cost: with `scan_from` (a resume hint, 0 at the start of each request,
// updated on every kIncomplete), each byte is examined once across calls;
// without it each call is O(min(buffered.size(), max_header_bytes)).
HeadScan ScanForHeadEnd(std::string_view buffered, size_t max_header_bytes, size_t* head_length,
                        size_t* scan_from = nullptr);

// The form of the request-target (RFC 9112 §3.2) and, for absolute-form, the
// scheme and authority it carried (which RFC 9112 §3.2.2 says take the place
// of Host). Parsed from untrusted bytes, syntax-checked only.
enum class TargetForm : uint8_t { kOrigin, kAbsolute, kAsterisk };
struct RequestTargetInfo {
  TargetForm form = TargetForm::kOrigin;
  std::string scheme;     // "http" or "https" (lower case); absolute-form only
  std::string authority;  // "host[:port]" as sent; absolute-form only
};

// Parses a complete head (as delimited by ScanForHeadEnd: leading empty lines
// allowed, ending with the empty line, nothing after it) into
// request.method, .target (origin-form "path[?query]" or "*"), .version
// ("1.0"/"1.1") and .headers (arrival order, names as sent, values with OWS
// trimmed). Returns false and fills `error` on any refusal; `request` is then
// unchanged. Does not set id/peer/received/framing/body (the listener does;
// it calls DecideBodyFraming afterwards). `target_info`, if given, receives
// the target's form, scheme and authority.
bool ParseRequestHead(std::string_view head, const HeadLimits& limits, HttpRequest& request,
                      HeadError& error, RequestTargetInfo* target_info = nullptr);

// Incremental chunked body decoder (RFC 9112 §7.1). Feed it the bytes that
// arrived after the head, split anywhere; it appends the decoded data to
// `out` and reports how many input bytes it consumed: everything while
// kNeedMore, up to and including the final CRLF at kDone (pipelined bytes
// after it stay the caller's), up to and including the offending byte at
// kError. kDone, kTooLarge and kError are final (later Feeds consume
// nothing).
//
// The cap bounds the decoded body: at most cap + 1 bytes are ever appended
// (then kTooLarge, "reading stopped at cap + 1 bytes"), and `out`'s capacity
// is grown by hand: the decoder never makes it larger than its size at the
// first Feed plus cap + 1 (or 30 bytes, the smallest heap block libstdc++
// gives a string, for tiny caps).
// Pass the same `out` (normally empty at the start) to every Feed.
class ChunkedDecoder {
 public:
  enum class State : uint8_t { kNeedMore, kDone, kTooLarge, kError };
  // Longest chunk line (size, extensions, CRLF) accepted.
  static constexpr size_t kMaxChunkLineBytes = 4096;

  explicit ChunkedDecoder(size_t cap, size_t max_trailer_bytes = 8192);

  struct Step {
    size_t consumed;
    State state;
  };
  Step Feed(std::string_view in, std::string& out);

  State state() const { return state_; }
  // Decoded bytes appended so far.
  uint64_t decoded_bytes() const { return decoded_; }
  // Why kError (a fixed, printable one-line text), or "" otherwise.
  std::string_view error_detail() const { return error_detail_; }

 private:
  enum class Phase : uint8_t;

  // Consumes one byte of a chunk line, the data's CRLF or the trailer
  // section; false on an error (state_ set).
  bool Step1(uint8_t c);
  void Fail(const char* detail);

  size_t cap_;
  size_t max_trailer_bytes_;
  State state_ = State::kNeedMore;
  Phase phase_;
  uint64_t chunk_size_ = 0;      // the size of the chunk being read
  uint64_t chunk_left_ = 0;      // data bytes of it still to come
  size_t size_digits_ = 0;       // HEXDIG seen in the size
  size_t line_bytes_ = 0;        // bytes of the current chunk line
  size_t trailer_bytes_ = 0;     // bytes of the trailer section
  uint64_t decoded_ = 0;         // decoded bytes appended to out
  size_t out_base_size_ = 0;     // out's size at the first Feed
  bool out_base_known_ = false;
  const char* error_detail_ = "";
};

}  // namespace tkms::web
