// Keys through mbedTLS: see pk.h.
#include "firmware/pki/pk.h"

#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <utility>

#include "firmware/base/printable.h"
#include "firmware/pki/contexts.h"
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
PkContext& PkContext::operator=(PkContext&& other) noexcept {
  // The context first: an rsa_alt context must not outlive its signer.
  pk_ = std::move(other.pk_);
  signer_ = std::move(other.signer_);
  return *this;
}

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

Result<PkContext> PkContext::RsaPublicKey(ByteSpan modulus, ByteSpan exponent) {
  if (modulus.empty() || exponent.empty() || modulus.size() > 1024 || exponent.size() > 1024) {
    return InvalidArgument("an RSA public key needs a modulus and an exponent of 1 to 1024 bytes");
  }
  PkContext key;
  if (mbedtls_pk_setup(key.native(), mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)) != 0) {
    return Internal("mbedTLS cannot set up an RSA key");
  }
  mbedtls_rsa_context* rsa = mbedtls_pk_rsa(*key.native());
  if (mbedtls_rsa_import_raw(rsa, modulus.data(), modulus.size(), nullptr, 0, nullptr, 0, nullptr, 0,
                             exponent.data(), exponent.size()) != 0 ||
      mbedtls_rsa_complete(rsa) != 0 || mbedtls_rsa_check_pubkey(rsa) != 0) {
    return InvalidArgument("not an RSA public key (modulus and exponent refused by mbedTLS)");
  }
  const size_t bits = mbedtls_pk_get_bitlen(key.native());
  if (bits < 2048 || bits > 4096) {
    return InvalidArgument("an RSA key of " + std::to_string(bits) + " bits; 2048 to 4096 expected");
  }
  return key;
}

Result<Bytes> PkContext::PublicKeyDer() {
  if (!has_key()) return FailedPrecondition("no key");
  std::array<unsigned char, 4096> der{};
  const int ret = mbedtls_pk_write_pubkey_der(pk_.get(), der.data(), der.size());
  if (ret <= 0) return InvalidArgument("cannot write the public key: " + MbedtlsError(ret));
  // mbedTLS writes at the end of the buffer.
  return Bytes(der.end() - ret, der.end());
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

Result<bool> CertificateMatchesKey(CertificateRef certificate, PkContext& public_key) {
  Result<Bytes> ours = public_key.PublicKeyDer();
  if (!ours.ok()) return ours.error();
  std::array<unsigned char, 4096> der{};
  // mbedTLS 2.28 takes a non-const context; writing does not change it.
  auto* pk = const_cast<mbedtls_pk_context*>(&certificate.native().pk);
  const int ret = mbedtls_pk_write_pubkey_der(pk, der.data(), der.size());
  if (ret <= 0) return InvalidArgument("cannot write the certificate's public key: " + MbedtlsError(ret));
  const ByteSpan theirs(der.end() - ret, der.end());
  return theirs.size() == ours->size() && std::equal(theirs.begin(), theirs.end(), ours->begin());
}

Status CheckKeyPair(PkContext& private_key, PkContext& public_key) {
  if (!private_key.has_key() || !public_key.has_key()) return FailedPrecondition("no key");
  Sha256 sha;
  sha.Update(std::string_view("tkms key pair check"));
  const std::array<uint8_t, 32> digest = sha.Finish();
  std::array<unsigned char, MBEDTLS_PK_SIGNATURE_MAX_SIZE> signature{};
  size_t length = 0;
  const int ret = mbedtls_pk_sign(private_key.native(), MBEDTLS_MD_SHA256, digest.data(), digest.size(),
                                  signature.data(), &length, nullptr, nullptr);
  if (ret != 0) return Unavailable("the private key cannot sign: " + MbedtlsError(ret));
  if (!public_key.Verify(MBEDTLS_MD_SHA256, digest, ByteSpan(signature.data(), length))) {
    return FailedPrecondition("the keys do not form a pair (" + private_key.description() + " / " +
                              public_key.description() + ")");
  }
  return Status::Ok();
}

}  // namespace tkms::pki
