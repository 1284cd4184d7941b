// tkmsd when things go wrong around it: a token that disappears and comes
// back (a real SoftHSM2 token directory moved away), reloads that would make
// things worse, and replays across a restart (RFC 3830 §5.4).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "tests/integration/tkmsd_fixture.h"
#include "tools/ue/ticket_client.h"

namespace tkms::test {
namespace {

using namespace std::chrono_literals;

class TkmsdResilienceTest : public TkmsdTest {
 protected:
  // Sends a REQUEST_INIT_PSK's exact bytes and decodes the answer's error
  // number (-1 for a REQUEST_RESP).
  int SendRaw(const Bytes& message) {
    auto r = Post("/keymanagement?requesttype=ticketrequest", "application/mikey", Base64Encode(message));
    EXPECT_EQ(r.status, 200) << r.body;
    auto bytes = Base64Decode(r.body.substr(0, r.body.find_last_not_of("\r\n") + 1));
    if (!bytes) return -2;
    auto m = mikey::Decode(*bytes, mikey::DecodeOptions{{}, false});
    if (!m.ok()) return -2;
    for (const auto& p : m->payloads) {
      if (const auto* e = std::get_if<mikey::ErrPayload>(&p)) return e->error_no;
    }
    return -1;
  }

  void Reload() {
    const size_t before = CountOf("event=reload");
    kms_->Signal(SIGHUP);
    ASSERT_TRUE(WaitFor([&] { return CountOf("event=reload") > before; })) << kms_->Log();
  }

  size_t CountOf(std::string_view text) {
    const std::string log = kms_->Log();
    size_t n = 0;
    for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
    return n;
  }
};

TEST_F(TkmsdResilienceTest, TokenDirectoryThatDisappearsAndReturns) {
  ExpectServing();
  const std::string tokens = state_ + "/tokens";
  const std::string away = state_ + "/tokens.away";
  std::filesystem::rename(tokens, away);
  // The monitor notices: not ready, and requests get 503 (not "Auth failure").
  ASSERT_TRUE(WaitFor([&] { return ReadyzStatus() == 503; })) << kms_->Log();
  auto refused = Client().RequestTicket(AliceRequest());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, UeErrorKind::kHttpStatus) << refused.error().ToString();
  EXPECT_EQ(refused.error().http_status, 503);
  // A reload while the token is away is refused; the users stay.
  Reload();
  EXPECT_TRUE(LogHas("event=reload_refused")) << kms_->Log();
  EXPECT_EQ(Metric("tkms_users"), 2);
  // The token comes back: the KMS recovers by itself.
  std::filesystem::rename(away, tokens);
  ASSERT_TRUE(WaitFor([&] { return ReadyzStatus() == 200; })) << kms_->Log();
  ExpectServing();
  EXPECT_EQ(Metric("tkms_users"), 2);
}

TEST_F(TkmsdResilienceTest, ReloadThatWouldLoseConfiguredUsersIsRefused) {
  // Config mode naming both users; bob's PSK is then removed from the token.
  ASSERT_EQ(kms_->Stop(), 0);
  kms_.reset();
  const std::string config = dir_.path() + "/tkmsd.json";
  std::ofstream(config) << nlohmann::json{
      {"kms_identity", kKmsId},
      {"token_users", false},
      {"users", {{{"identities", {kAlice}}}, {{"identities", {kBob}}}}},
      {"token", {{"module_path", FaultModulePath()}, {"token", "tkms"}, {"pin_file", state_ + "/token.pin"},
                 {"softhsm2_conf", state_ + "/softhsm2.conf"}, {"health_check_interval_ms", 100}}}}
                               .dump(2);
  Start({"--config", config});
  ExpectServing();
  auto [rc, out] = RunCommand({TkmsctlPath(), "user", "remove", kBob, "--state-dir", state_, "--pin-file",
                               state_ + "/token.pin"},
                              {{"TKMS_PKCS11_MODULE", FaultModulePath()}, {"TKMS_FAULT_TRIGGER", FaultFile()}});
  ASSERT_EQ(rc, 0) << out;
  Reload();
  EXPECT_TRUE(LogHas("event=reload_refused")) << kms_->Log();
  EXPECT_TRUE(LogHas(kBob)) << kms_->Log();
  EXPECT_EQ(Metric("tkms_users"), 2);
  // alice is still served.
  auto grant = Client().RequestTicket(AliceRequest());
  EXPECT_TRUE(grant.ok()) << grant.error().ToString();
  // The operator removes bob from the configuration too: the reload is taken.
  std::ofstream(config) << nlohmann::json{
      {"kms_identity", kKmsId},
      {"token_users", false},
      {"users", {{{"identities", {kAlice}}}}},
      {"token", {{"module_path", FaultModulePath()}, {"token", "tkms"}, {"pin_file", state_ + "/token.pin"},
                 {"softhsm2_conf", state_ + "/softhsm2.conf"}}}}
                               .dump(2);
  Reload();
  EXPECT_TRUE(WaitFor([&] { return Metric("tkms_users") == 1; })) << kms_->Log();
}

TEST_F(TkmsdResilienceTest, RequestFromBeforeARestartIsRefused) {
  // A request accepted before the restart is still inside the 60 s window
  // after it, but the restarted KMS's replay cache is empty: it refuses
  // anything timestamped before its start (whole seconds).
  const auto sent = std::chrono::system_clock::now();
  ue::RequestInitParams p = AliceRequest();
  p.timestamp.value = ue::NtpUtcFromUnixNanos(
      std::chrono::duration_cast<std::chrono::nanoseconds>(sent.time_since_epoch()).count());
  auto request = ue::BuildRequestInitPsk(provider_, p);
  ASSERT_TRUE(request.ok()) << request.error().ToString();
  EXPECT_EQ(SendRaw(request->bytes), -1);
  EXPECT_EQ(SendRaw(request->bytes), 1);  // a replay: Invalid TS
  ASSERT_EQ(kms_->Stop(), 0);
  kms_.reset();
  using std::chrono::floor;
  ASSERT_TRUE(WaitFor([&] { return floor<std::chrono::seconds>(std::chrono::system_clock::now()) >
                                   floor<std::chrono::seconds>(sent); }));
  StartDev();
  EXPECT_EQ(SendRaw(request->bytes), 1);
  EXPECT_EQ(Metric("tkms_refusals_total{refusal=\"before_start\"}"), 1);
  ExpectServing();  // fresh requests are served
}

// SIGTERM with a client stuck in the middle of a request body: tkmsd stops
// accepting, gives the request until http.drain_timeout_ms (default 5 s),
// then closes it and exits 0 — an attacker cannot hold the shutdown.
TEST_F(TkmsdResilienceTest, SigtermIsNotHeldBySlowClients) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(kms_->ua_port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
  const std::string head =
      "POST /keymanagement?requesttype=ticketrequest HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/mikey\r\nContent-Length: 200\r\n\r\nA";
  ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(kms_->Stop(), 0) << kms_->Log();  // Stop() gives up (and fails) after 20 s
  const auto took = std::chrono::steady_clock::now() - start;
  // drain_timeout_ms is 5 s; the client alone would hold it until request_timeout_ms (10 s).
  EXPECT_LT(took, 9s) << "the drain must be bounded by drain_timeout_ms, not by the client";
  EXPECT_NE(kms_->Log().find("event=stopped"), std::string::npos);
  ::close(fd);
  StartDev();  // the fixture's TearDown stops a running tkmsd and checks its log
}

}  // namespace
}  // namespace tkms::test
