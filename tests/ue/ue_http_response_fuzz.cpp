// Fuzz target: the UE's HTTP response parser (web/client/http_response_parser.h)
// and the Annex A answer check after it (AnnexAAnswerBytes, kms_client.h) --
// the bytes a KMS (or anything on the path) sends back to a UE.
//
// Input: byte 0 selects the mode (bit 0: the request was HEAD; bit 1: small
// limits, 256-byte head and 512-byte body, so the limit paths are reached;
// bits 2-7: the sizes of the pieces the bytes are fed in); the rest is the
// byte stream, which ends with the connection. Properties (besides no crash,
// leak, UB):
//   * split invariance: feeding the stream whole and in pieces gives the same
//     outcome (the same response, keep-alive and leftover, or the same error);
//   * a refusal is kInvalidArgument ("malformed HTTP response: ..."),
//     kResourceExhausted or kUnavailable ("... (truncated response)");
//   * an accepted response: final status 200-599; the body within the limit;
//     header names are tokens, values carry no control character but HTAB and
//     no surrounding OWS; the leftover is a suffix of the input; HEAD, 204 and
//     304 have no body; a Content-Length (without chunked) is the body's
//     length; a close-delimited body leaves no leftover and no keep-alive;
//     a spent parser refuses more bytes;
//   * AnnexAAnswerBytes: accepted only for 200 with application/mikey, and
//     then the base64 of what it returns is the body without whitespace; a
//     non-200 status is kHttpStatus with that status and a printable detail.
#include <algorithm>
#include <string>
#include <string_view>

#include "firmware/base/encoding.h"
#include "tests/fuzz/fuzz_target.h"
#include "web/client/http_response_parser.h"
#include "tools/ue/kms_client.h"

namespace {

constexpr const char* kTarget = "ue_http_response_fuzz";

using tkms::StatusCode;
using tkms::web::client::HttpResponseLimits;
using tkms::web::client::HttpResponseParser;
using tkms::web::client::ParsedHttpResponse;

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

struct Outcome {
  bool ok = false;
  StatusCode code = StatusCode::kOk;
  std::string message;
  bool from_finish = false;
  ParsedHttpResponse parsed;
};

// Feeds `stream` in pieces of the sizes `piece` gives (0: whole), then
// Finish() if nothing completed. Unfed bytes after completion join the leftover.
Outcome Run(std::string_view stream, const HttpResponseLimits& limits, bool head, unsigned piece) {
  HttpResponseParser parser(limits, head);
  Outcome out;
  size_t at = 0;
  for (unsigned i = 0; at < stream.size() || i == 0; ++i) {
    const size_t n = piece == 0 ? stream.size() : std::min<size_t>(stream.size() - at, 1 + (i * 7 + piece) % (piece + 3));
    auto fed = parser.Feed(stream.substr(at, n));
    at += n;
    if (!fed.ok()) {
      out.code = fed.error().code();
      out.message = fed.error().message();
      return out;
    }
    if (fed->has_value()) {
      out.ok = true;
      out.parsed = std::move(**fed);
      out.parsed.leftover += std::string(stream.substr(at));
      Check(!parser.Feed(std::string_view("x")).ok(), "a spent parser refuses more bytes");
      return out;
    }
    if (at >= stream.size()) break;
  }
  auto finished = parser.Finish();
  out.from_finish = true;
  if (!finished.ok()) {
    out.code = finished.error().code();
    out.message = finished.error().message();
    return out;
  }
  out.ok = true;
  out.parsed = std::move(*finished);
  return out;
}

bool Same(const Outcome& a, const Outcome& b) {
  if (a.ok != b.ok || a.code != b.code || a.message != b.message) return false;
  if (!a.ok) return true;
  const auto& x = a.parsed;
  const auto& y = b.parsed;
  return x.response.status == y.response.status && x.response.reason == y.response.reason &&
         x.response.headers == y.response.headers && x.response.body == y.response.body &&
         x.keep_alive == y.keep_alive && x.leftover == y.leftover;
}

bool IsTchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool CleanValue(std::string_view v) {
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) return false;
  }
  return v.empty() || (v.front() != ' ' && v.front() != '\t' && v.back() != ' ' && v.back() != '\t');
}

