// tkms-bench's engine (tools/bench/bench.h) against the in-test HTTP server:
// echo, request and resolve modes (with and without key forking; resolve
// across two KMSs with --responder-kms), closed and open loop, the percentile
// arithmetic and the configuration checks.
#include "tools/bench/bench.h"

#include <gtest/gtest.h>

#include <atomic>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "tests/ue/fake_kms.h"
#include "tests/ue/test_http_server.h"

namespace tkms::bench {
namespace {

using ue::testing::FakeKms;
using ue::testing::HttpOk;
using ue::testing::ServerReply;
using ue::testing::ServerRequest;
using ue::testing::TestHttpServer;
using ue::testing::Text;

class Bench : public ::testing::Test {
 protected:
  ServerReply Answer(const ServerRequest& req) {
    auto body = Base64Decode(req.body);
    if (!body) return ServerReply{"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"};
    mikey::Bytes answer;
    if (req.target == "/keymanagement?requesttype=ticketrequest") answer = kms_.AnswerRequest(*body);
    else answer = kms_.AnswerResolve(*body);
    return ServerReply{HttpOk(Base64Encode(answer), "application/mikey")};
  }

  BenchConfig Config(const TestHttpServer& server, BenchMode mode) {
    BenchConfig c;
    c.url = server.url();
    c.mode = mode;
    c.duration_s = 0.3;
    c.warmup_s = 0.1;
    c.kms_identity = kms_.id_kms;
    c.initiator = kms_.id_i;
    c.initiator_psk = kms_.psk_i;
    c.responder = kms_.id_r;
    c.responder_psk = kms_.psk_r;
    return c;
  }

  mikey::crypto::TransientCryptoProvider provider_;
  FakeKms kms_{provider_};
};

TEST(BenchStats, NearestRankPercentiles) {
  std::vector<int64_t> ns;
  for (int i = 100; i >= 1; --i) ns.push_back(i * 1'000'000);  // 1..100 ms
  const LatencySummary s = Summarize(ns);
  EXPECT_EQ(s.count, 100u);
  EXPECT_DOUBLE_EQ(s.p50_ms, 50);
  EXPECT_DOUBLE_EQ(s.p95_ms, 95);
  EXPECT_DOUBLE_EQ(s.p99_ms, 99);
  EXPECT_DOUBLE_EQ(s.max_ms, 100);
  EXPECT_DOUBLE_EQ(s.mean_ms, 50.5);
  std::vector<int64_t> one = {7'000'000};
  EXPECT_DOUBLE_EQ(Summarize(one).p99_ms, 7);
  std::vector<int64_t> none;
  EXPECT_EQ(Summarize(none).count, 0u);
}

TEST_F(Bench, EchoModeCountsStatus200) {
  TestHttpServer server([](const ServerRequest& req) {
    return ServerReply{req.body.size() == 200 ? HttpOk("ok") : "HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n"};
  });
  BenchConfig c = Config(server, BenchMode::kEcho);
  c.connections = 2;
  auto r = RunBench(c);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_GT(r->ok, 10u);
  EXPECT_EQ(r->errors, 0u);
  EXPECT_EQ(r->connections_opened, 2u);
  EXPECT_GT(r->latency.p50_ms, 0);
  auto j = nlohmann::json::parse(FormatJson(*r));
  EXPECT_EQ(j["mode"], "echo");
  EXPECT_EQ(j["ok"], r->ok);
  EXPECT_TRUE(j["rate"].is_null());
  EXPECT_NE(FormatText(*r).find("ok/s"), std::string::npos);
}

TEST_F(Bench, EchoModeCountsOtherStatusesByKind) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"};
  });
  auto r = RunBench(Config(server, BenchMode::kEcho));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ok, 0u);
  EXPECT_GT(r->errors_by_kind["http_503"], 0u);
}

TEST_F(Bench, RequestModeVerifiesEveryAnswer) {
  TestHttpServer server([this](const ServerRequest& req) { return Answer(req); });
  auto r = RunBench(Config(server, BenchMode::kRequest));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_GT(r->ok, 5u);
  EXPECT_EQ(r->errors, 0u) << r->first_error;
  EXPECT_EQ(r->connections_opened, 1u);
}

TEST_F(Bench, ResolveModeWithAndWithoutForking) {
  TestHttpServer server([this](const ServerRequest& req) { return Answer(req); });
  for (bool forking : {false, true}) {
    BenchConfig c = Config(server, BenchMode::kResolve);
    c.forking = forking;
    auto r = RunBench(c);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    EXPECT_GT(r->ok, 5u);
    EXPECT_EQ(r->errors, 0u) << r->first_error;
  }
}

