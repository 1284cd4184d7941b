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

namespace tkms::pki {

// Largest key text (PEM or DER) the parsers accept.
inline constexpr size_t kMaxKeyBytes = 16384;

// "EC P-256", "EC P-384", "EC P-521", "RSA 2048", ... for any parsed key.
std::string DescribeKey(const mbedtls_pk_context& pk);
// An EC key (ECKEY, ECKEY_DH or ECDSA) on P-256.
bool IsEcP256(const mbedtls_pk_context& pk);

// Random bytes for mbedTLS: returns 0 on success (mbedTLS's f_rng).
using RandomFunction = int (*)(void* context, unsigned char* out, size_t length);

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

  bool has_key() const;
  std::string description() const;  // DescribeKey
  // "-----BEGIN PUBLIC KEY-----" ... (SubjectPublicKeyInfo).
  Result<std::string> PublicKeyPem();
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
  std::unique_ptr<mbedtls_pk_context, Free> pk_;
};

}  // namespace tkms::pki
