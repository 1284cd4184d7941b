// Input-format detection for `tkmsctl mikey decode`: finds the binary MIKEY
// message inside whatever an operator saved — an HTTP request or response
// (TS 33.328 Annex A: Ticket Request/Resolve over HTTP with a base64 body;
// RFC 3830 §10.1: application/mikey, binary or base64), an SDP description or
// a single `a=key-mgmt:mikey <base64>` line (RFC 4567 §3.1), hex, base64, or
// the raw bytes.
//
// Why: this is a parser of untrusted bytes, so it is kept small, separate from
// the CLI and free of exceptions, with its own unit tests and a fuzz entry
// point (ExtractMikeyMessage). Detection is deterministic and documented in
// docs/tkmsctl.md; the order is:
//   1. HTTP    — the first line is an HTTP/1.x request line or status line;
//   2. SDP     — the input is text and a line starts with "a=key-mgmt:";
//   3. hex     — only hex digits and whitespace, an even number of digits;
//   4. base64  — only base64 characters and whitespace, and strict RFC 4648
//                decoding succeeds;
//   5. raw     — anything else.
// A raw MIKEY message always starts with the version byte 0x01, so it can
// never be mistaken for one of the text forms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"

namespace tkms::tkmsctl {

// Largest input tkmsctl reads (a MIKEY message is at most 64 KiB; HTTP and
// text encodings add overhead).
inline constexpr size_t kMaxInputBytes = size_t{1} << 20;

enum class InputFormat : uint8_t { kAuto, kHttp, kSdp, kHex, kBase64, kRaw };

// "auto", "http", "sdp", "hex", "base64", "raw".
std::string_view InputFormatName(InputFormat format);
std::optional<InputFormat> InputFormatFromName(std::string_view name);

struct InputError {
  InputFormat format = InputFormat::kAuto;  // the format being read when it failed
  size_t offset = 0;                         // byte offset in the input
  std::string detail;
  // "input offset 12: sdp: a=key-mgmt:mikey data is not valid base64"
  std::string ToString() const;
};

struct ExtractedMessage {
  InputFormat format = InputFormat::kRaw;  // detected (or forced) format
  std::vector<uint8_t> bytes;             // the binary MIKEY message
};

// Classifies `input` by the order above. Total: never fails, never allocates
// more than the input size.
InputFormat DetectInputFormat(ByteSpan input);

// Returns the binary MIKEY message carried by `input`, read as `format`
// (kAuto: DetectInputFormat). Refuses inputs over kMaxInputBytes, empty
// inputs, malformed HTTP/SDP framing and invalid hex/base64. With kAuto, an
// input that is plain text but none of the text forms is refused with the
// reason (a raw MIKEY message is never plain text). Does not decode MIKEY.
Result<ExtractedMessage, InputError> ExtractMikeyMessage(ByteSpan input,
                                                         InputFormat format = InputFormat::kAuto);

}  // namespace tkms::tkmsctl
