// Fuzz target: the configuration loader (provisioning/config.h), which reads
// operator-supplied and, with signed bundles, remotely delivered text.
//
// Every input is read in all three roles (ConfigRole): as a complete
// configuration, as the local configuration of a tkmsd with a bundle, and
// as a bundle payload. (Reading each input three times, rather than taking
// the role from a leading byte, keeps every corpus file a plain JSON
// document and checks each of them in every role.)
//
// Properties:
//   * ParseConfig never crashes, throws or recurses on any input, in any role;
//   * every refusal is kInvalidArgument with a "<path>: <problem>" message of
//     printable ASCII (messages go to logs);
//   * kComplete: an accepted configuration's canonical JSON parses again to an
//     equal configuration, and is a fixed point of ConfigToJson;
//   * kLocal: an accepted configuration has only default provisioned fields,
//     and combined with a fixed bundle it round-trips as above;
//   * kBundle: an accepted payload has a version, a kms_identity and only
//     default local fields, and combined with a fixed local configuration it
//     round-trips as above (the canonical form of a bundle leaves room for
//     the local sections).
#include <string>
#include <string_view>

#include "provisioning/config.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

namespace provisioning = tkms::provisioning;
using provisioning::ConfigRole;
using provisioning::KmsConfig;

constexpr const char* kTarget = "provisioning_config_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

bool IsLogSafe(const std::string& message) {
  if (message.empty() || message.find(": ") == std::string::npos) return false;
  for (const char c : message) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// The smallest accepted document of a role, parsed once.
const KmsConfig& Fixture(ConfigRole role) {
  static const auto parse = [](std::string_view text, ConfigRole r) {
    auto config = provisioning::ParseConfig(text, r);
    if (!config.ok()) tkms::fuzz::Violation(kTarget, "a fixture parses");
    return *config;
  };
  static const KmsConfig local =
      parse(R"({"token":{"pin_file":"/etc/tkms/token.pin"},"listen":{"ua":"0.0.0.0:8080","plaintext_ua_on_non_loopback":true}})",
            ConfigRole::kLocal);
  static const KmsConfig bundle = parse(R"({"version":1,"kms_identity":"kms.example.org"})", ConfigRole::kBundle);
  return role == ConfigRole::kLocal ? local : bundle;
}

// The canonical JSON of a complete configuration parses back to it.
void CheckRoundTrip(const KmsConfig& config) {
  Check(config.policy_classes.count(config.default_policy_class) == 1, "default_policy_class names a class");
  const std::string canonical = provisioning::ConfigToJson(config);
  auto again = provisioning::ParseConfig(canonical, ConfigRole::kComplete);
  Check(again.ok(), "the canonical JSON of an accepted configuration parses");
  Check(*again == config, "the canonical JSON parses to an equal configuration");
  Check(provisioning::ConfigToJson(*again) == canonical, "the canonical JSON is a fixed point");
}

void ReadAs(std::string_view text, ConfigRole role) {
  auto config = provisioning::ParseConfig(text, role);
  if (!config.ok()) {
    Check(config.error().code() == tkms::StatusCode::kInvalidArgument, "a refusal is kInvalidArgument");
    Check(IsLogSafe(config.error().message()), "a refusal message is '<path>: <problem>' in printable ASCII");
    return;
  }
  switch (role) {
    case ConfigRole::kComplete:
      CheckRoundTrip(*config);
      break;
    case ConfigRole::kLocal: {
      const KmsConfig& bundle = Fixture(ConfigRole::kBundle);
      const KmsConfig& local = Fixture(ConfigRole::kLocal);
      // Its provisioned fields are those of any other local configuration.
      Check(provisioning::CombineConfig(*config, local) == *config, "a local configuration provisions nothing");
      CheckRoundTrip(provisioning::CombineConfig(*config, bundle));
      break;
    }
    case ConfigRole::kBundle: {
      const KmsConfig& bundle = Fixture(ConfigRole::kBundle);
      const KmsConfig& local = Fixture(ConfigRole::kLocal);
      Check(config->version >= 1 && !config->kms_identity.empty(), "a bundle has a version and a kms_identity");
      // Its local fields are those of any other bundle.
      Check(provisioning::CombineConfig(bundle, *config) == *config, "a bundle sets no local field");
      CheckRoundTrip(provisioning::CombineConfig(local, *config));
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ReadAs(text, ConfigRole::kComplete);
  ReadAs(text, ConfigRole::kLocal);
  ReadAs(text, ConfigRole::kBundle);
  return 0;
}
