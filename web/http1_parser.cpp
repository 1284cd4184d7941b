// Strict HTTP/1.1 request parsing (RFC 9112): see http1_parser.h.
//
// Refusal labels (HeadError::label), for metrics and logs:
//   400 bad_head            the head does not end with exactly one empty line
//   400 bare_lf             LF not preceded by CR (§2.2)
//   400 bad_request_line    not method SP target SP HTTP/DIGIT.DIGIT (§3), a
//                           method that is not a token, CTL or non-ASCII
//                           bytes, or too many leading CRLFs
//   505 bad_version         HTTP/x.y other than 1.0 and 1.1
//   400 bad_target          no valid origin/absolute/asterisk form for the method
//   414 target_too_long     longer than HeadLimits::max_target_bytes
//   501 connect             CONNECT (authority-form) is not implemented
//   400 obs_fold            a field line starting with SP/HTAB (§5.2)
//   400 space_before_colon  whitespace between field name and colon (§5.1)
//   400 bad_header_name     no colon, empty name or a non-token name
//   400 bad_header_value    a byte other than VCHAR/obs-text/SP/HTAB
//   431 too_many_headers    more than HeadLimits::max_header_fields fields
//   431 header_too_large    more than HeadLimits::max_header_bytes bytes
//   400 missing_host        HTTP/1.1 without Host (§3.2)
//   400 repeated_host       more than one Host (§3.2)
//   400 bad_host            a Host value that is not uri-host [":" port]
#include "web/http1_parser.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/printable.h"

