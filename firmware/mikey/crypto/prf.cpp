#include "firmware/mikey/crypto/prf.h"

#include <algorithm>
#include <string>

namespace tkms::mikey::crypto {
namespace {

// Inkey chunk size of RFC 3830 §4.1.2 ("256 bits"), kept by RFC 6043 §6.1.
constexpr size_t kChunkBytes = 32;

// XORs P(s, label, m) into out (whose size fixes m = ceil(size / digest)).
Status XorPFunction(CryptoProvider& provider, HashAlg hash, const SecretKey& s, ByteSpan label,
                    std::span<uint8_t> out) {
  const size_t digest = DigestLength(hash);
  SecretBytes a(digest);         // A_i
  SecretBytes previous_a(label.begin(), label.end());  // A_0 = label
  SecretBytes block(digest);     // HMAC(s, A_i || label)
  for (size_t pos = 0; pos < out.size(); pos += digest) {
    const ByteSpan a_parts[] = {previous_a};
    TKMS_RETURN_IF_ERROR(provider.Hmac(hash, s, a_parts, a));
    previous_a.assign(a.begin(), a.end());
    const ByteSpan block_parts[] = {a, label};
    TKMS_RETURN_IF_ERROR(provider.Hmac(hash, s, block_parts, block));
    const size_t take = std::min(digest, out.size() - pos);
    for (size_t i = 0; i < take; ++i) out[pos + i] ^= block[i];
  }
  return Status::Ok();
}

}  // namespace

Result<HashAlg> PrfHash(PrfFunc prf) {
  switch (prf) {
    case PrfFunc::kMikey1: return HashAlg::kSha1;
    case PrfFunc::kHmacSha256: return HashAlg::kSha256;
  }
  return InvalidArgument("unknown PRF func " + std::to_string(static_cast<unsigned>(prf)));
}

Result<SecretBytes> Prf(CryptoProvider& provider, PrfFunc prf, const SecretKey& inkey,
                        ByteSpan label, size_t outkey_bytes) {
  Result<HashAlg> hash = PrfHash(prf);
  if (!hash.ok()) return hash.error();
  if (inkey.size() == 0) return InvalidArgument("PRF inkey is empty");
  if (outkey_bytes == 0) return InvalidArgument("PRF output length is zero");

  SecretBytes out(outkey_bytes, 0);
  if (inkey.size() <= kChunkBytes) {
    TKMS_RETURN_IF_ERROR(XorPFunction(provider, *hash, inkey, label, out));
    return out;
  }
  for (size_t offset = 0; offset < inkey.size(); offset += kChunkBytes) {
    const size_t len = std::min(kChunkBytes, inkey.size() - offset);
    Result<SecretKeyPtr> chunk = provider.SliceKey(inkey, offset, len);
    if (!chunk.ok()) return chunk.error();
    TKMS_RETURN_IF_ERROR(XorPFunction(provider, *hash, **chunk, label, out));
  }
  return out;
}

}  // namespace tkms::mikey::crypto
