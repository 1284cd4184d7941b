// BundleApplier (provisioning/bundle_applier.h): the decision every bundle
// goes through, with an in-memory counter, a manual clock and a test PKI.
#include "provisioning/bundle_applier.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "firmware/base/log.h"
#include "provisioning/bundle.h"
#include "tests/provisioning/test_pki.h"
#include "tests/support/hal_fakes.h"

namespace tkms::provisioning {
namespace {

using namespace std::chrono_literals;

std::string Payload(uint64_t version, unsigned max_responders = 16) {
  return nlohmann::json{{"version", version},
                        {"kms_identity", "kms.example.org"},
                        {"policy_classes", {{"default", {{"max_responders", max_responders}}}}}}
      .dump();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<nlohmann::json> AuditLines(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// The in-memory counter, with reads and advances that can be made to fail
// (the token unreachable).
class FlakyCounter final : public hal::MonotonicCounter {
 public:
  Result<hal::CounterState> Read() override {
    if (fail_read) return Unavailable("token unreachable");
    return counter_.Read();
  }
  Status Advance(uint64_t value, std::span<const uint8_t, 32> tag) override {
    if (fail_advance) return Unavailable("token unreachable");
    return counter_.Advance(value, tag);
  }
  bool fail_read = false;
  bool fail_advance = false;

 private:
  hal::MemoryCounter counter_;
};

class BundleApplierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tkms-applier-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    bundle_path_ = dir_ + "/bundle.json";
    audit_path_ = dir_ + "/audit.log";
    clock_.Set(std::chrono::system_clock::from_time_t(1800000000));  // 2027-01-15
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Make(BundleApplier::Prepare prepare = {}) {
    if (!prepare) {
      prepare = [this](const KmsConfig& c) -> Result<BundleApplier::Commit> {
        ++prepared_;
        KmsConfig copy = c;
        return BundleApplier::Commit([this, copy] { live_ = copy; });
      };
    }
    BundleApplier::Options o;
    o.bundle_path = bundle_path_;
    o.audit_log_path = audit_path_;
    o.anchor_der = pki_.root.der;
    auto made = BundleApplier::Create(o, counter_, clock_, std::move(prepare));
    ASSERT_TRUE(made.ok()) << made.error().ToString();
    applier_ = std::move(*made);
  }

  void WriteBundleFile(const std::string& text) { std::ofstream(bundle_path_, std::ios::binary) << text; }

  // A refusal that changed nothing: counter, live config, file.
  void ExpectRefusedUnchanged(const BundleOutcome& out, StatusCode code, const std::string& reason_part) {
    EXPECT_EQ(out.verdict, BundleVerdict::kRefused);
    EXPECT_EQ(out.status.code(), code) << out.status.ToString();
    EXPECT_NE(out.status.message().find(reason_part), std::string::npos) << out.status.message();
  }

  std::string dir_, bundle_path_, audit_path_;
  test_pki::TestPki pki_{"bundle-applier-test"};
  FlakyCounter counter_;
  hal::ManualClock clock_{std::chrono::system_clock::from_time_t(1800000000)};
  std::unique_ptr<BundleApplier> applier_;
  KmsConfig live_;
  int prepared_ = 0;
};

TEST_F(BundleApplierTest, StartAcceptsAndAdvancesTheCounter) {
  WriteBundleFile(pki_.SignedBundle(Payload(3)));
  Make();
  BundleOutcome out = applier_->ApplyFile(BundleSource::kStartup);
  ASSERT_TRUE(out.accepted()) << out.status.ToString();
  EXPECT_EQ(out.verdict, BundleVerdict::kAccepted);
  EXPECT_EQ(out.version, 3u);
  EXPECT_EQ(out.previous_version, 0u);
  EXPECT_EQ(live_.version, 3u);
  EXPECT_EQ(counter_.Read()->value, 3u);
  EXPECT_EQ(HexEncode(counter_.Read()->tag), out.digest_hex);
  EXPECT_EQ(applier_->current_version(), 3u);
  EXPECT_EQ(out.signer, "CN=tkms test bundle signer, O=tkms tests");
  auto audit = AuditLines(audit_path_);
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0]["verdict"], "accepted");
  EXPECT_EQ(audit[0]["source"], "startup");
  EXPECT_EQ(audit[0]["version"], 3);
  EXPECT_EQ(audit[0]["digest"], out.digest_hex);
  EXPECT_EQ(audit[0]["time"], "2027-01-15T08:00:00Z");
}

TEST_F(BundleApplierTest, RestartWithTheBundleInForceIsAccepted) {
  WriteBundleFile(pki_.SignedBundle(Payload(3)));
  Make();
  ASSERT_TRUE(applier_->ApplyFile(BundleSource::kStartup).accepted());
  Make();  // a restart: same counter, same file
  BundleOutcome again = applier_->ApplyFile(BundleSource::kStartup);
  ASSERT_TRUE(again.accepted()) << again.status.ToString();
  EXPECT_EQ(again.previous_version, 3u);
  EXPECT_EQ(prepared_, 2);
  // SIGHUP without a new file: unchanged, nothing prepared.
  BundleOutcome hup = applier_->ApplyFile(BundleSource::kSighup);
  EXPECT_EQ(hup.verdict, BundleVerdict::kUnchanged);
  EXPECT_EQ(prepared_, 2);
  EXPECT_EQ(applier_->accepted_count(), 1u);  // this applier: the restart's acceptance only
  EXPECT_EQ(applier_->refused_count(), 0u);
  EXPECT_EQ(AuditLines(audit_path_).back()["verdict"], "unchanged");
}

TEST_F(BundleApplierTest, SameVersionWithOtherContentIsRefused) {
  WriteBundleFile(pki_.SignedBundle(Payload(3)));
  Make();
  ASSERT_TRUE(applier_->ApplyFile(BundleSource::kStartup).accepted());
  WriteBundleFile(pki_.SignedBundle(Payload(3, 2)));
  ExpectRefusedUnchanged(applier_->ApplyFile(BundleSource::kSighup), StatusCode::kFailedPrecondition,
                         "version 3 is not newer than the accepted version 3");
  EXPECT_EQ(live_.policy_classes["default"].max_responders, 16u);
}

TEST_F(BundleApplierTest, PostedNewerBundleReplacesTheFile) {
  WriteBundleFile(pki_.SignedBundle(Payload(1)));
  Make();
  ASSERT_TRUE(applier_->ApplyFile(BundleSource::kStartup).accepted());
  const std::string v2 = pki_.SignedBundle(Payload(2, 4));
  BundleOutcome out = applier_->ApplyPosted(v2);
  ASSERT_TRUE(out.accepted()) << out.status.ToString();
  EXPECT_EQ(out.previous_version, 1u);
  EXPECT_EQ(live_.policy_classes["default"].max_responders, 4u);
  EXPECT_EQ(ReadFile(bundle_path_), v2);
  struct stat st {};
  ASSERT_EQ(::stat(bundle_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  // Posting the same bundle again: not newer.
  ExpectRefusedUnchanged(applier_->ApplyPosted(v2), StatusCode::kFailedPrecondition, "not newer");
  // An older one.
  ExpectRefusedUnchanged(applier_->ApplyPosted(pki_.SignedBundle(Payload(1))), StatusCode::kFailedPrecondition,
                         "version 1 is not newer than the accepted version 2");
  EXPECT_EQ(ReadFile(bundle_path_), v2);
  EXPECT_EQ(counter_.Read()->value, 2u);
  EXPECT_EQ(applier_->accepted_count(), 2u);
  EXPECT_EQ(applier_->refused_count(), 2u);
}

TEST_F(BundleApplierTest, RefusalsChangeNothing) {
  const std::string v1 = pki_.SignedBundle(Payload(1));
  WriteBundleFile(v1);
  Make();
  ASSERT_TRUE(applier_->ApplyFile(BundleSource::kStartup).accepted());
  const KmsConfig before = live_;

  std::string flipped = pki_.SignedBundle(Payload(5));
  flipped[flipped.find("\"payload\"") + 14] ^= 0x01;  // inside the base64 payload
  EXPECT_FALSE(applier_->ApplyPosted(flipped).accepted());

  test_pki::TestPki other("another authority");
  ExpectRefusedUnchanged(applier_->ApplyPosted(other.SignedBundle(Payload(5))), StatusCode::kPermissionDenied, "");
  ExpectRefusedUnchanged(applier_->ApplyPosted("{\"version\":5,\"kms_identity\":\"x\"}"),
                         StatusCode::kInvalidArgument, "");
  ExpectRefusedUnchanged(
      applier_->ApplyPosted(pki_.SignedBundle(
          nlohmann::json{{"version", 5}, {"kms_identity", "kms.example.org"}, {"users", {{{"identities", {"sip:a@b"}}, {"policy_class", "gold"}}}}}
              .dump())),
      StatusCode::kInvalidArgument, "users[0].policy_class");

  // Prepare fails (e.g. the token): refused, nothing changed.
  EXPECT_EQ(live_, before);
  EXPECT_EQ(counter_.Read()->value, 1u);
  EXPECT_EQ(ReadFile(bundle_path_), v1);
  auto audit = AuditLines(audit_path_);
  ASSERT_EQ(audit.size(), 5u);
  for (size_t i = 1; i < audit.size(); ++i) {
    EXPECT_EQ(audit[i]["verdict"], "refused");
    EXPECT_EQ(audit[i]["source"], "admin");
    EXPECT_FALSE(audit[i]["reason"].get<std::string>().empty());
  }
}

TEST_F(BundleApplierTest, FailingPrepareRefusesWithoutTouchingCounterOrFile) {
  const std::string v1 = pki_.SignedBundle(Payload(1));
  WriteBundleFile(v1);
  bool fail = false;
  Make([&](const KmsConfig& c) -> Result<BundleApplier::Commit> {
    if (fail) return Unavailable("token gone");
    KmsConfig copy = c;
    return BundleApplier::Commit([this, copy] { live_ = copy; });
  });
  ASSERT_TRUE(applier_->ApplyFile(BundleSource::kStartup).accepted());
  fail = true;
  BundleOutcome out = applier_->ApplyPosted(pki_.SignedBundle(Payload(2)));
  ExpectRefusedUnchanged(out, StatusCode::kUnavailable, "token gone");
  EXPECT_EQ(counter_.Read()->value, 1u);
  EXPECT_EQ(ReadFile(bundle_path_), v1);
  EXPECT_EQ(live_.version, 1u);
}

TEST_F(BundleApplierTest, ExpiredSignerIsRefusedByTheClock) {
  WriteBundleFile(pki_.SignedBundle(Payload(1)));
  Make();
  clock_.Set(std::chrono::system_clock::from_time_t(2600000000));  // 2052, after the PKI's 2049
  BundleOutcome out = applier_->ApplyFile(BundleSource::kStartup);
  EXPECT_EQ(out.verdict, BundleVerdict::kRefused);
  EXPECT_EQ(counter_.Read()->value, 0u);
}

TEST_F(BundleApplierTest, MissingFileAndBadOptions) {
  Make();
  BundleOutcome out = applier_->ApplyFile(BundleSource::kStartup);
  EXPECT_EQ(out.status.code(), StatusCode::kNotFound);
  BundleApplier::Options o;
  o.bundle_path = bundle_path_;
  o.audit_log_path = dir_ + "/no/such/dir/audit.log";
  o.anchor_der = pki_.root.der;
  auto bad = BundleApplier::Create(o, counter_, clock_, [](const KmsConfig&) -> Result<BundleApplier::Commit> {
    return BundleApplier::Commit([] {});
  });
  EXPECT_FALSE(bad.ok());
  o.audit_log_path = audit_path_;
  o.anchor_der.clear();
  EXPECT_EQ(BundleApplier::Create(o, counter_, clock_, {}).error().code(), StatusCode::kInvalidArgument);
}

// ---- disk faults: a bundle whose audit record cannot be written is refused ----
// (issue 14, docs/reliability.md "Disk faults"). /dev/full stands for the
// full disk: every write fails with ENOSPC.

TEST_F(BundleApplierTest, UnwritableAuditLogRefusesAndChangesNothing) {
  const std::string v1 = pki_.SignedBundle(Payload(1));
  WriteBundleFile(v1);
  Make();
  ASSERT_TRUE(applier_->ApplyFile(BundleSource::kStartup).accepted());
  const KmsConfig before = live_;
  const uint64_t failures_before = AuditWriteFailures(AuditRecord::kBundle);

  BundleApplier::Options o;
  o.bundle_path = bundle_path_;
  o.audit_log_path = "/dev/full";
  o.anchor_der = pki_.root.der;
  int prepared = 0;
  auto full = BundleApplier::Create(o, counter_, clock_, [&](const KmsConfig& c) -> Result<BundleApplier::Commit> {
    ++prepared;
    KmsConfig copy = c;
    return BundleApplier::Commit([this, copy] { live_ = copy; });
  });
  ASSERT_TRUE(full.ok()) << full.error().ToString();
  const std::string v2 = pki_.SignedBundle(Payload(2, 4));
  BundleOutcome out = (*full)->ApplyPosted(v2);
  ExpectRefusedUnchanged(out, StatusCode::kUnavailable, "audit log: writing the bundle audit log: No space left on device");
  EXPECT_EQ(prepared, 1);
  EXPECT_EQ(out.version, 2u);
  EXPECT_EQ(out.version_in_force(), 1u);
  EXPECT_EQ(live_, before);                   // not swapped in
  EXPECT_EQ(counter_.Read()->value, 1u);      // not advanced
  EXPECT_EQ(ReadFile(bundle_path_), v1);      // the saved file was put back
  EXPECT_EQ((*full)->current_version(), 0u);  // that applier never applied anything
  EXPECT_EQ((*full)->refused_count(), 1u);
  EXPECT_EQ((*full)->accepted_count(), 0u);
  // The accepted record and the refusal's record both failed.
  EXPECT_EQ(AuditWriteFailures(AuditRecord::kBundle), failures_before + 2);
  const std::string answer = BundleAnswerJson(out);
  EXPECT_NE(answer.find("\"verdict\":\"refused\""), std::string::npos) << answer;
  EXPECT_NE(answer.find("No space left on device"), std::string::npos) << answer;

  // The start file, re-read (SIGHUP) with a new version: refused the same way.
  WriteBundleFile(v2);
  out = (*full)->ApplyFile(BundleSource::kSighup);
  ExpectRefusedUnchanged(out, StatusCode::kUnavailable, "audit log");
  EXPECT_EQ(counter_.Read()->value, 1u);
  EXPECT_EQ(live_, before);
  WriteBundleFile(v1);

  // Disk back (the writable log): the same bundle is accepted.
  out = applier_->ApplyPosted(v2);
  ASSERT_TRUE(out.accepted()) << out.status.ToString();
  EXPECT_EQ(counter_.Read()->value, 2u);
  EXPECT_EQ(live_.policy_classes["default"].max_responders, 4u);
  auto audit = AuditLines(audit_path_);
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[1]["verdict"], "accepted");
  EXPECT_EQ(audit[1]["version"], 2);
}

// A short write (the disk fills in the middle of the record): RLIMIT_FSIZE
// lets the first bytes through and refuses the rest (EFBIG). The bundle is
// refused, the partial record is cut off again, and the next record starts
// on a line of its own.
TEST_F(BundleApplierTest, AShortAuditWriteIsCutOffAndRefused) {
  WriteBundleFile(pki_.SignedBundle(Payload(1)));
  Make();
  ASSERT_TRUE(applier_->ApplyFile(BundleSource::kStartup).accepted());
  const KmsConfig before = live_;
  const auto size_before = std::filesystem::file_size(audit_path_);
  WriteBundleFile(pki_.SignedBundle(Payload(2, 4)));  // a SIGHUP'd file: nothing to save first

  ::signal(SIGXFSZ, SIG_IGN);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = static_cast<rlim_t>(size_before + 10);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  BundleOutcome out = applier_->ApplyFile(BundleSource::kSighup);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);

  ExpectRefusedUnchanged(out, StatusCode::kUnavailable, "audit log: writing the bundle audit log: File too large");
  EXPECT_EQ(live_, before);
  EXPECT_EQ(counter_.Read()->value, 1u);
  EXPECT_EQ(std::filesystem::file_size(audit_path_), size_before);  // the 10 bytes were cut off

  out = applier_->ApplyFile(BundleSource::kSighup);
  ASSERT_TRUE(out.accepted()) << out.status.ToString();
  auto audit = AuditLines(audit_path_);  // every line parses: nothing glued
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[1]["verdict"], "accepted");
  EXPECT_EQ(audit[1]["version"], 2);
}

