// tkms-ue call and offer / answer / finish against a real tkmsd --dev
// (SoftHSM2 token behind the fault-injection module, demo users alice and bob)
// on free loopback ports: each command runs as its own process (call forks its
// Responder end-points; `answer --media` runs in the background while `finish`
// runs), exit statuses and progress lines are checked, and the daemon's
// metrics must show exactly the exchanges the commands made.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "firmware/mikey/codec.h"
#include "tests/integration/tkmsd_process.h"
#include "tests/ue/tls_test_server.h"
#include "web/client/http_client.h"
#include "tools/ue/sdp.h"
#include "tools/ue_cli/call.h"

extern char** environ;

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
                                    std::vector<std::string> extra = {}, const std::string& responder = kBob) {
    std::vector<std::string> args{"offer", "--kms", kms_->ua_url(), "--initiator", kAlice, "--initiator-psk",
                                  Psk("alice"), "--responder", responder, "--sdp-out", sdp, "--state-out", state};
    args.insert(args.end(), extra.begin(), extra.end());
    return Ue(args);
  }
  // answer as `who` (PSK <name>.psk of the same name part), with extra options.
  std::vector<std::string> AnswerArgs(const std::string& offer, const std::string& answer,
                                      std::vector<std::string> extra = {}, const std::string& who = kBob,
                                      const std::string& psk_name = "bob") {
    std::vector<std::string> args{"answer", "--kms", kms_->ua_url(), "--responder", who, "--responder-psk",
                                  Psk(psk_name), "--sdp-in", offer, "--sdp-out", answer};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  std::pair<int, std::string> Answer(const std::string& offer, const std::string& answer,
                                     std::vector<std::string> extra = {}, const std::string& who = kBob,
                                     const std::string& psk_name = "bob") {
    return Ue(AnswerArgs(offer, answer, std::move(extra), who, psk_name));
  }
  std::pair<int, std::string> Finish(const std::string& state, const std::string& answer,
                                     std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"finish", "--state", state, "--initiator-psk", Psk("alice"), "--sdp-in", answer};
    args.insert(args.end(), extra.begin(), extra.end());
    return Ue(args);
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
    web::client::HttpClient admin("127.0.0.1", kms_->admin_port());
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
  auto [ac, aout] = Ue({"answer", "--kms", kms_->ua_url(), "--responder", kBob, "--responder-psk", Psk("alice"),
                        "--sdp-in", offer, "--sdp-out", answer});
  EXPECT_NE(ac, 0) << aout;
  EXPECT_NE(aout.find("answer failed: UNAVAILABLE: ticket resolve failed"), std::string::npos) << aout;
  struct stat st {};
  EXPECT_NE(::stat(answer.c_str(), &st), 0) << "no answer may be written";
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

TEST_F(UeCliTest, ResponderOfAnotherDomainWithoutTrustRelationGetsError14) {
  // A second KMS domain: its own tkmsd, token and users (bob has another PSK
  // there), and no trust relation with kms.example.org. The responder takes
  // the ticket to its own KMS, which has no KMS to ask: MIKEY error 14
  // (refusal no_trust_relation, docs/kms.md), and only its own metrics count
  // the resolve. The same call across two domains that trust each other
  // succeeds: tkmsd.zk.* (tests/integration/zk_test.py).
  TempDir other_dir;
  const std::string other_state = other_dir.path() + "/state";
  TkmsdProcess::Options o;
  o.args = {"--dev", "--state-dir", other_state, "--kms-identity", "kms.b.example.org"};
  o.work_dir = other_dir.path();
  auto other = TkmsdProcess::Start(o);
  ASSERT_TRUE(other.ok()) << other.error().message();
  auto [code, out] = CallTo(kBob, other_state + "/ue/bob.psk",
                            {"--responder-kms", (*other)->ua_url(), "--responder-kms-identity", "kms.b.example.org"});
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("ticket resolve failed: mikey_error: MIKEY error 14"), std::string::npos) << out;
  web::client::HttpClient admin("127.0.0.1", (*other)->admin_port());
  auto metrics = admin.Get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("tkms_requests_total{type=\"ticketresolve\",outcome=\"mikey_error\"} 1"),
            std::string::npos);
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketresolve\",outcome=\"ok\"}"), 0);
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketrequest\",outcome=\"ok\"}"), 1);
  EXPECT_EQ((*other)->Stop(), 0);
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

