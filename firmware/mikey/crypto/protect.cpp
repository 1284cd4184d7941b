#include "firmware/mikey/crypto/protect.h"

#include "firmware/mikey/coverage.h"
#include "firmware/mikey/crypto/kemac_cipher.h"
#include "firmware/mikey/crypto/mac.h"

namespace tkms::mikey::crypto {
namespace {

Status FromCodec(const CodecError& e) { return InvalidArgument(e.ToString()); }

}  // namespace

Result<Bytes> SealWithV(CryptoProvider& provider, const Message& message,
                        const SecretKey& auth_key, std::span<const ByteSpan> appended) {
  if (message.payloads.empty() || !std::holds_alternative<VPayload>(message.payloads.back())) {
    return InvalidArgument("the last payload must be V to seal a message");
  }
  Message m = message;
  auto& v = std::get<VPayload>(m.payloads.back());
  const auto alg = static_cast<MacAlg>(v.auth_alg);
  if (!IsKnownMacAlg(v.auth_alg) || alg == MacAlg::kNull) {
    return InvalidArgument("the V payload needs an HMAC algorithm");
  }
  v.mac.assign(MacLength(alg), 0);
  auto encoded = Encode(m);
  if (!encoded.ok()) return FromCodec(encoded.error());
  Bytes bytes = std::move(*encoded);
  auto coverage = VPayloadCoverage(bytes, appended);
  if (!coverage.ok()) return FromCodec(coverage.error());
  auto mac = ComputeMac(provider, alg, auth_key, coverage->parts);
  if (!mac.ok()) return mac.error();
  std::copy(mac->begin(), mac->end(), bytes.end() - static_cast<std::ptrdiff_t>(mac->size()));
  return bytes;
}

Status VerifyV(CryptoProvider& provider, ByteSpan bytes, const Message& decoded,
               const std::vector<PayloadExtent>& extents, const SecretKey& auth_key,
               std::span<const ByteSpan> appended) {
  auto coverage = VPayloadCoverage(bytes, decoded, extents, appended);
  if (!coverage.ok()) return FromCodec(coverage.error());
  const auto alg = static_cast<MacAlg>(coverage->mac_alg);
  if (alg == MacAlg::kNull) return InvalidArgument("the V payload carries no MAC (NULL)");
  return VerifyMac(provider, alg, auth_key, coverage->parts, coverage->mac);
}

Result<KemacPayload> SealKemac(CryptoProvider& provider, EncrAlg encr_alg,
                               const MessageKeys& keys_for_kemac, uint32_t csb_id, uint64_t ts64,
                               const std::vector<KeyDataPayload>& keys) {
  auto plain = EncodeKeyDataChain(keys);
  if (!plain.ok()) return FromCodec(plain.error());
  auto encr_key = provider.ImportTransientKey(keys_for_kemac.encr_key);
  if (!encr_key.ok()) return encr_key.error();
  auto cipher = KemacEncrypt(provider, encr_alg, **encr_key, keys_for_kemac.salt_key, csb_id, ts64,
                             *plain);
  if (!cipher.ok()) return cipher.error();
  KemacPayload kemac;
  kemac.encr_alg = static_cast<uint8_t>(encr_alg);
  kemac.encr_data = std::move(*cipher);
  kemac.mac_alg = static_cast<uint8_t>(MacAlg::kNull);
  return kemac;
}

Result<std::vector<KeyDataPayload>> OpenKemac(CryptoProvider& provider, const KemacPayload& kemac,
                                              const MessageKeys& keys_for_kemac, uint32_t csb_id,
                                              uint64_t ts64) {
  if (!IsKnownEncrAlg(kemac.encr_alg)) return InvalidArgument("unknown KEMAC encryption algorithm");
  auto encr_key = provider.ImportTransientKey(keys_for_kemac.encr_key);
  if (!encr_key.ok()) return encr_key.error();
  auto plain = KemacDecrypt(provider, static_cast<EncrAlg>(kemac.encr_alg), **encr_key,
                            keys_for_kemac.salt_key, csb_id, ts64, kemac.encr_data);
  if (!plain.ok()) return plain.error();
  auto keys = DecodeKeyDataChain(*plain);
  if (!keys.ok()) {
    // A wrong key yields garbage that fails to decode: report it as such, not
    // as a malformed message, and without echoing any decrypted byte.
    return PermissionDenied("KEMAC did not decrypt to a Key data chain (" +
                            std::string(RuleName(keys.error().rule)) + ")");
  }
  return std::move(*keys);
}

}  // namespace tkms::mikey::crypto
