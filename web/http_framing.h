// DecideBodyFraming: how long a request body is, decided from the request's
// header fields alone (RFC 7230 §3.3.3), strictly, before any body byte is
// read.
//
// Why: the body length is where request smuggling lives: two parsers that
// frame the same bytes differently see different requests. Every transport
// (the plaintext one today, the TLS one next) asks this one function, and it
// refuses anything a second reader could frame differently:
//   - Content-Length more than once                     -> repeated (400)
//   - Content-Length and Transfer-Encoding together     -> 400 (§3.3.3 item 3)
//   - Transfer-Encoding other than exactly one "chunked" (case-insensitive,
//     OWS around it), or given more than once           -> 400 (§3.3.3 item 3
//     requires 400 when chunked is not final; other codings are refused the
//     same way: §3.3.1 allows 501, but one answer is simpler for UEs and the
//     plaintext transport's HTTP library already answers 400 for them)
//   - Content-Length that is not 1*DIGIT (no sign, no spaces inside, no
//     list), or does not fit in 63 bits                 -> 400 (§3.3.2)
// Content-Length values are read through ByteReader (untrusted bytes).
//
// Pure and thread-safe.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "web/http_message.h"

namespace tkms::web {

BodyFraming DecideBodyFraming(const std::vector<HttpHeader>& headers);

// The Content-Length field value as a number: 1*DIGIT after removing OWS
// around it, at most 2^63 - 1. nullopt otherwise.
std::optional<uint64_t> ParseContentLength(std::string_view value);

// For refusals: the log label (refusal=...) and the one-line body text.
std::string_view FramingErrorLabel(FramingError error);
std::string_view FramingErrorText(FramingError error);

}  // namespace tkms::web
