// PKCS#11 URIs (RFC 7512): how operators and configuration name a token or a
// key, e.g. "pkcs11:token=tkms" or "pkcs11:token=tkms;object=psk-alice;id=%01".
//
// Why: configuration files and admin commands carry these strings, so the
// parser treats them as untrusted text: strict RFC 7512 §2.3 grammar (pchar /
// qchar character sets, percent-encoding per RFC 3986 §2.1 with exactly two
// hex digits), each defined attribute at most once, unknown attributes
// refused (vendor attributes, whose names start with "x-", are kept in
// order), a length limit, and no PIN: "pin-value" (RFC 7512 §2.3) is refused
// because a PIN never travels in a URI; "pin-source" is kept for tools that
// read PIN files. FormatPkcs11Uri writes the canonical form: RFC 7512 §2.4
// attribute order, and exactly the bytes that the component's grammar does
// not allow raw percent-encoded, with upper-case hex ("id" included: an id
// byte that is an unreserved or allowed character stays raw). So the
// canonical text is never longer than any text that parses to the same URI,
// and Parse(Format(u)) == u for every u that Parse accepted (fuzzed by
// tests/pkcs11's pkcs11_uri_fuzz).
//
// Readings: attribute names and "type" values are case-sensitive (as every
// RFC 7512 example and common implementations write them); the scheme name is
// case-insensitive (RFC 3986 §3.1). An empty value ("token=") is kept as an
// empty string, distinct from an absent attribute. slot-id must fit CK_SLOT_ID
// (64 bits here) and library-version parts a CK_BYTE (0..255).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/status.h"

namespace tkms::pkcs11 {

inline constexpr size_t kMaxPkcs11UriLength = 4096;

// The "type" path attribute (RFC 7512 §2.3, CKA_CLASS).
enum class UriObjectType : uint8_t { kPublic, kPrivate, kCert, kSecretKey, kData };
std::string_view UriObjectTypeName(UriObjectType type);  // "public", ..., "secret-key", "data"

// "library-version" = 1*DIGIT [ "." 1*DIGIT ].
struct UriLibraryVersion {
  uint32_t major = 0;
  std::optional<uint32_t> minor;
  bool operator==(const UriLibraryVersion&) const = default;
};

// A vendor-specific attribute ("x-..."), value percent-decoded.
struct UriVendorAttribute {
  std::string name;
  std::string value;
  bool operator==(const UriVendorAttribute&) const = default;
};

// A parsed PKCS#11 URI. Text values are percent-decoded bytes (normally
// UTF-8); absent attributes are nullopt.
struct Pkcs11Uri {
  // Path attributes.
  std::optional<std::string> token;
  std::optional<std::string> manufacturer;
  std::optional<std::string> serial;
  std::optional<std::string> model;
  std::optional<std::string> library_manufacturer;
  std::optional<std::string> library_description;
  std::optional<UriLibraryVersion> library_version;
  std::optional<std::string> slot_description;
  std::optional<std::string> slot_manufacturer;
  std::optional<uint64_t> slot_id;
  std::optional<std::string> object;
  std::optional<std::vector<uint8_t>> id;
  std::optional<UriObjectType> type;
  std::vector<UriVendorAttribute> vendor_path;  // distinct names, input order
  // Query attributes.
  std::optional<std::string> pin_source;
  std::optional<std::string> module_name;
  std::optional<std::string> module_path;
  std::vector<UriVendorAttribute> vendor_query;  // repeats allowed (RFC 7512 §2.3)

  bool operator==(const Pkcs11Uri&) const = default;
};

// True if `text` starts with the scheme "pkcs11:" (any case).
bool IsPkcs11Uri(std::string_view text);

// Parses `text`. kInvalidArgument (with the byte offset, never the value) for
// anything outside the grammar above, a duplicate or unknown attribute, a
// "pin-value", or text longer than kMaxPkcs11UriLength.
Result<Pkcs11Uri> ParsePkcs11Uri(std::string_view text);

// The canonical text of `uri`. Vendor attribute names are written as stored;
// they must be valid ("x-" followed by letters, digits, '-' or '_') for the
// result to parse.
std::string FormatPkcs11Uri(const Pkcs11Uri& uri);

}  // namespace tkms::pkcs11
