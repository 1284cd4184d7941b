// Printable text for messages: see printable.h.
#include "firmware/base/printable.h"

namespace tkms {

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

}  // namespace tkms
