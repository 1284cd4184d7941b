// Input-format detection and extraction: see input_format.h. Every function
// here reads through string_view indexes bounded by the input size; nothing
// recurses and nothing allocates more than the input length.
#include "tools/tkmsctl/input_format.h"

#include <array>
#include <utility>

#include "firmware/base/encoding.h"

namespace tkms::tkmsctl {
namespace {

using Text = std::string_view;

constexpr size_t kMaxHttpHeaderFields = 100;
constexpr Text kKeyMgmtPrefix = "a=key-mgmt:";
constexpr Text kMikeyProtocolId = "mikey";  // RFC 4567 §3.1: case-sensitive KMPID

constexpr std::array<std::pair<InputFormat, Text>, 6> kFormatNames{{
    {InputFormat::kAuto, "auto"},
    {InputFormat::kHttp, "http"},
    {InputFormat::kSdp, "sdp"},
    {InputFormat::kHex, "hex"},
    {InputFormat::kBase64, "base64"},
    {InputFormat::kRaw, "raw"},
}};

Text AsText(ByteSpan bytes) { return Text(reinterpret_cast<const char*>(bytes.data()), bytes.size()); }

ByteSpan AsBytes(Text text) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsHexDigit(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsBase64Char(char c) { return IsAlpha(c) || IsDigit(c) || c == '+' || c == '/' || c == '='; }
char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Text: no C0 control characters other than HT, CR and LF, and no DEL.
// Bytes >= 0x80 are allowed (SDP and HTTP reason phrases may carry UTF-8).
bool IsTextByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 0x20 && u != 0x7F) || c == '\t' || c == '\r' || c == '\n';
}

// Offset of the first byte that is not text, or npos.
size_t FirstNonText(Text in) {
  for (size_t i = 0; i < in.size(); ++i) {
    if (!IsTextByte(in[i])) return i;
  }
  return Text::npos;
}

// RFC 9110 §5.6.2 token characters.
bool IsTchar(char c) {
  return IsAlpha(c) || IsDigit(c) || Text("!#$%&'*+-.^_`|~").find(c) != Text::npos;
}

bool EqualsIgnoreCase(Text a, Text b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string LowerCopy(Text t) {
  std::string out(t);
  for (char& c : out) c = Lower(c);
  return out;
}

Text TrimBlanks(Text t) {
  while (!t.empty() && IsBlank(t.front())) t.remove_prefix(1);
  while (!t.empty() && IsBlank(t.back())) t.remove_suffix(1);
  return t;
}

std::string Hex2(uint8_t v) {
  constexpr char kDigits[] = "0123456789abcdef";
  return std::string{'0', 'x', kDigits[v >> 4], kDigits[v & 0x0F]};
}

// Names a byte for an error message: 'x' when printable, else its hex value.
std::string DescribeByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u <= 0x7E) return std::string("'") + c + "'";
  return Hex2(u);
}

// One line of the input, without its LF or CRLF terminator.
struct Line {
  Text text;
  size_t offset = 0;        // where the line starts in the input
  size_t next = 0;          // where the next line starts
  bool terminated = false;  // ended with LF (not with the end of input)
};

Line LineAt(Text in, size_t pos) {
  const size_t lf = in.find('\n', pos);
  const size_t end = lf == Text::npos ? in.size() : lf;
  size_t content_end = end;
  if (content_end > pos && in[content_end - 1] == '\r') --content_end;
  return Line{in.substr(pos, content_end - pos), pos, lf == Text::npos ? in.size() : lf + 1,
              lf != Text::npos};
}

// ---- HTTP start line (RFC 9112 §3 and §4) ------------------------------------

bool IsHttpVersion(Text v) {
  return v.size() == 8 && v.substr(0, 5) == "HTTP/" && IsDigit(v[5]) && v[6] == '.' && IsDigit(v[7]);
}

