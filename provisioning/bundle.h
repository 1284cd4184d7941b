// Signed configuration bundles (issue 6, docs/bundles.md): the JSON
// configuration of a KMS (provisioning/config.h, role ConfigRole::kBundle)
// with a detached ECDSA P-256 / SHA-256 signature and the signer's X.509
// certificate chain, verified with mbedTLS against the provisioning trust
// anchor pinned in the appliance.
//
// Why: an appliance must only ever run a configuration its provisioning
// authority signed, and must have checked all of it (envelope, certificate
// chain at the appliance's time, key usage, signature, then the whole
// configuration schema) before anything is applied. The authority's key
// stays in its own token: SignBundle takes a callback that signs a digest
// (tkmsctl uses Keystore::SignEcdsaP256, raw r || s) and checks the result
// against the signer certificate before it returns a bundle.
//
// The file (one JSON object, at most kMaxBundleBytes, exactly these four
// members, no duplicates):
//   {"format": "tkms-bundle/1",
//    "payload": "<base64 of the configuration document's exact bytes>",
//    "signature": "<base64 of the DER ECDSA-Sig-Value>",
//    "certificates": ["<base64 DER of the signer's certificate>",
//                     "<intermediate CA certificates, issuer after subject>"]}
// The signed message is the ASCII string kBundleSignatureContext, one 0x00
// byte, then the payload bytes (domain separation: a signature made for a
// bundle is not a signature over a bare configuration, and no other
// document this authority signs can start with that prefix by accident).
//
// Every input here is untrusted: sizes are checked before anything is
// decoded, the envelope is read by the bounded JSON reader (firmware/json:
// depth 2, duplicate members refused), every mbedTLS object is owned by
// tkms_pki (firmware/pki), no exception escapes (allocation failure is
// kResourceExhausted), and messages are printable ASCII that name the field
// ("certificates[1]: ...", "payload: users[0].policy_class: ...") and never
// contain a secret (there is none in a bundle; PINs stay in the tools).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/pki/x509.h"
#include "provisioning/config.h"

