// Integration tests of signed configuration bundles (issue 6,
// docs/bundles.md): a real tkmsd provisioned by a bundle signed under a test
// PKI whose root is pinned in the development token. Every refusal — flipped
// bytes, wrong signer, untrusted or expired certificates, older versions,
// schema errors — must leave the running configuration, the counter and the
// bundle file as they were while the KMS keeps serving; accepted bundles
// apply atomically, also while requests are in flight.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "provisioning/bundle.h"
#include "tests/integration/tkmsd_fixture.h"
#include "tests/provisioning/test_pki.h"

namespace tkms::test {
namespace {

using namespace std::chrono_literals;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A bundle payload: version, the KMS, and the default class's responder limit
// (observable over Ua: a request naming more responders is refused with 15).
nlohmann::json Payload(uint64_t version, unsigned max_responders = 16) {
  return {{"version", version},
          {"kms_identity", kKmsId},
          {"policy_classes", {{"default", {{"max_responders", max_responders}}}}}};
}

class BundleTest : public TkmsdTest {
 protected:
  void SetUp() override {
    anchor_ = dir_.path() + "/anchor.pem";
    bundle_ = dir_.path() + "/bundle.json";
    audit_ = dir_.path() + "/audit.log";
    std::ofstream(anchor_) << pki_.root.pem;
    WriteBundle(Sign(Payload(1)));
    StartDev(BundleArgs());
  }

  std::vector<std::string> BundleArgs() const {
    return {"--provisioning-anchor", anchor_, "--bundle", bundle_, "--audit-log", audit_};
  }

  std::string Sign(const nlohmann::json& payload) const { return pki_.SignedBundle(payload.dump()); }
  void WriteBundle(const std::string& text) const { std::ofstream(bundle_, std::ios::binary) << text; }

  // POST /admin/bundle: status and the JSON answer.
  std::pair<int, nlohmann::json> PostBundle(const std::string& text) {
    web::client::HttpClient admin("127.0.0.1", kms_->admin_port());
    auto r = admin.Post("/admin/bundle", "application/json", text);
    EXPECT_TRUE(r.ok()) << r.error().message();
    if (!r.ok()) return {0, {}};
    auto body = nlohmann::json::parse(r->body, nullptr, false);
    EXPECT_FALSE(body.is_discarded()) << r->body;
    return {r->status, body};
  }

  // Whether a ticket naming `n` responders is granted.
  bool GrantsResponders(size_t n) {
    auto request = AliceRequest();
    request.policy.responders.clear();
    for (size_t i = 0; i < n; ++i) request.policy.responders.push_back(ue::IdValue{B("sip:r" + std::to_string(i) + "@example.org")});
    auto grant = Client().RequestTicket(request);
    if (!grant.ok()) {
      EXPECT_EQ(grant.error().mikey_error(), 15) << grant.error().ToString();
    }
    return grant.ok();
  }

  std::vector<nlohmann::json> Audit() const {
    std::vector<nlohmann::json> lines;
    std::ifstream in(audit_);
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
  }

  // A refused bundle: the status, a reason containing `part`, the version
  // in force named in the answer and the audit line (and the bundle's own
  // version where it verified, else null), nothing changed (version,
  // bundle file, responder limit), and the KMS serves.
  void ExpectRefused(const std::string& text, int status, const std::string& part,
                     const nlohmann::json& own_version = nullptr) {
    const std::string file_before = ReadText(bundle_);
    const double version_before = Metric("tkms_bundle_version");
    const double refused_before = Metric("tkms_bundles_refused_total");
    auto [code, body] = PostBundle(text);
    EXPECT_EQ(code, status) << body.dump();
    EXPECT_EQ(body.value("verdict", ""), "refused");
    EXPECT_NE(body.value("reason", "").find(part), std::string::npos) << body.dump();
    EXPECT_EQ(body["previous_version"], version_before) << body.dump();
    EXPECT_EQ(body["version_in_force"], version_before) << body.dump();
    EXPECT_EQ(body["version"], own_version) << body.dump();
    const nlohmann::json audited = Audit().back();
    EXPECT_EQ(audited["previous_version"], version_before) << audited.dump();
    EXPECT_EQ(audited["version_in_force"], version_before) << audited.dump();
    EXPECT_EQ(audited["version"], own_version) << audited.dump();
    EXPECT_EQ(ReadText(bundle_), file_before);
    EXPECT_EQ(Metric("tkms_bundle_version"), version_before);
    EXPECT_EQ(Metric("tkms_bundles_refused_total"), refused_before + 1);
    ExpectServing();
  }

