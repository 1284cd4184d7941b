// Fuzz target: the request head path of tkms's own HTTP/1.1 listener
// (web/http1_parser.h, RFC 9112): ScanForHeadEnd, ParseRequestHead and
// DecideBodyFraming on whatever bytes a peer sends.
//
// Input: the bytes buffered on a connection. Parsed twice, with the default
// HeadLimits and with small ones (so 414 and 431 are reached), and also
// handed to ParseRequestHead whole (any string, not only a scanned head).
//
// Properties checked on every input:
//   * ScanForHeadEnd fed byte by byte with its resume hint agrees with one
//     call on the whole buffer; kComplete lengths are within the buffer and
//     the limit;
//   * an accepted head: method a token, target non-empty and either "*" (for
//     OPTIONS) or starting with '/', no longer than the target limit;
//     version "1.0"/"1.1"; at most max_header_fields fields, names non-empty
//     tokens, no CR/LF/NUL in names or values, values without surrounding
//     OWS; exactly one Host in 1.1, at most one in 1.0;
//   * the head rebuilt from the parsed request (origin-form) parses to the
//     same request;
//   * a refusal has a status in {400, 414, 431, 501, 505}, a label and a
//     one-line printable-ASCII detail;
//   * DecideBodyFraming never reports both an error and a framing.
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_target.h"
#include "web/http1_parser.h"
#include "web/http_framing.h"

namespace {

namespace web = tkms::web;

constexpr const char* kTarget = "web_http1_head_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

bool IsTchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

size_t CountHosts(const web::HttpRequest& r) { return r.CountHeaders("Host"); }

void CheckAccepted(const web::HttpRequest& r, const web::HeadLimits& limits) {
  Check(IsToken(r.method), "the method is a token");
  Check(!r.target.empty(), "the target is not empty");
  Check(r.target == "*" ? r.method == "OPTIONS" : r.target.front() == '/',
        "the target is origin-form, or * for OPTIONS");
  Check(r.target.size() <= limits.max_target_bytes, "the target is within its limit");
  Check(r.version == "1.0" || r.version == "1.1", "the version is 1.0 or 1.1");
  Check(r.headers.size() <= limits.max_header_fields, "no more fields than the limit");
  for (const web::HttpHeader& h : r.headers) {
    Check(IsToken(h.name), "field names are tokens");
    for (const char c : h.value) {
      Check(c != '\r' && c != '\n' && c != '\0', "no CR, LF or NUL in a field value");
    }
    Check(h.value.empty() || (h.value.front() != ' ' && h.value.front() != '\t' && h.value.back() != ' ' &&
                              h.value.back() != '\t'),
          "field values are OWS-trimmed");
  }
  Check(r.version == "1.1" ? CountHosts(r) == 1 : CountHosts(r) <= 1, "Host count follows RFC 9112 3.2");
  const web::BodyFraming framing = web::DecideBodyFraming(r.headers);
  Check(framing.error == web::FramingError::kNone || framing.kind == web::BodyFraming::Kind::kNone,
        "a framing error never comes with a framing");
}

void CheckRefused(const web::HeadError& e) {
  Check(e.status == 400 || e.status == 414 || e.status == 431 || e.status == 501 || e.status == 505,
        "refusal status is one of 400 414 431 501 505");
  Check(!e.label.empty() && !e.detail.empty(), "a refusal has a label and a detail");
  for (const char c : e.detail) Check(c >= 0x20 && c < 0x7f, "the detail is printable ASCII");
}

std::string Rebuild(const web::HttpRequest& r) {
  std::string head = r.method + " " + r.target + " HTTP/" + r.version + "\r\n";
  for (const web::HttpHeader& h : r.headers) head += h.name + ": " + h.value + "\r\n";
  return head + "\r\n";
}

void ParseAndCheck(std::string_view head, const web::HeadLimits& limits) {
  web::HttpRequest request;
  web::HeadError error;
  web::RequestTargetInfo info;
  if (!web::ParseRequestHead(head, limits, request, error, &info)) {
    CheckRefused(error);
    return;
  }
  CheckAccepted(request, limits);
  // Rebuilt in origin-form, the head parses to the same request (the
  // authority of an absolute-form target is dropped; Host stays valid).
  web::HeadLimits roomy = limits;
  roomy.max_header_bytes = SIZE_MAX;
  web::HttpRequest again;
  web::HeadError again_error;
  const bool ok = web::ParseRequestHead(Rebuild(request), roomy, again, again_error);
  Check(ok, "the rebuilt head parses");
  Check(again.method == request.method && again.target == request.target && again.version == request.version,
        "the rebuilt request line parses the same");
  Check(again.headers.size() == request.headers.size(), "the rebuilt head has the same fields");
  for (size_t i = 0; i < again.headers.size(); ++i) {
    Check(again.headers[i].name == request.headers[i].name && again.headers[i].value == request.headers[i].value,
          "the rebuilt fields are the same");
  }
}

void Run(std::string_view buffered, const web::HeadLimits& limits) {
  size_t length = 0;
  const web::HeadScan scan = web::ScanForHeadEnd(buffered, limits.max_header_bytes, &length);

  // Byte by byte with the resume hint.
  size_t hint = 0;
  size_t inc_length = 0;
  web::HeadScan inc = web::HeadScan::kIncomplete;
  for (size_t n = 0; n <= buffered.size() && inc == web::HeadScan::kIncomplete; ++n) {
    inc = web::ScanForHeadEnd(buffered.substr(0, n), limits.max_header_bytes, &inc_length, &hint);
  }
  Check(inc == scan, "incremental and whole-buffer scans agree");
  if (scan == web::HeadScan::kComplete) {
    Check(inc_length == length, "incremental and whole-buffer head lengths agree");
    Check(length > 0 && length <= buffered.size() && length <= limits.max_header_bytes,
          "the head length is within the buffer and the limit");
    ParseAndCheck(buffered.substr(0, length), limits);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  Run(in, web::HeadLimits{});
  web::HeadLimits small;
  small.max_header_bytes = 256;
  small.max_header_fields = 4;
  small.max_target_bytes = 24;
  Run(in, small);
  ParseAndCheck(in, web::HeadLimits{});
  return 0;
}