TEST_F(BundleApplierTest, StartWithAnUnwritableAuditLogRefusesTheBundle) {
  WriteBundleFile(pki_.SignedBundle(Payload(3)));
  BundleApplier::Options o;
  o.bundle_path = bundle_path_;
  o.audit_log_path = "/dev/full";
  o.anchor_der = pki_.root.der;
  auto full = BundleApplier::Create(o, counter_, clock_, [this](const KmsConfig& c) -> Result<BundleApplier::Commit> {
    KmsConfig copy = c;
    return BundleApplier::Commit([this, copy] { live_ = copy; });
  });
  ASSERT_TRUE(full.ok());
  BundleOutcome out = (*full)->ApplyFile(BundleSource::kStartup);
  ExpectRefusedUnchanged(out, StatusCode::kUnavailable, "audit log");
  EXPECT_EQ(counter_.Read()->value, 0u);
  EXPECT_EQ(live_.version, 0u);
}

TEST_F(BundleApplierTest, CounterThatCannotAdvanceRefusesAndTheRefusalSupersedes) {
  const std::string v1 = pki_.SignedBundle(Payload(1));
  WriteBundleFile(v1);
  Make();
  ASSERT_TRUE(applier_->ApplyFile(BundleSource::kStartup).accepted());
  const KmsConfig before = live_;
  counter_.fail_advance = true;
  const std::string v2 = pki_.SignedBundle(Payload(2, 4));
  BundleOutcome out = applier_->ApplyPosted(v2);
  ExpectRefusedUnchanged(out, StatusCode::kUnavailable, "bundle counter: token unreachable");
  EXPECT_EQ(live_, before);
  EXPECT_EQ(ReadFile(bundle_path_), v1);
  EXPECT_EQ(applier_->current_version(), 1u);
  // The record written before the counter moved, then the refusal that
  // supersedes it (same digest): the last record for a digest is the verdict.
  auto audit = AuditLines(audit_path_);
  ASSERT_EQ(audit.size(), 3u);
  EXPECT_EQ(audit[1]["verdict"], "accepted");
  EXPECT_EQ(audit[2]["verdict"], "refused");
  EXPECT_EQ(audit[2]["digest"], audit[1]["digest"]);
  EXPECT_EQ(audit[2]["version_in_force"], 1);
  counter_.fail_advance = false;
  ASSERT_TRUE(applier_->ApplyPosted(v2).accepted());
  EXPECT_EQ(counter_.Read()->value, 2u);
}