// ---- offer / answer / finish: media, reuse, groups, map types ----------------------

// A tkms-ue run in the background (stdout and stderr to `log`), killed by the
// destructor if still running.
class Background {
 public:
  Background(const std::vector<std::string>& args, const std::string& log) : log_(log) {
    std::vector<std::string> argv{TKMS_UE_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    if (posix_spawn(&pid_, argv[0].c_str(), &actions, nullptr, cargv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Background() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  bool started() const { return pid_ > 0 || exited_; }
  bool Running() {
    if (pid_ <= 0) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      pid_ = -1;
      exited_ = true;
      return false;
    }
    return true;
  }
  // The exit status once it exits within `timeout`; -1: died from a signal;
  // -2: still running (then killed).
  int Wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (Running()) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
        return -2;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return exited_ ? status_ : -1;
  }
  std::string Output() const { return ReadAll(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = -1;
};

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Waits for `path` to appear while `writer` runs (false: it exited first or
// the timeout passed).
bool WaitForFile(const std::string& path, Background& writer, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Exists(path)) return true;
    if (!writer.Running()) return Exists(path);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::vector<std::string> CsLines(const std::string& text, const std::string& who) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(who + ": cs ", 0) == 0) lines.push_back(line.substr(who.size()));
  }
  return lines;
}

// The CSB ID an offer reports ("TRANSFER_INIT (CSB ID N) written ...").
std::string OfferCsbId(const std::string& out) {
  std::smatch m;
  static const std::regex re("offer: TRANSFER_INIT \\(CSB ID ([0-9]+)\\)");
  return std::regex_search(out, m, re) ? m[1].str() : std::string();
}

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

constexpr const char* kLongWait = "30000";  // --timeout-ms for media waits (sanitizer builds are slow)

TEST_F(UeCliTest, OfferAnswerFinishWithMedia) {
  const std::string d = dir_.path();
  auto [oc, oout] = Offer(d + "/offer.sdp", d + "/call.state", {"--rtp-port", "0"});
  ASSERT_EQ(oc, 0) << oout;
  const std::string offer_sdp = ReadAll(d + "/offer.sdp");
  auto offer_port = ue::AudioRtpPort(offer_sdp);
  ASSERT_TRUE(offer_port.ok()) << offer_sdp;
  EXPECT_NE(*offer_port, 49170);  // a picked port, recorded in the state
  EXPECT_TRUE(Has(ReadAll(d + "/call.state"), "rtp_port " + std::to_string(*offer_port) + "\n"));

  // The Responder binds first, writes its answer, then waits for media.
  Background answer(AnswerArgs(d + "/offer.sdp", d + "/answer.sdp",
                               {"--media", "5", "--rtp-port", "0", "--timeout-ms", kLongWait}),
                    d + "/answer.log");
  ASSERT_TRUE(answer.started());
  ASSERT_TRUE(WaitForFile(d + "/answer.sdp", answer, std::chrono::seconds(30))) << answer.Output();
  const std::string answer_sdp = ReadAll(d + "/answer.sdp");
  auto answer_port = ue::AudioRtpPort(answer_sdp);
  ASSERT_TRUE(answer_port.ok()) << answer_sdp;  // written whole (renamed into place)
  EXPECT_NE(*answer_port, 49172);

  auto [fc, fout] = Finish(d + "/call.state", d + "/answer.sdp", {"--media", "5", "--timeout-ms", kLongWait});
  const int ac = answer.Wait(std::chrono::seconds(40));
  const std::string aout = answer.Output();
  ASSERT_EQ(fc, 0) << fout << aout;
  ASSERT_EQ(ac, 0) << aout;
  EXPECT_TRUE(Has(aout, "answer: waiting for 5 SRTP packets from the initiator on 127.0.0.1:" +
                            std::to_string(*answer_port)))
      << aout;
  EXPECT_TRUE(Has(aout, "answer: wrong-key check: initiator packet refused with auth_fail")) << aout;
  EXPECT_TRUE(Has(aout, "answer: received and decrypted 5 SRTP packets from initiator")) << aout;
  EXPECT_TRUE(Has(aout, "answer: sent 5 SRTP packets to the initiator at 127.0.0.1:" + std::to_string(*offer_port)))
      << aout;
  EXPECT_TRUE(Has(fout, "finish: sent 5 SRTP packets to the responder at 127.0.0.1:" + std::to_string(*answer_port)))
      << fout;
  EXPECT_TRUE(Has(fout, "finish: wrong-key check: responder packet refused with auth_fail")) << fout;
  EXPECT_TRUE(Has(fout, "finish: received and decrypted 5 SRTP packets from responder")) << fout;
  EXPECT_EQ(CsLines(aout, "answer").size(), 2u) << aout;
  EXPECT_EQ(CsLines(aout, "answer"), CsLines(fout, "finish")) << aout << fout;
  // No temporary file left beside the SDP files.
  for (const auto& entry : std::filesystem::directory_iterator(d)) {
    EXPECT_FALSE(Has(entry.path().filename().string(), ".tmp-")) << entry.path();
  }
}

TEST_F(UeCliTest, AnswerWithMediaAndAWrongPskFailsWithoutAnAnswer) {
  const std::string d = dir_.path();
  auto [oc, oout] = Offer(d + "/offer.sdp", d + "/call.state", {"--rtp-port", "0"});
  ASSERT_EQ(oc, 0) << oout;
  const auto start = std::chrono::steady_clock::now();
  auto [ac, aout] = Answer(d + "/offer.sdp", d + "/answer.sdp", {"--media", "3", "--timeout-ms", kLongWait},
                           kBob, "alice");
  EXPECT_NE(ac, 0) << aout;
  EXPECT_TRUE(Has(aout, "answer failed: UNAVAILABLE: ticket resolve failed")) << aout;
  EXPECT_FALSE(Has(aout, "waiting for")) << aout;
  EXPECT_FALSE(Exists(d + "/answer.sdp"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));  // it did not wait for media
  EXPECT_EQ(Metric(kResolveOk), 0);
}

TEST_F(UeCliTest, FinishWithMediaTimesOutWithoutAResponder) {
  const std::string d = dir_.path();
  auto [oc, oout] = Offer(d + "/offer.sdp", d + "/call.state", {"--rtp-port", "0"});
  ASSERT_EQ(oc, 0) << oout;
  // The answer is written, but nobody runs it with media: finish sends into
  // the void and must give up after its timeout, not hang.
  auto [ac, aout] = Answer(d + "/offer.sdp", d + "/answer.sdp", {"--rtp-port", "0"});
  ASSERT_EQ(ac, 0) << aout;
  auto [fc, fout] = Finish(d + "/call.state", d + "/answer.sdp", {"--media", "2", "--timeout-ms", "300"});
  EXPECT_NE(fc, 0) << fout;
  EXPECT_TRUE(Has(fout, "timed out waiting for media (0 of 2 packets received)")) << fout;
}

TEST_F(UeCliTest, ReuseStateSkipsTheTicketRequest) {
  const std::string d = dir_.path();
  auto [oc, oout] = Offer(d + "/offer1.sdp", d + "/call1.state", {"--reusable"});
  ASSERT_EQ(oc, 0) << oout;
  EXPECT_TRUE(Has(oout, "(reusable: J flag)")) << oout;
  auto [ac, aout] = Answer(d + "/offer1.sdp", d + "/answer1.sdp");
  ASSERT_EQ(ac, 0) << aout;
  auto [fc, fout] = Finish(d + "/call1.state", d + "/answer1.sdp");
  ASSERT_EQ(fc, 0) << fout;

  // The second call: no Ticket Request, a new TRANSFER_INIT (new CSB ID).
  auto [rc, rout] = Ue({"offer", "--reuse-state", d + "/call1.state", "--initiator-psk", Psk("alice"), "--sdp-out",
                        d + "/offer2.sdp", "--state-out", d + "/call2.state"});
  ASSERT_EQ(rc, 0) << rout;
  EXPECT_TRUE(Has(rout, "(no Ticket Request)")) << rout;
  ASSERT_FALSE(OfferCsbId(oout).empty()) << oout;
  ASSERT_FALSE(OfferCsbId(rout).empty()) << rout;
  EXPECT_NE(OfferCsbId(oout), OfferCsbId(rout));
  auto [a2c, a2out] = Answer(d + "/offer2.sdp", d + "/answer2.sdp");
  ASSERT_EQ(a2c, 0) << a2out;
  auto [f2c, f2out] = Finish(d + "/call2.state", d + "/answer2.sdp");
  ASSERT_EQ(f2c, 0) << f2out;
  EXPECT_EQ(CsLines(a2out, "answer"), CsLines(f2out, "finish")) << a2out << f2out;
  EXPECT_NE(CsLines(aout, "answer"), CsLines(a2out, "answer"));  // new SSRCs per call
  EXPECT_EQ(Metric(kRequestOk), 1);
  EXPECT_EQ(Metric(kResolveOk), 2);
  // Each answer belongs to its own TRANSFER_INIT.
  auto [xc, xout] = Finish(d + "/call2.state", d + "/answer1.sdp");
  EXPECT_NE(xc, 0) << xout;
  EXPECT_TRUE(Has(xout, "CSB ID differs")) << xout;
}

TEST_F(UeCliTest, ReuseStateRefusesANonReusableTicket) {
  const std::string d = dir_.path();
  auto [oc, oout] = Offer(d + "/offer1.sdp", d + "/call1.state");
  ASSERT_EQ(oc, 0) << oout;
  EXPECT_FALSE(Has(oout, "(reusable: J flag)")) << oout;
  auto [rc, rout] = Ue({"offer", "--reuse-state", d + "/call1.state", "--initiator-psk", Psk("alice"), "--sdp-out",
                        d + "/offer2.sdp", "--state-out", d + "/call2.state"});
  EXPECT_NE(rc, 0) << rout;
  EXPECT_TRUE(Has(rout, "is not reusable: its ticket policy's J flag is 0")) << rout;
  EXPECT_FALSE(Exists(d + "/offer2.sdp"));
  EXPECT_FALSE(Exists(d + "/call2.state"));
  // Another PSK cannot open the saved grant.
  auto [wc, wout] = Ue({"offer", "--reuse-state", d + "/call1.state", "--initiator-psk", Psk("bob"), "--sdp-out",
                        d + "/offer3.sdp", "--state-out", d + "/call3.state"});
  EXPECT_NE(wc, 0) << wout;
  EXPECT_TRUE(Has(wout, "does not verify with this PSK")) << wout;
  // The ticket options come from the state: giving them again is an error.
  auto [xc, xout] = Ue({"offer", "--reuse-state", d + "/call1.state", "--initiator-psk", Psk("alice"), "--kms",
                        kms_->ua_url(), "--sdp-out", d + "/offer4.sdp", "--state-out", d + "/call4.state"});
  EXPECT_NE(xc, 0) << xout;
  EXPECT_FALSE(Exists(d + "/call4.state"));
  EXPECT_EQ(Metric(kRequestOk), 1);
}

TEST_F(UeCliTest, ReuseStateRefusesAnExpiredTicket) {
  const std::string d = dir_.path();
  auto [oc, oout] = Offer(d + "/offer1.sdp", d + "/call1.state", {"--reusable", "--ticket-lifetime", "1"});
  ASSERT_EQ(oc, 0) << oout;
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto [rc, rout] = Ue({"offer", "--reuse-state", d + "/call1.state", "--initiator-psk", Psk("alice"), "--sdp-out",
                        d + "/offer2.sdp", "--state-out", d + "/call2.state"});
  EXPECT_NE(rc, 0) << rout;
  EXPECT_TRUE(Has(rout, "cannot be reused: the ticket has expired (TRe)")) << rout;
  EXPECT_FALSE(Exists(d + "/call2.state"));
}

TEST_F(UeCliTest, GroupOfferAnsweredWithCalledAs) {
  RestartWithGroup();
  const std::string d = dir_.path();
  auto [oc, oout] = Offer(d + "/offer.sdp", d + "/call.state", {}, kTeam);
  ASSERT_EQ(oc, 0) << oout;
  EXPECT_TRUE(Has(oout, "ticket granted by the KMS for sip:team@example.org")) << oout;
  // Without --called-as, bob is not an IDRr of the ticket: refused before resolving.
  auto [nc, nout] = Answer(d + "/offer.sdp", d + "/answer.sdp");
  EXPECT_NE(nc, 0) << nout;
  EXPECT_TRUE(Has(nout, "none of this end-point's identities is a responder (IDRr)")) << nout;
  EXPECT_EQ(Metric(kResolveOk), 0);
  // bob, a member, called as the group.
  auto [ac, aout] = Answer(d + "/offer.sdp", d + "/answer.sdp", {"--called-as", kTeam});
  ASSERT_EQ(ac, 0) << aout;
  auto [fc, fout] = Finish(d + "/call.state", d + "/answer.sdp");
  ASSERT_EQ(fc, 0) << fout;
  EXPECT_EQ(CsLines(aout, "answer"), CsLines(fout, "finish")) << aout << fout;
  // alice is not a member: the KMS refuses to resolve the group's ticket for her.
  auto [xc, xout] = Answer(d + "/offer.sdp", d + "/answer-alice.sdp", {"--called-as", kTeam}, kAlice, "alice");
  EXPECT_NE(xc, 0) << xout;
  EXPECT_TRUE(Has(xout, "ticket resolve failed: mikey_error: MIKEY error")) << xout;
  EXPECT_FALSE(Exists(d + "/answer-alice.sdp"));
  EXPECT_EQ(Metric(kResolveOk), 1);
}

// An offer whose TRANSFER_INIT is re-encoded with another CS ID map type.
void RewriteOfferMap(const std::string& path, bool srtp_id, uint8_t raw_type = 0) {
  const std::string sdp = ReadAll(path);
  auto bytes = ue::ExtractMikeyKeyMgmt(sdp);
  ASSERT_TRUE(bytes.ok()) << sdp;
  mikey::Bytes out;
  if (srtp_id) {
    auto m = mikey::Decode(*bytes);
    ASSERT_TRUE(m.ok());
    m->header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kSrtpId);
    m->header.generic_map.clear();
    m->header.srtp_map = {mikey::SrtpIdEntry{0, 0x0A0B0C0D, 0}};
    m->header.cs_count = 1;
    auto encoded = mikey::Encode(*m);  // no composition rules on encode
    ASSERT_TRUE(encoded.ok()) << encoded.error().ToString();
    out = std::move(*encoded);
  } else {
    out = *bytes;
    out.at(9) = raw_type;
  }
  ue::AudioSdpParams p;
  p.session_id = 7;
  p.rtp_port = 49170;
  auto rewritten = ue::BuildAudioSdp(p, out);
  ASSERT_TRUE(rewritten.ok());
  std::ofstream(path, std::ios::trunc) << *rewritten;
}

TEST_F(UeCliTest, AnswerRefusesAnSrtpIdTransferInit) {
  const std::string d = dir_.path();
  auto [oc, oout] = Offer(d + "/offer.sdp", d + "/call.state");
  ASSERT_EQ(oc, 0) << oout;
  RewriteOfferMap(d + "/offer.sdp", true);
  auto [ac, aout] = Answer(d + "/offer.sdp", d + "/answer.sdp");
  EXPECT_NE(ac, 0) << aout;
  EXPECT_TRUE(Has(aout, "TRANSFER_INIT refused: verification: TRANSFER_INIT uses the SRTP-ID CS ID map")) << aout;
  EXPECT_TRUE(Has(aout, "(RFC 6043 §6.1)")) << aout;
  // Refused before any KMS was asked.
  EXPECT_EQ(Metric(kResolveOk), 0);
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketresolve\",outcome=\"mikey_error\"}"), 0);
  EXPECT_FALSE(Exists(d + "/answer.sdp"));

  auto [o2c, o2out] = Offer(d + "/offer2.sdp", d + "/call2.state");
  ASSERT_EQ(o2c, 0) << o2out;
  RewriteOfferMap(d + "/offer2.sdp", false, 4);
  auto [uc, uout] = Answer(d + "/offer2.sdp", d + "/answer2.sdp");
  EXPECT_NE(uc, 0) << uout;
  EXPECT_TRUE(Has(uout, "uses CS ID map type 4, which is not defined")) << uout;
  EXPECT_EQ(Metric(kResolveOk), 0);
}

