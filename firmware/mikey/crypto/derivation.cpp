#include "firmware/mikey/crypto/derivation.h"

#include <string>
#include <utility>
#include <vector>

#include "firmware/mikey/crypto/prf.h"

namespace tkms::mikey::crypto {
namespace {

Result<SecretBytes> PrfWithLabel(CryptoProvider& provider, PrfFunc prf, const SecretKey& inkey,
                                 Result<std::vector<uint8_t>> label, size_t out_bytes) {
  if (!label.ok()) return std::move(label).error();
  return Prf(provider, prf, inkey, *label, out_bytes);
}

// Derives the encr, salt and auth keys that (encr_alg, mac_alg) need, with
// label_for(type) giving the label of each.
template <typename LabelFor>
Result<MessageKeys> DeriveKeySet(CryptoProvider& provider, PrfFunc prf, const SecretKey& inkey,
                                 EncrAlg encr_alg, MacAlg mac_alg, LabelFor label_for) {
  Result<MessageKeyLengths> lengths = KeyLengthsFor(encr_alg, mac_alg);
  if (!lengths.ok()) return lengths.error();
  MessageKeys keys;
  const std::pair<MessageKeyType, size_t> wanted[] = {
      {MessageKeyType::kEncr, lengths->encr},
      {MessageKeyType::kSalt, lengths->salt},
      {MessageKeyType::kAuth, lengths->auth},
  };
  for (const auto& [type, length] : wanted) {
    if (length == 0) continue;
    Result<SecretBytes> key = PrfWithLabel(provider, prf, inkey, label_for(type), length);
    if (!key.ok()) return key.error();
    switch (type) {
      case MessageKeyType::kEncr: keys.encr_key = std::move(*key); break;
      case MessageKeyType::kSalt: keys.salt_key = std::move(*key); break;
      case MessageKeyType::kAuth: keys.auth_key = std::move(*key); break;
    }
  }
  return keys;
}

}  // namespace

Result<MessageKeyLengths> KeyLengthsFor(EncrAlg encr_alg, MacAlg mac_alg) {
  MessageKeyLengths lengths;
  switch (encr_alg) {
    case EncrAlg::kNull: break;
    case EncrAlg::kAesCm128: lengths.encr = 16; lengths.salt = 14; break;
    case EncrAlg::kAesKw128: lengths.encr = 16; lengths.salt = 8; break;
    case EncrAlg::kAesCm256: lengths.encr = 32; lengths.salt = 14; break;
    default:
      return InvalidArgument("unknown encryption algorithm " +
                             std::to_string(static_cast<unsigned>(encr_alg)));
  }
  if (!IsKnownMacAlg(static_cast<uint8_t>(mac_alg))) {
    return InvalidArgument("unknown MAC algorithm " +
                           std::to_string(static_cast<unsigned>(mac_alg)));
  }
  lengths.auth = MacLength(mac_alg);
  return lengths;
}

Result<SecretBytes> DeriveFromTgk(CryptoProvider& provider, PrfFunc prf, const SecretKey& tgk,
                                  TgkKeyType type, const Rfc3830TekContext& context,
                                  size_t out_bytes) {
  return Prf(provider, prf, tgk, Rfc3830TgkLabel(type, context), out_bytes);
}

Result<SecretBytes> DeriveFromTgk(CryptoProvider& provider, PrfFunc prf, const SecretKey& tgk,
                                  TgkKeyType type, const TicketTekContext& context,
                                  size_t out_bytes) {
  return PrfWithLabel(provider, prf, tgk, TicketTgkLabel(type, context), out_bytes);
}

Result<MessageKeys> DeriveRfc3830MessageKeys(CryptoProvider& provider, PrfFunc prf,
                                             const SecretKey& inkey, uint32_t csb_id,
                                             ByteSpan rand, EncrAlg encr_alg, MacAlg mac_alg) {
  return DeriveKeySet(provider, prf, inkey, encr_alg, mac_alg,
                      [&](MessageKeyType type) -> Result<std::vector<uint8_t>> {
                        return Rfc3830MessageLabel(type, csb_id, rand);
                      });
}

Result<MessageKeys> DeriveMessageKeys(CryptoProvider& provider, PrfFunc prf,
                                      const SecretKey& inkey, Direction direction,
                                      uint32_t csb_id, std::optional<ByteSpan> randri,
                                      std::optional<ByteSpan> randrr, EncrAlg encr_alg,
                                      MacAlg mac_alg) {
  return DeriveKeySet(provider, prf, inkey, encr_alg, mac_alg, [&](MessageKeyType type) {
    return TicketMessageLabel(type, direction, csb_id, randri, randrr);
  });
}

Result<SecretBytes> DeriveForkedKey(CryptoProvider& provider, PrfFunc prf,
                                    const SecretKey& inkey, ForkedKeyType type,
                                    ByteSpan id_data, ByteSpan randrkms) {
  // RFC 6043 §5.1.1: outkey_len SHALL be equal to inkey_len.
  return PrfWithLabel(provider, prf, inkey, ForkingLabel(type, id_data, randrkms), inkey.size());
}

Result<SecretBytes> DeriveInitiatorDataAuthKey(CryptoProvider& provider, PrfFunc prf,
                                               const SecretKey& mpkr, MacAlg mac_alg) {
  if (!IsKnownMacAlg(static_cast<uint8_t>(mac_alg))) {
    return InvalidArgument("unknown MAC algorithm " +
                           std::to_string(static_cast<unsigned>(mac_alg)));
  }
  if (mac_alg == MacAlg::kNull) return SecretBytes();
  return Prf(provider, prf, mpkr, InitiatorDataLabel(MessageKeyType::kAuth),
             MacLength(mac_alg));
}

Result<MessageKeys> DeriveTicketProtectionKeys(CryptoProvider& provider, PrfFunc prf,
                                               const SecretKey& tpk, ByteSpan rand,
                                               EncrAlg encr_alg, MacAlg mac_alg) {
  return DeriveKeySet(provider, prf, tpk, encr_alg, mac_alg,
                      [&](MessageKeyType type) { return TpkLabel(type, rand); });
}

Result<SecretBytes> DeriveMpkKey(CryptoProvider& provider, PrfFunc prf, const SecretKey& mpk,
                                 MpkKeyType type, ByteSpan rand) {
  // RFC 6043 §A.2.2: outkey_len SHALL be equal to inkey_len.
  return PrfWithLabel(provider, prf, mpk, MpkLabel(type, rand), mpk.size());
}

}  // namespace tkms::mikey::crypto