char Low(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char p, char q) { return Low(p) == Low(q); });
}

// The value of an all-digit Content-Length (the parser accepted it).
uint64_t Decimal(std::string_view s) {
  uint64_t v = 0;
  for (char c : s) v = v * 10 + static_cast<uint64_t>(c - '0');
  return v;
}

void CheckRefusal(const Outcome& o) {
  if (o.code == StatusCode::kInvalidArgument) {
    Check(o.message.rfind("malformed HTTP response: ", 0) == 0, "malformed refusals say so");
  } else if (o.code == StatusCode::kUnavailable) {
    Check(o.from_finish, "kUnavailable only at the end of the stream");
  } else {
    Check(o.code == StatusCode::kResourceExhausted, "refusal codes");
  }
}

void CheckAccepted(const Outcome& o, std::string_view stream, const HttpResponseLimits& limits, bool head) {
  const auto& resp = o.parsed.response;
  Check(resp.status >= 200 && resp.status <= 599, "final status 200-599");
  Check(resp.body.size() <= limits.max_body_bytes, "body within the limit");
  Check(o.parsed.leftover.size() <= stream.size() &&
            stream.substr(stream.size() - o.parsed.leftover.size()) == o.parsed.leftover,
        "leftover is a suffix of the input");
  bool chunked = false;
  const std::string* length = nullptr;
  for (const auto& [name, value] : resp.headers) {
    Check(!name.empty() && std::all_of(name.begin(), name.end(), IsTchar), "header names are tokens");
    Check(CleanValue(value), "header values are clean and trimmed");
    if (IEquals(name, "Transfer-Encoding")) chunked = true;
    if (IEquals(name, "Content-Length")) length = &value;
  }
  const bool no_body = head || resp.status == 204 || resp.status == 304;
  if (no_body) Check(resp.body.empty(), "no body for HEAD, 204, 304");
  if (!no_body && !chunked && length != nullptr) {
    Check(Decimal(*length) == resp.body.size(), "Content-Length is the body length");
  }
  if (!no_body && !chunked && length == nullptr) {
    Check(o.from_finish && o.parsed.leftover.empty() && !o.parsed.keep_alive, "close-delimited body");
  }
}

void CheckAnnexA(const tkms::web::client::HttpResponse& resp) {
  for (bool check_type : {true, false}) {
    auto bytes = tkms::ue::AnnexAAnswerBytes(resp, check_type);
    if (bytes.ok()) {
      Check(resp.status == 200 && !bytes->empty(), "accepted answers are 200 with bytes");
      Check(tkms::Base64Encode(*bytes) == tkms::StripWhitespace(resp.body), "base64 round trip");
      if (check_type) {
        const auto type = resp.Header("Content-Type");
        Check(type.has_value() && tkms::ue::IsMikeyContentType(*type), "application/mikey checked");
      }
      continue;
    }
    const auto& e = bytes.error();
    Check((e.kind == tkms::ue::UeErrorKind::kHttpStatus) == (resp.status != 200), "kHttpStatus iff not 200");
    if (e.kind == tkms::ue::UeErrorKind::kHttpStatus) Check(e.http_status == resp.status, "the status reported");
    Check(std::all_of(e.detail.begin(), e.detail.end(),
                      [](char c) { return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F; }),
          "printable details");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool head = (mode & 1) != 0;
  HttpResponseLimits limits;
  if ((mode & 2) != 0) {
    limits.max_header_bytes = 256;
    limits.max_body_bytes = 512;
  }
  const Outcome whole = Run(stream, limits, head, 0);
  const Outcome split = Run(stream, limits, head, 1u + (mode >> 2));
  Check(Same(whole, split), "the same outcome whole and in pieces");
  if (!whole.ok) {
    CheckRefusal(whole);
    return 0;
  }
  CheckAccepted(whole, stream, limits, head);
  CheckAnnexA(whole.parsed.response);
  return 0;
}
