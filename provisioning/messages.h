// Error-message text for provisioning's parsers (internal to provisioning/).
//
// Why: the configuration loader and the bundle verifier both repeat pieces
// of untrusted input in their messages, and both must keep every message
// printable ASCII, short, and free of anything that could forge a log line.
// One implementation of the quoting rules serves both.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tkms::provisioning::internal {

// Most bytes of input text repeated in a message, and of a parser's (or
// mbedTLS's) own description.
inline constexpr size_t kMaxQuotedBytes = 64;
inline constexpr size_t kMaxDetailBytes = 160;

// Appends `text` as printable ASCII: backslash and `quote` (if not '\0')
// escaped with a backslash, bytes outside 0x20..0x7e as \xNN.
void AppendEscaped(std::string& out, std::string_view text, char quote);
// `text` escaped (no quote character), whole.
std::string Escaped(std::string_view text);
// `text` escaped (no quote character), cut after kMaxDetailBytes ("...").
std::string EscapedDetail(std::string_view text);
// 'text', escaped, cut after kMaxQuotedBytes bytes of input ("...").
std::string Quote(std::string_view text);
// nlohmann's description of a syntax error without its "[json.exception..]
// parse error at line L, column C: " prefix and without the "last read"
// excerpt of the input, escaped and shortened.
std::string DescribeParseError(std::string_view what);
// mbedTLS's own text for an error code, escaped and shortened.
std::string MbedtlsErrorText(int code);

}  // namespace tkms::provisioning::internal