// ---- every refusal names the version in force ---------------------------------------

// With version 2 in force, a refusal reports previous_version 2 and
// version_in_force 2, in the outcome, in the POST answer and in the audit
// line; `version` is the refused bundle's own version where it verified,
// else null.
class VersionInForceTest : public BundleApplierTest {
 protected:
  void SetUp() override {
    BundleApplierTest::SetUp();
    WriteBundleFile(pki_.SignedBundle(Payload(2)));
    Make([this](const KmsConfig& c) -> Result<BundleApplier::Commit> {
      if (fail_prepare_) return Unavailable("token gone");
      KmsConfig copy = c;
      return BundleApplier::Commit([this, copy] { live_ = copy; });
    });
    ASSERT_TRUE(applier_->ApplyFile(BundleSource::kStartup).accepted());
  }

  void ExpectRefusal(const BundleOutcome& out, std::optional<uint64_t> version, const std::string& reason_part) {
    SCOPED_TRACE(reason_part);
    EXPECT_EQ(out.verdict, BundleVerdict::kRefused);
    EXPECT_NE(out.status.message().find(reason_part), std::string::npos) << out.status.message();
    EXPECT_EQ(out.version, version);
    EXPECT_EQ(out.previous_version, 2u);
    EXPECT_EQ(out.version_in_force(), 2u);
    const auto answer = nlohmann::json::parse(BundleAnswerJson(out));
    EXPECT_EQ(answer["verdict"], "refused");
    EXPECT_EQ(answer["previous_version"], 2);
    EXPECT_EQ(answer["version_in_force"], 2);
    EXPECT_EQ(answer["version"], version ? nlohmann::json(*version) : nlohmann::json(nullptr));
    EXPECT_NE(answer["reason"].get<std::string>().find(reason_part), std::string::npos);
    const auto line = AuditLines(audit_path_).back();
    EXPECT_EQ(line["verdict"], "refused");
    EXPECT_EQ(line["previous_version"], 2);
    EXPECT_EQ(line["version_in_force"], 2);
    EXPECT_EQ(line["version"], answer["version"]);
    EXPECT_EQ(applier_->current_version(), 2u);
  }

