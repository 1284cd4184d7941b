// The UE's HTTP/1.1 response parser (see http_response_parser.h; RFC 9112).
#include "web/client/http_response_parser.h"

#include <algorithm>
#include <string>

#include "web/client/http_text.h"

namespace tkms::web::client {
namespace {

using http_text::EqualsIgnoreCase;
using http_text::HasToken;
using http_text::TrimOws;
using http_text::ValidFieldValue;

constexpr uint8_t kCrlf[] = {'\r', '\n'};

Status Malformed(const std::string& what) { return InvalidArgument("malformed HTTP response: " + what); }

Status OverLimit(const std::string& what, size_t limit) {
  return ResourceExhausted("HTTP response " + what + " over the limit of " + std::to_string(limit) + " bytes");
}

Status Truncated(const std::string& where) {
  return Unavailable("connection closed " + where + " (truncated response)");
}

std::string_view AsText(ByteSpan b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// "HTTP/1.1 200 OK" (RFC 9112 §4): version 1.0 or 1.1, three digits, an
// optional reason after one SP.
Status ParseStatusLine(std::string_view line, HttpResponse& resp, bool& http10) {
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ' || (line.size() > 12 && line[12] != ' ')) {
    return Malformed("bad status line");
  }
  http10 = line[7] == '0';
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return Malformed("bad status code");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100 || status > 599) return Malformed("status code out of range");
  if (!ValidFieldValue(line)) return Malformed("control character in the status line");
  resp.status = status;
  resp.reason = line.size() > 13 ? std::string(line.substr(13)) : std::string();
  return Status::Ok();
}

// "name: value" (RFC 9112 §5): `what` is "header" or "trailer".
Status ParseFieldLine(std::string_view line, const std::string& what, std::string_view& name,
                      std::string_view& value) {
  if (line.front() == ' ' || line.front() == '\t') return Malformed("obsolete " + what + " line folding");
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return Malformed(what + " line without a name");
  name = line.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), http_text::IsTokenChar)) {
    return Malformed("invalid character in a " + what + " name");
  }
  value = TrimOws(line.substr(colon + 1));
  if (!ValidFieldValue(value)) return Malformed("control character in a " + what + " value");
  return Status::Ok();
}

}  // namespace

std::optional<std::string_view> HttpResponse::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

HttpResponseParser::HttpResponseParser(HttpResponseLimits limits, bool head_request)
    : limits_(limits), head_request_(head_request) {}

