#include "web/annex_a.h"

#include <arpa/inet.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <random>

#include "firmware/base/encoding.h"

namespace tkms::web {
namespace {

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Rejection BadRequest(std::string label, std::string reason) {
  return Rejection{400, std::move(label), std::move(reason)};
}

// The random half of request ids, chosen once per process.
uint32_t ProcessPrefix() {
  static const uint32_t prefix = [] {
    std::random_device device;
    return static_cast<uint32_t>(device());
  }();
  return prefix;
}

}  // namespace

bool PercentDecode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= in.size()) return false;  // needs two more characters
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return true;
}

Result<kms::RequestType, Rejection> ParseRequestType(std::string_view query) {
  int seen = 0;
  std::string value;
  std::string name;
  std::string decoded_value;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    const std::string_view raw_name = part.substr(0, eq);
    const std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    if (!PercentDecode(raw_name, name) || !PercentDecode(raw_value, decoded_value)) {
      return BadRequest("bad_query", "malformed percent-encoding in the query string");
    }
    if (name != "requesttype") continue;
    ++seen;
    value = decoded_value;
  }
  if (seen == 0) return BadRequest("requesttype_missing", "requesttype parameter missing");
  if (seen > 1) return BadRequest("requesttype_repeated", "requesttype parameter repeated");
  if (value == "ticketrequest") return kms::RequestType::kTicketRequest;
  if (value == "ticketresolve") return kms::RequestType::kTicketResolve;
  return BadRequest("requesttype_invalid", "requesttype must be ticketrequest or ticketresolve");
}

bool IsMikeyContentType(std::string_view content_type) {
  const size_t semi = content_type.find(';');
  return EqualsIgnoreCase(TrimOws(content_type.substr(0, semi)), kMikeyMediaType);
}

Result<std::vector<uint8_t>, Rejection> DecodeMikeyBody(std::string_view body) {
  const std::string text = StripWhitespace(body);
  if (text.empty()) return BadRequest("empty_body", "empty body");
  auto bytes = Base64Decode(text);
  if (!bytes.has_value()) return BadRequest("bad_base64", "body is not base64");
  if (bytes->empty()) return BadRequest("empty_body", "empty body");
  return std::move(*bytes);
}

bool HeaderHasToken(std::string_view value, std::string_view token) {
  while (true) {
    const size_t comma = value.find(',');
    if (EqualsIgnoreCase(TrimOws(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) return false;
    value.remove_prefix(comma + 1);
  }
}

std::string ListenAddress::ToString() const { return address + ":" + std::to_string(port); }

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  const auto invalid = [&] {
    return InvalidArgument("invalid listen address \"" + std::string(text) +
                           "\" (want IPv4 ADDR:PORT, e.g. 127.0.0.1:8080)");
  };
  // inet_pton stops at a NUL: "127.0.0.1\0junk:80" must not pass as 127.0.0.1.
  if (text.find('\0') != std::string_view::npos) return invalid();
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return invalid();
  const std::string address(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  in_addr parsed{};
  if (address.empty() || inet_pton(AF_INET, address.c_str(), &parsed) != 1) return invalid();
  if (port_text.empty() || port_text.size() > 5) return invalid();
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return invalid();
  }
  return ListenAddress{address, static_cast<uint16_t>(port)};
}

HttpResponse TextResponse(int status, std::string_view reason) {
  HttpResponse response;
  response.status = status;
  response.body = std::string(reason) + "\n";
  return response;
}

std::string_view StatusReason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string SerializeResponse(const HttpResponse& response, std::string_view request_id,
                              bool keep_alive, bool include_body) {
  std::string out;
  out.reserve(192 + response.body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(response.status);
  out += ' ';
  out += StatusReason(response.status);
  out += "\r\nContent-Type: ";
  out += response.content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(response.body.size());
  out += "\r\nX-Request-Id: ";
  out += request_id;
  out += "\r\nCache-Control: no-store\r\nConnection: ";
  out += keep_alive ? "keep-alive" : "close";
  out += "\r\n";
  for (const auto& [name, value] : response.extra_headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  out += "\r\n";
  if (include_body) out += response.body;
  return out;
}

std::string NewRequestId() {
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed) + 1;
  char buf[40];
  std::snprintf(buf, sizeof buf, "r-%08x-%llu", ProcessPrefix(),
                static_cast<unsigned long long>(n));
  return buf;
}

}  // namespace tkms::web
