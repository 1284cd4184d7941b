#include "firmware/kms/base_ticket.h"

#include <algorithm>
#include <array>

#include "firmware/base/big_endian.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/coverage.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/kemac_cipher.h"
#include "firmware/mikey/crypto/mac.h"
#include "firmware/mikey/crypto/protect.h"

namespace tkms::kms {
namespace {

namespace mc = mikey::crypto;
using mikey::Bytes;

constexpr uint32_t kTicketCsbId = 0xFFFFFFFF;  // RFC 6043 Appendix A.1
constexpr std::array<uint8_t, 5> kThdrData = {'t', 'k', 'm', 's', 0x01};
constexpr mikey::EncrAlg kTicketEncrAlg = mikey::EncrAlg::kAesCm256;
constexpr mikey::MacAlg kTicketMacAlg = mikey::MacAlg::kHmacSha256_256;

bool IsTokenTrouble(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kResourceExhausted;
}

TicketError Failure(TicketErrorKind kind, std::string detail) { return TicketError{kind, std::move(detail), {}}; }

// A token failure becomes a TicketError that carries it; other failures of
// our own crypto on ticket contents mean a malformed or forged ticket.
TicketError FromStatus(const Status& s, TicketErrorKind kind, const std::string& what) {
  TicketError e = Failure(kind, what + ": " + s.message());
  if (IsTokenTrouble(s)) e.token_failure = s;
  return e;
}

Bytes KeyIdBytes(uint32_t id) {
  const auto be = Be32Bytes(id);
  return Bytes(be.begin(), be.end());
}

}  // namespace

bool BaseTicketFormat::Handles(const mikey::TicketPolicy& policy) const { return mikey::IsBaseTicket(policy); }

Result<SealedTicket> BaseTicketFormat::Seal(const mikey::TicketPolicy& policy, const Bytes& mpk_spi,
                                            std::vector<mikey::KeyDataPayload> session_keys, TimePoint now) {
  auto& provider = keys_.provider();
  const auto prf = static_cast<mikey::PrfFunc>(policy.prf_func);
  auto key_id = keys_.CurrentTicketKeyId();
  if (!key_id.ok()) return key_id.error();
  auto tpk = keys_.TicketKey(*key_id);
  if (!tpk.ok()) return tpk.error();

  Bytes rand(kBaseTicketRandBytes);
  TKMS_RETURN_IF_ERROR(keys_.Random(rand));
  SecretBytes mpk(kBaseTicketMpkBytes);
  TKMS_RETURN_IF_ERROR(keys_.Random(mpk));

  auto tpk_keys = mc::DeriveTicketProtectionKeys(provider, prf, **tpk, rand, kTicketEncrAlg, kTicketMacAlg);
  if (!tpk_keys.ok()) return tpk_keys.error();

  mikey::BaseTicketData data;
  data.thdr.data.assign(kThdrData.begin(), kThdrData.end());
  data.t = mikey::TPayload{static_cast<uint8_t>(mikey::TsType::kNtpUtc), NtpFromTime(now)};
  data.rand.rand = rand;

  std::vector<mikey::KeyDataPayload> kemac_keys;
  kemac_keys.reserve(session_keys.size() + 1);
  mikey::KeyValidity mpk_kv;
  mpk_kv.kv_type = static_cast<uint8_t>(mikey::KvType::kSpi);
  mpk_kv.spi = mpk_spi;
  kemac_keys.push_back(mikey::KeyDataPayload{static_cast<uint8_t>(mikey::KeyType::kMpk), mpk, std::nullopt, mpk_kv});
  for (const auto& k : session_keys) kemac_keys.push_back(k);
  auto kemac = mc::SealKemac(provider, kTicketEncrAlg, *tpk_keys, kTicketCsbId, data.t.value, kemac_keys);
  if (!kemac.ok()) return kemac.error();
  data.kemac = std::move(*kemac);
  data.idr_psk = mikey::IdrPayload{static_cast<uint8_t>(mikey::IdRole::kPsk),
                                   static_cast<uint8_t>(mikey::IdType::kByteString), KeyIdBytes(*key_id)};
  data.v = mikey::VPayload{static_cast<uint8_t>(kTicketMacAlg), Bytes(mikey::MacLength(kTicketMacAlg), 0)};

  // The MAC covers the encoded TICKET payload (Appendix A.1): encode with a
  // zero MAC of the right length, compute, then put the MAC in.
  auto encoded = mikey::EncodeBaseTicketData(data);
  if (!encoded.ok()) return Internal("encoding base ticket: " + encoded.error().ToString());
  mikey::TicketPayload ticket{policy, *encoded, std::nullopt};
  auto mac_input = mikey::BaseTicketMacInput(ticket);
  if (!mac_input.ok()) return Internal("base ticket MAC input: " + mac_input.error().ToString());
  auto auth_key = provider.ImportTransientKey(tpk_keys->auth_key);
  if (!auth_key.ok()) return auth_key.error();
  const ByteSpan parts[] = {*mac_input};
  auto mac = mc::ComputeMac(provider, kTicketMacAlg, **auth_key, parts);
  if (!mac.ok()) return mac.error();
  // V is the last payload of Ticket Data and its MAC the last bytes: put the
  // MAC in place rather than encoding the Ticket Data a second time.
  if (mac->size() != data.v.mac.size() || encoded->size() < mac->size()) {
    return Internal("base ticket MAC length");
  }
  std::copy(mac->begin(), mac->end(), encoded->end() - static_cast<std::ptrdiff_t>(mac->size()));

  auto mpk_key = provider.ImportTransientKey(mpk);
  if (!mpk_key.ok()) return mpk_key.error();
  auto mpki = mc::DeriveMpkKey(provider, prf, **mpk_key, mc::MpkKeyType::kMpki, rand);
  if (!mpki.ok()) return mpki.error();
  auto mpkr = mc::DeriveMpkKey(provider, prf, **mpk_key, mc::MpkKeyType::kMpkr, rand);
  if (!mpkr.ok()) return mpkr.error();
  return SealedTicket{std::move(*encoded),
                      TicketKeys{std::move(*mpki), std::move(*mpkr), mpk_spi, std::move(session_keys)}};
}

Result<TicketKeys, TicketError> BaseTicketFormat::Open(const mikey::TicketPayload& ticket) {
  auto& provider = keys_.provider();
  if (!Handles(ticket.policy)) return Failure(TicketErrorKind::kUnsupportedType, "not a MIKEY base ticket");
  const auto prf = static_cast<mikey::PrfFunc>(ticket.policy.prf_func);
  auto data = mikey::DecodeBaseTicketData(ticket.ticket_data);
  if (!data.ok()) return Failure(TicketErrorKind::kMalformed, "ticket data: " + data.error().ToString());

  uint32_t key_id = 0;
  if (data->idr_psk) {
    const auto& id = data->idr_psk->data;
    if (data->idr_psk->role != static_cast<uint8_t>(mikey::IdRole::kPsk) || id.size() != 4) {
      return Failure(TicketErrorKind::kUnknownKey, "ticket IDRpsk does not name a tkms ticket key");
    }
    key_id = LoadBe32(std::span<const uint8_t>(id).first<4>());
  } else {
    auto current = keys_.CurrentTicketKeyId();
    if (!current.ok()) return FromStatus(current.error(), TicketErrorKind::kUnknownKey, "no ticket key");
    key_id = *current;
  }
  auto tpk = keys_.TicketKey(key_id);
  if (!tpk.ok()) {
    return FromStatus(tpk.error(), TicketErrorKind::kUnknownKey, "ticket key " + std::to_string(key_id));
  }
  const auto encr_alg = static_cast<mikey::EncrAlg>(data->kemac.encr_alg);
  const auto mac_alg = static_cast<mikey::MacAlg>(data->v.auth_alg);
  if (encr_alg != mikey::EncrAlg::kAesCm128 && encr_alg != mikey::EncrAlg::kAesCm256) {
    return Failure(TicketErrorKind::kMalformed, "ticket KEMAC encryption is not AES-CM");
  }
  if (mac_alg == mikey::MacAlg::kNull) return Failure(TicketErrorKind::kMalformed, "ticket V has the NULL MAC");
  auto tpk_keys = mc::DeriveTicketProtectionKeys(provider, prf, **tpk, data->rand.rand, encr_alg, mac_alg);
  if (!tpk_keys.ok()) return FromStatus(tpk_keys.error(), TicketErrorKind::kMalformed, "ticket keys");

  auto mac_input = mikey::BaseTicketMacInput(ticket);
  if (!mac_input.ok()) return Failure(TicketErrorKind::kMalformed, mac_input.error().ToString());
  auto auth_key = provider.ImportTransientKey(tpk_keys->auth_key);
  if (!auth_key.ok()) return FromStatus(auth_key.error(), TicketErrorKind::kMalformed, "ticket auth key");
  const ByteSpan parts[] = {*mac_input};
  if (auto s = mc::VerifyMac(provider, mac_alg, **auth_key, parts, data->v.mac); !s.ok()) {
    if (IsTokenTrouble(s)) return FromStatus(s, TicketErrorKind::kBadMac, "ticket MAC");
    return Failure(TicketErrorKind::kBadMac, "ticket MAC does not verify (ticket key " + std::to_string(key_id) + ")");
  }
  auto ts64 = mc::TimestampForIv(static_cast<mikey::TsType>(data->t.ts_type), data->t.value);
  if (!ts64.ok()) return Failure(TicketErrorKind::kMalformed, "ticket T: " + ts64.error().message());
  auto keys = mc::OpenKemac(provider, data->kemac, *tpk_keys, kTicketCsbId, *ts64);
  if (!keys.ok()) return FromStatus(keys.error(), TicketErrorKind::kMalformed, "ticket KEMAC");
  if (keys->empty() || keys->front().key_type != static_cast<uint8_t>(mikey::KeyType::kMpk) ||
      keys->front().key.empty()) {
    return Failure(TicketErrorKind::kMalformed, "ticket KEMAC does not start with the MPK");
  }
  auto mpk_key = provider.ImportTransientKey(keys->front().key);
  if (!mpk_key.ok()) return FromStatus(mpk_key.error(), TicketErrorKind::kMalformed, "MPK");
  auto mpki = mc::DeriveMpkKey(provider, prf, **mpk_key, mc::MpkKeyType::kMpki, data->rand.rand);
  auto mpkr = mc::DeriveMpkKey(provider, prf, **mpk_key, mc::MpkKeyType::kMpkr, data->rand.rand);
  if (!mpki.ok()) return FromStatus(mpki.error(), TicketErrorKind::kMalformed, "MPKi");
  if (!mpkr.ok()) return FromStatus(mpkr.error(), TicketErrorKind::kMalformed, "MPKr");
  TicketKeys out{std::move(*mpki), std::move(*mpkr), keys->front().kv.spi, {}};
  for (size_t i = 1; i < keys->size(); ++i) out.session_keys.push_back(std::move((*keys)[i]));
  return out;
}

}  // namespace tkms::kms
