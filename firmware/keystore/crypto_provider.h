// Pkcs11CryptoProvider: the MIKEY CryptoProvider (firmware/mikey/crypto/
// provider.h) whose long-term keys stay inside the PKCS#11 token.
//
// Why: PSKs and ticket keys feed the MIKEY PRF (RFC 3830 §4.1.2, RFC 6043
// §6.1) and MACs (RFC 3830 §4.2.4), and ticket keys encrypt with AES-CM (RFC
// 3711 §4.1.1); with this provider those operations run in the token:
//   Hmac on a token key    C_SignInit(CKM_SHA_1_HMAC | CKM_SHA256_HMAC) +
//                          C_Sign over the concatenated parts
//   AesCtr on a token key  CKM_AES_CTR with CK_AES_CTR_PARAMS{ulCounterBits
//                          = 128, cb = IV}; where IV + i would pass 2^128
//                          (SoftHSM2 refuses counter wrap with
//                          CKR_DATA_LEN_RANGE) the call is split at the wrap
//                          so the result is SRTP's "IV + i mod 2^128"
//   Random                 C_GenerateRandom on the token
//   SliceKey on token key  kUnimplemented: MIKEY PSKs and ticket keys are at
//                          most 32 bytes, so the PRF never slices them
// Token keys come from Keystore::FindSecretKey; the token side of Hmac and
// AesCtr is Keystore::TokenHmac / TokenAesCtr (token_crypto.cpp). Keys made by
// ImportTransientKey (the per-message keys the PRF derives) are, by design,
// host-memory keys for the duration of one request: they are handled by an
// embedded TransientCryptoProvider (mbedTLS; SecretBytes, wiped on release).
// A token key of another keystore is refused with kInvalidArgument; using an
// HMAC key for AES (or the reverse) gives kFailedPrecondition.
//
// Thread-safety: as the Keystore (every member may be called concurrently).
// No exception escapes; the module is never given a callback of ours.
#pragma once

#include <span>

#include "firmware/mikey/crypto/provider.h"
#include "firmware/mikey/crypto/transient_provider.h"

namespace tkms::keystore {

class Keystore;

class Pkcs11CryptoProvider final : public mikey::crypto::CryptoProvider {
 public:
  explicit Pkcs11CryptoProvider(Keystore& keystore) : keystore_(keystore) {}

  // True if `key` is a token key (of any keystore).
  static bool IsTokenKey(const mikey::crypto::SecretKey& key);

  Result<mikey::crypto::SecretKeyPtr> ImportTransientKey(ByteSpan bytes) override;
  Result<mikey::crypto::SecretKeyPtr> SliceKey(const mikey::crypto::SecretKey& key, size_t offset,
                                               size_t len) override;
  Status Hmac(mikey::crypto::HashAlg alg, const mikey::crypto::SecretKey& key,
              std::span<const ByteSpan> parts, std::span<uint8_t> out) override;
  Status AesCtr(const mikey::crypto::SecretKey& key, std::span<const uint8_t, 16> iv, ByteSpan in,
                std::span<uint8_t> out) override;
  Status Random(std::span<uint8_t> out) override;

 private:
  Keystore& keystore_;
  mikey::crypto::TransientCryptoProvider transient_;
};

}  // namespace tkms::keystore
