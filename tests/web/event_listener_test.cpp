// The event-driven listener (web/transport.h, web/event_listener.cpp) end to
// end on 127.0.0.1 with small limits:
//   ListenerFraming.*  the strict head parser behind a real WebServer: fields
//                      after the 64th are seen, 101 fields are 431, malformed
//                      fields and lengths are 400, OPTIONS * and absolute-form
//                      are answered; every refusal closes and is counted;
//   ListenerHostile.*  deadlines (slow body 408, silent connection closed),
//                      idle connections that do not block others, the caps
//                      (503 and close), the lingering close after a 413, a
//                      bounded Stop(), Ready() at the cap;
//   ListenerTls.*      HTTPS (tls_server.h) with curl and openssl s_client as
//                      subprocesses: the TLS 1.2 AEAD-only profile, no
//                      renegotiation, client certificates (CA-issued, pinned,
//                      unknown, expired), and identities from TLS alone.
// Waits are "it happened before a generous bound" (poll timeouts), never
// sleeps whose length decides the outcome.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/base/log.h"
#include "tests/provisioning/test_pki.h"
#include "tests/web/fake_service.h"
#include "tests/web/http_client.h"
#include "web/server.h"
#include "web/tls_server.h"
#include "web/transport.h"

namespace tkms::web {
namespace {

using testing::FakeKmsService;
using testing::HttpClient;
using testing::HttpReply;
using Clock = std::chrono::steady_clock;

constexpr int kGenerousMs = 5000;

// ---- a raw TCP connection -----------------------------------------------------------

class Raw {
 public:
  explicit Raw(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~Raw() { Close(); }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  // Sends everything; false on an error (errno kept).
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Reads until the peer closes (EOF or reset: *closed) or timeout_ms pass.
  std::string ReadUntilClosed(int timeout_ms, bool* closed) {
    std::string got;
    *closed = false;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      char buf[16384];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        got.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      *closed = true;
      break;
    }
    return got;
  }

 private:
  int fd_ = -1;
};

int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::atoi(response.substr(9, 3).c_str());
}

bool HasConnectionClose(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  return response.substr(0, end + 2).find("\r\nConnection: close\r\n") != std::string::npos;
}

// Polls `condition` every 2 ms until it holds or kGenerousMs pass.
template <typename F>
bool Eventually(F condition) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(kGenerousMs);
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return condition();
}

// Runs a shell command; its standard output and error, and the exit status.
std::string RunCommand(const std::string& command, int* status) {
  std::string out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int raw = pclose(pipe);
  *status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

// ---- a recording handler --------------------------------------------------------------

// Echoes a POST body (200), refuses framing errors and body failures (400,
// 413), answers anything else 204; records requests, protocol errors and
// connection events.
class Recorder final : public HttpHandler {
 public:
  explicit Recorder(size_t cap = 16384) : cap_(cap) {}
  BodyPlan PlanBody(const HttpRequest&) override { return BodyPlan::Read(cap_); }
  HttpResponse Handle(const HttpRequest& request) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
    }
    if (request.framing.error != FramingError::kNone) return TextResponse(400, "framing");
    switch (request.body_state) {
      case BodyState::kTooLarge: return TextResponse(413, "too large");
      case BodyState::kIncomplete:
      case BodyState::kBadChunked: return TextResponse(400, "bad body");
      default: break;
    }
    if (request.method != "POST") return TextResponse(204, "");
    HttpResponse response;
    response.status = 200;
    response.content_type = "application/octet-stream";
    response.body = request.body;
    return response;
  }
  void OnProtocolError(int status) noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    ++protocol_errors_[status];
  }
  void OnConnectionEvent(ConnectionEvent event) noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    ++events_[static_cast<size_t>(event)];
  }

  std::vector<HttpRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  int protocol_errors(int status) {
    std::lock_guard<std::mutex> lock(mu_);
    return protocol_errors_[status];
  }
  int events(ConnectionEvent event) {
    std::lock_guard<std::mutex> lock(mu_);
    return events_[static_cast<size_t>(event)];
  }

 private:
  size_t cap_;
  std::mutex mu_;
  std::vector<HttpRequest> requests_;
  std::map<int, int> protocol_errors_;
  std::array<int, kConnectionEvents> events_{};
};

ListenerConfig SmallConfig() {
  ListenerConfig config;
  config.name = "Test listener";
  config.log_name = "test";
  config.listen = "127.0.0.1:0";
  config.threads = 2;
  config.request_timeout_ms = 400;
  config.keep_alive_timeout_ms = 300;
  config.max_connections_per_source = 4;
  config.max_connections = 64;
  config.drain_timeout_ms = 300;
  config.linger_ms = 2000;
  return config;
}

std::unique_ptr<HttpListener> Start(const ListenerConfig& config, HttpHandler& handler) {
  auto started = StartListener(config, handler);
  EXPECT_TRUE(started.ok()) << started.error().ToString();
  return started.ok() ? std::move(*started) : nullptr;
}

// ---- several processes on one port (SO_REUSEPORT) -----------------------------------------

