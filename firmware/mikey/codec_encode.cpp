// The Encoder: writes a message model, refusing anything that would not
// decode (unknown values, wrong MAC lengths, fields too long for their length
// field): Encode(Decode(b)) == b (codec.h).
#include <string>
#include <utility>

#include "firmware/mikey/codec_internal.h"
#include "firmware/mikey/composition.h"

namespace tkms::mikey::codec_internal {

bool Encoder::Known(bool known, Rule rule, const char* field, uint64_t value) {
  return check_.Known(known, rule, 0, field, value);
}

bool Encoder::Prefixed(ByteWriter& w, size_t width, ByteSpan data, const char* field) {
  if (!check_.LengthFits(data.size(), width == 1 ? 0xFF : 0xFFFF, 0, field)) return false;
  w.Uint(width, data.size()).Bytes(data);
  return true;
}

bool Encoder::Header(ByteWriter& w, const CommonHeader& h, uint8_t next) {
  if (h.version != kMikeyVersion) return Fail(Rule::kVersion, "MIKEY version must be 1");
  if (!Known(IsKnownDataType(h.data_type), Rule::kDataType, "data type", h.data_type) ||
      // An Error message copies the PRF func of the message in error,
      // whatever it was (RFC 6043 §5.4): any 7-bit value is encodable.
      (h.data_type != static_cast<uint8_t>(DataType::kError) &&
       !Known(IsKnownPrf(h.prf_func), Rule::kPrfFunc, "PRF func", h.prf_func)) ||
      (h.prf_func > 0x7F && Fail(Rule::kPrfFunc, "PRF func " + Num(h.prf_func) + " does not fit 7 bits")) ||
      !Known(IsKnownCsIdMapType(h.cs_id_map_type), Rule::kCsIdMapType, "CS ID map type",
             h.cs_id_map_type)) {
    return false;
  }
  const auto map = static_cast<CsIdMapType>(h.cs_id_map_type);
  const size_t entries = map == CsIdMapType::kSrtpId     ? h.srtp_map.size()
                         : map == CsIdMapType::kGenericId ? h.generic_map.size()
                                                          : 0;
  if ((map != CsIdMapType::kSrtpId && !h.srtp_map.empty()) ||
      (map != CsIdMapType::kGenericId && !h.generic_map.empty())) {
    return Fail(Rule::kCsIdMap, "CS ID map entries do not match the map type");
  }
  if (map != CsIdMapType::kEmpty && entries != h.cs_count) {
    return Fail(Rule::kCsIdMap, "#CS " + Num(h.cs_count) + " but " + Num(entries) + " map entries");
  }
  w.U8(h.version).U8(h.data_type).U8(next);
  w.U8(static_cast<uint8_t>((h.v ? 0x80 : 0) | h.prf_func));
  w.U32(h.csb_id).U8(h.cs_count).U8(h.cs_id_map_type);
  for (const auto& e : h.srtp_map) w.U8(e.policy_no).U32(e.ssrc).U32(e.roc);
  for (size_t i = 0; i < h.generic_map.size(); ++i) {
    const auto& e = h.generic_map[i];
    if (!Known(IsKnownProtType(e.prot_type), Rule::kProtType, "Prot type", e.prot_type) ||
        !check_.LengthFits(e.policies.size(), 0x7F, 0, "GENERIC-ID policy list") ||
        !check_.SrtpSessionData(e, 0)) {
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (h.generic_map[j].cs_id == e.cs_id) {
        return Fail(Rule::kCsIdMap, "CS ID " + Num(e.cs_id) + " appears twice");
      }
    }
    w.U8(e.cs_id).U8(e.prot_type);
    w.U8(static_cast<uint8_t>((e.s_flag ? 0x80 : 0) | e.policies.size())).Bytes(e.policies);
    if (!Prefixed(w, 2, e.session_data, "Session Data") || !Prefixed(w, 1, e.spi, "SPI")) {
      return false;
    }
  }
  return true;
}

bool Encoder::Kv(ByteWriter& w, const KeyValidity& kv) {
  if (!check_.Kv(kv, 0)) return false;
  switch (static_cast<KvType>(kv.kv_type)) {
    case KvType::kNull: return true;
    case KvType::kSpi: return Prefixed(w, 1, kv.spi, "SPI");
    case KvType::kInterval:
      return Prefixed(w, 1, kv.valid_from, "Valid From") && Prefixed(w, 1, kv.valid_to, "Valid To");
  }
  return false;
}

bool Encoder::Timestamp(ByteWriter& w, uint8_t ts_type, uint64_t value) {
  if (!Known(IsKnownTsType(ts_type), Rule::kTsType, "TS type", ts_type) ||
      !check_.TsFits(ts_type, value, 0)) {
    return false;
  }
  w.U8(ts_type).Uint(TsLength(static_cast<TsType>(ts_type)), value);
  return true;
}

bool Encoder::Mac(ByteWriter& w, uint8_t alg, const Bytes& mac) {
  if (!Known(IsKnownMacAlg(alg), Rule::kMacAlg, "MAC alg", alg) ||
      !check_.MacLengthMatches(alg, mac.size(), 0)) {
    return false;
  }
  w.U8(alg).Bytes(mac);
  return true;
}

bool Encoder::Write(ByteWriter& w, const KemacPayload& p, uint8_t next) {
  if (!Known(IsKnownEncrAlg(p.encr_alg), Rule::kEncrAlg, "Encr alg", p.encr_alg)) return false;
  w.U8(next).U8(p.encr_alg);
  return Prefixed(w, 2, p.encr_data, "KEMAC Encr data") && Mac(w, p.mac_alg, p.mac);
}

bool Encoder::Write(ByteWriter& w, const PkePayload& p, uint8_t next) {
  if (!Known(IsKnownPkeCache(p.c), Rule::kPkeCache, "PKE C", p.c) ||
      !check_.LengthFits(p.data.size(), 0x3FFF, 0, "PKE Data")) {
    return false;
  }
  w.U8(next).U16(static_cast<uint16_t>((p.c << 14) | p.data.size())).Bytes(p.data);
  return true;
}

bool Encoder::Write(ByteWriter& w, const DhPayload& p, uint8_t next) {
  if (!Known(IsKnownDhGroup(p.group), Rule::kDhGroup, "DH-Group", p.group)) return false;
  const size_t want = DhValueLength(static_cast<DhGroup>(p.group));
  if (p.value.size() != want) {
    return Fail(Rule::kFieldTooLong, "DH-value of " + Num(p.value.size()) + " bytes, group needs " + Num(want));
  }
  w.U8(next).U8(p.group).Bytes(p.value).U8(p.kv.kv_type & 0x0F);
  return Kv(w, p.kv);
}

bool Encoder::Write(ByteWriter& w, const SignPayload& p, uint8_t /*next*/) {
  if (!Known(IsKnownSignType(p.s_type), Rule::kSignType, "S type", p.s_type) ||
      !check_.LengthFits(p.signature.size(), 0x0FFF, 0, "Signature")) {
    return false;
  }
  w.U16(static_cast<uint16_t>((p.s_type << 12) | p.signature.size())).Bytes(p.signature);
  return true;
}

bool Encoder::Write(ByteWriter& w, const TPayload& p, uint8_t next) {
  w.U8(next);
  return Timestamp(w, p.ts_type, p.value);
}

bool Encoder::Write(ByteWriter& w, const IdPayload& p, uint8_t next) {
  if (!Known(IsKnownIdType(p.id_type), Rule::kIdType, "ID type", p.id_type)) return false;
  w.U8(next).U8(p.id_type);
  return Prefixed(w, 2, p.data, "ID data");
}

bool Encoder::Write(ByteWriter& w, const CertPayload& p, uint8_t next) {
  if (!Known(IsKnownCertType(p.cert_type), Rule::kCertType, "Cert type", p.cert_type)) return false;
  w.U8(next).U8(p.cert_type);
  return Prefixed(w, 2, p.data, "Certificate");
}

bool Encoder::Write(ByteWriter& w, const ChashPayload& p, uint8_t next) {
  if (!Known(IsKnownHashFunc(p.hash_func), Rule::kHashFunc, "Hash func", p.hash_func)) return false;
  const size_t want = HashLength(static_cast<HashFunc>(p.hash_func));
  if (p.hash.size() != want) {
    return Fail(Rule::kFieldTooLong, "hash of " + Num(p.hash.size()) + " bytes, function needs " + Num(want));
  }
  w.U8(next).U8(p.hash_func).Bytes(p.hash);
  return true;
}

bool Encoder::Write(ByteWriter& w, const VPayload& p, uint8_t next) {
  w.U8(next);
  return Mac(w, p.auth_alg, p.mac);
}

bool Encoder::Write(ByteWriter& w, const SpPayload& p, uint8_t next) {
  if (!Known(IsKnownProtType(p.prot_type), Rule::kProtType, "Prot type", p.prot_type)) return false;
  w.U8(next).U8(p.policy_no).U8(p.prot_type);
  const size_t at = w.BeginLengthPrefix(2);
  for (const auto& param : p.params) {
    if (!check_.SpParamType(p.prot_type, param.type, 0)) return false;
    w.U8(param.type);
    if (!Prefixed(w, 1, param.value, "SP param Value")) return false;
  }
  return w.EndLengthPrefix(at, 2) || Fail(Rule::kFieldTooLong, "SP policy params exceed 65535 bytes");
}

bool Encoder::Write(ByteWriter& w, const RandPayload& p, uint8_t next) {
  if (!check_.Rand(p.rand.size(), 0)) return false;
  w.U8(next).U8(static_cast<uint8_t>(p.rand.size())).Bytes(p.rand);
  return true;
}

bool Encoder::Write(ByteWriter& w, const ErrPayload& p, uint8_t next) {
  if (!Known(IsKnownErrorNo(p.error_no), Rule::kErrorNo, "Error no", p.error_no)) return false;
  w.U8(next).U8(p.error_no).U16(0);
  return true;
}

bool Encoder::Write(ByteWriter& w, const GeneralExtPayload& p, uint8_t next) {
  if (!Known(IsKnownGeneralExtType(p.ext_type), Rule::kGeneralExtType, "General Extension type",
             p.ext_type)) {
    return false;
  }
  w.U8(next).U8(p.ext_type);
  return Prefixed(w, 2, p.data, "General Extension Data");
}

bool Encoder::Write(ByteWriter& w, const TrPayload& p, uint8_t next) {
  if (!Known(IsKnownTsRole(p.role), Rule::kTsRole, "TS role", p.role)) return false;
  w.U8(next).U8(p.role);
  return Timestamp(w, p.ts_type, p.value);
}

bool Encoder::Write(ByteWriter& w, const IdrPayload& p, uint8_t next) {
  if (!Known(IsKnownIdRole(p.role), Rule::kIdRole, "ID role", p.role) ||
      !Known(IsKnownIdType(p.id_type), Rule::kIdType, "ID type", p.id_type)) {
    return false;
  }
  w.U8(next).U8(p.role).U8(p.id_type);
  return Prefixed(w, 2, p.data, "IDR ID Data");
}

bool Encoder::Write(ByteWriter& w, const RandrPayload& p, uint8_t next) {
  if (!Known(IsKnownRandRole(p.role), Rule::kRandRole, "RAND role", p.role) ||
      !check_.Rand(p.rand.size(), 0)) {
    return false;
  }
  w.U8(next).U8(p.role).U8(static_cast<uint8_t>(p.rand.size())).Bytes(p.rand);
  return true;
}

bool Encoder::Write(ByteWriter& w, const SakkePayload& p, uint8_t next) {
  if (!Known(IsKnownSakkeParams(p.params), Rule::kSakkeParams, "SAKKE params", p.params) ||
      !Known(IsKnownSakkeIdScheme(p.id_scheme), Rule::kSakkeParams, "SAKKE ID scheme", p.id_scheme)) {
    return false;
  }
  w.U8(next).U8(p.params).U8(p.id_scheme);
  return Prefixed(w, 2, p.data, "SAKKE data");
}

bool Encoder::Policy(ByteWriter& w, const TicketPolicy& p, uint8_t next) {
  if (!check_.TicketPolicyHeader(p, 0)) return false;
  w.U8(next).U16(p.ticket_type).U8(p.subtype).U8(p.version);
  w.U8(static_cast<uint8_t>((p.prf_func << 1) | ((p.flags >> 11) & 1)));
  w.U8(static_cast<uint8_t>(p.flags >> 3)).U8(static_cast<uint8_t>((p.flags & 0x7) << 5));
  const size_t at = w.BeginLengthPrefix(2);
  w.U8(p.tp_data.empty() ? 0 : static_cast<uint8_t>(TypeOf(p.tp_data.front())));
  for (size_t i = 0; i < p.tp_data.size(); ++i) {
    const uint8_t nx = i + 1 < p.tp_data.size() ? static_cast<uint8_t>(TypeOf(p.tp_data[i + 1])) : 0;
    const bool ok = std::visit([&](const auto& x) { return Write(w, x, nx); }, p.tp_data[i]);
    if (!ok) return false;
  }
  return w.EndLengthPrefix(at, 2) || Fail(Rule::kFieldTooLong, "TP Data exceeds 65535 bytes");
}

bool Encoder::Write(ByteWriter& w, const TicketPayload& p, uint8_t next) {
  if (!Policy(w, p.policy, next)) return false;
  if (IsBaseTicket(p.policy)) {
    auto base = DecodeBaseTicketData(p.ticket_data);
    if (!base.ok()) {
      err_ = base.error();
      err_.offset = 0;
      return false;
    }
  }
  if (!Prefixed(w, 2, p.ticket_data, "Ticket Data")) return false;
  const size_t at = w.BeginLengthPrefix(2);
  if (p.initiator_data.has_value()) {
    const auto& id = *p.initiator_data;
    if (id.vi.auth_alg != id.vr.auth_alg) {
      return Fail(Rule::kInitiatorData, "Vr must use the authentication algorithm of Vi");
    }
    w.U8(static_cast<uint8_t>(PayloadType::kV));
    if (!Write(w, id.vi, static_cast<uint8_t>(PayloadType::kV)) || !Write(w, id.vr, 0)) return false;
  }
  return w.EndLengthPrefix(at, 2) || Fail(Rule::kFieldTooLong, "Initiator Data exceeds 65535 bytes");
}

bool Encoder::Payloads(ByteWriter& w, const std::vector<Payload>& payloads) {
  for (size_t i = 0; i < payloads.size(); ++i) {
    const bool is_sign = TypeOf(payloads[i]) == PayloadType::kSign;
    if (is_sign && i + 1 != payloads.size()) {
      return Fail(Rule::kMisplacedPayload, "SIGN must be the last payload (it has no next-payload field)");
    }
    const uint8_t nx = i + 1 < payloads.size() ? static_cast<uint8_t>(TypeOf(payloads[i + 1])) : 0;
    const bool ok = std::visit([&](const auto& x) { return Write(w, x, nx); }, payloads[i]);
    if (!ok) return false;
  }
  return true;
}

bool Encoder::KeyData(ByteWriter& w, const KeyDataPayload& k, uint8_t next) {
  if (!Known(IsKnownKeyType(k.key_type), Rule::kKeyType, "key type", k.key_type)) return false;
  const bool wants_salt = KeyTypeHasSalt(static_cast<KeyType>(k.key_type));
  if (wants_salt != k.salt.has_value()) {
    return Fail(Rule::kKeyData, std::string("key type ") + std::string(KeyTypeName(k.key_type)) +
                                    (wants_salt ? " needs a salt" : " has no salt"));
  }
  w.U8(next).U8(static_cast<uint8_t>((k.key_type << 4) | (k.kv.kv_type & 0x0F)));
  if (!Prefixed(w, 2, k.key, "Key data")) return false;
  if (k.salt.has_value() && !Prefixed(w, 2, *k.salt, "Salt data")) return false;
  return Kv(w, k.kv);
}

bool Encoder::BaseTicket(ByteWriter& w, const BaseTicketData& b) {
  w.U8(static_cast<uint8_t>(PayloadType::kT));
  if (!Prefixed(w, 2, b.thdr.data, "THDR Data")) return false;
  if (b.idr_psk.has_value() && b.idr_psk->role != static_cast<uint8_t>(IdRole::kPsk)) {
    return Fail(Rule::kTicketData, "base ticket IDR must have role IDRpsk");
  }
  const auto after_kemac = static_cast<uint8_t>(b.idr_psk ? PayloadType::kIdr : PayloadType::kV);
  return Write(w, b.t, static_cast<uint8_t>(PayloadType::kRand)) &&
         Write(w, b.rand, static_cast<uint8_t>(PayloadType::kKemac)) &&
         Write(w, b.kemac, after_kemac) &&
         (!b.idr_psk || Write(w, *b.idr_psk, static_cast<uint8_t>(PayloadType::kV))) &&
         Write(w, b.v, 0);
}

}  // namespace tkms::mikey::codec_internal
