#include "firmware/mikey/crypto/kemac_cipher.h"

#include <span>
#include <string>

#include "firmware/base/big_endian.h"

namespace tkms::mikey::crypto {
namespace {

constexpr size_t kSaltBytes = 14;

// The checks shared by both directions. Returns the AES key length for
// AES-CM, 0 for NULL.
Result<size_t> CheckCipher(EncrAlg alg, const SecretKey& encr_key, size_t data_size) {
  size_t key_bytes = 0;
  switch (alg) {
    case EncrAlg::kNull: return size_t{0};
    case EncrAlg::kAesCm128: key_bytes = 16; break;
    case EncrAlg::kAesCm256: key_bytes = 32; break;
    case EncrAlg::kAesKw128:
      return Unimplemented(
          "AES-KW-128 KEMAC encryption is not supported (mbedTLS is built without NIST_KW)");
    default:
      return InvalidArgument("unknown KEMAC encryption algorithm " +
                             std::to_string(static_cast<unsigned>(alg)));
  }
  if (encr_key.size() != key_bytes) {
    return InvalidArgument(std::string(EncrAlgName(static_cast<uint8_t>(alg))) + " needs a " +
                           std::to_string(key_bytes) + "-byte encr_key, got " +
                           std::to_string(encr_key.size()));
  }
  if (data_size > kMaxAesCmBytes) {
    return InvalidArgument("KEMAC data exceeds the AES-CM limit of 2^23 bits");
  }
  return key_bytes;
}

}  // namespace

Result<uint64_t> TimestampForIv(TsType type, uint64_t raw_value) {
  switch (type) {
    case TsType::kNtpUtc:
    case TsType::kNtp:
      return raw_value;
    case TsType::kNtpUtc32:
    case TsType::kCounter:
      if (raw_value > 0xFFFFFFFFu) {
        return InvalidArgument("32-bit timestamp value out of range");
      }
      return type == TsType::kNtpUtc32 ? raw_value << 32 : raw_value;
  }
  return InvalidArgument("unknown timestamp type " +
                         std::to_string(static_cast<unsigned>(type)));
}

Result<std::array<uint8_t, 16>> KemacIv(ByteSpan salt_key, uint32_t csb_id, uint64_t ts64) {
  if (salt_key.size() != kSaltBytes) {
    return InvalidArgument("AES-CM salt_key must be 14 bytes, got " +
                           std::to_string(salt_key.size()));
  }
  // 0x0000 || CSB ID || T occupies bytes 0..13; bytes 14..15 stay zero.
  std::array<uint8_t, 16> iv{};
  const std::span<uint8_t, 16> block(iv);
  StoreBe32(csb_id, block.subspan<2, 4>());
  StoreBe64(ts64, block.subspan<6, 8>());
  for (size_t i = 0; i < kSaltBytes; ++i) iv[i] ^= salt_key[i];
  return iv;
}

Result<std::vector<uint8_t>> KemacEncrypt(CryptoProvider& provider, EncrAlg alg,
                                          const SecretKey& encr_key, ByteSpan salt_key,
                                          uint32_t csb_id, uint64_t ts64, ByteSpan plaintext) {
  Result<size_t> key_bytes = CheckCipher(alg, encr_key, plaintext.size());
  if (!key_bytes.ok()) return key_bytes.error();
  if (*key_bytes == 0) return std::vector<uint8_t>(plaintext.begin(), plaintext.end());
  Result<std::array<uint8_t, 16>> iv = KemacIv(salt_key, csb_id, ts64);
  if (!iv.ok()) return iv.error();
  std::vector<uint8_t> out(plaintext.size());
  Status status = provider.AesCtr(encr_key, *iv, plaintext, out);
  SecureWipe(iv->data(), iv->size());
  if (!status.ok()) return status;
  return out;
}

Result<SecretBytes> KemacDecrypt(CryptoProvider& provider, EncrAlg alg,
                                 const SecretKey& encr_key, ByteSpan salt_key, uint32_t csb_id,
                                 uint64_t ts64, ByteSpan ciphertext) {
  Result<size_t> key_bytes = CheckCipher(alg, encr_key, ciphertext.size());
  if (!key_bytes.ok()) return key_bytes.error();
  if (*key_bytes == 0) return ToSecret(ciphertext);
  Result<std::array<uint8_t, 16>> iv = KemacIv(salt_key, csb_id, ts64);
  if (!iv.ok()) return iv.error();
  SecretBytes out(ciphertext.size());
  Status status = provider.AesCtr(encr_key, *iv, ciphertext, out);
  SecureWipe(iv->data(), iv->size());
  if (!status.ok()) return status;
  return out;
}

}  // namespace tkms::mikey::crypto
