// Fuzz target: the request body framing of web/http_framing.h, which every
// transport applies to the header fields of every request before a body
// byte is read (RFC 7230 §3.3.3).
//
// Input: header fields, one per line ('\n'); a line is split at its first
// ':' into name and value (no ':': the whole line is the name, value empty).
// ParseContentLength is also given the whole input as one value.
//
// Properties checked on every input, each against a small independent
// reading of docs/http.md written here (not a copy of http_framing.cpp):
//   * DecideBodyFraming agrees with the reference: repeated Content-Length,
//     then Content-Length with Transfer-Encoding, then Transfer-Encoding
//     exactly one "chunked" (ASCII case-insensitive, SP/HTAB around it),
//     then Content-Length 1*DIGIT below 2^63; nothing framed: kNone;
//   * an error always comes with kind kNone, a length only with kContentLength;
//   * every error has a log label and a one-line text;
//   * ParseContentLength accepts exactly the reference's values, and a value
//     it returns prints back as the input without SP/HTAB and leading zeros.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_target.h"
#include "web/http_framing.h"

namespace {

namespace web = tkms::web;

constexpr const char* kTarget = "web_http_framing_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

bool Same(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

// Digits only, then compared as text against 2^63 - 1 (no arithmetic).
std::optional<std::string> RefLengthDigits(std::string_view value) {
  value = Trim(value);
  if (value.empty()) return std::nullopt;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  while (value.size() > 1 && value.front() == '0') value.remove_prefix(1);
  constexpr std::string_view kMax = "9223372036854775807";
  if (value.size() > kMax.size() || (value.size() == kMax.size() && value > kMax)) return std::nullopt;
  return std::string(value);
}

web::BodyFraming Reference(const std::vector<web::HttpHeader>& headers) {
  std::vector<std::string> lengths, codings;
  for (const auto& h : headers) {
    if (Same(h.name, "content-length")) lengths.push_back(h.value);
    if (Same(h.name, "transfer-encoding")) codings.push_back(h.value);
  }
  web::BodyFraming f;
  if (lengths.size() > 1) {
    f.error = web::FramingError::kRepeatedContentLength;
  } else if (!lengths.empty() && !codings.empty()) {
    f.error = web::FramingError::kContentLengthAndTransferEncoding;
  } else if (!codings.empty()) {
    if (codings.size() == 1 && Same(Trim(codings[0]), "chunked")) {
      f.kind = web::BodyFraming::Kind::kChunked;
    } else {
      f.error = web::FramingError::kUnsupportedTransferCoding;
    }
  } else if (!lengths.empty()) {
    if (const auto digits = RefLengthDigits(lengths[0])) {
      f.kind = web::BodyFraming::Kind::kContentLength;
      f.content_length = std::stoull(*digits);
    } else {
      f.error = web::FramingError::kBadContentLength;
    }
  }
  return f;
}

std::vector<web::HttpHeader> Headers(std::string_view text) {
  std::vector<web::HttpHeader> headers;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    const size_t colon = line.find(':');
    headers.push_back({std::string(line.substr(0, colon)),
                       colon == std::string_view::npos ? std::string() : std::string(line.substr(colon + 1))});
  }
  return headers;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto headers = Headers(text);
  const web::BodyFraming got = web::DecideBodyFraming(headers);
  const web::BodyFraming want = Reference(headers);
  Check(got.error == want.error, "DecideBodyFraming errors agree with the reference");
  Check(got.kind == want.kind, "DecideBodyFraming kinds agree with the reference");
  Check(got.content_length == want.content_length, "Content-Length values agree with the reference");
  Check(got.error == web::FramingError::kNone || got.kind == web::BodyFraming::Kind::kNone,
        "an error never comes with a framing");
  Check(got.kind == web::BodyFraming::Kind::kContentLength || got.content_length == 0,
        "a length only with kContentLength");
  if (got.error != web::FramingError::kNone) {
    Check(web::FramingErrorLabel(got.error) != "-" && !web::FramingErrorText(got.error).empty() &&
              web::FramingErrorText(got.error).find('\n') == std::string_view::npos,
          "every error has a label and a one-line text");
  }

  const auto length = web::ParseContentLength(text);
  const auto digits = RefLengthDigits(text);
  Check(length.has_value() == digits.has_value(), "ParseContentLength accepts what the reference accepts");
  if (length.has_value()) Check(std::to_string(*length) == *digits, "the value prints back as its digits");
  return 0;
}
