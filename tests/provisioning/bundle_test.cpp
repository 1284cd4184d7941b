// Tests of signed configuration bundles (provisioning/bundle.h,
// docs/bundles.md): the envelope, the signed message, chain and signer
// checks at a given time, the payload's schema, signing, and the helpers.
//
// Certificates come from the in-memory test PKI (test_pki.h). Every
// verification passes an explicit `now`, so nothing here depends on the
// machine's clock. Each refusal is checked for its status code and for the
// field its message starts with; every message must be printable ASCII.
//
// The fuzz seeds in corpus/provisioning_bundle_fuzz/ are written by the test
// BundleSeeds.Write when TKMS_WRITE_BUNDLE_SEEDS=DIR is set (see
// bundle_fuzz.cpp); without it that test does nothing.
#include "provisioning/bundle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "tests/provisioning/test_pki.h"

namespace tkms::provisioning {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using test_pki::Cert;
using test_pki::CertSpec;
using test_pki::Key;
using test_pki::TestPki;
using Json = nlohmann::json;

using test_pki::Utc;

// Inside the validity of every test certificate (2024..2049) and of the
// certificates in docs/examples/bundle-payload.json (2025..2035).
const std::time_t kNow = Utc(2030, 6, 1);

constexpr const char* kPayload = R"({"version": 3, "kms_identity": "kms.example.org"})";

// One PKI for the whole process (deterministic: the same keys every run).
const TestPki& Pki() {
  static const TestPki pki("bundle_test");
  return pki;
}

std::string SourceDir() {
  const char* dir = std::getenv("TKMS_SOURCE_DIR");
  return dir != nullptr ? dir : TKMS_SOURCE_DIR;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool IsPrintableAscii(const std::string& text) {
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// The refusal of VerifyBundle, after checking its code and that it is
// printable ASCII.
std::string Refusal(std::string_view bundle, ByteSpan anchor, std::time_t now, StatusCode code) {
  auto verified = VerifyBundle(bundle, anchor, now);
  if (verified.ok()) {
    ADD_FAILURE() << "accepted";
    return "";
  }
  EXPECT_EQ(verified.error().code(), code) << verified.error().ToString();
  EXPECT_TRUE(IsPrintableAscii(verified.error().message())) << verified.error().message();
  return verified.error().message();
}

std::string Denied(std::string_view bundle, std::time_t now = kNow) {
  return Refusal(bundle, Pki().root.der, now, StatusCode::kPermissionDenied);
}

std::string Invalid(std::string_view bundle, std::time_t now = kNow) {
  return Refusal(bundle, Pki().root.der, now, StatusCode::kInvalidArgument);
}

std::function<Result<Bytes>(ByteSpan)> RawSigner(const Key& key) {
  return [&key](ByteSpan digest) -> Result<Bytes> { return key.SignDigestRaw(digest); };
}

// ---- the envelope -------------------------------------------------------------------

TEST(BundleTest, SerializeParseRoundTrip) {
  const std::string text = Pki().SignedBundle(kPayload);
  auto bundle = ParseBundle(text);
  ASSERT_TRUE(bundle.ok()) << bundle.error().ToString();
  EXPECT_EQ(bundle->payload, kPayload);
  ASSERT_EQ(bundle->certificates.size(), 1u);
  EXPECT_EQ(bundle->certificates[0], Pki().signer.der);
  EXPECT_EQ(SerializeBundle(*bundle), text);
  auto again = ParseBundle(SerializeBundle(*bundle));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *bundle);
  EXPECT_THAT(text, StartsWith("{\n  \"format\": \"tkms-bundle/1\",\n  \"payload\": \""));
  EXPECT_EQ(text.back(), '\n');
}

TEST(BundleTest, ParseAcceptsAnyMemberOrderAndWhitespace) {
  auto bundle = ParseBundle(Pki().SignedBundle(kPayload));
  ASSERT_TRUE(bundle.ok());
  Json doc = {{"certificates", {Base64Encode(bundle->certificates[0])}},
              {"signature", Base64Encode(bundle->signature)},
              {"payload", Base64Encode(ByteSpan(reinterpret_cast<const uint8_t*>(bundle->payload.data()),
                                                bundle->payload.size()))},
              {"format", "tkms-bundle/1"}};
  auto parsed = ParseBundle(doc.dump());
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(*parsed, *bundle);
  parsed = ParseBundle(" \r\n\t" + doc.dump(3) + "\n\n");
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(*parsed, *bundle);
}

// A valid bundle as JSON, for the envelope refusals to mutate.
Json ValidDoc() {
  return Json::parse(Pki().SignedBundle(kPayload));
}

struct EnvelopeCase {
  const char* name;
  std::function<std::string()> text;
  const char* prefix;  // the refusal message starts with this
};

std::string WithMember(const char* key, Json value) {
  Json doc = ValidDoc();
  doc[key] = std::move(value);
  return doc.dump();
}

std::string WithoutMember(const char* key) {
  Json doc = ValidDoc();
  doc.erase(key);
  return doc.dump();
}

std::string B64(const Bytes& bytes) { return Base64Encode(bytes); }

std::string SignatureB64With(const std::function<void(Bytes&)>& change) {
  Bytes sig = *Base64Decode(ValidDoc()["signature"].get<std::string>());
  change(sig);
  return B64(sig);
}

const std::vector<EnvelopeCase>& EnvelopeCases() {
  static const std::vector<EnvelopeCase> cases = {
      {"Empty", [] { return std::string(); }, "$: JSON syntax error at byte offset 0"},
      {"NotJson", [] { return std::string("tkms-bundle/1"); }, "$: JSON syntax error at byte offset 1"},
      {"TrailingGarbage", [] { return ValidDoc().dump() + "x"; }, "$: data after the JSON value"},
      {"Truncated", [] { const std::string t = ValidDoc().dump(); return t.substr(0, t.size() / 2); },
       "certificates: JSON syntax error"},  // in the middle of certificates[0]
      {"Array", [] { return std::string("[1]"); }, "$: expected a JSON object, got an array"},
      {"String", [] { return std::string("\"x\""); }, "$: expected a JSON object, got a string"},
      {"UnknownMember", [] { return WithMember("version", 3); }, "$: unknown member 'version'"},
      {"DuplicateMember",
       [] {
         std::string t = ValidDoc().dump();
         return t.substr(0, t.size() - 1) + ",\"format\":\"tkms-bundle/1\"}";
       },
       "format: duplicate key at byte offset"},
      {"MissingFormat", [] { return WithoutMember("format"); }, "format: required member is missing"},
      {"MissingPayload", [] { return WithoutMember("payload"); }, "payload: required member is missing"},
      {"MissingSignature", [] { return WithoutMember("signature"); }, "signature: required member is missing"},
      {"MissingCertificates", [] { return WithoutMember("certificates"); },
       "certificates: required member is missing"},
      {"UnknownFormat", [] { return WithMember("format", "tkms-bundle/2"); },
       "format: unsupported format 'tkms-bundle/2'"},
      {"FormatNotString", [] { return WithMember("format", 1); }, "format: expected a string, got an integer"},
      {"PayloadObject", [] { return WithMember("payload", Json::object()); },
       "payload: expected a base64 string, got an object"},
      {"PayloadNull", [] { return WithMember("payload", nullptr); }, "payload: expected a base64 string, got null"},
      {"PayloadNotBase64", [] { return WithMember("payload", "eyJ2ZXJzaW9uIjogM30"); }, "payload: is not base64"},
      {"PayloadWithNewline", [] { return WithMember("payload", "e30=\n"); }, "payload: is not base64"},
      {"PayloadEmpty", [] { return WithMember("payload", ""); }, "payload: is empty"},
      {"PayloadTooLarge", [] { return WithMember("payload", B64(Bytes(kMaxConfigBytes + 1, '{'))); },
       "payload: holds 1048577 bytes; at most 1048576"},
      {"SignatureEmpty", [] { return WithMember("signature", ""); }, "signature: is empty"},
      {"SignatureTooLong", [] { return WithMember("signature", B64(Bytes(73, 0x30))); },
       "signature: holds more than 72 bytes"},
      {"SignatureTruncated",
       [] { return WithMember("signature", SignatureB64With([](Bytes& s) { s.pop_back(); })); },
       "signature: not a DER ECDSA-Sig-Value"},
      {"SignatureTrailingByte",
       [] { return WithMember("signature", B64(Bytes{0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00})); },
       "signature: not a DER ECDSA-Sig-Value: bytes after s"},
      {"SignatureByteAfterSequence",
       [] { return WithMember("signature", SignatureB64With([](Bytes& s) { s.back() = 0; s.push_back(0); })); },
       "signature: "},
      {"SignatureNotSequence",
       [] { return WithMember("signature", SignatureB64With([](Bytes& s) { s[0] = 0x31; })); },
       "signature: not a DER ECDSA-Sig-Value: no SEQUENCE"},
      {"SignatureRawRs", [] { return WithMember("signature", B64(Bytes(64, 0x11))); },
       "signature: not a DER ECDSA-Sig-Value"},
      {"SignatureZeroR", [] { return WithMember("signature", B64(Bytes{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01})); },
       "signature: not a DER ECDSA-Sig-Value: r is not in 1..n-1"},
      {"SignatureNegativeS",
       [] { return WithMember("signature", B64(Bytes{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x81})); },
       "signature: not a DER ECDSA-Sig-Value: s is negative"},
      {"SignatureNonMinimal",
       [] { return WithMember("signature", B64(Bytes{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01})); },
       "signature: not a DER ECDSA-Sig-Value: r is not minimally encoded"},
      {"SignatureLongFormLength",
       [] { return WithMember("signature", B64(Bytes{0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})); },
       "signature: not a DER ECDSA-Sig-Value: the SEQUENCE length"},
      {"CertificatesString", [] { return WithMember("certificates", "MIIB"); },
       "certificates: expected an array of base64 strings, got a string"},
      {"CertificatesEmpty", [] { return WithMember("certificates", Json::array()); },
       "certificates: must hold the signer's certificate"},
      {"CertificatesFive",
       [] {
         const std::string c = B64(Pki().signer.der);
         return WithMember("certificates", {c, c, c, c, c});
       },
       "certificates: more than 4 certificates"},
      {"CertificateNotString", [] { return WithMember("certificates", {B64(Pki().signer.der), 5}); },
       "certificates[1]: expected a base64 string, got an integer"},
      {"CertificateNested", [] { return WithMember("certificates", Json::array({Json::array()})); },
       "certificates[0]: expected a base64 string, got an array"},
      {"CertificateNotBase64", [] { return WithMember("certificates", {"MIIB!"}); }, "certificates[0]: is not base64"},
      {"CertificateBase64BadPadding", [] { return WithMember("certificates", {"MIJ="}); },
       "certificates[0]: is not base64"},
      {"CertificateEmpty", [] { return WithMember("certificates", {""}); }, "certificates[0]: is empty"},
      {"CertificateTooLarge", [] { return WithMember("certificates", {B64(Bytes(kMaxCertificateDerBytes + 1, 1))}); },
       "certificates[0]: holds 16385 bytes; at most 16384"},
      {"TooLarge", [] { return std::string(kMaxBundleBytes + 1, ' '); }, "$: the bundle is 2097153 bytes"},
      {"Deep", [] { return std::string(100000, '['); }, "$[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 16"},
      {"AConfiguration", [] { return std::string(kPayload); }, "$: unknown member 'kms_identity'"},
      {"DuplicateUnknownMember", [] { return std::string(R"({"x": 1, "x": 2})"); }, "$: duplicate key at byte offset 9"},
      {"DeepInsideAMember", [] { return WithMember("format", Json::parse(std::string(20, '[') + std::string(20, ']'))); },
       "format[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 16"},
      {"NulAfterTheObject", [] { return ValidDoc().dump() + std::string(1, '\0') + "{}"; }, "$: data after the JSON value"},
      {"InvalidUtf8",
       [] {
         std::string t = ValidDoc().dump();
         return t.replace(t.find("tkms-bundle/1"), 13, "tkms-bundle/1\xff");
       },
       "$: invalid UTF-8 at byte offset"},
      {"TooManyValues", [] { return WithMember("certificates", Json(std::vector<int>(70, 0))); },
       "certificates[62]: too many values"},  // the 65th value (certificates sort first)
  };
  return cases;
}

// gtest prints the case by name (in failures and in ctest's test list).
void PrintTo(const EnvelopeCase& envelope_case, std::ostream* os) { *os << envelope_case.name; }

class EnvelopeRefusalTest : public ::testing::TestWithParam<EnvelopeCase> {};

TEST_P(EnvelopeRefusalTest, Refused) {
  const std::string text = GetParam().text();
  auto bundle = ParseBundle(text);
  ASSERT_FALSE(bundle.ok());
  EXPECT_EQ(bundle.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bundle.error().message(), StartsWith(GetParam().prefix));
  EXPECT_TRUE(IsPrintableAscii(bundle.error().message())) << bundle.error().message();
  // VerifyBundle refuses it the same way, before anything else.
  EXPECT_EQ(Invalid(text), bundle.error().message());
}

INSTANTIATE_TEST_SUITE_P(Envelope, EnvelopeRefusalTest, ::testing::ValuesIn(EnvelopeCases()),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(BundleTest, SyntaxErrorsDoNotEchoTheInput) {
  auto bundle = ParseBundle(R"({"format": "tkms-bundle/1", "payload": "secretish-text-here)");
  ASSERT_FALSE(bundle.ok());
  EXPECT_THAT(bundle.error().message(), Not(HasSubstr("secretish")));
}

// ---- a valid bundle ------------------------------------------------------------------------

TEST(BundleTest, ValidBundleVerifies) {
  const std::string text = Pki().SignedBundle(kPayload);
  auto verified = VerifyBundle(text, Pki().root.der, kNow);
  ASSERT_TRUE(verified.ok()) << verified.error().ToString();
  EXPECT_EQ(verified->version, 3u);
  EXPECT_EQ(verified->config.version, 3u);
  EXPECT_EQ(verified->config.kms_identity, "kms.example.org");
  auto expected = ParseConfig(kPayload, ConfigRole::kBundle);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(verified->config, *expected);
  EXPECT_EQ(verified->signer.subject, "CN=tkms test bundle signer, O=tkms tests");
  EXPECT_EQ(verified->signer.issuer, "CN=tkms test provisioning CA, O=tkms tests");
  EXPECT_EQ(verified->signer.serial_hex, "01");
  EXPECT_EQ(verified->signer.not_after, Utc(2049, 12, 31, 23, 59, 59));
  EXPECT_EQ(verified->file_digest, BundleFileDigest(text));
}

TEST(BundleTest, ExamplePayloadVerifies) {
  const std::string payload = ReadFile(SourceDir() + "/docs/examples/bundle-payload.json");
  ASSERT_FALSE(payload.empty());
  auto signed_text = SignBundle(payload, RawSigner(Pki().signer_key), {Pki().signer.der});
  ASSERT_TRUE(signed_text.ok()) << signed_text.error().ToString();
  auto verified = VerifyBundle(*signed_text, Pki().root.der, kNow);
  ASSERT_TRUE(verified.ok()) << verified.error().ToString();
  EXPECT_EQ(verified->version, 1u);
  EXPECT_EQ(verified->config.users.size(), 2u);
  // The payload's own certificates (2025..2035) are checked at `now` too.
  EXPECT_THAT(Invalid(*signed_text, Utc(2036, 1, 1)), StartsWith("payload: trust_relations[0].certificate: expired on"));
}

TEST(BundleTest, DigestsAreSha256OfTheSignedMessageAndOfTheFile) {
  EXPECT_EQ(HexEncode(BundleMessageDigest("{}")),
            "ecc8d04a51ee1e2fd5628d1b6d444ed499b5b21f7805cde2780e76a11fd559bc");
  EXPECT_EQ(HexEncode(BundleMessageDigest("")), "3c48e04ce95a6c637488349705fb50376ef9ea9fcff85e952b3f64a8379cd1da");
  EXPECT_EQ(HexEncode(BundleFileDigest("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(BundleTest, VerificationUsesTheGivenTimeNotTheClock) {
  // Valid only in 2040..2045: refused now (whatever the machine's clock says
  // is checked against 2030 here), accepted in 2042.
  CertSpec spec = test_pki::SignerSpec(TestPki::kSignerSubject);
  spec.not_before = "20400101000000";
  spec.not_after = "20450101000000";
  const Cert later = test_pki::IssueCert(spec, Pki().signer_key, TestPki::kRootSubject, Pki().root_key);
  const std::string text = test_pki::MakeBundle(kPayload, Pki().signer_key, {later.der});
  EXPECT_TRUE(VerifyBundle(text, Pki().root.der, Utc(2042, 1, 1)).ok());
  EXPECT_EQ(Denied(text, kNow), "certificates[0]: not valid before 2040-01-01T00:00:00Z");
  EXPECT_EQ(Denied(text, Utc(2045, 1, 1, 0, 0, 1)), "certificates[0]: expired on 2045-01-01T00:00:00Z");
  // The bounds themselves are inside the validity.
  EXPECT_TRUE(VerifyBundle(text, Pki().root.der, Utc(2040, 1, 1)).ok());
  EXPECT_TRUE(VerifyBundle(text, Pki().root.der, Utc(2045, 1, 1)).ok());
}

// ---- flipped bytes ---------------------------------------------------------------------------

// Every byte of the decoded payload and of the signature, each changed in
// its lowest and highest bit (about 300 verifications), and every character
// of their base64 in the file: all refused.
TEST(BundleTest, EveryFlippedPayloadOrSignatureByteIsRefused) {
  const std::string text = Pki().SignedBundle(kPayload);
  const Bundle bundle = *ParseBundle(text);
  size_t checked = 0;
  for (const uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}}) {
    for (size_t i = 0; i < bundle.payload.size(); ++i) {
      Bundle changed = bundle;
      changed.payload[i] = static_cast<char>(changed.payload[i] ^ mask);
      EXPECT_THAT(Denied(SerializeBundle(changed)), StartsWith("signature: does not verify")) << "payload byte " << i;
      ++checked;
    }
    for (size_t i = 0; i < bundle.signature.size(); ++i) {
      Bundle changed = bundle;
      changed.signature[i] ^= mask;
      auto verified = VerifyBundle(SerializeBundle(changed), Pki().root.der, kNow);
      ASSERT_FALSE(verified.ok()) << "signature byte " << i;
      EXPECT_THAT(verified.error().message(), StartsWith("signature: ")) << "signature byte " << i;
      ++checked;
    }
  }
  // In the file: every character of the "payload" and "signature" strings.
  for (const char* member : {"\"payload\": \"", "\"signature\": \""}) {
    const size_t start = text.find(member) + std::string_view(member).size();
    const size_t end = text.find('"', start);
    for (size_t i = start; i < end; ++i) {
      std::string changed = text;
      changed[i] = static_cast<char>(changed[i] ^ 0x01);
      auto verified = VerifyBundle(changed, Pki().root.der, kNow);
      EXPECT_FALSE(verified.ok()) << "file byte " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 400u);
}

// ---- signers and chains --------------------------------------------------------------------------

TEST(BundleTest, WrongSignerIsRefused) {
  const Key other = Key::FromSeed("bundle_test/other");
  const std::string text = test_pki::MakeBundle(kPayload, other, {Pki().signer.der});
  EXPECT_THAT(Denied(text), StartsWith("signature: does not verify with the key of certificates[0]"));
}

TEST(BundleTest, UntrustedChainIsRefused) {
  const TestPki other("bundle_test/other-pki");
  const std::string text = other.SignedBundle(kPayload);
  EXPECT_TRUE(VerifyBundle(text, other.root.der, kNow).ok());
  EXPECT_EQ(Denied(text), "certificates[0]: not issued by the provisioning anchor");
  // The same names, another CA key: still not issued by the anchor.
  EXPECT_EQ(Refusal(Pki().SignedBundle(kPayload), other.root.der, kNow, StatusCode::kPermissionDenied),
            "certificates[0]: not issued by the provisioning anchor");
}

Cert SignerCert(const CertSpec& spec, const Key& key = Pki().signer_key) {
  return test_pki::IssueCert(spec, key, TestPki::kRootSubject, Pki().root_key);
}

std::string BundleWithSigner(const CertSpec& spec) {
  return test_pki::MakeBundle(kPayload, Pki().signer_key, {SignerCert(spec).der});
}

TEST(BundleTest, ExpiredSignerIsRefused) {
  CertSpec spec = test_pki::SignerSpec(TestPki::kSignerSubject);
  spec.not_before = "20240101000000";
  spec.not_after = "20251231235959";
  EXPECT_EQ(Denied(BundleWithSigner(spec)), "certificates[0]: expired on 2025-12-31T23:59:59Z");
}

TEST(BundleTest, NotYetValidSignerIsRefused) {
  CertSpec spec = test_pki::SignerSpec(TestPki::kSignerSubject);
  spec.not_before = "20310101000000";
  EXPECT_EQ(Denied(BundleWithSigner(spec)), "certificates[0]: not valid before 2031-01-01T00:00:00Z");
}

TEST(BundleTest, ExpiredOrNotYetValidAnchorIsRefused) {
  CertSpec spec = test_pki::CaSpec(TestPki::kRootSubject);
  spec.not_after = "20291231235959";
  const Cert expired_root = test_pki::SelfSignedCert(spec, Pki().root_key);
  const std::string text = Pki().SignedBundle(kPayload);
  EXPECT_EQ(Refusal(text, expired_root.der, kNow, StatusCode::kPermissionDenied),
            "anchor: expired on 2029-12-31T23:59:59Z");
  EXPECT_TRUE(VerifyBundle(text, expired_root.der, Utc(2029, 1, 1)).ok());
  spec = test_pki::CaSpec(TestPki::kRootSubject);
  spec.not_before = "20310101000000";
  const Cert future_root = test_pki::SelfSignedCert(spec, Pki().root_key);
  EXPECT_EQ(Refusal(text, future_root.der, kNow, StatusCode::kPermissionDenied),
            "anchor: not valid before 2031-01-01T00:00:00Z");
}

TEST(BundleTest, SignerWithoutDigitalSignatureIsRefused) {
  CertSpec spec = test_pki::SignerSpec(TestPki::kSignerSubject);
  spec.key_usage = 0x08;  // keyAgreement
  EXPECT_EQ(Denied(BundleWithSigner(spec)), "certificates[0]: key usage lacks digitalSignature (it has keyAgreement)");
  spec.key_usage = std::nullopt;
  EXPECT_EQ(Denied(BundleWithSigner(spec)),
            "certificates[0]: key usage lacks digitalSignature (no keyUsage extension)");
}

TEST(BundleTest, CaSignerIsRefused) {
  CertSpec spec = test_pki::CaSpec(TestPki::kSignerSubject);
  spec.key_usage = test_pki::kKuDigitalSignature | test_pki::kKuKeyCertSign;
  EXPECT_THAT(Denied(BundleWithSigner(spec)), StartsWith("certificates[0]: is a CA certificate"));
}

TEST(BundleTest, SignerKeyOnAnotherCurveIsRefused) {
  const Key p384 = Key::FromSeed("bundle_test/p384", test_pki::Curve::kP384);
  const Cert cert = SignerCert(test_pki::SignerSpec(TestPki::kSignerSubject), p384);
  // The signature is a P-256 one (a P-384 DER signature is too long for the
  // envelope): the certificate's key is what is refused.
  const std::string text = test_pki::MakeBundle(kPayload, Pki().signer_key, {cert.der});
  EXPECT_EQ(Denied(text), "certificates[0]: not an EC P-256 key (EC P-384)");
  EXPECT_GT(p384.SignDigestDer(BundleMessageDigest(kPayload)).size(), kMaxEcdsaP256DerBytes);
}

// root -> intermediate -> signer.
struct ChainPki {
  explicit ChainPki(CertSpec inter_spec = test_pki::CaSpec("CN=tkms test intermediate CA,O=tkms tests"))
      : inter_key(Key::FromSeed("bundle_test/intermediate")),
        inter(test_pki::IssueCert(inter_spec, inter_key, TestPki::kRootSubject, Pki().root_key)),
        signer(test_pki::IssueCert(test_pki::SignerSpec("CN=tkms test chained signer,O=tkms tests"), Pki().signer_key,
                                   inter_spec.subject, inter_key)) {}
  Key inter_key;
  Cert inter;
  Cert signer;
  std::string Bundle(std::vector<Bytes> chain) const {
    return test_pki::MakeBundle(kPayload, Pki().signer_key, std::move(chain));
  }
};

TEST(BundleTest, ChainWithAnIntermediateVerifies) {
  const ChainPki chain;
  auto verified = VerifyBundle(chain.Bundle({chain.signer.der, chain.inter.der}), Pki().root.der, kNow);
  ASSERT_TRUE(verified.ok()) << verified.error().ToString();
  EXPECT_EQ(verified->signer.issuer, "CN=tkms test intermediate CA, O=tkms tests");
  // Without the intermediate, the signer's issuer is unknown.
  EXPECT_EQ(Denied(chain.Bundle({chain.signer.der})), "certificates[0]: not issued by the provisioning anchor");
  // The anchor itself must not be in the bundle, nor anything unused.
  EXPECT_EQ(Denied(chain.Bundle({chain.signer.der, chain.inter.der, Pki().root.der})),
            "certificates[2]: not part of the chain from certificates[0] to the anchor (remove it)");
  EXPECT_THAT(Invalid(chain.Bundle({Pki().signer.der, chain.inter.der})),
              StartsWith("certificates[1]: is not the issuer of certificates[0]"));
}

TEST(BundleTest, IntermediateMustBeAValidCa) {
  CertSpec not_ca = test_pki::SignerSpec("CN=tkms test intermediate CA,O=tkms tests");
  not_ca.key_usage = test_pki::kKuKeyCertSign;
  const ChainPki leaf_as_ca(not_ca);
  EXPECT_THAT(Invalid(leaf_as_ca.Bundle({leaf_as_ca.signer.der, leaf_as_ca.inter.der})),
              StartsWith("certificates[1]: not a CA certificate"));

  CertSpec no_cert_sign = test_pki::CaSpec("CN=tkms test intermediate CA,O=tkms tests");
  no_cert_sign.key_usage = test_pki::kKuCrlSign;
  const ChainPki weak(no_cert_sign);
  EXPECT_EQ(Invalid(weak.Bundle({weak.signer.der, weak.inter.der})),
            "certificates[1]: key usage lacks keyCertSign (it has cRLSign)");

  CertSpec expired = test_pki::CaSpec("CN=tkms test intermediate CA,O=tkms tests");
  expired.not_after = "20280101000000";
  const ChainPki old(expired);
  EXPECT_EQ(Denied(old.Bundle({old.signer.der, old.inter.der})), "certificates[1]: expired on 2028-01-01T00:00:00Z");
}

TEST(BundleTest, ChainOutOfOrderIsRefused) {
  // root -> a -> b -> signer, given as signer, a, b.
  const Key a_key = Key::FromSeed("bundle_test/a");
  const Key b_key = Key::FromSeed("bundle_test/b");
  const Cert a = test_pki::IssueCert(test_pki::CaSpec("CN=A"), a_key, TestPki::kRootSubject, Pki().root_key);
  const Cert b = test_pki::IssueCert(test_pki::CaSpec("CN=B"), b_key, "CN=A", a_key);
  const Cert s = test_pki::IssueCert(test_pki::SignerSpec("CN=S"), Pki().signer_key, "CN=B", b_key);
  EXPECT_TRUE(VerifyBundle(test_pki::MakeBundle(kPayload, Pki().signer_key, {s.der, b.der, a.der}), Pki().root.der,
                           kNow)
                  .ok());
  EXPECT_EQ(Invalid(test_pki::MakeBundle(kPayload, Pki().signer_key, {s.der, a.der, b.der})),
            "certificates[1]: is not the issuer of certificates[0] (the chain goes from the signer up to the anchor)");
}

TEST(BundleTest, CertificateAndAnchorDerMustBeExact) {
  Bytes trailing = Pki().signer.der;
  trailing.push_back(0);
  EXPECT_EQ(Invalid(test_pki::MakeBundle(kPayload, Pki().signer_key, {trailing})),
            "certificates[0]: 1 bytes after the DER certificate");
  EXPECT_THAT(Invalid(test_pki::MakeBundle(kPayload, Pki().signer_key, {Bytes{0x30, 0x03, 0x02, 0x01, 0x01}})),
              StartsWith("certificates[0]: not a DER X.509 certificate: mbedTLS -0x"));
  const std::string text = Pki().SignedBundle(kPayload);
  EXPECT_THAT(Refusal(text, Bytes{}, kNow, StatusCode::kInvalidArgument), StartsWith("anchor: is empty"));
  EXPECT_THAT(Refusal(text, Pki().signer.der, kNow, StatusCode::kInvalidArgument),
              StartsWith("anchor: not a CA certificate"));
  Bytes anchor = Pki().root.der;
  anchor.push_back(0);
  EXPECT_EQ(Refusal(text, anchor, kNow, StatusCode::kInvalidArgument), "anchor: 1 bytes after the DER certificate");
}

// ---- the payload --------------------------------------------------------------------------------

TEST(BundleTest, PayloadSchemaErrorsNameTheField) {
  const std::string unknown_class =
      R"({"version": 3, "kms_identity": "kms.example.org", "users": [{"identities": ["sip:a@example.org"], "policy_class": "gold"}]})";
  EXPECT_EQ(Invalid(Pki().SignedBundle(unknown_class)), "payload: users[0].policy_class: no policy class named 'gold'");
  EXPECT_THAT(Invalid(Pki().SignedBundle(R"({"kms_identity": "kms.example.org"})")), StartsWith("payload: version: "));
  EXPECT_THAT(Invalid(Pki().SignedBundle(R"({"version": 0, "kms_identity": "kms.example.org"})")),
              StartsWith("payload: version: "));
  EXPECT_THAT(Invalid(Pki().SignedBundle("not json")), StartsWith("payload: $: JSON syntax error"));
}

TEST(BundleTest, PayloadWithALocalSectionIsRefused) {
  const std::string with_token =
      R"({"version": 3, "kms_identity": "kms.example.org", "token": {"pin_file": "/etc/tkms/token.pin"}})";
  EXPECT_THAT(Invalid(Pki().SignedBundle(with_token)), StartsWith("payload: token: "));
  const std::string with_listen = R"({"version": 3, "kms_identity": "kms.example.org", "listen": {}})";
  EXPECT_THAT(Invalid(Pki().SignedBundle(with_listen)), StartsWith("payload: listen: "));
}

TEST(BundleTest, PayloadIsCheckedOnlyAfterTheSignature) {
  // A schema error in a bundle with a bad signature reports the signature.
  const std::string text = test_pki::MakeBundle("not json", Key::FromSeed("bundle_test/other"), {Pki().signer.der});
  EXPECT_THAT(Denied(text), StartsWith("signature: does not verify"));
}

// ---- signing ----------------------------------------------------------------------------------

TEST(BundleTest, SignBundleMakesAVerifiableBundle) {
  auto text = SignBundle(kPayload, RawSigner(Pki().signer_key), {Pki().signer.der});
  ASSERT_TRUE(text.ok()) << text.error().ToString();
  auto verified = VerifyBundle(*text, Pki().root.der, kNow);
  ASSERT_TRUE(verified.ok()) << verified.error().ToString();
  EXPECT_EQ(verified->version, 3u);
  const ChainPki chain;
  text = SignBundle(kPayload, RawSigner(Pki().signer_key), {chain.signer.der, chain.inter.der});
  ASSERT_TRUE(text.ok()) << text.error().ToString();
  EXPECT_TRUE(VerifyBundle(*text, Pki().root.der, kNow).ok());
}

TEST(BundleTest, SignBundleRefusesABadPayload) {
  auto text = SignBundle(R"({"version": 3, "kms_identity": "kms.example.org", "default_policy_class": "gold"})",
                         RawSigner(Pki().signer_key), {Pki().signer.der});
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(text.error().message(), StartsWith("payload: default_policy_class: no policy class named 'gold'"));
  bool called = false;
  text = SignBundle(R"({"version": 3, "kms_identity": "kms.example.org", "http": {}})",
                    [&](ByteSpan) -> Result<Bytes> {
                      called = true;
                      return Bytes(64, 1);
                    },
                    {Pki().signer.der});
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(text.error().message(), StartsWith("payload: http: "));
  EXPECT_FALSE(called) << "a bad payload must be refused before anything is signed";
}

TEST(BundleTest, SignBundleRefusesAKeyThatDoesNotMatchTheCertificate) {
  const Key other = Key::FromSeed("bundle_test/other");
  auto text = SignBundle(kPayload, RawSigner(other), {Pki().signer.der});
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(text.error().message(), HasSubstr("does not verify with the public key of certificates[0]"));
}

TEST(BundleTest, SignBundleRefusesUnusableCertificates) {
  auto refusal = [](std::vector<Bytes> chain) {
    auto text = SignBundle(kPayload, RawSigner(Pki().signer_key), std::move(chain));
    EXPECT_FALSE(text.ok());
    return text.ok() ? std::string() : text.error().message();
  };
  EXPECT_THAT(refusal({}), StartsWith("certificates: the signer's certificate is required"));
  EXPECT_THAT(refusal({Pki().root.der}), StartsWith("certificates[0]: key usage lacks digitalSignature"));
  EXPECT_THAT(refusal(std::vector<Bytes>(5, Pki().signer.der)), StartsWith("certificates: 5 certificates; at most 4"));
  const ChainPki chain;
  EXPECT_THAT(refusal({chain.signer.der, Pki().signer.der}), StartsWith("certificates[1]: not a CA certificate"));
  EXPECT_THAT(refusal({chain.signer.der, Pki().root.der}), StartsWith("certificates[1]: is not the issuer of"));
  EXPECT_THAT(refusal({Bytes{1, 2, 3}}), StartsWith("certificates[0]: not a DER X.509 certificate"));
}

TEST(BundleTest, SignBundleReportsSignerFailures) {
  auto text = SignBundle(kPayload, [](ByteSpan) -> Result<Bytes> { return Unavailable("token gone"); },
                         {Pki().signer.der});
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().code(), StatusCode::kUnavailable);
  EXPECT_THAT(text.error().message(), HasSubstr("token gone"));
  text = SignBundle(kPayload, [](ByteSpan) -> Result<Bytes> { return Bytes(63, 1); }, {Pki().signer.der});
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(text.error().message(), HasSubstr("is 64 bytes, got 63"));
}

// ---- helpers ------------------------------------------------------------------------------------

TEST(BundleTest, EcdsaRawToDer) {
  Bytes raw(64, 0);
  raw[31] = 0x01;  // r = 1
  raw[32] = 0x80;  // s has its top bit set: a 0x00 pad byte
  raw[63] = 0x02;
  auto der = EcdsaRawToDer(raw);
  ASSERT_TRUE(der.ok());
  // Written out byte for byte (growing a vector from a short initialiser
  // list makes g++ 12 -O3 report a false -Warray-bounds).
  const Bytes expected = {
      0x30, 0x26,              // SEQUENCE, 38 bytes
      0x02, 0x01, 0x01,        // INTEGER r = 1
      0x02, 0x21, 0x00, 0x80,  // INTEGER s, 33 bytes: a 0x00 pad, then 0x80 00 .. 00 02
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x02};
  ASSERT_EQ(expected.size(), 40u);
  EXPECT_EQ(*der, expected);
  // Round trip through the strict DER reader of the envelope.
  Bundle bundle = *ParseBundle(Pki().SignedBundle(kPayload));
  bundle.signature = *der;
  auto parsed = ParseBundle(SerializeBundle(bundle));
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();

  EXPECT_FALSE(EcdsaRawToDer(Bytes(63, 1)).ok());
  EXPECT_FALSE(EcdsaRawToDer(Bytes(65, 1)).ok());
  EXPECT_THAT(EcdsaRawToDer(Bytes(64, 0)).error().message(), HasSubstr("r is not in 1..n-1"));
  Bytes s_zero(64, 0);
  s_zero[0] = 1;
  EXPECT_THAT(EcdsaRawToDer(s_zero).error().message(), HasSubstr("s is not in 1..n-1"));
  EXPECT_THAT(EcdsaRawToDer(Bytes(64, 0xff)).error().message(), HasSubstr("r is not in 1..n-1"));
  // Signatures made by the test key always convert and verify.
  for (int i = 0; i < 8; ++i) {
    const auto digest = BundleMessageDigest(std::to_string(i));
    EXPECT_TRUE(EcdsaRawToDer(Pki().signer_key.SignDigestRaw(digest)).ok());
  }
}

TEST(BundleTest, TestPkiIsDeterministicForASeed) {
  const TestPki a("determinism");
  const TestPki b("determinism");
  EXPECT_EQ(a.root.der, b.root.der);
  EXPECT_EQ(a.signer.der, b.signer.der);
  EXPECT_EQ(a.SignedBundle(kPayload), b.SignedBundle(kPayload));
  const TestPki random_a;
  const TestPki random_b;
  EXPECT_NE(random_a.root.der, random_b.root.der);
  EXPECT_THAT(a.signer_key.PrivateKeyPem(), StartsWith("-----BEGIN EC PRIVATE KEY-----\n"));
  EXPECT_EQ(a.signer_key.PublicPoint().size(), 65u);
  EXPECT_EQ(Key::FromSeed("p384", test_pki::Curve::kP384).PublicPoint().size(), 97u);
}

// ---- fuzz seeds --------------------------------------------------------------------------------

// Writes the seeds of tests/provisioning/corpus/provisioning_bundle_fuzz/ (each named by the
// first 20 bytes of its SHA-256, in hex) into $TKMS_WRITE_BUNDLE_SEEDS: bundles for the fixed PKI of bundle_fuzz.cpp
// (TestPki("provisioning_bundle_fuzz")), valid and refused ones.
TEST(BundleSeeds, Write) {
  const char* dir = std::getenv("TKMS_WRITE_BUNDLE_SEEDS");
  if (dir == nullptr || *dir == '\0') GTEST_SKIP() << "set TKMS_WRITE_BUNDLE_SEEDS=DIR to write the fuzz seeds";
  const TestPki pki("provisioning_bundle_fuzz");
  const Key inter_key = Key::FromSeed("provisioning_bundle_fuzz/intermediate");
  const CertSpec inter_spec = test_pki::CaSpec("CN=tkms fuzz intermediate CA");
  const Cert inter = test_pki::IssueCert(inter_spec, inter_key, TestPki::kRootSubject, pki.root_key);
  const Cert chained =
      test_pki::IssueCert(test_pki::SignerSpec("CN=tkms fuzz chained signer"), pki.signer_key, inter_spec.subject, inter_key);
  CertSpec expired_spec = test_pki::SignerSpec(TestPki::kSignerSubject);
  expired_spec.not_after = "20250101000000";
  const Cert expired = test_pki::IssueCert(expired_spec, pki.signer_key, TestPki::kRootSubject, pki.root_key);
  const std::string example = ReadFile(SourceDir() + "/docs/examples/bundle-payload.json");

  std::vector<std::string> seeds = {
      pki.SignedBundle(kPayload),
      pki.SignedBundle(example),
      test_pki::MakeBundle(kPayload, pki.signer_key, {chained.der, inter.der}),
      test_pki::MakeBundle(kPayload, pki.signer_key, {expired.der}),
      test_pki::MakeBundle(kPayload, Key::FromSeed("provisioning_bundle_fuzz/other"), {pki.signer.der}),
      pki.SignedBundle(R"({"version": 3, "kms_identity": "kms.example.org", "token": {"pin_file": "p"}})"),
      pki.SignedBundle(R"({"version": 3, "kms_identity": "kms.example.org", "users": [{"identities": ["sip:a@x"], "policy_class": "gold"}]})"),
      R"({"format": "tkms-bundle/1", "payload": "e30=", "signature": "MAYCAQECAQE=", "certificates": ["MAA="]})",
      R"({"format": "tkms-bundle/2"})",
      "[]",
  };
  Json compact = Json::parse(pki.SignedBundle(kPayload));
  seeds.push_back(compact.dump());
  for (const std::string& seed : seeds) {
    const auto digest = BundleFileDigest(seed);
    const std::string name = HexEncode(ByteSpan(digest.data(), 20));
    std::ofstream out(std::filesystem::path(dir) / name, std::ios::binary);
    out << seed;
    ASSERT_TRUE(out.good()) << name;
  }
  // The valid ones really are valid at the fuzz target's time.
  EXPECT_TRUE(VerifyBundle(seeds[0], pki.root.der, Utc(2030, 1, 1)).ok());
  EXPECT_TRUE(VerifyBundle(seeds[1], pki.root.der, Utc(2030, 1, 1)).ok());
  EXPECT_TRUE(VerifyBundle(seeds[2], pki.root.der, Utc(2030, 1, 1)).ok());
}

}  // namespace
}  // namespace tkms::provisioning
