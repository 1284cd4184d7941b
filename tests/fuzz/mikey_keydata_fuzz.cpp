// Fuzz target: the KEMAC plaintext (Key data sub-payload chain, RFC 3830
// §6.13) decoder, DecodeKeyDataChain / EncodeKeyDataChain.
//
// Properties: no crash or sanitizer report; an accepted chain re-encodes to
// exactly the input and decodes again to the same keys; decoding at a base
// offset changes only the offsets reported in errors, never the outcome.
#include <algorithm>

#include "firmware/mikey/codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

constexpr const char* kTarget = "mikey_keydata_fuzz";
constexpr size_t kBaseOffset = 1000;

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tkms::mikey::DecodeKeyDataChain;
  using tkms::mikey::EncodeKeyDataChain;
  const tkms::ByteSpan input(data, size);

  auto keys = DecodeKeyDataChain(input);
  auto shifted = DecodeKeyDataChain(input, kBaseOffset);
  Check(keys.ok() == shifted.ok(), "the base offset does not change the outcome");
  if (!keys.ok()) {
    Check(shifted.error().rule == keys.error().rule &&
              shifted.error().offset == keys.error().offset + kBaseOffset,
          "errors at a base offset are shifted by exactly that offset");
    return 0;
  }
  Check(*shifted == *keys, "the base offset does not change the decoded keys");

  auto encoded = EncodeKeyDataChain(*keys);
  Check(encoded.ok(), "EncodeKeyDataChain accepts every decoded chain");
  Check(std::equal(encoded->begin(), encoded->end(), input.begin(), input.end()),
        "EncodeKeyDataChain(DecodeKeyDataChain(b)) == b");
  auto again = DecodeKeyDataChain(*encoded);
  Check(again.ok() && *again == *keys, "the re-encoded chain decodes to the same keys");
  return 0;
}
