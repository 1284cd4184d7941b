// tkms-ue call against a real tkmsd --dev (SoftHSM2 token behind the
// fault-injection module, demo users alice and bob) on free loopback ports:
// the command runs as its own process (it forks its Responder end-points),
// its exit status and progress lines are checked, and the daemon's metrics
// must show exactly the exchanges the call made.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/tkmsd_process.h"
#include "tools/ue/http_client.h"
#include "tools/ue_cli/call.h"

namespace tkms::test {
namespace {

constexpr const char* kAlice = "sip:alice@example.org";
constexpr const char* kBob = "sip:bob@example.org";

class UeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = dir_.path() + "/state";
    TkmsdProcess::Options o;
    o.args = {"--dev", "--state-dir", state_};
    o.env = {{"TKMS_PKCS11_MODULE", FaultModulePath()}, {"TKMS_FAULT_TRIGGER", dir_.path() + "/fault"}};
    o.work_dir = dir_.path();
    auto p = TkmsdProcess::Start(o);
    ASSERT_TRUE(p.ok()) << p.error().message();
    kms_ = std::move(*p);
  }

  void TearDown() override {
    if (kms_) {
      EXPECT_EQ(kms_->Stop(), 0) << kms_->Log();
    }
  }

  std::string Psk(const std::string& name) const { return state_ + "/ue/" + name + ".psk"; }

  std::pair<int, std::string> Call(const std::string& initiator_psk, const std::string& responder_psk,
                                   std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{TKMS_UE_PATH, "call", "--kms", kms_->ua_url(),
                                  "--initiator", kAlice, "--initiator-psk", initiator_psk,
                                  "--responder", kBob, "--responder-psk", responder_psk,
                                  "--packets", "5"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv);
  }

  double Metric(const std::string& series) {
    ue::HttpClient admin("127.0.0.1", kms_->admin_port());
    auto r = admin.Get("/metrics");
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return -1;
    std::istringstream in(r->body);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    }
    return 0;
  }

  TempDir dir_;
  std::string state_;
  std::unique_ptr<TkmsdProcess> kms_;
};

TEST_F(UeCliTest, PlainCallSucceeds) {
  auto [code, out] = Call(Psk("alice"), Psk("bob"));
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("initiator: ticket granted"), std::string::npos) << out;
  EXPECT_NE(out.find("responder 1: TRANSFER_INIT verified"), std::string::npos) << out;
  EXPECT_NE(out.find("initiator: TRANSFER_RESP of responder 1 verified"), std::string::npos) << out;
  EXPECT_NE(out.find("initiator: wrong-key check: responder 1 packet refused with auth_fail"), std::string::npos) << out;
  EXPECT_NE(out.find("responder 1: wrong-key check: initiator packet refused with auth_fail"), std::string::npos) << out;
  EXPECT_NE(out.find("initiator: received and decrypted 5 SRTP packets from responder 1"), std::string::npos) << out;
  EXPECT_NE(out.find("responder 1: received and decrypted 5 SRTP packets from initiator"), std::string::npos) << out;
  EXPECT_NE(out.find("call: keys agree"), std::string::npos) << out;
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketrequest\",outcome=\"ok\"}"), 1);
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketresolve\",outcome=\"ok\"}"), 1);
}

TEST_F(UeCliTest, WrongResponderPskFails) {
  auto [code, out] = Call(Psk("alice"), Psk("alice"));
  EXPECT_NE(code, 0) << out;
  EXPECT_EQ(out.find("call: keys agree"), std::string::npos) << out;
  EXPECT_NE(out.find("responder 1: FAILED"), std::string::npos) << out;
}

TEST_F(UeCliTest, InitiatorWithBobsPskFails) {
  auto [code, out] = Call(Psk("bob"), Psk("bob"));
  EXPECT_NE(code, 0) << out;
  EXPECT_EQ(out.find("call: keys agree"), std::string::npos) << out;
  EXPECT_EQ(out.find("initiator: ticket granted"), std::string::npos) << out;
}

TEST_F(UeCliTest, ForkingWithTwoEndPointsSucceeds) {
  auto [code, out] = Call(Psk("alice"), Psk("bob"), {"--forking", "--fork", "2"});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("(forking: I flag)"), std::string::npos) << out;
  EXPECT_NE(out.find("responder 2: ticket resolved by the KMS (forked keys)"), std::string::npos) << out;
  EXPECT_NE(out.find("refused with responder 2's keys too"), std::string::npos) << out;
  EXPECT_NE(out.find("refused with responder 1's keys too"), std::string::npos) << out;
  EXPECT_NE(out.find("initiator: received and decrypted 5 SRTP packets from responder 2"), std::string::npos) << out;
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketresolve\",outcome=\"ok\"}"), 2);
}

