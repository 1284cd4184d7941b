// The Decoder: common header (RFC 3830 §6.1, RFC 6043 §6.1), the payload
// loop, ticket policy and TICKET (RFC 6043 §6.10), Key data chains (RFC 3830
// §6.13) and the base ticket (RFC 6043 Appendix A). Every field is read
// through ByteReader; nothing recurses on input.
#include <string>
#include <utility>

#include "firmware/mikey/codec_internal.h"
#include "firmware/mikey/composition.h"

namespace tkms::mikey::codec_internal {

bool Decoder::Fail(Rule rule, size_t offset, std::string detail) {
  return check_.Fail(rule, offset, std::move(detail));
}

bool Decoder::Truncated(const ByteReader& r, const char* field) {
  return Fail(Rule::kTruncated, r.offset(),
              std::string("input ends inside ") + field + " (" + Num(r.remaining()) +
                  " bytes left)");
}

bool Decoder::Uint(ByteReader& r, size_t n, uint64_t& v, const char* field) {
  return r.ReadUint(n, v) || Truncated(r, field);
}

bool Decoder::Bytes_(ByteReader& r, size_t n, Bytes& out, const char* field) {
  ByteSpan s;
  if (!r.ReadBytes(n, s)) return Truncated(r, field);
  out.assign(s.begin(), s.end());
  return true;
}

bool Decoder::Secret(ByteReader& r, size_t n, SecretBytes& out, const char* field) {
  ByteSpan s;
  if (!r.ReadBytes(n, s)) return Truncated(r, field);
  out.assign(s.begin(), s.end());
  return true;
}

bool Decoder::Sub(ByteReader& r, size_t n, ByteReader& sub, const char* field) {
  return r.ReadSub(n, sub) || Truncated(r, field);
}

bool Decoder::End(const ByteReader& r, const char* what) {
  if (r.empty()) return true;
  return Fail(Rule::kTrailingBytes, r.offset(),
              Num(r.remaining()) + " unexpected bytes after " + what);
}

bool Decoder::Count(size_t offset) {
  if (++payload_count_ <= limits_.max_payloads) return true;
  return Fail(Rule::kTooManyPayloads, offset,
              "more than " + Num(limits_.max_payloads) + " payloads");
}

bool Decoder::Header(ByteReader& r, CommonHeader& h, uint8_t& next, std::optional<HeaderPrefix>* prefix) {
  const size_t at = r.offset();
  uint8_t vprf = 0;
  if (!U8(r, h.version, "HDR version")) return false;
  if (h.version != kMikeyVersion) {
    return Fail(Rule::kVersion, at, "MIKEY version " + Num(h.version) + " (only 1 is defined)");
  }
  if (!U8(r, h.data_type, "HDR data type") || !U8(r, next, "HDR next payload") || !U8(r, vprf, "HDR V/PRF") ||
      !U32(r, h.csb_id, "HDR CSB ID") || !U8(r, h.cs_count, "HDR #CS")) {
    return false;
  }
  const size_t map_at = r.offset();
  if (!U8(r, h.cs_id_map_type, "HDR CS ID map type")) return false;
  h.v = (vprf & 0x80) != 0;
  h.prf_func = vprf & 0x7F;
  if (prefix != nullptr) *prefix = HeaderPrefix{h.version, h.data_type, h.prf_func, h.csb_id};
  if (!check_.Known(IsKnownDataType(h.data_type), Rule::kDataType, at + 1, "data type",
                    h.data_type)) {
    return false;
  }
  // An Error message copies the PRF func of the message in error, whatever
  // it was (RFC 6043 §5.4: "SHALL be identical").
  if (h.data_type != static_cast<uint8_t>(DataType::kError) &&
      !check_.Known(IsKnownPrf(h.prf_func), Rule::kPrfFunc, at + 3, "PRF func", h.prf_func)) {
    return false;
  }
  if (!check_.Known(IsKnownCsIdMapType(h.cs_id_map_type), Rule::kCsIdMapType, map_at,
                    "CS ID map type", h.cs_id_map_type)) {
    return false;
  }
  switch (static_cast<CsIdMapType>(h.cs_id_map_type)) {
    case CsIdMapType::kEmpty:
      return true;
    case CsIdMapType::kSrtpId:
      for (size_t i = 0; i < h.cs_count; ++i) {
        SrtpIdEntry e;
        if (!U8(r, e.policy_no, "SRTP-ID Policy_no") || !U32(r, e.ssrc, "SRTP-ID SSRC") ||
            !U32(r, e.roc, "SRTP-ID ROC")) {
          return false;
        }
        h.srtp_map.push_back(e);
      }
      return true;
    case CsIdMapType::kGenericId:
      for (size_t i = 0; i < h.cs_count; ++i) {
        if (!GenericIdBlock(r, h)) return false;
      }
      return true;
  }
  return false;
}

bool Decoder::GenericIdBlock(ByteReader& r, CommonHeader& h) {
  const size_t at = r.offset();
  GenericIdEntry e;
  uint8_t sp = 0;
  uint16_t session_len = 0;
  uint8_t spi_len = 0;
  if (!U8(r, e.cs_id, "GENERIC-ID CS ID") || !U8(r, e.prot_type, "GENERIC-ID Prot type")) {
    return false;
  }
  if (!check_.Known(IsKnownProtType(e.prot_type), Rule::kProtType, at + 1, "Prot type",
                    e.prot_type)) {
    return false;
  }
  if (!U8(r, sp, "GENERIC-ID S/#P")) return false;
  e.s_flag = (sp & 0x80) != 0;
  if (!Bytes_(r, sp & 0x7F, e.policies, "GENERIC-ID policies") ||
      !U16(r, session_len, "GENERIC-ID Session Data Length") ||
      !Bytes_(r, session_len, e.session_data, "GENERIC-ID Session Data") ||
      !U8(r, spi_len, "GENERIC-ID SPI Length") || !Bytes_(r, spi_len, e.spi, "GENERIC-ID SPI")) {
    return false;
  }
  if (!check_.SrtpSessionData(e, at)) return false;
  for (const auto& other : h.generic_map) {
    if (other.cs_id == e.cs_id) {
      return Fail(Rule::kCsIdMap, at, "CS ID " + Num(e.cs_id) + " appears twice");
    }
  }
  h.generic_map.push_back(std::move(e));
  return true;
}

bool Decoder::PolicyHeader(ByteReader& r, TicketPolicy& p, uint8_t& next) {
  const size_t at = r.offset();
  uint8_t b5 = 0, b6 = 0, b7 = 0;
  if (!U8(r, next, "TP next payload")) return false;
  uint16_t type = 0;
  if (!U16(r, type, "Ticket Type") || !U8(r, p.subtype, "Ticket Subtype") ||
      !U8(r, p.version, "Ticket Version") || !U8(r, b5, "TP PRF func/D") ||
      !U8(r, b6, "TP flags") || !U8(r, b7, "TP flags")) {
    return false;
  }
  p.ticket_type = type;
  p.prf_func = b5 >> 1;
  p.flags = static_cast<uint16_t>(((b5 & 1u) << 11) | (uint16_t{b6} << 3) | (b7 >> 5));
  if ((b7 & 0x1F) != 0) return Fail(Rule::kTicketFlags, at + 7, "TP Res bits are not zero");
  return check_.TicketPolicyHeader(p, at + 1);
}

bool Decoder::TpData(ByteReader& r, TicketPolicy& p) {
  uint16_t len = 0;
  ByteReader tp;
  const size_t at = r.offset();
  if (!U16(r, len, "TP Data length") || !Sub(r, len, tp, "TP Data")) return false;
  uint8_t next = 0;
  if (!tp.ReadU8(next)) {
    return Fail(Rule::kTpData, at, "TP Data is empty (it starts with a First Payload byte)");
  }
  while (next != 0) {
    const size_t pat = tp.offset();
    if (!Count(pat)) return false;
    const uint8_t type = next;
    bool ok = false;
    switch (static_cast<PayloadType>(type)) {
      case PayloadType::kIdr: {
        IdrPayload x;
        ok = Idr(tp, x, next);
        p.tp_data.emplace_back(std::move(x));
        break;
      }
      case PayloadType::kTr: {
        TrPayload x;
        ok = Tr(tp, x, next);
        p.tp_data.emplace_back(std::move(x));
        break;
      }
      case PayloadType::kKemac: {
        KemacPayload x;
        ok = Kemac(tp, x, next);
        p.tp_data.emplace_back(std::move(x));
        break;
      }
      default:
        return Fail(Rule::kTpData, pat,
                    "payload type " + Num(type) + " is not allowed in TP Data (IDR, TR, KEMAC)");
    }
    if (!ok) return false;
  }
  return End(tp, "the last payload of TP Data");
}

bool Decoder::InitiatorDataField(ByteReader& r, std::optional<InitiatorData>& out) {
  uint16_t len = 0;
  ByteReader id;
  if (!U16(r, len, "Initiator Data length") || !Sub(r, len, id, "Initiator Data")) return false;
  if (len == 0) return true;
  const size_t at = id.offset();
  uint8_t first = 0, next_vi = 0, next_vr = 0;
  InitiatorData data;
  if (!U8(id, first, "Initiator Data First Payload")) return false;
  if (first != static_cast<uint8_t>(PayloadType::kV)) {
    return Fail(Rule::kInitiatorData, at, "Initiator Data must start with Vi (RFC 6043 §6.10)");
  }
  if (!V(id, data.vi, next_vi)) return false;
  if (next_vi != static_cast<uint8_t>(PayloadType::kV)) {
    return Fail(Rule::kInitiatorData, at + 1, "Vi must be followed by Vr");
  }
  const size_t vr_at = id.offset();
  if (!V(id, data.vr, next_vr)) return false;
  if (next_vr != 0) return Fail(Rule::kInitiatorData, vr_at, "Vr must be the last payload");
  if (data.vr.auth_alg != data.vi.auth_alg) {
    return Fail(Rule::kInitiatorData, vr_at, "Vr must use the authentication algorithm of Vi");
  }
  if (!End(id, "Vr in Initiator Data")) return false;
  out = std::move(data);
  return true;
}

bool Decoder::Tp(ByteReader& r, TpPayload& p, uint8_t& next) {
  return PolicyHeader(r, p.policy, next) && TpData(r, p.policy);
}

bool Decoder::Ticket(ByteReader& r, TicketPayload& p, uint8_t& next) {
  if (!PolicyHeader(r, p.policy, next) || !TpData(r, p.policy)) return false;
  uint16_t len = 0;
  const size_t td_at = r.offset() + 2;
  if (!U16(r, len, "Ticket Data length") || !Bytes_(r, len, p.ticket_data, "Ticket Data")) {
    return false;
  }
  if (IsBaseTicket(p.policy)) {
    auto base = DecodeBaseTicketData(p.ticket_data, td_at);
    if (!base.ok()) {
      err_ = base.error();
      return false;
    }
  }
  return InitiatorDataField(r, p.initiator_data);
}

bool Decoder::PayloadAt(ByteReader& r, uint8_t type, Payload& out, uint8_t& next) {
  auto read = [&](auto payload, auto fn) {
    const bool ok = (this->*fn)(r, payload, next);
    out = std::move(payload);
    return ok;
  };
  switch (static_cast<PayloadType>(type)) {
    case PayloadType::kKemac: return read(KemacPayload{}, &Decoder::Kemac);
    case PayloadType::kPke: return read(PkePayload{}, &Decoder::Pke);
    case PayloadType::kDh: return read(DhPayload{}, &Decoder::Dh);
    case PayloadType::kSign: {
      SignPayload s;
      next = 0;
      const bool ok = Sign(r, s);
      out = std::move(s);
      return ok;
    }
    case PayloadType::kT: return read(TPayload{}, &Decoder::T);
    case PayloadType::kId: return read(IdPayload{}, &Decoder::Id);
    case PayloadType::kCert: return read(CertPayload{}, &Decoder::Cert);
    case PayloadType::kChash: return read(ChashPayload{}, &Decoder::Chash);
    case PayloadType::kV: return read(VPayload{}, &Decoder::V);
    case PayloadType::kSp: return read(SpPayload{}, &Decoder::Sp);
    case PayloadType::kRand: return read(RandPayload{}, &Decoder::Rand);
    case PayloadType::kErr: return read(ErrPayload{}, &Decoder::Err);
    case PayloadType::kTr: return read(TrPayload{}, &Decoder::Tr);
    case PayloadType::kIdr: return read(IdrPayload{}, &Decoder::Idr);
    case PayloadType::kRandr: return read(RandrPayload{}, &Decoder::Randr);
    case PayloadType::kTp: return read(TpPayload{}, &Decoder::Tp);
    case PayloadType::kTicket: return read(TicketPayload{}, &Decoder::Ticket);
    case PayloadType::kGeneralExt: return read(GeneralExtPayload{}, &Decoder::GeneralExt);
    case PayloadType::kSakke: return read(SakkePayload{}, &Decoder::Sakke);
    case PayloadType::kKeyData:
      return Fail(Rule::kMisplacedPayload, r.offset(),
                  "a Key data sub-payload may only appear inside a KEMAC");
    case PayloadType::kLast:
      break;
  }
  return Fail(Rule::kUnknownPayload, r.offset(), "payload type " + Num(type) + " is not defined");
}

bool Decoder::MessageBody(ByteReader& r, Message& m, std::vector<PayloadExtent>* extents,
                 std::optional<HeaderPrefix>* prefix) {
  uint8_t next = 0;
  if (!Header(r, m.header, next, prefix)) return false;
  if (extents != nullptr) extents->push_back({0, r.offset()});
  while (next != 0) {
    const size_t at = r.offset();
    if (!Count(at)) return false;
    Payload p;
    const uint8_t type = next;
    if (!PayloadAt(r, type, p, next)) return false;
    m.payloads.push_back(std::move(p));
    if (extents != nullptr) extents->push_back({at, r.offset() - at});
  }
  return End(r, "the last payload");
}

bool Decoder::KeyDataChain(ByteReader& r, std::vector<KeyDataPayload>& out) {
  if (r.empty()) return true;  // an update may carry no keys (RFC 3830 §6.2)
  uint8_t next = static_cast<uint8_t>(PayloadType::kKeyData);
  while (next != 0) {
    const size_t at = r.offset();
    if (out.size() >= limits_.max_payloads) {
      return Fail(Rule::kTooManyPayloads, at, "more than " + Num(limits_.max_payloads) + " keys");
    }
    KeyDataPayload k;
    uint8_t type_kv = 0;
    uint16_t len = 0;
    if (!U8(r, next, "Key data next payload") || !U8(r, type_kv, "Key data Type/KV")) return false;
    if (next != 0 && next != static_cast<uint8_t>(PayloadType::kKeyData)) {
      return Fail(Rule::kKeyData, at,
                  "Key data next payload " + Num(next) + " (only 20 or 0 are allowed)");
    }
    k.key_type = type_kv >> 4;
    const uint8_t kv_type = type_kv & 0x0F;
    if (!check_.Known(IsKnownKeyType(k.key_type), Rule::kKeyType, at + 1, "key type", k.key_type) ||
        !check_.Known(IsKnownKvType(kv_type), Rule::kKvType, at + 1, "KV type", kv_type)) {
      return false;
    }
    if (!U16(r, len, "Key data len") || !Secret(r, len, k.key, "Key data")) return false;
    if (KeyTypeHasSalt(static_cast<KeyType>(k.key_type))) {
      SecretBytes salt;
      if (!U16(r, len, "Salt len") || !Secret(r, len, salt, "Salt data")) return false;
      k.salt = std::move(salt);
    }
    if (!Kv(r, kv_type, k.kv)) return false;
    out.push_back(std::move(k));
  }
  return End(r, "the last Key data sub-payload");
}

bool Decoder::BaseTicket(ByteReader& r, BaseTicketData& b) {
  uint8_t next = 0;
  uint16_t len = 0;
  if (!U8(r, next, "THDR next payload") || !U16(r, len, "THDR Data length") ||
      !Bytes_(r, len, b.thdr.data, "THDR Data")) {
    return false;
  }
  auto expect = [&](PayloadType want, const char* name) {
    if (next == static_cast<uint8_t>(want)) return true;
    return Fail(Rule::kTicketData, r.offset(),
                std::string("base ticket Ticket Data: expected ") + name + ", found payload type " +
                    Num(next) + " (RFC 6043 A.1: THDR, T, RAND, KEMAC, [IDRpsk], V)");
  };
  if (!expect(PayloadType::kT, "T") || !T(r, b.t, next)) return false;
  if (!expect(PayloadType::kRand, "RAND") || !Rand(r, b.rand, next)) return false;
  if (!expect(PayloadType::kKemac, "KEMAC") || !Kemac(r, b.kemac, next)) return false;
  if (next == static_cast<uint8_t>(PayloadType::kIdr)) {
    const size_t idr_at = r.offset();
    IdrPayload idr;
    if (!Idr(r, idr, next)) return false;
    if (idr.role != static_cast<uint8_t>(IdRole::kPsk)) {
      return Fail(Rule::kTicketData, idr_at, "base ticket IDR must have role IDRpsk");
    }
    b.idr_psk = std::move(idr);
  }
  if (!expect(PayloadType::kV, "V") || !V(r, b.v, next)) return false;
  if (next != 0) {
    return Fail(Rule::kTicketData, r.offset(), "V must be the last payload of the Ticket Data");
  }
  return End(r, "the base ticket's V payload");
}

}  // namespace tkms::mikey::codec_internal