// --responder-kms: the ticket from KMS_I (--url), every resolve at KMS_R with
// KMS_R's identity in IDRkms (the second fake verifies the MAC with it).
TEST_F(Bench, CrossDomainResolveAsksTheResponderKms) {
  std::atomic<int> requests_at_i{0}, resolves_at_i{0}, requests_at_r{0};
  TestHttpServer kms_i([&](const ServerRequest& req) {
    if (req.target == "/keymanagement?requesttype=ticketrequest") ++requests_at_i;
    else ++resolves_at_i;
    return Answer(req);
  });
  FakeKms fake_r{provider_};
  fake_r.id_kms = Text("kms.b.example.org");
  TestHttpServer kms_r([&](const ServerRequest& req) {
    auto body = Base64Decode(req.body);
    if (req.target != "/keymanagement?requesttype=ticketresolve" || !body) {
      ++requests_at_r;
      return ServerReply{"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"};
    }
    return ServerReply{HttpOk(Base64Encode(fake_r.AnswerResolve(*body)), "application/mikey")};
  });
  for (bool forking : {false, true}) {
    BenchConfig c = Config(kms_i, BenchMode::kResolve);
    c.forking = forking;
    c.responder_kms_url = kms_r.url();
    c.responder_kms_identity = fake_r.id_kms;
    EXPECT_STREQ(ReportModeName(c), "resolve-cross-domain");
    auto r = RunBench(c);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    EXPECT_GT(r->ok, 5u);
    EXPECT_EQ(r->errors, 0u) << r->first_error;
    auto j = nlohmann::json::parse(FormatJson(*r));
    EXPECT_EQ(j["mode"], "resolve-cross-domain");
    EXPECT_EQ(j["responder_kms_url"], kms_r.url());
    EXPECT_NE(FormatText(*r).find("mode=resolve-cross-domain"), std::string::npos);
    EXPECT_NE(FormatText(*r).find("responder-kms=" + kms_r.url()), std::string::npos);
  }
  EXPECT_EQ(requests_at_i.load(), 2);  // one (reusable) ticket per run
  EXPECT_EQ(resolves_at_i.load(), 0);
  EXPECT_EQ(requests_at_r.load(), 0);
}

TEST_F(Bench, CrossDomainArgumentsAreChecked) {
  TestHttpServer server([this](const ServerRequest& req) { return Answer(req); });
  BenchConfig c = Config(server, BenchMode::kResolve);
  EXPECT_STREQ(ReportModeName(c), "resolve");
  c.responder_kms_url = server.url();  // without its identity
  auto r = RunBench(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("go together"), std::string::npos) << r.error().ToString();
  c.responder_kms_url.clear();
  c.responder_kms_identity = Text("kms.b.example.org");  // identity without the URL
  EXPECT_EQ(RunBench(c).error().code(), StatusCode::kInvalidArgument);
  c = Config(server, BenchMode::kRequest);  // not resolve mode
  c.responder_kms_url = server.url();
  c.responder_kms_identity = Text("kms.b.example.org");
  r = RunBench(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("resolve mode only"), std::string::npos) << r.error().ToString();
  c = Config(server, BenchMode::kResolve);
  c.responder_kms_url = "ftp://kms.b.example.org";
  c.responder_kms_identity = Text("kms.b.example.org");
  r = RunBench(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("--responder-kms"), std::string::npos) << r.error().ToString();
}

TEST_F(Bench, OpenLoopPacesAtTheRate) {
  TestHttpServer server([](const ServerRequest&) { return ServerReply{HttpOk("ok")}; });
  BenchConfig c = Config(server, BenchMode::kEcho);
  c.connections = 2;
  c.rate = 100;
  c.duration_s = 0.5;
  auto r = RunBench(c);
  ASSERT_TRUE(r.ok());
  EXPECT_GE(r->ok, 45u);
  EXPECT_LE(r->ok, 51u);
  auto j = nlohmann::json::parse(FormatJson(*r));
  EXPECT_EQ(j["rate"], 100.0);
}

TEST_F(Bench, MisconfigurationFailsBeforeMeasuring) {
  TestHttpServer server([this](const ServerRequest& req) { return Answer(req); });
  BenchConfig c = Config(server, BenchMode::kRequest);
  c.kms_identity.clear();
  EXPECT_EQ(RunBench(c).error().code(), StatusCode::kInvalidArgument);
  c = Config(server, BenchMode::kResolve);
  c.responder_psk.clear();
  EXPECT_EQ(RunBench(c).error().code(), StatusCode::kInvalidArgument);
  c = Config(server, BenchMode::kRequest);
  c.connections = 0;
  EXPECT_FALSE(RunBench(c).ok());
  c = Config(server, BenchMode::kRequest);
  c.url = "https://x";  // https without a CA file
  EXPECT_FALSE(RunBench(c).ok());
  // A KMS that refuses: the trial request fails with the reason.
  TestHttpServer refusing([](const ServerRequest&) {
    return ServerReply{"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"};
  });
  c = Config(refusing, BenchMode::kRequest);
  auto r = RunBench(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("trial request failed"), std::string::npos) << r.error().ToString();
}

}  // namespace
}  // namespace tkms::bench
