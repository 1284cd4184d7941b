// ZkPeerClient (firmware/zk/peer_client.h) against real tkms TLS listeners
// (web/transport.h, mutual TLS with the Zk listener's client auth from
// ZkTrust::ListenerClientAuth), on the fixed test world (zk_test_world.h):
// success and connection reuse, server certificates of another CA / for
// another name / pinned, a server that never answers, a refused port with
// its retry pause and the recovery, the concurrency cap, a removed
// relation, metrics. The retry pause runs on a ManualClock; waiting for
// threads uses condition variables, never sleeps.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "firmware/base/encoding.h"
#include "firmware/zk/peer_client.h"
#include "firmware/zk/zk_trust.h"
#include "tests/support/hal_fakes.h"
#include "tests/zk/zk_test_world.h"
#include "web/client/tls_client.h"
#include "web/http_handler.h"
#include "web/tls_server.h"
#include "web/transport.h"

namespace tkms::zk {
namespace {

using testing::kPeerB;
using testing::kPeerC;
using testing::ZkTestWorld;
using Clock = std::chrono::steady_clock;

const ZkTestWorld& World() {
  static const ZkTestWorld world;
  return world;
}

// Answers a Zk resolve: checks the Annex A request, echoes the decoded body
// reversed (so the answer is not the request), as base64. With `hold`, every
// request waits until Release() (a silent or busy peer).
class PeerHandler final : public web::HttpHandler {
 public:
  web::BodyPlan PlanBody(const web::HttpRequest&) override { return web::BodyPlan::Read(65536); }
  web::HttpResponse Handle(const web::HttpRequest& request) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++in_progress_;
      changed_.notify_all();
      changed_.wait(lock, [&] { return !hold_; });
      --in_progress_;
      ++handled_;
      if (request.peer.tls_identity) last_client_der_ = request.peer.tls_identity->certificate_der;
    }
    web::HttpResponse response;
    if (request.method != "POST" || request.target != "/keymanagement?requesttype=ticketresolve" ||
        request.FindHeader("content-type") == nullptr || *request.FindHeader("content-type") != "application/mikey") {
      response.status = 400;
      return response;
    }
    auto decoded = Base64Decode(request.body);
    if (!decoded) {
      response.status = 400;
      return response;
    }
    std::reverse(decoded->begin(), decoded->end());
    response.status = status_;
    response.content_type = "application/mikey";
    response.body = status_ == 200 && garbage_ ? "!!not base64!!" : Base64Encode(*decoded);
    return response;
  }
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = false;
    changed_.notify_all();
  }
  bool WaitInProgress(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return in_progress_ >= n; });
  }
  int handled() {
    std::lock_guard<std::mutex> lock(mu_);
    return handled_;
  }
  std::vector<uint8_t> last_client_der() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_client_der_;
  }
  void set_status(int status) { status_ = status; }
  void set_garbage(bool garbage) { garbage_ = garbage; }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool hold_ = false;
  int in_progress_ = 0;
  int handled_ = 0;
  std::vector<uint8_t> last_client_der_;
  std::atomic<int> status_{200};
  std::atomic<bool> garbage_{false};
};

// A Zk listener of a peer KMS serving `cert` (its key: `key`), demanding
// client certificates as this KMS's (A's) ZkTrust-like rule would: A's CA.
class PeerServer {
 public:
  PeerServer(const test_pki::Cert& cert, const test_pki::Key& key, PeerHandler& handler, uint16_t port = 0) {
    auto pk = test_pki::ParsePrivateKey(key.PrivateKeyPem());
    EXPECT_TRUE(pk.ok());
    web::TlsServerSettings settings;
    settings.chain_der = {cert.der};
    settings.key = std::move(*pk);
    settings.client_auth.required = true;
    settings.client_auth.trust_anchors_der = {World().ca.der};
    auto credentials = web::TlsCredentials::Build(std::move(settings));
    EXPECT_TRUE(credentials.ok()) << credentials.error().ToString();
    web::ListenerConfig config;
    config.name = "Zk test listener";
    config.log_name = "zk-test";
    config.listen = "127.0.0.1:" + std::to_string(port);
    config.threads = 4;
    config.request_timeout_ms = 5000;
    config.keep_alive_timeout_ms = 30000;
    config.drain_timeout_ms = 200;
    config.tls = std::make_shared<web::TlsServer>(*credentials);
    auto started = web::StartListener(config, handler);
    EXPECT_TRUE(started.ok()) << started.error().ToString();
    if (started.ok()) listener_ = std::move(*started);
  }
  uint16_t port() const { return listener_ ? listener_->port() : 0; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port()); }
  void Stop() { listener_->Stop(); }

 private:
  std::unique_ptr<web::HttpListener> listener_;
};

