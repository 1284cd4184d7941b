// Tests of the configuration loader (provisioning/config.h, docs/config.md).
//
// Every refusal is checked for its status code and for the exact JSON path
// at the start of its message. Refusals are one parameterised test each
// (ctest lists them as provisioning_config_test.Refusals/RefusalTest.Refused/<name>,
// and those of the bundle sections as KmsRefusals/KmsRefusalTest.Refused/<name>).
// Certificates are made in the test with the shared test PKI (test_pki.h):
// no key is stored anywhere and nothing depends on the clock.
#include "provisioning/config.h"
#include "tests/provisioning/test_pki.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tkms::provisioning {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

constexpr const char* kMinimal = R"({"kms_identity": "kms.example.org", "token": {"pin_file": "/etc/tkms/token.pin"}})";

// A document with every kind of section, that the refusal cases mutate.
// token_users is false so that group members must be configured users.
Json Base() {
  return Json::parse(R"({
    "kms_identity": "kms.example.org",
    "token": {"pin_file": "token.pin"},
    "policy_classes": {"default": {}, "gold": {"max_keys": 8}},
    "token_users": false,
    "users": [
      {"identities": ["sip:alice@example.org", "tel:+100"], "psk_id": "0a0B"},
      {"identities": ["sip:bob@example.org"], "policy_class": "gold"}
    ],
    "groups": [
      {"identity": "sip:team@example.org", "members": ["sip:alice@example.org", "sip:bob@example.org"]}
    ]
  })");
}

std::string SourceDir() {
  const char* dir = std::getenv("TKMS_SOURCE_DIR");
  return dir != nullptr ? dir : TKMS_SOURCE_DIR;
}

std::string ExamplePath() { return SourceDir() + "/docs/examples/tkmsd.json"; }
std::string BundleExamplePath() { return SourceDir() + "/docs/examples/bundle-payload.json"; }
std::string LocalExamplePath() { return SourceDir() + "/docs/examples/tkmsd-local.json"; }

// ---- test certificates ---------------------------------------------------------

// Self-signed certificates from the shared test PKI (tests/provisioning/
// test_pki.h): a fresh P-256 key each (never written anywhere), explicit
// validity ("YYYYMMDDhhmmss", UTC), basicConstraints CA=true or CA=false.
std::string SelfSigned(const std::string& subject, bool ca, const char* not_before, const char* not_after) {
  static uint64_t serial = 0;
  test_pki::CertSpec spec = ca ? test_pki::CaSpec(subject) : test_pki::SignerSpec(subject);
  spec.not_before = not_before;
  spec.not_after = not_after;
  spec.serial = ++serial;
  return test_pki::SelfSignedCert(spec, test_pki::Key::Generate()).pem;
}

struct TestCertificates {
  std::string peer;         // CA=false, 2025-01-01 .. 2045-01-01
  std::string ca;           // CA=true, 2025-01-01 .. 2045-01-01
  std::string external;     // CA=false, 2025-01-01 .. 2045-01-01
  std::string short_lived;  // CA=false, 2025-01-01 .. 2026-01-31
  std::string future_ca;    // CA=true, 2027-01-01 .. 2028-01-01
};

// Made once per process.
const TestCertificates& Certs() {
  static const TestCertificates certs = [] {
    TestCertificates c;
    c.peer = SelfSigned("CN=kms.peer.example.net,O=tkms test", false, "20250101000000", "20450101000000");
    c.ca = SelfSigned("CN=Peer KMS CA,O=tkms test", true, "20250101000000", "20450101000000");
    c.external = SelfSigned("CN=kms.partner.example.com,O=tkms test", false, "20250101000000", "20450101000000");
    c.short_lived = SelfSigned("CN=kms.short.example.com,O=tkms test", false, "20250101000000", "20260131000000");
    c.future_ca = SelfSigned("CN=Future CA,O=tkms test", true, "20270101000000", "20280101000000");
    return c;
  }();
  return certs;
}

using test_pki::Utc;

// Base() with every provisioned section of issue 6: a version, two trust
// relations (one by certificate, one by CA), an external KMS, KRR flags and
// users with KMS lists.
Json KmsBase() {
  Json doc = Base();
  doc["version"] = 7;
  doc["default_policy_class"] = "default";
  doc["trust_relations"] = Json::array({
      {{"kms_uri", "kms.peer.example.net"}, {"endpoint", "kms.peer.example.net:8443"}, {"certificate", Certs().peer}},
      {{"kms_uri", "kms-b.peer.example.net"}, {"endpoint", "192.0.2.10:8443"}, {"ca", Certs().ca}},
  });
  doc["external_kms"] =
      Json::array({{{"kms_uri", "kms.partner.example.com"}, {"certificate", Certs().external}}});
  doc["krr_policy"] = {{"allow_krr", true}, {"report_krr", true}};
  doc["users"][0]["primary_home_kms"] = {"kms.example.org"};
  doc["users"][0]["secondary_home_kms"] = {"kms.peer.example.net", "kms-b.peer.example.net"};
  doc["users"][0]["external_kms"] = {"kms.partner.example.com"};
  doc["users"][1]["primary_home_kms"] = {"kms-b.peer.example.net"};
  return doc;
}

// `doc` without its local sections (a bundle payload) or with only them
// (a local configuration).
Json BundlePart(Json doc) {
  for (const char* key : {"listen", "http", "tls", "token", "mikey", "zk"}) doc.erase(key);
  return doc;
}
Json LocalPart(const Json& doc) {
  Json local = Json::object();
  for (const char* key : {"listen", "http", "tls", "token", "mikey"}) {
    if (doc.contains(key)) local[key] = doc[key];
  }
  return local;
}

// The message of a refusal, after checking that it is kInvalidArgument.
std::string Refusal(std::string_view text, ConfigRole role = ConfigRole::kComplete) {
  auto config = ParseConfig(text, role);
  if (config.ok()) {
    ADD_FAILURE() << "accepted: " << text.substr(0, 300);
    return "";
  }
  EXPECT_EQ(config.error().code(), StatusCode::kInvalidArgument) << config.error().ToString();
  return config.error().message();
}

bool IsPrintableAscii(const std::string& text) {
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// A fresh directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tkms-config-test-XXXXXX").string();
    const char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name, const std::string& content) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file, std::ios::binary) << content;
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---- accepted documents ----------------------------------------------------

TEST(ConfigTest, MinimalConfigGivesTheDefaults) {
  auto config = ParseConfig(kMinimal);
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  KmsConfig expected;
  expected.kms_identity = "kms.example.org";
  expected.token.pin_file = "/etc/tkms/token.pin";
  expected.policy_classes["default"] = PolicyClass{};
  EXPECT_EQ(*config, expected);
  // The documented defaults, spelled out.
  EXPECT_EQ(config->listen.ua, "127.0.0.1:8080");
  EXPECT_EQ(config->listen.admin, "127.0.0.1:8081");
  EXPECT_EQ(config->http.max_body_bytes, 16384u);
  EXPECT_EQ(config->http.worker_threads, 8u);
  EXPECT_EQ(config->http.request_timeout_ms, 10000u);
  EXPECT_EQ(config->http.keep_alive_timeout_ms, 30000u);
  EXPECT_EQ(config->token.module_path, "/usr/lib/softhsm/libsofthsm2.so");
  EXPECT_EQ(config->token.token, "tkms");
  EXPECT_FALSE(config->token.softhsm2_conf.has_value());
  EXPECT_EQ(config->token.sessions, 4u);
  EXPECT_EQ(config->mikey.timestamp_window_s, 60u);
  EXPECT_EQ(config->mikey.replay_cache_entries, 1000000u);
  EXPECT_EQ(config->default_policy_class, "default");
  EXPECT_TRUE(config->token_users);
  EXPECT_TRUE(config->users.empty());
  EXPECT_TRUE(config->groups.empty());
}

TEST(ConfigTest, ExampleFileParses) {
  auto config = LoadConfigFile(ExamplePath());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->kms_identity, "kms.example.org");
  EXPECT_EQ(config->listen.ua, "127.0.0.1:8080");
  EXPECT_EQ(config->listen.ua_tls, "0.0.0.0:8443");
  EXPECT_EQ(config->tls.certificate_chain_file, "/etc/tkms/kms-tls-chain.pem");
  EXPECT_EQ(config->token.softhsm2_conf, "/etc/tkms/softhsm2.conf");
  ASSERT_EQ(config->policy_classes.size(), 3u);
  const PolicyClass& restricted = config->policy_classes.at("restricted");
  EXPECT_EQ(restricted.default_lifetime_s, 600u);
  EXPECT_FALSE(restricted.allow_reuse);
  EXPECT_EQ(restricted.max_keys, 1u);
  EXPECT_TRUE(config->policy_classes.at("dispatch.v2").allow_initiator_keys);
  ASSERT_EQ(config->users.size(), 3u);
  EXPECT_EQ(config->users[0].identities, (std::vector<std::string>{"sip:alice@example.org", "tel:+15551230001"}));
  EXPECT_EQ(config->users[0].policy_class, "");  // default_policy_class
  EXPECT_EQ(config->users[1].psk_id, (std::vector<uint8_t>{0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78}));
  EXPECT_EQ(config->users[1].policy_class, "restricted");
  EXPECT_FALSE(config->users[2].psk_id.has_value());
  ASSERT_EQ(config->groups.size(), 1u);
  // carol is not a configured user: allowed because token_users is true.
  EXPECT_EQ(config->groups[0].members.back(), "sip:carol@example.org");
}

TEST(ConfigTest, BaseDocumentParses) {
  auto config = ParseConfig(Base().dump());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->users[0].psk_id, (std::vector<uint8_t>{0x0a, 0x0b}));
  EXPECT_EQ(config->policy_classes.at("gold").max_keys, 8u);
  EXPECT_EQ(config->policy_classes.at("gold").max_responders, 16u);  // default kept
}

void ExpectRoundTrip(const KmsConfig& config) {
  const std::string canonical = ConfigToJson(config);
  auto again = ParseConfig(canonical);
  ASSERT_TRUE(again.ok()) << again.error().ToString() << "\n" << canonical;
  EXPECT_EQ(*again, config) << canonical;
  EXPECT_EQ(ConfigToJson(*again), canonical);
}

TEST(ConfigTest, RoundTripOfTheMinimalConfig) {
  auto config = ParseConfig(kMinimal);
  ASSERT_TRUE(config.ok());
  ExpectRoundTrip(*config);
}

TEST(ConfigTest, RoundTripOfTheExample) {
  auto config = LoadConfigFile(ExamplePath());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  ExpectRoundTrip(*config);
}