namespace tkms::web {
namespace {

constexpr std::string_view kCrlf = "\r\n";

ByteSpan BytesOf(std::string_view text) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

std::string_view TextOf(ByteSpan bytes) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// ---- character classes (RFC 9110 §5.6.2, RFC 3986 §2) -------------------------

bool IsAlpha(uint8_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool IsDigit(uint8_t c) { return c >= '0' && c <= '9'; }
bool IsHex(uint8_t c) { return IsDigit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }
bool IsWs(uint8_t c) { return c == ' ' || c == '\t'; }

// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
//         "_" / "`" / "|" / "~" / DIGIT / ALPHA
bool IsTchar(uint8_t c) {
  if (IsAlpha(c) || IsDigit(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsTchar(static_cast<uint8_t>(c)); });
}

// field-vchar / SP / HTAB: VCHAR, obs-text (0x80-0xff), SP, HTAB.
bool IsFieldByte(uint8_t c) { return (c >= 0x21 && c != 0x7f) || IsWs(c); }

bool IsUnreserved(uint8_t c) {
  return IsAlpha(c) || IsDigit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool IsSubDelim(uint8_t c) {
  switch (c) {
    case '!': case '$': case '&': case '\'': case '(': case ')': case '*': case '+':
    case ',': case ';': case '=':
      return true;
    default:
      return false;
  }
}

// Every byte of `s` is unreserved, sub-delims, one of `extra`, or the start
// of a complete pct-encoded triplet.
bool IsUriText(std::string_view s, std::string_view extra) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c == '%') {
      if (s.size() - i < 3 || !IsHex(static_cast<uint8_t>(s[i + 1])) ||
          !IsHex(static_cast<uint8_t>(s[i + 2]))) {
        return false;
      }
      i += 2;
    } else if (!IsUnreserved(c) && !IsSubDelim(c) && extra.find(s[i]) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// absolute-path [ "?" query ] (RFC 9112 §3.2.1), or path-abempty [ "?" query ]
// when `allow_empty_path` (the rest of an absolute-form target).
bool IsPathAndQuery(std::string_view s, bool allow_empty_path) {
  const size_t q = s.find('?');
  const std::string_view path = s.substr(0, q);
  if (path.empty() ? !allow_empty_path : path.front() != '/') return false;
  if (!IsUriText(path, ":@/")) return false;
  return q == std::string_view::npos || IsUriText(s.substr(q + 1), ":@/?");
}

// dec-octet "." dec-octet "." dec-octet "." dec-octet (RFC 3986 §3.2.2; no
// leading zeros).
bool IsIpv4(std::string_view s) {
  size_t octets = 0;
  size_t i = 0;
  while (true) {
    size_t j = i;
    unsigned value = 0;
    while (j < s.size() && IsDigit(static_cast<uint8_t>(s[j])) && j - i < 3) {
      value = value * 10 + static_cast<unsigned>(s[j] - '0');
      ++j;
    }
    const size_t len = j - i;
    if (len == 0 || value > 255 || (len > 1 && s[i] == '0')) return false;
    ++octets;
    if (j == s.size()) return octets == 4;
    if (s[j] != '.' || octets == 4) return false;
    i = j + 1;
  }
}

// IPv6address (RFC 3986 §3.2.2): up to 8 groups of 1-4 HEXDIG, at most one
// "::", optionally ending in an IPv4 address (two groups).
bool IsIpv6(std::string_view s) {
  size_t groups = 0;
  bool elided = false;
  size_t i = 0;
  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    elided = true;
    i = 2;
    if (i == s.size()) return true;
  }
  while (true) {
    size_t j = i;
    while (j < s.size() && IsHex(static_cast<uint8_t>(s[j])) && j - i < 5) ++j;
    if (j < s.size() && s[j] == '.') {  // the IPv4 tail
      if (!IsIpv4(s.substr(i))) return false;
      groups += 2;
      break;
    }
    if (j == i || j - i > 4) return false;
    ++groups;
    if (groups > 8) return false;
    if (j == s.size()) break;
    if (s[j] != ':') return false;
    i = j + 1;
    if (i < s.size() && s[i] == ':') {
      if (elided) return false;
      elided = true;
      ++i;
      if (i == s.size()) break;
    } else if (i == s.size()) {
      return false;  // a trailing single ':'
    }
  }
  return elided ? groups <= 7 : groups == 8;
}

// IP-literal = "[" ( IPv6address / IPvFuture ) "]", without the brackets.
bool IsIpLiteralContent(std::string_view s) {
  if (!s.empty() && (s[0] == 'v' || s[0] == 'V')) {
    const size_t dot = s.find('.');
    if (dot == std::string_view::npos || dot < 2 || dot + 1 == s.size()) return false;
    for (size_t i = 1; i < dot; ++i) {
      if (!IsHex(static_cast<uint8_t>(s[i]))) return false;
    }
    for (size_t i = dot + 1; i < s.size(); ++i) {
      const auto c = static_cast<uint8_t>(s[i]);
      if (!IsUnreserved(c) && !IsSubDelim(c) && c != ':') return false;
    }
    return true;
  }
  return IsIpv6(s);
}

// uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2-3.2.3) with a
// non-empty host and a port of at most 5 digits, at most 65535 (empty port
// allowed, as RFC 3986 allows it).
bool IsHostAndPort(std::string_view s, bool require_port) {
  std::string_view host;
  std::string_view rest;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || !IsIpLiteralContent(s.substr(1, close - 1))) return false;
    host = s.substr(0, close + 1);
    rest = s.substr(close + 1);
  } else {
    const size_t colon = s.find(':');
    host = s.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : s.substr(colon);
    if (host.empty() || !IsUriText(host, "")) return false;  // reg-name (covers IPv4address)
  }
  if (rest.empty()) return !require_port;
  if (rest.front() != ':') return false;
  const std::string_view port = rest.substr(1);
  if (port.size() > 5) return false;
  uint32_t value = 0;
  for (const char c : port) {
    if (!IsDigit(static_cast<uint8_t>(c))) return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  return value <= 65535 && !(require_port && port.empty());
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

// ---- the head -----------------------------------------------------------------

bool Refuse(HeadError& error, int status, std::string_view label, std::string detail) {
  error.status = status;
  error.label = std::string(label);
  error.detail = std::move(detail);
  return false;
}

// Splits the head into CRLF-terminated lines through a ByteReader.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : reader_(BytesOf(text)) {}
  // The next line without its CRLF; false when no CRLF is left.
  bool Next(std::string_view& line) {
    const auto at = reader_.Find(BytesOf(kCrlf));
    if (!at) return false;
    ByteSpan bytes;
    if (!reader_.ReadBytes(*at, bytes) || !reader_.Skip(kCrlf.size())) return false;
    line = TextOf(bytes);
    return true;
  }
  bool AtCrlf() const {
    const auto at = reader_.Find(BytesOf(kCrlf), 0, kCrlf.size());
    return at.has_value();
  }
  bool SkipCrlf() { return reader_.Skip(kCrlf.size()); }
  bool empty() const { return reader_.empty(); }

 private:
  ByteReader reader_;
};

std::string FieldWhere(size_t index, std::string_view name) {
  // Appended piece by piece: g++ 12 -O3 reports a false -Wrestrict for
  // "literal" + std::string temporaries here.
  std::string where("header field ");
  where.append(std::to_string(index + 1));
  if (!name.empty()) where.append(" ").append(Quote(name));
  return where;
}

// Parses the request-target. On success sets `target` (origin-form or "*")
// and `info`.
bool ParseTarget(std::string_view method, std::string_view raw, const HeadLimits& limits,
                 std::string& target, RequestTargetInfo& info, HeadError& error) {
  if (raw.size() > limits.max_target_bytes) {
    return Refuse(error, 414, "target_too_long",
                  "request-target longer than " + std::to_string(limits.max_target_bytes) + " bytes");
  }
  if (method == "CONNECT") {
    if (IsHostAndPort(raw, /*require_port=*/true)) {
      return Refuse(error, 501, "connect", "CONNECT is not implemented");
    }
    return Refuse(error, 400, "bad_target", "CONNECT needs an authority-form target (host:port)");
  }
  if (raw == "*") {
    if (method != "OPTIONS") {
      return Refuse(error, 400, "bad_target", "the asterisk-form target is only for OPTIONS");
    }
    target.assign(1, '*');  // (not `= "*"`: g++ 12 -O3 reports a false -Wrestrict there)
    info = RequestTargetInfo{TargetForm::kAsterisk, {}, {}};
    return true;
  }
  if (!raw.empty() && raw.front() == '/') {
    if (!IsPathAndQuery(raw, false)) {
      return Refuse(error, 400, "bad_target", "malformed origin-form request-target (RFC 3986)");
    }
    target = std::string(raw);
    info = RequestTargetInfo{};
    return true;
  }
  // absolute-form (RFC 9112 §3.2.2), http and https only.
  std::string scheme;
  if (StartsWithIgnoreCase(raw, "http://")) {
    scheme = "http";
  } else if (StartsWithIgnoreCase(raw, "https://")) {
    scheme = "https";
  } else {
    return Refuse(error, 400, "bad_target", "request-target is not origin-form, absolute-form or *");
  }
  const std::string_view after = raw.substr(scheme.size() + 3);
  const size_t end = std::min(after.find('/'), after.find('?'));
  const std::string_view authority = after.substr(0, end);
  const std::string_view rest = end == std::string_view::npos ? std::string_view() : after.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    // RFC 9110 §4.2.4: userinfo in an http(s) URI is to be treated as an error.
    return Refuse(error, 400, "bad_target", "userinfo in an absolute-form request-target");
  }
  if (!IsHostAndPort(authority, false)) {
    return Refuse(error, 400, "bad_target", "malformed authority in an absolute-form request-target");
  }
  if (!IsPathAndQuery(rest, true)) {
    return Refuse(error, 400, "bad_target", "malformed absolute-form request-target (RFC 3986)");
  }
  // An empty path is "/" (RFC 9112 §3.2.2). Built with append: g++ 12 -O3
  // reports a false -Wrestrict for "/" + std::string(...).
  target.clear();
  if (rest.empty() || rest.front() == '?') target.push_back('/');
  target.append(rest);
  info = RequestTargetInfo{TargetForm::kAbsolute, std::move(scheme), std::string(authority)};
  return true;
}

bool ParseRequestLine(std::string_view line, const HeadLimits& limits, std::string& method,
                      std::string& target, std::string& version, RequestTargetInfo& info,
                      HeadError& error) {
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    return Refuse(error, 400, "bad_request_line", "request line is not method SP target SP version");
  }
  const std::string_view m = line.substr(0, sp1);
  const std::string_view raw_target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view v = line.substr(sp2 + 1);
  if (!IsToken(m)) {
    return Refuse(error, 400, "bad_request_line", "the method is not a token");
  }
  if (raw_target.empty()) {
    return Refuse(error, 400, "bad_request_line", "empty request-target (more than one SP?)");
  }
  // HTTP-version = HTTP-name "/" DIGIT "." DIGIT (§2.3), case-sensitive.
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !IsDigit(static_cast<uint8_t>(v[5])) ||
      v[6] != '.' || !IsDigit(static_cast<uint8_t>(v[7]))) {
    return Refuse(error, 400, "bad_request_line", "the request line does not end in HTTP/DIGIT.DIGIT");
  }
  if (v != "HTTP/1.1" && v != "HTTP/1.0") {
    return Refuse(error, 505, "bad_version", "only HTTP/1.1 and HTTP/1.0 are supported");
  }
  if (!ParseTarget(m, raw_target, limits, target, info, error)) return false;
  method = std::string(m);
  version = std::string(v.substr(5));
  return true;
}

