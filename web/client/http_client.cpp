#include "web/client/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "firmware/base/printable.h"
#include "web/client/http_text.h"

namespace tkms::web::client {
namespace {

using http_text::EqualsIgnoreCase;
using http_text::ParseDecimal;
using http_text::ValidFieldValue;

std::string ErrnoText(int err) { return std::strerror(err); }

int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  return left.count() > 0x7FFFFFFF ? 0x7FFFFFFF : static_cast<int>(left.count());
}

// An IPv4 or IPv6 address literal (as the URL gives it, without brackets).
bool IsIpLiteral(const std::string& host) {
  in6_addr v6{};
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

bool ValidTarget(std::string_view target) {
  if (target.empty() || target.front() != '/') return false;
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) return false;
  }
  return true;
}

}  // namespace

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kHttp = "http://";
  constexpr std::string_view kHttps = "https://";
  HttpUrl out;
  std::string_view rest;
  if (url.size() >= kHttps.size() && EqualsIgnoreCase(url.substr(0, kHttps.size()), kHttps)) {
    out.https = true;
    out.port = 443;
    rest = url.substr(kHttps.size());
  } else if (url.size() >= kHttp.size() && EqualsIgnoreCase(url.substr(0, kHttp.size()), kHttp)) {
    rest = url.substr(kHttp.size());
  } else {
    return InvalidArgument("URL must start with http:// or https:// (got \"" + EscapedDetail(url) + "\")");
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgument("URL must not carry user information");
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    return InvalidArgument("base URL must not carry a query or fragment");
  }
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
  std::shared_ptr<TlsClientConfig> tls;
  if (parsed->https) {
    if (IsIpLiteral(parsed->host)) {
      return InvalidArgument("https://" + EscapedDetail(parsed->host) +
                             ": name the KMS by a DNS name in its certificate (e.g. https://localhost:PORT); "
                             "mbedTLS 2.28 cannot check IP addresses in certificates");
    }
    auto loaded = TlsClientConfig::Load(options.tls);
    if (!loaded.ok()) return loaded.error();
    tls = std::move(*loaded);
  } else if (!options.tls.empty()) {
    return InvalidArgument("TLS files (--cacert, --cert, --key) were given for the http:// URL " + EscapedDetail(url) +
                           "; use https://");
  }
  HttpClient client(std::move(parsed->host), parsed->port, options);
  client.base_path_ = std::move(parsed->base_path);
  client.tls_config_ = std::move(tls);
  return client;
}

Result<HttpClient> HttpClient::WithTls(std::string host, uint16_t port, std::shared_ptr<TlsClientConfig> tls,
                                       std::shared_ptr<const ServerVerifier> verifier, HttpClientOptions options) {
  if (!tls || !verifier || !tls->verifier_required()) {
    return InvalidArgument("HTTPS with a verifier needs an in-memory TLS configuration and a ServerVerifier");
  }
  options.tls = {};
  HttpClient client(std::move(host), port, options);
  client.tls_config_ = std::move(tls);
  client.verifier_ = std::move(verifier);
  return client;
}

HttpClient::~HttpClient() { Close(); }

HttpClient::HttpClient(HttpClient&& other) noexcept
    : host_(std::move(other.host_)),
      port_(other.port_),
      base_path_(std::move(other.base_path_)),
      options_(other.options_),
      tls_config_(std::move(other.tls_config_)),
      verifier_(std::move(other.verifier_)),
      tls_(std::exchange(other.tls_, std::nullopt)),
      fd_(std::exchange(other.fd_, -1)),
      connections_opened_(other.connections_opened_),
      last_failure_(other.last_failure_) {}

HttpClient& HttpClient::operator=(HttpClient&& other) noexcept {
  if (this != &other) {
    Close();
    host_ = std::move(other.host_);
    port_ = other.port_;
    base_path_ = std::move(other.base_path_);
    options_ = other.options_;
    tls_config_ = std::move(other.tls_config_);
    verifier_ = std::move(other.verifier_);
    tls_ = std::exchange(other.tls_, std::nullopt);
    fd_ = std::exchange(other.fd_, -1);
    connections_opened_ = other.connections_opened_;
    last_failure_ = other.last_failure_;
  }
  return *this;
}