  test_pki::TestPki pki_;
  std::string anchor_, bundle_, audit_;
};

TEST_F(BundleTest, StartsFromTheBundleAndAuditsIt) {
  EXPECT_EQ(Metric("tkms_bundle_version"), 1);
  EXPECT_EQ(Metric("tkms_bundles_accepted_total"), 1);
  ExpectServing();
  auto audit = Audit();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0]["verdict"], "accepted");
  EXPECT_EQ(audit[0]["source"], "startup");
  EXPECT_EQ(audit[0]["version"], 1);
  EXPECT_EQ(audit[0]["signer"], "CN=tkms test bundle signer, O=tkms tests");
  EXPECT_NE(kms_->Log().find("event=bundle_accepted"), std::string::npos);
}

TEST_F(BundleTest, PostedBundleAppliesAndSurvivesARestart) {
  EXPECT_TRUE(GrantsResponders(2));
  const std::string v2 = Sign(Payload(2, 1));
  auto [code, body] = PostBundle(v2);
  ASSERT_EQ(code, 200) << body.dump();
  EXPECT_EQ(body["verdict"], "accepted");
  EXPECT_EQ(body["version"], 2);
  EXPECT_EQ(body["previous_version"], 1);
  EXPECT_EQ(body["version_in_force"], 2);
  EXPECT_FALSE(GrantsResponders(2));
  EXPECT_TRUE(GrantsResponders(1));
  EXPECT_EQ(ReadText(bundle_), v2);  // saved for the next start
  EXPECT_EQ(Metric("tkms_bundle_version"), 2);

  ASSERT_EQ(kms_->Stop(), 0);
  kms_.reset();
  StartDev(BundleArgs());
  EXPECT_EQ(Metric("tkms_bundle_version"), 2);
  EXPECT_FALSE(GrantsResponders(2));
}

TEST_F(BundleTest, EveryRefusalChangesNothing) {
  const std::string good = Sign(Payload(2, 1));
  // A flipped byte in the payload (inside its base64) and in the signature.
  auto envelope = nlohmann::json::parse(good);
  std::string payload_b64 = envelope["payload"];
  payload_b64[10] = payload_b64[10] == 'A' ? 'B' : 'A';
  auto tampered = envelope;
  tampered["payload"] = payload_b64;
  ExpectRefused(tampered.dump(), 403, "signature");
  std::string sig_b64 = envelope["signature"];
  sig_b64[20] = sig_b64[20] == 'A' ? 'B' : 'A';
  tampered = envelope;
  tampered["signature"] = sig_b64;
  ExpectRefused(tampered.dump(), 403, "signature");
  // Signed by a key that is not the certificate's.
  test_pki::TestPki other("another authority");
  ExpectRefused(test_pki::MakeBundle(Payload(2).dump(), other.signer_key, {pki_.signer.der}), 403, "signature");
  // A chain to another anchor.
  ExpectRefused(other.SignedBundle(Payload(2).dump()), 403, "certificates[0]");
  // An expired signer certificate, issued by the pinned root.
  test_pki::CertSpec expired = test_pki::SignerSpec(test_pki::TestPki::kSignerSubject);
  expired.not_before = "20200101000000";
  expired.not_after = "20210101000000";
  test_pki::Key key = test_pki::Key::Generate();
  test_pki::Cert expired_cert = test_pki::IssueCert(expired, key, test_pki::TestPki::kRootSubject, pki_.root_key);
  ExpectRefused(test_pki::MakeBundle(Payload(2).dump(), key, {expired_cert.der}), 403, "expired");
  // An older and an equal version.
  ASSERT_EQ(PostBundle(Sign(Payload(3))).first, 200);
  ExpectRefused(Sign(Payload(2)), 409, "not newer", 2);
  ExpectRefused(Sign(Payload(3, 7)), 409, "not newer", 3);
  // Schema and reference errors name the field; local sections are refused.
  auto unknown_class = Payload(4);
  unknown_class["users"] = {{{"identities", {"sip:carol@example.org"}}, {"policy_class", "gold"}}};
  ExpectRefused(Sign(unknown_class), 400, "users[0].policy_class");
  auto local = Payload(4);
  local["listen"] = {{"ua", "0.0.0.0:80"}};
  ExpectRefused(Sign(local), 400, "listen");
  ExpectRefused("not a bundle", 400, "");

  EXPECT_EQ(Metric("tkms_bundle_version"), 3);
  EXPECT_TRUE(GrantsResponders(16));
  // The audit log has every decision, refusals with their reason.
  auto audit = Audit();
  size_t refused = 0;
  for (const auto& line : audit) {
    if (line["verdict"] == "refused") {
      ++refused;
      EXPECT_FALSE(line["reason"].get<std::string>().empty());
      EXPECT_EQ(line["source"], "admin");
    }
  }
  EXPECT_EQ(refused, 10u);
  EXPECT_EQ(Metric("tkms_bundles_refused_total"), 10);
}