TEST(ConfigTest, RoundTripOfEveryFieldChanged) {
  KmsConfig config;
  config.kms_identity = "kms-2.example.net";
  config.listen = {"10.0.0.1:0", "10.0.0.1:9443", "10.0.0.1:9000", "10.0.0.1:9444", true};
  config.zk = {100, 600000, 256, 0};
  config.http = {1048576, 256, 100, 0, 7, 3, 2, 1024, 8, 0, true};
  config.tls = {"tkms-tls-other", "chain.pem", "/etc/tkms/operators-ca.pem", {"op1.pem", "op2.pem"}};
  config.token.module_path = "/opt/hsm/lib/libpkcs11.so";
  config.token.token = "pkcs11:token=kms%20a;serial=1234";
  config.token.pin_file = "relative/pin";
  config.token.softhsm2_conf = "softhsm2.conf";
  config.token.sessions = 64;
  config.mikey = {3600, 10000000};
  PolicyClass odd{31536000, 31536000, false, false, true, true, 256, 16};
  config.policy_classes = {{"a.b-c_D9", odd}, {"x", PolicyClass{1, 1, true, false, false, true, 1, 1}}};
  config.default_policy_class = "x";
  config.token_users = false;
  config.users.push_back(UserConfig{{"sip:\"quoted\"\\back@example.org", "sip:\xc3\xa9t\xc3\xa9@example.org"},
                                    std::vector<uint8_t>(64, 0xab),
                                    "a.b-c_D9"});
  config.users.push_back(UserConfig{{"u2"}, std::nullopt, ""});
  config.groups.push_back(GroupConfig{"g1", {"u2", "sip:\"quoted\"\\back@example.org"}});
  config.user = "tkms";
  ExpectRoundTrip(config);
}

TEST(ConfigRoleTest, UserIsLocalAndAPortableAccountName) {
  auto local = ParseConfig(R"({"token": {"pin_file": "p"}, "user": "_tkms-1"})", ConfigRole::kLocal);
  ASSERT_TRUE(local.ok()) << local.error().ToString();
  EXPECT_EQ(local->user, "_tkms-1");
  EXPECT_EQ(CombineConfig(*local, KmsConfig{}).user, "_tkms-1");
  EXPECT_EQ(Refusal(R"({"version": 1, "kms_identity": "k", "user": "tkms"})", ConfigRole::kBundle),
            "user: an appliance-local setting; it belongs in the local configuration (--config), not in a bundle");
  for (const char* bad : {R"("")", R"("Root")", R"("1tkms")", R"("tk ms")", R"("tkms:x")",
                          R"("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")"}) {
    EXPECT_THAT(Refusal(std::string(R"({"token": {"pin_file": "p"}, "user": )") + bad + "}", ConfigRole::kLocal),
                StartsWith("user: ")) << bad;
  }
  EXPECT_THAT(Refusal(R"({"token": {"pin_file": "p"}, "user": 0})", ConfigRole::kLocal), StartsWith("user: "));
}

TEST(ConfigTest, KemacIvTimestampChoice) {
  auto def = ParseConfig(kMinimal);
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->mikey.kemac_iv_timestamp, KemacIvTimestamp::kResponse);
  auto request = ParseConfig(
      R"({"kms_identity": "k", "token": {"pin_file": "p"}, "mikey": {"kemac_iv_timestamp": "request"}})");
  ASSERT_TRUE(request.ok()) << request.error().message();
  EXPECT_EQ(request->mikey.kemac_iv_timestamp, KemacIvTimestamp::kRequest);
  auto back = ParseConfig(ConfigToJson(*request));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->mikey.kemac_iv_timestamp, KemacIvTimestamp::kRequest);
  auto bad = ParseConfig(
      R"({"kms_identity": "k", "token": {"pin_file": "p"}, "mikey": {"kemac_iv_timestamp": "initiator"}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message(), StartsWith("mikey.kemac_iv_timestamp: "));
}

TEST(ConfigTest, CanonicalFormIsCompactSortedAndLowercaseHex) {
  auto config = LoadConfigFile(ExamplePath());
  ASSERT_TRUE(config.ok());
  const std::string canonical = ConfigToJson(*config);
  EXPECT_EQ(canonical.find('\n'), std::string::npos);
  EXPECT_THAT(canonical, StartsWith(R"({"default_policy_class":"default","external_kms":[],"groups":[)"));
  EXPECT_THAT(canonical, HasSubstr(R"("psk_id":"0f1e2d3c4b5a6978")"));
  // Absent optional fields stay absent; everything else is written out.
  EXPECT_THAT(ConfigToJson(*ParseConfig(kMinimal)),
              HasSubstr(std::string(R"("token":{"health_check_interval_ms":1000,)") +
                        R"("module_path":"/usr/lib/softhsm/libsofthsm2.so",)" +
                        R"("pin_file":"/etc/tkms/token.pin","sessions":4,"token":"tkms"})"));
}

TEST(ConfigTest, UppercaseHexAndNegativeZeroAreAccepted) {
  Json doc = Base();
  doc["users"][0]["psk_id"] = "ABCDEF";
  doc["http"]["keep_alive_timeout_ms"] = Json::parse("-0");
  auto config = ParseConfig(doc.dump());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->users[0].psk_id, (std::vector<uint8_t>{0xab, 0xcd, 0xef}));
  EXPECT_EQ(config->http.keep_alive_timeout_ms, 0u);
}

TEST(ConfigTest, TokenUsersAllowsMembersThatAreNoConfiguredUser) {
  Json doc = Base();
  doc["groups"][0]["members"].push_back("sip:carol@example.org");
  EXPECT_THAT(Refusal(doc.dump()), StartsWith("groups[0].members[2]: 'sip:carol@example.org' is not an identity"));
  doc["token_users"] = true;
  EXPECT_TRUE(ParseConfig(doc.dump()).ok());
}

TEST(ConfigTest, ByteOrderMarkAndWhitespaceAreAccepted) {
  EXPECT_TRUE(ParseConfig(std::string("\xef\xbb\xbf") + kMinimal + "\n\t ").ok());
}

TEST(ConfigTest, ExactlyMaximumDepthIsNotADepthError) {
  // 16 levels: the parser accepts it, the schema then refuses the value.
  std::string doc =
      R"({"kms_identity":"k","token":{"pin_file":"p"},"users":)" + std::string(15, '[') + std::string(15, ']') + "}";
  EXPECT_THAT(Refusal(doc), StartsWith("users[0]: expected an object, got an array"));
}

// ---- refusals: one case per rule -------------------------------------------

struct RefusalCase {
  std::string name;
  std::function<void(Json&)> mutate;  // applied to Base()
  std::string path;                   // the message starts with "<path>: "
  std::string problem;                // ... and contains this
};

void PrintTo(const RefusalCase& c, std::ostream* out) { *out << c.name; }

class RefusalTest : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(RefusalTest, Refused) {
  Json doc = Base();
  GetParam().mutate(doc);
  const std::string message = Refusal(doc.dump());
  EXPECT_THAT(message, StartsWith(GetParam().path + ": "));
  EXPECT_THAT(message, HasSubstr(GetParam().problem));
  EXPECT_TRUE(IsPrintableAscii(message)) << message;
}

// Sets doc at a JSON pointer.
std::function<void(Json&)> Set(const std::string& pointer, Json value) {
  return [pointer, value](Json& doc) { doc[Json::json_pointer(pointer)] = value; };
}
std::function<void(Json&)> Erase(const std::string& pointer, const std::string& key) {
  return [pointer, key](Json& doc) { doc[Json::json_pointer(pointer)].erase(key); };
}
std::function<void(Json&)> SetListen(const std::string& ua) { return Set("/listen/ua", ua); }