TEST(UeCliDefaults, KmsIdentity) {
  EXPECT_EQ(*ue_cli::DefaultKmsIdentity("http://127.0.0.1:8080"), "kms.example.org");
  EXPECT_EQ(*ue_cli::DefaultKmsIdentity("http://localhost:8080"), "kms.example.org");
  EXPECT_EQ(*ue_cli::DefaultKmsIdentity("http://kms.operator.net:80"), "kms.operator.net");
  EXPECT_FALSE(ue_cli::DefaultKmsIdentity("ftp://x").ok());
}

// https:// KMS URLs end to end: until tkmsd has its own HTTPS listener, a
// TLS-terminating proxy (tests/ue/tls/tls_test_server.py --forward, OpenSSL)
// that requires a client certificate stands in front of the daemon's Ua port.
// call, offer / answer / finish and tkms-bench (request and resolve) run
// through it with --cacert / --cert / --key; a wrong CA and a missing client
// certificate fail with their causes, and reach no KMS.
TEST_F(UeCliTest, HttpsThroughATlsProxyWithClientCertificates) {
  ue::testing::TlsTestPki pki;
  ASSERT_TRUE(pki.ok()) << "make_test_pki.sh failed";
  auto proxy = ue::testing::TlsTestServer::Start(
      {"--cert", pki.File("server.pem"), "--key", pki.File("server.key"), "--verify", "required", "--cafile",
       pki.File("ca.pem"), "--forward", "127.0.0.1:" + std::to_string(kms_->ua_port())},
      dir_.path() + "/proxy.log");
  ASSERT_NE(proxy, nullptr);
  const std::string url = proxy->url();  // https://localhost:PORT
  const std::vector<std::string> tls{"--cacert", pki.File("ca.pem"), "--cert", pki.File("client.pem"), "--key",
                                     pki.File("client.key")};
  const auto with = [](std::vector<std::string> args, const std::vector<std::string>& extra) {
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };

  auto [cc, cout_] = Ue(with({"call", "--kms", url, "--initiator", kAlice, "--initiator-psk", Psk("alice"),
                              "--responder", kBob, "--responder-psk", Psk("bob"), "--packets", "3"},
                             tls));
  EXPECT_EQ(cc, 0) << cout_ << proxy->Log();
  EXPECT_NE(cout_.find("call: keys agree"), std::string::npos) << cout_;

  const std::string d = dir_.path();
  auto [oc, oout] = Ue(with({"offer", "--kms", url, "--initiator", kAlice, "--initiator-psk", Psk("alice"),
                             "--responder", kBob, "--sdp-out", d + "/tls-offer.sdp", "--state-out", d + "/tls.state"},
                            tls));
  ASSERT_EQ(oc, 0) << oout;
  auto [ac, aout] = Ue(with({"answer", "--kms", url, "--responder", kBob, "--responder-psk", Psk("bob"), "--sdp-in",
                             d + "/tls-offer.sdp", "--sdp-out", d + "/tls-answer.sdp"},
                            tls));
  ASSERT_EQ(ac, 0) << aout;
  auto [fc, fout] = Finish(d + "/tls.state", d + "/tls-answer.sdp");
  EXPECT_EQ(fc, 0) << fout;

  // A CA that did not issue the proxy's certificate; no client certificate.
  auto [wc, wout] = Ue({"offer", "--kms", url, "--initiator", kAlice, "--initiator-psk", Psk("alice"), "--responder",
                        kBob, "--sdp-out", d + "/x.sdp", "--state-out", d + "/x.state", "--cacert",
                        pki.File("other-ca.pem")});
  EXPECT_NE(wc, 0) << wout;
  EXPECT_NE(wout.find("certificate not trusted"), std::string::npos) << wout;
  auto [nc, nout] = Ue({"answer", "--kms", url, "--responder", kBob, "--responder-psk", Psk("bob"), "--sdp-in",
                        d + "/tls-offer.sdp", "--sdp-out", d + "/y.sdp", "--cacert", pki.File("ca.pem")});
  EXPECT_NE(nc, 0) << nout;
  EXPECT_NE(nout.find("requires a client certificate"), std::string::npos) << nout;
  // https without --cacert, and --cert without --key, are usage errors.
  auto [uc, uout] = Ue({"answer", "--kms", url, "--responder", kBob, "--responder-psk", Psk("bob"), "--sdp-in",
                        d + "/tls-offer.sdp", "--sdp-out", d + "/y.sdp"});
  EXPECT_NE(uc, 0) << uout;
  EXPECT_NE(uout.find("--cacert"), std::string::npos) << uout;
  auto [kc, kout] = Ue({"answer", "--kms", url, "--responder", kBob, "--responder-psk", Psk("bob"), "--sdp-in",
                        d + "/tls-offer.sdp", "--sdp-out", d + "/y.sdp", "--cacert", pki.File("ca.pem"), "--cert",
                        pki.File("client.pem")});
  EXPECT_NE(kc, 0) << kout;

  // Exactly the exchanges above reached the KMS: call (1 request, 1 resolve),
  // offer / answer (1 + 1); the refused ones none.
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketrequest\",outcome=\"ok\"}"), 2);
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketresolve\",outcome=\"ok\"}"), 2);

  // tkms-bench, both KMS modes, over the same proxy.
  for (const char* mode : {"request", "resolve"}) {
    auto [bc, bout] = RunCommand(with({TKMS_BENCH_PATH, "--url", url, "--mode", mode, "--initiator", kAlice,
                                       "--initiator-psk", Psk("alice"), "--responder", kBob, "--responder-psk",
                                       Psk("bob"), "--connections", "2", "--duration", "0.5", "--warmup", "0.1",
                                       "--json"},
                                      tls));
    ASSERT_EQ(bc, 0) << mode << ": " << bout;
    auto report = nlohmann::json::parse(bout.substr(bout.find('{')));
    EXPECT_GT(report["ok"].get<int>(), 0) << bout;
    EXPECT_EQ(report["errors"].get<int>(), 0) << bout;
    EXPECT_EQ(report["tls"].get<std::string>().rfind("TLSv1.2 TLS-ECDHE-RSA-", 0), 0u) << bout;
  }
}

}  // namespace
}  // namespace tkms::test
