// A tiny scripted HTTP/1.1 server on 127.0.0.1 for the UE client tests.
//
// Why: the HttpClient (web/client/http_client.h) must be tested against a peer
// that does exactly what a test asks -- keep a connection open, close it after
// an answer or before one, send truncated, oversized or malformed responses --
// which no real server does on request. One thread accepts connections and
// starts one thread per connection; the handler (called concurrently when
// several connections are open) sees each parsed request and returns the raw
// bytes to send and what to do with the connection afterwards.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tkms::ue::testing {

struct ServerRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int connection = 0;  // 0-based index of the accepted connection
  int index = 0;       // 0-based index of the request on its connection

  std::string Header(const std::string& name) const {
    for (const auto& [n, v] : headers) {
      if (n.size() != name.size()) continue;
      bool same = true;
      for (size_t i = 0; i < n.size() && same; ++i) same = std::tolower(n[i]) == std::tolower(name[i]);
      if (same) return v;
    }
    return {};
  }
};

struct ServerReply {
  std::string raw;            // bytes to send (may be a partial or broken response)
  bool close_after = false;   // close the connection after sending `raw`
  int delay_ms = 0;           // wait before sending
};

inline std::string HttpOk(const std::string& body, const std::string& content_type = "text/plain",
                          const std::string& extra_headers = "") {
  return "HTTP/1.1 200 OK\r\nContent-Type: " + content_type + "\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

class TestHttpServer {
 public:
  using Handler = std::function<ServerReply(const ServerRequest&)>;

  explicit TestHttpServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }

  ~TestHttpServer() {
    stop_ = true;
    thread_.join();
    for (auto& t : connection_threads_) t.join();
    ::close(listen_fd_);
  }

  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }
  std::vector<ServerRequest> received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }

 private:
  bool WaitReadable(int fd) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      const int n = ::poll(&p, 1, 20);
      if (n > 0) return true;
      if (n < 0 && errno != EINTR) return false;
    }
    return false;
  }

  // Reads one request (headers + Content-Length body); false when the peer
  // closed or the server stops.
  bool ReadRequest(int fd, std::string& buf, ServerRequest& req) {
    size_t end = std::string::npos;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!WaitReadable(fd)) return false;
      char tmp[4096];
      const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<size_t>(n));
    }
    const std::string head = buf.substr(0, end);
    buf.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    const std::string request_line = head.substr(0, line_end);
    const size_t sp1 = request_line.find(' ');
    const size_t sp2 = request_line.find(' ', sp1 + 1);
    req.method = request_line.substr(0, sp1);
    req.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    while (line_end != std::string::npos) {
      const size_t next = head.find("\r\n", line_end + 2);
      const std::string line =
          head.substr(line_end + 2, next == std::string::npos ? std::string::npos : next - line_end - 2);
      line_end = next;
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      req.headers.emplace_back(line.substr(0, colon), value);
    }
    const std::string length_text = req.Header("Content-Length");
    const size_t content_length = length_text.empty() ? 0 : std::stoul(length_text);
    while (buf.size() < content_length) {
      if (!WaitReadable(fd)) return false;
      char tmp[4096];
      const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<size_t>(n));
    }
    req.body = buf.substr(0, content_length);
    buf.erase(0, content_length);
    return true;
  }

  static void SendAll(int fd, const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }

  void Serve(int fd, int connection) {
    std::string buf;
    for (int index = 0;; ++index) {
      ServerRequest req;
      req.connection = connection;
      req.index = index;
      if (!ReadRequest(fd, buf, req)) return;
      ++requests_;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        received_.push_back(req);
      }
      ServerReply reply = handler_(req);
      if (reply.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(reply.delay_ms));
      SendAll(fd, reply.raw);
      if (reply.close_after) return;
    }
  }

  void Run() {
    while (!stop_) {
      if (!WaitReadable(listen_fd_)) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      const int connection = connections_++;
      connection_threads_.emplace_back([this, fd, connection] {
        Serve(fd, connection);
        ::close(fd);
      });
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  mutable std::mutex mutex_;
  std::vector<ServerRequest> received_;
  std::thread thread_;                            // accepts connections
  std::vector<std::thread> connection_threads_;   // one per connection (owned by thread_)
};

}  // namespace tkms::ue::testing
