// PkContext::RsaAlt: an mbedTLS RSA private key whose operations run
// elsewhere (see pk.h). mbedTLS 2.28's rsa_alt hooks (mbedtls_pk_setup_rsa_alt)
// are C callbacks: each one catches everything and answers with an mbedTLS
// error code, so no exception crosses into mbedTLS.
#include <mbedtls/rsa.h>

#include <cstring>
#include <utility>

#include "firmware/pki/pk.h"

namespace tkms::pki {
namespace {

// Bounds of the moduli RsaAlt accepts: RSA-2048 (the TLS key) to RSA-4096.
constexpr size_t kMinModulusBytes = 256;
constexpr size_t kMaxModulusBytes = 512;
static_assert(kMaxModulusBytes <= MBEDTLS_PK_SIGNATURE_MAX_SIZE, "mbedTLS's signature buffers are too small");

// mbedtls_pk_rsa_alt_sign_func. mbedTLS hands `sig` a buffer of at least
// the key length (rsa_alt_sign_wrap sets *sig_len from key_len first).
int RsaAltSign(void* context, int (*/*f_rng*/)(void*, unsigned char*, size_t), void* /*p_rng*/, int mode,
               mbedtls_md_type_t md, unsigned int hash_length, const unsigned char* hash,
               unsigned char* sig) noexcept {
  try {
    auto* signer = static_cast<RsaSigner*>(context);
    if (signer == nullptr || hash == nullptr || sig == nullptr || mode != MBEDTLS_RSA_PRIVATE) {
      return MBEDTLS_ERR_RSA_BAD_INPUT_DATA;
    }
    const mbedtls_md_info_t* info = mbedtls_md_info_from_type(md);
    if (!IsRsaAltDigest(md) || info == nullptr || hash_length != mbedtls_md_get_size(info)) {
      return MBEDTLS_ERR_RSA_BAD_INPUT_DATA;
    }
    Result<Bytes> signature = signer->SignPkcs1v15(md, ByteSpan(hash, hash_length));
    if (!signature.ok() || signature->size() != signer->ModulusBytes()) return MBEDTLS_ERR_RSA_PRIVATE_FAILED;
    std::memcpy(sig, signature->data(), signature->size());
    return 0;
  } catch (...) {
    return MBEDTLS_ERR_RSA_PRIVATE_FAILED;
  }
}

// mbedtls_pk_rsa_alt_decrypt_func: only static-RSA key exchange decrypts,
// and tls_policy offers none; the token key has CKA_DECRYPT = FALSE anyway.
int RsaAltDecrypt(void* /*context*/, int /*mode*/, size_t* olen, const unsigned char* /*input*/,
                  unsigned char* /*output*/, size_t /*output_max_len*/) noexcept {
  if (olen != nullptr) *olen = 0;
  return MBEDTLS_ERR_RSA_UNSUPPORTED_OPERATION;
}

// mbedtls_pk_rsa_alt_key_len_func: the modulus length in bytes.
size_t RsaAltKeyLength(void* context) noexcept {
  try {
    auto* signer = static_cast<RsaSigner*>(context);
    return signer == nullptr ? 0 : signer->ModulusBytes();
  } catch (...) {
    return 0;
  }
}

}  // namespace

bool IsRsaAltDigest(mbedtls_md_type_t md) {
  return md == MBEDTLS_MD_SHA256 || md == MBEDTLS_MD_SHA384 || md == MBEDTLS_MD_SHA512;
}

Result<PkContext> PkContext::RsaAlt(std::shared_ptr<RsaSigner> signer) {
  if (signer == nullptr) return InvalidArgument("no RSA signer");
  const size_t modulus = signer->ModulusBytes();
  if (modulus < kMinModulusBytes || modulus > kMaxModulusBytes) {
    return InvalidArgument("an RSA signer for a " + std::to_string(modulus * 8) +
                           "-bit modulus; 2048 to 4096 bits expected");
  }
  PkContext key;
  const int ret = mbedtls_pk_setup_rsa_alt(key.native(), signer.get(), RsaAltDecrypt, RsaAltSign, RsaAltKeyLength);
  if (ret != 0) return Internal("mbedtls_pk_setup_rsa_alt failed");
  key.signer_ = std::move(signer);
  return key;
}

}  // namespace tkms::pki