namespace tkms::provisioning {

using Bytes = pki::Bytes;

// Largest bundle file accepted.
inline constexpr size_t kMaxBundleBytes = 2 << 20;
// The "format" member.
inline constexpr std::string_view kBundleFormat = "tkms-bundle/1";
// The prefix of the signed message (followed by one 0x00 byte).
inline constexpr std::string_view kBundleSignatureContext = "tkms configuration bundle v1";
// Certificates in a bundle: the signer's, then up to three intermediates.
inline constexpr size_t kMaxBundleCertificates = 4;
// Largest DER certificate accepted (in a bundle, as an anchor, from a file).
inline constexpr size_t kMaxCertificateDerBytes = pki::kMaxCertificateDerBytes;
// Largest DER ECDSA P-256 signature: SEQUENCE { INTEGER (33), INTEGER (33) }.
inline constexpr size_t kMaxEcdsaP256DerBytes = 72;

// The envelope of a bundle, decoded but not verified.
struct Bundle {
  std::string payload;              // the configuration document's bytes
  Bytes signature;                  // DER ECDSA-Sig-Value
  std::vector<Bytes> certificates;  // DER; [0] is the signer's
  bool operator==(const Bundle&) const = default;
};

// Reads the envelope only: JSON structure, the format string, base64 of
// every member, sizes (payload at most kMaxConfigBytes, 1..4 certificates of
// at most kMaxCertificateDerBytes each) and the strict DER form of the
// signature (minimal positive INTEGERs of at most 32 significant bytes, no
// trailing bytes). Certificates are not parsed here. kInvalidArgument
// "<member>: <problem>" ("$: ..." for the document itself).
Result<Bundle> ParseBundle(std::string_view text);

// The canonical text of `bundle` (members in the order above, two-space
// indentation, final newline). ParseBundle(SerializeBundle(b)) == b for
// every b that ParseBundle returned.
std::string SerializeBundle(const Bundle& bundle);

// SHA-256 of the signed message: kBundleSignatureContext || 0x00 || payload.
std::array<uint8_t, 32> BundleMessageDigest(std::string_view payload);
// SHA-256 of the bundle file's bytes (what audit logs name a bundle by).
std::array<uint8_t, 32> BundleFileDigest(std::string_view bundle_text);

// Who signed a verified bundle.
struct BundleSigner {
  std::string subject;     // RFC 4514-like text from mbedTLS ("CN=..., O=...")
  std::string serial_hex;  // the certificate's serial number, lowercase hex
  std::string issuer;
  std::time_t not_after = 0;
};

struct VerifiedBundle {
  KmsConfig config;  // ParseConfig(payload, ConfigRole::kBundle)
  uint64_t version = 0;
  BundleSigner signer;
  std::array<uint8_t, 32> file_digest{};  // BundleFileDigest(bundle_text)
};

// Verifies a bundle against the provisioning trust anchor `anchor_der` (one
// DER certificate: a v3 CA) at time `now` (the system clock is never read).
// In order, stopping at the first failure:
//   1. the envelope (ParseBundle)                           kInvalidArgument
//   2. the anchor (a CA) and every certificate parse (mbedTLS)
//      with no trailing bytes; intermediates are CAs; each
//      certificates[i + 1] is named as certificates[i]'s
//      issuer                                               kInvalidArgument
//   3. the chain certificates[0] -> [1] -> ... -> anchor
//      (mbedtls_x509_crt_verify, every certificate used once,
//      in order); every certificate of the chain, the anchor
//      included, valid at `now`                             kPermissionDenied
//   4. the signer: keyUsage present with digitalSignature,
//      not a CA, an EC P-256 key                            kPermissionDenied
//   5. the signature over BundleMessageDigest(payload)      kPermissionDenied
//   6. ParseConfig(payload, kBundle), then
//      CheckCertificateDates(config, now); messages start
//      with "payload: "                                     kInvalidArgument
// Messages: "signature: does not verify ...", "certificates[0]: expired on
// 2026-01-31T00:00:00Z", "anchor: not valid before ...", "certificates[0]:
// not issued by the provisioning anchor", "certificates[0]: key usage lacks
// digitalSignature", "certificates[0]: not an EC P-256 key", "payload:
// version: ..." (docs/bundles.md lists them all).
Result<VerifiedBundle> VerifyBundle(std::string_view bundle_text, ByteSpan anchor_der, std::time_t now);

// The DER ECDSA-Sig-Value of a 64-byte r || s signature (PKCS#11 CKM_ECDSA
// output for P-256). kInvalidArgument unless the length is 64 and r and s
// are both in 1..n-1 (n: the order of P-256).
Result<Bytes> EcdsaRawToDer(ByteSpan raw_rs);

// Makes a bundle. `payload` must be a valid bundle configuration
// (ParseConfig(payload, kBundle); refused with "payload: ..." otherwise: a
// bad bundle is never signed). `certificate_chain_der` is the signer's
// certificate then its intermediates (1..4, each issued by the next, the
// signer's usable for bundles as in VerifyBundle step 4). `sign_raw_rs`
// signs a SHA-256 digest with the signer's private key and returns r || s
// (64 bytes). The signature is checked against the signer certificate's
// public key before anything is returned (kFailedPrecondition if the key
// and the certificate do not belong together). Returns SerializeBundle's
// text. Neither the anchor nor the clock is consulted: run VerifyBundle.
Result<std::string> SignBundle(std::string payload,
                               const std::function<Result<Bytes>(ByteSpan digest)>& sign_raw_rs,
                               std::vector<Bytes> certificate_chain_der);

// The provisioning anchor and signer certificates are read from files by
// tkms_pki (firmware/pki/x509.h); tkmsd names the function through this
// header.
using pki::LoadCertificateFile;
using pki::ReadPemOrDerCertificate;

}  // namespace tkms::provisioning
