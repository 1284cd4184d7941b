// The one reader of untrusted JSON text in tkms: tkmsd configurations
// (docs/config.md), signed configuration bundles (docs/bundles.md) and
// tkmsctl's JSON inputs (docs/mikey-json.md, `tkmsctl bundle show`).
//
// Why: RFC 8259 §9 lets a parser limit the size of texts, the depth of
// nesting, the range of numbers and the length of strings, and leaves open
// what to do with duplicate object names (§4: they "SHOULD be unique").
// Configuration and bundles come from operators, authorities and network
// peers, so every limit is explicit here, set by each caller, and checked
// while the text is read — before a hostile document is built:
//   - size (bytes of text), nesting depth (objects and arrays, the outermost
//     counting 1), number of values, length of each string and key;
//   - duplicate keys in an object, invalid UTF-8 (RFC 3629) in strings and
//     keys, lone UTF-16 surrogates in \u escapes, anything but white space
//     after the value, comments, trailing commas: all refused;
//   - a leading UTF-8 byte-order mark is skipped.
// The DOM is nlohmann's (json, or ordered_json where key order matters), but
// it is built through nlohmann's SAX interface (its parser loop is iterative)
// by a handler that enforces the limits: nlohmann's own DOM parser has no
// depth limit and stops only by throwing. Nothing here throws across the API;
// a refusal is a ParseError with the byte offset, line and column where it
// was noticed, the JSON path of where the reader was, and a printable ASCII
// message that never repeats more than a short, escaped piece of the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "firmware/base/status.h"

namespace tkms::json {

// What a caller accepts. Every field is a hard limit; zero refuses
// everything of that kind (a depth of 0 refuses every object and array).
struct Limits {
  size_t max_bytes = 0;         // the text, a byte-order mark included
  size_t max_depth = 0;         // containers open at once
  size_t max_values = 0;        // objects, arrays, strings, numbers, booleans, nulls (keys not counted)
  size_t max_string_bytes = 0;  // one string or key, after unescaping
};

enum class ErrorKind : uint8_t {
  kTooLarge,          // the text is longer than max_bytes
  kSyntax,            // not JSON (RFC 8259 grammar), comments and trailing commas included
  kInvalidUtf8,       // a string or key is not valid UTF-8, or a \u escape is a lone surrogate
  kTrailingData,      // something other than white space after the value
  kNumberOutOfRange,  // a number too large for a double (1e400)
  kTooDeep,           // more than max_depth containers open
  kTooManyValues,     // more than max_values values
  kStringTooLong,     // a string or key longer than max_string_bytes
  kDuplicateKey,      // an object names a key twice
  kOutOfMemory,
};
const char* ErrorKindName(ErrorKind kind);  // "syntax", "invalid UTF-8", "duplicate key", ...

struct ParseError {
  ErrorKind kind = ErrorKind::kSyntax;
  size_t offset = 0;  // byte offset from 0 where the problem was noticed
  size_t line = 1;    // from 1
  size_t column = 1;  // from 1, in bytes
  // Where the reader was, in json_path.h notation ("" is the document): the
  // key or element concerned (a duplicate key, a too deep container, a too
  // long string), otherwise the innermost open container.
  std::string path;
  // "<problem> at byte offset N (line L, column C)[: <detail>]", e.g.
  // "duplicate key at byte offset 40 (line 1, column 41)",
  // "JSON syntax error at byte offset 63 (line 2, column 28): unexpected '}';
  // expected string literal". Printable ASCII; no path.
  std::string message;
  // "<path or $>: <message>".
  std::string ToString() const;
};

// Parses `text` as one JSON value within `limits`. Object keys are sorted
// (std::map); ParseOrdered keeps them in the order of the text.
Result<nlohmann::json, ParseError> Parse(std::string_view text, const Limits& limits) noexcept;
// What a value is, for messages: "an object", "a string", "an integer",
// "a number with a fraction or exponent", ... (one wording for every reader).
const char* TypeName(const nlohmann::json& value);
Result<nlohmann::ordered_json, ParseError> ParseOrdered(std::string_view text, const Limits& limits) noexcept;

}  // namespace tkms::json
