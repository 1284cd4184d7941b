// Fuzz target: the Annex A request checks of web/annex_a.h, which see the
// query string, the Content-Type and Connection header values and the body
// of every request on the Ua listener.
//
// Input: the whole input is the text handed to each function. For
// HeaderHasToken it is the header value, checked for the fixed tokens
// "close", "keep-alive" and "", and, if the input contains a NUL byte, the
// text before the first NUL is the value and the text after it the token.
//
// Properties checked on every input (each against a small independent
// reading of docs/http.md written here, not a copy of annex_a.cpp):
//   * ParseRequestType: accepts exactly when, splitting at '&' and skipping
//     empty parts, every name and value percent-decodes, exactly one decoded
//     name is "requesttype" and its decoded value is exactly "ticketrequest"
//     or "ticketresolve" (with the matching RequestType); every rejection is
//     status 400 with the documented label (bad_query, requesttype_missing,
//     requesttype_repeated, requesttype_invalid) and a non-empty reason;
//   * PercentDecode: agrees with the reference decoder (success and output),
//     its output is never longer than the input (exactly two bytes shorter
//     per escape), it replaces what `out` held before, and re-encoding the
//     output and decoding that gives the output back;
//   * IsMikeyContentType: agrees with the reference; true implies the text,
//     after optional spaces and tabs, starts with application/mikey (any
//     case) followed only by spaces/tabs and then the end or a ';';
//   * DecodeMikeyBody: success implies non-empty bytes whose base64 encoding
//     is the input without ASCII whitespace (space, tab, CR, LF); rejections
//     are 400, empty_body exactly when nothing but whitespace was sent, else
//     bad_base64;
//   * HeaderHasToken: agrees with the reference (comma-separated elements,
//     spaces/tabs trimmed, ASCII case-insensitive).
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/encoding.h"
#include "tests/fuzz/fuzz_target.h"
#include "web/annex_a.h"

namespace {

namespace kms = tkms::kms;
namespace web = tkms::web;

constexpr const char* kTarget = "web_annex_a_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

// ---- reference readings ------------------------------------------------------------

int Hex(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return 10 + (c - 'a');
  if (c >= 'A' && c <= 'F') return 10 + (c - 'A');
  return -1;
}

// "%XY" -> byte, '+' -> ' ', anything else as is; false on a '%' not
// followed by two hex digits.
bool RefDecode(std::string_view in, std::string& out) {
  out.clear();
  size_t i = 0;
  while (i < in.size()) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == '%') {
      if (in.size() - i < 3 || Hex(static_cast<unsigned char>(in[i + 1])) < 0 ||
          Hex(static_cast<unsigned char>(in[i + 2])) < 0) {
        return false;
      }
      out += static_cast<char>(Hex(static_cast<unsigned char>(in[i + 1])) * 16 +
                               Hex(static_cast<unsigned char>(in[i + 2])));
      i += 3;
    } else {
      out += c == '+' ? ' ' : static_cast<char>(c);
      ++i;
    }
  }
  return true;
}

std::string RefEncodeAll(std::string_view s) {
  static const char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    out += '%';
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

struct RefQuery {
  bool ok = false;
  kms::RequestType type = kms::RequestType::kTicketRequest;
  std::string label;  // when !ok
};

RefQuery RefParseRequestType(std::string_view query) {
  RefQuery r;
  std::vector<std::string> values;
  bool malformed = false;
  for (std::string_view part : Split(query, '&')) {
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string name, value;
    const bool name_ok = RefDecode(part.substr(0, eq), name);
    const bool value_ok = RefDecode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1), value);
    if (!name_ok || !value_ok) {
      malformed = true;
      continue;
    }
    if (name == "requesttype") values.push_back(value);
  }
  if (malformed) {
    r.label = "bad_query";
  } else if (values.empty()) {
    r.label = "requesttype_missing";
  } else if (values.size() > 1) {
    r.label = "requesttype_repeated";
  } else if (values[0] == "ticketrequest") {
    r.ok = true;
    r.type = kms::RequestType::kTicketRequest;
  } else if (values[0] == "ticketresolve") {
    r.ok = true;
    r.type = kms::RequestType::kTicketResolve;
  } else {
    r.label = "requesttype_invalid";
  }
  return r;
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

