#include "tools/ue/http_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace tkms::ue {
namespace {

constexpr size_t kMaxChunkLine = 256;   // chunk-size plus extensions
constexpr int kMaxInterimResponses = 8;  // 1xx responses skipped before the final one

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True if the comma-separated header value lists `token` (case-insensitive).
bool HasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view item = Trim(value.substr(0, comma));
    if (EqualsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// RFC 9110 tchar.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool ParseDecimal(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

Status Malformed(const std::string& what) { return InvalidArgument("malformed HTTP response: " + what); }

std::string ErrnoText(int err) { return std::strerror(err); }

int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  return left.count() > 0x7FFFFFFF ? 0x7FFFFFFF : static_cast<int>(left.count());
}

bool ValidTarget(std::string_view target) {
  if (target.empty() || target.front() != '/') return false;
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return false;
  }
  return true;
}

bool ValidFieldValue(std::string_view v) {
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string_view> HttpResponse::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() < kScheme.size() || !EqualsIgnoreCase(url.substr(0, kScheme.size()), kScheme)) {
    return InvalidArgument("URL must start with http:// (got \"" + std::string(url) + "\")");
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgument("URL must not carry user information");
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    return InvalidArgument("base URL must not carry a query or fragment");
  }
  HttpUrl out;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument("URL: unterminated IPv6 literal");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgument("URL: junk after IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return InvalidArgument("URL: empty port");
    }
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return InvalidArgument("URL: empty port");
    }
  }
  if (out.host.empty()) return InvalidArgument("URL has no host");
  for (char c : out.host) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F || c == '/' || c == '?' || c == '#') {
      return InvalidArgument("URL host contains an invalid character");
    }
  }
  if (!port_text.empty()) {
    uint64_t port = 0;
    if (!ParseDecimal(port_text, port) || port == 0 || port > 65535) {
      return InvalidArgument("URL port must be 1-65535");
    }
    out.port = static_cast<uint16_t>(port);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (!path.empty() && !ValidTarget(path)) return InvalidArgument("URL path contains an invalid character");
  out.base_path = std::string(path);
  return out;
}

HttpClient::HttpClient(std::string host, uint16_t port, HttpClientOptions options)
    : host_(std::move(host)), port_(port), options_(options) {}

Result<HttpClient> HttpClient::FromUrl(std::string_view url, HttpClientOptions options) {
  auto parsed = ParseHttpUrl(url);
  if (!parsed.ok()) return parsed.error();
  HttpClient client(std::move(parsed->host), parsed->port, options);
  client.base_path_ = std::move(parsed->base_path);
  return client;
}

HttpClient::~HttpClient() { Close(); }

HttpClient::HttpClient(HttpClient&& other) noexcept
    : host_(std::move(other.host_)),
      port_(other.port_),
      base_path_(std::move(other.base_path_)),
      options_(other.options_),
      fd_(std::exchange(other.fd_, -1)),
      buf_(std::move(other.buf_)),
      connections_opened_(other.connections_opened_) {}

HttpClient& HttpClient::operator=(HttpClient&& other) noexcept {
  if (this != &other) {
    Close();
    host_ = std::move(other.host_);
    port_ = other.port_;
    base_path_ = std::move(other.base_path_);
    options_ = other.options_;
    fd_ = std::exchange(other.fd_, -1);
    buf_ = std::move(other.buf_);
    connections_opened_ = other.connections_opened_;
  }
  return *this;
}

void HttpClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buf_.clear();
}

Result<HttpResponse> HttpClient::Post(std::string_view path_and_query,
                                      std::string_view content_type, std::string_view body) {
  return Send("POST", path_and_query, content_type, body);
}

Result<HttpResponse> HttpClient::Get(std::string_view path) { return Send("GET", path, {}, {}); }

Status HttpClient::Connect(Clock::time_point deadline) {
  Close();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const std::string port_text = std::to_string(port_);
  const int rc = ::getaddrinfo(host_.c_str(), port_text.c_str(), &hints, &list);
  if (rc != 0) {
    return Unavailable("cannot resolve " + host_ + ": " + ::gai_strerror(rc));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            ai->ai_protocol);
    if (fd < 0) {
      last_error = ErrnoText(errno);
      continue;
    }
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        int n = 0;
        do {
          n = ::poll(&p, 1, RemainingMs(deadline));
        } while (n < 0 && errno == EINTR);
        if (n == 0) {
          err = ETIMEDOUT;
        } else if (n < 0) {
          err = errno;
        } else {
          socklen_t len = sizeof err;
          if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        }
      }
    }
    if (err != 0) {
      last_error = ErrnoText(err);
      ::close(fd);
      if (err == ETIMEDOUT && RemainingMs(deadline) == 0) break;
      continue;
    }
    const int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fd_ = fd;
    ++connections_opened_;
    ::freeaddrinfo(list);
    return Status::Ok();
  }
  ::freeaddrinfo(list);
  return Unavailable("cannot connect to " + host_ + ":" + port_text + ": " + last_error);
}

