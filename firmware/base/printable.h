// Printable text for messages that repeat untrusted input.
//
// Why: configuration, bundle and certificate readers (tkms_json,
// tkms_pki, provisioning) put pieces of their input into error messages,
// audit lines and logs. Every such message must stay printable ASCII, short,
// and unable to forge a log line; these are the one set of quoting rules
// they share.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tkms {

// Most bytes of input text repeated by Quote(), and of a description cut by
// EscapedDetail().
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

}  // namespace tkms