std::vector<RefusalCase> RefusalCases() {
  const std::string range = "is out of range";
  std::vector<RefusalCase> cases = {
      // structure
      {"UnknownTopLevelKey", Set("/kms_identiti", "x"), "kms_identiti", "unknown key (expected one of: kms_identity,"},
      {"UnknownNestedKey", Set("/http/max_body", 1), "http.max_body", "unknown key"},
      {"UnknownPolicyKey", Set("/policy_classes/gold/max_key", 1), "policy_classes.gold.max_key", "unknown key"},
      {"UnknownUserKey", Set("/users/1/name", "bob"), "users[1].name", "unknown key"},
      {"UnknownGroupKey", Set("/groups/0/policy_class", "gold"), "groups[0].policy_class", "unknown key"},
      {"UnknownKeyNeedsQuoting", Set("/listen/a b", 1), "listen['a b']", "unknown key"},
      {"MissingKmsIdentity", Erase("", "kms_identity"), "kms_identity", "required field is missing"},
      {"MissingToken", Erase("", "token"), "token.pin_file", "required field is missing"},
      {"MissingPinFile", Set("/token", Json::object()), "token.pin_file", "required field is missing"},
      // types
      {"StringForInteger", Set("/http/worker_threads", "8"), "http.worker_threads",
       "expected an integer, got a string"},
      {"FractionForInteger", Set("/mikey/timestamp_window_s", 1.5), "mikey.timestamp_window_s",
       "expected an integer, got a number with a fraction or exponent"},
      {"IntegerBeyond64Bits", Set("/http/max_body_bytes", Json::parse("99999999999999999999999")),
       "http.max_body_bytes", "a number beyond 64 bits is out of range 256..1048576"},
      {"ExponentForInteger", Set("/http/max_body_bytes", Json::parse("1e4")), "http.max_body_bytes",
       "expected an integer"},
      {"StringForBool", Set("/token_users", "yes"), "token_users", "expected a boolean, got a string"},
      {"IntegerForBool", Set("/policy_classes/gold/allow_reuse", 1), "policy_classes.gold.allow_reuse",
       "expected a boolean"},
      {"ArrayForSection", Set("/http", Json::array()), "http", "expected an object, got an array"},
      {"NullForOptionalString", Set("/token/softhsm2_conf", nullptr), "token.softhsm2_conf",
       "expected a string, got null"},
      {"IntegerForString", Set("/kms_identity", 7), "kms_identity", "expected a string, got an integer"},
      {"ObjectForUsers", Set("/users", Json::object()), "users", "expected an array, got an object"},
      {"StringForIdentities", Set("/users/0/identities", "sip:a"), "users[0].identities", "expected an array"},
      {"IntegerIdentity", Set("/users/0/identities/1", 5), "users[0].identities[1]", "expected a string"},
      {"ArrayForPolicyClasses", Set("/policy_classes", Json::array()), "policy_classes", "expected an object"},
      {"StringForPolicyClass", Set("/policy_classes/gold", "x"), "policy_classes.gold", "expected an object"},
      {"ObjectForGroups", Set("/groups", Json::object()), "groups", "expected an array"},
      // ranges
      {"MaxBodyBytesLow", Set("/http/max_body_bytes", 255), "http.max_body_bytes", "255 is out of range 256..1048576"},
      {"MaxBodyBytesHigh", Set("/http/max_body_bytes", 1048577), "http.max_body_bytes", range},
      {"WorkerThreadsLow", Set("/http/worker_threads", 0), "http.worker_threads", "0 is out of range 1..256"},
      {"WorkerThreadsHigh", Set("/http/worker_threads", 257), "http.worker_threads", range},
      {"RequestTimeoutLow", Set("/http/request_timeout_ms", 99), "http.request_timeout_ms", "out of range 100..600000"},
      {"RequestTimeoutHigh", Set("/http/request_timeout_ms", 600001), "http.request_timeout_ms", range},
      {"KeepAliveHigh", Set("/http/keep_alive_timeout_ms", 600001), "http.keep_alive_timeout_ms",
       "out of range 0..600000"},
      {"KeepAliveNegative", Set("/http/keep_alive_timeout_ms", -1), "http.keep_alive_timeout_ms", "-1 is out of range"},
      {"HugeInteger", Set("/http/keep_alive_timeout_ms", 18446744073709551615u), "http.keep_alive_timeout_ms",
       "18446744073709551615 is out of range"},
      {"SessionsLow", Set("/token/sessions", 0), "token.sessions", "out of range 1..64"},
      {"SessionsHigh", Set("/token/sessions", 65), "token.sessions", range},
      {"TimestampWindowLow", Set("/mikey/timestamp_window_s", 0), "mikey.timestamp_window_s", "out of range 1..3600"},
      {"TimestampWindowHigh", Set("/mikey/timestamp_window_s", 3601), "mikey.timestamp_window_s", range},
      {"ReplayCacheLow", Set("/mikey/replay_cache_entries", 0), "mikey.replay_cache_entries",
       "out of range 1..10000000"},
      {"ReplayCacheHigh", Set("/mikey/replay_cache_entries", 10000001), "mikey.replay_cache_entries", range},
      {"MaxLifetimeLow", Set("/policy_classes/gold/max_lifetime_s", 0), "policy_classes.gold.max_lifetime_s",
       "out of range 1..31536000"},
      {"MaxLifetimeHigh", Set("/policy_classes/gold/max_lifetime_s", 31536001), "policy_classes.gold.max_lifetime_s",
       range},
      {"DefaultLifetimeLow", Set("/policy_classes/gold/default_lifetime_s", 0),
       "policy_classes.gold.default_lifetime_s", range},
      {"DefaultLifetimeAboveMax",
       [](Json& doc) {
         doc["policy_classes"]["gold"]["default_lifetime_s"] = 7200;
         doc["policy_classes"]["gold"]["max_lifetime_s"] = 3600;
       },
       "policy_classes.gold.default_lifetime_s", "7200 is more than max_lifetime_s (3600)"},
      {"DefaultLifetimeDefaultAboveMax", Set("/policy_classes/gold/max_lifetime_s", 1800),
       "policy_classes.gold.default_lifetime_s", "3600 (the default) is more than max_lifetime_s (1800)"},
      {"MaxRespondersLow", Set("/policy_classes/gold/max_responders", 0), "policy_classes.gold.max_responders",
       "out of range 1..256"},
      {"MaxRespondersHigh", Set("/policy_classes/gold/max_responders", 257), "policy_classes.gold.max_responders",
       range},
      {"MaxKeysLow", Set("/policy_classes/gold/max_keys", 0), "policy_classes.gold.max_keys", "out of range 1..16"},
      {"MaxKeysHigh", Set("/policy_classes/gold/max_keys", 17), "policy_classes.gold.max_keys", range},
      // strings
      {"EmptyKmsIdentity", Set("/kms_identity", ""), "kms_identity", "1..255 bytes, this one has 0"},
      {"LongKmsIdentity", Set("/kms_identity", std::string(256, 'k')), "kms_identity", "this one has 256"},
      {"KmsIdentityWithSpace", Set("/kms_identity", "kms example"), "kms_identity",
       "space or control character at byte 3"},
      {"IdentityWithTab", Set("/users/1/identities/0", "sip:bob\t@example.org"), "users[1].identities[0]",
       "'sip:bob\\x09@example.org' contains a space or control character at byte 7"},
      {"LongIdentity", Set("/users/1/identities/0", "sip:" + std::string(252, 'b')), "users[1].identities[0]",
       "this one has 256"},
      {"RelativeModulePath", Set("/token/module_path", "libsofthsm2.so"), "token.module_path",
       "must be an absolute path"},
      {"EmptyPinFile", Set("/token/pin_file", ""), "token.pin_file", "must not be empty"},
      {"PinFileWithNul", Set("/token/pin_file", std::string("pin\0file", 8)), "token.pin_file",
       "control character at byte 3"},
      {"LongSoftHsmConf", Set("/token/softhsm2_conf", "/" + std::string(4095, 'c')), "token.softhsm2_conf",
       "at most 4095"},
      {"EmptyTokenSpec", Set("/token/token", ""), "token.token", "must not be empty"},
      {"PolicyNameWithSpace", Set("/policy_classes/gold class", Json::object()), "policy_classes['gold class']",
       "1..64 characters from A-Z a-z 0-9 _ . -"},
      {"PolicyNameTooLong", Set("/policy_classes/" + std::string(65, 'p'), Json::object()),
       "policy_classes['" + std::string(64, 'p') + "...']", "1..64 characters"},
      {"EmptyPolicyName", Set("/policy_classes/", Json::object()), "policy_classes['']", "1..64 characters"},
      // listen
      {"ListenHostName", SetListen("localhost:8080"), "listen.ua", "expected \"ADDRESS:PORT\""},
      {"ListenNoPort", SetListen("127.0.0.1"), "listen.ua", "got '127.0.0.1'"},
      {"ListenEmptyPort", SetListen("127.0.0.1:"), "listen.ua", "ADDRESS:PORT"},
      {"ListenPortTooBig", SetListen("127.0.0.1:65536"), "listen.ua", "ADDRESS:PORT"},
      {"ListenOctetTooBig", SetListen("256.0.0.1:80"), "listen.ua", "ADDRESS:PORT"},
      {"ListenLeadingZeroOctet", SetListen("127.0.0.01:80"), "listen.ua", "ADDRESS:PORT"},
      {"ListenLeadingZeroPort", SetListen("127.0.0.1:080"), "listen.ua", "ADDRESS:PORT"},
      {"ListenThreeOctets", SetListen("1.2.3:80"), "listen.ua", "ADDRESS:PORT"},
      {"ListenFiveOctets", SetListen("1.2.3.4.5:80"), "listen.ua", "ADDRESS:PORT"},
      {"ListenEmptyOctet", SetListen("1..3.4:80"), "listen.ua", "ADDRESS:PORT"},
      {"ListenIpv6", SetListen("[::1]:80"), "listen.ua", "ADDRESS:PORT"},
      {"ListenSpace", Set("/listen/admin", " 127.0.0.1:80"), "listen.admin", "ADDRESS:PORT"},
      {"ListenSign", SetListen("127.0.0.1:+80"), "listen.ua", "ADDRESS:PORT"},
      {"ListenSamePort",
       [](Json& doc) {
         doc["listen"] = {{"ua", "0.0.0.0:8080"}, {"admin", "127.0.0.1:8080"}};
       },
       "listen.admin", "conflicts with listen.ua"},
      {"ListenTlsSamePortAsUa",
       [](Json& doc) {
         doc["listen"] = {{"ua", "127.0.0.1:8080"}, {"ua_tls", "0.0.0.0:8080"}};
         doc["tls"] = {{"certificate_chain_file", "c.pem"}};
       },
       "listen.ua_tls", "conflicts with listen.ua"},
      // The network edge (docs/config.md, listen): plaintext only on
      // loopback unless said so; HTTPS needs a chain; an admin listener off
      // loopback needs client certificates.
      {"PlaintextUaOffLoopback", SetListen("0.0.0.0:8080"), "listen.ua", "plaintext HTTP off loopback"},
      {"PlaintextUaOnAnotherAddress", SetListen("10.1.2.3:8080"), "listen.ua", "plaintext_ua_on_non_loopback"},
      {"PlaintextUaConsentMustBeBoolean", Set("/listen/plaintext_ua_on_non_loopback", "yes"),
       "listen.plaintext_ua_on_non_loopback", "a boolean"},
      {"NoUaListenerAtAll", SetListen(""), "listen", "needs a Ua listener"},
      {"TlsWithoutChain", Set("/listen/ua_tls", "0.0.0.0:8443"), "tls.certificate_chain_file", "required"},
      {"AdminOffLoopbackWithoutClientCertificates", Set("/listen/admin", "0.0.0.0:8081"), "listen.admin",
       "requires mutual TLS"},
      {"AdminMutualTlsWithoutChain", Set("/tls/admin_client_ca_file", "ca.pem"), "tls.certificate_chain_file",
       "mutual TLS"},
      {"TlsUnknownKey", Set("/tls/private_key_file", "k.pem"), "tls.private_key_file", "unknown key"},
      {"TlsKeyLabelWithSpace", Set("/tls/key_label", "a b"), "tls.key_label", "no spaces"},
      {"TlsPinsNotAnArray", Set("/tls/admin_client_certificate_files", "a.pem"),
       "tls.admin_client_certificate_files", "array"},
      {"TlsPinWithControlCharacter", Set("/tls/admin_client_certificate_files", Json::array({"a\nb"})),
       "tls.admin_client_certificate_files[0]", ""},
      {"HttpMaxConnectionsZero", Set("/http/max_connections", 0), "http.max_connections", ""},
      {"HttpHeaderFieldsTooMany", Set("/http/max_header_fields", 1001), "http.max_header_fields", ""},
      {"HttpReusePortNotBoolean", Set("/http/reuse_port", 1), "http.reuse_port", "a boolean"},
      // users and policy classes
      {"DuplicateIdentityAcrossUsers", Set("/users/1/identities/0", "tel:+100"), "users[1].identities[0]",
       "'tel:+100' already belongs to users[0]"},
      {"DuplicateIdentityWithinUser", Set("/users/0/identities/1", "sip:alice@example.org"), "users[0].identities[1]",
       "is listed twice"},
      // Identities compare in the KMS user identity format (scheme and host
      // case-insensitive): the same user twice under another spelling.
      {"DuplicateIdentityOtherCase", Set("/users/1/identities/0", "SIP:alice@EXAMPLE.org"), "users[1].identities[0]",
       "already belongs to users[0]"},
      {"UserIsKmsIdentityOtherCase", Set("/users/1/identities/0", "KMS.Example.Org"), "users[1].identities[0]",
       "is kms_identity"},
      {"UserIsKmsIdentity", Set("/users/1/identities/0", "kms.example.org"), "users[1].identities[0]",
       "is kms_identity"},
      {"NoIdentities", Set("/users/1/identities", Json::array()), "users[1].identities", "at least one identity"},
      {"MissingIdentities", Erase("/users/1", "identities"), "users[1].identities", "required field is missing"},
      {"UnknownPolicyClass", Set("/users/1/policy_class", "platinum"), "users[1].policy_class",
       "no policy class named 'platinum'"},
      {"EmptyPolicyClass", Set("/users/1/policy_class", ""), "users[1].policy_class", "must not be empty"},
      {"UnknownDefaultPolicyClass", Set("/default_policy_class", "silver"), "default_policy_class",
       "no policy class named 'silver'"},
      {"DefaultPolicyClassWithoutClasses",
       [](Json& doc) {
         doc.erase("policy_classes");
         doc["users"][1].erase("policy_class");
         doc["default_policy_class"] = "gold";
       },
       "default_policy_class", "without policy_classes the only class is 'default'"},
      {"NoDefaultClassInClasses", Set("/policy_classes", Json::object()), "default_policy_class",
       "no policy class named 'default'"},
      {"PskIdNotHex", Set("/users/0/psk_id", "0g"), "users[0].psk_id", "1..64 bytes of hex"},
      {"PskIdOddLength", Set("/users/0/psk_id", "abc"), "users[0].psk_id", "got 'abc'"},
      {"PskIdEmpty", Set("/users/0/psk_id", ""), "users[0].psk_id", "1..64 bytes of hex"},
      {"PskIdTooLong", Set("/users/0/psk_id", std::string(130, 'a')), "users[0].psk_id", "1..64 bytes of hex"},
      {"PskIdWithPrefix", Set("/users/0/psk_id", "0x0a"), "users[0].psk_id", "1..64 bytes of hex"},
      {"PskIdShared", Set("/users/1/psk_id", "0A0B"), "users[1].psk_id", "same PSK object as users[0]"},
      // groups
      {"GroupWithoutIdentity", Erase("/groups/0", "identity"), "groups[0].identity", "required field is missing"},
      {"GroupWithoutMembers", Erase("/groups/0", "members"), "groups[0].members", "required field is missing"},
      {"GroupWithNoMembers", Set("/groups/0/members", Json::array()), "groups[0].members", "at least one member"},
      {"GroupMemberUnknown", Set("/groups/0/members/1", "sip:mallory@example.org"), "groups[0].members[1]",
       "'sip:mallory@example.org' is not an identity of any entry of users (and token_users is false)"},
      {"GroupMemberTwice", Set("/groups/0/members/1", "sip:alice@example.org"), "groups[0].members[1]",
       "is listed twice (also groups[0].members[0])"},
      {"GroupIdentityIsUser", Set("/groups/0/identity", "tel:+100"), "groups[0].identity",
       "'tel:+100' is an identity of users[0]"},
      {"GroupIdentityIsKms", Set("/groups/0/identity", "kms.example.org"), "groups[0].identity", "is kms_identity"},
      {"GroupIdentityInvalid", Set("/groups/0/identity", ""), "groups[0].identity", "1..255 bytes"},
      {"DuplicateGroupIdentity",
       Set("/groups/1", Json{{"identity", "sip:team@example.org"}, {"members", {"tel:+100"}}}), "groups[1].identity",
       "already the identity of groups[0]"},
      {"GroupInGroup",
       [](Json& doc) {
         doc["token_users"] = true;
         doc["groups"][1] = Json{{"identity", "sip:all@example.org"}, {"members", {"sip:team@example.org"}}};
       },
       "groups[1].members[0]", "is the identity of groups[0]; groups cannot contain groups"},
      {"GroupMemberIsKms",
       [](Json& doc) {
         doc["token_users"] = true;
         doc["groups"][0]["members"][0] = "kms.example.org";
       },
       "groups[0].members[0]", "is kms_identity"},
      {"GroupMemberWithSpace", Set("/groups/0/members/0", "sip:a b"), "groups[0].members[0]", "space or control"},
  };
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Refusals, RefusalTest, ::testing::ValuesIn(RefusalCases()),
                         [](const ::testing::TestParamInfo<RefusalCase>& param) { return param.param.name; });

