// Fuzz target: the strict text encodings of firmware/base/encoding.h.
//
// The input is used both as text and as bytes. Properties:
//   * Base64Decode(text) accepted => Base64Encode(result) == text (strict
//     decoding means one text form per byte string);
//   * HexDecode(text) accepted => it decoded text.size() / 2 bytes and
//     HexEncode(result) is the text in lowercase;
//   * for any bytes b, Base64Decode(Base64Encode(b)) == b and
//     HexDecode(HexEncode(b)) == b.
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/encoding.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

constexpr const char* kTarget = "base64_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<uint8_t> bytes(data, data + size);

  if (auto decoded = tkms::Base64Decode(text)) {
    Check(tkms::Base64Encode(*decoded) == text, "Base64Encode(Base64Decode(t)) == t");
  }
  if (auto decoded = tkms::HexDecode(text)) {
    Check(size % 2 == 0 && decoded->size() == size / 2, "HexDecode yields text length / 2 bytes");
    Check(tkms::HexEncode(*decoded) == AsciiLower(text), "HexEncode(HexDecode(t)) == lowercase t");
  }

  auto b64 = tkms::Base64Decode(tkms::Base64Encode(bytes));
  Check(b64.has_value() && *b64 == bytes, "Base64Decode(Base64Encode(b)) == b");
  auto hex = tkms::HexDecode(tkms::HexEncode(bytes));
  Check(hex.has_value() && *hex == bytes, "HexDecode(HexEncode(b)) == b");
  return 0;
}
