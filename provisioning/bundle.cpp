// Signed configuration bundles: verifying and signing (bundle.h,
// docs/bundles.md). The envelope is read by bundle_envelope.cpp, the
// certificates and the chain are checked by bundle_chain.cpp; this file runs
// the steps in order. mbedTLS objects are owned by tkms_pki; every public
// function catches allocation failure (internal::Guard).
#include "provisioning/bundle.h"

#include <mbedtls/md.h>
#include <mbedtls/x509.h>

#include <utility>

#include "provisioning/bundle_internal.h"

namespace tkms::provisioning {
namespace {

using namespace internal;  // NOLINT: the verification steps, in this file only

// The signer's key (certificates[0]) verifies `der` over `digest`.
bool SignatureVerifies(pki::X509Chain& certificates, const std::array<uint8_t, 32>& digest, ByteSpan der) {
  mbedtls_pk_context& key = certificates.native()->pk;
  return mbedtls_pk_verify(&key, MBEDTLS_MD_SHA256, digest.data(), digest.size(), der.data(), der.size()) == 0;
}

Status AddPayloadPrefix(const Status& status) {
  return Status(status.code(), "payload: " + status.message());
}

Result<VerifiedBundle> VerifyBundleUnchecked(std::string_view bundle_text, ByteSpan anchor_der, std::time_t now) {
  auto bundle = ParseEnvelope(bundle_text);
  if (!bundle.ok()) return bundle.error();

  pki::X509Chain anchor;
  TKMS_RETURN_IF_ERROR(anchor.AddDer(anchor_der, "anchor"));
  const pki::CertificateRef anchor_crt = anchor.front();
  if (anchor_crt.version() != 3 || !anchor_crt.is_ca()) {
    return InvalidField("anchor", "not a CA certificate (X.509 v3 with basicConstraints cA)");
  }
  if (anchor_crt.has_key_usage_extension() && !anchor_crt.has_key_usage(MBEDTLS_X509_KU_KEY_CERT_SIGN)) {
    return InvalidField("anchor", "key usage lacks keyCertSign (it has " + anchor_crt.key_usage_text() + ")");
  }
  pki::X509Chain certificates;
  TKMS_RETURN_IF_ERROR(ParseCertificates(bundle->certificates, certificates));
  TKMS_RETURN_IF_ERROR(CheckIntermediates(certificates));
  TKMS_RETURN_IF_ERROR(CheckChainOrder(certificates));
  TKMS_RETURN_IF_ERROR(VerifyChain(certificates, anchor, now));

  const pki::CertificateRef signer = certificates.front();
  TKMS_RETURN_IF_ERROR(CheckSigner(signer));
  if (!SignatureVerifies(certificates, BundleMessageDigest(bundle->payload), bundle->signature)) {
    return DeniedField("signature", "does not verify with the key of certificates[0] (another signer, or the payload "
                               "or the signature was changed)");
  }

  auto config = ParseConfig(bundle->payload, ConfigRole::kBundle);
  if (!config.ok()) return AddPayloadPrefix(config.error());
  if (Status dates = CheckCertificateDates(*config, now); !dates.ok()) return AddPayloadPrefix(dates);

  VerifiedBundle verified;
  verified.version = config->version;
  verified.config = std::move(*config);
  verified.signer.subject = signer.subject();
  verified.signer.issuer = signer.issuer();
  verified.signer.serial_hex = signer.serial_hex();
  verified.signer.not_after = signer.not_after();
  verified.file_digest = BundleFileDigest(bundle_text);
  return verified;
}

Result<std::string> SignBundleUnchecked(std::string payload,
                                        const std::function<Result<Bytes>(ByteSpan digest)>& sign_raw_rs,
                                        std::vector<Bytes> chain) {
  if (payload.empty()) return InvalidField("payload", "is empty");
  if (payload.size() > kMaxConfigBytes) {
    return InvalidField("payload", "is " + std::to_string(payload.size()) + " bytes; at most " +
                                  std::to_string(kMaxConfigBytes) + " (kMaxConfigBytes)");
  }
  auto config = ParseConfig(payload, ConfigRole::kBundle);
  if (!config.ok()) return AddPayloadPrefix(config.error());

  if (chain.empty()) return InvalidField("certificates", "the signer's certificate is required");
  if (chain.size() > kMaxBundleCertificates) {
    return InvalidField("certificates", std::to_string(chain.size()) + " certificates; at most " +
                                       std::to_string(kMaxBundleCertificates) + " (the signer's and " +
                                       std::to_string(kMaxBundleCertificates - 1) + " intermediates)");
  }
  pki::X509Chain certificates;
  TKMS_RETURN_IF_ERROR(ParseCertificates(chain, certificates));
  TKMS_RETURN_IF_ERROR(CheckIntermediates(certificates));
  TKMS_RETURN_IF_ERROR(CheckChainOrder(certificates));
  if (Status s = CheckSigner(certificates.front()); !s.ok()) return InvalidArgument(s.message());

  const std::array<uint8_t, 32> digest = BundleMessageDigest(payload);
  auto raw = sign_raw_rs(digest);
  if (!raw.ok()) return Status(raw.error().code(), "signing the bundle digest failed: " + raw.error().message());
  auto der = EcdsaRawToDer(*raw);
  if (!der.ok()) return Status(der.error().code(), "the signer returned an unusable signature: " + der.error().message());
  if (!SignatureVerifies(certificates, digest, *der)) {
    return FailedPrecondition(
        "the signature does not verify with the public key of certificates[0]: the signing key is not the key "
        "that certificate was issued for");
  }
  Bundle bundle;
  bundle.payload = std::move(payload);
  bundle.signature = std::move(*der);
  bundle.certificates = std::move(chain);
  std::string text = SerializeBundle(bundle);
  auto again = ParseEnvelope(text);
  if (!again.ok() || !(*again == bundle)) return Internal("the serialised bundle does not parse back");
  return text;
}

}  // namespace

Result<VerifiedBundle> VerifyBundle(std::string_view bundle_text, ByteSpan anchor_der, std::time_t now) {
  return Guard<VerifiedBundle>("bundle", [&] { return VerifyBundleUnchecked(bundle_text, anchor_der, now); });
}

Result<std::string> SignBundle(std::string payload, const std::function<Result<Bytes>(ByteSpan digest)>& sign_raw_rs,
                               std::vector<Bytes> certificate_chain_der) {
  return Guard<std::string>("bundle", [&] {
    return SignBundleUnchecked(std::move(payload), sign_raw_rs, std::move(certificate_chain_der));
  });
}

}  // namespace tkms::provisioning
