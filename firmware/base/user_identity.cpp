#include "firmware/base/user_identity.h"

#include <cstddef>
#include <optional>

#include "firmware/base/encoding.h"

namespace tkms {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
char Upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// RFC 3986 §2.3.
bool IsUnreserved(char c) { return IsAlpha(c) || IsDigit(c) || c == '-' || c == '.' || c == '_' || c == '~'; }

// The length of the scheme (RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" /
// "-" / "." ) ":"), or 0 when `s` does not start with one.
size_t SchemeLength(std::string_view s) {
  if (s.empty() || !IsAlpha(s[0])) return 0;
  for (size_t i = 1; i < s.size(); ++i) {
    const char c = s[i];
    if (c == ':') return i;
    if (!IsAlpha(c) && !IsDigit(c) && c != '+' && c != '-' && c != '.') return 0;
  }
  return 0;
}

// Decodes %XX of unreserved characters, upper-cases the hex of the others.
std::string NormalizePercentEncoding(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const auto byte = PercentEscapeAt(s, i);
    if (!byte) {
      out.push_back(s[i]);
      continue;
    }
    const char decoded = static_cast<char>(*byte);
    if (IsUnreserved(decoded)) {
      out.push_back(decoded);
    } else {
      out.push_back('%');
      out.push_back(Upper(s[i + 1]));
      out.push_back(Upper(s[i + 2]));
    }
    i += 2;
  }
  return out;
}

void LowerRange(std::string& s, size_t begin, size_t end) {
  for (size_t i = begin; i < end && i < s.size(); ++i) s[i] = Lower(s[i]);
}

// sip: / sips: host (RFC 3261 §19.1.4). `rest` starts after "scheme:".
void CanonicalSipHost(std::string& s, size_t rest) {
  size_t end = s.find_first_of(";?", rest);
  if (end == std::string::npos) end = s.size();
  const size_t at = s.rfind('@', end == 0 ? 0 : end - 1);
  const size_t host = (at != std::string::npos && at >= rest) ? at + 1 : rest;
  size_t host_end = s.find(':', host);
  if (host_end == std::string::npos || host_end > end) host_end = end;
  LowerRange(s, host, host_end);
}

// tel: number without visual separators (RFC 3966 §3, §4).
void CanonicalTelNumber(std::string& s, size_t rest) {
  size_t end = s.find(';', rest);
  if (end == std::string::npos) end = s.size();
  std::string out = s.substr(0, rest);
  for (size_t i = rest; i < end; ++i) {
    const char c = s[i];
    if (c == '-' || c == '.' || c == '(' || c == ')') continue;
    out.push_back(c);
  }
  out.append(s, end, std::string::npos);
  s = std::move(out);
}

// scheme://[userinfo@]host[:port]/...: the host (RFC 3986 §3.2.2).
void CanonicalAuthorityHost(std::string& s, size_t rest) {
  if (s.compare(rest, 2, "//") != 0) return;
  const size_t authority = rest + 2;
  size_t end = s.find_first_of("/?#", authority);
  if (end == std::string::npos) end = s.size();
  const size_t at = s.rfind('@', end == 0 ? 0 : end - 1);
  const size_t host = (at != std::string::npos && at >= authority) ? at + 1 : authority;
  size_t host_end = host < s.size() && s[host] == '[' ? s.find(']', host) : s.find(':', host);
  if (host_end == std::string::npos || host_end > end) host_end = end;
  LowerRange(s, host, host_end);
}

}  // namespace

std::string CanonicalUserIdentity(std::string_view identity) {
  const size_t scheme = SchemeLength(identity);
  if (scheme == 0) {
    std::string out(identity);
    LowerRange(out, 0, out.size());
    return out;
  }
  std::string out = NormalizePercentEncoding(identity);
  LowerRange(out, 0, scheme);
  const std::string_view name = std::string_view(out).substr(0, scheme);
  const size_t rest = scheme + 1;
  if (name == "sip" || name == "sips") {
    CanonicalSipHost(out, rest);
  } else if (name == "tel") {
    CanonicalTelNumber(out, rest);
  } else {
    CanonicalAuthorityHost(out, rest);
  }
  return out;
}

bool SameUserIdentity(std::string_view a, std::string_view b) {
  return CanonicalUserIdentity(a) == CanonicalUserIdentity(b);
}

}  // namespace tkms