// ---- the sections of issue 6: versions, KMSs, KRR policy ---------------------

TEST(ConfigTest, KmsSectionsParse) {
  auto config = ParseConfig(KmsBase().dump());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->version, 7u);
  ASSERT_EQ(config->trust_relations.size(), 2u);
  EXPECT_EQ(config->trust_relations[0].kms_uri, "kms.peer.example.net");
  EXPECT_EQ(config->trust_relations[0].endpoint, "kms.peer.example.net:8443");
  EXPECT_EQ(config->trust_relations[0].certificate, Certs().peer);  // kept as given
  EXPECT_EQ(config->trust_relations[0].ca, "");
  EXPECT_EQ(config->trust_relations[1].certificate, "");
  EXPECT_EQ(config->trust_relations[1].ca, Certs().ca);
  ASSERT_EQ(config->external_kms.size(), 1u);
  EXPECT_EQ(config->external_kms[0].certificate, Certs().external);
  EXPECT_TRUE(config->krr_policy.allow_krr);
  EXPECT_TRUE(config->krr_policy.report_krr);
  EXPECT_TRUE(config->krr_policy.require_signed_krr);  // defaults kept
  EXPECT_FALSE(config->krr_policy.request_unknown_kms_certificates);
  EXPECT_TRUE(config->krr_policy.hold_until_kms_acceptance);
  EXPECT_EQ(config->users[0].primary_home_kms, (std::vector<std::string>{"kms.example.org"}));
  EXPECT_EQ(config->users[0].secondary_home_kms,
            (std::vector<std::string>{"kms.peer.example.net", "kms-b.peer.example.net"}));
  EXPECT_EQ(config->users[0].external_kms, (std::vector<std::string>{"kms.partner.example.com"}));
  EXPECT_TRUE(config->users[1].secondary_home_kms.empty());
  ExpectRoundTrip(*config);
}

// ---- issue 13: Zk listener and client settings, the KMS's own certificate
// chain, authorised network functions --------------------------------------

TEST(ConfigTest, ZkSectionsParseAndRoundTrip) {
  Json doc = KmsBase();
  doc["listen"]["zk"] = "127.0.0.1:8444";
  doc["zk"] = {{"connect_timeout_ms", 250}, {"response_timeout_ms", 900}, {"max_connections_per_peer", 2},
               {"retry_after_failure_ms", 0}};
  doc["kms_certificate_chain"] = Certs().peer + Certs().ca;
  doc["network_functions"] = Json::array(
      {{{"name", "li-gw-1"}, {"certificate", Certs().external}, {"roles", {"resolve"}}},
       {{"name", "probe"}, {"certificate", Certs().short_lived}, {"roles", Json::array()}}});
  doc["external_kms"] = Json::array();
  doc["users"][0].erase("external_kms");
  auto config = ParseConfig(doc.dump());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->listen.zk, "127.0.0.1:8444");
  EXPECT_EQ(config->zk, (ZkConfig{250, 900, 2, 0}));
  EXPECT_EQ(config->kms_certificate_chain, Certs().peer + Certs().ca);
  ASSERT_EQ(config->network_functions.size(), 2u);
  EXPECT_TRUE(config->network_functions[0].may_resolve());
  EXPECT_FALSE(config->network_functions[1].may_resolve());
  ExpectRoundTrip(*config);
  // Defaults: no Zk listener, the documented client settings, nothing granted.
  auto minimal = ParseConfig(kMinimal);
  ASSERT_TRUE(minimal.ok());
  EXPECT_EQ(minimal->listen.zk, "");
  EXPECT_EQ(minimal->zk, (ZkConfig{2000, 5000, 4, 1000}));
  EXPECT_TRUE(minimal->network_functions.empty());
  EXPECT_TRUE(minimal->kms_certificate_chain.empty());
  // zk is local, the rest provisioned.
  EXPECT_TRUE(ParseConfig(BundlePart(doc).dump(), ConfigRole::kBundle).ok());
  Json zk_in_bundle = BundlePart(doc);
  zk_in_bundle["zk"] = Json::object();
  EXPECT_FALSE(ParseConfig(zk_in_bundle.dump(), ConfigRole::kBundle).ok());
}

TEST(ConfigTest, ZkSectionsRefusals) {
  struct Case {
    const char* what;
    std::function<void(Json&)> change;
    const char* message;
  };
  const Case cases[] = {
      {"zk timeout range", [](Json& d) { d["zk"] = {{"connect_timeout_ms", 99}}; }, "zk.connect_timeout_ms"},
      {"zk unknown key", [](Json& d) { d["zk"] = {{"retries", 1}}; }, "zk.retries"},
      {"zk port clash", [](Json& d) { d["listen"] = {{"admin", "127.0.0.1:9000"}, {"zk", "127.0.0.1:9000"}}; }, "listen.zk"},
      {"chain not PEM", [](Json& d) { d["kms_certificate_chain"] = "hello"; }, "kms_certificate_chain"},
      {"nf no roles", [](Json& d) { d["network_functions"] = {{{"name", "a"}, {"certificate", Certs().external}}}; },
       "network_functions[0].roles: required field is missing"},
      {"nf unknown role",
       [](Json& d) {
         d["network_functions"] = {{{"name", "a"}, {"certificate", Certs().external}, {"roles", {"admin"}}}};
       },
       "unknown role"},
      {"nf bad name",
       [](Json& d) {
         d["network_functions"] = {{{"name", "a b"}, {"certificate", Certs().external}, {"roles", {"resolve"}}}};
       },
       "network_functions[0].name"},
      {"nf twice",
       [](Json& d) {
         d["network_functions"] = {{{"name", "a"}, {"certificate", Certs().external}, {"roles", {"resolve"}}},
                                   {{"name", "a"}, {"certificate", Certs().short_lived}, {"roles", {"resolve"}}}};
       },
       "network_functions[1].name"},
      {"nf shares a relation's certificate",
       [](Json& d) {
         d["network_functions"] = {{{"name", "a"}, {"certificate", Certs().peer}, {"roles", {"resolve"}}}};
       },
       "is also the certificate of trust_relations[0]"},
  };
  for (const Case& c : cases) {
    Json doc = KmsBase();
    c.change(doc);
    auto config = ParseConfig(doc.dump());
    ASSERT_FALSE(config.ok()) << c.what;
    EXPECT_THAT(config.error().message(), HasSubstr(c.message)) << c.what;
  }
}

TEST(ConfigTest, KrrPolicyDefaultsAreTheSafeOnes) {
  auto config = ParseConfig(kMinimal);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->version, 0u);
  EXPECT_FALSE(config->krr_policy.allow_krr);
  EXPECT_FALSE(config->krr_policy.report_krr);
  EXPECT_TRUE(config->krr_policy.require_signed_krr);
  EXPECT_FALSE(config->krr_policy.request_unknown_kms_certificates);
  EXPECT_TRUE(config->krr_policy.hold_until_kms_acceptance);
  EXPECT_TRUE(config->trust_relations.empty());
  EXPECT_TRUE(config->external_kms.empty());
  // Absent version, empty KMS lists: not written in the canonical form.
  const std::string canonical = ConfigToJson(*config);
  EXPECT_EQ(canonical.find("\"version\""), std::string::npos);
  EXPECT_THAT(canonical, HasSubstr(R"("krr_policy":{"allow_krr":false,"hold_until_kms_acceptance":true,)"
                                   R"("report_krr":false,"request_unknown_kms_certificates":false,)"
                                   R"("require_signed_krr":true})"));
}

TEST(ConfigTest, EndpointsAndVersionsAtTheirLimits) {
  Json doc = KmsBase();
  doc["version"] = kMaxConfigVersion;
  doc["trust_relations"][0]["endpoint"] = "0.0.0.0:1";
  doc["trust_relations"][1]["endpoint"] =
      std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." + std::string(61, 'd') +
      ":65535";  // 253-byte name
  auto config = ParseConfig(doc.dump());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->version, 9007199254740991u);
  for (const char* endpoint : {"localhost:80", "kms-1.example.net:8443", "a.b-c.d:1", "1.example:2", "9a:3"}) {
    doc["trust_relations"][0]["endpoint"] = endpoint;
    EXPECT_TRUE(ParseConfig(doc.dump()).ok()) << endpoint;
  }
  doc["version"] = 1;
  EXPECT_TRUE(ParseConfig(doc.dump()).ok());
}

