// KeySelector: names one object on a token by CKA_LABEL and/or CKA_ID, the
// two attributes an RFC 7512 PKCS#11 URI calls "object" and "id".
//
// Why: operators and configuration name keys as "pkcs11:object=psk;id=%01",
// as a label or as an id; code names them as a selector. Turning a key URI
// into a selector is URI plumbing (RFC 7512 §2.3 path attributes), so it lives
// here; which object a selector may resolve to (one and only one, never an
// ambiguous match) is the keystore's rule (firmware/keystore).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "firmware/base/status.h"

namespace tkms::pkcs11 {

using Bytes = std::vector<uint8_t>;

// Names a key by CKA_LABEL and/or CKA_ID (at least one).
struct KeySelector {
  std::optional<std::string> label;
  std::optional<Bytes> id;

  static KeySelector Label(std::string label) { return {std::move(label), std::nullopt}; }
  static KeySelector Id(Bytes id) { return {std::nullopt, std::move(id)}; }
  // "label 'x'", "id 01ff", or "label 'x' id 01ff".
  std::string ToString() const;
};

// A selector from a key URI: "pkcs11:object=<label>;id=%01%02" (RFC 7512).
// Only "object" and "id" are accepted (at least one); any other attribute,
// including token attributes and a query, is refused with kInvalidArgument.
Result<KeySelector> KeySelectorFromUri(std::string_view uri);

}  // namespace tkms::pkcs11
