// tkmsd when things go wrong around it: a token that disappears and comes
// back (a real SoftHSM2 token directory moved away), reloads that would make
// things worse, and replays across a restart (RFC 3830 §5.4).
#include <signal.h>

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

}  // namespace
}  // namespace tkms::test
