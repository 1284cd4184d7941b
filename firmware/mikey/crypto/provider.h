// CryptoProvider: the interface through which all MIKEY cryptography runs.
//
// Why: the same MIKEY code must work with long-term keys held in a PKCS#11
// token (PSKs, TPKs: the key bytes never leave the token) and with transient
// in-memory keys derived per message (TransientCryptoProvider, mbedTLS). The
// operations are exactly those MIKEY needs: HMAC-SHA-1/-256 for the PRF of
// RFC 3830 §4.1.2 / RFC 6043 §6.1 and the MACs of RFC 3830 §4.2.4, and AES in
// SRTP counter mode (RFC 3711 §4.1.1) for KEMAC encryption (RFC 3830 §4.2.3).
//
// Rules for every implementation: error messages never contain key bytes; a
// SecretKey created by a different provider (type) is a programming error and
// is refused with kInvalidArgument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"

namespace tkms::mikey::crypto {

enum class HashAlg : uint8_t { kSha1, kSha256 };

// 20 for SHA-1, 32 for SHA-256.
size_t DigestLength(HashAlg alg);

// A symmetric key owned by one provider. Only its length is visible.
class SecretKey {
 public:
  virtual ~SecretKey() = default;
  // Length of the key in bytes.
  virtual size_t size() const = 0;
};
using SecretKeyPtr = std::unique_ptr<SecretKey>;

class CryptoProvider {
 public:
  virtual ~CryptoProvider() = default;

  // Wraps transient key bytes (derived per-message keys) as a key of this
  // provider.
  virtual Result<SecretKeyPtr> ImportTransientKey(ByteSpan bytes) = 0;

  // A key made of bytes [offset, offset+len) of `key` (needed by the PRF for
  // inkeys longer than 256 bits). len must be > 0 and the range inside the
  // key. Token providers may refuse with kUnimplemented.
  virtual Result<SecretKeyPtr> SliceKey(const SecretKey& key, size_t offset, size_t len) = 0;

  // HMAC over the concatenation of `parts`; out.size() must equal
  // DigestLength(alg).
  virtual Status Hmac(HashAlg alg, const SecretKey& key, std::span<const ByteSpan> parts,
                      std::span<uint8_t> out) = 0;

  // AES in counter mode as SRTP AES-CM (RFC 3711 §4.1.1): keystream block i
  // is AES(key, IV + i) with 128-bit big-endian addition (wrapping mod 2^128).
  // Key 16 or 32 bytes; out.size() must equal in.size(); out may be the same
  // memory as in (in-place), but must not otherwise overlap it.
  virtual Status AesCtr(const SecretKey& key, std::span<const uint8_t, 16> iv, ByteSpan in,
                        std::span<uint8_t> out) = 0;

  // Fills `out` from a cryptographically secure generator.
  virtual Status Random(std::span<uint8_t> out) = 0;
};

}  // namespace tkms::mikey::crypto