TEST(ConfigTest, CertificateWithSurroundingWhiteSpaceAndCrLfParses) {
  Json doc = KmsBase();
  std::string crlf;
  for (const char c : Certs().peer) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  doc["trust_relations"][0]["certificate"] = "\n  " + crlf + "\n\n";
  auto config = ParseConfig(doc.dump());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->trust_relations[0].certificate, "\n  " + crlf + "\n\n");
  ExpectRoundTrip(*config);
}

class KmsRefusalTest : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(KmsRefusalTest, Refused) {
  Json doc = KmsBase();
  GetParam().mutate(doc);
  const std::string message = Refusal(doc.dump());
  EXPECT_THAT(message, StartsWith(GetParam().path + ": "));
  EXPECT_THAT(message, HasSubstr(GetParam().problem));
  EXPECT_TRUE(IsPrintableAscii(message)) << message;
  // The same document as a bundle payload is refused for the same reason.
  EXPECT_EQ(Refusal(BundlePart(doc).dump(), ConfigRole::kBundle), message);
}

// Mutations that need the test certificates (made when the test runs).
std::function<void(Json&)> SetCert(const std::string& pointer, std::string TestCertificates::*which,
                                   const std::string& before = "", const std::string& after = "") {
  return [=](Json& doc) { doc[Json::json_pointer(pointer)] = before + Certs().*which + after; };
}