// A TCP port nobody listens on (bound, then closed).
uint16_t RefusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::shared_ptr<web::client::TlsClientConfig> IdentityA() {
  auto key = test_pki::ParsePrivateKey(World().a_key.PrivateKeyPem());
  EXPECT_TRUE(key.ok());
  web::client::TlsClientSettings settings;
  settings.chain_der = {World().a.der};
  settings.key = std::move(*key);
  auto config = web::client::TlsClientConfig::Create(std::move(settings));
  EXPECT_TRUE(config.ok()) << config.error().ToString();
  return config.ok() ? *config : nullptr;
}

std::shared_ptr<const ZkTrust> TrustWith(const std::string& endpoint_b, const std::string& endpoint_c) {
  auto trust = ZkTrust::Build(World().Config(endpoint_b, endpoint_c));
  EXPECT_TRUE(trust.ok()) << trust.error().ToString();
  return trust.ok() ? *trust : nullptr;
}

ZkPeerSettings FastSettings() {
  ZkPeerSettings s;
  s.connect_timeout = std::chrono::milliseconds(2000);
  s.response_timeout = std::chrono::milliseconds(2000);
  s.max_connections_per_peer = 4;
  s.retry_after_failure = std::chrono::milliseconds(60000);  // ManualClock: advanced by hand
  return s;
}

const std::vector<uint8_t> kMessage = {1, 2, 3, 4, 5, 6, 7, 8};
const std::vector<uint8_t> kReversed = {8, 7, 6, 5, 4, 3, 2, 1};

class ZkPeerClientTest : public ::testing::Test {
 protected:
  hal::ManualClock clock_{std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 60))};
  PeerHandler handler_;
};

