// TkmsdTest: the GoogleTest fixture of the tkmsd integration tests — a real
// tkmsd (--dev: SoftHSM2 token, demo users alice and bob) behind the
// fault-injection module, the UE client to talk to it, and the checks every
// test ends with (exit 0 on SIGTERM, no PSK or PIN in the log).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <chrono>
#include <utility>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/base/secret_files.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/integration/tkmsd_process.h"
#include "tools/ue/kms_client.h"

namespace tkms::test {

using mikey::Bytes;
using ue::UeErrorKind;

inline constexpr const char* kAlice = "sip:alice@example.org";
inline constexpr const char* kBob = "sip:bob@example.org";
inline constexpr const char* kKmsId = "kms.example.org";

inline Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }


class TkmsdTest : public ::testing::Test {
 protected:
  void SetUp() override { StartDev(); }

  void StartDev(std::vector<std::string> extra = {}) {
    state_ = dir_.path() + "/state";
    std::vector<std::string> args{"--dev", "--state-dir", state_};
    args.insert(args.end(), extra.begin(), extra.end());
    Start(args);
    auto alice = ReadHexSecretFile(state_ + "/ue/alice.psk", "PSK");
    auto bob = ReadHexSecretFile(state_ + "/ue/bob.psk", "PSK");
    ASSERT_TRUE(alice.ok() && bob.ok());
    alice_psk_ = std::move(*alice);
    bob_psk_ = std::move(*bob);
  }

  void Start(const std::vector<std::string>& args) {
    TkmsdProcess::Options o;
    o.args = args;
    o.env = {{"TKMS_PKCS11_MODULE", FaultModulePath()}, {"TKMS_FAULT_TRIGGER", FaultFile()}};
    o.work_dir = dir_.path();
    auto p = TkmsdProcess::Start(o);
    ASSERT_TRUE(p.ok()) << p.error().message();
    kms_ = std::move(*p);
  }

  void TearDown() override {
    if (!kms_) return;
    EXPECT_EQ(kms_->Stop(), 0) << kms_->Log();
    const std::string log = kms_->Log();
    EXPECT_NE(log.find("event=stopped"), std::string::npos);
    for (const SecretBytes* psk : {&alice_psk_, &bob_psk_}) {
      if (psk->empty()) continue;
      EXPECT_EQ(log.find(HexEncode(*psk)), std::string::npos) << "a PSK reached the log";
    }
    std::ifstream pin_in(state_ + "/token.pin");
    std::string pin;
    std::getline(pin_in, pin);
    if (!pin.empty()) {
      EXPECT_EQ(log.find(pin), std::string::npos) << "the PIN reached the log";
    }
  }

  std::string FaultFile() const { return dir_.path() + "/fault"; }

  ue::KmsClient Client() {
    auto http = web::client::HttpClient::FromUrl(kms_->ua_url());
    if (!http.ok()) ADD_FAILURE() << http.error().message();
    return ue::KmsClient(std::move(*http));
  }

  ue::RequestInitParams AliceRequest(std::string responder = kBob) {
    ue::RequestInitParams p;
    p.psk = alice_psk_;
    p.initiator.id = B(kAlice);
    p.kms.id = B(kKmsId);
    p.policy.responders.push_back(ue::IdValue{B(responder)});
    return p;
  }

  ue::ResolveInitParams Resolve(const mikey::TicketPayload& ticket, const SecretBytes& psk,
                                std::string responder = kBob) {
    ue::ResolveInitParams p;
    p.psk = psk;
    p.responder.id = B(responder);
    p.kms.id = B(kKmsId);
    p.ticket = ticket;
    return p;
  }

  // A complete request + resolve: the KMS still serves.
  void ExpectServing() {
    auto client = Client();
    auto grant = client.RequestTicket(AliceRequest());
    ASSERT_TRUE(grant.ok()) << grant.error().ToString() << "\n" << kms_->Log();
    auto resolved = client.ResolveTicket(Resolve(grant->ticket, bob_psk_));
    ASSERT_TRUE(resolved.ok()) << resolved.error().ToString();
    EXPECT_EQ(resolved->mpki, grant->mpki);
  }

  // An Annex A POST with raw bytes.
  web::client::HttpResponse Post(std::string_view target, std::string_view content_type, std::string_view body) {
    auto http = web::client::HttpClient::FromUrl(kms_->ua_url());
    auto r = http->Post(target, content_type, body);
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? *r : web::client::HttpResponse{};
  }

  // Polls `done` every 10 ms until it holds or `seconds` pass.
  template <typename Fn>
  bool WaitFor(Fn done, int seconds = 20) {
    for (int i = 0; i < seconds * 100; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  }

  int ReadyzStatus() {
    web::client::HttpClient admin("127.0.0.1", kms_->admin_port());
    auto r = admin.Get("/readyz");
    return r.ok() ? r->status : -1;
  }

  bool LogHas(std::string_view text) { return kms_->Log().find(text) != std::string::npos; }

  double Metric(const std::string& series) {
    web::client::HttpClient admin("127.0.0.1", kms_->admin_port());
    auto r = admin.Get("/metrics");
    EXPECT_TRUE(r.ok());
    std::istringstream in(r->body);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    }
    return -1;
  }

  void ExpectMikeyError(const ue::UeResult<ue::TicketGrant>& r, uint8_t error_no, bool authenticated) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, UeErrorKind::kMikeyError) << r.error().ToString();
    EXPECT_EQ(r.error().mikey_error(), error_no) << r.error().ToString();
    EXPECT_EQ(r.error().error_authenticated, authenticated) << r.error().ToString();
  }
  void ExpectMikeyError(const ue::UeResult<ue::ResolvedTicket>& r, uint8_t error_no, bool authenticated) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, UeErrorKind::kMikeyError) << r.error().ToString();
    EXPECT_EQ(r.error().mikey_error(), error_no) << r.error().ToString();
    EXPECT_EQ(r.error().error_authenticated, authenticated) << r.error().ToString();
  }

  TempDir dir_;
  std::string state_;
  std::unique_ptr<TkmsdProcess> kms_;
  SecretBytes alice_psk_, bob_psk_;
  mikey::crypto::TransientCryptoProvider provider_;
};

}  // namespace tkms::test