// One field line (§5): name ":" OWS value OWS.
bool ParseFieldLine(std::string_view line, size_t index, HttpHeader& header, HeadError& error) {
  if (IsWs(static_cast<uint8_t>(line.front()))) {
    return Refuse(error, 400, "obs_fold",
                  FieldWhere(index, "") + " starts with whitespace (obs-fold, RFC 9112 section 5.2)");
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return Refuse(error, 400, "bad_header_name", FieldWhere(index, "") + " has no colon");
  }
  const std::string_view name = line.substr(0, colon);
  if (name.empty()) {
    return Refuse(error, 400, "bad_header_name", FieldWhere(index, "") + " has an empty name");
  }
  if (IsWs(static_cast<uint8_t>(name.back()))) {
    return Refuse(error, 400, "space_before_colon",
                  FieldWhere(index, TrimOws(name)) + ": whitespace between name and colon (RFC 9112 section 5.1)");
  }
  if (!IsToken(name)) {
    return Refuse(error, 400, "bad_header_name", FieldWhere(index, name) + ": name is not a token");
  }
  const std::string_view value = TrimOws(line.substr(colon + 1));
  for (const char c : value) {
    if (!IsFieldByte(static_cast<uint8_t>(c))) {
      return Refuse(error, 400, "bad_header_value",
                    FieldWhere(index, name) + ": value has a control character");
    }
  }
  header.name = std::string(name);
  header.value = std::string(value);
  return true;
}

}  // namespace

