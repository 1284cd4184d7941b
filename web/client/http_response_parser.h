// HttpResponseParser: the UE's HTTP/1.1 response parser, on buffers only.
//
// Why: TS 33.328 Annex A carries the KMS's MIKEY answers in HTTP responses,
// and every byte of them is untrusted. The parser is apart from the socket
// loop (http_client.cpp only moves bytes) so that each refusal can be tested
// and fuzzed without sockets (tests/ue/http_response_parser_test.cpp,
// ue_http_response_fuzz), and so that any split of the bytes into reads gives
// the same result. It reads through the bounds-checked ByteReader
// (firmware/base/byte_reader.h); lines are found with ByteReader::Find within
// their length limit, so no scan goes past a limit.
//
// Incremental: Feed() takes the bytes as they arrive and answers "need more"
// (nullopt), the complete response with the bytes that followed it
// (ParsedHttpResponse::leftover), or an error; Finish() reports the end of the
// stream (a close-delimited body ends there; anything else is truncated).
// After a complete response or an error the parser is spent: further calls
// return FailedPrecondition or the same error. Buffered bytes are bounded by
// the longest line allowed plus one read: body bytes are moved out as they
// arrive.
//
// Grammar and limits (RFC 9112 §4-§7, RFC 9110 §5, §15):
//   - status line "HTTP/1." ("0" / "1") SP 3DIGIT [SP reason] CRLF, status
//     100-599, no control characters; 1xx responses are skipped (at most
//     kMaxInterimResponses, their headers each within the budget), 101 is
//     refused (no protocol switch was asked for);
//   - header fields "name: value" with name = 1*tchar, OWS trimmed; lines end
//     with CRLF;
//   - the status line plus header fields, up to and including the empty line,
//     at most max_header_bytes (16 KiB);
//   - the body at most max_body_bytes (1 MiB); its length (RFC 9112 §6.3): none
//     for HEAD, 204 and 304; else chunked transfer coding, else Content-Length,
//     else until the server closes the connection (then no keep-alive);
//   - chunked: chunk-size lines at most kMaxChunkSizeLineBytes (64) bytes
//     (1-8 hex digits, OWS, optional ";" extensions, which are ignored), each
//     chunk followed by CRLF; trailer fields after the last chunk are parsed
//     like header fields and discarded, at most max_header_bytes in all
//     (including the final empty line).
// Refused as malformed (kInvalidArgument, "malformed HTTP response: ..."):
// a bad status line or code, a header line without a name or with a non-token
// name, obsolete line folding (a line starting with SP / HTAB), control
// characters in the status line or a field value, conflicting Content-Length
// values (equal repeats are allowed), a Content-Length that is not 1-19
// digits, Content-Length together with Transfer-Encoding, a Transfer-Encoding
// other than exactly one "chunked", a bad chunk size, a chunk not followed by
// CRLF, 101, more than kMaxInterimResponses 1xx responses.
// Over a limit: kResourceExhausted. The stream ending inside a response
// (Finish): kUnavailable, "... (truncated response)".
// Bytes after the end of a response are returned in `leftover`; nothing was
// asked for, so the client drops the connection rather than reusing it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"

namespace tkms::web::client {

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string body;

  // The value of the first header named `name` (case-insensitive), if any.
  std::optional<std::string_view> Header(std::string_view name) const;
};

struct HttpResponseLimits {
  size_t max_header_bytes = 16 * 1024;  // status line + header fields; also the trailers
  size_t max_body_bytes = 1024 * 1024;
};

inline constexpr size_t kMaxChunkSizeLineBytes = 64;  // chunk-size [ext], without CRLF
inline constexpr int kMaxInterimResponses = 8;        // 1xx responses before the final one

struct ParsedHttpResponse {
  HttpResponse response;
  // The connection may carry another request (RFC 9112 §9.3): HTTP/1.1
  // without "Connection: close", or HTTP/1.0 with "Connection: keep-alive";
  // never after a close-delimited body. The client also requires an empty
  // leftover.
  bool keep_alive = false;
  std::string leftover;  // bytes received after the end of the response
};

class HttpResponseParser {
 public:
  // `head_request`: the response answers HEAD (no body, whatever it says).
  explicit HttpResponseParser(HttpResponseLimits limits = {}, bool head_request = false);

  // Consumes `bytes`: nullopt if more are needed, the response once complete.
  Result<std::optional<ParsedHttpResponse>> Feed(ByteSpan bytes);
  Result<std::optional<ParsedHttpResponse>> Feed(std::string_view bytes);
  // The stream ended (the server closed the connection).
  Result<ParsedHttpResponse> Finish();

  // Bytes fed so far (0: the server sent nothing at all).
  uint64_t bytes_fed() const { return bytes_fed_; }

 private:
  enum class Phase : uint8_t {
    kStatusLine, kHeaderLine, kBodyLength, kBodyClose,
    kChunkSize, kChunkData, kChunkEnd, kTrailer, kDone, kFailed,
  };
  enum class Step : uint8_t { kAgain, kNeedMore };

  Result<Step> Advance(ByteReader& r);
  Result<std::optional<std::string_view>> ReadLine(ByteReader& r, size_t window, const char* what,
                                                   size_t limit);
  Result<Step> OnStatusLine(ByteReader& r);
  Result<Step> OnHeaderLine(ByteReader& r);
  Status EndOfHead();
  Status ChooseBody();
  Result<Step> OnChunkSize(ByteReader& r);
  Result<Step> OnChunkEnd(ByteReader& r);
  Result<Step> OnTrailer(ByteReader& r);
  void TakeBody(ByteReader& r, uint64_t max);
  Status Fail(Status error);

  HttpResponseLimits limits_;
  bool head_request_ = false;
  Phase phase_ = Phase::kStatusLine;
  std::vector<uint8_t> buf_;   // received, not yet consumed
  size_t scan_from_ = 0;       // where the search for the current line's CRLF resumes
  uint64_t bytes_fed_ = 0;
  size_t head_bytes_ = 0;      // of the current (interim or final) response head
  size_t trailer_bytes_ = 0;
  int interim_ = 0;
  bool http10_ = false;
  uint64_t body_left_ = 0;     // Content-Length or chunk bytes still to come
  ParsedHttpResponse out_;
  Status error_;
};

}  // namespace tkms::web::client