bool SameIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && IsOws(s[b])) ++b;
  while (e > b && IsOws(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool RefIsMikeyContentType(std::string_view v) {
  return SameIgnoringCase(Trim(Split(v, ';').front()), "application/mikey");
}

bool RefHeaderHasToken(std::string_view value, std::string_view token) {
  for (std::string_view element : Split(value, ',')) {
    if (SameIgnoringCase(Trim(element), token)) return true;
  }
  return false;
}

// ---- checks -----------------------------------------------------------------------

void CheckRequestType(std::string_view text) {
  const auto got = web::ParseRequestType(text);
  const RefQuery want = RefParseRequestType(text);
  Check(got.ok() == want.ok, "ParseRequestType accepts exactly what the reference accepts");
  if (got.ok()) {
    Check(*got == want.type, "ParseRequestType returns the named request type");
    return;
  }
  Check(got.error().status == 400, "ParseRequestType rejections are 400");
  Check(got.error().label == want.label, "ParseRequestType rejections carry the documented label");
  Check(!got.error().reason.empty(), "ParseRequestType rejections say why");
}

void CheckPercentDecode(std::string_view text) {
  std::string got = "previous contents";
  const bool ok = web::PercentDecode(text, got);
  std::string want;
  const bool want_ok = RefDecode(text, want);
  Check(ok == want_ok, "PercentDecode accepts exactly the well-formed escapes");
  if (!ok) return;
  Check(got == want, "PercentDecode decodes like the reference");
  Check(got.size() <= text.size(), "PercentDecode output is never longer than its input");
  size_t escapes = 0;
  for (char c : text) escapes += c == '%' ? 1 : 0;
  Check(got.size() == text.size() - 2 * escapes, "each escape shortens the text by two bytes");
  std::string again;
  Check(web::PercentDecode(RefEncodeAll(got), again) && again == got, "decoding the re-encoded output gives it back");
}

void CheckContentType(std::string_view text) {
  const bool got = web::IsMikeyContentType(text);
  Check(got == RefIsMikeyContentType(text), "IsMikeyContentType agrees with the reference");
  if (!got) return;
  size_t i = 0;
  while (i < text.size() && IsOws(text[i])) ++i;
  constexpr std::string_view kType = "application/mikey";
  Check(text.size() - i >= kType.size() && SameIgnoringCase(text.substr(i, kType.size()), kType),
        "IsMikeyContentType implies the text starts with application/mikey");
  i += kType.size();
  while (i < text.size() && IsOws(text[i])) ++i;
  Check(i == text.size() || text[i] == ';', "after the media type only whitespace, then the end or ';'");
}

void CheckBody(std::string_view text) {
  std::string stripped;
  for (char c : text) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') stripped += c;
  }
  const auto got = web::DecodeMikeyBody(text);
  if (got.ok()) {
    Check(!got->empty(), "DecodeMikeyBody never returns an empty message");
    Check(tkms::Base64Encode(*got) == stripped, "the decoded body re-encodes to the body without whitespace");
    return;
  }
  Check(got.error().status == 400, "DecodeMikeyBody rejections are 400");
  Check(got.error().label == (stripped.empty() ? "empty_body" : "bad_base64"),
        "empty_body exactly for a whitespace-only body, else bad_base64");
}

void CheckHeaderToken(std::string_view value, std::string_view token) {
  Check(web::HeaderHasToken(value, token) == RefHeaderHasToken(value, token),
        "HeaderHasToken agrees with the reference");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  CheckRequestType(text);
  CheckPercentDecode(text);
  CheckContentType(text);
  CheckBody(text);
  for (std::string_view token : {"close", "keep-alive", ""}) CheckHeaderToken(text, token);
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    CheckHeaderToken(text.substr(0, nul), text.substr(nul + 1));
  }
  return 0;
}
