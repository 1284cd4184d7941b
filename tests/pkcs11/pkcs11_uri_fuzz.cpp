// Fuzz target: the RFC 7512 PKCS#11 URI parser and formatter
// (pkcs11/uri.h), which read configuration and admin input.
//
// Properties:
//   * ParsePkcs11Uri(t) accepted => FormatPkcs11Uri of the result parses to
//     an equal Pkcs11Uri, and formatting that gives the same text again (the
//     canonical form is a fixed point);
//   * an accepted input is at most kMaxPkcs11UriLength bytes and starts with
//     the scheme;
//   * KeySelectorFromUri(t) accepted => ParsePkcs11Uri(t) accepted, and the
//     selector carries exactly its object and id;
//   * a refused input's message stays short (at most 200 bytes, whatever the
//     input's length): values, a pin-value above all, are never echoed.
#include <string>
#include <string_view>

#include "pkcs11/key_selector.h"
#include "pkcs11/uri.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

constexpr const char* kTarget = "pkcs11_uri_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tkms::pkcs11::FormatPkcs11Uri;
  using tkms::pkcs11::ParsePkcs11Uri;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto parsed = ParsePkcs11Uri(text);
  if (parsed.ok()) {
    Check(size <= tkms::pkcs11::kMaxPkcs11UriLength, "accepted input within the length limit");
    Check(tkms::pkcs11::IsPkcs11Uri(text), "accepted input starts with pkcs11:");
    const std::string formatted = FormatPkcs11Uri(*parsed);
    auto again = ParsePkcs11Uri(formatted);
    Check(again.ok(), "Format(Parse(t)) parses");
    if (again.ok()) {
      Check(*again == *parsed, "Parse(Format(u)) == u");
      Check(FormatPkcs11Uri(*again) == formatted, "Format is a fixed point");
    }
  } else {
    Check(parsed.error().message().size() <= 200, "error messages do not echo values");
  }

  auto selector = tkms::pkcs11::KeySelectorFromUri(text);
  if (selector.ok()) {
    Check(parsed.ok(), "a key URI is a URI");
    if (parsed.ok()) {
      Check(selector->label == parsed->object && selector->id == parsed->id,
            "selector = object and id");
    }
  }
  return 0;
}
