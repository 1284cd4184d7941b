#include "firmware/mikey/crypto/transient_provider.h"

#include <mbedtls/aes.h>
#include <mbedtls/md.h>

#include <algorithm>
#include <array>
#include <string>

#include "firmware/base/secret_bytes.h"
#include "hal/entropy.h"

namespace tkms::mikey::crypto {
namespace {

class TransientKey final : public SecretKey {
 public:
  explicit TransientKey(ByteSpan bytes) : bytes_(ToSecret(bytes)) {}
  size_t size() const override { return bytes_.size(); }
  ByteSpan bytes() const { return bytes_; }

 private:
  SecretBytes bytes_;
};

// The key's bytes, or nullptr if the key belongs to another provider.
const TransientKey* AsTransient(const SecretKey& key) {
  return dynamic_cast<const TransientKey*>(&key);
}

Status ForeignKey() {
  return InvalidArgument("key does not belong to the transient crypto provider");
}

// mbedTLS error codes are negative ints; they are not secret.
Status MbedError(const char* what, int rc) {
  return Internal(std::string(what) + " failed (mbedTLS error " + std::to_string(rc) + ")");
}

class MdContext {
 public:
  MdContext() { mbedtls_md_init(&ctx_); }
  ~MdContext() { mbedtls_md_free(&ctx_); }  // zeroises the HMAC pads
  MdContext(const MdContext&) = delete;
  MdContext& operator=(const MdContext&) = delete;
  mbedtls_md_context_t* get() { return &ctx_; }

 private:
  mbedtls_md_context_t ctx_;
};

class AesContext {
 public:
  AesContext() { mbedtls_aes_init(&ctx_); }
  ~AesContext() { mbedtls_aes_free(&ctx_); }  // zeroises the key schedule
  AesContext(const AesContext&) = delete;
  AesContext& operator=(const AesContext&) = delete;
  mbedtls_aes_context* get() { return &ctx_; }

 private:
  mbedtls_aes_context ctx_;
};

}  // namespace

TransientCryptoProvider::TransientCryptoProvider() = default;
TransientCryptoProvider::~TransientCryptoProvider() = default;

SecretKeyPtr TransientCryptoProvider::MakeKey(ByteSpan bytes) {
  return std::make_unique<TransientKey>(bytes);
}

Result<SecretKeyPtr> TransientCryptoProvider::ImportTransientKey(ByteSpan bytes) {
  return MakeKey(bytes);
}

Result<SecretKeyPtr> TransientCryptoProvider::SliceKey(const SecretKey& key, size_t offset,
                                                       size_t len) {
  const TransientKey* k = AsTransient(key);
  if (k == nullptr) return ForeignKey();
  if (len == 0 || offset > k->size() || len > k->size() - offset) {
    return InvalidArgument("key slice [" + std::to_string(offset) + ", +" + std::to_string(len) +
                           ") is outside a " + std::to_string(k->size()) + "-byte key");
  }
  return MakeKey(k->bytes().subspan(offset, len));
}

Status TransientCryptoProvider::Hmac(HashAlg alg, const SecretKey& key,
                                     std::span<const ByteSpan> parts, std::span<uint8_t> out) {
  const TransientKey* k = AsTransient(key);
  if (k == nullptr) return ForeignKey();
  mbedtls_md_type_t type;
  switch (alg) {
    case HashAlg::kSha1: type = MBEDTLS_MD_SHA1; break;
    case HashAlg::kSha256: type = MBEDTLS_MD_SHA256; break;
    default: return InvalidArgument("unknown hash algorithm");
  }
  if (out.size() != DigestLength(alg)) {
    return InvalidArgument("HMAC output buffer has " + std::to_string(out.size()) +
                           " bytes, expected " + std::to_string(DigestLength(alg)));
  }
  const mbedtls_md_info_t* info = mbedtls_md_info_from_type(type);
  if (info == nullptr) return Internal("mbedTLS lacks the requested hash");
  MdContext ctx;
  int rc = mbedtls_md_setup(ctx.get(), info, /*hmac=*/1);
  if (rc != 0) return MbedError("mbedtls_md_setup", rc);
  rc = mbedtls_md_hmac_starts(ctx.get(), k->bytes().data(), k->size());
  if (rc != 0) return MbedError("mbedtls_md_hmac_starts", rc);
  for (ByteSpan part : parts) {
    if (part.empty()) continue;
    rc = mbedtls_md_hmac_update(ctx.get(), part.data(), part.size());
    if (rc != 0) return MbedError("mbedtls_md_hmac_update", rc);
  }
  rc = mbedtls_md_hmac_finish(ctx.get(), out.data());
  if (rc != 0) return MbedError("mbedtls_md_hmac_finish", rc);
  return Status::Ok();
}

Status TransientCryptoProvider::AesCtr(const SecretKey& key, std::span<const uint8_t, 16> iv,
                                       ByteSpan in, std::span<uint8_t> out) {
  const TransientKey* k = AsTransient(key);
  if (k == nullptr) return ForeignKey();
  if (k->size() != 16 && k->size() != 32) {
    return InvalidArgument("AES-CM key must be 16 or 32 bytes, got " + std::to_string(k->size()));
  }
  if (out.size() != in.size()) {
    return InvalidArgument("AES-CM output size differs from input size");
  }
  if (in.empty()) return Status::Ok();
  const bool same = in.data() == out.data();
  const bool overlap = in.data() < out.data() + out.size() && out.data() < in.data() + in.size();
  if (overlap && !same) return InvalidArgument("AES-CM buffers overlap partially");

  AesContext ctx;
  int rc = mbedtls_aes_setkey_enc(ctx.get(), k->bytes().data(),
                                  static_cast<unsigned int>(k->size() * 8));
  if (rc != 0) return MbedError("mbedtls_aes_setkey_enc", rc);
  // mbedtls_aes_crypt_ctr increments the whole 16-byte counter block as one
  // big-endian integer, which is exactly SRTP's IV + i.
  std::array<uint8_t, 16> counter;
  std::copy(iv.begin(), iv.end(), counter.begin());
  std::array<uint8_t, 16> stream_block{};
  size_t stream_offset = 0;
  rc = mbedtls_aes_crypt_ctr(ctx.get(), in.size(), &stream_offset, counter.data(),
                             stream_block.data(), in.data(), out.data());
  SecureWipe(stream_block.data(), stream_block.size());
  SecureWipe(counter.data(), counter.size());
  if (rc != 0) return MbedError("mbedtls_aes_crypt_ctr", rc);
  return Status::Ok();
}

Status TransientCryptoProvider::Random(std::span<uint8_t> out) {
  hal::OsEntropy entropy;
  return entropy.Random(out);
}

}  // namespace tkms::mikey::crypto
