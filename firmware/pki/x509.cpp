// X.509 certificates through mbedTLS: see x509.h.
#include "firmware/pki/x509.h"

#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509.h>

#include <cassert>
#include <cstdio>
#include <new>
#include <optional>
#include <utility>

#include "firmware/base/encoding.h"
#include "firmware/base/file_reader.h"
#include "firmware/base/printable.h"
#include "firmware/pki/mbedtls_error.h"
#include "firmware/pki/pk.h"

namespace tkms::pki {
namespace {

constexpr std::string_view kPemBegin = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kPemEnd = "-----END CERTIFICATE-----";

Status Invalid(std::string_view field, std::string_view problem) {
  return InvalidArgument(std::string(field) + ": " + std::string(problem));
}

std::string DistinguishedName(const mbedtls_x509_name& name) {
  char text[1024] = {};
  const int n = mbedtls_x509_dn_gets(text, sizeof text, &name);
  if (n < 0) return "(name longer than 1023 characters)";
  return Escaped(std::string_view(text, static_cast<size_t>(n)));
}

ByteSpan Span(const mbedtls_x509_buf& buf) { return ByteSpan(buf.p, buf.len); }

// The base64 body of one PEM "CERTIFICATE" block, decoded (mbedTLS's PEM
// reader, which wants a NUL-terminated string from the header on).
Result<Bytes> DecodeOnePemBlock(std::string_view from_header) {
  struct Pem {
    Pem() { mbedtls_pem_init(&ctx); }
    ~Pem() { mbedtls_pem_free(&ctx); }
    Pem(const Pem&) = delete;
    Pem& operator=(const Pem&) = delete;
    mbedtls_pem_context ctx;
  } pem;
  const std::string text(from_header);
  size_t used = 0;
  const int ret = mbedtls_pem_read_buffer(&pem.ctx, kPemBegin.data(), kPemEnd.data(),
                                          reinterpret_cast<const unsigned char*>(text.c_str()), nullptr, 0, &used);
  if (ret != 0) return InvalidArgument("not a usable PEM certificate: " + MbedtlsError(ret));
  return Bytes(pem.ctx.buf, pem.ctx.buf + pem.ctx.buflen);
}

}  // namespace

std::time_t ToTimeT(const mbedtls_x509_time& t) {
  // Days since 1970-01-01 (H. Hinnant's days_from_civil).
  const int64_t year = static_cast<int64_t>(t.year) - (t.mon <= 2 ? 1 : 0);
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t month = t.mon;
  const int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + t.day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  const int64_t days = era * 146097 + day_of_era - 719468;
  return static_cast<std::time_t>(days * 86400 + int64_t{t.hour} * 3600 + int64_t{t.min} * 60 + t.sec);
}

std::string FormatUtcTime(std::time_t t) {
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return "(time out of range)";
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return text;
}

std::string VerifyFlagsText(uint32_t flags) {
  char buf[512];
  const int n = mbedtls_x509_crt_verify_info(buf, sizeof buf, "", flags);
  std::string text = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  for (char& c : text) {
    if (c == '\n') c = ';';
  }
  while (!text.empty() && (text.back() == ';' || text.back() == ' ')) text.pop_back();
  return text;
}

// ---- CertificateRef ----------------------------------------------------------------

ByteSpan CertificateRef::der() const { return Span(crt_->raw); }
ByteSpan CertificateRef::subject_raw() const { return Span(crt_->subject_raw); }
ByteSpan CertificateRef::issuer_raw() const { return Span(crt_->issuer_raw); }
std::string CertificateRef::subject() const { return DistinguishedName(crt_->subject); }
std::string CertificateRef::issuer() const { return DistinguishedName(crt_->issuer); }
std::string CertificateRef::serial_hex() const { return HexEncode(Span(crt_->serial)); }
std::time_t CertificateRef::not_before() const { return ToTimeT(crt_->valid_from); }
std::time_t CertificateRef::not_after() const { return ToTimeT(crt_->valid_to); }
int CertificateRef::version() const { return crt_->version; }

bool CertificateRef::is_ca() const {
  return (crt_->ext_types & MBEDTLS_X509_EXT_BASIC_CONSTRAINTS) != 0 && crt_->ca_istrue != 0;
}

bool CertificateRef::has_key_usage_extension() const { return (crt_->ext_types & MBEDTLS_X509_EXT_KEY_USAGE) != 0; }

bool CertificateRef::has_key_usage(unsigned bit) const {
  return has_key_usage_extension() && (crt_->key_usage & bit) != 0;
}

std::string CertificateRef::key_usage_text() const {
  if (!has_key_usage_extension()) return "(none)";
  static constexpr std::pair<unsigned, const char*> kBits[] = {
      {MBEDTLS_X509_KU_DIGITAL_SIGNATURE, "digitalSignature"}, {MBEDTLS_X509_KU_NON_REPUDIATION, "nonRepudiation"},
      {MBEDTLS_X509_KU_KEY_ENCIPHERMENT, "keyEncipherment"},   {MBEDTLS_X509_KU_DATA_ENCIPHERMENT, "dataEncipherment"},
      {MBEDTLS_X509_KU_KEY_AGREEMENT, "keyAgreement"},         {MBEDTLS_X509_KU_KEY_CERT_SIGN, "keyCertSign"},
      {MBEDTLS_X509_KU_CRL_SIGN, "cRLSign"},                   {MBEDTLS_X509_KU_ENCIPHER_ONLY, "encipherOnly"},
      {MBEDTLS_X509_KU_DECIPHER_ONLY, "decipherOnly"}};
  std::string out;
  for (const auto& [bit, name] : kBits) {
    if ((crt_->key_usage & bit) == 0) continue;
    if (!out.empty()) out += ',';
    out += name;
  }
  return out.empty() ? "(empty)" : out;
}

std::string CertificateRef::key_description() const { return DescribeKey(crt_->pk); }
bool CertificateRef::has_ec_p256_key() const { return IsEcP256(crt_->pk); }

// ---- X509Chain ---------------------------------------------------------------------

void X509Chain::Free::operator()(mbedtls_x509_crt* crt) const {
  mbedtls_x509_crt_free(crt);
  delete crt;
}

X509Chain::X509Chain() : crt_(new mbedtls_x509_crt) { mbedtls_x509_crt_init(crt_.get()); }
X509Chain::~X509Chain() = default;
X509Chain::X509Chain(X509Chain&& other) noexcept
    : crt_(std::move(other.crt_)), count_(std::exchange(other.count_, 0)) {}
X509Chain& X509Chain::operator=(X509Chain&& other) noexcept {
  crt_ = std::move(other.crt_);
  count_ = std::exchange(other.count_, 0);
  return *this;
}

const mbedtls_x509_crt* X509Chain::node(size_t index) const {
  assert(index < count_);
  const mbedtls_x509_crt* crt = crt_.get();
  for (size_t i = 0; i < index && crt != nullptr; ++i) crt = crt->next;
  return crt;
}

CertificateRef X509Chain::at(size_t index) const { return CertificateRef(*node(index)); }

Status X509Chain::AddDer(ByteSpan der, std::string_view field, size_t max_der_bytes) {
  if (der.empty()) return Invalid(field, "is empty");
  if (der.size() > max_der_bytes) {
    return Invalid(field, "holds " + std::to_string(der.size()) + " bytes; at most " + std::to_string(max_der_bytes));
  }
  // Parsed alone first: mbedTLS ignores bytes after a DER certificate, and a
  // refusal must leave this chain as it was.
  X509Chain alone;
  const int ret = mbedtls_x509_crt_parse_der(alone.crt_.get(), der.data(), der.size());
  if (ret != 0) return Invalid(field, "not a DER X.509 certificate: " + MbedtlsError(ret));
  if (alone.crt_->raw.len != der.size()) {
    return Invalid(field, std::to_string(der.size() - alone.crt_->raw.len) + " bytes after the DER certificate");
  }
  if (empty()) {
    *this = std::move(alone);
    count_ = 1;
    return Status::Ok();
  }
  const int again = mbedtls_x509_crt_parse_der(crt_.get(), der.data(), der.size());
  if (again != 0) return Invalid(field, "not a DER X.509 certificate: " + MbedtlsError(again));
  ++count_;
  return Status::Ok();
}

Status X509Chain::AddPem(std::string_view pem, std::string_view field, size_t max_pem_bytes, size_t max_certificates) {
  if (pem.empty()) return Invalid(field, "is empty");
  if (pem.size() > max_pem_bytes) {
    return Invalid(field, "is " + std::to_string(pem.size()) + " bytes; at most " + std::to_string(max_pem_bytes));
  }
  // Parsed into a chain of its own first, so that a refusal changes nothing.
  X509Chain parsed;
  // mbedTLS reads PEM only from a NUL-terminated buffer, the NUL counted.
  const std::string terminated(pem);
  const int ret = mbedtls_x509_crt_parse(parsed.crt_.get(), reinterpret_cast<const unsigned char*>(terminated.c_str()),
                                         terminated.size() + 1);
  if (ret < 0) return Invalid(field, "does not parse: " + MbedtlsErrorText(ret));
  if (ret > 0) return Invalid(field, std::to_string(ret) + " of its certificates do not parse");
  for (const mbedtls_x509_crt* crt = parsed.crt_.get(); crt != nullptr && crt->version != 0; crt = crt->next) {
    ++parsed.count_;
  }
  if (parsed.count_ == 0) return Invalid(field, "holds no PEM certificate");
  if (count_ + parsed.count_ > max_certificates) {
    return Invalid(field, "would make " + std::to_string(count_ + parsed.count_) + " certificates; at most " +
                              std::to_string(max_certificates));
  }
  if (empty()) {
    *this = std::move(parsed);
    return Status::Ok();
  }
  for (const CertificateRef crt : parsed) TKMS_RETURN_IF_ERROR(AddDer(crt.der(), field, crt.der().size()));
  return Status::Ok();
}

// ---- summaries and files -----------------------------------------------------------

CertificateSummary Summarize(CertificateRef crt) {
  CertificateSummary summary;
  summary.subject = crt.subject();
  summary.issuer = crt.issuer();
  summary.serial_hex = crt.serial_hex();
  summary.not_before = crt.not_before();
  summary.not_after = crt.not_after();
  summary.is_ca = crt.is_ca();
  summary.key = crt.key_description();
  summary.key_usage = crt.key_usage_text();
  return summary;
}

Result<CertificateSummary> DescribeCertificate(ByteSpan der) {
  try {
    X509Chain chain;
    TKMS_RETURN_IF_ERROR(chain.AddDer(der, "certificate"));
    return Summarize(chain.front());
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("certificate: out of memory");
  }
}

Result<Bytes> ReadPemOrDerCertificate(std::string_view file_bytes) {
  try {
    if (file_bytes.empty()) return InvalidArgument("the certificate file is empty");
    if (file_bytes.size() > kMaxCertificateFileBytes) {
      return InvalidArgument("the certificate file is " + std::to_string(file_bytes.size()) + " bytes; at most " +
                             std::to_string(kMaxCertificateFileBytes));
    }
    Bytes der;
    const size_t begin = file_bytes.find(kPemBegin);
    if (begin != std::string_view::npos) {
      if (file_bytes.find(kPemBegin, begin + kPemBegin.size()) != std::string_view::npos) {
        return InvalidArgument("the file holds more than one PEM certificate; give one certificate per file");
      }
      auto decoded = DecodeOnePemBlock(file_bytes.substr(begin));
      if (!decoded.ok()) return decoded.error();
      der = std::move(*decoded);
    } else if (static_cast<unsigned char>(file_bytes.front()) == 0x30) {
      der.assign(file_bytes.begin(), file_bytes.end());
    } else {
      return InvalidArgument("neither a PEM certificate (" + std::string(kPemBegin) + ") nor a DER certificate");
    }
    X509Chain check;
    TKMS_RETURN_IF_ERROR(check.AddDer(der, "certificate"));
    return der;
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("certificate: out of memory");
  }
}

Result<Bytes> LoadCertificateFile(const std::string& path) {
  auto text = ReadRegularFile(path, kMaxCertificateFileBytes, "certificate file");
  if (!text.ok()) return text.error();
  auto der = ReadPemOrDerCertificate(*text);
  if (!der.ok()) return Status(der.error().code(), Quote(path) + ": " + der.error().message());
  return der;
}

}  // namespace tkms::pki