  bool fail_prepare_ = false;
};

TEST_F(VersionInForceTest, RefusedBeforeTheVersionIsKnown) {
  std::string flipped = pki_.SignedBundle(Payload(5));
  flipped[flipped.find("\"payload\"") + 14] ^= 0x01;
  ExpectRefusal(applier_->ApplyPosted(flipped), std::nullopt, "");
  ExpectRefusal(applier_->ApplyPosted(test_pki::TestPki("another authority").SignedBundle(Payload(5))), std::nullopt,
                "certificates[0]: not issued by the provisioning anchor");
  ExpectRefusal(applier_->ApplyPosted("not a bundle"), std::nullopt, "$: JSON syntax error");
  ExpectRefusal(applier_->ApplyPosted(pki_.SignedBundle(R"({"version": 5, "kms_identity": "k", "users": 7})")),
                std::nullopt, "payload: users: expected an array");
  clock_.Set(std::chrono::system_clock::from_time_t(2600000000));  // after the PKI's 2049
  ExpectRefusal(applier_->ApplyPosted(pki_.SignedBundle(Payload(5))), std::nullopt, "expired on");
}

TEST_F(VersionInForceTest, RefusedAfterTheVersionIsKnown) {
  ExpectRefusal(applier_->ApplyPosted(pki_.SignedBundle(Payload(1))), 1,
                "version 1 is not newer than the accepted version 2");
  ExpectRefusal(applier_->ApplyPosted(pki_.SignedBundle(Payload(2, 3))), 2,
                "version 2 is not newer than the accepted version 2");
  fail_prepare_ = true;
  ExpectRefusal(applier_->ApplyPosted(pki_.SignedBundle(Payload(3))), 3, "applying the bundle: token gone");
  fail_prepare_ = false;
  counter_.fail_advance = true;
  ExpectRefusal(applier_->ApplyPosted(pki_.SignedBundle(Payload(3))), 3, "bundle counter: token unreachable");
}

