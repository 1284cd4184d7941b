// The envelope of signed bundles (bundle.h, docs/bundles.md "The file" and
// "The signed message"): reading it with the bounded JSON reader, writing its
// canonical form, the strict DER form of ECDSA signatures, and digests.
#include <algorithm>
#include <array>
#include <span>
#include <utility>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "firmware/json/bounded_json.h"
#include "firmware/pki/contexts.h"
#include "provisioning/bundle_internal.h"

namespace tkms::provisioning {
namespace internal {

std::string IndexName(std::string_view member, size_t index) {
  return std::string(member) + "[" + std::to_string(index) + "]";
}

Status InvalidField(std::string_view field, std::string_view problem) {
  return InvalidArgument(std::string(field) + ": " + std::string(problem));
}

Status DeniedField(std::string_view field, std::string_view problem) {
  return PermissionDenied(std::string(field) + ": " + std::string(problem));
}

}  // namespace internal

namespace {

using internal::IndexName;
using internal::InvalidField;
using Json = nlohmann::json;

// The order n of the P-256 group (SEC 2 §2.4.2), big-endian.
constexpr std::array<uint8_t, 32> kP256Order = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

// The envelope is one object of four members, nothing nested deeper than
// the list of certificates (depth 2, at most 1 + 3 + 1 + kMaxBundleCertificates
// values), and no string longer than the base64 of the largest payload. The
// reader lets a little more through (16 levels, 64 values: still a tiny
// tree) so that CheckEnvelopeShape can say what is wrong with a document
// that is not an envelope ("$: unknown member 'kms_identity'" for a
// configuration posted by mistake, "certificates[0]: expected a base64
// string, got an array").
constexpr size_t kMaxPayloadBase64Bytes = (kMaxConfigBytes + 2) / 3 * 4;
constexpr json::Limits kEnvelopeLimits{kMaxBundleBytes, 16, 64, kMaxPayloadBase64Bytes};

constexpr std::array<const char*, 4> kMembers = {"format", "payload", "signature", "certificates"};


// A JSON path of the document itself ("", "$[0]") or inside one of the four
// members ("certificates[2]", "format.x").
bool IsMemberPath(std::string_view path) {
  if (path.empty() || path.front() == '$') return true;
  for (const std::string_view member : kMembers) {
    if (path.substr(0, member.size()) != member) continue;
    if (path.size() == member.size() || path[member.size()] == '[' || path[member.size()] == '.') return true;
  }
  return false;
}

// The document is an object with exactly the four members, of the right
// JSON types (their contents are checked by the caller).
Status CheckEnvelopeShape(const Json& doc) {
  if (!doc.is_object()) return InvalidArgument(std::string("$: expected a JSON object, got ") + json::TypeName(doc));
  for (const auto& [key, value] : doc.items()) {
    if (std::find(kMembers.begin(), kMembers.end(), key) == kMembers.end()) {
      return InvalidArgument("$: unknown member " + Quote(key) + " (expected format, payload, signature, certificates)");
    }
  }
  for (const char* member : kMembers) {
    if (!doc.contains(member)) return InvalidField(member, "required member is missing");
  }
  if (!doc["format"].is_string()) return InvalidField("format", std::string("expected a string, got ") + json::TypeName(doc["format"]));
  for (const char* member : {"payload", "signature"}) {
    if (!doc[member].is_string()) {
      return InvalidField(member, std::string("expected a base64 string, got ") + json::TypeName(doc[member]));
    }
  }
  const Json& certificates = doc["certificates"];
  if (!certificates.is_array()) {
    return InvalidField("certificates", std::string("expected an array of base64 strings, got ") + json::TypeName(certificates));
  }
  if (certificates.size() > kMaxBundleCertificates) {
    return InvalidField("certificates", "more than " + std::to_string(kMaxBundleCertificates) +
                                            " certificates (the signer's and at most " +
                                            std::to_string(kMaxBundleCertificates - 1) + " intermediates)");
  }
  for (size_t i = 0; i < certificates.size(); ++i) {
    if (!certificates[i].is_string()) {
      return InvalidField(IndexName("certificates", i),
                          std::string("expected a base64 string, got ") + json::TypeName(certificates[i]));
    }
  }
  return Status::Ok();
}

// Strict base64 of a member, at most `max` decoded bytes (checked on the
// text length first, before anything is decoded).
Result<Bytes> DecodeMember(std::string_view field, std::string_view text, size_t max) {
  if (text.empty()) return InvalidField(field, "is empty");
  if (text.size() / 4 * 3 > max + 2) {
    return InvalidField(field, "holds more than " + std::to_string(max) + " bytes");
  }
  auto bytes = Base64Decode(text);
  if (!bytes) return InvalidField(field, "is not base64 (RFC 4648 alphabet, with padding, no whitespace)");
  if (bytes->size() > max) {
    return InvalidField(field, "holds " + std::to_string(bytes->size()) + " bytes; at most " + std::to_string(max));
  }
  return std::move(*bytes);
}

// ---- ECDSA signatures in DER -------------------------------------------------------

bool IsZero(std::span<const uint8_t> value) {
  return std::all_of(value.begin(), value.end(), [](uint8_t b) { return b == 0; });
}

// True if the 32-byte big-endian `value` is below the order of P-256.
bool BelowP256Order(std::span<const uint8_t, 32> value) {
  return std::lexicographical_compare(value.begin(), value.end(), kP256Order.begin(), kP256Order.end());
}

// One DER INTEGER (X.690 §8.3, §10.1: short-form length, minimal content)
// holding a value in 1..n-1 of P-256, written right-aligned into `out`.
Status ReadScalar(ByteReader& reader, const char* name, std::span<uint8_t, 32> out) {
  const std::string what = std::string("not a DER ECDSA-Sig-Value: ") + name;
  uint8_t tag = 0;
  uint8_t length = 0;
  ByteSpan content;
  if (!reader.ReadU8(tag) || tag != 0x02) return InvalidField("signature", what + " is not an INTEGER");
  if (!reader.ReadU8(length) || length == 0 || length > 33 || !reader.ReadBytes(length, content)) {
    return InvalidField("signature", what + " has a bad length");
  }
  if ((content[0] & 0x80) != 0) return InvalidField("signature", what + " is negative");
  if (content.size() > 1 && content[0] == 0 && (content[1] & 0x80) == 0) {
    return InvalidField("signature", what + " is not minimally encoded");
  }
  if (content[0] == 0 && content.size() > 1) content = content.subspan(1);
  if (content.size() > 32) return InvalidField("signature", what + " is longer than 32 bytes");
  std::fill(out.begin(), out.end(), uint8_t{0});
  std::copy(content.begin(), content.end(), out.end() - static_cast<std::ptrdiff_t>(content.size()));
  if (IsZero(out) || !BelowP256Order(out)) return InvalidField("signature", what + " is not in 1..n-1 of P-256");
  return Status::Ok();
}

// The 64-byte r || s of a strict DER ECDSA-Sig-Value (RFC 3279 §2.2.3).
Result<std::array<uint8_t, 64>> ParseDerSignature(ByteSpan der) {
  ByteReader reader(der);
  uint8_t tag = 0;
  uint8_t length = 0;
  if (!reader.ReadU8(tag) || tag != 0x30) return InvalidField("signature", "not a DER ECDSA-Sig-Value: no SEQUENCE");
  if (!reader.ReadU8(length) || length >= 0x80 || length != reader.remaining()) {
    return InvalidField("signature", "not a DER ECDSA-Sig-Value: the SEQUENCE length is not the rest of the signature");
  }
  std::array<uint8_t, 64> rs{};
  TKMS_RETURN_IF_ERROR(ReadScalar(reader, "r", std::span<uint8_t, 32>(rs.data(), 32)));
  TKMS_RETURN_IF_ERROR(ReadScalar(reader, "s", std::span<uint8_t, 32>(rs.data() + 32, 32)));
  if (!reader.empty()) return InvalidField("signature", "not a DER ECDSA-Sig-Value: bytes after s");
  return rs;
}

void AppendDerInteger(Bytes& out, std::span<const uint8_t> value) {
  size_t start = 0;
  while (start + 1 < value.size() && value[start] == 0) ++start;
  const bool pad = (value[start] & 0x80) != 0;
  out.push_back(0x02);
  out.push_back(static_cast<uint8_t>(value.size() - start + (pad ? 1 : 0)));
  if (pad) out.push_back(0x00);
  out.insert(out.end(), value.begin() + static_cast<std::ptrdiff_t>(start), value.end());
}

}  // namespace

namespace internal {

Result<Bundle> ParseEnvelope(std::string_view text) {
  if (text.size() > kMaxBundleBytes) {
    return InvalidArgument("$: the bundle is " + std::to_string(text.size()) + " bytes; at most " +
                           std::to_string(kMaxBundleBytes) + " (kMaxBundleBytes)");
  }
  auto doc = json::Parse(text, kEnvelopeLimits);
  if (!doc.ok()) {
    json::ParseError error = doc.error();
    if (error.kind == json::ErrorKind::kOutOfMemory) return ResourceExhausted("$: out of memory");
    // Inside a member the JSON path names it ("certificates[0]: ..."); a
    // problem inside a member the envelope does not have names the
    // document, and the byte offset says where.
    if (!IsMemberPath(error.path)) error.path.clear();
    return InvalidArgument(error.ToString());
  }
  TKMS_RETURN_IF_ERROR(CheckEnvelopeShape(*doc));
  const std::string& format = (*doc)["format"].get_ref<const std::string&>();
  if (format != kBundleFormat) {
    return InvalidField("format", "unsupported format " + Quote(format) + " (expected '" + std::string(kBundleFormat) + "')");
  }
  Bundle bundle;
  auto payload = DecodeMember("payload", (*doc)["payload"].get_ref<const std::string&>(), kMaxConfigBytes);
  if (!payload.ok()) return payload.error();
  bundle.payload.assign(payload->begin(), payload->end());
  auto signature = DecodeMember("signature", (*doc)["signature"].get_ref<const std::string&>(), kMaxEcdsaP256DerBytes);
  if (!signature.ok()) return signature.error();
  if (auto rs = ParseDerSignature(*signature); !rs.ok()) return rs.error();
  bundle.signature = std::move(*signature);
  const Json& certificates = (*doc)["certificates"];
  if (certificates.empty()) return InvalidField("certificates", "must hold the signer's certificate");
  for (size_t i = 0; i < certificates.size(); ++i) {
    auto der = DecodeMember(IndexName("certificates", i), certificates[i].get_ref<const std::string&>(),
                            kMaxCertificateDerBytes);
    if (!der.ok()) return der.error();
    bundle.certificates.push_back(std::move(*der));
  }
  return bundle;
}

}  // namespace internal

Result<Bundle> ParseBundle(std::string_view text) {
  return internal::Guard<Bundle>("bundle", [&] { return internal::ParseEnvelope(text); });
}

std::string SerializeBundle(const Bundle& bundle) {
  const ByteSpan payload(reinterpret_cast<const uint8_t*>(bundle.payload.data()), bundle.payload.size());
  std::string out = "{\n  \"format\": \"";
  out += kBundleFormat;
  out += "\",\n  \"payload\": \"";
  out += Base64Encode(payload);
  out += "\",\n  \"signature\": \"";
  out += Base64Encode(bundle.signature);
  out += "\",\n  \"certificates\": [";
  for (size_t i = 0; i < bundle.certificates.size(); ++i) {
    out += i == 0 ? "\n    \"" : ",\n    \"";
    out += Base64Encode(bundle.certificates[i]);
    out += '"';
  }
  out += "\n  ]\n}\n";
  return out;
}

std::array<uint8_t, 32> BundleMessageDigest(std::string_view payload) {
  pki::Sha256 sha;
  sha.Update(kBundleSignatureContext);
  sha.Update(std::string_view("\0", 1));
  sha.Update(payload);
  return sha.Finish();
}

std::array<uint8_t, 32> BundleFileDigest(std::string_view bundle_text) {
  pki::Sha256 sha;
  sha.Update(bundle_text);
  return sha.Finish();
}

Result<Bytes> EcdsaRawToDer(ByteSpan raw_rs) {
  if (raw_rs.size() != 64) {
    return InvalidArgument("an ECDSA P-256 signature r || s is 64 bytes, got " + std::to_string(raw_rs.size()));
  }
  const auto r = raw_rs.subspan<0, 32>();
  const auto s = raw_rs.subspan<32, 32>();
  if (IsZero(r) || !BelowP256Order(r)) return InvalidArgument("ECDSA r is not in 1..n-1 of P-256");
  if (IsZero(s) || !BelowP256Order(s)) return InvalidArgument("ECDSA s is not in 1..n-1 of P-256");
  return internal::Guard<Bytes>("signature", [&]() -> Result<Bytes> {
    Bytes body;
    AppendDerInteger(body, r);
    AppendDerInteger(body, s);
    Bytes der = {0x30, static_cast<uint8_t>(body.size())};
    der.insert(der.end(), body.begin(), body.end());
    return der;
  });
}

}  // namespace tkms::provisioning