void HttpClient::Close() {
  if (tls_) tls_->CloseNotify();
  tls_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
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
    ::freeaddrinfo(list);
    fd_ = fd;
    ++connections_opened_;
    if (tls_config_) {
      // A handshake that fails is not retried on another address: the
      // server answered, and its answer (certificate, alert) stands.
      auto session = TlsSession::Handshake(tls_config_, fd_, host_, host_ + ":" + port_text, deadline, verifier_);
      if (!session.ok()) {
        Close();
        return session.error();
      }
      tls_.emplace(std::move(*session));
    }
    return Status::Ok();
  }
  ::freeaddrinfo(list);
  return Unavailable("cannot connect to " + host_ + ":" + port_text + ": " + last_error);
}

bool HttpClient::IdleConnectionClosed() {
  if (tls_ && tls_->buffered() > 0) return true;  // decrypted bytes nobody asked for
  pollfd p{fd_, POLLIN, 0};
  const int n = ::poll(&p, 1, 0);
  if (n <= 0) return n < 0;
  // Readable while idle: either the server closed (recv returns 0), reset the
  // connection, or sent bytes nobody asked for. None of them is reusable.
  return true;
}

Status HttpClient::WriteAll(std::string_view data, Clock::time_point deadline) {
  if (tls_) return tls_->Write(data, deadline);
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

Result<size_t> HttpClient::ReadSome(std::span<uint8_t> into, Clock::time_point deadline) {
  if (tls_) return tls_->Read(into, deadline);
  for (;;) {
    const ssize_t n = ::recv(fd_, into.data(), into.size(), 0);
    if (n >= 0) return static_cast<size_t>(n);
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

Result<ParsedHttpResponse> HttpClient::ReadResponse(std::string_view method, Clock::time_point deadline,
                                                    bool& nothing_received) {
  HttpResponseLimits limits;
  limits.max_header_bytes = options_.max_header_bytes;
  limits.max_body_bytes = options_.max_body_bytes;
  HttpResponseParser parser(limits, method == "HEAD");
  std::array<uint8_t, 16384> chunk;
  nothing_received = true;
  for (;;) {
    auto got = ReadSome(chunk, deadline);
    if (!got.ok()) return got.error();
    if (*got == 0) return parser.Finish();
    nothing_received = false;
    auto parsed = parser.Feed(ByteSpan(chunk.data(), *got));
    if (!parsed.ok()) return parsed.error();
    if (parsed->has_value()) return std::move(**parsed);
  }
}

Result<HttpResponse> HttpClient::Send(std::string_view method, std::string_view path,
                                      std::string_view content_type, std::string_view body) {
  last_failure_ = FailurePhase::kExchange;
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
  if (port_ != (tls_config_ ? 443 : 80)) request.append(":").append(std::to_string(port_));
  request.append("\r\n");
  if (method == "POST") {
    if (!content_type.empty()) request.append("Content-Type: ").append(content_type).append("\r\n");
    request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  request.append("\r\n").append(body);

  auto deadline = Clock::now() + options_.timeout;
  const bool own_connect_deadline = options_.connect_timeout.count() > 0;
  for (int attempt = 0;; ++attempt) {
    bool reused = fd_ >= 0;
    if (reused && IdleConnectionClosed()) {
      Close();
      reused = false;
    }
    if (fd_ < 0) {
      Status connected = Connect(own_connect_deadline ? Clock::now() + options_.connect_timeout : deadline);
      if (!connected.ok()) {
        last_failure_ = FailurePhase::kConnect;
        return connected;
      }
      if (own_connect_deadline && attempt == 0) deadline = Clock::now() + options_.timeout;
    }
    Status sent = WriteAll(request, deadline);
    if (!sent.ok()) {
      Close();
      if (reused && attempt == 0) continue;
      return sent;
    }
    bool nothing_received = true;
    auto resp = ReadResponse(method, deadline, nothing_received);
    if (!resp.ok()) {
      Close();
      // A reused connection the server had already closed: try once more.
      if (reused && attempt == 0 && nothing_received && RemainingMs(deadline) > 0 &&
          resp.error().code() == StatusCode::kUnavailable) {
        continue;
      }
      return resp.error();
    }
    // Bytes after the response were not asked for: do not reuse the connection.
    if (!resp->keep_alive || !resp->leftover.empty()) Close();
    last_failure_ = FailurePhase::kNone;
    return std::move(resp->response);
  }
}

}  // namespace tkms::web::client
