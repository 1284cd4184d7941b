// Signed configuration bundles: see bundle.h and docs/bundles.md.
//
// Layout: messages; the envelope reader (a SAX handler for nlohmann's
// iterative parser that accepts exactly the four members and keeps no tree);
// strict DER for ECDSA signatures; digests; RAII wrappers of the mbedTLS
// objects; certificate facts; then the public functions. mbedTLS is C: every
// object is freed by its wrapper's destructor, the verify callback neither
// allocates nor throws, and every public function catches allocation
// failure.
#include "provisioning/bundle.h"
#include "provisioning/messages.h"
#include "firmware/base/file_reader.h"

#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <new>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"

namespace tkms::provisioning {
namespace {

using Json = nlohmann::json;
using internal::AppendEscaped;
using internal::DescribeParseError;
using internal::kMaxDetailBytes;
using internal::kMaxQuotedBytes;
using internal::Escaped;
using internal::Quote;

constexpr size_t kMaxCertificateFileBytes = 256 * 1024;  // ReadPemOrDerCertificate
constexpr size_t kMaxChainRecords = 16;       // > MBEDTLS_X509_MAX_INTERMEDIATE_CA + 2

// The order n of the P-256 group (SEC 2 §2.4.2), big-endian.
constexpr std::array<uint8_t, 32> kP256Order = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

// ---- messages ------------------------------------------------------------------




std::string IndexName(std::string_view member, size_t index) {
  return std::string(member) + "[" + std::to_string(index) + "]";
}

Status Invalid(std::string_view field, std::string_view problem) {
  return InvalidArgument(std::string(field) + ": " + std::string(problem));
}

Status Denied(std::string_view field, std::string_view problem) {
  return PermissionDenied(std::string(field) + ": " + std::string(problem));
}

// "mbedTLS -0x2180 (X509 - ...)": mbedTLS's own text for an error code.
std::string MbedError(int code) {
  char number[24];
  std::snprintf(number, sizeof(number), "-0x%04x", static_cast<unsigned>(-code));
  return std::string("mbedTLS ") + number + " (" + internal::MbedtlsErrorText(code) + ")";
}


// ---- the envelope reader ---------------------------------------------------------

enum Member : size_t { kFormat = 0, kPayload, kSignature, kCertificates, kMemberCount };
constexpr std::array<std::string_view, kMemberCount> kMemberNames = {"format", "payload", "signature",
                                                                     "certificates"};

// Accepts exactly {"format": s, "payload": s, "signature": s,
// "certificates": [s, ...]} (any member order; each at most once), and stops
// the parser at the first deviation with a message naming the member. Keeps
// the four strings and the list, never a JSON tree; depth is at most 2.
class EnvelopeReader {
 public:
  using number_integer_t = Json::number_integer_t;
  using number_unsigned_t = Json::number_unsigned_t;
  using number_float_t = Json::number_float_t;
  using string_t = Json::string_t;
  using binary_t = Json::binary_t;

  explicit EnvelopeReader(std::string_view text) : text_(text) {}

  bool null() { return Unexpected("null"); }
  bool boolean(bool /*value*/) { return Unexpected("a boolean"); }
  bool number_integer(number_integer_t /*value*/) { return Unexpected("a number"); }
  bool number_unsigned(number_unsigned_t /*value*/) { return Unexpected("a number"); }
  bool number_float(number_float_t /*value*/, const string_t& /*text*/) { return Unexpected("a number"); }
  bool binary(binary_t& /*value*/) { return Unexpected("a binary value"); }

  bool string(string_t& value) {
    if (level_ == Level::kCertificates) {
      if (certificates_.size() >= kMaxBundleCertificates) {
        return Fail(Invalid("certificates", "more than " + std::to_string(kMaxBundleCertificates) +
                                                " certificates (the signer's and at most " +
                                                std::to_string(kMaxBundleCertificates - 1) + " intermediates)"));
      }
      certificates_.push_back(std::move(value));
      return true;
    }
    if (level_ == Level::kRoot && member_ != kCertificates) {
      strings_[member_] = std::move(value);
      return true;
    }
    return Unexpected("a string");
  }

  bool start_object(size_t /*elements*/) {
    if (level_ != Level::kTop) return Unexpected("an object");
    level_ = Level::kRoot;
    return true;
  }

  bool end_object() {
    level_ = Level::kDone;
    return true;
  }

  bool start_array(size_t /*elements*/) {
    if (level_ == Level::kRoot && member_ == kCertificates) {
      level_ = Level::kCertificates;
      return true;
    }
    return Unexpected("an array");
  }

  bool end_array() {
    level_ = Level::kRoot;
    return true;
  }

  bool key(string_t& name) {
    for (size_t m = 0; m < kMemberCount; ++m) {
      if (name != kMemberNames[m]) continue;
      if (seen_[m]) return Fail(Invalid(kMemberNames[m], "duplicate member"));
      seen_[m] = true;
      member_ = static_cast<Member>(m);
      return true;
    }
    return Fail(InvalidArgument("$: unknown member " + Quote(name) +
                                " (expected format, payload, signature, certificates)"));
  }

