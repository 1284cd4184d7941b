// Hex and base64 text encodings of byte strings.
//
// Why: MIKEY messages travel base64-encoded in HTTP bodies (TS 33.328 Annex A)
// and SDP (RFC 4567); tools print byte strings as lowercase hex. Decoders are
// strict (RFC 4648 alphabet, canonical padding) so that one message has one
// text form; callers that accept human-formatted input strip whitespace first.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tkms {

std::string HexEncode(std::span<const uint8_t> bytes);
// Accepts upper or lower case; rejects odd lengths and non-hex characters.
std::optional<std::vector<uint8_t>> HexDecode(std::string_view hex);

std::string Base64Encode(std::span<const uint8_t> bytes);
// Strict RFC 4648 §4 decoding: no whitespace, padding required, unused bits
// of the last quantum must be zero. Returns nullopt on any deviation.
std::optional<std::vector<uint8_t>> Base64Decode(std::string_view text);

// The value of one hex digit (either case), or -1.
int HexDigitValue(char c);
// The byte of the percent-encoding "%XX" that starts at in[at] (RFC 3986
// §2.1), or nullopt if in[at] is not '%' or two hex digits do not follow.
std::optional<uint8_t> PercentEscapeAt(std::string_view in, size_t at);

// Removes ASCII whitespace (space, tab, CR, LF).
std::string StripWhitespace(std::string_view text);

}  // namespace tkms