TEST_F(ZkPeerClientTest, ResolvesAndReusesOneConnection) {
  PeerServer server(World().b, World().b_key, handler_);
  ZkPeerClient client(TrustWith(server.endpoint(), "127.0.0.1:1"), FastSettings(), IdentityA(), &clock_);
  for (int i = 0; i < 5; ++i) {
    auto answer = client.Resolve(kPeerB, kMessage);
    ASSERT_TRUE(answer.ok()) << answer.error().ToString();
    EXPECT_EQ(*answer, kReversed);
  }
  EXPECT_EQ(client.connections_opened(kPeerB), 1u);
  EXPECT_EQ(client.requests(kPeerB, "ok"), 5u);
  EXPECT_EQ(client.idle_connections(kPeerB), 1u);
  // The peer saw this KMS's certificate.
  EXPECT_EQ(handler_.last_client_der(), World().a.der);
  const std::string metrics = client.MetricsText();
  EXPECT_NE(metrics.find("tkms_zk_peer_requests_total{peer=\"sip:kms@b.example.org\",result=\"ok\"} 5\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("tkms_zk_peer_connections_total{peer=\"sip:kms@b.example.org\"} 1\n"), std::string::npos);
  EXPECT_NE(metrics.find("tkms_zk_peer_request_duration_seconds_count{peer=\"sip:kms@b.example.org\"} 5\n"),
            std::string::npos);
  EXPECT_NE(metrics.find("# TYPE tkms_zk_peer_requests_total counter"), std::string::npos);
}

TEST_F(ZkPeerClientTest, StalePooledConnectionIsReplacedOnce) {
  auto server = std::make_unique<PeerServer>(World().b, World().b_key, handler_);
  const uint16_t port = server->port();
  ZkPeerClient client(TrustWith(server->endpoint(), "127.0.0.1:1"), FastSettings(), IdentityA(), &clock_);
  ASSERT_TRUE(client.Resolve(kPeerB, kMessage).ok());
  EXPECT_EQ(client.idle_connections(kPeerB), 1u);
  // The peer restarts: its listener closed the pooled connection.
  server->Stop();
  server = std::make_unique<PeerServer>(World().b, World().b_key, handler_, port);
  ASSERT_EQ(server->port(), port);
  auto answer = client.Resolve(kPeerB, kMessage);
  ASSERT_TRUE(answer.ok()) << answer.error().ToString();
  EXPECT_EQ(*answer, kReversed);
  EXPECT_EQ(client.connections_opened(kPeerB), 2u);
  EXPECT_EQ(client.requests(kPeerB, "ok"), 2u);
}

TEST_F(ZkPeerClientTest, NonOkStatusAndBadBodyAreUnavailable) {
  PeerServer server(World().b, World().b_key, handler_);
  ZkPeerClient client(TrustWith(server.endpoint(), "127.0.0.1:1"), FastSettings(), IdentityA(), &clock_);
  handler_.set_status(503);
  auto answer = client.Resolve(kPeerB, kMessage);
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(answer.error().message().find("HTTP 503"), std::string::npos) << answer.error().message();
  handler_.set_status(200);
  handler_.set_garbage(true);
  answer = client.Resolve(kPeerB, kMessage);
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(client.requests(kPeerB, "http_error"), 1u);
  EXPECT_EQ(client.requests(kPeerB, "bad_response"), 1u);
}

TEST_F(ZkPeerClientTest, ServerOfAnotherCaIsRefused) {
  PeerServer server(World().b_other_ca, World().b_key, handler_);
  ZkPeerClient client(TrustWith(server.endpoint(), "127.0.0.1:1"), FastSettings(), IdentityA(), &clock_);
  auto answer = client.Resolve(kPeerB, kMessage);
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(answer.error().message().find("does not chain to the CA"), std::string::npos) << answer.error().message();
  EXPECT_EQ(handler_.handled(), 0);
  EXPECT_EQ(client.requests(kPeerB, "connect_failed"), 1u);
}

TEST_F(ZkPeerClientTest, RightCaWrongNameIsRefused) {
  PeerServer server(World().b_wrong_name, World().b_key, handler_);
  ZkPeerClient client(TrustWith(server.endpoint(), "127.0.0.1:1"), FastSettings(), IdentityA(), &clock_);
  auto answer = client.Resolve(kPeerB, kMessage);
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(answer.error().message().find("does not name"), std::string::npos) << answer.error().message();
  EXPECT_EQ(handler_.handled(), 0);
}

TEST_F(ZkPeerClientTest, PinnedServerCertificate) {
  PeerServer server(World().c, World().c_key, handler_);
  ZkPeerClient client(TrustWith("127.0.0.1:1", server.endpoint()), FastSettings(), IdentityA(), &clock_);
  auto answer = client.Resolve(kPeerC, kMessage);
  ASSERT_TRUE(answer.ok()) << answer.error().ToString();
  EXPECT_EQ(*answer, kReversed);
  // B's relation pointed at C's server: C's certificate is not B's.
  ZkPeerClient wrong(TrustWith(server.endpoint(), "127.0.0.1:1"), FastSettings(), IdentityA(), &clock_);
  EXPECT_EQ(wrong.Resolve(kPeerB, kMessage).error().code(), StatusCode::kUnavailable);
}

TEST_F(ZkPeerClientTest, SilentServerTimesOutWithinTheResponseTimeout) {
  PeerServer server(World().b, World().b_key, handler_);
  ZkPeerSettings settings = FastSettings();
  settings.response_timeout = std::chrono::milliseconds(300);
  ZkPeerClient client(TrustWith(server.endpoint(), "127.0.0.1:1"), settings, IdentityA(), &clock_);
  handler_.Hold();
  const auto start = Clock::now();
  auto answer = client.Resolve(kPeerB, kMessage);
  const auto elapsed = Clock::now() - start;
  handler_.Release();
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(answer.error().message().find("timed out"), std::string::npos) << answer.error().message();
  EXPECT_GE(elapsed, std::chrono::milliseconds(280));
  EXPECT_LT(elapsed, std::chrono::milliseconds(300 + 2000 + 3000));  // response + connect + slack
  EXPECT_EQ(client.requests(kPeerB, "unavailable"), 1u);
  // Not a connect failure: no retry pause.
  auto again = client.Resolve(kPeerB, kMessage);
  EXPECT_TRUE(again.ok()) << again.error().ToString();
}

TEST_F(ZkPeerClientTest, RefusedPortPausesThenRecovers) {
  const uint16_t port = RefusedPort();
  const std::string endpoint = "127.0.0.1:" + std::to_string(port);
  ZkPeerClient client(TrustWith(endpoint, "127.0.0.1:1"), FastSettings(), IdentityA(), &clock_);
  auto start = Clock::now();
  auto answer = client.Resolve(kPeerB, kMessage);
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().code(), StatusCode::kUnavailable);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(1500));
  EXPECT_EQ(client.requests(kPeerB, "connect_failed"), 1u);
  // In the pause: refused at once, without connecting.
  answer = client.Resolve(kPeerB, kMessage);
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(answer.error().message().find("retry pause"), std::string::npos) << answer.error().message();
  EXPECT_EQ(client.requests(kPeerB, "retry_pause"), 1u);
  // The peer comes back on the same port; after the pause it is used again.
  PeerServer server(World().b, World().b_key, handler_, port);
  ASSERT_EQ(server.port(), port);
  EXPECT_EQ(client.Resolve(kPeerB, kMessage).error().code(), StatusCode::kUnavailable);  // still paused
  clock_.Advance(std::chrono::milliseconds(60001));
  answer = client.Resolve(kPeerB, kMessage);
  ASSERT_TRUE(answer.ok()) << answer.error().ToString();
  EXPECT_EQ(*answer, kReversed);
}