  bool parse_error(size_t position, const std::string& /*last_token*/, const Json::exception& exception) {
    // `position` counts the bytes read, the offending one included.
    size_t offset = position == 0 ? 0 : position - 1;
    if (offset > text_.size()) offset = text_.size();
    return Fail(InvalidArgument("$: JSON syntax error at byte offset " + std::to_string(offset) + ": " +
                                DescribeParseError(exception.what())));
  }

  const Status& error() const { return error_; }
  bool seen(Member m) const { return seen_[m]; }
  const std::string& value(Member m) const { return strings_[m]; }
  const std::vector<std::string>& certificates() const { return certificates_; }

 private:
  enum class Level : uint8_t { kTop, kRoot, kCertificates, kDone };

  bool Fail(Status status) {
    error_ = std::move(status);
    return false;
  }

  // A value of the wrong kind where the current position wants another.
  bool Unexpected(const char* got) {
    switch (level_) {
      case Level::kTop:
      case Level::kDone: return Fail(InvalidArgument(std::string("$: expected a JSON object, got ") + got));
      case Level::kRoot:
        return Fail(Invalid(kMemberNames[member_],
                            std::string(member_ == kCertificates ? "expected an array of base64 strings"
                                                                 : "expected a base64 string") +
                                ", got " + got));
      case Level::kCertificates:
        return Fail(Invalid(IndexName("certificates", certificates_.size()),
                            std::string("expected a base64 string, got ") + got));
    }
    return Fail(InvalidArgument("$: unexpected JSON value"));
  }