// The issue: a refused bundle reported "version 0 / previous_version 0"
// while version 2 was in force.
TEST_F(BundleTest, RefusalsNameTheVersionInForce) {
  ASSERT_EQ(PostBundle(Sign(Payload(2))).first, 200);
  test_pki::TestPki other("another authority");
  auto [code, body] = PostBundle(other.SignedBundle(Payload(3).dump()));
  EXPECT_EQ(code, 403);
  EXPECT_EQ(body["previous_version"], 2) << body.dump();
  EXPECT_EQ(body["version_in_force"], 2) << body.dump();
  EXPECT_TRUE(body["version"].is_null()) << body.dump();
  const auto line = Audit().back();
  EXPECT_EQ(line["verdict"], "refused");
  EXPECT_EQ(line["previous_version"], 2);
  EXPECT_EQ(line["version_in_force"], 2);
  EXPECT_NE(kms_->Log().find("event=bundle_refused source=admin verdict=refused version=- previous_version=2 "
                             "version_in_force=2"),
            std::string::npos);
}

TEST_F(BundleTest, SighupAppliesANewFileAndRefusesAnOlderOne) {
  WriteBundle(Sign(Payload(5, 1)));
  kms_->Signal(SIGHUP);
  for (int i = 0; i < 1000 && Metric("tkms_bundle_version") != 5; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(Metric("tkms_bundle_version"), 5);
  EXPECT_FALSE(GrantsResponders(2));
  WriteBundle(Sign(Payload(4)));
  kms_->Signal(SIGHUP);
  for (int i = 0; i < 1000 && Metric("tkms_bundles_refused_total") < 1; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(Metric("tkms_bundles_refused_total"), 1);
  EXPECT_EQ(Metric("tkms_bundle_version"), 5);
  const auto line = Audit().back();
  EXPECT_EQ(line["source"], "sighup");
  EXPECT_EQ(line["version"], 4);
  EXPECT_EQ(line["previous_version"], 5);
  EXPECT_EQ(line["version_in_force"], 5);
  EXPECT_FALSE(GrantsResponders(2));
  ExpectServing();
}

TEST_F(BundleTest, StartRefusesARolledBackFile) {
  const std::string v1 = ReadText(bundle_);
  ASSERT_EQ(PostBundle(Sign(Payload(2))).first, 200);
  ASSERT_EQ(kms_->Stop(), 0);
  kms_.reset();
  WriteBundle(v1);  // an attacker (or a backup) puts the old file back
  TkmsdProcess::Options o;
  o.args = {"--dev", "--state-dir", state_, "--bundle", bundle_, "--audit-log", audit_};
  o.work_dir = dir_.path() + "/rollback";
  std::filesystem::create_directories(o.work_dir);
  auto p = TkmsdProcess::Start(o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("version 1 is not newer than the accepted version 2"), std::string::npos)
      << p.error().message();
  WriteBundle(Sign(Payload(2, 9)));  // the same version, other content: refused too
  o.work_dir = dir_.path() + "/rollback2";
  std::filesystem::create_directories(o.work_dir);
  auto same_version = TkmsdProcess::Start(o);
  EXPECT_FALSE(same_version.ok()) << (same_version.ok() ? (*same_version)->Log() : "");
  // Restore a valid newer bundle: serves again.
  WriteBundle(Sign(Payload(3)));
  StartDev(BundleArgs());
  ExpectServing();
}

TEST_F(BundleTest, ReloadUnderLoadLosesNoRequest) {
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::string first_error;
  std::thread load([&] {
    auto client = Client();
    while (!stop.load()) {
      auto grant = client.RequestTicket(AliceRequest());
      auto resolved = grant.ok() ? client.ResolveTicket(Resolve(grant->ticket, bob_psk_))
                                 : ue::UeResult<ue::ResolvedTicket>(grant.error());
      if (resolved.ok()) {
        ++ok;
      } else {
        if (failed++ == 0) first_error = resolved.error().ToString();
      }
    }
  });
  for (uint64_t v = 2; v <= 6; ++v) {
    auto [code, body] = PostBundle(Sign(Payload(v, 16 - static_cast<unsigned>(v))));
    EXPECT_EQ(code, 200) << body.dump();
    std::this_thread::sleep_for(50ms);
  }
  stop = true;
  load.join();
  EXPECT_EQ(failed.load(), 0) << first_error;
  EXPECT_GT(ok.load(), 10);
  EXPECT_EQ(Metric("tkms_bundle_version"), 6);
}

TEST(BundleStartTest, ATokenWithoutAnchorDoesNotStart) {
  TempDir dir;
  test_pki::TestPki pki;
  const std::string bundle = dir.path() + "/bundle.json";
  std::ofstream(bundle) << pki.SignedBundle(Payload(1).dump());
  TkmsdProcess::Options o;
  o.args = {"--dev", "--state-dir", dir.path() + "/state", "--bundle", bundle};
  o.work_dir = dir.path();
  auto p = TkmsdProcess::Start(o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("pins no provisioning anchor"), std::string::npos) << p.error().message();
}

}  // namespace
}  // namespace tkms::test