HeadScan ScanForHeadEnd(std::string_view buffered, size_t max_header_bytes, size_t* head_length,
                        size_t* scan_from) {
  const size_t window = std::min(buffered.size(), max_header_bytes);
  // The request line starts after at most kMaxLeadingEmptyLines CRLFs; a
  // CRLF CRLF that ends the head begins at or after it.
  size_t start = 0;
  for (size_t n = 0; n < kMaxLeadingEmptyLines && window - start >= 2 && buffered[start] == '\r' &&
                     buffered[start + 1] == '\n';
       ++n) {
    start += 2;
  }
  size_t i = scan_from != nullptr ? std::max(*scan_from, start) : start;
  while (i < window) {
    const void* hit = std::memchr(buffered.data() + i, '\n', window - i);
    if (hit == nullptr) break;
    const size_t lf = static_cast<size_t>(static_cast<const char*>(hit) - buffered.data());
    if (lf == 0 || buffered[lf - 1] != '\r') {  // a bare LF: the head can only be refused
      if (head_length != nullptr) *head_length = lf + 1;
      return HeadScan::kComplete;
    }
    if (lf >= start + 3 && buffered[lf - 2] == '\n' && buffered[lf - 3] == '\r') {
      if (head_length != nullptr) *head_length = lf + 1;
      return HeadScan::kComplete;
    }
    i = lf + 1;
  }
  if (scan_from != nullptr) *scan_from = window;
  return buffered.size() >= max_header_bytes ? HeadScan::kTooLarge : HeadScan::kIncomplete;
}

