// Crypto operations with token keys, run inside the token: HMAC (PKCS#11
// v2.40 §5.12 C_SignInit/C_Sign with CKM_SHA_1_HMAC / CKM_SHA256_HMAC, the
// MIKEY PRF and MACs of RFC 3830 §4.1.2 / §4.2.4), AES-CM (CKM_AES_CTR,
// RFC 3711 §4.1.1), ECDSA P-256 (CKM_ECDSA) and reading an EC public point
// (CKA_EC_POINT, §2.3.3). Each operation runs on its own pooled session.
#include <cstring>

#include "firmware/base/big_endian.h"
#include "firmware/keystore/catalog.h"
#include "firmware/keystore/guarded.h"
#include "firmware/keystore/keystore.h"
#include "firmware/keystore/token_key.h"
#include "pkcs11/attributes.h"
#include "pkcs11/ck_status.h"

namespace tkms::keystore {

using mikey::crypto::HashAlg;
using pkcs11::FromCkRvOperation;
using pkcs11::Session;
using pkcs11::SessionPool;

namespace {

// The bytes of `in` before the 128-bit counter that starts at `iv` wraps.
// SRTP AES-CM adds i to the whole 128-bit IV, wrapping mod 2^128; SoftHSM2
// refuses a counter that would wrap, so the caller splits the call there.
size_t BytesBeforeCounterWrap(std::span<const uint8_t, 16> iv, size_t in_size) {
  const uint64_t high = LoadBe64(iv.first<8>());
  const uint64_t low = LoadBe64(iv.subspan<8, 8>());
  const uint64_t blocks = (in_size + 15) / 16;
  if (high == UINT64_MAX && low != 0) {
    const uint64_t before_wrap = ~low + 1;  // 2^64 - low blocks until the counter wraps
    if (blocks > before_wrap) return static_cast<size_t>(before_wrap) * 16;
  }
  return in_size;
}

// One CKM_AES_CTR encryption with the full 128-bit block as the counter.
Status EncryptCtr(Session& session, CK_OBJECT_HANDLE key, std::span<const uint8_t, 16> counter, ByteSpan in,
                  std::span<uint8_t> out) {
  CK_AES_CTR_PARAMS params{};
  params.ulCounterBits = 128;
  std::memcpy(params.cb, counter.data(), 16);
  CK_MECHANISM mechanism{CKM_AES_CTR, &params, sizeof(params)};
  TKMS_RETURN_IF_ERROR(
      FromCkRvOperation(session.fns().C_EncryptInit(session.handle(), &mechanism, key), "C_EncryptInit"));
  CK_ULONG len = static_cast<CK_ULONG>(out.size());
  TKMS_RETURN_IF_ERROR(FromCkRvOperation(session.fns().C_Encrypt(session.handle(), const_cast<CK_BYTE*>(in.data()),
                                                        static_cast<CK_ULONG>(in.size()), out.data(), &len),
                                "C_Encrypt"));
  if (len != out.size()) return Internal("C_Encrypt returned the wrong length");
  return Status::Ok();
}

// A C_Sign input: the one part, or all parts joined into `joined`
// (C_Sign is a single call, C_SignUpdate per part would be more).
ByteSpan JoinParts(std::span<const ByteSpan> parts, SecretBytes& joined) {
  if (parts.size() == 1) return parts[0];
  size_t total = 0;
  for (ByteSpan part : parts) total += part.size();
  joined.reserve(total);
  for (ByteSpan part : parts) joined.insert(joined.end(), part.begin(), part.end());
  return joined;
}

}  // namespace

Status Keystore::TokenHmac(const TokenSecretKey& key, HashAlg alg, std::span<const ByteSpan> parts,
                           std::span<uint8_t> out) {
  const size_t digest = mikey::crypto::DigestLength(alg);
  if (digest == 0) return InvalidArgument("unknown hash algorithm");
  if (out.size() != digest) {
    return InvalidArgument("HMAC output buffer has " + std::to_string(out.size()) + " bytes, expected " +
                           std::to_string(digest));
  }
  auto lock = ReadLock();
  TKMS_RETURN_IF_ERROR(module_->CheckProcess());
  const KeyEntry& e = key.entry();
  if (!e.live) return NotFound("key '" + e.info.label + "' has been destroyed");
  if (e.ck_type != CKK_GENERIC_SECRET || !e.info.attributes.sign) {
    return FailedPrecondition("key '" + e.info.label + "' (" + e.info.ck_key_type +
                              ") is not an HMAC key with CKA_SIGN");
  }
  SecretBytes joined;
  const ByteSpan data = JoinParts(parts, joined);
  uint8_t empty = 0;  // some modules reject a null data pointer even for 0 bytes
  CK_BYTE* data_ptr = data.empty() ? &empty : const_cast<CK_BYTE*>(data.data());

  Result<SessionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  Session& session = **lease;
  CK_MECHANISM mechanism{alg == HashAlg::kSha1 ? CKM_SHA_1_HMAC : CKM_SHA256_HMAC, nullptr, 0};
  Status status = FromCkRvOperation(session.fns().C_SignInit(session.handle(), &mechanism, e.op_handle), "C_SignInit");
  CK_ULONG len = static_cast<CK_ULONG>(out.size());
  if (status.ok()) {
    status = FromCkRvOperation(
        session.fns().C_Sign(session.handle(), data_ptr, static_cast<CK_ULONG>(data.size()), out.data(), &len),
        "C_Sign");
  }
  if (!status.ok()) {
    lease->Discard();
    return status;
  }
  if (len != out.size()) return Internal("C_Sign returned a MAC of the wrong length");
  return Status::Ok();
}

Status Keystore::TokenAesCtr(const TokenSecretKey& key, std::span<const uint8_t, 16> iv, ByteSpan in,
                             std::span<uint8_t> out) {
  if (out.size() != in.size()) return InvalidArgument("AES-CM output size differs from input size");
  const bool same = in.data() == out.data();
  const bool overlap = !in.empty() && in.data() < out.data() + out.size() && out.data() < in.data() + in.size();
  if (overlap && !same) return InvalidArgument("AES-CM buffers overlap partially");
  auto lock = ReadLock();
  TKMS_RETURN_IF_ERROR(module_->CheckProcess());
  const KeyEntry& e = key.entry();
  if (!e.live) return NotFound("key '" + e.info.label + "' has been destroyed");
  if (e.ck_type != CKK_AES || !e.info.attributes.encrypt) {
    return FailedPrecondition("key '" + e.info.label + "' (" + e.info.ck_key_type +
                              ") is not an AES key with CKA_ENCRYPT");
  }
  if (in.empty()) return Status::Ok();
  const size_t first_len = BytesBeforeCounterWrap(iv, in.size());
  // In-place use: keep the input (the spec does not promise in-place C_Encrypt).
  SecretBytes input_copy;
  ByteSpan input = in;
  if (same) {
    input_copy.assign(in.begin(), in.end());
    input = input_copy;
  }

  Result<SessionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  Status status = EncryptCtr(**lease, e.op_handle, iv, input.first(first_len), out.first(first_len));
  if (status.ok() && first_len < input.size()) {
    static constexpr uint8_t kZero[16] = {};
    status = EncryptCtr(**lease, e.op_handle, std::span<const uint8_t, 16>(kZero), input.subspan(first_len),
                        out.subspan(first_len));
  }
  if (!status.ok()) lease->Discard();
  return status;
}

Result<Bytes> Keystore::SignEcdsaP256(const KeySelector& key, ByteSpan sha256_digest) {
  return Guarded("Keystore::SignEcdsaP256", [&]() -> Result<Bytes> {
    if (sha256_digest.size() != 32) {
      return InvalidArgument("ECDSA P-256 signs a 32-byte SHA-256 digest, got " +
                             std::to_string(sha256_digest.size()) + " bytes");
    }
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<std::shared_ptr<KeyEntry>> entry = catalog_->MatchOne(key, KeyClass::kPrivateKey);
    if (!entry.ok()) return entry.error();
    const KeyEntry& e = **entry;
    if (e.info.type != KeyType::kEcP256 || !e.info.attributes.sign) {
      return FailedPrecondition("key '" + e.info.label + "' is not an EC P-256 signing key");
    }
    Result<SessionPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.error();
    Session& session = **lease;
    CK_MECHANISM mechanism{CKM_ECDSA, nullptr, 0};
    Status status =
        FromCkRvOperation(session.fns().C_SignInit(session.handle(), &mechanism, e.op_handle), "C_SignInit");
    Bytes signature(64);
    CK_ULONG len = static_cast<CK_ULONG>(signature.size());
    if (status.ok()) {
      status = FromCkRvOperation(session.fns().C_Sign(session.handle(), const_cast<CK_BYTE*>(sha256_digest.data()),
                                             static_cast<CK_ULONG>(sha256_digest.size()), signature.data(), &len),
                        "C_Sign");
    }
    if (!status.ok()) {
      lease->Discard();  // an operation may still be active on this session
      return status;
    }
    if (len != 64) return Internal("CKM_ECDSA returned " + std::to_string(len) + " bytes, not 64");
    return signature;
  });
}

Result<Bytes> Keystore::PublicKeyEcPoint(const KeySelector& key) {
  return Guarded("Keystore::PublicKeyEcPoint", [&]() -> Result<Bytes> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<std::shared_ptr<KeyEntry>> entry = catalog_->MatchOne(key, KeyClass::kPublicKey);
    if (!entry.ok()) return entry.error();
    if ((*entry)->info.type != KeyType::kEcP256) {
      return FailedPrecondition("key '" + (*entry)->info.label + "' is not an EC P-256 key");
    }
    Result<SessionPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.error();
    auto point = pkcs11::ReadBytesAttribute(**lease, (*entry)->token_handle, CKA_EC_POINT);
    if (!point.ok()) return point.error();
    if (!point->has_value()) return Internal("the public key has no CKA_EC_POINT");
    Bytes& p = **point;
    // PKCS#11 v2.40 §2.3.3: DER OCTET STRING around the X9.62 point; some
    // modules return the raw point.
    if (p.size() == 67 && p[0] == 0x04 && p[1] == 0x41 && p[2] == 0x04) {
      return Bytes(p.begin() + 2, p.end());
    }
    if (p.size() == 65 && p[0] == 0x04) return p;
    return Internal("unexpected CKA_EC_POINT encoding");
  });
}

}  // namespace tkms::keystore