std::vector<RefusalCase> KmsRefusalCases() {
  const std::string endpoint = "expected \"HOST:PORT\" with a DNS name or a dotted-quad IPv4 address";
  const std::string not_pem = "not a PEM certificate";
  std::vector<RefusalCase> cases = {
      // version
      {"VersionZero", Set("/version", 0), "version", "0 is out of range 1..9007199254740991"},
      {"VersionTooBig", Set("/version", 9007199254740992u), "version", "out of range 1..9007199254740991"},
      {"VersionNegative", Set("/version", -1), "version", "-1 is out of range"},
      {"VersionString", Set("/version", "7"), "version", "expected an integer, got a string"},
      {"VersionFraction", Set("/version", 7.5), "version", "expected an integer"},
      // trust_relations: structure and kms_uri
      {"TrustRelationsObject", Set("/trust_relations", Json::object()), "trust_relations",
       "expected an array, got an object"},
      {"TrustRelationString", Set("/trust_relations/0", "kms.peer.example.net"), "trust_relations[0]",
       "expected an object, got a string"},
      {"TrustRelationUnknownKey", Set("/trust_relations/0/port", 8443), "trust_relations[0].port",
       "unknown key (expected one of: kms_uri, endpoint, certificate, ca)"},
      {"TrustRelationWithoutKmsUri", Erase("/trust_relations/0", "kms_uri"), "trust_relations[0].kms_uri",
       "required field is missing"},
      {"TrustRelationKmsUriInteger", Set("/trust_relations/1/kms_uri", 1), "trust_relations[1].kms_uri",
       "expected a string"},
      {"TrustRelationKmsUriEmpty", Set("/trust_relations/1/kms_uri", ""), "trust_relations[1].kms_uri",
       "1..255 bytes, this one has 0"},
      {"TrustRelationKmsUriWithSpace", Set("/trust_relations/1/kms_uri", "kms b"), "trust_relations[1].kms_uri",
       "space or control character at byte 3"},
      {"TrustRelationIsKmsIdentity", Set("/trust_relations/1/kms_uri", "kms.example.org"),
       "trust_relations[1].kms_uri", "'kms.example.org' is kms_identity"},
      {"TrustRelationTwice", Set("/trust_relations/1/kms_uri", "kms.peer.example.net"), "trust_relations[1].kms_uri",
       "'kms.peer.example.net' is already the kms_uri of trust_relations[0]"},
      {"ExternalKmsIsATrustRelation", Set("/external_kms/0/kms_uri", "kms-b.peer.example.net"),
       "external_kms[0].kms_uri", "is already the kms_uri of trust_relations[1]"},
      {"ExternalKmsTwice",
       [](Json& doc) {
         doc["external_kms"].push_back({{"kms_uri", "kms.partner.example.com"}, {"certificate", Certs().external}});
       },
       "external_kms[1].kms_uri", "is already the kms_uri of external_kms[0]"},
      // trust_relations: endpoint
      {"EndpointMissing", Erase("/trust_relations/0", "endpoint"), "trust_relations[0].endpoint",
       "required field is missing"},
      {"EndpointInteger", Set("/trust_relations/0/endpoint", 8443), "trust_relations[0].endpoint",
       "expected a string"},
      {"EndpointWithoutPort", Set("/trust_relations/0/endpoint", "kms.peer.example.net"),
       "trust_relations[0].endpoint", endpoint},
      {"EndpointEmptyPort", Set("/trust_relations/0/endpoint", "kms.peer.example.net:"), "trust_relations[0].endpoint",
       endpoint},
      {"EndpointPortZero", Set("/trust_relations/0/endpoint", "kms.peer.example.net:0"), "trust_relations[0].endpoint",
       "got 'kms.peer.example.net:0'"},
      {"EndpointPortTooBig", Set("/trust_relations/0/endpoint", "kms.peer.example.net:65536"),
       "trust_relations[0].endpoint", endpoint},
      {"EndpointPortLeadingZero", Set("/trust_relations/0/endpoint", "kms.peer.example.net:08443"),
       "trust_relations[0].endpoint", endpoint},
      {"EndpointPortSign", Set("/trust_relations/0/endpoint", "kms.peer.example.net:+80"),
       "trust_relations[0].endpoint", endpoint},
      {"EndpointEmptyHost", Set("/trust_relations/0/endpoint", ":8443"), "trust_relations[0].endpoint", endpoint},
      {"EndpointOctetTooBig", Set("/trust_relations/0/endpoint", "192.0.2.256:80"), "trust_relations[0].endpoint",
       endpoint},
      {"EndpointThreeOctets", Set("/trust_relations/0/endpoint", "192.0.2:80"), "trust_relations[0].endpoint",
       endpoint},
      {"EndpointOctetLeadingZero", Set("/trust_relations/0/endpoint", "192.0.2.01:80"), "trust_relations[0].endpoint",
       endpoint},
      {"EndpointIpv6", Set("/trust_relations/0/endpoint", "[2001:db8::1]:80"), "trust_relations[0].endpoint",
       endpoint},
      {"EndpointUnderscore", Set("/trust_relations/0/endpoint", "kms_a.example.net:80"),
       "trust_relations[0].endpoint", endpoint},
      {"EndpointLeadingHyphen", Set("/trust_relations/0/endpoint", "-kms.example.net:80"),
       "trust_relations[0].endpoint", endpoint},
      {"EndpointTrailingHyphen", Set("/trust_relations/0/endpoint", "kms-.example.net:80"),
       "trust_relations[0].endpoint", endpoint},
      {"EndpointEmptyLabel", Set("/trust_relations/0/endpoint", "kms..example.net:80"), "trust_relations[0].endpoint",
       endpoint},
      {"EndpointTrailingDot", Set("/trust_relations/0/endpoint", "kms.example.net.:80"), "trust_relations[0].endpoint",
       endpoint},
      {"EndpointLabelTooLong", Set("/trust_relations/0/endpoint", std::string(64, 'a') + ".example:80"),
       "trust_relations[0].endpoint", endpoint},
      {"EndpointNameTooLong",
       Set("/trust_relations/0/endpoint",
           std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
               std::string(62, 'd') + ":80"),
       "trust_relations[0].endpoint", endpoint},
      {"EndpointWithSpace", Set("/trust_relations/0/endpoint", "kms.example.net: 80"), "trust_relations[0].endpoint",
       endpoint},
      {"EndpointWithScheme", Set("/trust_relations/0/endpoint", "https://kms.example.net:443"),
       "trust_relations[0].endpoint", endpoint},
      // trust_relations: certificate / ca
      {"CertificateAndCa", SetCert("/trust_relations/0/ca", &TestCertificates::ca), "trust_relations[0].ca",
       "give either certificate (the peer's) or ca (its issuer's), not both"},
      {"NeitherCertificateNorCa", Erase("/trust_relations/0", "certificate"), "trust_relations[0].certificate",
       "required field is missing (give certificate, the peer's, or ca, its issuer's)"},
      {"CertificateInteger", Set("/trust_relations/0/certificate", 1), "trust_relations[0].certificate",
       "expected a string, got an integer"},
      {"CertificateNull", Set("/trust_relations/0/certificate", nullptr), "trust_relations[0].certificate",
       "expected a string, got null"},
      {"CertificateEmpty", Set("/trust_relations/0/certificate", ""), "trust_relations[0].certificate", not_pem},
      {"CertificateNotPem", Set("/trust_relations/0/certificate", "kms.peer.example.net"),
       "trust_relations[0].certificate", not_pem},
      {"CertificateTwoBlocks",
       [](Json& doc) { doc["trust_relations"][0]["certificate"] = Certs().peer + Certs().ca; },
       "trust_relations[0].certificate", not_pem},
      {"CertificateWithText", SetCert("/trust_relations/0/certificate", &TestCertificates::peer, "subject=peer\n"),
       "trust_relations[0].certificate", not_pem},
      {"CertificateWithTrailingText", SetCert("/trust_relations/0/certificate", &TestCertificates::peer, "", "x"),
       "trust_relations[0].certificate", not_pem},
      {"CertificateIsAKey",
       Set("/trust_relations/0/certificate", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
       "trust_relations[0].certificate", not_pem},
      {"CertificateWithHeader",
       Set("/trust_relations/0/certificate",
           "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END CERTIFICATE-----\n"),
       "trust_relations[0].certificate", not_pem},
      {"CertificateWithNul",
       Set("/trust_relations/0/certificate",
           "-----BEGIN CERTIFICATE-----\nAA" + std::string(1, '\0') + "A\n-----END CERTIFICATE-----\n"),
       "trust_relations[0].certificate", not_pem},
      {"CertificateBadDer",
       Set("/trust_relations/0/certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
       "trust_relations[0].certificate", "does not parse: X509 - "},
      {"CertificateBadBase64",
       Set("/trust_relations/0/certificate", "-----BEGIN CERTIFICATE-----\nA===\n-----END CERTIFICATE-----\n"),
       "trust_relations[0].certificate", "does not parse: "},
      {"CertificateOnOneLine",
       [](Json& doc) {
         std::string pem = Certs().peer;
         std::erase(pem, '\n');
         doc["trust_relations"][0]["certificate"] = pem;
       },
       "trust_relations[0].certificate", "does not parse: "},
      {"CertificateTooLarge",
       [](Json& doc) {
         const std::string padding(kMaxCertificatePemBytes + 1 - Certs().peer.size(), '\n');
         doc["trust_relations"][0]["certificate"] = padding + Certs().peer;
       },
       "trust_relations[0].certificate", "is 16385 bytes; at most 16384 (kMaxCertificatePemBytes)"},
      {"CaIsNotACa", SetCert("/trust_relations/1/ca", &TestCertificates::peer), "trust_relations[1].ca",
       "not a CA certificate"},
      {"CaNotPem", Set("/trust_relations/1/ca", "ca"), "trust_relations[1].ca", not_pem},
      // external_kms
      {"ExternalKmsObject", Set("/external_kms", Json::object()), "external_kms", "expected an array"},
      {"ExternalKmsUnknownKey", Set("/external_kms/0/endpoint", "kms.partner.example.com:443"),
       "external_kms[0].endpoint", "unknown key (expected one of: kms_uri, certificate)"},
      {"ExternalKmsWithoutKmsUri", Erase("/external_kms/0", "kms_uri"), "external_kms[0].kms_uri",
       "required field is missing"},
      {"ExternalKmsIsKmsIdentity", Set("/external_kms/0/kms_uri", "kms.example.org"), "external_kms[0].kms_uri",
       "is kms_identity"},
      {"ExternalKmsWithoutCertificate", Erase("/external_kms/0", "certificate"), "external_kms[0].certificate",
       "required field is missing"},
      {"ExternalKmsCaInsteadOfCertificate",
       [](Json& doc) {
         doc["external_kms"][0].erase("certificate");
         doc["external_kms"][0]["ca"] = Certs().ca;
       },
       "external_kms[0].ca", "unknown key"},
      {"ExternalKmsCertificateNotPem", Set("/external_kms/0/certificate", "MIIB"), "external_kms[0].certificate",
       not_pem},
      {"ExternalKmsCertificateBadDer",
       Set("/external_kms/0/certificate", "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----"),
       "external_kms[0].certificate", "does not parse: "},
      // krr_policy
      {"KrrPolicyArray", Set("/krr_policy", Json::array()), "krr_policy", "expected an object, got an array"},
      {"KrrPolicyUnknownKey", Set("/krr_policy/allow_krrs", true), "krr_policy.allow_krrs",
       "unknown key (expected one of: allow_krr, report_krr, require_signed_krr, "
       "request_unknown_kms_certificates, hold_until_kms_acceptance)"},
      {"KrrAllowNotBool", Set("/krr_policy/allow_krr", 1), "krr_policy.allow_krr", "expected a boolean"},
      {"KrrReportNotBool", Set("/krr_policy/report_krr", "yes"), "krr_policy.report_krr", "expected a boolean"},
      {"KrrSignedNotBool", Set("/krr_policy/require_signed_krr", nullptr), "krr_policy.require_signed_krr",
       "expected a boolean, got null"},
      {"KrrRequestNotBool", Set("/krr_policy/request_unknown_kms_certificates", 0),
       "krr_policy.request_unknown_kms_certificates", "expected a boolean"},
      {"KrrHoldNotBool", Set("/krr_policy/hold_until_kms_acceptance", "true"), "krr_policy.hold_until_kms_acceptance",
       "expected a boolean"},
      // users' KMS lists
      {"PrimaryHomeNotArray", Set("/users/1/primary_home_kms", "kms.example.org"), "users[1].primary_home_kms",
       "expected an array, got a string"},
      {"PrimaryHomeUnknownKms", Set("/users/1/primary_home_kms/0", "kms.elsewhere.example"),
       "users[1].primary_home_kms[0]",
       "'kms.elsewhere.example' is not a known KMS (kms_identity, or the kms_uri of an entry of trust_relations or "
       "external_kms)"},
      {"PrimaryHomeIsAUser", Set("/users/1/primary_home_kms/0", "sip:bob@example.org"), "users[1].primary_home_kms[0]",
       "is not a known KMS"},
      {"PrimaryHomeInteger", Set("/users/1/primary_home_kms/0", 1), "users[1].primary_home_kms[0]",
       "expected a string"},
      {"SecondaryHomeTwice", Set("/users/0/secondary_home_kms/1", "kms.peer.example.net"),
       "users[0].secondary_home_kms[1]",
       "'kms.peer.example.net' is listed twice (also users[0].secondary_home_kms[0])"},
      {"SecondaryHomeEmptyIdentity", Set("/users/0/secondary_home_kms/1", ""), "users[0].secondary_home_kms[1]",
       "1..255 bytes"},
      {"ExternalListUnknownKms", Set("/users/0/external_kms/0", "kms.partner.example.org"),
       "users[0].external_kms[0]", "is not a known KMS"},
      {"ExternalListObject", Set("/users/0/external_kms", Json::object()), "users[0].external_kms",
       "expected an array"},
      {"KmsListTooLong",
       [](Json& doc) {
         Json list = Json::array();
         for (int i = 0; i < 17; ++i) list.push_back("kms.example.org");
         doc["users"][1]["primary_home_kms"] = list;
       },
       "users[1].primary_home_kms", "17 entries; at most 16 (kMaxUserKmsListEntries)"},
      {"UnknownUserKeyNamesTheLists", Set("/users/1/home_kms", Json::array()), "users[1].home_kms",
       "unknown key (expected one of: identities, psk_id, policy_class, primary_home_kms, secondary_home_kms, "
       "external_kms)"},
  };
  return cases;
}

INSTANTIATE_TEST_SUITE_P(KmsRefusals, KmsRefusalTest, ::testing::ValuesIn(KmsRefusalCases()),
                         [](const ::testing::TestParamInfo<RefusalCase>& param) { return param.param.name; });

TEST(ConfigTest, TrustRelationsAndExternalKmsAreLimited) {
  // The count is checked before any entry is read.
  Json doc = Json::parse(kMinimal);
  doc["trust_relations"] = Json::array();
  doc["external_kms"] = Json::array();
  for (size_t i = 0; i <= kMaxTrustRelations; ++i) doc["trust_relations"].push_back(Json::object());
  EXPECT_EQ(Refusal(doc.dump()), "trust_relations: 1001 entries; at most 1000 (kMaxTrustRelations)");
  doc["trust_relations"] = Json::array();
  for (size_t i = 0; i <= kMaxExternalKms; ++i) doc["external_kms"].push_back(Json::object());
  EXPECT_EQ(Refusal(doc.dump()), "external_kms: 1001 entries; at most 1000 (kMaxExternalKms)");
  // Exactly the limit, with a certificate each, fits and parses.
  doc["external_kms"] = Json::array();
  for (size_t i = 0; i < kMaxExternalKms; ++i) {
    doc["external_kms"].push_back(
        {{"kms_uri", std::string("kms-").append(std::to_string(i))}, {"certificate", Certs().external}});
  }
  ASSERT_LT(doc.dump().size(), kMaxConfigBytes);
  auto config = ParseConfig(doc.dump());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->external_kms.size(), kMaxExternalKms);
}

// ---- roles --------------------------------------------------------------------

TEST(ConfigRoleTest, BundleRefusesEveryLocalSection) {
  const Json bundle = BundlePart(KmsBase());
  ASSERT_TRUE(ParseConfig(bundle.dump(), ConfigRole::kBundle).ok());
  const Json complete = Json::parse(R"({"listen": {}, "http": {}, "token": {"pin_file": "p"}, "mikey": {}})");
  for (const auto& [key, value] : complete.items()) {
    Json doc = bundle;
    doc[key] = value;
    EXPECT_EQ(Refusal(doc.dump(), ConfigRole::kBundle),
              key + ": an appliance-local setting; it belongs in the local configuration (--config), not in a bundle");
  }
}

TEST(ConfigRoleTest, LocalRefusesEveryProvisionedSection) {
  const Json local = Json::parse(R"({"token": {"pin_file": "/etc/tkms/token.pin"}, "listen": {"ua": "127.0.0.1:80"}})");
  ASSERT_TRUE(ParseConfig(local.dump(), ConfigRole::kLocal).ok());
  const Json kms = KmsBase();
  const std::vector<std::string> provisioned = {"version", "kms_identity", "policy_classes", "default_policy_class",
                                                "token_users", "users", "groups", "trust_relations",
                                                "external_kms", "krr_policy"};
  for (const std::string& key : provisioned) {
    ASSERT_TRUE(kms.contains(key)) << key;
    Json doc = local;
    doc[key] = kms[key];
    EXPECT_EQ(Refusal(doc.dump(), ConfigRole::kLocal),
              key + ": comes from the signed bundle; remove it from the local configuration");
  }
}

TEST(ConfigRoleTest, BundleNeedsVersionAndKmsIdentityButNoToken) {
  auto smallest = ParseConfig(R"({"version": 1, "kms_identity": "kms.example.org"})", ConfigRole::kBundle);
  ASSERT_TRUE(smallest.ok()) << smallest.error().ToString();
  EXPECT_EQ(smallest->version, 1u);
  EXPECT_EQ(smallest->token, TokenConfig{});  // local fields keep their defaults
  EXPECT_EQ(smallest->listen, ListenConfig{});
  EXPECT_EQ(Refusal(R"({"kms_identity": "kms.example.org"})", ConfigRole::kBundle),
            "version: required field is missing (every bundle has a version)");
  EXPECT_EQ(Refusal(R"({"version": 1})", ConfigRole::kBundle), "kms_identity: required field is missing");
  EXPECT_THAT(Refusal(R"({"version": 0, "kms_identity": "k"})", ConfigRole::kBundle),
              StartsWith("version: 0 is out of range 1..9007199254740991"));
  // Unknown keys name the keys a bundle may have.
  EXPECT_EQ(Refusal(R"({"version": 1, "kms_identity": "k", "signature": "x"})", ConfigRole::kBundle),
            "signature: unknown key (expected one of: kms_identity, version, policy_classes, default_policy_class, "
            "token_users, users, groups, trust_relations, external_kms, kms_certificate_chain, network_functions, "
            "krr_policy)");
}

TEST(ConfigRoleTest, LocalNeedsThePinFileButNoKmsIdentity) {
  auto local = ParseConfig(R"({"token": {"pin_file": "p"}})", ConfigRole::kLocal);
  ASSERT_TRUE(local.ok()) << local.error().ToString();
  EXPECT_EQ(local->kms_identity, "");
  EXPECT_EQ(local->version, 0u);
  EXPECT_EQ(local->token.pin_file, "p");
  EXPECT_EQ(Refusal("{}", ConfigRole::kLocal), "token.pin_file: required field is missing");
  EXPECT_EQ(Refusal(R"({"token": {"pin_file": "p"}, "bundle": "b.json"})", ConfigRole::kLocal),
            "bundle: unknown key (expected one of: listen, http, tls, token, mikey, zk, user)");
  // Local sections are validated as usual.
  EXPECT_EQ(Refusal(R"({"token": {"pin_file": "p"}, "http": {"worker_threads": 0}})", ConfigRole::kLocal),
            "http.worker_threads: 0 is out of range 1..256");
}

TEST(ConfigRoleTest, CompleteAllowsEverySectionAndAnOptionalVersion) {
  EXPECT_TRUE(ParseConfig(KmsBase().dump(), ConfigRole::kComplete).ok());
  Json doc = KmsBase();
  doc.erase("version");
  auto config = ParseConfig(doc.dump());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(config->version, 0u);
  EXPECT_EQ(Refusal(R"({"version": 1, "kms_identity": "k"})"), "token.pin_file: required field is missing");
}

TEST(ConfigRoleTest, UnknownRoleIsRefused) {
  auto config = ParseConfig(kMinimal, static_cast<ConfigRole>(3));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.error().message(), "$: unknown configuration role 3");
}

