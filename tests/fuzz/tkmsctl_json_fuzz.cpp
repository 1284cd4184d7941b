// Fuzz target: `tkmsctl mikey encode`, which turns untrusted JSON into a MIKEY
// message (tools/tkmsctl/mikey_json.h).
//
// Properties:
//   * EncodeJsonText never crashes or throws past its boundary;
//   * whatever it accepts decodes (encode never emits what decode refuses),
//     and the JSON of the decoded message encodes to the same bytes.
#include <string_view>

#include "firmware/mikey/codec.h"
#include "tests/fuzz/fuzz_target.h"
#include "tools/tkmsctl/mikey_json.h"

namespace {

constexpr const char* kTarget = "tkmsctl_json_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto bytes = tkms::tkmsctl::EncodeJsonText(text);
  if (!bytes.ok()) return 0;
  auto message = tkms::mikey::Decode(*bytes);
  Check(message.ok(), "encoded JSON decodes");
  const std::string again = tkms::tkmsctl::MessageToJson(*message).dump();
  auto reencoded = tkms::tkmsctl::EncodeJsonText(again);
  Check(reencoded.ok() && *reencoded == *bytes, "JSON of the decoded message encodes to the same bytes");
  return 0;
}
