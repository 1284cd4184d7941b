// Steps 2 to 4 of bundle verification (bundle.h, docs/bundles.md
// "Verification"): the certificates, the chain to the provisioning anchor at
// the appliance's time, and the signer. mbedTLS verifies the chain; its
// verify callback replaces mbedTLS's validity verdict (made with the system
// clock) by one made at `now`, and records the chain it built so that each
// refusal can name the certificate concerned.
#include <algorithm>
#include <array>
#include <cstdio>

#include <mbedtls/x509.h>

#include "firmware/pki/mbedtls_error.h"
#include "provisioning/bundle_internal.h"

namespace tkms::provisioning::internal {
namespace {

constexpr size_t kMaxChainRecords = 16;  // > MBEDTLS_X509_MAX_INTERMEDIATE_CA + 2

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
  if (ctx->now < pki::ToTimeT(crt->valid_from)) *flags |= MBEDTLS_X509_BADCERT_FUTURE;
  if (ctx->now > pki::ToTimeT(crt->valid_to)) *flags |= MBEDTLS_X509_BADCERT_EXPIRED;
  if (depth < 0 || static_cast<size_t>(depth) >= ctx->records.size()) {
    ctx->overflow = true;
    return 0;
  }
  const auto index = static_cast<size_t>(depth);
  ctx->records[index] = ChainRecord{crt, *flags};
  ctx->depth_count = std::max(ctx->depth_count, index + 1);
  return 0;
}

}  // namespace

// Checks the chain certificates[0] -> ... -> anchor at `now`.
Status VerifyChain(pki::X509Chain& certificates, pki::X509Chain& anchor, std::time_t now) {
  ChainContext ctx;
  ctx.now = now;
  uint32_t flags = 0;
  const int ret = mbedtls_x509_crt_verify_with_profile(certificates.native(), anchor.native(), nullptr, &kChainProfile,
                                                       nullptr, &flags, VerifyCallback, &ctx);
  if ((ret != 0 && ret != MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) || ctx.overflow || ctx.depth_count == 0) {
    return DeniedField("certificates", "the chain cannot be verified: " +
                                      (ret != 0 ? pki::MbedtlsError(ret) : std::string("no certificate was checked")));
  }
  auto name = [&](const mbedtls_x509_crt* crt) -> std::string {
    if (crt == anchor.node(0)) return "anchor";
    for (size_t i = 0; i < certificates.size(); ++i) {
      if (crt == certificates.node(i)) return IndexName("certificates", i);
    }
    return "a certificate of the chain";
  };
  const size_t depths = ctx.depth_count;
  // 1. A certificate whose issuer is neither the anchor nor the next
  //    certificate (or whose issuer's signature on it does not verify).
  for (size_t d = 0; d < depths; ++d) {
    if ((ctx.records[d].flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) != 0) {
      return DeniedField(name(ctx.records[d].crt), "not issued by the provisioning anchor");
    }
  }
  // 2. The chain mbedTLS built is exactly certificates[0..n-1] then the anchor.
  for (size_t i = 0; i < certificates.size(); ++i) {
    if (i + 1 < depths && ctx.records[i].crt == certificates.node(i)) continue;
    bool used = false;
    for (size_t d = 0; d < depths; ++d) used = used || ctx.records[d].crt == certificates.node(i);
    return DeniedField(IndexName("certificates", i),
                  used ? "out of order: each certificate must be followed by its issuer"
                       : "not part of the chain from certificates[0] to the anchor (remove it)");
  }
  if (depths != certificates.size() + 1 || ctx.records[depths - 1].crt != anchor.node(0)) {
    return DeniedField("certificates", "the chain does not end at the provisioning anchor");
  }
  // 3. Validity at `now`, from the signer up.
  for (size_t d = 0; d < depths; ++d) {
    const mbedtls_x509_crt& crt = *ctx.records[d].crt;
    if ((ctx.records[d].flags & MBEDTLS_X509_BADCERT_EXPIRED) != 0) {
      return DeniedField(name(&crt), "expired on " + pki::FormatUtcTime(pki::ToTimeT(crt.valid_to)));
    }
    if ((ctx.records[d].flags & MBEDTLS_X509_BADCERT_FUTURE) != 0) {
      return DeniedField(name(&crt), "not valid before " + pki::FormatUtcTime(pki::ToTimeT(crt.valid_from)));
    }
  }
  // 4. Anything else mbedTLS objected to.
  for (size_t d = 0; d < depths; ++d) {
    const uint32_t f = ctx.records[d].flags;
    if (f == 0) continue;
    const std::string who = name(ctx.records[d].crt);
    if ((f & MBEDTLS_X509_BADCERT_BAD_MD) != 0) {
      return DeniedField(who, "signed with a hash other than SHA-256, SHA-384 or SHA-512");
    }
    if ((f & MBEDTLS_X509_BADCERT_BAD_PK) != 0) return DeniedField(who, "signed with a key type other than EC or RSA");
    if ((f & MBEDTLS_X509_BADCERT_BAD_KEY) != 0) {
      return DeniedField(who, "its key or its issuer's key is too weak (EC P-256/P-384/P-521, RSA >= 2048)");
    }
    char hex[16];
    std::snprintf(hex, sizeof(hex), "0x%x", static_cast<unsigned>(f));
    return DeniedField(who, std::string("refused by the chain verification (mbedTLS flags ") + hex + ")");
  }
  if (ret != 0) return DeniedField("certificates", "the chain does not verify: " + pki::MbedtlsError(ret));
  return Status::Ok();
}

