#include "firmware/keystore/crypto_provider.h"

#include "firmware/keystore/keystore.h"
#include "firmware/keystore/token_key.h"

namespace tkms::keystore {
namespace {

using mikey::crypto::HashAlg;
using mikey::crypto::SecretKey;
using mikey::crypto::SecretKeyPtr;

const TokenSecretKey* AsTokenKey(const SecretKey& key) {
  return dynamic_cast<const TokenSecretKey*>(&key);
}

// Runs `fn`, turning any exception into kInternal (nothing escapes).
template <typename Fn>
auto Guarded(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (...) {
    return Internal("unexpected exception in the PKCS#11 crypto provider");
  }
}

}  // namespace

bool Pkcs11CryptoProvider::IsTokenKey(const SecretKey& key) { return AsTokenKey(key) != nullptr; }

Result<SecretKeyPtr> Pkcs11CryptoProvider::ImportTransientKey(ByteSpan bytes) {
  return Guarded([&]() -> Result<SecretKeyPtr> { return transient_.ImportTransientKey(bytes); });
}

Result<SecretKeyPtr> Pkcs11CryptoProvider::SliceKey(const SecretKey& key, size_t offset,
                                                    size_t len) {
  return Guarded([&]() -> Result<SecretKeyPtr> {
    if (AsTokenKey(key) != nullptr) {
      return Unimplemented("token keys cannot be sliced (MIKEY token keys are at most 32 bytes)");
    }
    return transient_.SliceKey(key, offset, len);
  });
}

Status Pkcs11CryptoProvider::Hmac(HashAlg alg, const SecretKey& key,
                                  std::span<const ByteSpan> parts, std::span<uint8_t> out) {
  return Guarded([&]() -> Status {
    if (const TokenSecretKey* token_key = AsTokenKey(key)) {
      if (token_key->owner() != &keystore_) {
        return InvalidArgument("key belongs to another keystore");
      }
      return keystore_.TokenHmac(*token_key, alg, parts, out);
    }
    return transient_.Hmac(alg, key, parts, out);
  });
}

Status Pkcs11CryptoProvider::AesCtr(const SecretKey& key, std::span<const uint8_t, 16> iv,
                                    ByteSpan in, std::span<uint8_t> out) {
  return Guarded([&]() -> Status {
    if (const TokenSecretKey* token_key = AsTokenKey(key)) {
      if (token_key->owner() != &keystore_) {
        return InvalidArgument("key belongs to another keystore");
      }
      return keystore_.TokenAesCtr(*token_key, iv, in, out);
    }
    return transient_.AesCtr(key, iv, in, out);
  });
}

Status Pkcs11CryptoProvider::Random(std::span<uint8_t> out) {
  return Guarded([&]() -> Status { return keystore_.GenerateRandom(out); });
}

}  // namespace tkms::keystore
