#include "firmware/mikey/crypto/mac.h"

#include <string>

#include "firmware/base/secret_bytes.h"

namespace tkms::mikey::crypto {

Result<std::vector<uint8_t>> ComputeMac(CryptoProvider& provider, MacAlg alg,
                                        const SecretKey& auth_key,
                                        std::span<const ByteSpan> parts) {
  HashAlg hash;
  switch (alg) {
    case MacAlg::kNull: return std::vector<uint8_t>();
    case MacAlg::kHmacSha1_160: hash = HashAlg::kSha1; break;
    case MacAlg::kHmacSha256_256: hash = HashAlg::kSha256; break;
    default:
      return InvalidArgument("unknown MAC algorithm " +
                             std::to_string(static_cast<unsigned>(alg)));
  }
  std::vector<uint8_t> mac(DigestLength(hash));
  TKMS_RETURN_IF_ERROR(provider.Hmac(hash, auth_key, parts, mac));
  return mac;
}

Status VerifyMac(CryptoProvider& provider, MacAlg alg, const SecretKey& auth_key,
                 std::span<const ByteSpan> parts, ByteSpan mac) {
  Result<std::vector<uint8_t>> expected = ComputeMac(provider, alg, auth_key, parts);
  if (!expected.ok()) return expected.error();
  if (!ConstantTimeEquals(*expected, mac)) {
    return PermissionDenied("MAC verification failed");
  }
  return Status::Ok();
}

}  // namespace tkms::mikey::crypto