TEST(ConfigRoleTest, RoleRefusalComesBeforeAnyOtherProblem) {
  // A broken provisioned section in a local configuration is refused for
  // being there, not for what is wrong with it.
  EXPECT_EQ(Refusal(R"({"token": {"pin_file": "p"}, "users": 5})", ConfigRole::kLocal),
            "users: comes from the signed bundle; remove it from the local configuration");
  EXPECT_EQ(Refusal(R"({"http": {"max_body_bytes": 1}})", ConfigRole::kBundle),
            "http: an appliance-local setting; it belongs in the local configuration (--config), not in a bundle");
}

TEST(ConfigRoleTest, LoadConfigFileTakesTheRole) {
  auto bundle = LoadConfigFile(BundleExamplePath(), ConfigRole::kBundle);
  ASSERT_TRUE(bundle.ok()) << bundle.error().ToString();
  auto wrong = LoadConfigFile(ExamplePath(), ConfigRole::kBundle);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.error().message(), StartsWith(ExamplePath() + ": http: an appliance-local setting"));
  auto local = LoadConfigFile(ExamplePath(), ConfigRole::kLocal);
  ASSERT_FALSE(local.ok());
  EXPECT_THAT(local.error().message(), StartsWith(ExamplePath() + ": default_policy_class: comes from the signed"));
}

TEST(ConfigRoleTest, BundleCanonicalFormLeavesRoomForTheLocalSections) {
  // About 1 MiB - 20 KiB in canonical form: fits a complete configuration,
  // not a bundle (which must leave 32 KiB for the local sections).
  Json bundle = Json::parse(R"({"version": 1, "kms_identity": "k"})");
  for (int i = 0; i < 3990; ++i) bundle["policy_classes"][std::string("c").append(std::to_string(i))] = Json::object();
  bundle["policy_classes"]["default"] = Json::object();
  Json complete = bundle;
  complete["token"] = {{"pin_file", "p"}};
  auto config = ParseConfig(complete.dump());
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  const size_t canonical = ConfigToJson(*config).size();
  ASSERT_GT(canonical, kMaxConfigBytes - 32768);
  EXPECT_THAT(Refusal(bundle.dump(), ConfigRole::kBundle),
              StartsWith("$: the canonical form of this bundle (ConfigToJson, every default written out) would be "));
  EXPECT_THAT(Refusal(bundle.dump(), ConfigRole::kBundle),
              HasSubstr("bytes; at most 1015808 (kMaxConfigBytes less 32768 kept for the local sections)"));
}

// ---- CombineConfig ---------------------------------------------------------------

TEST(CombineConfigTest, LocalSectionsFromLocalEverythingElseFromTheBundle) {
  const Json whole = KmsBase();
  Json local_doc = LocalPart(whole);
  local_doc["listen"] = {{"ua", "0.0.0.0:8080"}, {"admin", "127.0.0.1:9090"}, {"plaintext_ua_on_non_loopback", true}};
  local_doc["http"] = {{"worker_threads", 3}};
  local_doc["tls"] = {{"admin_client_ca_file", "/etc/tkms/op-ca.pem"}, {"certificate_chain_file", "/etc/tkms/c.pem"}};
  local_doc["mikey"] = {{"timestamp_window_s", 30}};
  auto local = ParseConfig(local_doc.dump(), ConfigRole::kLocal);
  ASSERT_TRUE(local.ok()) << local.error().ToString();
  auto bundle = ParseConfig(BundlePart(whole).dump(), ConfigRole::kBundle);
  ASSERT_TRUE(bundle.ok()) << bundle.error().ToString();

  const KmsConfig combined = CombineConfig(*local, *bundle);
  EXPECT_EQ(combined.listen, local->listen);
  EXPECT_EQ(combined.http, local->http);
  EXPECT_EQ(combined.tls, local->tls);
  EXPECT_EQ(combined.token, local->token);
  EXPECT_EQ(combined.mikey, local->mikey);
  EXPECT_EQ(combined.version, 7u);
  EXPECT_EQ(combined.kms_identity, "kms.example.org");
  EXPECT_EQ(combined.policy_classes, bundle->policy_classes);
  EXPECT_EQ(combined.default_policy_class, bundle->default_policy_class);
  EXPECT_EQ(combined.token_users, bundle->token_users);
  EXPECT_EQ(combined.users, bundle->users);
  EXPECT_EQ(combined.groups, bundle->groups);
  EXPECT_EQ(combined.trust_relations, bundle->trust_relations);
  EXPECT_EQ(combined.external_kms, bundle->external_kms);
  EXPECT_EQ(combined.krr_policy, bundle->krr_policy);

  // The same as reading both documents as one complete configuration.
  Json merged = BundlePart(whole);
  for (const auto& [key, value] : local_doc.items()) merged[key] = value;
  auto complete = ParseConfig(merged.dump());
  ASSERT_TRUE(complete.ok()) << complete.error().ToString();
  EXPECT_EQ(combined, *complete);
  ExpectRoundTrip(combined);
}

TEST(CombineConfigTest, NothingProvisionedComesFromTheLocalSide) {
  // A (hand-made) local configuration with provisioned fields set: ignored.
  KmsConfig local;
  local.kms_identity = "local.example.org";
  local.version = 99;
  local.token_users = false;
  local.krr_policy.allow_krr = true;
  local.token.pin_file = "pin";
  KmsConfig bundle;
  bundle.kms_identity = "kms.example.org";
  bundle.version = 2;
  bundle.token.pin_file = "not this one";
  const KmsConfig combined = CombineConfig(local, bundle);
  EXPECT_EQ(combined.kms_identity, "kms.example.org");
  EXPECT_EQ(combined.version, 2u);
  EXPECT_TRUE(combined.token_users);
  EXPECT_FALSE(combined.krr_policy.allow_krr);
  EXPECT_EQ(combined.token.pin_file, "pin");
}

// ---- round trips of the new fields ---------------------------------------------------

TEST(ConfigTest, RoundTripOfEveryKmsFieldChanged) {
  KmsConfig config;
  config.version = kMaxConfigVersion;
  config.kms_identity = "kms.example.org";
  config.token.pin_file = "pin";
  config.policy_classes["default"] = PolicyClass{};
  config.trust_relations.push_back(TrustRelationConfig{"kms.a.example", "kms.a.example:1", Certs().peer, ""});
  config.trust_relations.push_back(TrustRelationConfig{"kms.b.example", "10.0.0.1:65535", "", Certs().ca});
  config.external_kms.push_back(ExternalKmsConfig{"kms.c.example", Certs().external});
  config.krr_policy = KrrPolicyConfig{true, true, false, true, false};
  UserConfig user{{"sip:u@example.org"}, std::nullopt, ""};
  user.primary_home_kms = {"kms.b.example", "kms.example.org"};
  user.secondary_home_kms = {"kms.a.example"};
  user.external_kms = {"kms.c.example", "kms.a.example"};
  config.users.push_back(user);
  ExpectRoundTrip(config);
  const std::string canonical = ConfigToJson(config);
  EXPECT_THAT(canonical, HasSubstr(R"("version":9007199254740991)"));
  EXPECT_THAT(canonical, HasSubstr(R"("primary_home_kms":["kms.b.example","kms.example.org"])"));
}

// ---- certificate dates ---------------------------------------------------------------

TEST(CertificateDatesTest, ValidExpiredAndNotYetValid) {
  Json doc = KmsBase();
  doc["external_kms"].push_back({{"kms_uri", "kms.short.example.com"}, {"certificate", Certs().short_lived}});
  auto config = ParseConfig(doc.dump());
  ASSERT_TRUE(config.ok()) << config.error().ToString();

  EXPECT_TRUE(CheckCertificateDates(*config, Utc(2025, 6, 1)).ok());
  // Both ends are inclusive.
  EXPECT_TRUE(CheckCertificateDates(*config, Utc(2025, 1, 1)).ok());
  EXPECT_TRUE(CheckCertificateDates(*config, Utc(2026, 1, 31)).ok());

  const Status expired = CheckCertificateDates(*config, Utc(2026, 1, 31, 0, 0, 1));
  EXPECT_EQ(expired.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(expired.message(), "external_kms[1].certificate: expired on 2026-01-31T00:00:00Z");

  const Status early = CheckCertificateDates(*config, Utc(2024, 12, 31, 23, 59, 59));
  EXPECT_EQ(early.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(early.message(), "trust_relations[0].certificate: not valid before 2025-01-01T00:00:00Z");
}

TEST(CertificateDatesTest, CaNotYetValidIsNamed) {
  Json doc = KmsBase();
  doc["trust_relations"][1]["ca"] = Certs().future_ca;
  auto config = ParseConfig(doc.dump());  // parsing does not look at the clock
  ASSERT_TRUE(config.ok()) << config.error().ToString();
  EXPECT_EQ(CheckCertificateDates(*config, Utc(2026, 6, 1)).message(),
            "trust_relations[1].ca: not valid before 2027-01-01T00:00:00Z");
  EXPECT_TRUE(CheckCertificateDates(*config, Utc(2027, 6, 1)).ok());
  EXPECT_EQ(CheckCertificateDates(*config, Utc(2028, 1, 2)).message(),
            "trust_relations[1].ca: expired on 2028-01-01T00:00:00Z");
}

TEST(CertificateDatesTest, NoCertificatesNothingToCheck) {
  auto config = ParseConfig(kMinimal);
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(CheckCertificateDates(*config, 0).ok());
}

TEST(CertificateDatesTest, HandMadeConfigurationWithABrokenCertificate) {
  KmsConfig config;
  config.external_kms.push_back(ExternalKmsConfig{"kms.x", "not a certificate"});
  const Status status = CheckCertificateDates(config, Utc(2025, 6, 1));
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), StartsWith("external_kms[0].certificate: not a PEM certificate"));
}

// ---- the examples ----------------------------------------------------------------------

