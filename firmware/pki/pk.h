// Public and private keys through mbedTLS (mbedtls_pk_context): the one
// owner of pk contexts.
//
// Why: bundle signing checks a token's signature with the signer
// certificate's key and exports a token key's public half as PEM
// (provisioning/bundle.h, tkmsctl bundle pubkey); the mutual-TLS listener
// and client check their peers'. Private keys are not read, made or written
// here: the appliance's keys stay in its token, and the test PKI
// (tests/provisioning/test_pki.h) makes its software keys itself. A pk context must be initialised before use and freed on
// every path: PkContext does that, RAII and move-only, with a stable address
// for mbedTLS calls that keep a pointer (mbedtls_ssl_conf_own_cert).
//
// The KMS's TLS server key is an RSA key pair held in the token
// (docs/tls.md). mbedTLS signs with it through PkContext::RsaAlt: the
// public, documented rsa_alt hooks of mbedTLS 2.28 (mbedtls_pk_setup_rsa_alt)
// call an RsaSigner, which the keystore implements with C_Sign. TLS 1.2 with
// ECDHE_RSA suites (tls_policy.h) needs only RSASSA-PKCS1-v1_5 signatures
// (RFC 8017 §8.2) of the ServerKeyExchange (RFC 5246 §7.4.3); decryption
// (static-RSA key exchange, which tls_policy excludes) is refused. An EC key
// in the token would need a custom pk_info_t from mbedTLS's internal
// pk_internal.h, which 2.28 does not promise to keep stable.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/pki/x509.h"

namespace tkms::pki {

// Largest key text (PEM or DER) the parsers accept.
inline constexpr size_t kMaxKeyBytes = 16384;

// "EC P-256", "EC P-384", "EC P-521", "RSA 2048", ... for any parsed key.
std::string DescribeKey(const mbedtls_pk_context& pk);
// An EC key (ECKEY, ECKEY_DH or ECDSA) on P-256.
bool IsEcP256(const mbedtls_pk_context& pk);

// Random bytes for mbedTLS: returns 0 on success (mbedTLS's f_rng).
using RandomFunction = int (*)(void* context, unsigned char* out, size_t length);

// Signs with an RSA private key held elsewhere (the token). Thread-safe:
// mbedTLS may call it from every TLS connection's thread at once.
class RsaSigner {
 public:
  virtual ~RsaSigner() = default;
  // The modulus length in bytes (256 for RSA-2048); constant for the
  // signer's life, and cheap (mbedTLS asks it often).
  virtual size_t ModulusBytes() const = 0;
  // RSASSA-PKCS1-v1_5 (RFC 8017 §8.2) over `digest` computed with `md`
  // (SHA-256/384/512): returns ModulusBytes() bytes.
  virtual Result<Bytes> SignPkcs1v15(mbedtls_md_type_t md, ByteSpan digest) = 0;
};

// The digests RsaAlt signs (and TLS 1.2 negotiates, tls_policy.h): SHA-256,
// SHA-384, SHA-512.
bool IsRsaAltDigest(mbedtls_md_type_t md);

// Move-only; a moved-from PkContext holds nothing (native() is nullptr).
class PkContext {
 public:
  PkContext();  // no key yet
  ~PkContext();
  PkContext(PkContext&& other) noexcept;
  PkContext& operator=(PkContext&& other) noexcept;
  PkContext(const PkContext&) = delete;
  PkContext& operator=(const PkContext&) = delete;

  // An EC P-256 public key from its uncompressed point (65 bytes,
  // 0x04 || X || Y, as PKCS#11 CKA_EC_POINT holds it). kInvalidArgument if
  // the point is not on the curve.
  static Result<PkContext> EcP256PublicKey(ByteSpan uncompressed_point);
  // A public key: PEM "PUBLIC KEY" or DER SubjectPublicKeyInfo, at most
  // kMaxKeyBytes. kInvalidArgument with mbedTLS's reason otherwise.
  static Result<PkContext> ParsePublicKey(std::string_view pem_or_der);
  // An RSA public key from its modulus and public exponent (big-endian
  // unsigned integers, as PKCS#11 CKA_MODULUS / CKA_PUBLIC_EXPONENT hold
  // them). kInvalidArgument unless mbedTLS accepts it as an RSA public key of
  // 2048 to 4096 bits.
  static Result<PkContext> RsaPublicKey(ByteSpan modulus, ByteSpan exponent);
  // An RSA private key that signs through `signer` (mbedtls_pk_setup_rsa_alt;
  // type MBEDTLS_PK_RSA_ALT, can do MBEDTLS_PK_RSA). The context keeps the
  // signer alive. mbedtls_pk_sign with SHA-256/384/512 calls
  // signer->SignPkcs1v15; any other digest (including mbedtls_pk_check_pair's
  // MBEDTLS_MD_NONE: use CheckKeyPair) gives MBEDTLS_ERR_RSA_BAD_INPUT_DATA, a
  // signer failure or a signature of the wrong length
  // MBEDTLS_ERR_RSA_PRIVATE_FAILED, and decryption always
  // MBEDTLS_ERR_RSA_UNSUPPORTED_OPERATION. No exception crosses the
  // callbacks. kInvalidArgument for a null signer or a modulus outside 2048
  // to 4096 bits. Such a context has no public key to write (PublicKeyPem
  // fails): keep the public key beside it (RsaPublicKey).
  static Result<PkContext> RsaAlt(std::shared_ptr<RsaSigner> signer);

  bool has_key() const;
  std::string description() const;  // DescribeKey
  // "-----BEGIN PUBLIC KEY-----" ... (SubjectPublicKeyInfo).
  Result<std::string> PublicKeyPem();
  // The DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
  Result<Bytes> PublicKeyDer();
  // True if `signature` (DER ECDSA-Sig-Value, or PKCS#1 v1.5 for RSA) over
  // `digest` (the hash `md` of the message) verifies with this key.
  bool Verify(mbedtls_md_type_t md, ByteSpan digest, ByteSpan signature);

  // For mbedTLS calls; the address stays the same for the life of the
  // context, moves included.
  mbedtls_pk_context* native() { return pk_.get(); }
  const mbedtls_pk_context* native() const { return pk_.get(); }

 private:
  struct Free {
    void operator()(mbedtls_pk_context* pk) const;
  };
  // Declared first, destroyed last: the rsa_alt context points at it.
  std::shared_ptr<RsaSigner> signer_;
  std::unique_ptr<mbedtls_pk_context, Free> pk_;
};

// Whether the certificate carries exactly `public_key` (the same
// SubjectPublicKeyInfo, compared as DER written by mbedTLS): tkmsd refuses a
// TLS certificate chain whose leaf is not for the token's key.
// kInvalidArgument if either key cannot be written.
Result<bool> CertificateMatchesKey(CertificateRef certificate, PkContext& public_key);

// The check mbedtls_pk_check_pair cannot make for an RsaAlt key (it signs
// with MBEDTLS_MD_NONE): signs the SHA-256 digest of a fixed text with
// `private_key` through mbedtls_pk_sign and verifies the signature with
// `public_key`. kFailedPrecondition "the keys do not form a pair" if it does
// not verify; kUnavailable if the signing failed (the token).
Status CheckKeyPair(PkContext& private_key, PkContext& public_key);

}  // namespace tkms::pki