  std::string_view text_;
  Level level_ = Level::kTop;
  Member member_ = kFormat;
  std::array<bool, kMemberCount> seen_{};
  std::array<std::string, kMemberCount> strings_;
  std::vector<std::string> certificates_;
  Status error_;
};

// Strict base64 of a member, at most `max` decoded bytes (checked on the
// text length first, before anything is decoded).
Result<Bytes> DecodeMember(std::string_view field, std::string_view text, size_t max) {
  if (text.empty()) return Invalid(field, "is empty");
  if (text.size() / 4 * 3 > max + 2) {
    return Invalid(field, "holds more than " + std::to_string(max) + " bytes");
  }
  auto bytes = Base64Decode(text);
  if (!bytes) return Invalid(field, "is not base64 (RFC 4648 alphabet, with padding, no whitespace)");
  if (bytes->size() > max) {
    return Invalid(field, "holds " + std::to_string(bytes->size()) + " bytes; at most " + std::to_string(max));
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
  if (!reader.ReadU8(tag) || tag != 0x02) return Invalid("signature", what + " is not an INTEGER");
  if (!reader.ReadU8(length) || length == 0 || length > 33 || !reader.ReadBytes(length, content)) {
    return Invalid("signature", what + " has a bad length");
  }
  if ((content[0] & 0x80) != 0) return Invalid("signature", what + " is negative");
  if (content.size() > 1 && content[0] == 0 && (content[1] & 0x80) == 0) {
    return Invalid("signature", what + " is not minimally encoded");
  }
  if (content[0] == 0 && content.size() > 1) content = content.subspan(1);
  if (content.size() > 32) return Invalid("signature", what + " is longer than 32 bytes");
  std::fill(out.begin(), out.end(), uint8_t{0});
  std::copy(content.begin(), content.end(), out.end() - static_cast<std::ptrdiff_t>(content.size()));
  if (IsZero(out) || !BelowP256Order(out)) return Invalid("signature", what + " is not in 1..n-1 of P-256");
  return Status::Ok();
}

// The 64-byte r || s of a strict DER ECDSA-Sig-Value (RFC 3279 §2.2.3).
Result<std::array<uint8_t, 64>> ParseDerSignature(ByteSpan der) {
  ByteReader reader(der);
  uint8_t tag = 0;
  uint8_t length = 0;
  if (!reader.ReadU8(tag) || tag != 0x30) return Invalid("signature", "not a DER ECDSA-Sig-Value: no SEQUENCE");
  if (!reader.ReadU8(length) || length >= 0x80 || length != reader.remaining()) {
    return Invalid("signature", "not a DER ECDSA-Sig-Value: the SEQUENCE length is not the rest of the signature");
  }
  std::array<uint8_t, 64> rs{};
  TKMS_RETURN_IF_ERROR(ReadScalar(reader, "r", std::span<uint8_t, 32>(rs.data(), 32)));
  TKMS_RETURN_IF_ERROR(ReadScalar(reader, "s", std::span<uint8_t, 32>(rs.data() + 32, 32)));
  if (!reader.empty()) return Invalid("signature", "not a DER ECDSA-Sig-Value: bytes after s");
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

// ---- digests -----------------------------------------------------------------------

class Sha256 {
 public:
  Sha256() {
    mbedtls_sha256_init(&ctx_);
    ok_ = mbedtls_sha256_starts_ret(&ctx_, /*is224=*/0) == 0;
  }
  ~Sha256() { mbedtls_sha256_free(&ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data) {
    ok_ = ok_ && mbedtls_sha256_update_ret(&ctx_, reinterpret_cast<const unsigned char*>(data.data()),
                                           data.size()) == 0;
  }
  std::array<uint8_t, 32> Finish() {
    std::array<uint8_t, 32> digest{};
    ok_ = ok_ && mbedtls_sha256_finish_ret(&ctx_, digest.data()) == 0;
    // Software SHA-256 cannot fail; a failing (hardware) implementation gives
    // a digest no signature verifies against.
    if (!ok_) digest.fill(0);
    return digest;
  }

 private:
  mbedtls_sha256_context ctx_;
  bool ok_ = false;
};

// ---- mbedTLS objects -----------------------------------------------------------------

// A certificate list (mbedtls_x509_crt is a linked list; the head is the
// first certificate parsed into it).
class CertificateList {
 public:
  CertificateList() { mbedtls_x509_crt_init(&head_); }
  ~CertificateList() { mbedtls_x509_crt_free(&head_); }
  CertificateList(const CertificateList&) = delete;
  CertificateList& operator=(const CertificateList&) = delete;

  // Appends one DER certificate; `field` names it in errors. The DER must
  // be exactly one certificate (mbedTLS ignores bytes after it; we do not).
  Status Add(ByteSpan der, std::string_view field) {
    if (der.empty()) return Invalid(field, "is empty");
    if (der.size() > kMaxCertificateDerBytes) {
      return Invalid(field, "holds " + std::to_string(der.size()) + " bytes; at most " +
                                std::to_string(kMaxCertificateDerBytes));
    }
    const int ret = mbedtls_x509_crt_parse_der(&head_, der.data(), der.size());
    if (ret != 0) return Invalid(field, "not a DER X.509 certificate: " + MbedError(ret));
    mbedtls_x509_crt* added = Last();
    if (added->raw.len != der.size()) {
      return Invalid(field, std::to_string(der.size() - added->raw.len) + " bytes after the DER certificate");
    }
    ++count_;
    return Status::Ok();
  }

  size_t size() const { return count_; }
  mbedtls_x509_crt* head() { return &head_; }
  mbedtls_x509_crt* at(size_t index) {
    mbedtls_x509_crt* crt = &head_;
    for (size_t i = 0; i < index && crt != nullptr; ++i) crt = crt->next;
    return crt;
  }

 private:
  mbedtls_x509_crt* Last() {
    mbedtls_x509_crt* crt = &head_;
    while (crt->next != nullptr) crt = crt->next;
    return crt;
  }

  mbedtls_x509_crt head_;
  size_t count_ = 0;
};

class PkContext {
 public:
  PkContext() { mbedtls_pk_init(&pk_); }
  ~PkContext() { mbedtls_pk_free(&pk_); }
  PkContext(const PkContext&) = delete;
  PkContext& operator=(const PkContext&) = delete;
  mbedtls_pk_context* get() { return &pk_; }

 private:
  mbedtls_pk_context pk_;
};

class PemContext {
 public:
  PemContext() { mbedtls_pem_init(&pem_); }
  ~PemContext() { mbedtls_pem_free(&pem_); }
  PemContext(const PemContext&) = delete;
  PemContext& operator=(const PemContext&) = delete;
  mbedtls_pem_context* get() { return &pem_; }

 private:
  mbedtls_pem_context pem_;
};

// ---- certificate facts -----------------------------------------------------------------

// Seconds since the epoch of a proleptic Gregorian UTC date and time
// (days_from_civil, H. Hinnant), without the C library's time zone.
std::time_t ToTimeT(const mbedtls_x509_time& t) {
  const int64_t year = static_cast<int64_t>(t.year) - (t.mon <= 2 ? 1 : 0);
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t month = t.mon;
  const int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + t.day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  const int64_t days = era * 146097 + day_of_era - 719468;
  return static_cast<std::time_t>(days * 86400 + int64_t{t.hour} * 3600 + int64_t{t.min} * 60 + t.sec);
}

std::string DistinguishedName(const mbedtls_x509_name& name) {
  char text[1024] = {};
  const int n = mbedtls_x509_dn_gets(text, sizeof(text), &name);
  if (n < 0) return "(name longer than 1023 characters)";
  return Escaped(std::string_view(text, static_cast<size_t>(n)));
}

bool HasKeyUsageExtension(const mbedtls_x509_crt& crt) { return (crt.ext_types & MBEDTLS_X509_EXT_KEY_USAGE) != 0; }

bool IsCa(const mbedtls_x509_crt& crt) {
  return (crt.ext_types & MBEDTLS_X509_EXT_BASIC_CONSTRAINTS) != 0 && crt.ca_istrue != 0;
}

std::optional<mbedtls_ecp_group_id> EcCurve(const mbedtls_pk_context& pk) {
  const mbedtls_pk_type_t type = mbedtls_pk_get_type(&pk);
  if (type != MBEDTLS_PK_ECKEY && type != MBEDTLS_PK_ECKEY_DH && type != MBEDTLS_PK_ECDSA) return std::nullopt;
  const mbedtls_ecp_keypair* ec = mbedtls_pk_ec(pk);
  if (ec == nullptr) return std::nullopt;
  return ec->grp.id;
}

bool IsEcP256(const mbedtls_pk_context& pk) { return EcCurve(pk) == MBEDTLS_ECP_DP_SECP256R1; }

std::string KeyDescription(const mbedtls_pk_context& pk) {
  if (const auto curve = EcCurve(pk)) {
    switch (*curve) {
      case MBEDTLS_ECP_DP_SECP256R1: return "EC P-256";
      case MBEDTLS_ECP_DP_SECP384R1: return "EC P-384";
      case MBEDTLS_ECP_DP_SECP521R1: return "EC P-521";
      default: break;
    }
    const mbedtls_ecp_curve_info* info = mbedtls_ecp_curve_info_from_grp_id(*curve);
    return std::string("EC ") + (info != nullptr ? info->name : "(unknown curve)");
  }
  if (mbedtls_pk_get_type(&pk) == MBEDTLS_PK_RSA) return "RSA " + std::to_string(mbedtls_pk_get_bitlen(&pk));
  const char* name = mbedtls_pk_get_name(&pk);
  return name != nullptr ? Escaped(name) : "(unknown key type)";
}

std::string KeyUsageText(const mbedtls_x509_crt& crt) {
  if (!HasKeyUsageExtension(crt)) return "(none)";
  static constexpr std::pair<unsigned, const char*> kBits[] = {
      {MBEDTLS_X509_KU_DIGITAL_SIGNATURE, "digitalSignature"}, {MBEDTLS_X509_KU_NON_REPUDIATION, "nonRepudiation"},
      {MBEDTLS_X509_KU_KEY_ENCIPHERMENT, "keyEncipherment"},   {MBEDTLS_X509_KU_DATA_ENCIPHERMENT, "dataEncipherment"},
      {MBEDTLS_X509_KU_KEY_AGREEMENT, "keyAgreement"},         {MBEDTLS_X509_KU_KEY_CERT_SIGN, "keyCertSign"},
      {MBEDTLS_X509_KU_CRL_SIGN, "cRLSign"},                   {MBEDTLS_X509_KU_ENCIPHER_ONLY, "encipherOnly"},
      {MBEDTLS_X509_KU_DECIPHER_ONLY, "decipherOnly"}};
  std::string out;
  for (const auto& [bit, name] : kBits) {
    if ((crt.key_usage & bit) == 0) continue;
    if (!out.empty()) out += ',';
    out += name;
  }
  return out.empty() ? "(empty)" : out;
}

bool HasKeyUsage(const mbedtls_x509_crt& crt, unsigned bit) {
  return HasKeyUsageExtension(crt) && (crt.key_usage & bit) != 0;
}

// ---- chain verification -------------------------------------------------------------------

// Hashes and keys accepted anywhere in the chain: SHA-2 signatures by EC
// keys on the NIST curves, or RSA of at least 2048 bits (for a CA).
constexpr uint32_t IdFlag(int id) { return uint32_t{1} << (id - 1); }
const mbedtls_x509_crt_profile kChainProfile = {
    IdFlag(MBEDTLS_MD_SHA256) | IdFlag(MBEDTLS_MD_SHA384) | IdFlag(MBEDTLS_MD_SHA512),
    IdFlag(MBEDTLS_PK_ECKEY) | IdFlag(MBEDTLS_PK_ECDSA) | IdFlag(MBEDTLS_PK_RSA),
    IdFlag(MBEDTLS_ECP_DP_SECP256R1) | IdFlag(MBEDTLS_ECP_DP_SECP384R1) | IdFlag(MBEDTLS_ECP_DP_SECP521R1),
    2048,
};

constexpr uint32_t kTimeFlags = MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE;

// What the verify callback saw: the chain from the signer (depth 0) up.
struct ChainRecord {
  const mbedtls_x509_crt* crt = nullptr;
  uint32_t flags = 0;
};
struct ChainContext {
  std::time_t now = 0;
  std::array<ChainRecord, kMaxChainRecords> records{};
  size_t depth_count = 0;  // 1 + the deepest depth seen
  bool overflow = false;
};

// Called by mbedtls_x509_crt_verify for every certificate of the chain it
// built, the trusted anchor included: replaces mbedTLS's validity verdict,
// made with the system clock, by one made at ctx->now. No allocation, no
// exception (this runs inside C code).
int VerifyCallback(void* context, mbedtls_x509_crt* crt, int depth, uint32_t* flags) {
  auto* ctx = static_cast<ChainContext*>(context);
  *flags &= ~kTimeFlags;
  if (ctx->now < ToTimeT(crt->valid_from)) *flags |= MBEDTLS_X509_BADCERT_FUTURE;
  if (ctx->now > ToTimeT(crt->valid_to)) *flags |= MBEDTLS_X509_BADCERT_EXPIRED;
  if (depth < 0 || static_cast<size_t>(depth) >= ctx->records.size()) {
    ctx->overflow = true;
    return 0;
  }
  const auto index = static_cast<size_t>(depth);
  ctx->records[index] = ChainRecord{crt, *flags};
  ctx->depth_count = std::max(ctx->depth_count, index + 1);
  return 0;
}

// Checks the chain certificates[0] -> ... -> anchor at `now`.
Status VerifyChain(CertificateList& certificates, CertificateList& anchor, std::time_t now) {
  ChainContext ctx;
  ctx.now = now;
  uint32_t flags = 0;
  const int ret = mbedtls_x509_crt_verify_with_profile(certificates.head(), anchor.head(), nullptr, &kChainProfile,
                                                       nullptr, &flags, VerifyCallback, &ctx);
  if ((ret != 0 && ret != MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) || ctx.overflow || ctx.depth_count == 0) {
    return Denied("certificates", "the chain cannot be verified: " +
                                      (ret != 0 ? MbedError(ret) : std::string("no certificate was checked")));
  }
  auto name = [&](const mbedtls_x509_crt* crt) -> std::string {
    if (crt == anchor.head()) return "anchor";
    for (size_t i = 0; i < certificates.size(); ++i) {
      if (crt == certificates.at(i)) return IndexName("certificates", i);
    }
    return "a certificate of the chain";
  };
  const size_t depths = ctx.depth_count;
  // 1. A certificate whose issuer is neither the anchor nor the next
  //    certificate (or whose issuer's signature on it does not verify).
  for (size_t d = 0; d < depths; ++d) {
    if ((ctx.records[d].flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) != 0) {
      return Denied(name(ctx.records[d].crt), "not issued by the provisioning anchor");
    }
  }
  // 2. The chain mbedTLS built is exactly certificates[0..n-1] then the anchor.
  for (size_t i = 0; i < certificates.size(); ++i) {
    if (i + 1 < depths && ctx.records[i].crt == certificates.at(i)) continue;
    bool used = false;
    for (size_t d = 0; d < depths; ++d) used = used || ctx.records[d].crt == certificates.at(i);
    return Denied(IndexName("certificates", i),
                  used ? "out of order: each certificate must be followed by its issuer"
                       : "not part of the chain from certificates[0] to the anchor (remove it)");
  }
  if (depths != certificates.size() + 1 || ctx.records[depths - 1].crt != anchor.head()) {
    return Denied("certificates", "the chain does not end at the provisioning anchor");
  }
  // 3. Validity at `now`, from the signer up.
  for (size_t d = 0; d < depths; ++d) {
    const mbedtls_x509_crt& crt = *ctx.records[d].crt;
    if ((ctx.records[d].flags & MBEDTLS_X509_BADCERT_EXPIRED) != 0) {
      return Denied(name(&crt), "expired on " + FormatUtcTime(ToTimeT(crt.valid_to)));
    }
    if ((ctx.records[d].flags & MBEDTLS_X509_BADCERT_FUTURE) != 0) {
      return Denied(name(&crt), "not valid before " + FormatUtcTime(ToTimeT(crt.valid_from)));
    }
  }
  // 4. Anything else mbedTLS objected to.
  for (size_t d = 0; d < depths; ++d) {
    const uint32_t f = ctx.records[d].flags;
    if (f == 0) continue;
    const std::string who = name(ctx.records[d].crt);
    if ((f & MBEDTLS_X509_BADCERT_BAD_MD) != 0) {
      return Denied(who, "signed with a hash other than SHA-256, SHA-384 or SHA-512");
    }
    if ((f & MBEDTLS_X509_BADCERT_BAD_PK) != 0) return Denied(who, "signed with a key type other than EC or RSA");
    if ((f & MBEDTLS_X509_BADCERT_BAD_KEY) != 0) {
      return Denied(who, "its key or its issuer's key is too weak (EC P-256/P-384/P-521, RSA >= 2048)");
    }
    char hex[16];
    std::snprintf(hex, sizeof(hex), "0x%x", static_cast<unsigned>(f));
    return Denied(who, std::string("refused by the chain verification (mbedTLS flags ") + hex + ")");
  }
  if (ret != 0) return Denied("certificates", "the chain does not verify: " + MbedError(ret));
  return Status::Ok();
}

// Step 4 of VerifyBundle, also checked by SignBundle.
Status CheckSigner(const mbedtls_x509_crt& signer) {
  if (!HasKeyUsageExtension(signer)) {
    return Denied("certificates[0]", "key usage lacks digitalSignature (no keyUsage extension)");
  }
  if (!HasKeyUsage(signer, MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) {
    return Denied("certificates[0]", "key usage lacks digitalSignature (it has " + KeyUsageText(signer) + ")");
  }
  if (IsCa(signer)) {
    return Denied("certificates[0]", "is a CA certificate; bundles are signed with an end-entity certificate");
  }
  if (!IsEcP256(signer.pk)) return Denied("certificates[0]", "not an EC P-256 key (" + KeyDescription(signer.pk) + ")");
  return Status::Ok();
}

// Intermediates (certificates[1..]) must be CA certificates that may sign
// certificates.
Status CheckIntermediates(CertificateList& certificates) {
  for (size_t i = 1; i < certificates.size(); ++i) {
    const mbedtls_x509_crt& crt = *certificates.at(i);
    const std::string field = IndexName("certificates", i);
    if (!IsCa(crt)) return Invalid(field, "not a CA certificate (an intermediate needs basicConstraints cA)");
    if (HasKeyUsageExtension(crt) && !HasKeyUsage(crt, MBEDTLS_X509_KU_KEY_CERT_SIGN)) {
      return Invalid(field, "key usage lacks keyCertSign (it has " + KeyUsageText(crt) + ")");
    }
  }
  return Status::Ok();
}

// certificates[i + 1] names the issuer of certificates[i] (by its encoded
// name; mbedTLS looks for an intermediate's issuer only after it in the list).
Status CheckChainOrder(CertificateList& certificates) {
  for (size_t i = 0; i + 1 < certificates.size(); ++i) {
    const mbedtls_x509_crt& child = *certificates.at(i);
    const mbedtls_x509_crt& parent = *certificates.at(i + 1);
    if (child.issuer_raw.len != parent.subject_raw.len ||
        !std::equal(child.issuer_raw.p, child.issuer_raw.p + child.issuer_raw.len, parent.subject_raw.p)) {
      return Invalid(IndexName("certificates", i + 1), "is not the issuer of " + IndexName("certificates", i) +
                                                           " (the chain goes from the signer up to the anchor)");
    }
  }
  return Status::Ok();
}

Status ParseCertificates(const std::vector<Bytes>& der, CertificateList& out) {
  for (size_t i = 0; i < der.size(); ++i) TKMS_RETURN_IF_ERROR(out.Add(der[i], IndexName("certificates", i)));
  return Status::Ok();
}

bool SignatureVerifies(mbedtls_x509_crt& signer, const std::array<uint8_t, 32>& digest, ByteSpan der) {
  return mbedtls_pk_verify(&signer.pk, MBEDTLS_MD_SHA256, digest.data(), digest.size(), der.data(), der.size()) == 0;
}

Status AddPayloadPrefix(const Status& status) {
  return Status(status.code(), "payload: " + status.message());
}

Result<Bundle> ParseBundleUnchecked(std::string_view text) {
  if (text.size() > kMaxBundleBytes) {
    return InvalidArgument("$: the bundle is " + std::to_string(text.size()) + " bytes; at most " +
                           std::to_string(kMaxBundleBytes) + " (kMaxBundleBytes)");
  }
  EnvelopeReader reader(text);
  const char* begin = text.data();
  if (!Json::sax_parse(begin, begin + text.size(), &reader, Json::input_format_t::json, /*strict=*/true,
                       /*ignore_comments=*/false)) {
    if (!reader.error().ok()) return reader.error();
    return InvalidArgument("$: the JSON parser stopped without saying why");
  }
  for (size_t m = 0; m < kMemberCount; ++m) {
    if (!reader.seen(static_cast<Member>(m))) return Invalid(kMemberNames[m], "required member is missing");
  }
  if (reader.value(kFormat) != kBundleFormat) {
    return Invalid("format", "unsupported format " + Quote(reader.value(kFormat)) + " (expected '" +
                                 std::string(kBundleFormat) + "')");
  }
  Bundle bundle;
  auto payload = DecodeMember("payload", reader.value(kPayload), kMaxConfigBytes);
  if (!payload.ok()) return payload.error();
  bundle.payload.assign(payload->begin(), payload->end());
  auto signature = DecodeMember("signature", reader.value(kSignature), kMaxEcdsaP256DerBytes);
  if (!signature.ok()) return signature.error();
  if (auto rs = ParseDerSignature(*signature); !rs.ok()) return rs.error();
  bundle.signature = std::move(*signature);
  if (reader.certificates().empty()) return Invalid("certificates", "must hold the signer's certificate");
  for (size_t i = 0; i < reader.certificates().size(); ++i) {
    auto der = DecodeMember(IndexName("certificates", i), reader.certificates()[i], kMaxCertificateDerBytes);
    if (!der.ok()) return der.error();
    bundle.certificates.push_back(std::move(*der));
  }
  return bundle;
}

Result<VerifiedBundle> VerifyBundleUnchecked(std::string_view bundle_text, ByteSpan anchor_der, std::time_t now) {
  auto bundle = ParseBundleUnchecked(bundle_text);
  if (!bundle.ok()) return bundle.error();

  CertificateList anchor;
  TKMS_RETURN_IF_ERROR(anchor.Add(anchor_der, "anchor"));
  if (anchor.head()->version != 3 || !IsCa(*anchor.head())) {
    return Invalid("anchor", "not a CA certificate (X.509 v3 with basicConstraints cA)");
  }
  if (HasKeyUsageExtension(*anchor.head()) && !HasKeyUsage(*anchor.head(), MBEDTLS_X509_KU_KEY_CERT_SIGN)) {
    return Invalid("anchor", "key usage lacks keyCertSign (it has " + KeyUsageText(*anchor.head()) + ")");
  }
  CertificateList certificates;
  TKMS_RETURN_IF_ERROR(ParseCertificates(bundle->certificates, certificates));
  TKMS_RETURN_IF_ERROR(CheckIntermediates(certificates));
  TKMS_RETURN_IF_ERROR(CheckChainOrder(certificates));
  TKMS_RETURN_IF_ERROR(VerifyChain(certificates, anchor, now));

  mbedtls_x509_crt& signer = *certificates.head();
  TKMS_RETURN_IF_ERROR(CheckSigner(signer));
  if (!SignatureVerifies(signer, BundleMessageDigest(bundle->payload), bundle->signature)) {
    return Denied("signature", "does not verify with the key of certificates[0] (another signer, or the payload "
                               "or the signature was changed)");
  }

  auto config = ParseConfig(bundle->payload, ConfigRole::kBundle);
  if (!config.ok()) return AddPayloadPrefix(config.error());
  if (Status dates = CheckCertificateDates(*config, now); !dates.ok()) return AddPayloadPrefix(dates);

  VerifiedBundle verified;
  verified.version = config->version;
  verified.config = std::move(*config);
  verified.signer.subject = DistinguishedName(signer.subject);
  verified.signer.issuer = DistinguishedName(signer.issuer);
  verified.signer.serial_hex = HexEncode(ByteSpan(signer.serial.p, signer.serial.len));
  verified.signer.not_after = ToTimeT(signer.valid_to);
  verified.file_digest = BundleFileDigest(bundle_text);
  return verified;
}

Result<std::string> SignBundleUnchecked(std::string payload,
                                        const std::function<Result<Bytes>(ByteSpan digest)>& sign_raw_rs,
                                        std::vector<Bytes> chain) {
  if (payload.empty()) return Invalid("payload", "is empty");
  if (payload.size() > kMaxConfigBytes) {
    return Invalid("payload", "is " + std::to_string(payload.size()) + " bytes; at most " +
                                  std::to_string(kMaxConfigBytes) + " (kMaxConfigBytes)");
  }
  auto config = ParseConfig(payload, ConfigRole::kBundle);
  if (!config.ok()) return AddPayloadPrefix(config.error());

  if (chain.empty()) return Invalid("certificates", "the signer's certificate is required");
  if (chain.size() > kMaxBundleCertificates) {
    return Invalid("certificates", std::to_string(chain.size()) + " certificates; at most " +
                                       std::to_string(kMaxBundleCertificates) + " (the signer's and " +
                                       std::to_string(kMaxBundleCertificates - 1) + " intermediates)");
  }
  CertificateList certificates;
  TKMS_RETURN_IF_ERROR(ParseCertificates(chain, certificates));
  TKMS_RETURN_IF_ERROR(CheckIntermediates(certificates));
  TKMS_RETURN_IF_ERROR(CheckChainOrder(certificates));
  mbedtls_x509_crt& signer = *certificates.head();
  if (Status s = CheckSigner(signer); !s.ok()) return InvalidArgument(s.message());

  const std::array<uint8_t, 32> digest = BundleMessageDigest(payload);
  auto raw = sign_raw_rs(digest);
  if (!raw.ok()) return Status(raw.error().code(), "signing the bundle digest failed: " + raw.error().message());
  auto der = EcdsaRawToDer(*raw);
  if (!der.ok()) return Status(der.error().code(), "the signer returned an unusable signature: " + der.error().message());
  if (!SignatureVerifies(signer, digest, *der)) {
    return FailedPrecondition(
        "the signature does not verify with the public key of certificates[0]: the signing key is not the key "
        "that certificate was issued for");
  }
  Bundle bundle;
  bundle.payload = std::move(payload);
  bundle.signature = std::move(*der);
  bundle.certificates = std::move(chain);
  std::string text = SerializeBundle(bundle);
  auto again = ParseBundleUnchecked(text);
  if (!again.ok() || !(*again == bundle)) return Internal("the serialised bundle does not parse back");
  return text;
}

Result<Bytes> ReadCertificateUnchecked(std::string_view file_bytes) {
  if (file_bytes.empty()) return InvalidArgument("the certificate file is empty");
  if (file_bytes.size() > kMaxCertificateFileBytes) {
    return InvalidArgument("the certificate file is " + std::to_string(file_bytes.size()) + " bytes; at most " +
                           std::to_string(kMaxCertificateFileBytes));
  }
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  Bytes der;
  const size_t begin = file_bytes.find(kBegin);
  if (begin != std::string_view::npos) {
    if (file_bytes.find(kBegin, begin + kBegin.size()) != std::string_view::npos) {
      return InvalidArgument("the file holds more than one PEM certificate; give one certificate per file");
    }
    // mbedtls_pem_read_buffer reads a NUL-terminated string from the header.
    const std::string text(file_bytes.substr(begin));
    PemContext pem;
    size_t used = 0;
    const int ret = mbedtls_pem_read_buffer(pem.get(), kBegin.data(), kEnd.data(),
                                            reinterpret_cast<const unsigned char*>(text.c_str()), nullptr, 0, &used);
    if (ret != 0) return InvalidArgument("not a usable PEM certificate: " + MbedError(ret));
    der.assign(pem.get()->buf, pem.get()->buf + pem.get()->buflen);
  } else if (static_cast<unsigned char>(file_bytes.front()) == 0x30) {
    der.assign(file_bytes.begin(), file_bytes.end());
  } else {
    return InvalidArgument("neither a PEM certificate (" + std::string(kBegin) + ") nor a DER certificate");
  }
  CertificateList check;
  TKMS_RETURN_IF_ERROR(check.Add(der, "certificate"));
  return der;
}

Result<CertificateSummary> DescribeCertificateUnchecked(ByteSpan der) {
  CertificateList list;
  TKMS_RETURN_IF_ERROR(list.Add(der, "certificate"));
  const mbedtls_x509_crt& crt = *list.head();
  CertificateSummary summary;
  summary.subject = DistinguishedName(crt.subject);
  summary.issuer = DistinguishedName(crt.issuer);
  summary.serial_hex = HexEncode(ByteSpan(crt.serial.p, crt.serial.len));
  summary.not_before = ToTimeT(crt.valid_from);
  summary.not_after = ToTimeT(crt.valid_to);
  summary.is_ca = IsCa(crt);
  summary.key = KeyDescription(crt.pk);
  summary.key_usage = KeyUsageText(crt);
  return summary;
}

Result<std::string> EcP256PublicKeyPemUnchecked(ByteSpan point) {
  if (point.size() != 65 || point[0] != 0x04) {
    return InvalidArgument("an uncompressed EC P-256 point is 65 bytes starting with 04, got " +
                           std::to_string(point.size()) + " bytes");
  }
  PkContext pk;
  if (mbedtls_pk_setup(pk.get(), mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0) {
    return Internal("mbedTLS cannot set up an EC key");
  }
  mbedtls_ecp_keypair* ec = mbedtls_pk_ec(*pk.get());
  if (mbedtls_ecp_group_load(&ec->grp, MBEDTLS_ECP_DP_SECP256R1) != 0) return Internal("mbedTLS lacks P-256");
  if (mbedtls_ecp_point_read_binary(&ec->grp, &ec->Q, point.data(), point.size()) != 0 ||
      mbedtls_ecp_check_pubkey(&ec->grp, &ec->Q) != 0) {
    return InvalidArgument("the point is not on the P-256 curve");
  }
  std::array<unsigned char, 512> pem{};
  const int ret = mbedtls_pk_write_pubkey_pem(pk.get(), pem.data(), pem.size());
  if (ret != 0) return Internal("cannot write the public key as PEM: " + MbedError(ret));
  return std::string(reinterpret_cast<const char*>(pem.data()));
}

// Runs `body`, turning an escaping exception into a Status.
template <typename T, typename F>
Result<T> Guard(const char* what, F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return ResourceExhausted(std::string(what) + ": out of memory");
  } catch (const std::exception& e) {
    return Internal(std::string(what) + ": unexpected exception: " + Escaped(e.what()));
  } catch (...) {
    return Internal(std::string(what) + ": unexpected exception");
  }
}

}  // namespace

// ---- public functions -------------------------------------------------------------------------

Result<Bundle> ParseBundle(std::string_view text) {
  return Guard<Bundle>("bundle", [&] { return ParseBundleUnchecked(text); });
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
  Sha256 sha;
  sha.Update(kBundleSignatureContext);
  sha.Update(std::string_view("\0", 1));
  sha.Update(payload);
  return sha.Finish();
}

std::array<uint8_t, 32> BundleFileDigest(std::string_view bundle_text) {
  Sha256 sha;
  sha.Update(bundle_text);
  return sha.Finish();
}

Result<VerifiedBundle> VerifyBundle(std::string_view bundle_text, ByteSpan anchor_der, std::time_t now) {
  return Guard<VerifiedBundle>("bundle", [&] { return VerifyBundleUnchecked(bundle_text, anchor_der, now); });
}

Result<Bytes> EcdsaRawToDer(ByteSpan raw_rs) {
  if (raw_rs.size() != 64) {
    return InvalidArgument("an ECDSA P-256 signature r || s is 64 bytes, got " + std::to_string(raw_rs.size()));
  }
  const auto r = raw_rs.subspan<0, 32>();
  const auto s = raw_rs.subspan<32, 32>();
  if (IsZero(r) || !BelowP256Order(r)) return InvalidArgument("ECDSA r is not in 1..n-1 of P-256");
  if (IsZero(s) || !BelowP256Order(s)) return InvalidArgument("ECDSA s is not in 1..n-1 of P-256");
  return Guard<Bytes>("signature", [&]() -> Result<Bytes> {
    Bytes body;
    AppendDerInteger(body, r);
    AppendDerInteger(body, s);
    Bytes der = {0x30, static_cast<uint8_t>(body.size())};
    der.insert(der.end(), body.begin(), body.end());
    return der;
  });
}

Result<std::string> SignBundle(std::string payload, const std::function<Result<Bytes>(ByteSpan digest)>& sign_raw_rs,
                               std::vector<Bytes> certificate_chain_der) {
  return Guard<std::string>("bundle", [&] {
    return SignBundleUnchecked(std::move(payload), sign_raw_rs, std::move(certificate_chain_der));
  });
}

Result<Bytes> LoadCertificateFile(const std::string& path) {
  auto text = ReadRegularFile(path, kMaxCertificateFileBytes, "certificate file");
  if (!text.ok()) return text.error();
  auto der = ReadPemOrDerCertificate(*text);
  if (!der.ok()) return Status(der.error().code(), Quote(path) + ": " + der.error().message());
  return der;
}

Result<Bytes> ReadPemOrDerCertificate(std::string_view file_bytes) {
  return Guard<Bytes>("certificate", [&] { return ReadCertificateUnchecked(file_bytes); });
}

Result<CertificateSummary> DescribeCertificate(ByteSpan der) {
  return Guard<CertificateSummary>("certificate", [&] { return DescribeCertificateUnchecked(der); });
}

std::string FormatUtcTime(std::time_t t) {
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return "(time out of range)";
  char text[64];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return text;
}

Result<std::string> EcP256PublicKeyPem(ByteSpan uncompressed_point) {
  return Guard<std::string>("public key", [&] { return EcP256PublicKeyPemUnchecked(uncompressed_point); });
}

}  // namespace tkms::provisioning