TEST(ConfigExampleTest, BundlePayloadParses) {
  auto bundle = LoadConfigFile(BundleExamplePath(), ConfigRole::kBundle);
  ASSERT_TRUE(bundle.ok()) << bundle.error().ToString();
  EXPECT_EQ(bundle->version, 1u);
  EXPECT_EQ(bundle->kms_identity, "kms.example.org");
  ASSERT_EQ(bundle->trust_relations.size(), 2u);
  EXPECT_FALSE(bundle->trust_relations[0].certificate.empty());
  EXPECT_FALSE(bundle->trust_relations[1].ca.empty());
  ASSERT_EQ(bundle->external_kms.size(), 1u);
  ASSERT_EQ(bundle->users.size(), 2u);
  EXPECT_EQ(bundle->users[0].external_kms, (std::vector<std::string>{"kms.partner.example.com"}));
  EXPECT_EQ(bundle->krr_policy, KrrPolicyConfig{});
  // Its certificates (public test certificates) are valid from 2025-01-01;
  // the peer's and the external KMS's until 2035-01-01, the CA's until 2045.
  EXPECT_TRUE(CheckCertificateDates(*bundle, Utc(2030, 1, 1)).ok());
  EXPECT_FALSE(CheckCertificateDates(*bundle, Utc(2036, 1, 1)).ok());
  // It is no complete configuration: the token is local.
  auto complete = LoadConfigFile(BundleExamplePath());
  ASSERT_FALSE(complete.ok());
  EXPECT_THAT(complete.error().message(), HasSubstr(": token.pin_file: required field is missing"));
}

TEST(ConfigExampleTest, LocalExampleCombinesWithTheBundle) {
  auto local = LoadConfigFile(LocalExamplePath(), ConfigRole::kLocal);
  ASSERT_TRUE(local.ok()) << local.error().ToString();
  auto bundle = LoadConfigFile(BundleExamplePath(), ConfigRole::kBundle);
  ASSERT_TRUE(bundle.ok()) << bundle.error().ToString();
  const KmsConfig combined = CombineConfig(*local, *bundle);
  EXPECT_EQ(combined.token.pin_file, "/etc/tkms/token.pin");
  EXPECT_EQ(combined.kms_identity, "kms.example.org");
  ExpectRoundTrip(combined);
}

// ---- refusals of the document as a whole -----------------------------------

TEST(ConfigTest, RootMustBeAnObject) {
  EXPECT_EQ(Refusal("[]"), "$: expected an object, got an array");
  EXPECT_EQ(Refusal("\"kms\""), "$: expected an object, got a string");
}

TEST(ConfigTest, DuplicateKeysAreRefused) {
  EXPECT_EQ(Refusal(R"({"kms_identity":"a","token":{"pin_file":"p","pin_file":"q"}})"),
            "token.pin_file: duplicate key at byte offset 44 (line 1, column 45)");
  EXPECT_EQ(Refusal(R"({"kms_identity":"a","kms_identity":"a"})"),
            "kms_identity: duplicate key at byte offset 20 (line 1, column 21)");
}

TEST(ConfigTest, TooDeepNestingIsRefusedWhileParsing) {
  // 17 levels: the 17th container is refused with its path.
  const std::string doc = R"({"kms_identity":"k","token":{"pin_file":"p"},"users":)" + std::string(16, '[');
  EXPECT_EQ(Refusal(doc),
            "users[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 16 levels at byte offset 68 "
            "(line 1, column 69)");
  // Objects count too.
  std::string objects;
  for (int i = 0; i < 20; ++i) objects += R"({"a":)";
  EXPECT_THAT(Refusal(objects), StartsWith("a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a: nested deeper than 16 levels"));
  // A document that is nothing but an opening bracket, a million deep: the
  // parser stops at level 17 (the rest is never read, so no syntax error).
  EXPECT_THAT(Refusal(std::string(kMaxConfigBytes, '[')), HasSubstr("nested deeper than 16 levels"));
}

TEST(ConfigTest, TooManyValuesAndTooLongStringsAreRefusedWhileParsing) {
  // kMaxConfigValues: the document, the array and its elements are values;
  // the first one over the limit is named.
  std::string doc = R"({"kms_identity":[0)";
  for (size_t i = 1; i < kMaxConfigValues - 2; ++i) doc += ",0";
  ASSERT_LT(doc.size(), kMaxConfigBytes);
  EXPECT_THAT(Refusal(doc + ",0]}"),
              StartsWith("kms_identity[" + std::to_string(kMaxConfigValues - 2) + "]: too many values at byte offset"));
  EXPECT_EQ(Refusal(doc + "]}"), "kms_identity: expected a string, got an array");  // exactly the limit
  // kMaxConfigStringBytes, for strings and keys.
  const std::string long_text(kMaxConfigStringBytes + 1, 'k');
  EXPECT_EQ(Refusal(R"({"kms_identity":")" + long_text + R"("})"),
            "kms_identity: string too long at byte offset 16 (line 1, column 17): a string of 65537 bytes; at most "
            "65536");
  EXPECT_THAT(Refusal(R"({"policy_classes":{")" + long_text + R"(":{}}})"),
              StartsWith("policy_classes['kkkk"));
}

TEST(ConfigTest, TooLargeDocumentIsRefused) {
  std::string doc = kMinimal;
  doc.resize(kMaxConfigBytes, ' ');
  EXPECT_TRUE(ParseConfig(doc).ok());  // exactly the limit
  doc.push_back(' ');
  EXPECT_EQ(Refusal(doc), "$: the document is 1048577 bytes; at most 1048576 (kMaxConfigBytes)");
}

TEST(ConfigTest, CanonicalFormMustFitTheLimit) {
  // Empty policy classes are small here and written out in full in the
  // canonical form, which must parse again.
  Json doc = Json::parse(kMinimal);
  // (Names built with append: g++ 12 -O2 warns falsely about "c" + std::string.)
  for (int i = 0; i < 7000; ++i) doc["policy_classes"][std::string("c").append(std::to_string(i))] = Json::object();
  doc["policy_classes"]["default"] = Json::object();
  ASSERT_LT(doc.dump().size(), kMaxConfigBytes);
  EXPECT_THAT(Refusal(doc.dump()), StartsWith("$: the canonical form of this configuration"));
}

TEST(ConfigTest, TooManyGroupsAreRefused) {
  Json doc = Json::parse(kMinimal);  // token_users: any member identity
  Json& groups = doc["groups"] = Json::array();
  for (size_t i = 0; i <= kMaxGroups; ++i) {
    groups.push_back({{"identity", std::string("g").append(std::to_string(i))}, {"members", {"m"}}});
  }
  ASSERT_LT(doc.dump().size(), kMaxConfigBytes);
  EXPECT_EQ(Refusal(doc.dump()), "groups: 10001 entries; at most 10000");
  groups.erase(groups.size() - 1);
  EXPECT_TRUE(ParseConfig(doc.dump()).ok());
}

TEST(ConfigTest, SyntaxErrorsNameTheByteOffset) {
  // The parser sees the error at the '}' after the stray comma: byte 63,
  // line 2, column 28 (offsets count from 0, lines and columns from 1).
  const std::string doc = "{\"kms_identity\": \"kms.example.org\",\n \"token\": {\"pin_file\": \"p\",}}";
  ASSERT_EQ(doc.find(",}") + 1, 63u);
  EXPECT_EQ(Refusal(doc),
            "token: JSON syntax error at byte offset 63 (line 2, column 28): "
            "syntax error while parsing object key - unexpected '}'; expected string literal");
  EXPECT_THAT(Refusal(""), StartsWith("$: JSON syntax error at byte offset 0 (line 1, column 1): "));
  const size_t end = std::string(kMinimal).size();
  EXPECT_THAT(Refusal(std::string(kMinimal) + " x"),
              StartsWith("$: data after the JSON value at byte offset " + std::to_string(end + 1) + " (line 1, column " +
                         std::to_string(end + 2) + "): "));
  EXPECT_THAT(Refusal(std::string(kMinimal) + std::string(1, '\0') + "x"),
              StartsWith("$: data after the JSON value at byte offset " + std::to_string(end)));
  EXPECT_THAT(Refusal("{\"kms_identity\""), StartsWith("$: JSON syntax error at byte offset 15 "));
  // Invalid UTF-8 inside a string, and a comment.
  EXPECT_THAT(Refusal("{\"kms_identity\":\"k\xff\"}"), StartsWith("$: invalid UTF-8 at byte offset 18 "));
  EXPECT_THAT(Refusal("{/* c */}"), StartsWith("$: JSON syntax error at byte offset 1 "));
}

TEST(ConfigTest, MessagesArePrintableAndShort) {
  // Input text repeated in a message is escaped and cut.
  Json doc = Base();
  doc["users"][0]["policy_class"] = std::string("\xc3\xa9\n") + std::string(1000, 'x');
  const std::string message = Refusal(doc.dump());
  EXPECT_THAT(message, StartsWith("users[0].policy_class: no policy class named '\\xc3\\xa9\\x0a"));
  EXPECT_TRUE(IsPrintableAscii(message));
  EXPECT_LT(message.size(), 200u);
  // The parser's "last read" excerpt of the input is not repeated.
  const std::string syntax = Refusal("{\"kms_identity\":\"" + std::string(5000, 'y') + "\x01\"}");
  EXPECT_TRUE(IsPrintableAscii(syntax)) << syntax;
  EXPECT_LT(syntax.size(), 300u) << syntax;
}

// ---- files ---------------------------------------------------------------------

TEST(ConfigFileTest, MissingFileIsNotFound) {
  TempDir dir;
  const std::string path = dir.path() + "/absent.json";
  auto config = LoadConfigFile(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), StatusCode::kNotFound);
  EXPECT_THAT(config.error().message(), StartsWith(path + ": cannot open: "));
}

TEST(ConfigFileTest, DirectoryIsRefused) {
  TempDir dir;
  auto config = LoadConfigFile(dir.path());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.error().message(), dir.path() + ": is a directory, not a regular file");
}

TEST(ConfigFileTest, FifoIsRefusedWithoutBlocking) {
  TempDir dir;
  const std::string path = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  auto config = LoadConfigFile(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message(), path + ": is a FIFO, not a regular file");
}

TEST(ConfigFileTest, OversizeFileIsRefused) {
  TempDir dir;
  std::string content = kMinimal;
  content.resize(kMaxConfigBytes + 1, ' ');
  const std::string path = dir.File("big.json", content);
  auto config = LoadConfigFile(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.error().message(), path + ": the file is 1048577 bytes; at most 1048576 (kMaxConfigBytes)");
  // At the limit it loads.
  content.pop_back();
  EXPECT_TRUE(LoadConfigFile(dir.File("limit.json", content)).ok());
}

TEST(ConfigFileTest, ParseErrorsNameTheFile) {
  TempDir dir;
  const std::string path = dir.File("bad.json", R"({"kms_identity":"k","token":{"pin_file":"p","sessions":0}})");
  auto config = LoadConfigFile(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.error().message(), path + ": token.sessions: 0 is out of range 1..64");
}

TEST(ConfigFileTest, SymlinkToARegularFileLoads) {
  TempDir dir;
  const std::string target = dir.File("real.json", kMinimal);
  const std::string link = dir.path() + "/link.json";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_TRUE(LoadConfigFile(link).ok());
}

TEST(ConfigFileTest, EmptyFileIsASyntaxError) {
  TempDir dir;
  const std::string path = dir.File("empty.json", "");
  auto config = LoadConfigFile(path);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.error().message(), StartsWith(path + ": $: JSON syntax error at byte offset 0"));
}

}  // namespace
}  // namespace tkms::provisioning
