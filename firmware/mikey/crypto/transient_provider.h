// TransientCryptoProvider: the CryptoProvider for keys that exist only in host
// memory for the duration of a request (PRF outputs: per-message encr/auth/
// salt keys, TEKs, forked keys), implemented with mbedTLS 2.28.
//
// Why: derived MIKEY keys (RFC 3830 §4.1.3/§4.1.4, RFC 6043 §5.1, App. A.2)
// are computed on the host; they need HMAC (RFC 2104) and AES-CM (RFC 3711
// §4.1.1, used by RFC 3830 §4.2.3) without a token round trip. Key bytes are
// held in SecretBytes and wiped when the key is destroyed; mbedTLS contexts
// are freed (and thereby zeroised) after every operation.
//
// Keys are tied to the provider type, not to an instance: a key made by
// MakeKey or by any TransientCryptoProvider works with every
// TransientCryptoProvider. Keys of other providers are refused.
//
// Thread-safety: all member functions may be called concurrently. Hmac, AesCtr,
// ImportTransientKey and SliceKey keep no state; Random reads the kernel's
// CSPRNG through hal::OsEntropy (getrandom(2)): no generator state of its
// own, so it is fork-safe too.
#pragma once

#include <memory>

#include "firmware/mikey/crypto/provider.h"

namespace tkms::mikey::crypto {

class TransientCryptoProvider final : public CryptoProvider {
 public:
  TransientCryptoProvider();
  ~TransientCryptoProvider() override;
  TransientCryptoProvider(const TransientCryptoProvider&) = delete;
  TransientCryptoProvider& operator=(const TransientCryptoProvider&) = delete;

  // A transient key holding a copy of `bytes` (any length, including 0).
  static SecretKeyPtr MakeKey(ByteSpan bytes);

  Result<SecretKeyPtr> ImportTransientKey(ByteSpan bytes) override;
  Result<SecretKeyPtr> SliceKey(const SecretKey& key, size_t offset, size_t len) override;
  Status Hmac(HashAlg alg, const SecretKey& key, std::span<const ByteSpan> parts,
              std::span<uint8_t> out) override;
  Status AesCtr(const SecretKey& key, std::span<const uint8_t, 16> iv, ByteSpan in,
                std::span<uint8_t> out) override;
  Status Random(std::span<uint8_t> out) override;
};

}  // namespace tkms::mikey::crypto
