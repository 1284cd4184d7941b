// JSON paths in messages: "http.max_body_bytes", "users[2].identities[0]",
// "policy_classes['gold.v2'].max_keys", "$" for the document itself.
//
// Why: every reader of a JSON document (the bounded reader itself, the
// configuration schema, tkmsctl's MIKEY mapping) names the offending field
// in its refusals; one notation, one implementation. Keys are untrusted
// text: anything but a short plain key is quoted and escaped (printable.h).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tkms::json {

// Plain keys (1..64 characters of A-Z a-z 0-9 _ -) are written ".key";
// every other key ['key'], quoted and escaped.
bool IsPlainKey(std::string_view key);
// `parent` + key. The document's own path is "" (shown as "$" by
// PathOrRoot); a key of the document is written without a leading dot.
std::string KeyPath(std::string_view parent, std::string_view key);
// `parent` + "[index]".
std::string IndexPath(std::string_view parent, size_t index);
// `path`, or "$" for the document itself.
std::string PathOrRoot(std::string_view path);

}  // namespace tkms::json
