// Keys through mbedTLS: see pk.h.
#include "firmware/pki/pk.h"

#include <mbedtls/platform_util.h>

#include <array>
#include <optional>
#include <utility>

#include "firmware/base/printable.h"
#include "firmware/pki/mbedtls_error.h"

namespace tkms::pki {
namespace {

std::optional<mbedtls_ecp_group_id> EcCurve(const mbedtls_pk_context& pk) {
  const mbedtls_pk_type_t type = mbedtls_pk_get_type(&pk);
  if (type != MBEDTLS_PK_ECKEY && type != MBEDTLS_PK_ECKEY_DH && type != MBEDTLS_PK_ECDSA) return std::nullopt;
  const mbedtls_ecp_keypair* ec = mbedtls_pk_ec(pk);
  if (ec == nullptr) return std::nullopt;
  return ec->grp.id;
}

// mbedTLS's key parsers want PEM NUL-terminated, the NUL counted; DER as is.
std::string ForParser(std::string_view pem_or_der) {
  std::string buffer(pem_or_der);
  if (pem_or_der.find("-----BEGIN ") != std::string_view::npos) buffer.push_back('\0');
  return buffer;
}

Status CheckKeySize(std::string_view text) {
  if (text.empty()) return InvalidArgument("the key is empty");
  if (text.size() > kMaxKeyBytes) {
    return InvalidArgument("the key is " + std::to_string(text.size()) + " bytes; at most " +
                           std::to_string(kMaxKeyBytes));
  }
  return Status::Ok();
}

}  // namespace

std::string DescribeKey(const mbedtls_pk_context& pk) {
  if (const auto curve = EcCurve(pk)) {
    switch (*curve) {
      case MBEDTLS_ECP_DP_SECP256R1: return "EC P-256";
      case MBEDTLS_ECP_DP_SECP384R1: return "EC P-384";
      case MBEDTLS_ECP_DP_SECP521R1: return "EC P-521";
      default: break;
    }
    const mbedtls_ecp_curve_info* info = mbedtls_ecp_curve_info_from_grp_id(*curve);
    return std::string("EC ") + (info != nullptr ? Escaped(info->name) : "(unknown curve)");
  }
  if (mbedtls_pk_get_type(&pk) == MBEDTLS_PK_RSA) return "RSA " + std::to_string(mbedtls_pk_get_bitlen(&pk));
  const char* name = mbedtls_pk_get_name(&pk);
  return name != nullptr ? Escaped(name) : "(unknown key type)";
}

bool IsEcP256(const mbedtls_pk_context& pk) { return EcCurve(pk) == MBEDTLS_ECP_DP_SECP256R1; }

void PkContext::Free::operator()(mbedtls_pk_context* pk) const {
  mbedtls_pk_free(pk);
  delete pk;
}

PkContext::PkContext() : pk_(new mbedtls_pk_context) { mbedtls_pk_init(pk_.get()); }
PkContext::~PkContext() = default;
PkContext::PkContext(PkContext&& other) noexcept = default;
PkContext& PkContext::operator=(PkContext&& other) noexcept = default;

bool PkContext::has_key() const { return pk_ && mbedtls_pk_get_type(pk_.get()) != MBEDTLS_PK_NONE; }

std::string PkContext::description() const { return pk_ ? DescribeKey(*pk_) : "(no key)"; }

Result<PkContext> PkContext::EcP256PublicKey(ByteSpan point) {
  if (point.size() != 65 || point[0] != 0x04) {
    return InvalidArgument("an uncompressed EC P-256 point is 65 bytes starting with 04, got " +
                           std::to_string(point.size()) + " bytes");
  }
  PkContext key;
  if (mbedtls_pk_setup(key.native(), mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0) {
    return Internal("mbedTLS cannot set up an EC key");
  }
  mbedtls_ecp_keypair* ec = mbedtls_pk_ec(*key.native());
  if (mbedtls_ecp_group_load(&ec->grp, MBEDTLS_ECP_DP_SECP256R1) != 0) return Internal("mbedTLS lacks P-256");
  if (mbedtls_ecp_point_read_binary(&ec->grp, &ec->Q, point.data(), point.size()) != 0 ||
      mbedtls_ecp_check_pubkey(&ec->grp, &ec->Q) != 0) {
    return InvalidArgument("the point is not on the P-256 curve");
  }
  return key;
}

Result<PkContext> PkContext::ParsePublicKey(std::string_view pem_or_der) {
  TKMS_RETURN_IF_ERROR(CheckKeySize(pem_or_der));
  const std::string buffer = ForParser(pem_or_der);
  PkContext key;
  const int ret = mbedtls_pk_parse_public_key(key.native(), reinterpret_cast<const unsigned char*>(buffer.data()),
                                              buffer.size());
  if (ret != 0) return InvalidArgument("not a public key: " + MbedtlsError(ret));
  return key;
}

Result<std::string> PkContext::PublicKeyPem() {
  if (!has_key()) return FailedPrecondition("no key");
  std::array<unsigned char, 4096> pem{};
  const int ret = mbedtls_pk_write_pubkey_pem(pk_.get(), pem.data(), pem.size());
  if (ret != 0) return Internal("cannot write the public key as PEM: " + MbedtlsError(ret));
  return std::string(reinterpret_cast<const char*>(pem.data()));
}

bool PkContext::Verify(mbedtls_md_type_t md, ByteSpan digest, ByteSpan signature) {
  return has_key() &&
         mbedtls_pk_verify(pk_.get(), md, digest.data(), digest.size(), signature.data(), signature.size()) == 0;
}

}  // namespace tkms::pki
