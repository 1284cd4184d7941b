// Fuzz target: the MIKEY message codec (firmware/mikey/codec.h).
//
// Properties checked on every input, in both decoding modes (with and
// without the composition rules):
//   * Decode never crashes, leaks or reads out of bounds (sanitizers);
//   * what Decode accepts is canonical: Encode succeeds and reproduces the
//     input byte for byte, and decoding that again yields the same model;
//   * the payload extents tile the input exactly (header, then each payload
//     in order, ending at the last byte), and each extent holds exactly what
//     EncodePayload produces for that payload and its next-payload byte;
//   * the composition rules only ever refuse more: a message accepted with
//     check_composition=true is accepted, identically, without them.
#include <algorithm>
#include <vector>

#include "firmware/mikey/codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using tkms::ByteSpan;
using tkms::mikey::Decode;
using tkms::mikey::DecodeOptions;
using tkms::mikey::Encode;
using tkms::mikey::EncodePayload;
using tkms::mikey::Message;
using tkms::mikey::PayloadExtent;
using tkms::mikey::TypeOf;

constexpr const char* kTarget = "mikey_codec_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

bool SameBytes(ByteSpan a, ByteSpan b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

void CheckExtents(ByteSpan input, const Message& message, const std::vector<PayloadExtent>& extents) {
  Check(extents.size() == message.payloads.size() + 1, "one extent for the header and each payload");
  size_t end = 0;
  for (const PayloadExtent& e : extents) {
    Check(e.offset == end && e.length > 0 && e.length <= input.size() - e.offset,
          "extents are contiguous, non-empty and inside the input");
    end = e.offset + e.length;
  }
  Check(end == input.size(), "extents cover the whole input");
  for (size_t i = 0; i < message.payloads.size(); ++i) {
    const uint8_t next = i + 1 < message.payloads.size()
                             ? static_cast<uint8_t>(TypeOf(message.payloads[i + 1]))
                             : uint8_t{0};
    auto encoded = EncodePayload(message.payloads[i], next);
    Check(encoded.ok(), "EncodePayload accepts every decoded payload");
    const PayloadExtent& e = extents[i + 1];
    Check(SameBytes(*encoded, input.subspan(e.offset, e.length)),
          "EncodePayload reproduces the bytes of the payload's extent");
  }
}

// Returns the decoded model if `input` was accepted under `options`.
bool RoundTrip(ByteSpan input, const DecodeOptions& options, Message& out) {
  std::vector<PayloadExtent> extents;
  auto decoded = Decode(input, options, extents);
  if (!decoded.ok()) return false;

  auto encoded = Encode(*decoded);
  Check(encoded.ok(), "Encode accepts every decoded message");
  Check(SameBytes(*encoded, input), "Encode(Decode(b)) == b");
  auto again = Decode(*encoded, options);
  Check(again.ok(), "the re-encoded message decodes");
  Check(*again == *decoded, "Decode(Encode(m)) == m");

  auto plain = Decode(input, options);
  Check(plain.ok() && *plain == *decoded, "Decode with and without extents agree");

  CheckExtents(input, *decoded, extents);
  out = std::move(*decoded);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteSpan input(data, size);

  DecodeOptions strict;
  Message with_composition;
  const bool accepted = RoundTrip(input, strict, with_composition);

  DecodeOptions structural;
  structural.check_composition = false;
  Message without_composition;
  const bool structurally_accepted = RoundTrip(input, structural, without_composition);

  if (accepted) {
    Check(structurally_accepted, "the composition rules never accept what the structure refuses");
    Check(with_composition == without_composition, "both modes decode to the same model");
  }
  return 0;
}
