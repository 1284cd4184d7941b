// PKCS#10 requests for keys held elsewhere: see csr.h. DER is written
// backwards (mbedTLS's asn1write convention: each writer moves `p` towards
// `start` and returns the bytes it wrote).
#include "firmware/pki/csr.h"

#include <mbedtls/asn1write.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/x509.h>

#include <array>
#include <cstring>
#include <vector>

#include "firmware/base/printable.h"
#include "firmware/pki/mbedtls_error.h"

namespace tkms::pki {
namespace {

constexpr size_t kBufferBytes = 16384;

// Adds a writer's result to `length`, or returns the error as a Status.
#define TKMS_ASN1(length, call)                                                       \
  do {                                                                                \
    const int ret_ = (call);                                                          \
    if (ret_ < 0) return Internal("cannot write the request: " + MbedtlsError(ret_)); \
    (length) += static_cast<size_t>(ret_);                                            \
  } while (false)

// Owns the list mbedtls_x509_string_to_names makes.
struct NameList {
  mbedtls_asn1_named_data* head = nullptr;
  NameList() = default;
  NameList(const NameList&) = delete;
  NameList& operator=(const NameList&) = delete;
  ~NameList() { mbedtls_asn1_free_named_data_list(&head); }
};

// Writes a SEQUENCE/SET/[n] header over the `length` bytes just written.
Status WrapConstructed(unsigned char** p, unsigned char* start, size_t& length, unsigned char tag) {
  size_t header = 0;
  TKMS_ASN1(header, mbedtls_asn1_write_len(p, start, length));
  TKMS_ASN1(header, mbedtls_asn1_write_tag(p, start, tag));
  length += header;
  return Status::Ok();
}

// attributes [0] IMPLICIT SET OF Attribute (RFC 2986 §4.1): empty, or one
// extensionRequest (1.2.840.113549.1.9.14) with the subjectAltName.
Status WriteAttributes(unsigned char** p, unsigned char* start, std::span<const std::string> dns_names,
                       size_t& length) {
  size_t attributes = 0;
  if (!dns_names.empty()) {
    // GeneralNames ::= SEQUENCE OF GeneralName; dNSName [2] IMPLICIT IA5String.
    size_t names = 0;
    for (size_t i = dns_names.size(); i-- > 0;) {
      const std::string& name = dns_names[i];
      size_t one = 0;
      TKMS_ASN1(one, mbedtls_asn1_write_raw_buffer(p, start, reinterpret_cast<const unsigned char*>(name.data()),
                                                   name.size()));
      TKMS_ASN1(one, mbedtls_asn1_write_len(p, start, one));
      TKMS_ASN1(one, mbedtls_asn1_write_tag(p, start, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2));
      names += one;
    }
    size_t extension = names;
    TKMS_RETURN_IF_ERROR(WrapConstructed(p, start, extension, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    // extnValue OCTET STRING around the GeneralNames; not critical (RFC 5280
    // §4.2.1.6: critical only with an empty subject).
    TKMS_RETURN_IF_ERROR(WrapConstructed(p, start, extension, MBEDTLS_ASN1_OCTET_STRING));
    TKMS_ASN1(extension, mbedtls_asn1_write_oid(p, start, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME)));
    TKMS_RETURN_IF_ERROR(WrapConstructed(p, start, extension, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    // Extensions ::= SEQUENCE OF Extension, the one value of the attribute's SET.
    TKMS_RETURN_IF_ERROR(WrapConstructed(p, start, extension, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    TKMS_RETURN_IF_ERROR(WrapConstructed(p, start, extension, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SET));
    TKMS_ASN1(extension, mbedtls_asn1_write_oid(p, start, MBEDTLS_OID_PKCS9_CSR_EXT_REQ,
                                                MBEDTLS_OID_SIZE(MBEDTLS_OID_PKCS9_CSR_EXT_REQ)));
    TKMS_RETURN_IF_ERROR(WrapConstructed(p, start, extension, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
    attributes = extension;
  }
  TKMS_RETURN_IF_ERROR(
      WrapConstructed(p, start, attributes, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0));
  length += attributes;
  return Status::Ok();
}

// CertificationRequestInfo (RFC 2986 §4.1), DER.
Result<std::vector<unsigned char>> WriteRequestInfo(PkContext& public_key, const NameList& subject,
                                                    std::span<const std::string> dns_names) {
  std::vector<unsigned char> buffer(kBufferBytes);
  unsigned char* const start = buffer.data();
  unsigned char* p = start + buffer.size();
  size_t length = 0;
  TKMS_RETURN_IF_ERROR(WriteAttributes(&p, start, dns_names, length));
  Result<Bytes> spki = public_key.PublicKeyDer();
  if (!spki.ok()) return spki.error();
  TKMS_ASN1(length, mbedtls_asn1_write_raw_buffer(&p, start, spki->data(), spki->size()));
  TKMS_ASN1(length, mbedtls_x509_write_names(&p, start, subject.head));
  TKMS_ASN1(length, mbedtls_asn1_write_int(&p, start, 0));  // version v1(0)
  TKMS_RETURN_IF_ERROR(WrapConstructed(&p, start, length, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));
  return std::vector<unsigned char>(p, start + buffer.size());
}

bool IsLdh(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

}  // namespace

Status CheckDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return InvalidArgument("a DNS name has 1 to 253 bytes");
  size_t label_start = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i < name.size() && name[i] != '.') {
      if (!IsLdh(name[i])) {
        return InvalidArgument("DNS name '" + Escaped(name) +
                               "': only letters, digits, hyphens and dots (no wildcard)");
      }
      continue;
    }
    const std::string_view label = name.substr(label_start, i - label_start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return InvalidArgument("DNS name '" + Escaped(name) +
                             "': each label has 1 to 63 bytes and neither starts nor ends with a hyphen");
    }
    label_start = i + 1;
  }
  return Status::Ok();
}

Result<std::string> WriteCsrPem(PkContext& private_key, PkContext& public_key, std::string_view subject,
                                std::span<const std::string> dns_names) {
  if (!mbedtls_pk_can_do(private_key.native(), MBEDTLS_PK_RSA) ||
      mbedtls_pk_get_type(public_key.native()) != MBEDTLS_PK_RSA) {
    return FailedPrecondition("a TLS key request needs an RSA key pair");
  }
  if (dns_names.size() > kMaxCsrDnsNames) {
    return InvalidArgument("at most " + std::to_string(kMaxCsrDnsNames) + " DNS names");
  }
  for (const std::string& name : dns_names) TKMS_RETURN_IF_ERROR(CheckDnsName(name));
  const std::string subject_text(subject);
  NameList names;
  if (subject_text.empty() || subject_text.size() > 1024 || subject_text.find('\0') != std::string::npos ||
      mbedtls_x509_string_to_names(&names.head, subject_text.c_str()) != 0 || names.head == nullptr) {
    return InvalidArgument("subject '" + Escaped(subject) +
                           "' is not a distinguished name (e.g. \"CN=kms.example.org,O=Example\"; "
                           "attributes CN, O, OU, C, ST, L, ...)");
  }

  Result<std::vector<unsigned char>> info = WriteRequestInfo(public_key, names, dns_names);
  if (!info.ok()) return info.error();
  std::array<unsigned char, 32> digest{};
  if (mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), info->data(), info->size(), digest.data()) != 0) {
    return Internal("SHA-256 failed");
  }
  std::array<unsigned char, MBEDTLS_PK_SIGNATURE_MAX_SIZE> signature{};
  size_t signature_length = 0;
  const int signed_ret = mbedtls_pk_sign(private_key.native(), MBEDTLS_MD_SHA256, digest.data(), digest.size(),
                                         signature.data(), &signature_length, nullptr, nullptr);
  if (signed_ret != 0) return Unavailable("the key cannot sign the request: " + MbedtlsError(signed_ret));
  if (!public_key.Verify(MBEDTLS_MD_SHA256, digest, ByteSpan(signature.data(), signature_length))) {
    return FailedPrecondition("the request's signature does not verify with the public key: the keys differ");
  }

  // CertificationRequest ::= SEQUENCE { info, signatureAlgorithm, signature BIT STRING }.
  std::vector<unsigned char> buffer(kBufferBytes);
  unsigned char* const start = buffer.data();
  unsigned char* p = start + buffer.size();
  size_t length = 0;
  const char* oid = nullptr;
  size_t oid_length = 0;
  if (mbedtls_oid_get_oid_by_sig_alg(MBEDTLS_PK_RSA, MBEDTLS_MD_SHA256, &oid, &oid_length) != 0) {
    return Internal("mbedTLS lacks sha256WithRSAEncryption");
  }
  TKMS_ASN1(length, mbedtls_x509_write_sig(&p, start, oid, oid_length, signature.data(), signature_length));
  TKMS_ASN1(length, mbedtls_asn1_write_raw_buffer(&p, start, info->data(), info->size()));
  TKMS_RETURN_IF_ERROR(WrapConstructed(&p, start, length, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE));

  std::vector<unsigned char> pem(kBufferBytes * 2);
  size_t pem_length = 0;
  const int pem_ret = mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE REQUEST-----\n",
                                               "-----END CERTIFICATE REQUEST-----\n", p, length, pem.data(),
                                               pem.size(), &pem_length);
  if (pem_ret != 0) return Internal("cannot write PEM: " + MbedtlsError(pem_ret));
  return std::string(reinterpret_cast<const char*>(pem.data()));
}

}  // namespace tkms::pki