bool ParseRequestHead(std::string_view head, const HeadLimits& limits, HttpRequest& request,
                      HeadError& error, RequestTargetInfo* target_info) {
  if (head.size() > limits.max_header_bytes) {
    return Refuse(error, 431, "header_too_large",
                  "request head larger than " + std::to_string(limits.max_header_bytes) + " bytes");
  }
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r')) {
      return Refuse(error, 400, "bare_lf", "LF without CR in the request head (RFC 9112 section 2.2)");
    }
  }
  LineReader lines(head);
  for (size_t n = 0; n < kMaxLeadingEmptyLines && lines.AtCrlf(); ++n) {
    if (!lines.SkipCrlf()) break;
  }
  std::string_view line;
  if (!lines.Next(line)) {
    return Refuse(error, 400, "bad_head", "the request head does not end with an empty line");
  }
  if (line.empty()) {
    return Refuse(error, 400, "bad_request_line", "empty request line");
  }
  std::string method, target, version;
  RequestTargetInfo info;
  if (!ParseRequestLine(line, limits, method, target, version, info, error)) return false;

  std::vector<HttpHeader> headers;
  size_t hosts = 0;
  size_t host_index = 0;
  bool ended = false;
  while (lines.Next(line)) {
    if (line.empty()) {
      ended = true;
      break;
    }
    if (headers.size() == limits.max_header_fields) {
      return Refuse(error, 431, "too_many_headers",
                    "more than " + std::to_string(limits.max_header_fields) + " header fields");
    }
    HttpHeader header;
    if (!ParseFieldLine(line, headers.size(), header, error)) return false;
    headers.push_back(std::move(header));
    if (EqualsIgnoreCase(headers.back().name, "Host")) {
      ++hosts;
      host_index = headers.size() - 1;
      if (hosts > 1) {
        return Refuse(error, 400, "repeated_host", "more than one Host header field (RFC 9112 section 3.2)");
      }
    }
  }
  if (!ended || !lines.empty()) {
    return Refuse(error, 400, "bad_head", "the request head does not end with exactly one empty line");
  }
  if (hosts == 0) {
    if (version == "1.1") {
      return Refuse(error, 400, "missing_host", "HTTP/1.1 request without Host (RFC 9112 section 3.2)");
    }
  } else {
    const std::string& host = headers[host_index].value;
    const bool empty_ok = info.form != TargetForm::kAbsolute;
    if (host.empty() ? !empty_ok : !IsHostAndPort(host, false)) {
      return Refuse(error, 400, "bad_host", "Host is not uri-host [\":\" port] (RFC 9112 section 3.2)");
    }
  }
  request.method = std::move(method);
  request.target = std::move(target);
  request.version = std::move(version);
  request.headers = std::move(headers);
  if (target_info != nullptr) *target_info = std::move(info);
  return true;
}

// ---- chunked ------------------------------------------------------------------

// Where the decoder is, byte by byte (RFC 9112 §7.1, §7.1.1, §7.1.2):
//   chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//   last-chunk = 1*("0") [ chunk-ext ] CRLF
//   trailer-section = *( field-line CRLF ), then CRLF
enum class ChunkedDecoder::Phase : uint8_t {
  kSizeFirst,       // the first HEXDIG of a chunk-size
  kSize,            // more HEXDIG, ';', BWS or CR
  kBwsBeforeSemi,   // BWS seen after the size or a value: only ';' or more BWS
  kBwsBeforeName,   // after ';': BWS or the first tchar of a name
  kExtName,         // tchar, ';', '=', BWS or CR
  kBwsAfterName,    // BWS after a name: ';', '=' or more BWS
  kBwsBeforeValue,  // after '=': BWS, a tchar or DQUOTE
  kExtToken,        // tchar, ';', BWS or CR
  kExtQuoted,       // inside a quoted-string
  kExtQuotedPair,   // after a backslash inside it
  kAfterQuoted,     // after the closing DQUOTE: ';', BWS or CR
  kSizeLf,          // the LF that ends the chunk line
  kData,            // chunk-data
  kDataCr,          // the CR after the data
  kDataLf,          // the LF after the data
  kTrailerStart,    // the start of a trailer field line, or the final CR
  kTrailerName,     // tchar or ':'
  kTrailerValue,    // field bytes or CR
  kTrailerLf,       // the LF that ends a trailer field line
  kFinalLf,         // the LF of the final empty line
};