Status CheckSigner(pki::CertificateRef signer) {
  if (!signer.has_key_usage_extension()) {
    return DeniedField("certificates[0]", "key usage lacks digitalSignature (no keyUsage extension)");
  }
  if (!signer.has_key_usage(MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) {
    return DeniedField("certificates[0]", "key usage lacks digitalSignature (it has " + signer.key_usage_text() + ")");
  }
  if (signer.is_ca()) {
    return DeniedField("certificates[0]", "is a CA certificate; bundles are signed with an end-entity certificate");
  }
  if (!signer.has_ec_p256_key()) {
    return DeniedField("certificates[0]", "not an EC P-256 key (" + signer.key_description() + ")");
  }
  return Status::Ok();
}

Status CheckIntermediates(const pki::X509Chain& certificates) {
  for (size_t i = 1; i < certificates.size(); ++i) {
    const pki::CertificateRef crt = certificates.at(i);
    const std::string field = IndexName("certificates", i);
    if (!crt.is_ca()) return InvalidField(field, "not a CA certificate (an intermediate needs basicConstraints cA)");
    if (crt.has_key_usage_extension() && !crt.has_key_usage(MBEDTLS_X509_KU_KEY_CERT_SIGN)) {
      return InvalidField(field, "key usage lacks keyCertSign (it has " + crt.key_usage_text() + ")");
    }
  }
  return Status::Ok();
}

// By the encoded name: mbedTLS looks for an intermediate's issuer only after
// it in the list.
Status CheckChainOrder(const pki::X509Chain& certificates) {
  for (size_t i = 0; i + 1 < certificates.size(); ++i) {
    const ByteSpan issuer = certificates.at(i).issuer_raw();
    const ByteSpan parent = certificates.at(i + 1).subject_raw();
    if (!std::equal(issuer.begin(), issuer.end(), parent.begin(), parent.end())) {
      return InvalidField(IndexName("certificates", i + 1), "is not the issuer of " + IndexName("certificates", i) +
                                                                " (the chain goes from the signer up to the anchor)");
    }
  }
  return Status::Ok();
}

Status ParseCertificates(const std::vector<Bytes>& der, pki::X509Chain& out) {
  for (size_t i = 0; i < der.size(); ++i) TKMS_RETURN_IF_ERROR(out.AddDer(der[i], IndexName("certificates", i)));
  return Status::Ok();
}

}  // namespace tkms::provisioning::internal