TEST_F(VersionInForceTest, RefusedFilesAndAnUnreadableCounter) {
  std::filesystem::remove(bundle_path_);
  ExpectRefusal(applier_->ApplyFile(BundleSource::kSighup), std::nullopt, "bundle file");
  WriteBundleFile(pki_.SignedBundle(Payload(1)));
  ExpectRefusal(applier_->ApplyFile(BundleSource::kSighup), 1, "not newer than the accepted version 2");
  // The token's counter cannot be read: the version this process runs.
  counter_.fail_read = true;
  ExpectRefusal(applier_->ApplyPosted(pki_.SignedBundle(Payload(3))), 3, "bundle counter: token unreachable");
  ExpectRefusal(applier_->ApplyPosted("{}"), std::nullopt, "format: required member is missing");
}

TEST_F(VersionInForceTest, AcceptedAnswersNameTheNewVersion) {
  BundleOutcome out = applier_->ApplyPosted(pki_.SignedBundle(Payload(3)));
  ASSERT_TRUE(out.accepted()) << out.status.ToString();
  EXPECT_EQ(out.version_in_force(), 3u);
  EXPECT_EQ(BundleAnswerJson(out), "{\"digest\":\"" + out.digest_hex +
                                       "\",\"previous_version\":2,\"verdict\":\"accepted\",\"version\":3,"
                                       "\"version_in_force\":3}\n");
  const auto line = AuditLines(audit_path_).back();
  EXPECT_EQ(line["version"], 3);
  EXPECT_EQ(line["previous_version"], 2);
  EXPECT_EQ(line["version_in_force"], 3);
}

}  // namespace
}  // namespace tkms::provisioning