namespace {

// Makes room for `needed` bytes in `out` (needed <= limit) without letting its
// capacity pass `limit`: geometric growth while that stays within the limit,
// then one exact allocation. (std::string's own growth doubles, and
// libstdc++'s reserve(n) also doubles when n is below twice the capacity, so
// the last step copies into a string reserved exactly.)
void GrowBounded(std::string& out, size_t needed, size_t limit) {
  if (needed <= out.capacity()) return;
  const size_t doubled = out.capacity() > SIZE_MAX / 2 ? SIZE_MAX : out.capacity() * 2;
  if (doubled <= limit) {
    out.reserve(std::max(needed, doubled));
    return;
  }
  std::string exact;
  exact.reserve(std::max(needed, limit));
  exact.append(out);
  out.swap(exact);
}

}  // namespace

ChunkedDecoder::ChunkedDecoder(size_t cap, size_t max_trailer_bytes)
    : cap_(cap), max_trailer_bytes_(max_trailer_bytes), phase_(Phase::kSizeFirst) {}

void ChunkedDecoder::Fail(const char* detail) {
  state_ = State::kError;
  error_detail_ = detail;
}

bool ChunkedDecoder::Step1(uint8_t c) {
  const bool in_line = phase_ <= Phase::kSizeLf;
  if (in_line && ++line_bytes_ > kMaxChunkLineBytes) {
    Fail("chunk line longer than 4096 bytes");
    return false;
  }
  const bool in_trailer = phase_ >= Phase::kTrailerStart;
  if (in_trailer && ++trailer_bytes_ > max_trailer_bytes_) {
    Fail("trailer section too large");
    return false;
  }
  if (c == '\n' && phase_ != Phase::kSizeLf && phase_ != Phase::kDataLf &&
      phase_ != Phase::kTrailerLf && phase_ != Phase::kFinalLf) {
    Fail("LF without CR in chunked framing");
    return false;
  }
  switch (phase_) {
    case Phase::kSizeFirst:
    case Phase::kSize: {
      if (IsHex(c)) {
        if (++size_digits_ > 16) {
          Fail("chunk-size longer than 16 hex digits");
          return false;
        }
        const uint64_t digit = IsDigit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
        if (chunk_size_ > (((uint64_t{1} << 63) - 1) - digit) / 16) {
          Fail("chunk-size above 2^63 - 1");
          return false;
        }
        chunk_size_ = chunk_size_ * 16 + digit;
        phase_ = Phase::kSize;
        return true;
      }
      if (phase_ == Phase::kSizeFirst) {
        Fail("chunk-size is not hexadecimal");
        return false;
      }
      if (c == ';') phase_ = Phase::kBwsBeforeName;
      else if (IsWs(c)) phase_ = Phase::kBwsBeforeSemi;
      else if (c == '\r') phase_ = Phase::kSizeLf;
      else break;
      return true;
    }
    case Phase::kBwsBeforeSemi:
      if (c == ';') phase_ = Phase::kBwsBeforeName;
      else if (!IsWs(c)) break;
      return true;
    case Phase::kBwsBeforeName:
      if (IsTchar(c)) phase_ = Phase::kExtName;
      else if (!IsWs(c)) break;
      return true;
    case Phase::kExtName:
      if (c == ';') phase_ = Phase::kBwsBeforeName;
      else if (c == '=') phase_ = Phase::kBwsBeforeValue;
      else if (IsWs(c)) phase_ = Phase::kBwsAfterName;
      else if (c == '\r') phase_ = Phase::kSizeLf;
      else if (!IsTchar(c)) break;
      return true;
    case Phase::kBwsAfterName:
      if (c == ';') phase_ = Phase::kBwsBeforeName;
      else if (c == '=') phase_ = Phase::kBwsBeforeValue;
      else if (!IsWs(c)) break;
      return true;
    case Phase::kBwsBeforeValue:
      if (IsTchar(c)) phase_ = Phase::kExtToken;
      else if (c == '"') phase_ = Phase::kExtQuoted;
      else if (!IsWs(c)) break;
      return true;
    case Phase::kExtToken:
      if (c == ';') phase_ = Phase::kBwsBeforeName;
      else if (IsWs(c)) phase_ = Phase::kBwsBeforeSemi;
      else if (c == '\r') phase_ = Phase::kSizeLf;
      else if (!IsTchar(c)) break;
      return true;
    case Phase::kExtQuoted:
      // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
      if (c == '"') phase_ = Phase::kAfterQuoted;
      else if (c == '\\') phase_ = Phase::kExtQuotedPair;
      else if (!IsFieldByte(c)) break;
      return true;
    case Phase::kExtQuotedPair:
      // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
      if (!IsFieldByte(c)) break;
      phase_ = Phase::kExtQuoted;
      return true;
    case Phase::kAfterQuoted:
      if (c == ';') phase_ = Phase::kBwsBeforeName;
      else if (IsWs(c)) phase_ = Phase::kBwsBeforeSemi;
      else if (c == '\r') phase_ = Phase::kSizeLf;
      else break;
      return true;
    case Phase::kSizeLf:
      if (c != '\n') {
        Fail("CR without LF in a chunk line");
        return false;
      }
      line_bytes_ = 0;
      size_digits_ = 0;
      if (chunk_size_ == 0) {
        phase_ = Phase::kTrailerStart;
      } else {
        chunk_left_ = chunk_size_;
        chunk_size_ = 0;
        phase_ = Phase::kData;
      }
      return true;
    case Phase::kData:
      return true;  // handled in Feed
    case Phase::kDataCr:
      if (c != '\r') {
        Fail("chunk data not followed by CRLF");
        return false;
      }
      phase_ = Phase::kDataLf;
      return true;
    case Phase::kDataLf:
      if (c != '\n') {
        Fail("chunk data not followed by CRLF");
        return false;
      }
      phase_ = Phase::kSizeFirst;
      return true;
    case Phase::kTrailerStart:
      if (c == '\r') {
        phase_ = Phase::kFinalLf;
        return true;
      }
      if (IsWs(c)) {
        Fail("obs-fold in the trailer section");
        return false;
      }
      if (!IsTchar(c)) {
        Fail("malformed trailer field name");
        return false;
      }
      phase_ = Phase::kTrailerName;
      return true;
    case Phase::kTrailerName:
      if (c == ':') {
        phase_ = Phase::kTrailerValue;
      } else if (IsWs(c)) {
        Fail("whitespace before the colon of a trailer field");
        return false;
      } else if (!IsTchar(c)) {
        Fail("malformed trailer field name");
        return false;
      }
      return true;
    case Phase::kTrailerValue:
      if (c == '\r') {
        phase_ = Phase::kTrailerLf;
      } else if (!IsFieldByte(c)) {
        Fail("control character in a trailer field value");
        return false;
      }
      return true;
    case Phase::kTrailerLf:
      if (c != '\n') {
        Fail("CR without LF in the trailer section");
        return false;
      }
      phase_ = Phase::kTrailerStart;
      return true;
    case Phase::kFinalLf:
      if (c != '\n') {
        Fail("CR without LF at the end of the chunked body");
        return false;
      }
      state_ = State::kDone;
      return true;
  }
  Fail("malformed chunk extension or chunk line");
  return false;
}

