// The KMS's TLS server key (docs/tls.md): an RSA-2048 key pair generated in
// the token (PKCS#11 v2.40 §2.1 CKM_RSA_PKCS_KEY_PAIR_GEN), its public half
// read back (CKA_MODULUS, CKA_PUBLIC_EXPONENT), and the pki::RsaSigner that
// mbedTLS signs TLS 1.2 handshakes with (pki::PkContext::RsaAlt): RSASSA-
// PKCS1-v1_5 (RFC 8017 §8.2.1), the EMSA-PKCS1-v1_5 DigestInfo (§9.2, note 1)
// built here and padded and signed inside the token by C_Sign with
// CKM_RSA_PKCS (§2.1.6), on a pooled session.
#include <array>
#include <utility>

#include "firmware/keystore/catalog.h"
#include "firmware/keystore/guarded.h"
#include "firmware/keystore/key_policy.h"
#include "firmware/keystore/keystore.h"
#include "firmware/keystore/token_key.h"
#include "pkcs11/attributes.h"
#include "pkcs11/ck_status.h"

namespace tkms::keystore {

using pkcs11::FromCkRvOperation;
using pkcs11::Session;
using pkcs11::SessionPool;

namespace {

// (Appended piece by piece: g++ 12 -O3 reports a false -Wrestrict for
// chains of "literal" + std::string temporaries.)
Status NotATlsKeyLabel(std::string_view label) {
  std::string text("'");
  text.append(label).append("' is not a TLS key label ('").append(kTlsKeyLabelPrefix).append("...')");
  return InvalidArgument(text);
}

constexpr size_t kTlsKeyIdBytes = 8;

// RFC 8017 §9.2 note 1: the DER of DigestInfo ::= SEQUENCE {
// digestAlgorithm AlgorithmIdentifier (OID, NULL), digest OCTET STRING }
// up to the digest, for SHA-256, SHA-384 and SHA-512.
constexpr std::array<uint8_t, 19> kSha256Prefix = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                   0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
constexpr std::array<uint8_t, 19> kSha384Prefix = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                   0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
constexpr std::array<uint8_t, 19> kSha512Prefix = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                   0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

// The DER DigestInfo of `digest` under `md`; kInvalidArgument for another
// hash or a digest of the wrong length.
Result<Bytes> BuildDigestInfo(mbedtls_md_type_t md, ByteSpan digest) {
  const std::array<uint8_t, 19>* prefix = nullptr;
  size_t length = 0;
  switch (md) {
    case MBEDTLS_MD_SHA256: prefix = &kSha256Prefix; length = 32; break;
    case MBEDTLS_MD_SHA384: prefix = &kSha384Prefix; length = 48; break;
    case MBEDTLS_MD_SHA512: prefix = &kSha512Prefix; length = 64; break;
    default: return InvalidArgument("the TLS key signs SHA-256, SHA-384 or SHA-512 digests only");
  }
  if (digest.size() != length) {
    return InvalidArgument("a digest of " + std::to_string(digest.size()) + " bytes; " + std::to_string(length) +
                           " expected");
  }
  Bytes info(prefix->begin(), prefix->end());
  info.insert(info.end(), digest.begin(), digest.end());
  return info;
}

}  // namespace

// The RsaSigner of a TLS key: names the key's catalogue entry (like
// TokenSecretKey) and signs through its Keystore.
class TokenRsaSigner final : public pki::RsaSigner {
 public:
  TokenRsaSigner(Keystore& owner, std::shared_ptr<const KeyEntry> entry, size_t modulus_bytes,
                 std::function<void(const Status&)> on_token_failure)
      : owner_(owner), entry_(std::move(entry)), modulus_bytes_(modulus_bytes),
        on_token_failure_(std::move(on_token_failure)) {}

  size_t ModulusBytes() const override { return modulus_bytes_; }

  Result<Bytes> SignPkcs1v15(mbedtls_md_type_t md, ByteSpan digest) override {
    Result<Bytes> signature = Guarded("TlsSigner::SignPkcs1v15", [&]() -> Result<Bytes> {
      Result<Bytes> info = BuildDigestInfo(md, digest);
      if (!info.ok()) return info.error();
      return owner_.TokenRsaSign(*entry_, *info, modulus_bytes_);
    });
    if (!signature.ok() && pkcs11::IsRetryable(signature.error()) && on_token_failure_) {
      try {
        on_token_failure_(signature.error());
      } catch (...) {
        // A listener's failure must not turn into a TLS error of its own.
      }
    }
    return signature;
  }

