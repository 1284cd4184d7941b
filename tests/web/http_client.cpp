#include "tests/web/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>

namespace tkms::web::testing {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

int ConnectTo(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace

std::string HttpReply::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return "";
}

int HttpReply::count_header(std::string_view name) const {
  int count = 0;
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) ++count;
  }
  return count;
}

bool HttpClient::Connect() {
  Close();
  fd_ = ConnectTo(port_);
  if (fd_ < 0) return false;
  ++connects_;
  must_reconnect_ = false;
  return true;
}

void HttpClient::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  buffer_.clear();
}

void HttpClient::ShutdownWrite() {
  if (fd_ >= 0) shutdown(fd_, SHUT_WR);
}

bool HttpClient::SendRaw(std::string_view bytes) {
  if (fd_ < 0 && !Connect()) return false;
  while (!bytes.empty()) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool HttpClient::ReadMore(int timeout_ms) {
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLIN, 0};
  const int r = poll(&p, 1, timeout_ms);
  if (r <= 0) return false;
  char buf[8192];
  const ssize_t n = recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) return false;
  buffer_.append(buf, static_cast<size_t>(n));
  return true;
}

std::optional<HttpReply> HttpClient::ReadReply(int timeout_ms, bool head_request) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  const auto remaining = [&] {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
  };
  size_t head_end;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!ReadMore(remaining())) return std::nullopt;
  }
  HttpReply reply;
  const std::string head = buffer_.substr(0, head_end);
  size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  // "HTTP/1.1 200 OK"
  const size_t sp1 = status_line.find(' ');
  if (sp1 == std::string::npos) return std::nullopt;
  const size_t sp2 = status_line.find(' ', sp1 + 1);
  reply.version = status_line.substr(0, sp1);
  const std::string code =
      status_line.substr(sp1 + 1, sp2 == std::string::npos ? std::string::npos : sp2 - sp1 - 1);
  if (std::from_chars(code.data(), code.data() + code.size(), reply.status).ec != std::errc()) {
    return std::nullopt;
  }
  reply.reason = sp2 == std::string::npos ? "" : status_line.substr(sp2 + 1);
  while (line_end != std::string::npos) {
    const size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line =
        head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
    const size_t colon = line.find(':');
    if (colon == std::string::npos) return std::nullopt;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    reply.headers.emplace_back(line.substr(0, colon), value);
  }
  size_t length = 0;
  if (!head_request && reply.has_header("Content-Length")) {
    const std::string cl = reply.header("Content-Length");
    if (std::from_chars(cl.data(), cl.data() + cl.size(), length).ec != std::errc())
      return std::nullopt;
  }
  const size_t body_start = head_end + 4;
  while (buffer_.size() < body_start + length) {
    if (!ReadMore(remaining())) return std::nullopt;
  }
  reply.body = buffer_.substr(body_start, length);
  buffer_.erase(0, body_start + length);
  if (EqualsIgnoreCase(reply.header("Connection"), "close")) must_reconnect_ = true;
  return reply;
}

bool HttpClient::WaitForClose(int timeout_ms) {
  if (fd_ < 0) return true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      Close();
      return true;
    }
  }
  return false;
}

std::optional<HttpReply> HttpClient::Request(std::string_view method, std::string_view target,
                                             const Headers& headers, std::string_view body) {
  if (must_reconnect_ || fd_ < 0) {
    if (!Connect()) return std::nullopt;
  }
  std::string request;
  request.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (const auto& [name, value] : headers)
    request.append(name).append(": ").append(value).append("\r\n");
  if (!body.empty() || method == "POST") {
    request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  request.append("\r\n").append(body);
  if (!SendRaw(request)) return std::nullopt;
  return ReadReply(5000, method == "HEAD");
}

std::optional<HttpReply> HttpClient::Post(std::string_view target, std::string_view body,
                                          std::string_view content_type) {
  Headers headers;
  if (!content_type.empty()) headers.emplace_back("Content-Type", std::string(content_type));
  return Request("POST", target, headers, body);
}

std::optional<HttpReply> OneShot(uint16_t port, std::string_view raw, int timeout_ms) {
  HttpClient client(port);
  if (!client.SendRaw(raw)) return std::nullopt;
  return client.ReadReply(timeout_ms);
}

bool ConnectionRefused(uint16_t port) {
  const int fd = ConnectTo(port);
  if (fd < 0) return true;
  close(fd);
  return false;
}

}  // namespace tkms::web::testing
