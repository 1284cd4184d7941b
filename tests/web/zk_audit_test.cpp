// The Zk listener's audit line (web/ua_handler.cpp; docs/zk.md "Metrics and
// logs"; issue 14, docs/reliability.md "Disk faults"): written before the
// answer leaves; an answer whose line cannot be written is withheld (503, no
// MIKEY bytes), counted in tkms_audit_write_failures_total{record="zk_request"}
// and tkms_zk_requests_total{result="unavailable"}. The Ua listener's request
// lines are not audit records: a failing log does not stop them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "firmware/base/log.h"
#include "tests/web/fake_service.h"
#include "web/http_framing.h"
#include "web/metrics.h"
#include "web/ua_handler.h"

namespace tkms::web {
namespace {

using testing::FakeKmsService;

HttpRequest ZkRequest() {
  HttpRequest r;
  r.id = "r-zk-1";
  r.method = "POST";
  r.target = "/keymanagement?requesttype=ticketresolve";
  r.version = "1.1";
  r.headers = {{"Content-Type", "application/mikey"}, {"Content-Length", "8"}};
  r.framing = DecideBodyFraming(r.headers);
  r.peer.address = "192.0.2.7:4242";
  r.peer.tls_identity = PeerIdentity{};
  r.peer.tls_identity->subject = "CN=li-probe";
  r.received = std::chrono::steady_clock::now();
  r.body_state = BodyState::kComplete;
  r.body = "AQID/w==";
  return r;
}

class ZkAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    ASSERT_EQ(::pipe2(fds_, O_NONBLOCK), 0);
    SetLogFd(fds_[1]);
  }
  void TearDown() override {
    SetLogFd(2);
    if (fds_[0] >= 0) ::close(fds_[0]);
    ::close(fds_[1]);
  }
  std::string Drain() {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds_[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  void BreakTheLog() {
    ::close(fds_[0]);  // the reader is gone: every write is EPIPE
    fds_[0] = -1;
  }

  int fds_[2] = {-1, -1};
  FakeKmsService service_;
  Metrics metrics_;
  std::atomic<bool> stopping_{false};
  UaHandler zk_{64, service_, metrics_, stopping_, [](const PeerIdentity&) {
                  return ZkAuthorization{kms::ZkClientKind::kNetworkFunction, "li-probe", ""};
                }};
  UaHandler ua_{64, service_, metrics_, stopping_};
};

TEST_F(ZkAuditTest, TheLineIsWrittenBeforeTheAnswerLeaves) {
  HttpResponse response = zk_.Handle(ZkRequest());
  EXPECT_EQ(response.status, 200);
  // Nothing was sent yet, the line is already there.
  const std::string log = Drain();
  EXPECT_NE(log.find("event=zk_request audit=1 id=r-zk-1 "), std::string::npos) << log;
  EXPECT_NE(log.find("client=li-probe"), std::string::npos) << log;
  EXPECT_NE(log.find("status=200"), std::string::npos) << log;
  if (response.on_written) response.on_written(true);
  EXPECT_EQ(Drain().find("zk_request"), std::string::npos);  // once
  EXPECT_EQ(metrics_.zk_requests(Metrics::ZkClient::kNetworkFunction, Metrics::ZkResult::kOk), 1u);
}

TEST_F(ZkAuditTest, AnUnwritableLineWithholdsTheAnswer) {
  BreakTheLog();
  const uint64_t failures = AuditWriteFailures(AuditRecord::kZkRequest);
  HttpResponse response = zk_.Handle(ZkRequest());
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body, "KMS cannot write its audit record\n");
  EXPECT_NE(response.content_type, "application/mikey");
  bool retry_after = false;
  for (const auto& [name, value] : response.extra_headers) retry_after |= name == "Retry-After" && value == "1";
  EXPECT_TRUE(retry_after);
  EXPECT_EQ(AuditWriteFailures(AuditRecord::kZkRequest), failures + 1);
  EXPECT_EQ(metrics_.zk_requests(Metrics::ZkClient::kNetworkFunction, Metrics::ZkResult::kUnavailable), 1u);
  EXPECT_EQ(metrics_.zk_requests(Metrics::ZkClient::kNetworkFunction, Metrics::ZkResult::kOk), 0u);
  const std::string text = metrics_.RenderPrometheus();
  EXPECT_NE(text.find("tkms_audit_write_failures_total{record=\"zk_request\"} "), std::string::npos) << text;
  EXPECT_NE(text.find("tkms_log_write_failures_total "), std::string::npos) << text;
}

TEST_F(ZkAuditTest, UaRequestLinesAreNotAuditRecords) {
  BreakTheLog();
  const uint64_t lost = LogWriteFailures();
  HttpResponse response = ua_.Handle(ZkRequest());
  EXPECT_EQ(response.status, 200);  // served
  EXPECT_EQ(response.content_type, "application/mikey");
  ASSERT_TRUE(response.on_written);
  response.on_written(true);  // the request line: lost, counted, no throw
  EXPECT_EQ(LogWriteFailures(), lost + 1);
}

}  // namespace
}  // namespace tkms::web
