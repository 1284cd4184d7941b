// X.509 certificates through mbedTLS (RFC 5280): the one owner of
// mbedtls_x509_crt lists, read-only views of a parsed certificate, and
// readers of certificate files.
//
// Why: signed configuration bundles (provisioning/bundle.h: the signer's
// chain and the anchor), the certificates of trust relations and external
// KMSs (provisioning/config.h), tkmsctl, and the mutual-TLS listener and
// client of KMS-to-KMS resolution all parse untrusted certificates with
// mbedTLS. mbedTLS is C: a list must be initialised before use and freed on
// every path, and its parser skips bytes after a DER certificate. X509Chain
// does both once: RAII, move-only, with a stable address for mbedTLS calls
// that keep a pointer (mbedtls_ssl_conf_ca_chain), every input size-capped
// before it reaches mbedTLS, and trailing bytes refused. Messages are
// printable ASCII (firmware/base/printable.h) and name the field given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <mbedtls/x509_crt.h>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"

namespace tkms::pki {

using Bytes = std::vector<uint8_t>;

// Largest DER certificate accepted, and largest certificate file read.
inline constexpr size_t kMaxCertificateDerBytes = 16384;
inline constexpr size_t kMaxCertificateFileBytes = 256 * 1024;

// Seconds since the epoch of a certificate time (UTC, proleptic Gregorian;
// mbedTLS has checked the fields' ranges). Never reads the C library's time
// zone.
std::time_t ToTimeT(const mbedtls_x509_time& t);
// "2026-01-31T00:00:00Z"; "(time out of range)" if gmtime_r fails.
std::string FormatUtcTime(std::time_t t);
// mbedTLS's text of certificate verification flags (MBEDTLS_X509_BADCERT_*)
// on one line, causes separated by ";" ("The certificate is not correctly
// signed by the trusted CA"); "" for 0.
std::string VerifyFlagsText(uint32_t flags);

// What one parsed certificate says. A view: the X509Chain that parsed the
// certificate must outlive it. Text is escaped printable ASCII.
class CertificateRef {
 public:
  explicit CertificateRef(const mbedtls_x509_crt& crt) : crt_(&crt) {}

  const mbedtls_x509_crt& native() const { return *crt_; }
  ByteSpan der() const;
  ByteSpan subject_raw() const;  // DER of the subject Name
  ByteSpan issuer_raw() const;
  std::string subject() const;   // RFC 4514-like, "CN=..., O=..."
  std::string issuer() const;
  std::string serial_hex() const;  // lowercase hex
  std::time_t not_before() const;
  std::time_t not_after() const;
  int version() const;  // 1..3
  // basicConstraints present with cA = TRUE.
  bool is_ca() const;
  bool has_key_usage_extension() const;
  // The keyUsage extension is present and has `bit` (MBEDTLS_X509_KU_*).
  bool has_key_usage(unsigned bit) const;
  // "digitalSignature,keyCertSign"; "(none)" without the extension.
  std::string key_usage_text() const;
  // "EC P-256", "EC P-384", "RSA 2048", ...
  std::string key_description() const;
  bool has_ec_p256_key() const;

 private:
  const mbedtls_x509_crt* crt_;
};

// A list of parsed certificates (an mbedtls_x509_crt chain), in the order
// they were added. Move-only; a moved-from chain is empty.
class X509Chain {
 public:
  X509Chain();
  ~X509Chain();
  X509Chain(X509Chain&& other) noexcept;
  X509Chain& operator=(X509Chain&& other) noexcept;
  X509Chain(const X509Chain&) = delete;
  X509Chain& operator=(const X509Chain&) = delete;

  // Appends one DER certificate of 1..max_der_bytes that mbedTLS parses,
  // with nothing after it. kInvalidArgument "<field>: ..." otherwise; the
  // chain is unchanged then.
  Status AddDer(ByteSpan der, std::string_view field, size_t max_der_bytes = kMaxCertificateDerBytes);
  // Appends every "CERTIFICATE" block of PEM text of 1..max_pem_bytes (text
  // around and between blocks is ignored), refusing the whole text if any
  // block does not parse or if the chain would then hold more than
  // max_certificates. kInvalidArgument "<field>: ..."; the chain is
  // unchanged then.
  Status AddPem(std::string_view pem, std::string_view field, size_t max_pem_bytes, size_t max_certificates);

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  // The certificate at `index` (< size()).
  CertificateRef at(size_t index) const;
  CertificateRef front() const { return at(0); }

  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = CertificateRef;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = CertificateRef;
    explicit Iterator(const mbedtls_x509_crt* crt) : crt_(crt) {}
    CertificateRef operator*() const { return CertificateRef(*crt_); }
    Iterator& operator++() {
      crt_ = crt_->next;
      return *this;
    }
    bool operator==(const Iterator& other) const { return crt_ == other.crt_; }

   private:
    const mbedtls_x509_crt* crt_;
  };
  Iterator begin() const { return Iterator(empty() ? nullptr : crt_.get()); }
  Iterator end() const { return Iterator(nullptr); }

  // The head of the list, for mbedTLS calls (mbedtls_x509_crt_verify,
  // mbedtls_ssl_conf_ca_chain, ...). Its address stays the same for the
  // life of the chain, moves included; nullptr after a move.
  mbedtls_x509_crt* native() { return crt_.get(); }
  // The certificate at `index` as mbedTLS's own node (< size()), for
  // pointer comparisons with what mbedTLS reports (verify callbacks).
  const mbedtls_x509_crt* node(size_t index) const;

 private:
  struct Free {
    void operator()(mbedtls_x509_crt* crt) const;
  };
  std::unique_ptr<mbedtls_x509_crt, Free> crt_;
  size_t count_ = 0;
};

// What a certificate says about itself, for display (tkmsctl). Not a
// verification.
struct CertificateSummary {
  std::string subject;
  std::string issuer;
  std::string serial_hex;
  std::time_t not_before = 0;
  std::time_t not_after = 0;
  bool is_ca = false;
  std::string key;        // "EC P-256", "RSA 2048", ...
  std::string key_usage;  // "digitalSignature,keyCertSign" or "(none)"
};
CertificateSummary Summarize(CertificateRef crt);
// Parses one DER certificate (as X509Chain::AddDer) and summarises it.
Result<CertificateSummary> DescribeCertificate(ByteSpan der);

// One certificate from a file's bytes: PEM (exactly one "CERTIFICATE"
// block; text around it is ignored) or DER. Returns the DER, which mbedTLS
// parses with nothing after it. kInvalidArgument otherwise.
Result<Bytes> ReadPemOrDerCertificate(std::string_view file_bytes);
// The same from a regular file of at most kMaxCertificateFileBytes; errors
// name the file.
Result<Bytes> LoadCertificateFile(const std::string& path);

}  // namespace tkms::pki
