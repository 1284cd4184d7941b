// tkms-ue call against a real tkmsd --dev (SoftHSM2 token behind the
// fault-injection module, demo users alice and bob) on free loopback ports:
// the command runs as its own process (it forks its Responder end-points),
// its exit status and progress lines are checked, and the daemon's metrics
// must show exactly the exchanges the call made.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/tkmsd_process.h"
#include "tools/ue/http_client.h"
#include "tools/ue_cli/call.h"

namespace tkms::test {
namespace {

constexpr const char* kAlice = "sip:alice@example.org";
constexpr const char* kBob = "sip:bob@example.org";
constexpr const char* kTeam = "sip:team@example.org";

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

  // tkms-ue with stderr merged into the output (the failure reasons).
  std::pair<int, std::string> Ue(std::vector<std::string> args) {
    std::vector<std::string> argv{"/bin/sh", "-c", "exec \"$@\" 2>&1", "sh", TKMS_UE_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = RunCommand(argv);
    // UE_CLI_TEST_VERBOSE=1: show every run's output (exit status, reasons).
    if (std::getenv("UE_CLI_TEST_VERBOSE") != nullptr) {
      std::fprintf(stderr, "tkms-ue %s -> %d\n%s", args.empty() ? "" : args[0].c_str(), result.first,
                   result.second.c_str());
    }
    return result;
  }

  // tkms-ue call from alice to `responder`, answered with `responder_psk`.
  std::pair<int, std::string> CallTo(const std::string& responder, const std::string& responder_psk,
                                     std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"call", "--kms", kms_->ua_url(), "--initiator", kAlice, "--initiator-psk",
                                  Psk("alice"), "--responder", responder, "--responder-psk", responder_psk,
                                  "--packets", "3"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Ue(args);
  }

  std::pair<int, std::string> Offer(const std::string& sdp, const std::string& state,
                                    std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"offer", "--kms", kms_->ua_url(), "--initiator", kAlice, "--initiator-psk",
                                  Psk("alice"), "--responder", kBob, "--sdp-out", sdp, "--state-out", state};
    args.insert(args.end(), extra.begin(), extra.end());
    return Ue(args);
  }
  std::pair<int, std::string> Answer(const std::string& offer, const std::string& answer) {
    return Ue({"answer", "--kms", kms_->ua_url(), "--responder", kBob, "--responder-psk", Psk("bob"), "--sdp-in",
               offer, "--sdp-out", answer});
  }
  std::pair<int, std::string> Finish(const std::string& state, const std::string& answer) {
    return Ue({"finish", "--state", state, "--initiator-psk", Psk("alice"), "--sdp-in", answer});
  }