bool HttpClient::IdleConnectionClosed() {
  pollfd p{fd_, POLLIN, 0};
  const int n = ::poll(&p, 1, 0);
  if (n <= 0) return n < 0;
  // Readable while idle: either the server closed (recv returns 0), reset the
  // connection, or sent bytes nobody asked for. None of them is reusable.
  return true;
}

Status HttpClient::WriteAll(std::string_view data, Clock::time_point deadline) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      const int r = ::poll(&p, 1, RemainingMs(deadline));
      if (r == 0) return Unavailable("timed out sending the request");
      if (r < 0 && errno != EINTR) return Unavailable("poll: " + ErrnoText(errno));
      continue;
    }
    return Unavailable("sending the request: " + ErrnoText(n < 0 ? errno : EPIPE));
  }
  return Status::Ok();
}

Result<size_t> HttpClient::ReadSome(Clock::time_point deadline) {
  char tmp[16384];
  for (;;) {
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
      return static_cast<size_t>(n);
    }
    if (n == 0) return size_t{0};
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Unavailable("receiving the response: " + ErrnoText(errno));
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, RemainingMs(deadline));
    if (r == 0) return Unavailable("timed out waiting for the response");
    if (r < 0 && errno != EINTR) return Unavailable("poll: " + ErrnoText(errno));
  }
}

