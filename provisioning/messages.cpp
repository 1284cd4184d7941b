#include "provisioning/messages.h"

#include <mbedtls/error.h>

namespace tkms::provisioning::internal {

void AppendEscaped(std::string& out, std::string_view text, char quote) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    if (ch == '\\' || (quote != '\0' && ch == quote)) {
      out += '\\';
      out += ch;
    } else if (byte < 0x20 || byte > 0x7e) {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0x0f];
    } else {
      out += ch;
    }
  }
}

std::string Escaped(std::string_view text) {
  std::string out;
  AppendEscaped(out, text, '\0');
  return out;
}

std::string EscapedDetail(std::string_view text) {
  std::string out;
  AppendEscaped(out, text.substr(0, kMaxDetailBytes), '\0');
  if (text.size() > kMaxDetailBytes) out += "...";
  return out;
}

std::string Quote(std::string_view text) {
  std::string out = "'";
  AppendEscaped(out, text.substr(0, kMaxQuotedBytes), '\'');
  if (text.size() > kMaxQuotedBytes) out += "...";
  out += '\'';
  return out;
}

std::string DescribeParseError(std::string_view what) {
  const size_t bracket = what.find("] ");
  if (bracket != std::string_view::npos) what.remove_prefix(bracket + 2);
  if (what.substr(0, 11) == "parse error") {
    const size_t colon = what.find(": ");
    if (colon != std::string_view::npos) what.remove_prefix(colon + 2);
  }
  std::string text;
  const size_t last_read = what.find("; last read: '");
  if (last_read == std::string_view::npos) {
    text = std::string(what);
  } else {
    text = std::string(what.substr(0, last_read));
    const size_t expected = what.rfind("'; expected ");
    if (expected != std::string_view::npos && expected > last_read) text += what.substr(expected + 1);
  }
  return EscapedDetail(text);
}

std::string MbedtlsErrorText(int code) {
  char buffer[256] = {};
  mbedtls_strerror(code, buffer, sizeof buffer);
  return EscapedDetail(buffer);
}

}  // namespace tkms::provisioning::internal