  // The dev token served from a --config file with the group sip:team = {bob}.
  void RestartWithGroup() {
    ASSERT_EQ(kms_->Stop(), 0) << kms_->Log();
    kms_.reset();
    const std::string config = dir_.path() + "/tkmsd.json";
    std::ofstream(config) << nlohmann::json{
        {"kms_identity", "kms.example.org"},
        {"token", {{"module_path", FaultModulePath()}, {"token", "tkms"}, {"pin_file", state_ + "/token.pin"},
                   {"softhsm2_conf", state_ + "/softhsm2.conf"}}},
        {"groups", {{{"identity", kTeam}, {"members", {kBob}}}}}}.dump(2);
    TkmsdProcess::Options o;
    o.args = {"--config", config};
    o.env = {{"TKMS_PKCS11_MODULE", FaultModulePath()}, {"TKMS_FAULT_TRIGGER", dir_.path() + "/fault"}};
    o.work_dir = dir_.path();
    auto p = TkmsdProcess::Start(o);
    ASSERT_TRUE(p.ok()) << p.error().message();
    kms_ = std::move(*p);
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

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Replaces one base64 character of the a=key-mgmt:mikey value by another
// valid one: the value still decodes as base64, to other bytes. `from_end` 0:
// the middle character (here, a length inside the message); 12: a character
// inside the last 9 bytes, i.e. the V payload's MAC (the message still
// parses; only the MAC check can catch it).
void TamperKeyMgmt(const std::string& path, size_t from_end) {
  std::string sdp = ReadAll(path);
  const std::string tag = "a=key-mgmt:mikey ";
  const size_t start = sdp.find(tag);
  ASSERT_NE(start, std::string::npos) << sdp;
  const size_t b64 = start + tag.size();
  const size_t end = sdp.find_first_of("\r\n", b64);
  ASSERT_NE(end, std::string::npos);
  ASSERT_GT(end - b64, 2 * from_end);
  const size_t mid = from_end == 0 ? b64 + (end - b64) / 2 : end - from_end;
  sdp[mid] = sdp[mid] == 'A' ? 'B' : 'A';
  std::ofstream(path, std::ios::trunc) << sdp;
}

constexpr const char* kRequestOk = "tkms_requests_total{type=\"ticketrequest\",outcome=\"ok\"}";
constexpr const char* kResolveOk = "tkms_requests_total{type=\"ticketresolve\",outcome=\"ok\"}";

TEST_F(UeCliTest, ReusableTicketServesTwoCalls) {
  auto [code, out] = CallTo(kBob, Psk("bob"), {"--calls", "2"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("(reusable: J flag)"), std::string::npos) << out;
  EXPECT_NE(out.find("initiator: call 2 of 2"), std::string::npos) << out;
  // One TRANSFER_INIT per call, each with its own CSB ID.
  std::set<std::string> csb_ids;
  const std::regex sent("initiator: TRANSFER_INIT sent in the SDP offer \\(CSB ID ([0-9]+),");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), sent); it != std::sregex_iterator(); ++it) {
    csb_ids.insert((*it)[1].str());
  }
  EXPECT_EQ(csb_ids.size(), 2u) << out;
  size_t media = 0;
  for (size_t at = 0; (at = out.find("initiator: received and decrypted 3 SRTP packets from responder 1", at)) !=
                      std::string::npos;
       ++at) {
    ++media;
  }
  EXPECT_EQ(media, 2u) << out;
  EXPECT_EQ(Metric(kRequestOk), 1);
  EXPECT_EQ(Metric(kResolveOk), 2);
}

TEST_F(UeCliTest, GroupTicketAnsweredByAMember) {
  RestartWithGroup();
  auto [code, out] = CallTo(kTeam, Psk("bob"), {"--responder-identity", kBob});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("initiator: ticket granted by the KMS for sip:team@example.org"), std::string::npos) << out;
  EXPECT_NE(out.find("call: keys agree"), std::string::npos) << out;
  // alice is not a member of the group.
  auto [acode, aout] = CallTo(kTeam, Psk("alice"), {"--responder-identity", kAlice});
  EXPECT_NE(acode, 0) << aout;
  EXPECT_NE(aout.find("ticket resolve failed: mikey_error: MIKEY error"), std::string::npos) << aout;
  EXPECT_EQ(aout.find("call: keys agree"), std::string::npos) << aout;
}

TEST_F(UeCliTest, ResponderKmsGivenExplicitly) {
  auto [code, out] = CallTo(kBob, Psk("bob"), {"--responder-kms", kms_->ua_url(), "--responder-kms-identity",
                                               "kms.example.org"});
  EXPECT_EQ(code, 0) << out;
  auto [wcode, wout] = CallTo(kBob, Psk("bob"), {"--responder-kms", kms_->ua_url(), "--responder-kms-identity",
                                                 "kms.other.example.org"});
  EXPECT_NE(wcode, 0) << wout;
  EXPECT_NE(wout.find("ticket resolve failed"), std::string::npos) << wout;
}

TEST_F(UeCliTest, WrongInitiatorPskFailsAtTheTicketRequest) {
  // alice's request MACed with bob's PSK.
  auto [code, out] = Ue({"call", "--kms", kms_->ua_url(), "--initiator", kAlice, "--initiator-psk", Psk("bob"),
                         "--responder", kBob, "--responder-psk", Psk("bob"), "--packets", "3"});
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("ticket request failed"), std::string::npos) << out;
  EXPECT_EQ(Metric(kResolveOk), 0);
}

TEST_F(UeCliTest, TicketForSomeoneElseIsRefused) {
  // bob's ticket, answered by alice with her own PSK.
  auto [code, out] = CallTo(kBob, Psk("alice"), {"--responder-identity", kAlice});
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("ticket resolve failed: mikey_error: MIKEY error"), std::string::npos) << out;
  EXPECT_EQ(Metric(kResolveOk), 0);
}

