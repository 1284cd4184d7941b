// Fuzz target: signed configuration bundles (provisioning/bundle.h), which a
// running appliance reads from its bundle file and from POST /admin/bundle.
//
// Every input goes through ParseBundle and VerifyBundle, against the fixed
// anchor of TestPki("provisioning_bundle_fuzz") (the same keys on every run,
// so the committed corpus in corpus/provisioning_bundle_fuzz/ holds bundles that really verify)
// at a fixed time, 2030-01-01T00:00:00Z. Seeds: the test BundleSeeds.Write in
// bundle_test.cpp.
//
// Properties:
//   * neither function crashes, throws or recurses on any input;
//   * every refusal of ParseBundle is kInvalidArgument, and VerifyBundle
//     refuses the same input with the same message (the envelope is step 1);
//   * every refusal of VerifyBundle is kInvalidArgument or kPermissionDenied
//     with a message of printable ASCII that starts with the field it is
//     about ("$", "format", "payload", "signature", "certificates", "anchor");
//   * an accepted envelope serialises canonically: parsing the canonical text
//     gives the same bundle, and the canonical text is a fixed point;
//   * a verified bundle's version is its configuration's (>= 1), the
//     configuration is what ParseConfig(payload, kBundle) returns, and the
//     digest is the file's.
#include <ctime>
#include <string>
#include <string_view>

#include "provisioning/bundle.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/provisioning/test_pki.h"

namespace {

constexpr const char* kTarget = "provisioning_bundle_fuzz";
constexpr std::time_t kNow = 1893456000;  // 2030-01-01T00:00:00Z

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

bool IsLogSafe(const std::string& message) {
  for (const char c : message) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return !message.empty();
}

// The message starts with the document ("$: ", "$[0]...: ") or a member,
// possibly with a JSON path inside it ("certificates[1]: ", "format.x: ").
bool NamesAField(const std::string& message) {
  if (message.rfind("$: ", 0) == 0 || message.rfind("$[", 0) == 0) return true;
  for (const std::string field : {"format", "payload", "signature", "certificates", "anchor"}) {
    if (message.rfind(field, 0) != 0 || message.size() <= field.size()) continue;
    const char next = message[field.size()];
    if (next == ':' || next == '[' || next == '.') return true;
  }
  return false;
}

const tkms::test_pki::TestPki& Pki() {
  static const tkms::test_pki::TestPki pki("provisioning_bundle_fuzz");
  return pki;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tkms::provisioning;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto& anchor = Pki().root.der;

  auto bundle = ParseBundle(text);
  auto verified = VerifyBundle(text, anchor, kNow);
  if (!bundle.ok()) {
    Check(bundle.error().code() == tkms::StatusCode::kInvalidArgument, "an envelope refusal is kInvalidArgument");
    Check(IsLogSafe(bundle.error().message()), "an envelope refusal is printable ASCII");
    Check(NamesAField(bundle.error().message()), "an envelope refusal names its field");
    Check(!verified.ok() && verified.error().message() == bundle.error().message(),
          "VerifyBundle refuses a bad envelope with ParseBundle's message");
    return 0;
  }
  const std::string canonical = SerializeBundle(*bundle);
  auto again = ParseBundle(canonical);
  Check(again.ok(), "the canonical text of an accepted envelope parses");
  Check(*again == *bundle, "the canonical text parses to the same bundle");
  Check(SerializeBundle(*again) == canonical, "the canonical text is a fixed point");
  Check(bundle->signature.size() <= kMaxEcdsaP256DerBytes, "the signature is bounded");
  Check(!bundle->certificates.empty() && bundle->certificates.size() <= kMaxBundleCertificates,
        "1..4 certificates");

  if (!verified.ok()) {
    const tkms::StatusCode code = verified.error().code();
    Check(code == tkms::StatusCode::kInvalidArgument || code == tkms::StatusCode::kPermissionDenied,
          "a refusal is kInvalidArgument or kPermissionDenied");
    Check(IsLogSafe(verified.error().message()), "a refusal is printable ASCII");
    Check(NamesAField(verified.error().message()), "a refusal names its field");
    return 0;
  }
  Check(verified->version >= 1 && verified->version == verified->config.version, "the version is the payload's");
  Check(verified->file_digest == BundleFileDigest(text), "the digest is the file's");
  auto config = ParseConfig(bundle->payload, ConfigRole::kBundle);
  Check(config.ok() && *config == verified->config, "the configuration is the payload's");
  return 0;
}
