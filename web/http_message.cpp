#include "web/http_message.h"

#include "web/http_handler.h"

#include <array>
#include <atomic>
#include <cstdio>

#include "firmware/base/big_endian.h"
#include "firmware/base/encoding.h"
#include "hal/entropy.h"
#include "web/http_handler.h"

namespace tkms::web {
namespace {

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// The random half of request ids, chosen once per process.
uint32_t ProcessPrefix() {
  static const uint32_t prefix = [] {
    std::array<uint8_t, 4> bytes{};
    hal::OsEntropy entropy;
    if (!entropy.Random(bytes).ok()) return uint32_t{0};  // ids stay unique within the process
    return LoadBe32(bytes);
  }();
  return prefix;
}

}  // namespace

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

std::string_view HttpRequest::path() const {
  return std::string_view(target).substr(0, target.find('?'));
}

std::string_view HttpRequest::query() const {
  const size_t question = target.find('?');
  return question == std::string::npos ? std::string_view()
                                       : std::string_view(target).substr(question + 1);
}

const std::string* HttpRequest::FindHeader(std::string_view name) const {
  for (const HttpHeader& header : headers) {
    if (EqualsIgnoreCase(header.name, name)) return &header.value;
  }
  return nullptr;
}

size_t HttpRequest::CountHeaders(std::string_view name) const {
  size_t count = 0;
  for (const HttpHeader& header : headers) count += EqualsIgnoreCase(header.name, name) ? 1 : 0;
  return count;
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

bool HeaderHasToken(std::string_view value, std::string_view token) {
  while (true) {
    const size_t comma = value.find(',');
    if (EqualsIgnoreCase(TrimOws(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) return false;
    value.remove_prefix(comma + 1);
  }
}

bool RequestAllowsKeepAlive(const HttpRequest& request) {
  if (const std::string* connection = request.FindHeader("Connection")) {
    return HeaderHasToken(*connection, "keep-alive");
  }
  return request.version == "1.1";
}

bool ExpectsContinue(const HttpRequest& request) {
  const std::string* expect = request.FindHeader("Expect");
  return expect != nullptr && request.version == "1.1" && HeaderHasToken(*expect, "100-continue");
}

bool PercentDecodePath(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    const auto byte = PercentEscapeAt(in, i);
    if (!byte) return false;
    out.push_back(static_cast<char>(*byte));
    i += 2;
  }
  return true;
}

bool PathIs(const HttpRequest& request, std::string_view path) {
  std::string decoded;
  return PercentDecodePath(request.path(), decoded) && decoded == path;
}

std::string_view ConnectionEventName(ConnectionEvent event) {
  switch (event) {
    case ConnectionEvent::kRefusedListenerLimit: return "refused_listener_limit";
    case ConnectionEvent::kRefusedSourceLimit: return "refused_source_limit";
    case ConnectionEvent::kRefusedNoDescriptors: return "refused_no_descriptors";
    case ConnectionEvent::kTlsHandshakeFailed: return "tls_handshake_failed";
    case ConnectionEvent::kTimedOut: return "timed_out";
  }
  return "unknown";
}

}  // namespace tkms::web