 private:
  Keystore& owner_;
  std::shared_ptr<const KeyEntry> entry_;
  const size_t modulus_bytes_;
  const std::function<void(const Status&)> on_token_failure_;
};


Result<KeyInfo> Keystore::CreateTlsKey(std::string label) {
  return Guarded("Keystore::CreateTlsKey", [&]() -> Result<KeyInfo> {
    TKMS_RETURN_IF_ERROR(CheckNewKeyName(label, Bytes(1), KeyUsage::kTlsServer));
    Bytes id(kTlsKeyIdBytes);
    TKMS_RETURN_IF_ERROR(GenerateRandom(id));  // takes the shared lock: before the exclusive one
    return GenerateKey(KeyType::kRsa2048, KeyUsage::kTlsServer, std::move(label), std::move(id));
  });
}

Result<Keystore::RsaPublicKey> Keystore::TlsKeyPublic(std::string_view label) {
  return Guarded("Keystore::TlsKeyPublic", [&]() -> Result<RsaPublicKey> {
    if (!IsTlsKeyLabel(label)) return NotATlsKeyLabel(label);
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    const KeySelector selector = KeySelector::Label(std::string(label));
    Result<std::shared_ptr<KeyEntry>> priv = catalog_->MatchOne(selector, KeyClass::kPrivateKey);
    if (!priv.ok()) return priv.error();
    TKMS_RETURN_IF_ERROR(CheckTlsServerKey(**priv));
    // The public half with the same label and id.
    Result<std::shared_ptr<KeyEntry>> pub =
        catalog_->MatchOne(KeySelector{std::string(label), (*priv)->info.id}, KeyClass::kPublicKey);
    if (!pub.ok()) return pub.error();
    if ((*pub)->ck_type != CKK_RSA) return FailedPrecondition("the public half of '" + std::string(label) + "' is not RSA");
    Result<SessionPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.error();
    RsaPublicKey key;
    for (auto [type, out] : {std::pair{CKA_MODULUS, &key.modulus}, std::pair{CKA_PUBLIC_EXPONENT, &key.exponent}}) {
      auto value = pkcs11::ReadBytesAttribute(**lease, (*pub)->token_handle, type);
      if (!value.ok()) {
        lease->Discard();
        return value.error();
      }
      if (!value->has_value() || (*value)->empty()) return Internal("the public key lacks its modulus or exponent");
      *out = std::move(**value);
    }
    return key;
  });
}

Result<std::shared_ptr<pki::RsaSigner>> Keystore::TlsSigner(std::string_view label,
                                                             std::function<void(const Status&)> on_token_failure) {
  return Guarded("Keystore::TlsSigner", [&]() -> Result<std::shared_ptr<pki::RsaSigner>> {
    if (!IsTlsKeyLabel(label)) return NotATlsKeyLabel(label);
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<std::shared_ptr<KeyEntry>> priv =
        catalog_->MatchOne(KeySelector::Label(std::string(label)), KeyClass::kPrivateKey);
    if (!priv.ok()) return priv.error();
    TKMS_RETURN_IF_ERROR(CheckTlsServerKey(**priv));
    const size_t modulus_bytes = (*priv)->info.bits / 8;
    return std::shared_ptr<pki::RsaSigner>(
        std::make_shared<TokenRsaSigner>(*this, std::move(*priv), modulus_bytes, std::move(on_token_failure)));
  });
}

Result<Bytes> Keystore::TokenRsaSign(const KeyEntry& e, ByteSpan digest_info, size_t modulus_bytes) {
  auto lock = ReadLock();
  TKMS_RETURN_IF_ERROR(module_->CheckProcess());
  if (!e.live) return NotFound("key '" + e.info.label + "' has been destroyed");
  // Again at every use: a PIN holder may have changed the key since.
  TKMS_RETURN_IF_ERROR(CheckTlsServerKey(e));
  Result<SessionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  Session& session = **lease;
  CK_MECHANISM mechanism{CKM_RSA_PKCS, nullptr, 0};
  Status status = FromCkRvOperation(session.fns().C_SignInit(session.handle(), &mechanism, e.op_handle), "C_SignInit");
  Bytes signature(modulus_bytes);
  CK_ULONG len = static_cast<CK_ULONG>(signature.size());
  if (status.ok()) {
    status = FromCkRvOperation(session.fns().C_Sign(session.handle(), const_cast<CK_BYTE*>(digest_info.data()),
                                           static_cast<CK_ULONG>(digest_info.size()), signature.data(), &len),
                      "C_Sign");
  }
  if (!status.ok()) {
    lease->Discard();  // an operation may still be active on this session
    return status;
  }
  if (len != modulus_bytes) {
    return Internal("CKM_RSA_PKCS returned " + std::to_string(len) + " bytes, not " + std::to_string(modulus_bytes));
  }
  return signature;
}

}  // namespace tkms::keystore