TEST_F(UeCliTest, ForkWithoutForkingIsRefused) {
  auto [code, out] = Call(Psk("alice"), Psk("bob"), {"--fork", "2"});
  EXPECT_NE(code, 0) << out;
}

TEST_F(UeCliTest, OfferAnswerFinishOverFiles) {
  const std::string offer = dir_.path() + "/offer.sdp", answer = dir_.path() + "/answer.sdp";
  const std::string state = dir_.path() + "/call.state";
  auto [oc, oout] = RunCommand({TKMS_UE_PATH, "offer", "--kms", kms_->ua_url(), "--initiator", kAlice,
                                "--initiator-psk", Psk("alice"), "--responder", kBob, "--sdp-out", offer,
                                "--state-out", state});
  ASSERT_EQ(oc, 0) << oout;
  struct stat st {};
  ASSERT_EQ(::stat(state.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream sdp_in(offer);
  std::string sdp((std::istreambuf_iterator<char>(sdp_in)), std::istreambuf_iterator<char>());
  EXPECT_NE(sdp.find("a=key-mgmt:mikey "), std::string::npos);
  EXPECT_NE(sdp.find("m=audio 49170 RTP/SAVP 0"), std::string::npos);

  auto [ac, aout] = RunCommand({TKMS_UE_PATH, "answer", "--kms", kms_->ua_url(), "--responder", kBob,
                                "--responder-psk", Psk("bob"), "--sdp-in", offer, "--sdp-out", answer});
  ASSERT_EQ(ac, 0) << aout;
  auto [fc, fout] = RunCommand({TKMS_UE_PATH, "finish", "--state", state, "--initiator-psk", Psk("alice"),
                                "--sdp-in", answer});
  ASSERT_EQ(fc, 0) << fout;
  EXPECT_NE(fout.find("finish: TRANSFER_RESP verified"), std::string::npos) << fout;
  // Both sides report the same crypto sessions (CS IDs, SSRCs, SPIs).
  auto cs_lines = [](const std::string& text, const std::string& who) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(who + ": cs ", 0) == 0) lines.push_back(line.substr(who.size()));
    }
    return lines;
  };
  EXPECT_EQ(cs_lines(aout, "answer").size(), 2u) << aout;
  EXPECT_EQ(cs_lines(aout, "answer"), cs_lines(fout, "finish")) << aout << fout;
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketrequest\",outcome=\"ok\"}"), 1);
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketresolve\",outcome=\"ok\"}"), 1);

  // The state file holds no key: finish with another PSK fails, and a second
  // offer does not overwrite the state.
  auto [wc, wout] = RunCommand({TKMS_UE_PATH, "finish", "--state", state, "--initiator-psk", Psk("bob"),
                                "--sdp-in", answer});
  EXPECT_NE(wc, 0) << wout;
  auto [rc, rout] = RunCommand({TKMS_UE_PATH, "offer", "--kms", kms_->ua_url(), "--initiator", kAlice,
                                "--initiator-psk", Psk("alice"), "--responder", kBob, "--sdp-out", offer,
                                "--state-out", state});
  EXPECT_NE(rc, 0) << rout;
}

TEST_F(UeCliTest, AnswerWithWrongPskFails) {
  const std::string offer = dir_.path() + "/offer.sdp", answer = dir_.path() + "/answer.sdp";
  auto [oc, oout] = RunCommand({TKMS_UE_PATH, "offer", "--kms", kms_->ua_url(), "--initiator", kAlice,
                                "--initiator-psk", Psk("alice"), "--responder", kBob, "--sdp-out", offer,
                                "--state-out", dir_.path() + "/call.state"});
  ASSERT_EQ(oc, 0) << oout;
  auto [ac, aout] = RunCommand({TKMS_UE_PATH, "answer", "--kms", kms_->ua_url(), "--responder", kBob,
                                "--responder-psk", Psk("alice"), "--sdp-in", offer, "--sdp-out", answer});
  EXPECT_NE(ac, 0) << aout;
}

TEST(UeCliDefaults, KmsIdentity) {
  EXPECT_EQ(*ue_cli::DefaultKmsIdentity("http://127.0.0.1:8080"), "kms.example.org");
  EXPECT_EQ(*ue_cli::DefaultKmsIdentity("http://localhost:8080"), "kms.example.org");
  EXPECT_EQ(*ue_cli::DefaultKmsIdentity("http://kms.operator.net:80"), "kms.operator.net");
  EXPECT_FALSE(ue_cli::DefaultKmsIdentity("ftp://x").ok());
}

}  // namespace
}  // namespace tkms::test