TEST_F(ZkPeerClientTest, ConcurrencyCapRefusesAtOnce) {
  PeerServer server(World().b, World().b_key, handler_);
  ZkPeerSettings settings = FastSettings();
  settings.max_connections_per_peer = 2;
  settings.response_timeout = std::chrono::milliseconds(20000);
  ZkPeerClient client(TrustWith(server.endpoint(), "127.0.0.1:1"), settings, IdentityA(), &clock_);
  handler_.Hold();
  auto first = std::async(std::launch::async, [&] { return client.Resolve(kPeerB, kMessage); });
  auto second = std::async(std::launch::async, [&] { return client.Resolve(kPeerB, kMessage); });
  ASSERT_TRUE(handler_.WaitInProgress(2));
  const auto start = Clock::now();
  auto third = client.Resolve(kPeerB, kMessage);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(500));
  handler_.Release();
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(first.get().ok());
  EXPECT_TRUE(second.get().ok());
  EXPECT_EQ(client.requests(kPeerB, "refused_busy"), 1u);
  EXPECT_EQ(client.idle_connections(kPeerB), 2u);
  // Both slots are free again.
  EXPECT_TRUE(client.Resolve(kPeerB, kMessage).ok());
}

TEST_F(ZkPeerClientTest, UpdateRemovesAndReplacesRelations) {
  PeerServer server(World().b, World().b_key, handler_);
  auto tls = IdentityA();
  ZkPeerClient client(TrustWith(server.endpoint(), "127.0.0.1:1"), FastSettings(), tls, &clock_);
  ASSERT_TRUE(client.Resolve(kPeerB, kMessage).ok());
  EXPECT_EQ(client.idle_connections(kPeerB), 1u);
  // Unchanged relation: the pool stays.
  ASSERT_TRUE(client.Update(TrustWith(server.endpoint(), "127.0.0.1:2"), FastSettings(), tls).ok());
  EXPECT_EQ(client.idle_connections(kPeerB), 1u);
  ASSERT_TRUE(client.Resolve(kPeerB, kMessage).ok());
  EXPECT_EQ(client.connections_opened(kPeerB), 1u);
  // B's relation pinned to its certificate instead of the CA: pool dropped.
  provisioning::KmsConfig config = World().Config(server.endpoint(), "127.0.0.1:1");
  config.trust_relations[0].ca.clear();
  config.trust_relations[0].certificate = World().b.pem;
  auto pinned = ZkTrust::Build(config);
  ASSERT_TRUE(pinned.ok()) << pinned.error().ToString();
  ASSERT_TRUE(client.Update(*pinned, FastSettings(), tls).ok());
  EXPECT_EQ(client.idle_connections(kPeerB), 0u);
  ASSERT_TRUE(client.Resolve(kPeerB, kMessage).ok());
  EXPECT_EQ(client.connections_opened(kPeerB), 2u);
  // Removed: kNotFound, idle connections closed.
  config.trust_relations.erase(config.trust_relations.begin());
  auto without_b = ZkTrust::Build(config);
  ASSERT_TRUE(without_b.ok());
  ASSERT_TRUE(client.Update(*without_b, FastSettings(), tls).ok());
  EXPECT_EQ(client.idle_connections(kPeerB), 0u);
  auto answer = client.Resolve(kPeerB, kMessage);
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().code(), StatusCode::kNotFound);
  EXPECT_EQ(client.Resolve("sip:nobody@example.org", kMessage).error().code(), StatusCode::kNotFound);
  // A bad update keeps the old configuration.
  EXPECT_EQ(client.Update(nullptr, FastSettings(), tls).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client.Resolve(kPeerB, kMessage).error().code(), StatusCode::kNotFound);
}

TEST(ZkTlsClientConfig, RefusesAKeyThatIsNotTheLeafs) {
  auto key = test_pki::ParsePrivateKey(World().b_key.PrivateKeyPem());
  ASSERT_TRUE(key.ok());
  web::client::TlsClientSettings settings;
  settings.chain_der = {World().a.der};
  settings.key = std::move(*key);
  auto config = web::client::TlsClientConfig::Create(std::move(settings));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tkms::zk