Result<HttpResponse> HttpClient::ReadResponse(std::string_view method, Clock::time_point deadline,
                                              bool& keep_alive, bool& nothing_received) {
  nothing_received = true;
  size_t pos = 0;  // bytes of buf_ consumed by this response
  // Makes at least `n` unconsumed bytes available; false at end of stream.
  auto need = [&](size_t n, bool& eof) -> Status {
    eof = false;
    while (buf_.size() - pos < n) {
      auto got = ReadSome(deadline);
      if (!got.ok()) return got.error();
      if (*got == 0) {
        eof = true;
        return Status::Ok();
      }
      nothing_received = false;
    }
    return Status::Ok();
  };
  // Finds the next CRLF within `limit` bytes after pos, reading as needed.
  auto line_end = [&](size_t limit, size_t& end, const char* what) -> Status {
    size_t scanned = pos;
    for (;;) {
      const size_t found = buf_.find("\r\n", scanned);
      if (found != std::string::npos && found - pos <= limit) {
        end = found;
        return Status::Ok();
      }
      if (buf_.size() - pos > limit + 1) {
        return ResourceExhausted(std::string("HTTP response ") + what + " over the limit of " +
                                 std::to_string(limit) + " bytes");
      }
      scanned = buf_.size() > pos ? buf_.size() - 1 : pos;
      bool eof = false;
      TKMS_RETURN_IF_ERROR(need(buf_.size() - pos + 1, eof));
      if (eof) {
        return Unavailable(std::string("connection closed inside the response ") + what +
                           " (truncated response)");
      }
    }
  };

  HttpResponse resp;
  bool http10 = false;
  for (int interim = 0;; ++interim) {
    // ---- status line and header fields ----
    const size_t head_start = pos;
    size_t header_end = 0;
    for (;;) {
      header_end = buf_.find("\r\n\r\n", pos);
      if (header_end != std::string::npos) break;
      if (buf_.size() - head_start > options_.max_header_bytes) {
        return ResourceExhausted("HTTP response header over the limit of " +
                                 std::to_string(options_.max_header_bytes) + " bytes");
      }
      bool eof = false;
      TKMS_RETURN_IF_ERROR(need(buf_.size() - pos + 1, eof));
      if (eof) {
        if (nothing_received && buf_.size() == pos) {
          return Unavailable("connection closed by the server before any response");
        }
        return Unavailable("connection closed inside the response header (truncated response)");
      }
    }
    if (header_end + 4 - head_start > options_.max_header_bytes) {
      return ResourceExhausted("HTTP response header over the limit of " +
                               std::to_string(options_.max_header_bytes) + " bytes");
    }
    std::string_view head(buf_.data() + head_start, header_end - head_start);
    pos = header_end + 4;

    const size_t first_eol = head.find("\r\n");
    const std::string_view status_line = head.substr(0, first_eol);
    // "HTTP/1.1 200 OK"
    if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
        (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ' ||
        (status_line.size() > 12 && status_line[12] != ' ')) {
      return Malformed("bad status line");
    }
    http10 = status_line[7] == '0';
    int status = 0;
    for (size_t i = 9; i < 12; ++i) {
      if (status_line[i] < '0' || status_line[i] > '9') return Malformed("bad status code");
      status = status * 10 + (status_line[i] - '0');
    }
    if (status < 100 || status > 599) return Malformed("status code out of range");
    if (!ValidFieldValue(status_line)) return Malformed("control character in the status line");
    resp = HttpResponse{};
    resp.status = status;
    resp.reason = status_line.size() > 13 ? std::string(status_line.substr(13)) : std::string();

    std::string_view fields =
        first_eol == std::string_view::npos ? std::string_view() : head.substr(first_eol + 2);
    while (!fields.empty()) {
      const size_t eol = fields.find("\r\n");
      const std::string_view line = fields.substr(0, eol);
      fields = eol == std::string_view::npos ? std::string_view() : fields.substr(eol + 2);
      if (line.empty()) return Malformed("empty header line");
      if (line.front() == ' ' || line.front() == '\t') return Malformed("obsolete header line folding");
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) return Malformed("header line without a name");
      const std::string_view name = line.substr(0, colon);
      for (char c : name) {
        if (!IsTokenChar(c)) return Malformed("invalid character in a header name");
      }
      const std::string_view value = Trim(line.substr(colon + 1));
      if (!ValidFieldValue(value)) return Malformed("control character in a header value");
      resp.headers.emplace_back(std::string(name), std::string(value));
    }
    if (status == 101) return Malformed("unexpected protocol switch (101)");
    if (status >= 100 && status < 200) {
      if (interim >= kMaxInterimResponses) return Malformed("too many interim (1xx) responses");
      continue;
    }
    break;
  }

  // ---- connection persistence ----
  keep_alive = !http10;
  for (const auto& [n, v] : resp.headers) {
    if (!EqualsIgnoreCase(n, "Connection")) continue;
    if (HasToken(v, "close")) keep_alive = false;
    if (http10 && HasToken(v, "keep-alive")) keep_alive = true;
  }

  // ---- message body length (RFC 9112 §6.3) ----
  std::optional<uint64_t> content_length;
  bool chunked = false;
  for (const auto& [n, v] : resp.headers) {
    if (EqualsIgnoreCase(n, "Content-Length")) {
      uint64_t len = 0;
      if (!ParseDecimal(v, len)) return Malformed("invalid Content-Length");
      if (content_length.has_value() && *content_length != len) {
        return Malformed("conflicting Content-Length values");
      }
      content_length = len;
    } else if (EqualsIgnoreCase(n, "Transfer-Encoding")) {
      if (chunked || !EqualsIgnoreCase(Trim(v), "chunked")) {
        return Malformed("unsupported Transfer-Encoding \"" + v + "\"");
      }
      chunked = true;
    }
  }
  if (chunked && content_length.has_value()) {
    return Malformed("both Content-Length and Transfer-Encoding");
  }
  const bool no_body = method == "HEAD" || resp.status == 204 || resp.status == 304;
  if (no_body) {
    // nothing to read
  } else if (chunked) {
    size_t trailer_bytes = 0;
    for (;;) {
      size_t eol = 0;
      TKMS_RETURN_IF_ERROR(line_end(kMaxChunkLine, eol, "chunk size line"));
      std::string_view line(buf_.data() + pos, eol - pos);
      pos = eol + 2;
      const size_t semi = line.find(';');
      const std::string_view hex = Trim(line.substr(0, semi));
      if (hex.empty() || hex.size() > 8) return Malformed("invalid chunk size");
      uint64_t size = 0;
      for (char c : hex) {
        int d = -1;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        if (d < 0) return Malformed("invalid chunk size");
        size = size * 16 + static_cast<uint64_t>(d);
      }
      if (size == 0) {
        // Trailer fields, then the empty line; counted against the header budget.
        for (;;) {
          TKMS_RETURN_IF_ERROR(line_end(options_.max_header_bytes, eol, "trailer"));
          const size_t len = eol - pos;
          std::string_view trailer(buf_.data() + pos, len);
          pos = eol + 2;
          if (len == 0) break;
          if (!ValidFieldValue(trailer)) return Malformed("control character in a trailer");
          trailer_bytes += len + 2;
          if (trailer_bytes > options_.max_header_bytes) {
            return ResourceExhausted("HTTP response trailers over the limit of " +
                                     std::to_string(options_.max_header_bytes) + " bytes");
          }
        }
        break;
      }
      if (size > options_.max_body_bytes || resp.body.size() + size > options_.max_body_bytes) {
        return ResourceExhausted("HTTP response body over the limit of " +
                                 std::to_string(options_.max_body_bytes) + " bytes");
      }
      bool eof = false;
      TKMS_RETURN_IF_ERROR(need(static_cast<size_t>(size) + 2, eof));
      if (eof) return Unavailable("connection closed inside a chunk (truncated response)");
      resp.body.append(buf_, pos, static_cast<size_t>(size));
      pos += static_cast<size_t>(size);
      if (buf_.compare(pos, 2, "\r\n") != 0) return Malformed("chunk not followed by CRLF");
      pos += 2;
    }
  } else if (content_length.has_value()) {
    if (*content_length > options_.max_body_bytes) {
      return ResourceExhausted("HTTP response body of " + std::to_string(*content_length) +
                               " bytes over the limit of " +
                               std::to_string(options_.max_body_bytes) + " bytes");
    }
    const auto len = static_cast<size_t>(*content_length);
    bool eof = false;
    TKMS_RETURN_IF_ERROR(need(len, eof));
    if (eof) {
      return Unavailable("connection closed after " + std::to_string(buf_.size() - pos) + " of " +
                         std::to_string(len) + " body bytes (truncated response)");
    }
    resp.body.assign(buf_, pos, len);
    pos += len;
  } else {
    // No length: the body ends when the server closes the connection.
    keep_alive = false;
    for (;;) {
      if (buf_.size() - pos > options_.max_body_bytes) {
        return ResourceExhausted("HTTP response body over the limit of " +
                                 std::to_string(options_.max_body_bytes) + " bytes");
      }
      auto got = ReadSome(deadline);
      if (!got.ok()) return got.error();
      if (*got == 0) break;
    }
    resp.body.assign(buf_, pos, std::string::npos);
    pos = buf_.size();
  }
  buf_.erase(0, pos);
  // Bytes after the response were not asked for: do not reuse the connection.
  if (!buf_.empty()) keep_alive = false;
  return resp;
}