// method SP request-target SP HTTP-version
bool IsRequestLine(Text line) {
  size_t i = 0;
  while (i < line.size() && IsTchar(line[i])) ++i;
  if (i == 0 || i >= line.size() || line[i] != ' ') return false;
  const size_t target = ++i;
  while (i < line.size() && line[i] > ' ' && line[i] < 0x7F) ++i;
  if (i == target || i >= line.size() || line[i] != ' ') return false;
  return IsHttpVersion(line.substr(i + 1));
}

// HTTP-version SP 3DIGIT [SP reason-phrase]
bool IsStatusLine(Text line) {
  if (line.size() < 12 || !IsHttpVersion(line.substr(0, 8)) || line[8] != ' ') return false;
  if (!IsDigit(line[9]) || !IsDigit(line[10]) || !IsDigit(line[11])) return false;
  return line.size() == 12 || line[12] == ' ';
}

bool LooksLikeHttp(Text in) {
  const Line first = LineAt(in, 0);
  return IsRequestLine(first.text) || IsStatusLine(first.text);
}

// ---- SDP ----------------------------------------------------------------------

// The line with leading blanks removed, and the offset of its first character.
std::pair<Text, size_t> StripLeadingBlanks(const Line& line) {
  Text t = line.text;
  size_t skipped = 0;
  while (skipped < t.size() && IsBlank(t[skipped])) ++skipped;
  return {t.substr(skipped), line.offset + skipped};
}

bool HasKeyMgmtLine(Text in) {
  for (size_t pos = 0; pos < in.size();) {
    const Line line = LineAt(in, pos);
    pos = line.next;
    if (StripLeadingBlanks(line).first.substr(0, kKeyMgmtPrefix.size()) == kKeyMgmtPrefix) return true;
  }
  return false;
}

// A line that continues keymgmt-data wrapped over several lines (as printed
// in RFC 4567 §5.1): only base64 characters, and not an SDP "<type>=" line.
bool IsBase64Continuation(Text t) {
  if (t.empty()) return false;
  if (t.size() >= 2 && IsAlpha(t[0]) && t[1] == '=') return false;
  for (char c : t) {
    if (!IsBase64Char(c)) return false;
  }
  return true;
}

// ---- hex and base64 ------------------------------------------------------------

struct TextStats {
  size_t non_space = 0;
  bool all_hex = true;     // every non-space character is a hex digit
  bool all_base64 = true;  // every non-space character is in the base64 alphabet or '='
  size_t first_other = Text::npos;  // first non-space character outside both alphabets
};

TextStats Scan(Text t) {
  TextStats s;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (IsSpace(c)) continue;
    ++s.non_space;
    if (!IsHexDigit(c)) s.all_hex = false;
    if (!IsBase64Char(c)) {
      s.all_base64 = false;
      if (s.first_other == Text::npos) s.first_other = i;
    }
  }
  return s;
}

bool IsHexText(Text t) {
  const TextStats s = Scan(t);
  return s.non_space > 0 && s.all_hex && s.non_space % 2 == 0;
}

bool IsBase64Text(Text t) {
  const TextStats s = Scan(t);
  return s.non_space > 0 && s.all_base64 && Base64Decode(StripWhitespace(t)).has_value();
}

constexpr const char* kStrictBase64 =
    "strict RFC 4648 base64: padded to a multiple of 4 characters, '=' only at the end, "
    "unused bits zero";

InputError Fail(InputFormat format, size_t offset, std::string detail) {
  return InputError{format, offset, std::move(detail)};
}

// Hex digits with optional whitespace; `base` is the offset of `t` in the input.
Result<ExtractedMessage, InputError> ReadHex(Text t, size_t base) {
  size_t digits = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    if (IsSpace(t[i])) continue;
    if (!IsHexDigit(t[i])) {
      return Fail(InputFormat::kHex, base + i, "unexpected character " + DescribeByte(t[i]) + " in hex");
    }
    ++digits;
  }
  if (digits == 0) return Fail(InputFormat::kHex, base, "no hex digits");
  if (digits % 2 != 0) {
    return Fail(InputFormat::kHex, base + t.size(),
                "odd number of hex digits (" + std::to_string(digits) + ")");
  }
  auto bytes = HexDecode(StripWhitespace(t));
  if (!bytes) return Fail(InputFormat::kHex, base, "invalid hex");
  return ExtractedMessage{InputFormat::kHex, std::move(*bytes)};
}

