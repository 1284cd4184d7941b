// Tests of the configuration loader (provisioning/config.h, docs/config.md).
//
// Every refusal is checked for its status code and for the exact JSON path
// at the start of its message. Refusals are one parameterised test each
// (ctest lists them as provisioning_config_test.Refusals/RefusalTest.Refused/<name>).
#include "provisioning/config.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

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

// The message of a refusal, after checking that it is kInvalidArgument.
std::string Refusal(std::string_view text) {
  auto config = ParseConfig(text);
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
  EXPECT_EQ(config->listen.ua, "0.0.0.0:8080");
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
  config.listen = {"10.0.0.1:0", "10.0.0.1:9000"};
  config.http = {1048576, 256, 100, 0};
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
  ExpectRoundTrip(config);
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
  EXPECT_THAT(canonical, StartsWith(R"({"default_policy_class":"default","groups":[)"));
  EXPECT_THAT(canonical, HasSubstr(R"("psk_id":"0f1e2d3c4b5a6978")"));
  // Absent optional fields stay absent; everything else is written out.
  EXPECT_THAT(ConfigToJson(*ParseConfig(kMinimal)),
              HasSubstr(std::string(R"("token":{"module_path":"/usr/lib/softhsm/libsofthsm2.so",)") +
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
      // users and policy classes
      {"DuplicateIdentityAcrossUsers", Set("/users/1/identities/0", "tel:+100"), "users[1].identities[0]",
       "'tel:+100' already belongs to users[0]"},
      {"DuplicateIdentityWithinUser", Set("/users/0/identities/1", "sip:alice@example.org"), "users[0].identities[1]",
       "is listed twice"},
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

// ---- refusals of the document as a whole -----------------------------------

TEST(ConfigTest, RootMustBeAnObject) {
  EXPECT_EQ(Refusal("[]"), "$: expected an object, got an array");
  EXPECT_EQ(Refusal("\"kms\""), "$: expected an object, got a string");
}

TEST(ConfigTest, DuplicateKeysAreRefused) {
  EXPECT_EQ(Refusal(R"({"kms_identity":"a","token":{"pin_file":"p","pin_file":"q"}})"),
            "token.pin_file: duplicate key");
  EXPECT_EQ(Refusal(R"({"kms_identity":"a","kms_identity":"a"})"), "kms_identity: duplicate key");
}

TEST(ConfigTest, TooDeepNestingIsRefusedWhileParsing) {
  // 17 levels: the 17th container is refused with its path.
  const std::string doc = R"({"kms_identity":"k","token":{"pin_file":"p"},"users":)" + std::string(16, '[');
  EXPECT_EQ(Refusal(doc),
            "users[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 16 levels (kMaxConfigDepth)");
  // Objects count too.
  std::string objects;
  for (int i = 0; i < 20; ++i) objects += R"({"a":)";
  EXPECT_THAT(Refusal(objects), StartsWith("a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a: nested deeper than 16 levels"));
  // A document that is nothing but an opening bracket, a million deep: the
  // parser stops at level 17 (the rest is never read, so no syntax error).
  EXPECT_THAT(Refusal(std::string(kMaxConfigBytes, '[')), HasSubstr("nested deeper than 16 levels"));
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
              StartsWith("$: JSON syntax error at byte offset " + std::to_string(end + 1) + " (line 1, column " +
                         std::to_string(end + 2) + "): "));
  EXPECT_THAT(Refusal("{\"kms_identity\""), StartsWith("$: JSON syntax error at byte offset 15 "));
  // Invalid UTF-8 inside a string, and a comment.
  EXPECT_THAT(Refusal("{\"kms_identity\":\"k\xff\"}"), StartsWith("$: JSON syntax error at byte offset 18 "));
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