Result<std::optional<ParsedHttpResponse>> HttpResponseParser::Feed(std::string_view bytes) {
  return Feed(ByteSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

Result<std::optional<ParsedHttpResponse>> HttpResponseParser::Feed(ByteSpan bytes) {
  if (phase_ == Phase::kFailed) return error_;
  if (phase_ == Phase::kDone) return FailedPrecondition("the HTTP response is already complete");
  bytes_fed_ += bytes.size();
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  ByteReader r(buf_);
  for (;;) {
    auto step = Advance(r);
    if (!step.ok()) return Fail(step.error());
    if (phase_ == Phase::kDone) {
      out_.leftover.assign(AsText(r.rest()));
      buf_.clear();
      return std::optional<ParsedHttpResponse>(std::move(out_));
    }
    if (*step == Step::kNeedMore) break;
  }
  // Keep only what is not consumed yet (an incomplete line or CRLF).
  buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(r.offset()));
  return std::optional<ParsedHttpResponse>();
}

Result<ParsedHttpResponse> HttpResponseParser::Finish() {
  switch (phase_) {
    case Phase::kFailed:
      return error_;
    case Phase::kDone:
      return FailedPrecondition("the HTTP response is already complete");
    case Phase::kBodyClose:
      // The body ended with the connection (RFC 9112 §6.3, rule 8).
      phase_ = Phase::kDone;
      return std::move(out_);
    case Phase::kStatusLine:
      if (bytes_fed_ == 0) return Fail(Unavailable("connection closed by the server before any response"));
      return Fail(Truncated("inside the response header"));
    case Phase::kHeaderLine:
      return Fail(Truncated("inside the response header"));
    case Phase::kBodyLength:
      return Fail(Truncated("after " + std::to_string(out_.response.body.size()) + " of " +
                            std::to_string(out_.response.body.size() + body_left_) + " body bytes"));
    case Phase::kChunkSize:
      return Fail(Truncated("inside the response chunk size line"));
    case Phase::kChunkData:
    case Phase::kChunkEnd:
      return Fail(Truncated("inside a chunk"));
    case Phase::kTrailer:
      return Fail(Truncated("inside the response trailers"));
  }
  return Fail(Internal("unknown HTTP parser phase"));
}

Status HttpResponseParser::Fail(Status error) {
  phase_ = Phase::kFailed;
  error_ = error;
  buf_.clear();
  return error;
}

Result<HttpResponseParser::Step> HttpResponseParser::Advance(ByteReader& r) {
  switch (phase_) {
    case Phase::kStatusLine: return OnStatusLine(r);
    case Phase::kHeaderLine: return OnHeaderLine(r);
    case Phase::kBodyLength:
    case Phase::kChunkData:
      TakeBody(r, body_left_);
      if (body_left_ != 0) return Step::kNeedMore;
      phase_ = phase_ == Phase::kBodyLength ? Phase::kDone : Phase::kChunkEnd;
      return Step::kAgain;
    case Phase::kBodyClose:
      if (r.remaining() > limits_.max_body_bytes - out_.response.body.size()) {
        return OverLimit("body", limits_.max_body_bytes);
      }
      TakeBody(r, r.remaining());
      return Step::kNeedMore;
    case Phase::kChunkSize: return OnChunkSize(r);
    case Phase::kChunkEnd: return OnChunkEnd(r);
    case Phase::kTrailer: return OnTrailer(r);
    case Phase::kDone:
    case Phase::kFailed:
      break;
  }
  return Step::kNeedMore;
}

void HttpResponseParser::TakeBody(ByteReader& r, uint64_t max) {
  const size_t n = static_cast<size_t>(std::min<uint64_t>(max, r.remaining()));
  ByteSpan part;
  if (!r.ReadBytes(n, part)) return;  // unreachable: n <= remaining
  out_.response.body.append(AsText(part));
  if (phase_ != Phase::kBodyClose) body_left_ -= n;
}

// The next CRLF-terminated line, if it ends within `window` bytes; nullopt
// if more bytes are needed; kResourceExhausted if it cannot end in time.
Result<std::optional<std::string_view>> HttpResponseParser::ReadLine(ByteReader& r, size_t window,
                                                                     const char* what, size_t limit) {
  const auto at = r.Find(kCrlf, scan_from_, window);
  if (!at) {
    if (r.remaining() >= window) return OverLimit(what, limit);
    // Resume at the last byte: it may be the CR of a CRLF split across reads.
    scan_from_ = r.remaining() > 0 ? r.remaining() - 1 : 0;
    return std::optional<std::string_view>();
  }
  ByteSpan line;
  if (!r.ReadBytes(*at, line) || !r.Skip(sizeof kCrlf)) return Internal("HTTP line bounds");
  scan_from_ = 0;
  return std::optional<std::string_view>(AsText(line));
}

Result<HttpResponseParser::Step> HttpResponseParser::OnStatusLine(ByteReader& r) {
  const size_t budget = limits_.max_header_bytes;
  auto line = ReadLine(r, budget > head_bytes_ ? budget - head_bytes_ : 0, "header", budget);
  if (!line.ok()) return line.error();
  if (!line->has_value()) return Step::kNeedMore;
  head_bytes_ += (*line)->size() + sizeof kCrlf;
  TKMS_RETURN_IF_ERROR(ParseStatusLine(**line, out_.response, http10_));
  phase_ = Phase::kHeaderLine;
  return Step::kAgain;
}

Result<HttpResponseParser::Step> HttpResponseParser::OnHeaderLine(ByteReader& r) {
  const size_t budget = limits_.max_header_bytes;
  auto line = ReadLine(r, budget > head_bytes_ ? budget - head_bytes_ : 0, "header", budget);
  if (!line.ok()) return line.error();
  if (!line->has_value()) return Step::kNeedMore;
  head_bytes_ += (*line)->size() + sizeof kCrlf;
  if ((*line)->empty()) {
    TKMS_RETURN_IF_ERROR(EndOfHead());
    return Step::kAgain;
  }
  std::string_view name, value;
  TKMS_RETURN_IF_ERROR(ParseFieldLine(**line, "header", name, value));
  out_.response.headers.emplace_back(std::string(name), std::string(value));
  return Step::kAgain;
}

Status HttpResponseParser::EndOfHead() {
  const int status = out_.response.status;
  if (status == 101) return Malformed("unexpected protocol switch (101)");
  if (status < 200) {
    // An interim response (RFC 9110 §15.2): skipped; the final one follows.
    if (interim_ >= kMaxInterimResponses) return Malformed("too many interim (1xx) responses");
    ++interim_;
    out_.response = HttpResponse{};
    head_bytes_ = 0;
    phase_ = Phase::kStatusLine;
    return Status::Ok();
  }
  return ChooseBody();
}

// Connection persistence (RFC 9112 §9.3) and the body length (§6.3).
Status HttpResponseParser::ChooseBody() {
  const HttpResponse& resp = out_.response;
  out_.keep_alive = !http10_;
  std::optional<uint64_t> content_length;
  bool chunked = false;
  for (const auto& [n, v] : resp.headers) {
    if (EqualsIgnoreCase(n, "Connection")) {
      if (HasToken(v, "close")) out_.keep_alive = false;
      if (http10_ && HasToken(v, "keep-alive")) out_.keep_alive = true;
    } else if (EqualsIgnoreCase(n, "Content-Length")) {
      uint64_t len = 0;
      if (!http_text::ParseDecimal(v, len)) return Malformed("invalid Content-Length");
      if (content_length.has_value() && *content_length != len) {
        return Malformed("conflicting Content-Length values");
      }
      content_length = len;
    } else if (EqualsIgnoreCase(n, "Transfer-Encoding")) {
      if (chunked || !EqualsIgnoreCase(TrimOws(v), "chunked")) {
        return Malformed("unsupported Transfer-Encoding \"" + v + "\"");
      }
      chunked = true;
    }
  }
  if (chunked && content_length.has_value()) return Malformed("both Content-Length and Transfer-Encoding");
  if (head_request_ || resp.status == 204 || resp.status == 304) {
    phase_ = Phase::kDone;
  } else if (chunked) {
    phase_ = Phase::kChunkSize;
  } else if (content_length.has_value()) {
    if (*content_length > limits_.max_body_bytes) {
      return ResourceExhausted("HTTP response body of " + std::to_string(*content_length) +
                               " bytes over the limit of " + std::to_string(limits_.max_body_bytes) + " bytes");
    }
    body_left_ = *content_length;
    phase_ = body_left_ == 0 ? Phase::kDone : Phase::kBodyLength;
  } else {
    out_.keep_alive = false;  // the body ends when the server closes the connection
    phase_ = Phase::kBodyClose;
  }
  return Status::Ok();
}

Result<HttpResponseParser::Step> HttpResponseParser::OnChunkSize(ByteReader& r) {
  auto line = ReadLine(r, kMaxChunkSizeLineBytes + sizeof kCrlf, "chunk size line", kMaxChunkSizeLineBytes);
  if (!line.ok()) return line.error();
  if (!line->has_value()) return Step::kNeedMore;
  // chunk-size [ BWS ";" chunk-ext ] (RFC 9112 §7.1); extensions are ignored.
  const std::string_view text = **line;
  uint64_t size = 0;
  if (!http_text::ParseHex(TrimOws(text.substr(0, text.find(';'))), 8, size)) {
    return Malformed("invalid chunk size");
  }
  if (size == 0) {
    trailer_bytes_ = 0;
    phase_ = Phase::kTrailer;
    return Step::kAgain;
  }
  if (size > limits_.max_body_bytes - out_.response.body.size()) {
    return OverLimit("body", limits_.max_body_bytes);
  }
  body_left_ = size;
  phase_ = Phase::kChunkData;
  return Step::kAgain;
}

Result<HttpResponseParser::Step> HttpResponseParser::OnChunkEnd(ByteReader& r) {
  ByteSpan end;
  if (!r.ReadBytes(sizeof kCrlf, end)) return Step::kNeedMore;
  if (!std::equal(end.begin(), end.end(), std::begin(kCrlf))) return Malformed("chunk not followed by CRLF");
  phase_ = Phase::kChunkSize;
  return Step::kAgain;
}

Result<HttpResponseParser::Step> HttpResponseParser::OnTrailer(ByteReader& r) {
  const size_t budget = limits_.max_header_bytes;
  auto line = ReadLine(r, budget > trailer_bytes_ ? budget - trailer_bytes_ : 0, "trailers", budget);
  if (!line.ok()) return line.error();
  if (!line->has_value()) return Step::kNeedMore;
  trailer_bytes_ += (*line)->size() + sizeof kCrlf;
  if ((*line)->empty()) {
    phase_ = Phase::kDone;
    return Step::kAgain;
  }
  std::string_view name, value;  // parsed for the refusals, then dropped
  TKMS_RETURN_IF_ERROR(ParseFieldLine(**line, "trailer", name, value));
  return Step::kAgain;
}

}  // namespace tkms::web::client