// Base64 with optional whitespace (line breaks); errors are reported as `format`.
Result<ExtractedMessage, InputError> ReadBase64(Text t, size_t base, InputFormat format) {
  const TextStats s = Scan(t);
  if (s.first_other != Text::npos) {
    return Fail(format, base + s.first_other,
                "unexpected character " + DescribeByte(t[s.first_other]) + " in base64");
  }
  if (s.non_space == 0) return Fail(format, base, "no base64 data");
  auto bytes = Base64Decode(StripWhitespace(t));
  if (!bytes) {
    return Fail(format, base, "not valid base64 (" + std::string(kStrictBase64) + ")");
  }
  return ExtractedMessage{format, std::move(*bytes)};
}

// ---- HTTP message (TS 33.328 Annex A) -------------------------------------------

Result<ExtractedMessage, InputError> ReadHttp(Text in) {
  constexpr InputFormat kF = InputFormat::kHttp;
  const Line start = LineAt(in, 0);
  if (!IsRequestLine(start.text) && !IsStatusLine(start.text)) {
    return Fail(kF, 0, "the first line is neither an HTTP/1.x request line nor a status line");
  }
  if (!start.terminated) return Fail(kF, in.size(), "input ends inside the HTTP start line");
  std::optional<size_t> content_length;
  size_t fields = 0;
  size_t pos = start.next;
  for (;;) {
    const Line line = LineAt(in, pos);
    if (!line.terminated) {
      return Fail(kF, in.size(),
                  "input ends inside the HTTP header section (no empty line before the body)");
    }
    pos = line.next;
    if (line.text.empty()) break;
    if (++fields > kMaxHttpHeaderFields) {
      return Fail(kF, line.offset,
                  "more than " + std::to_string(kMaxHttpHeaderFields) + " header fields");
    }
    if (IsBlank(line.text.front())) {
      return Fail(kF, line.offset, "obsolete header line folding is not supported");
    }
    const size_t colon = line.text.find(':');
    const Text name = line.text.substr(0, colon);
    bool name_ok = colon != Text::npos && !name.empty();
    for (char c : name) name_ok = name_ok && IsTchar(c);
    if (!name_ok) return Fail(kF, line.offset, "malformed header field line (expected name: value)");
    const Text value = TrimBlanks(line.text.substr(colon + 1));
    for (size_t i = 0; i < value.size(); ++i) {
      if (!IsTextByte(value[i])) {
        return Fail(kF, line.offset + colon + 1, "control character in the value of " + std::string(name));
      }
    }
    const std::string lname = LowerCopy(name);
    if (lname == "content-length") {
      bool digits_ok = !value.empty() && value.size() <= 7;
      size_t n = 0;
      for (char c : value) {
        digits_ok = digits_ok && IsDigit(c);
        if (digits_ok) n = n * 10 + static_cast<size_t>(c - '0');
      }
      if (!digits_ok) return Fail(kF, line.offset, "invalid Content-Length \"" + std::string(value) + "\"");
      if (content_length && *content_length != n) {
        return Fail(kF, line.offset, "conflicting Content-Length header fields");
      }
      content_length = n;
    } else if (lname == "transfer-encoding") {
      return Fail(kF, line.offset,
                  "Transfer-Encoding is not supported (save the message with a plain body)");
    } else if (lname == "content-encoding") {
      if (LowerCopy(value) != "identity") {
        return Fail(kF, line.offset, "Content-Encoding \"" + std::string(value) + "\" is not supported");
      }
    } else if (lname == "content-type") {
      const std::string media = LowerCopy(TrimBlanks(value.substr(0, value.find(';'))));
      if (media != "application/mikey") {
        return Fail(kF, line.offset,
                    "Content-Type \"" + std::string(value) +
                        "\" is not application/mikey (RFC 3830 §10.1, TS 33.328 Annex A)");
      }
    }
  }
  const size_t body_at = pos;
  Text body = in.substr(body_at);
  if (content_length) {
    if (*content_length > body.size()) {
      return Fail(kF, in.size(),
                  "body of " + std::to_string(body.size()) + " bytes is shorter than Content-Length " +
                      std::to_string(*content_length));
    }
    const Text rest = body.substr(*content_length);
    for (size_t i = 0; i < rest.size(); ++i) {
      if (!IsSpace(rest[i])) {
        return Fail(kF, body_at + *content_length + i,
                    std::to_string(rest.size()) + " bytes after the Content-Length body");
      }
    }
    body = body.substr(0, *content_length);
  }
  const TextStats s = Scan(body);
  if (s.non_space == 0) return Fail(kF, body_at, "the HTTP message has no body");
  // A binary MIKEY body starts with the version byte 0x01, which is not a
  // base64 character: a body of base64 characters is base64 (Annex A).
  if (s.all_base64) return ReadBase64(body, body_at, kF);
  const ByteSpan raw = AsBytes(body);
  return ExtractedMessage{kF, std::vector<uint8_t>(raw.begin(), raw.end())};
}

