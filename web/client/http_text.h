// Internal to web/client: the small, bounded text scanners of the HTTP client
// code (http_client.cpp, http_response_parser.cpp, kms_client.cpp).
//
// Why: the HTTP client and the response parser both compare header names,
// check field values for control characters and read decimal numbers; each of
// these scanners looks only at the string_view it is given (no allocation, no
// reading past its end), so one copy serves both.
// Grammar: RFC 9110 §5.6.2 (tchar), §5.6.3 (OWS = *( SP / HTAB )), §5.5
// (field values: no CTL except HTAB).
#pragma once

#include <charconv>
#include <cstdint>
#include <string_view>

namespace tkms::web::client::http_text {

constexpr char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// Without leading and trailing OWS (SP / HTAB).
constexpr std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True if the comma-separated header value lists `token` (case-insensitive).
constexpr bool HasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (EqualsIgnoreCase(TrimOws(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// RFC 9110 tchar.
constexpr bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// No control characters other than HTAB (and no DEL).
constexpr bool ValidFieldValue(std::string_view v) {
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) return false;
  }
  return true;
}

// 1-19 ASCII digits (no sign, space or prefix), so the value fits 64 bits.
inline bool ParseDecimal(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// 1-`max_digits` hex digits (either case), so the value fits 4 * max_digits bits.
constexpr bool ParseHex(std::string_view s, size_t max_digits, uint64_t& out) {
  if (s.empty() || s.size() > max_digits || max_digits > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  out = v;
  return true;
}

}  // namespace tkms::web::client::http_text
