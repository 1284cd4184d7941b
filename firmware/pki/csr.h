// PKCS#10 certificate signing requests (RFC 2986) for keys held elsewhere.
//
// Why: the KMS's TLS server key never leaves the token (docs/tls.md), so its
// certificate is requested with a CSR the token signs. mbedTLS 2.28's
// mbedtls_x509write_csr writes the request's public key from the signing
// context, and an rsa_alt context (PkContext::RsaAlt) has no public key to
// write (mbedtls_pk_write_pubkey_der: MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE).
// WriteCsrPem therefore writes the CertificationRequestInfo itself (RFC 2986
// §4.1: version 0, subject, subjectPKInfo from the public key, attributes
// with an extensionRequest (PKCS#9, RFC 2985 §5.4.2) carrying the
// subjectAltName dNSNames, RFC 5280 §4.2.1.6) with mbedTLS's ASN.1 writers,
// and has the private key sign it: sha256WithRSAEncryption (RFC 8017
// §8.2, OID of RFC 4055 §5).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "firmware/base/status.h"
#include "firmware/pki/pk.h"

namespace tkms::pki {

inline constexpr size_t kMaxCsrDnsNames = 32;

// A DNS name for subjectAltName: 1..253 bytes of LDH labels (letters,
// digits, hyphens; 1..63 bytes each, no hyphen first or last) separated by
// dots. No wildcard, no trailing dot. kInvalidArgument naming the rule.
Status CheckDnsName(std::string_view name);

// The CSR as PEM ("-----BEGIN CERTIFICATE REQUEST-----"), signed by
// `private_key` (an RSA key, e.g. PkContext::RsaAlt) with SHA-256, for
// `public_key` (its public half: the CSR's signature is checked against it
// before the CSR is returned). `subject` is an RFC 4514-like string mbedTLS
// reads ("CN=kms.example.org,O=Example"); `dns_names` go into a
// subjectAltName extension request (none: no attribute).
//   bad subject, bad DNS name, too many names        kInvalidArgument
//   not an RSA pair, signature does not verify       kFailedPrecondition
//   the signer failed (the token)                    kUnavailable
Result<std::string> WriteCsrPem(PkContext& private_key, PkContext& public_key, std::string_view subject,
                                std::span<const std::string> dns_names);

}  // namespace tkms::pki