// ---- SDP (RFC 4567 §3.1) -------------------------------------------------------------

Result<ExtractedMessage, InputError> ReadSdp(Text in) {
  constexpr InputFormat kF = InputFormat::kSdp;
  const size_t bad = FirstNonText(in);
  if (bad != Text::npos) {
    return Fail(kF, bad, "SDP must be text; found byte " + DescribeByte(in[bad]));
  }
  bool saw_key_mgmt = false;
  std::optional<std::pair<size_t, std::string>> wrong_case;
  for (size_t pos = 0; pos < in.size();) {
    const Line line = LineAt(in, pos);
    pos = line.next;
    const auto [t, at] = StripLeadingBlanks(line);
    if (t.substr(0, kKeyMgmtPrefix.size()) != kKeyMgmtPrefix) continue;
    saw_key_mgmt = true;
    // key-mgmt-att-value = 0*1SP prtcl-id SP keymgmt-data
    size_t i = kKeyMgmtPrefix.size();
    if (i < t.size() && t[i] == ' ') ++i;
    const size_t id_at = i;
    while (i < t.size() && (IsAlpha(t[i]) || IsDigit(t[i]))) ++i;
    const Text id = t.substr(id_at, i - id_at);
    if (id.empty()) {
      return Fail(kF, at + id_at,
                  "a=key-mgmt: missing protocol identifier (a=key-mgmt:<prtcl-id> <keymgmt-data>)");
    }
    if (id != kMikeyProtocolId) {
      if (EqualsIgnoreCase(id, kMikeyProtocolId) && !wrong_case) {
        wrong_case = std::make_pair(at + id_at, std::string(id));
      }
      continue;
    }
    if (i >= t.size() || t[i] != ' ') {
      return Fail(kF, at + i, "a=key-mgmt:mikey must be followed by one space and the base64 data");
    }
    ++i;
    const Text data = TrimBlanks(t.substr(i));
    const size_t data_at = at + i;
    for (size_t k = 0; k < data.size(); ++k) {
      if (!IsBase64Char(data[k])) {
        return Fail(kF, data_at + k,
                    "unexpected character " + DescribeByte(data[k]) + " in a=key-mgmt:mikey data");
      }
    }
    std::string b64(data);
    // Tolerate keymgmt-data wrapped over lines, as RFC 4567 prints it.
    while (pos < in.size() && !b64.empty() && b64.back() != '=') {
      const Line next = LineAt(in, pos);
      const Text piece = TrimBlanks(next.text);
      if (!IsBase64Continuation(piece)) break;
      b64.append(piece);
      pos = next.next;
    }
    if (b64.empty()) return Fail(kF, data_at, "a=key-mgmt:mikey carries no data");
    auto bytes = Base64Decode(b64);
    if (!bytes) {
      return Fail(kF, data_at,
                  "a=key-mgmt:mikey data is not valid base64 (" + std::string(kStrictBase64) + ")");
    }
    return ExtractedMessage{kF, std::move(*bytes)};
  }
  if (wrong_case) {
    return Fail(kF, wrong_case->first,
                "the protocol identifier is case-sensitive (RFC 4567): found \"" + wrong_case->second +
                    "\", expected \"mikey\"");
  }
  if (saw_key_mgmt) return Fail(kF, 0, "no a=key-mgmt line carries the protocol identifier \"mikey\"");
  return Fail(kF, 0, "no a=key-mgmt line");
}