TEST_F(UeCliTest, ExpiredTicketIsRefused) {
  const std::string d = dir_.path();
  // A lifetime within reach works (finish rebuilds the request with its TRe).
  auto [oc, oout] = Offer(d + "/live.sdp", d + "/live.state", {"--ticket-lifetime", "60"});
  ASSERT_EQ(oc, 0) << oout;
  auto [ac, aout] = Answer(d + "/live.sdp", d + "/live-answer.sdp");
  ASSERT_EQ(ac, 0) << aout;
  auto [fc, fout] = Finish(d + "/live.state", d + "/live-answer.sdp");
  ASSERT_EQ(fc, 0) << fout;

  auto [ec, eout] = Offer(d + "/old.sdp", d + "/old.state", {"--ticket-lifetime", "1"});
  ASSERT_EQ(ec, 0) << eout;
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  // The responder rejects the expired ticket itself, before asking the KMS
  // (RFC 6043 §4.2.2.2); the KMS's own refusal (MIKEY error 14) is covered by
  // tkmsd_integration_test.ExpiredTicketIsRefused.
  const double resolves_before = Metric(kResolveOk);
  auto [xc, xout] = Answer(d + "/old.sdp", d + "/old-answer.sdp");
  EXPECT_NE(xc, 0) << xout;
  EXPECT_NE(xout.find("rejected before resolving: the ticket has expired"), std::string::npos) << xout;
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketresolve\",outcome=\"mikey_error\"}"), 0);
  EXPECT_EQ(Metric(kResolveOk), resolves_before);
}

TEST_F(UeCliTest, TamperedTransferInitIsRefused) {
  const std::string d = dir_.path();
  auto [oc, oout] = Offer(d + "/offer.sdp", d + "/call.state");
  ASSERT_EQ(oc, 0) << oout;
  const std::string pristine = ReadAll(d + "/offer.sdp");
  TamperKeyMgmt(d + "/offer.sdp", 0);
  auto [ac, aout] = Answer(d + "/offer.sdp", d + "/answer.sdp");
  EXPECT_NE(ac, 0) << aout;
  EXPECT_NE(aout.find("answer failed"), std::string::npos) << aout;
  // The same offer with only its MAC changed: the ticket resolves, the
  // TRANSFER_INIT's MAC does not verify.
  std::ofstream(d + "/offer.sdp", std::ios::trunc) << pristine;
  TamperKeyMgmt(d + "/offer.sdp", 12);
  auto [mc, mout] = Answer(d + "/offer.sdp", d + "/answer.sdp");
  EXPECT_NE(mc, 0) << mout;
  EXPECT_NE(mout.find("ticket resolved by the KMS"), std::string::npos) << mout;
  EXPECT_NE(mout.find("answer failed: PERMISSION_DENIED: TRANSFER_INIT refused"), std::string::npos) << mout;
}

TEST_F(UeCliTest, TamperedTransferRespIsRefused) {
  const std::string d = dir_.path();
  auto [oc, oout] = Offer(d + "/offer.sdp", d + "/call.state");
  ASSERT_EQ(oc, 0) << oout;
  auto [ac, aout] = Answer(d + "/offer.sdp", d + "/answer.sdp");
  ASSERT_EQ(ac, 0) << aout;
  const std::string pristine = ReadAll(d + "/answer.sdp");
  TamperKeyMgmt(d + "/answer.sdp", 0);
  auto [fc, fout] = Finish(d + "/call.state", d + "/answer.sdp");
  EXPECT_NE(fc, 0) << fout;
  EXPECT_NE(fout.find("finish failed: PERMISSION_DENIED: TRANSFER_RESP does not verify"), std::string::npos) << fout;
  std::ofstream(d + "/answer.sdp", std::ios::trunc) << pristine;
  TamperKeyMgmt(d + "/answer.sdp", 12);
  auto [mc, mout] = Finish(d + "/call.state", d + "/answer.sdp");
  EXPECT_NE(mc, 0) << mout;
  EXPECT_NE(mout.find("finish failed: PERMISSION_DENIED: TRANSFER_RESP does not verify"), std::string::npos) << mout;
  // Untampered, it still verifies.
  std::ofstream(d + "/answer.sdp", std::ios::trunc) << pristine;
  auto [pc, pout] = Finish(d + "/call.state", d + "/answer.sdp");
  EXPECT_EQ(pc, 0) << pout;
}

TEST(UeCliDefaults, KmsIdentity) {
  EXPECT_EQ(*ue_cli::DefaultKmsIdentity("http://127.0.0.1:8080"), "kms.example.org");
  EXPECT_EQ(*ue_cli::DefaultKmsIdentity("http://localhost:8080"), "kms.example.org");
  EXPECT_EQ(*ue_cli::DefaultKmsIdentity("http://kms.operator.net:80"), "kms.operator.net");
  EXPECT_FALSE(ue_cli::DefaultKmsIdentity("ftp://x").ok());
}

}  // namespace
}  // namespace tkms::test
