// A test-only PKI built in memory with mbedTLS (library tkms_test_pki): EC
// keys, CA / intermediate / signer certificates with chosen validity, key
// usage and CA flag, and bundles signed without a token.
//
// Why: bundle verification (provisioning/bundle.h) is all about
// certificates that are expired, untrusted, of the wrong kind or signed by
// the wrong key; tests need to make each of those in a line, without files
// or openssl. Keys made from a seed (Key::FromSeed, TestPki(seed)) are the
// same on every run, so a fuzz target can rebuild the anchor its committed
// corpus was signed for. Never use any of this outside tests: the private
// keys live in ordinary host memory.
//
//   tkms::test_pki::TestPki pki;                  // root CA + bundle signer
//   std::string bundle = pki.SignedBundle(payload_json);
//   auto verified = VerifyBundle(bundle, pki.root.der, now);
//
// Failures (mbedTLS refusing a spec) abort the test process with a message:
// they are bugs in the test, not outcomes to check.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/pki/pk.h"

namespace tkms::test_pki {

// Software private keys exist only in tests: the appliance's keys stay in its
// token, so the product's pki component neither makes, reads nor writes them.
Result<pki::PkContext> GenerateEcKey(mbedtls_ecp_group_id curve, pki::RandomFunction random, void* context);
// An unencrypted private key in PEM (SEC 1, PKCS#1 or PKCS#8).
Result<pki::PkContext> ParsePrivateKey(std::string_view pem);
// "EC PRIVATE KEY" PEM (SEC 1) of an EC key.
Result<std::string> PrivateKeyPemOf(pki::PkContext& key);

using Bytes = std::vector<uint8_t>;

enum class Curve : uint8_t { kP256, kP384 };

// keyUsage bits (the values of mbedTLS's MBEDTLS_X509_KU_*).
inline constexpr unsigned kKuDigitalSignature = 0x80;
inline constexpr unsigned kKuKeyCertSign = 0x04;
inline constexpr unsigned kKuCrlSign = 0x02;

struct CertSpec;
struct Cert;

// An EC key pair in host memory. Not thread-safe (signing advances the
// key's own random generator).
class Key {
 public:
  // A fresh random key.
  static Key Generate(Curve curve = Curve::kP256);
  // The same key for the same seed and curve on every run.
  static Key FromSeed(std::string_view seed, Curve curve = Curve::kP256);

  ~Key();
  Key(Key&&) noexcept;
  Key& operator=(Key&&) noexcept;
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;

  Curve curve() const;
  // ECDSA over a digest the caller computed: r || s, each as long as the
  // curve's order (64 bytes for P-256), as PKCS#11 CKM_ECDSA returns it.
  Bytes SignDigestRaw(ByteSpan digest) const;
  // The same as a DER ECDSA-Sig-Value (any curve).
  Bytes SignDigestDer(ByteSpan digest) const;
  // The uncompressed public point (0x04 || X || Y).
  Bytes PublicPoint() const;
  // PEM SubjectPublicKeyInfo / PEM private key (SEC 1 "EC PRIVATE KEY").
  std::string PublicKeyPem() const;
  std::string PrivateKeyPem() const;

  struct Impl;  // mbedTLS objects (test_pki.cpp)

 private:
  friend Cert IssueCert(const CertSpec& spec, const Key& subject_key, std::string_view issuer_subject,
                        const Key& issuer_key);
  explicit Key(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What a certificate says. Names are mbedTLS's "CN=...,O=..." form; times
// are UTC "YYYYMMDDhhmmss".
struct CertSpec {
  std::string subject = "CN=tkms test bundle signer,O=tkms tests";
  std::string not_before = "20240101000000";
  std::string not_after = "20491231235959";
  bool ca = false;    // basicConstraints cA (the extension is always present)
  int path_len = -1;  // CA only; -1: no pathLenConstraint
  // keyUsage bits (kKu*); nullopt: no keyUsage extension at all.
  std::optional<unsigned> key_usage = kKuDigitalSignature;
  uint64_t serial = 1;
  // subjectAltName dNSName entries (each under 128 bytes); empty: no
  // subjectAltName extension.
  std::vector<std::string> dns_names = {};
};

// A CA certificate's spec: cA, keyUsage keyCertSign | cRLSign.
CertSpec CaSpec(std::string subject);
// A bundle signer's spec: not a CA, keyUsage digitalSignature.
CertSpec SignerSpec(std::string subject);

struct Cert {
  Bytes der;
  std::string pem;  // "-----BEGIN CERTIFICATE-----" ...
};

// A certificate for `subject_key`, signed (ECDSA with SHA-256) by
// `issuer_key` in the name of `issuer_subject` (the issuer's spec.subject).
Cert IssueCert(const CertSpec& spec, const Key& subject_key, std::string_view issuer_subject,
               const Key& issuer_key);
// A self-signed certificate (issuer = subject, signed by `key` itself).
Cert SelfSignedCert(const CertSpec& spec, const Key& key);

// A bundle file (provisioning/bundle.h) of `payload` signed with `key`,
// carrying `chain` (signer's certificate first), built WITHOUT any check:
// tests use it to make bundles VerifyBundle must refuse. The digest signed
// is BundleMessageDigest(payload); the signature is key.SignDigestDer.
std::string MakeBundle(std::string payload, const Key& key, std::vector<Bytes> chain);

// Seconds since the epoch of a UTC time (for `now` arguments).
std::time_t Utc(int year, int month, int day, int hour = 0, int minute = 0, int second = 0);

// The usual provisioning PKI of tests: a self-signed root CA (the anchor)
// and a bundle signer it issued, all EC P-256, valid 2024-01-01 to
// 2049-12-31 (UTC).
struct TestPki {
  // Empty seed: random keys; otherwise the same PKI on every run.
  explicit TestPki(std::string_view seed = {});

  static constexpr const char* kRootSubject = "CN=tkms test provisioning CA,O=tkms tests";
  static constexpr const char* kSignerSubject = "CN=tkms test bundle signer,O=tkms tests";

  Key root_key;
  Cert root;  // the anchor to verify against
  Key signer_key;
  Cert signer;

  // MakeBundle(payload, signer_key, {signer.der}).
  std::string SignedBundle(std::string payload) const;
};

}  // namespace tkms::test_pki