// Why an auto-detected text input is none of the text forms.
InputError ExplainText(Text in) {
  constexpr InputFormat kF = InputFormat::kAuto;
  const TextStats s = Scan(in);
  if (s.non_space == 0) return Fail(kF, 0, "the input contains only whitespace");
  if (s.all_hex) {
    return Fail(kF, in.size(),
                "the input looks like hex but has an odd number of hex digits (" +
                    std::to_string(s.non_space) + ")");
  }
  if (s.all_base64) {
    return Fail(kF, 0, "the input looks like base64 but is not valid " + std::string(kStrictBase64));
  }
  return Fail(kF, s.first_other,
              "unexpected character " + DescribeByte(in[s.first_other]) +
                  ": the input is text but neither an HTTP message, an SDP description with an "
                  "a=key-mgmt line, hex nor base64 (a raw MIKEY message starts with byte 0x01)");
}

}  // namespace

std::string_view InputFormatName(InputFormat format) {
  for (const auto& [f, name] : kFormatNames) {
    if (f == format) return name;
  }
  return "unknown";
}

std::optional<InputFormat> InputFormatFromName(std::string_view name) {
  for (const auto& [f, entry] : kFormatNames) {
    if (entry == name) return f;
  }
  return std::nullopt;
}

std::string InputError::ToString() const {
  std::string out = "input offset " + std::to_string(offset) + ": ";
  if (format != InputFormat::kAuto) out += std::string(InputFormatName(format)) + ": ";
  return out + detail;
}

InputFormat DetectInputFormat(ByteSpan input) {
  const Text in = AsText(input);
  if (LooksLikeHttp(in)) return InputFormat::kHttp;
  if (FirstNonText(in) == Text::npos && HasKeyMgmtLine(in)) return InputFormat::kSdp;
  if (IsHexText(in)) return InputFormat::kHex;
  if (IsBase64Text(in)) return InputFormat::kBase64;
  return InputFormat::kRaw;
}

Result<ExtractedMessage, InputError> ExtractMikeyMessage(ByteSpan input, InputFormat format) {
  if (input.size() > kMaxInputBytes) {
    return Fail(format, kMaxInputBytes,
                "input of " + std::to_string(input.size()) + " bytes exceeds the limit of " +
                    std::to_string(kMaxInputBytes) + " bytes (1 MiB)");
  }
  if (input.empty()) return Fail(format, 0, "empty input");
  const Text in = AsText(input);
  const InputFormat chosen = format == InputFormat::kAuto ? DetectInputFormat(input) : format;
  switch (chosen) {
    case InputFormat::kHttp: return ReadHttp(in);
    case InputFormat::kSdp: return ReadSdp(in);
    case InputFormat::kHex: return ReadHex(in, 0);
    case InputFormat::kBase64: return ReadBase64(in, 0, InputFormat::kBase64);
    case InputFormat::kRaw:
      if (format == InputFormat::kAuto && FirstNonText(in) == Text::npos) return ExplainText(in);
      return ExtractedMessage{InputFormat::kRaw, std::vector<uint8_t>(input.begin(), input.end())};
    case InputFormat::kAuto: break;
  }
  return Fail(format, 0, "unknown input format");
}

}  // namespace tkms::tkmsctl