ChunkedDecoder::Step ChunkedDecoder::Feed(std::string_view in, std::string& out) {
  if (state_ != State::kNeedMore) return {0, state_};
  if (!out_base_known_) {
    out_base_size_ = out.size();
    out_base_known_ = true;
  }
  ByteReader reader(BytesOf(in));
  while (!reader.empty()) {
    if (phase_ == Phase::kData) {
      // Never more than cap + 1 decoded bytes in all.
      // room + 1 may not fit a uint64_t (cap SIZE_MAX), want always does.
      const uint64_t room = uint64_t{cap_} - decoded_;
      const uint64_t want = std::min<uint64_t>(chunk_left_, reader.remaining());
      const auto n = static_cast<size_t>(want <= room ? want : room + 1);
      ByteSpan data;
      if (!reader.ReadBytes(n, data)) break;  // cannot happen: n <= remaining
      GrowBounded(out, out.size() + n, out_base_size_ + std::min(cap_, SIZE_MAX - 1 - out_base_size_) + 1);
      out.append(TextOf(data));
      decoded_ += n;
      chunk_left_ -= n;
      if (decoded_ > cap_) {
        state_ = State::kTooLarge;
        return {in.size() - reader.remaining(), state_};
      }
      if (chunk_left_ == 0) phase_ = Phase::kDataCr;
      continue;
    }
    uint8_t c = 0;
    if (!reader.ReadU8(c)) break;
    if (!Step1(c) || state_ == State::kDone) break;
  }
  return {in.size() - reader.remaining(), state_};
}

}  // namespace tkms::web