// reuse_port lets a second listener (in production: a second tkmsd process)
// bind the same address and port; without it the bind is refused with a
// clear error. Both then serve.
TEST(ListenerReusePort, TwoListenersShareAPortOnlyWithReusePort) {
  Recorder first_handler;
  Recorder second_handler;
  ListenerConfig config = SmallConfig();
  config.reuse_port = true;
  auto first = Start(config, first_handler);
  ASSERT_NE(first, nullptr);
  config.listen = "127.0.0.1:" + std::to_string(first->port());
  auto second = Start(config, second_handler);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->port(), first->port());

  ListenerConfig plain = config;
  plain.reuse_port = false;
  Recorder third_handler;
  auto refused = StartListener(plain, third_handler);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("cannot bind"), std::string::npos) << refused.error().ToString();

  // Connections reach one of the two; with the first stopped, the second takes them all.
  first->Stop();
  for (int i = 0; i < 4; ++i) {
    auto reply = testing::OneShot(first->port(), std::string("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    ASSERT_TRUE(reply.has_value());
  }
}

// ---- /readyz follows the Ua listener's capacity -----------------------------------------

// While the Ua listener is at its connection cap it cannot take a new
// request: /readyz (admin listener, own capacity) says so, and says ready
// again once the connections are gone.
TEST(ListenerReadiness, ReadyzIsNotReadyWhileUaIsAtItsCap) {
  FakeKmsService service;
  WebServerOptions options;
  options.ua_listen = "127.0.0.1:0";
  options.admin_listen = "127.0.0.1:0";
  options.worker_threads = 1;
  options.max_connections = 2;
  options.request_timeout_ms = 20000;  // the idle connections stay for the test
  auto started = WebServer::Start(options, service);
  ASSERT_TRUE(started.ok()) << started.error().ToString();
  WebServer& server = **started;
  const auto readyz = [&server] {
    return testing::OneShot(server.admin_port(), "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  };
  auto before = readyz();
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->status, 200) << before->body;

  std::vector<std::unique_ptr<HttpClient>> idle;
  for (int i = 0; i < 2; ++i) {
    idle.push_back(std::make_unique<HttpClient>(server.ua_port()));
    ASSERT_TRUE(idle.back()->Connect());
  }
  std::optional<HttpReply> at_cap;
  for (int i = 0; i < 200; ++i) {  // the I/O thread notices within one loop turn
    at_cap = readyz();
    if (at_cap.has_value() && at_cap->status == 503) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(at_cap.has_value());
  EXPECT_EQ(at_cap->status, 503);
  EXPECT_NE(at_cap->body.find("Ua listener at capacity"), std::string::npos) << at_cap->body;

  idle.clear();  // the peers close; the listener notices and frees the slots
  std::optional<HttpReply> after;
  for (int i = 0; i < 300; ++i) {
    after = readyz();
    if (after.has_value() && after->status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->status, 200) << after->body;
}

// ---- the log budget ------------------------------------------------------------------------

// A burst of refusals writes at most 20 lines a second; every refusal is
// still accounted for: the lines written, plus the `suppressed=` counts on
// later lines, plus a `log_suppressed lines=` line once the burst is over.
TEST(ListenerLogBudget, ABurstIsFoldedButEveryRefusalIsAccounted) {
  char path[] = "/tmp/tkms-log-budget-XXXXXX";
  const int log_fd = ::mkstemp(path);
  ASSERT_GE(log_fd, 0);
  SetLogFd(log_fd);
  Recorder handler;
  auto listener = Start(SmallConfig(), handler);
  ASSERT_NE(listener, nullptr);
  constexpr int kBurst = 60;
  for (int i = 0; i < kBurst; ++i) {
    auto reply = testing::OneShot(listener->port(), "GARBAGE\r\n\r\n");
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 400);
  }
  const auto read_log = [&path] {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  // Count what the log accounts for; the summary line comes once the burst's
  // one-second window has ended (the loop wakes at least once a second).
  const auto accounted = [](const std::string& log, int* lines) {
    int total = 0;
    *lines = 0;
    size_t at = 0;
    while ((at = log.find("event=http_error", at)) != std::string::npos) {
      ++*lines;
      ++total;
      const size_t end = log.find('\n', at);
      const std::string line = log.substr(at, end - at);
      if (const size_t s = line.find("suppressed="); s != std::string::npos) total += std::stoi(line.substr(s + 11));
      at = end;
    }
    at = 0;
    while ((at = log.find("event=log_suppressed", at)) != std::string::npos) {
      const size_t l = log.find("lines=", at);
      total += std::stoi(log.substr(l + 6));
      at = l;
    }
    return total;
  };
  int lines = 0;
  int total = 0;
  for (int i = 0; i < 400 && total < kBurst; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    total = accounted(read_log(), &lines);
  }
  listener->Stop();
  SetLogFd(2);
  ::close(log_fd);
  const std::string log = read_log();
  std::remove(path);
  EXPECT_EQ(total, kBurst) << log;
  EXPECT_LT(lines, kBurst) << "a burst must be folded";
  EXPECT_EQ(handler.protocol_errors(400), kBurst);  // every refusal is counted
}

// ---- framing, behind a real WebServer ----------------------------------------------------

constexpr const char* kPost = "POST /keymanagement?requesttype=ticketrequest HTTP/1.1\r\nHost: x\r\n";

class ListenerFraming : public ::testing::Test {
 protected:
  void SetUp() override {
    WebServerOptions options;
    options.ua_listen = "127.0.0.1:0";
    options.admin_listen = "127.0.0.1:0";
    options.max_body_bytes = 1024;
    options.worker_threads = 2;
    options.request_timeout_ms = 500;
    options.keep_alive_timeout_ms = 300;
    options.drain_timeout_ms = 300;
    auto started = WebServer::Start(options, service_);
    ASSERT_TRUE(started.ok()) << started.error().ToString();
    server_ = std::move(*started);
  }
  uint16_t ua() const { return server_->ua_port(); }
  Metrics& metrics() { return server_->metrics(); }
  uint64_t refusals(int status) { return metrics().rejections(status) + metrics().protocol_errors(status); }

  // Sends `raw` on a new connection: `status`, Connection: close, closed.
  std::optional<HttpReply> ExpectClosedWith(const std::string& raw, int status) {
    HttpClient client(ua());
    EXPECT_TRUE(client.SendRaw(raw));
    auto reply = client.ReadReply(kGenerousMs);
    EXPECT_TRUE(reply.has_value()) << raw;
    if (!reply.has_value()) return reply;
    EXPECT_EQ(reply->status, status) << raw << "\n" << reply->body;
    EXPECT_EQ(reply->header("Connection"), "close") << raw;
    EXPECT_TRUE(client.WaitForClose(kGenerousMs)) << raw;
    return reply;
  }
  void ExpectValidRequestSucceeds() {
    HttpClient client(ua());
    auto reply = client.Post("/keymanagement?requesttype=ticketrequest", "AQID/w==");
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 200);
  }
  static std::string Fillers(int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += "X-Filler-" + std::to_string(i) + ": " + std::to_string(i) + "\r\n";
    return out;
  }

  FakeKmsService service_;
  std::unique_ptr<WebServer> server_;
};

TEST_F(ListenerFraming, FramingFieldsAfterThe64thAreSeen) {
  // Host is field 1, Content-Type 2, then 64 fillers: each field below is
  // the 67th or later, where a 64-slot parser would have dropped it.
  const std::string head = std::string(kPost) + "Content-Type: application/mikey\r\n" + Fillers(64);
  // A Transfer-Encoding after the Content-Length: both framings, 400.
  auto both = ExpectClosedWith(head + "Content-Length: 8\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nAQID/w==\r\n0\r\n\r\n",
                               400);
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(both->body, "Content-Length and Transfer-Encoding together\n");
  // A second Content-Length (even an equal one): 400.
  ExpectClosedWith(head + "Content-Length: 8\r\nContent-Length: 8\r\n\r\nAQID/w==", 400);
  // A second Content-Type: the Ua handler's 415 (a small body it drops, so
  // the connection may stay).
  HttpClient twice(ua());
  ASSERT_TRUE(twice.SendRaw(head + "Content-Length: 8\r\nContent-Type: application/mikey\r\n\r\nAQID/w=="));
  auto type = twice.ReadReply(kGenerousMs);
  ASSERT_TRUE(type.has_value());
  EXPECT_EQ(type->status, 415);
  EXPECT_EQ(metrics().rejections(400), 2u);
  EXPECT_EQ(metrics().rejections(415), 1u);
  EXPECT_TRUE(service_.calls().empty());
  // The same head with one framing field is served.
  HttpClient client(ua());
  ASSERT_TRUE(client.SendRaw(head + "Content-Length: 8\r\n\r\nAQID/w=="));
  auto reply = client.ReadReply(kGenerousMs);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(service_.calls().size(), 1u);
}

TEST_F(ListenerFraming, MoreThan100FieldsAre431) {
  // Host, Content-Type, Content-Length and 98 fillers: 101 fields.
  auto reply = ExpectClosedWith(std::string(kPost) + "Content-Type: application/mikey\r\nContent-Length: 8\r\n" +
                                    Fillers(98) + "\r\nAQID/w==",
                                431);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(metrics().protocol_errors(431), 1u);
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

TEST_F(ListenerFraming, MalformedFieldsAndLengthsAre400) {
  const std::string head = std::string(kPost) + "Content-Type: application/mikey\r\n";
  uint64_t expected = 0;
  ExpectClosedWith(head + "Content-Length : 8\r\n\r\nAQID/w==", 400);
  ExpectClosedWith(head + "X-Name : value\r\nContent-Length: 8\r\n\r\nAQID/w==", 400);
  expected += 2;
  EXPECT_EQ(metrics().protocol_errors(400), 2u);  // the parser's: no whitespace before ':'
  for (const char* length : {"+228", "228, 228", "1e3", "-1", "0x10"}) {
    ExpectClosedWith(head + "Content-Length: " + length + "\r\n\r\n" + std::string(228, 'A'), 400);
    ++expected;
  }
  EXPECT_EQ(refusals(400), expected);
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

TEST_F(ListenerFraming, AsteriskAndAbsoluteFormAreAnswered) {
  HttpClient client(ua());
  ASSERT_TRUE(client.SendRaw("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto options = client.ReadReply(kGenerousMs);
  ASSERT_TRUE(options.has_value()) << "OPTIONS * was dropped";
  EXPECT_EQ(options->status, 404);  // the Ua handler serves /keymanagement only
  // Absolute-form (RFC 9112 §3.2.2): served like origin-form, on the same connection.
  ASSERT_TRUE(client.SendRaw(
      "POST http://localhost/keymanagement?requesttype=ticketrequest HTTP/1.1\r\nHost: localhost\r\n"
      "Content-Type: application/mikey\r\nContent-Length: 8\r\n\r\nAQID/w=="));
  auto absolute = client.ReadReply(kGenerousMs);
  ASSERT_TRUE(absolute.has_value());
  EXPECT_EQ(absolute->status, 200);
  EXPECT_EQ(absolute->body, Base64Encode(std::vector<uint8_t>{0x01, 0x0a, 0x00, 0x42}));
  ASSERT_EQ(service_.calls().size(), 1u);
  EXPECT_EQ(service_.calls()[0].mikey, (std::vector<uint8_t>{0x01, 0x02, 0x03, 0xff}));
}

// ---- hostile clients, on a bare listener ------------------------------------------------

TEST(ListenerHostile, SlowBodyIs408AndClosed) {
  Recorder handler;
  auto listener = Start(SmallConfig(), handler);
  ASSERT_NE(listener, nullptr);
  Raw raw(listener->port());
  ASSERT_TRUE(raw.ok());
  const auto sent = Clock::now();
  ASSERT_TRUE(raw.Send("POST /keymanagement HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nA"));
  bool closed = false;
  const std::string got = raw.ReadUntilClosed(kGenerousMs, &closed);
  EXPECT_EQ(StatusOf(got), 408) << got;
  EXPECT_TRUE(HasConnectionClose(got)) << got;
  EXPECT_TRUE(closed);
  // The 408 comes from the deadline, not from an early refusal.
  EXPECT_GE(Clock::now() - sent, std::chrono::milliseconds(300));
  EXPECT_EQ(handler.protocol_errors(408), 1);
  EXPECT_TRUE(handler.requests().empty());
  // A slow head is the same deadline.
  Raw head(listener->port());
  ASSERT_TRUE(head.Send("POST /keymanagement HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_EQ(StatusOf(head.ReadUntilClosed(kGenerousMs, &closed)), 408);
  EXPECT_TRUE(closed);
}

TEST(ListenerHostile, TrickleDoesNotExtendTheDeadline) {
  // One byte every 50 ms keeps a per-read timeout alive forever; the total
  // deadline (request_timeout_ms from the first byte) still ends it.
  Recorder handler;
  auto listener = Start(SmallConfig(), handler);
  ASSERT_NE(listener, nullptr);
  Raw raw(listener->port());
  ASSERT_TRUE(raw.Send("POST /keymanagement HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"));
  std::string got;
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {  // at most 100 x 50 ms
    raw.Send("A");
    pollfd p{raw.fd(), POLLIN, 0};
    if (poll(&p, 1, 50) > 0) got += raw.ReadUntilClosed(kGenerousMs, &closed);
  }
  EXPECT_TRUE(closed);
  EXPECT_EQ(StatusOf(got), 408) << got;
}

TEST(ListenerHostile, SilentConnectionIsClosed) {
  Recorder handler;
  auto listener = Start(SmallConfig(), handler);
  ASSERT_NE(listener, nullptr);
  Raw raw(listener->port());
  ASSERT_TRUE(raw.ok());
  bool closed = false;
  EXPECT_EQ(raw.ReadUntilClosed(kGenerousMs, &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_EQ(handler.events(ConnectionEvent::kTimedOut), 1);
}

TEST(ListenerHostile, IdleConnectionsDoNotBlockAValidRequest) {
  Recorder handler;
  ListenerConfig config = SmallConfig();
  config.max_connections_per_source = 64;
  config.request_timeout_ms = 20000;  // nothing here is rescued by a deadline
  config.keep_alive_timeout_ms = 20000;
  config.drain_timeout_ms = 100;
  auto listener = Start(config, handler);
  ASSERT_NE(listener, nullptr);
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 20; ++i) {
    idle.push_back(std::make_unique<Raw>(listener->port()));
    ASSERT_TRUE(idle.back()->ok());
  }
  std::vector<std::unique_ptr<HttpClient>> kept;
  for (int i = 0; i < 20; ++i) {
    kept.push_back(std::make_unique<HttpClient>(listener->port()));
    auto reply = kept.back()->Post("/keymanagement", "x", "");
    ASSERT_TRUE(reply.has_value());
    ASSERT_EQ(reply->header("Connection"), "keep-alive");
  }
  // 40 connections held open by clients doing nothing; 2 handler threads.
  HttpClient fresh(listener->port());
  auto reply = fresh.Post("/keymanagement", "hello", "");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "hello");
  fresh.Close();
  idle.clear();
  kept.clear();
  listener->Stop();
}

TEST(ListenerHostile, PerSourceCapIs503AndClose) {
  Recorder handler;
  ListenerConfig config = SmallConfig();
  config.request_timeout_ms = 20000;
  config.drain_timeout_ms = 100;
  auto listener = Start(config, handler);
  ASSERT_NE(listener, nullptr);
  std::vector<std::unique_ptr<Raw>> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<Raw>(listener->port()));
  Raw fifth(listener->port());
  ASSERT_TRUE(fifth.ok());
  bool closed = false;
  const std::string got = fifth.ReadUntilClosed(kGenerousMs, &closed);
  EXPECT_EQ(StatusOf(got), 503) << got;
  EXPECT_TRUE(HasConnectionClose(got)) << got;
  EXPECT_TRUE(closed);
  EXPECT_EQ(handler.events(ConnectionEvent::kRefusedSourceLimit), 1);
  EXPECT_EQ(handler.events(ConnectionEvent::kRefusedListenerLimit), 0);
  // The held connections are served, and one closing frees a slot.
  ASSERT_TRUE(held[0]->Send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(StatusOf(held[0]->ReadUntilClosed(kGenerousMs, &closed)), 204);
  held[0].reset();
  EXPECT_TRUE(Eventually([&] {
    HttpClient client(listener->port());
    auto reply = client.Request("GET", "/");
    return reply.has_value() && reply->status == 204;
  }));
  held.clear();
  listener->Stop();
}

TEST(ListenerHostile, GlobalCapIs503AndCloseAndNotReady) {
  Recorder handler;
  ListenerConfig config = SmallConfig();
  config.request_timeout_ms = 20000;
  config.max_connections = 3;
  config.max_connections_per_source = 100;
  config.drain_timeout_ms = 100;
  auto listener = Start(config, handler);
  ASSERT_NE(listener, nullptr);
  EXPECT_TRUE(listener->Ready());
  std::vector<std::unique_ptr<Raw>> held;
  for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<Raw>(listener->port()));
  EXPECT_TRUE(Eventually([&] { return !listener->Ready(); })) << "Ready() at the connection cap";
  Raw fourth(listener->port());
  bool closed = false;
  const std::string got = fourth.ReadUntilClosed(kGenerousMs, &closed);
  EXPECT_EQ(StatusOf(got), 503) << got;
  EXPECT_TRUE(HasConnectionClose(got)) << got;
  EXPECT_TRUE(closed);
  EXPECT_EQ(handler.events(ConnectionEvent::kRefusedListenerLimit), 1);
  EXPECT_FALSE(listener->Ready());
  held[0].reset();
  EXPECT_TRUE(Eventually([&] { return listener->Ready(); }));
  held.clear();
  listener->Stop();
  EXPECT_FALSE(listener->Ready());
}

TEST(ListenerHostile, LargeBodyGets413NotAReset) {
  // The client writes all of a 1 MB body the server will not read (cap
  // 16 KiB). The server answers 413 at once, shuts its sending side and
  // reads and drops the rest (lingering close, RFC 9112 §9.6), so every
  // write of the client succeeds and it reads the 413, every time. The
  // client writes the rest of the body only after the 413 has arrived (the
  // hardest order: a server that closed at once would answer those writes
  // with a reset, and the client would see a broken pipe).
  Recorder handler(16384);
  ListenerConfig config = SmallConfig();
  config.request_timeout_ms = 5000;
  auto listener = Start(config, handler);
  ASSERT_NE(listener, nullptr);
  const size_t total = size_t{1} << 20;
  const std::string first(size_t{65536}, 'x');
  const std::string rest(total - first.size(), 'x');
  int answered = 0;
  for (int attempt = 0; attempt < 20; ++attempt) {
    Raw raw(listener->port());
    ASSERT_TRUE(raw.ok());
    timeval tv{5, 0};
    setsockopt(raw.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    bool sent = raw.Send("POST /keymanagement HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(total) +
                         "\r\n\r\n" + first);
    pollfd p{raw.fd(), POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, kGenerousMs), 1) << "attempt " << attempt << ": no answer before the body ended";
    int send_errno = 0;
    if (sent) sent = raw.Send(rest);
    if (!sent) send_errno = errno;
    shutdown(raw.fd(), SHUT_WR);
    bool closed = false;
    const std::string got = raw.ReadUntilClosed(kGenerousMs, &closed);
    EXPECT_TRUE(sent) << "attempt " << attempt << ": " << std::strerror(send_errno);
    EXPECT_EQ(StatusOf(got), 413) << "attempt " << attempt << ": " << got;
    EXPECT_TRUE(HasConnectionClose(got));
    EXPECT_TRUE(closed);
    if (sent && StatusOf(got) == 413) ++answered;
  }
  EXPECT_EQ(answered, 20);
}

TEST(ListenerHostile, StopIsBoundedByTheDrainTimeout) {
  Recorder handler;
  ListenerConfig config = SmallConfig();
  config.request_timeout_ms = 60000;  // only the drain timeout can end the slow body
  config.drain_timeout_ms = 300;
  auto listener = Start(config, handler);
  ASSERT_NE(listener, nullptr);
  Raw slow(listener->port());
  // "100 Continue" proves the listener is reading the body before Stop().
  ASSERT_TRUE(slow.Send("POST /keymanagement HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                        "Expect: 100-continue\r\n\r\n"));
  pollfd p{slow.fd(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, kGenerousMs), 1);
  char interim[64] = {};
  ASSERT_GT(recv(slow.fd(), interim, sizeof interim - 1, 0), 0);
  ASSERT_EQ(std::string(interim), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(slow.Send("A"));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    listener->Stop();
    stopped = true;
  });
  const bool in_time = Eventually([&] { return stopped.load(); });
  EXPECT_TRUE(in_time) << "Stop() did not return within " << kGenerousMs << " ms";
  if (!in_time) slow.Close();  // let it finish, so the test can end
  stopper.join();
  bool closed = false;
  slow.ReadUntilClosed(kGenerousMs, &closed);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(testing::ConnectionRefused(listener->port()));
}

// ---- TLS ---------------------------------------------------------------------------------

// A test PKI written to a temporary directory: a CA with a server
// certificate (CN=localhost) and a client certificate; an unknown CA with a
// pinned client certificate, an unpinned one and an expired pinned one.
class TlsFiles {
 public:
  TlsFiles() {
    char pattern[] = "/tmp/tkms-listener-tls-XXXXXX";
    dir_ = mkdtemp(pattern);
    using test_pki::CaSpec;
    using test_pki::IssueCert;
    using test_pki::Key;
    using test_pki::SelfSignedCert;
    using test_pki::SignerSpec;
    const std::string ca_subject = "CN=tkms test TLS CA,O=tkms tests";
    const std::string other_subject = "CN=unknown CA,O=elsewhere";
    ca_ = SelfSignedCert(CaSpec(ca_subject), ca_key_);
    other_ca_ = SelfSignedCert(CaSpec(other_subject), other_ca_key_);
    test_pki::CertSpec server_spec = SignerSpec("CN=localhost,O=tkms tests");
    server_spec.serial = 2;
    server_ = IssueCert(server_spec, server_key_, ca_subject, ca_key_);
    test_pki::CertSpec client_spec = SignerSpec("CN=ue-1,O=tkms tests");
    client_spec.serial = 3;
    client_ = IssueCert(client_spec, client_key_, ca_subject, ca_key_);
    test_pki::CertSpec pinned_spec = SignerSpec("CN=pinned client,O=elsewhere");
    pinned_spec.serial = 4;
    pinned_ = IssueCert(pinned_spec, pinned_key_, other_subject, other_ca_key_);
    test_pki::CertSpec unpinned_spec = SignerSpec("CN=unpinned client,O=elsewhere");
    unpinned_spec.serial = 5;
    unpinned_ = IssueCert(unpinned_spec, unpinned_key_, other_subject, other_ca_key_);
    test_pki::CertSpec expired_spec = SignerSpec("CN=expired pinned client,O=elsewhere");
    expired_spec.serial = 6;
    expired_spec.not_before = "20200101000000";
    expired_spec.not_after = "20210101000000";
    expired_ = IssueCert(expired_spec, expired_key_, other_subject, other_ca_key_);
    Write("ca.pem", ca_.pem);
    Write("client.pem", client_.pem);
    Write("client.key", client_key_.PrivateKeyPem());
    Write("pinned.pem", pinned_.pem);
    Write("pinned.key", pinned_key_.PrivateKeyPem());
    Write("unpinned.pem", unpinned_.pem);
    Write("unpinned.key", unpinned_key_.PrivateKeyPem());
    Write("expired.pem", expired_.pem);
    Write("expired.key", expired_key_.PrivateKeyPem());
  }
  ~TlsFiles() { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::shared_ptr<TlsServer> Server(bool client_auth, bool with_anchor = true) const {
    auto key = test_pki::ParsePrivateKey(server_key_.PrivateKeyPem());
    EXPECT_TRUE(key.ok());
    TlsServerSettings settings;
    settings.chain_der = {server_.der, ca_.der};
    settings.key = std::move(*key);
    if (client_auth) {
      settings.client_auth.required = true;
      if (with_anchor) settings.client_auth.trust_anchors_der = {ca_.der};
      settings.client_auth.pinned = {FingerprintOf(pinned_.der), FingerprintOf(expired_.der)};
    }
    auto credentials = TlsCredentials::Build(std::move(settings));
    EXPECT_TRUE(credentials.ok()) << credentials.error().ToString();
    return std::make_shared<TlsServer>(*credentials);
  }

  const test_pki::Cert& client() const { return client_; }
  const test_pki::Cert& pinned() const { return pinned_; }
  const test_pki::Cert& server() const { return server_; }
  const test_pki::Cert& ca() const { return ca_; }
  std::string ServerKeyPem() const { return server_key_.PrivateKeyPem(); }
  std::string ClientKeyPem() const { return client_key_.PrivateKeyPem(); }

 private:
  void Write(const std::string& name, const std::string& text) { std::ofstream(Path(name)) << text; }

  std::string dir_;
  test_pki::Key ca_key_ = test_pki::Key::Generate();
  test_pki::Key other_ca_key_ = test_pki::Key::Generate();
  test_pki::Key server_key_ = test_pki::Key::Generate();
  test_pki::Key client_key_ = test_pki::Key::Generate();
  test_pki::Key pinned_key_ = test_pki::Key::Generate();
  test_pki::Key unpinned_key_ = test_pki::Key::Generate();
  test_pki::Key expired_key_ = test_pki::Key::Generate();
  test_pki::Cert ca_, other_ca_, server_, client_, pinned_, unpinned_, expired_;
};

class ListenerTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { files_ = new TlsFiles(); }
  static void TearDownTestSuite() {
    delete files_;
    files_ = nullptr;
  }

  void StartTls(bool client_auth, bool with_anchor = true) {
    ListenerConfig config = SmallConfig();
    config.request_timeout_ms = 3000;  // TLS handshakes of subprocesses
    tls_ = files_->Server(client_auth, with_anchor);
    config.tls = tls_;
    listener_ = Start(config, handler_);
    ASSERT_NE(listener_, nullptr);
  }
  std::string Port() const { return std::to_string(listener_->port()); }

  // curl POSTs "hello" to https://localhost:PORT; returns "<body> <status>".
  std::string Curl(const std::string& extra, int* status) {
    return RunCommand("timeout 20 curl -sS --resolve localhost:" + Port() + ":127.0.0.1 --cacert " + files_->Path("ca.pem") +
                   " " + extra + " -o - -w ' %{http_code}' -X POST --data-binary hello 'https://localhost:" + Port() +
                   "/keymanagement?requesttype=ticketrequest'",
               status);
  }
  // openssl s_client against the listener, stdin from `input`.
  std::string SClient(const std::string& options, const std::string& input, int* status) {
    return RunCommand("printf '" + input + "' | timeout 20 openssl s_client -connect 127.0.0.1:" + Port() +
                   " -servername localhost -CAfile " + files_->Path("ca.pem") + " " + options,
               status);
  }
  int HandshakeFailures() { return handler_.events(ConnectionEvent::kTlsHandshakeFailed); }

  static TlsFiles* files_;
  Recorder handler_;
  std::shared_ptr<TlsServer> tls_;
  std::unique_ptr<HttpListener> listener_;
};
TlsFiles* ListenerTls::files_ = nullptr;

TEST_F(ListenerTls, CurlPostsOverHttps) {
  StartTls(false);
  int status = 0;
  const std::string out = Curl("", &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(out, "hello 200");
  ASSERT_EQ(handler_.requests().size(), 1u);
  EXPECT_FALSE(handler_.requests()[0].peer.tls_identity.has_value());
  EXPECT_EQ(HandshakeFailures(), 0);
}

TEST_F(ListenerTls, OnlyTls12WithAeadSuites) {
  StartTls(false);
  int status = 0;
  // TLS 1.2 with the default suites: accepted (an ECDHE-ECDSA AEAD suite).
  std::string out = SClient("-tls1_2", "", &status);
  EXPECT_NE(out.find("TLSv1.2, Cipher is ECDHE-ECDSA-"), std::string::npos) << out;
  EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
  EXPECT_EQ(HandshakeFailures(), 0);
  // TLS 1.1 (allowed on the client side with SECLEVEL=0): refused by the server.
  out = SClient("-tls1_1 -cipher DEFAULT@SECLEVEL=0", "", &status);
  EXPECT_NE(status, 0) << out;
  EXPECT_EQ(out.find("Cipher is ECDHE"), std::string::npos) << out;
  EXPECT_TRUE(Eventually([&] { return HandshakeFailures() == 1; })) << out;
  // TLS 1.2 with a CBC suite only: no shared suite.
  out = SClient("-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA", "", &status);
  EXPECT_NE(status, 0) << out;
  EXPECT_EQ(out.find("Cipher is ECDHE"), std::string::npos) << out;
  EXPECT_TRUE(Eventually([&] { return HandshakeFailures() == 2; })) << out;
}

TEST_F(ListenerTls, RenegotiationIsRefused) {
  StartTls(false);
  int status = 0;
  // "R" at the start of a line asks s_client to renegotiate (stdin must
  // stay open: at its end s_client quits, and -ign_eof turns the commands
  // off), so the test holds s_client's stdin and watches its output.
  const std::string out_path = files_->Path("renegotiation.out");
  FILE* in = popen(("timeout 20 openssl s_client -connect 127.0.0.1:" + Port() + " -servername localhost -CAfile " +
                    files_->Path("ca.pem") + " -tls1_2 > " + out_path + " 2>&1")
                       .c_str(),
                   "w");
  ASSERT_NE(in, nullptr);
  const auto output = [&] {
    std::ifstream file(out_path);
    return std::string(std::istreambuf_iterator<char>(file), {});
  };
  EXPECT_TRUE(Eventually([&] { return output().find("Verify return code: 0 (ok)") != std::string::npos; }))
      << output();
  fputs("R\n", in);
  fflush(in);
  EXPECT_TRUE(Eventually([&] { return output().find("RENEGOTIATING") != std::string::npos; })) << output();
  const bool refused = Eventually([&] { return output().find("no renegotiation") != std::string::npos; });
  pclose(in);
  EXPECT_TRUE(refused) << output();
  (void)status;
}

TEST_F(ListenerTls, ClientCertificates) {
  StartTls(true);
  int status = 0;
  // None: refused.
  std::string out = Curl("", &status);
  EXPECT_NE(status, 0) << out;
  EXPECT_TRUE(Eventually([&] { return HandshakeFailures() == 1; }));
  // Issued by the configured CA: accepted, the handler sees who.
  out = Curl("--cert " + files_->Path("client.pem") + " --key " + files_->Path("client.key"), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(out, "hello 200");
  auto requests = handler_.requests();
  ASSERT_EQ(requests.size(), 1u);
  ASSERT_TRUE(requests[0].peer.tls_identity.has_value());
  EXPECT_NE(requests[0].peer.tls_identity->subject.find("CN=ue-1"), std::string::npos)
      << requests[0].peer.tls_identity->subject;
  EXPECT_EQ(requests[0].peer.tls_identity->certificate_sha256, FingerprintOf(files_->client().der));
  // Pinned, issued by an unknown CA: accepted.
  out = Curl("--cert " + files_->Path("pinned.pem") + " --key " + files_->Path("pinned.key"), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(out, "hello 200");
  requests = handler_.requests();
  ASSERT_EQ(requests.size(), 2u);
  ASSERT_TRUE(requests[1].peer.tls_identity.has_value());
  EXPECT_NE(requests[1].peer.tls_identity->subject.find("CN=pinned client"), std::string::npos);
  EXPECT_EQ(requests[1].peer.tls_identity->certificate_sha256, FingerprintOf(files_->pinned().der));
  // Another certificate of the unknown CA: refused.
  out = Curl("--cert " + files_->Path("unpinned.pem") + " --key " + files_->Path("unpinned.key"), &status);
  EXPECT_NE(status, 0) << out;
  EXPECT_TRUE(Eventually([&] { return HandshakeFailures() == 2; }));
  // Pinned but expired: refused.
  out = Curl("--cert " + files_->Path("expired.pem") + " --key " + files_->Path("expired.key"), &status);
  EXPECT_NE(status, 0) << out;
  EXPECT_TRUE(Eventually([&] { return HandshakeFailures() == 3; }));
  EXPECT_EQ(handler_.requests().size(), 2u);
}

TEST_F(ListenerTls, PinnedCertificatesWithoutACa) {
  StartTls(true, /*with_anchor=*/false);
  int status = 0;
  std::string out = Curl("--cert " + files_->Path("pinned.pem") + " --key " + files_->Path("pinned.key"), &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "hello 200");
  out = Curl("--cert " + files_->Path("expired.pem") + " --key " + files_->Path("expired.key"), &status);
  EXPECT_NE(status, 0) << out;
  out = Curl("--cert " + files_->Path("client.pem") + " --key " + files_->Path("client.key"), &status);
  EXPECT_NE(status, 0) << out;
  EXPECT_EQ(handler_.requests().size(), 1u);
}

TEST_F(ListenerTls, PlaintextOnTheTlsPortIsClosed) {
  StartTls(false);
  HttpClient client(listener_->port());
  ASSERT_TRUE(client.SendRaw("POST /keymanagement HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
  EXPECT_TRUE(client.WaitForClose(kGenerousMs));
  EXPECT_TRUE(Eventually([&] { return HandshakeFailures() == 1; }));
  EXPECT_TRUE(handler_.requests().empty());
  int status = 0;
  const std::string out = Curl("", &status);
  EXPECT_EQ(out, "hello 200");
}

TEST_F(ListenerTls, HeadersNeverMakeAnIdentity) {
  StartTls(false);
  int status = 0;
  const std::string out =
      Curl("-H 'X-SSL-Client-Cert: -----BEGIN CERTIFICATE-----' -H 'X-SSL-Client-S-DN: CN=kms.example.org' "
           "-H 'X-Client-Verify: SUCCESS' -H 'Forwarded: for=192.0.2.7' -H 'X-Forwarded-For: 192.0.2.7' "
           "-H 'X-SSL-Client-Fingerprint: 00'",
           &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(out, "hello 200");
  const auto requests = handler_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_FALSE(requests[0].peer.tls_identity.has_value());
  EXPECT_EQ(requests[0].peer.address.rfind("127.0.0.1:", 0), 0u) << requests[0].peer.address;
  EXPECT_EQ(requests[0].CountHeaders("Forwarded"), 1u);
}

// The credentials refuse what could not work, before any client sees them.
TEST_F(ListenerTls, CredentialsRefuseAKeyThatIsNotTheCertificates) {
  auto other = test_pki::ParsePrivateKey(files_->ClientKeyPem());
  ASSERT_TRUE(other.ok());
  TlsServerSettings settings;
  settings.chain_der = {files_->server().der};
  settings.key = std::move(*other);
  auto built = TlsCredentials::Build(std::move(settings));
  ASSERT_FALSE(built.ok());
  EXPECT_NE(built.error().message().find("does not match the certificate"), std::string::npos)
      << built.error().ToString();

  TlsServerSettings empty;
  auto key = test_pki::ParsePrivateKey(files_->ServerKeyPem());
  ASSERT_TRUE(key.ok());
  empty.key = std::move(*key);
  EXPECT_FALSE(TlsCredentials::Build(std::move(empty)).ok());  // no certificate

  TlsServerSettings no_trust;
  auto key2 = test_pki::ParsePrivateKey(files_->ServerKeyPem());
  ASSERT_TRUE(key2.ok());
  no_trust.chain_der = {files_->server().der};
  no_trust.key = std::move(*key2);
  no_trust.client_auth.required = true;  // neither CAs nor pins
  auto refused = TlsCredentials::Build(std::move(no_trust));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("no CA and no pinned certificate"), std::string::npos);
}

// TlsServer::Replace: new handshakes get the new credentials, a connection
// made before keeps working (certificate rotation without dropping anyone).
TEST_F(ListenerTls, ReplacedCredentialsApplyToNewHandshakesOnly) {
  StartTls(/*client_auth=*/false);
  int status = 0;
  EXPECT_EQ(Curl("", &status), "hello 200");  // no client certificate needed yet
  // A session opened now and kept: openssl s_client with stdin on a FIFO.
  const std::string fifo = files_->Path("rotation.in");
  const std::string out_file = files_->Path("rotation.out");
  std::filesystem::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string cmd = "timeout 30 openssl s_client -ign_eof -connect 127.0.0.1:" + Port() +
                          " -servername localhost -CAfile " + files_->Path("ca.pem") + " < " + fifo + " > " +
                          out_file + " 2>&1 &";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ofstream writer(fifo);  // returns once s_client's shell has opened the read end
  ASSERT_TRUE(writer.good());
  const auto read_out = [&out_file] {
    std::ifstream in(out_file);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  std::string out;
  for (int i = 0; i < 1000 && out.find("Verify return code") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    out = read_out();
  }
  ASSERT_NE(out.find("Verify return code: 0"), std::string::npos) << out;

  // Swap in credentials that require a client certificate.
  tls_->Replace(files_->Server(/*client_auth=*/true)->Current());
  Curl("", &status);
  EXPECT_NE(status, 0) << "a new handshake without a client certificate must fail after the swap";
  EXPECT_EQ(Curl("--cert " + files_->Path("client.pem") + " --key " + files_->Path("client.key"), &status),
            "hello 200");

  // The session opened before the swap still works.
  writer << "POST /keymanagement?requesttype=ticketrequest HTTP/1.1\r\nHost: localhost\r\n"
            "Content-Length: 3\r\nConnection: close\r\n\r\nold"
         << std::flush;
  for (int i = 0; i < 1000 && out.find("\r\n\r\nold") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    out = read_out();
  }
  writer.close();
  EXPECT_NE(out.find("HTTP/1.1 200"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\n\r\nold"), std::string::npos) << out;
}



}  // namespace
}  // namespace tkms::web
