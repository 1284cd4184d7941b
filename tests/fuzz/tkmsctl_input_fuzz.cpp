// Fuzz target: the input-format detector of `tkmsctl mikey decode`
// (tools/tkmsctl/input_format.h), which reads untrusted files: HTTP messages,
// SDP, hex, base64 or raw bytes.
//
// Properties:
//   * DetectInputFormat is total and deterministic;
//   * ExtractMikeyMessage never returns more bytes than it was given, and an
//     error offset never points past the input;
//   * a message extracted as raw bytes is the input itself.
#include "tests/fuzz/fuzz_target.h"
#include "tools/tkmsctl/input_format.h"

namespace {

constexpr const char* kTarget = "tkmsctl_input_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tkms::tkmsctl::InputFormat;
  const tkms::ByteSpan input(data, size);
  const InputFormat detected = tkms::tkmsctl::DetectInputFormat(input);
  Check(detected == tkms::tkmsctl::DetectInputFormat(input), "detection is deterministic");
  Check(detected != InputFormat::kAuto, "detection names a format");
  for (InputFormat format : {InputFormat::kAuto, InputFormat::kHttp, InputFormat::kSdp,
                             InputFormat::kHex, InputFormat::kBase64, InputFormat::kRaw}) {
    auto extracted = tkms::tkmsctl::ExtractMikeyMessage(input, format);
    if (extracted.ok()) {
      Check(extracted->bytes.size() <= size, "extracted message is no longer than the input");
      if (extracted->format == InputFormat::kRaw) {
        Check(extracted->bytes == std::vector<uint8_t>(data, data + size), "raw input is the message");
      }
    } else {
      Check(extracted.error().offset <= size, "error offset inside the input");
    }
  }
  return 0;
}
