// Fuzz target: the configuration loader (provisioning/config.h), which reads
// operator-supplied and, with signed bundles, remotely delivered text.
//
// Properties:
//   * ParseConfig never crashes, throws or recurses on any input;
//   * every refusal is kInvalidArgument with a "<path>: <problem>" message of
//     printable ASCII (messages go to logs);
//   * an accepted configuration's canonical JSON parses again to an equal
//     configuration, and is a fixed point of ConfigToJson.
#include <string>
#include <string_view>

#include "provisioning/config.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = tkms::provisioning::ParseConfig(text);
  if (!config.ok()) {
    Check(config.error().code() == tkms::StatusCode::kInvalidArgument, "a refusal is kInvalidArgument");
    Check(IsLogSafe(config.error().message()), "a refusal message is '<path>: <problem>' in printable ASCII");
    return 0;
  }
  Check(config->policy_classes.count(config->default_policy_class) == 1, "default_policy_class names a class");
  const std::string canonical = tkms::provisioning::ConfigToJson(*config);
  auto again = tkms::provisioning::ParseConfig(canonical);
  Check(again.ok(), "the canonical JSON of an accepted configuration parses");
  Check(*again == *config, "the canonical JSON parses to an equal configuration");
  Check(tkms::provisioning::ConfigToJson(*again) == canonical, "the canonical JSON is a fixed point");
  return 0;
}