Result<HttpResponse> HttpClient::Send(std::string_view method, std::string_view path,
                                      std::string_view content_type, std::string_view body) {
  const std::string target = base_path_ + std::string(path);
  if (!ValidTarget(target)) return InvalidArgument("invalid HTTP request target");
  if (!ValidFieldValue(content_type)) return InvalidArgument("invalid Content-Type");

  std::string request;
  request.reserve(128 + target.size() + body.size());
  request.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ");
  const bool ipv6 = host_.find(':') != std::string::npos;
  if (ipv6) request.append("[");
  request.append(host_);
  if (ipv6) request.append("]");
  if (port_ != 80) request.append(":").append(std::to_string(port_));
  request.append("\r\n");
  if (method == "POST") {
    if (!content_type.empty()) request.append("Content-Type: ").append(content_type).append("\r\n");
    request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  request.append("\r\n").append(body);

  const auto deadline = Clock::now() + options_.timeout;
  for (int attempt = 0;; ++attempt) {
    bool reused = fd_ >= 0;
    if (reused && IdleConnectionClosed()) {
      Close();
      reused = false;
    }
    if (fd_ < 0) TKMS_RETURN_IF_ERROR(Connect(deadline));
    buf_.clear();
    Status sent = WriteAll(request, deadline);
    if (!sent.ok()) {
      Close();
      if (reused && attempt == 0) continue;
      return sent;
    }
    bool keep_alive = false;
    bool nothing_received = true;
    auto resp = ReadResponse(method, deadline, keep_alive, nothing_received);
    if (!resp.ok()) {
      Close();
      // A reused connection the server had already closed: try once more.
      if (reused && attempt == 0 && nothing_received && RemainingMs(deadline) > 0 &&
          resp.error().code() == StatusCode::kUnavailable) {
        continue;
      }
      return resp;
    }
    if (!keep_alive) Close();
    return resp;
  }
}

}  // namespace tkms::ue
