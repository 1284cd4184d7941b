// Strict MIKEY codec: see codec.h. Layouts follow RFC 3830 §6, RFC 6043 §6 and
// Appendix A, RFC 6509 §4.2; the section is named at each payload.
#include "firmware/mikey/codec.h"

#include <string>
#include <type_traits>
#include <utility>

#include "firmware/base/byte_writer.h"
#include "firmware/mikey/composition.h"

namespace tkms::mikey {
namespace {

constexpr uint8_t kSrtpMaxParamType = 20;  // RFC 3830 / 4771 / 7714 SRTP parameters
constexpr size_t kSrtpSessionDataShort = 4;   // SSRC
constexpr size_t kSrtpSessionDataLong = 10;   // SSRC | ROC | SEQ

template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

std::string Num(uint64_t v) { return std::to_string(v); }

// ============================================================================
// Field checks shared by the decoder (on values just read) and the encoder
// (on the model before writing). Each returns false and fills `err` on failure.
// ============================================================================
class Checker {
 public:
  explicit Checker(CodecError& err) : err_(err) {}

  bool Fail(Rule rule, size_t offset, std::string detail) {
    err_ = CodecError{rule, offset, std::move(detail)};
    return false;
  }

  bool Known(bool known, Rule rule, size_t offset, const char* field, uint64_t value) {
    if (known) return true;
    return Fail(rule, offset, std::string(field) + " " + Num(value) + " is not defined");
  }

  bool MacLengthMatches(uint8_t alg, size_t len, size_t offset) {
    const size_t want = MacLength(static_cast<MacAlg>(alg));
    if (len == want) return true;
    return Fail(Rule::kMacLength, offset,
                "MAC of " + Num(len) + " bytes for " + std::string(MacAlgName(alg)) +
                    " which needs " + Num(want));
  }

  bool TsFits(uint8_t ts_type, uint64_t value, size_t offset) {
    if (TsLength(static_cast<TsType>(ts_type)) == 8 || value <= 0xFFFFFFFFu) return true;
    return Fail(Rule::kFieldTooLong, offset,
                "timestamp value does not fit the 32-bit " + std::string(TsTypeName(ts_type)));
  }

  bool LengthFits(size_t len, size_t max, size_t offset, const char* field) {
    if (len <= max) return true;
    return Fail(Rule::kFieldTooLong, offset,
                std::string(field) + " of " + Num(len) + " bytes exceeds " + Num(max));
  }

  bool Rand(size_t len, size_t offset) {
    if (len == 0) return Fail(Rule::kRandLength, offset, "RAND length 0");
    return LengthFits(len, 0xFF, offset, "RAND");
  }

  bool Kv(const KeyValidity& kv, size_t offset) {
    if (!Known(IsKnownKvType(kv.kv_type), Rule::kKvType, offset, "KV type", kv.kv_type)) return false;
    const auto type = static_cast<KvType>(kv.kv_type);
    const bool spi_ok = type == KvType::kSpi || kv.spi.empty();
    const bool interval_ok =
        type == KvType::kInterval || (kv.valid_from.empty() && kv.valid_to.empty());
    if (!spi_ok || !interval_ok) {
      return Fail(Rule::kKeyData, offset, "key validity data does not match KV type " +
                                              std::string(KvTypeName(kv.kv_type)));
    }
    return LengthFits(kv.spi.size(), 0xFF, offset, "SPI") &&
           LengthFits(kv.valid_from.size(), 0xFF, offset, "Valid From") &&
           LengthFits(kv.valid_to.size(), 0xFF, offset, "Valid To");
  }

  bool SrtpSessionData(const GenericIdEntry& e, size_t offset) {
    if (e.prot_type != static_cast<uint8_t>(0)) return true;
    const size_t n = e.session_data.size();
    const bool ok = (n == 0 && !e.s_flag) || (n == kSrtpSessionDataShort && !e.s_flag) ||
                    (n == kSrtpSessionDataLong && e.s_flag);
    if (ok) return true;
    return Fail(Rule::kCsIdMap, offset,
                "SRTP session data of " + Num(n) + " bytes with S=" + Num(e.s_flag ? 1 : 0) +
                    " (RFC 6043 §6.1.1 allows 0 or 4 bytes with S=0, 10 with S=1)");
  }

  bool SpParamType(uint8_t prot_type, uint8_t type, size_t offset) {
    if (prot_type == 0 && type <= kSrtpMaxParamType) return true;
    return Fail(Rule::kSpParam, offset, "SRTP policy parameter type " + Num(type) + " is not defined");
  }

  bool TicketPolicyHeader(const TicketPolicy& p, size_t offset) {
    if (!Known(IsKnownTicketType(p.ticket_type), Rule::kTicketType, offset, "ticket type",
               p.ticket_type)) {
      return false;
    }
    if (p.ticket_type == static_cast<uint16_t>(TicketType::kMikeyBase) &&
        (p.subtype != kBaseTicketSubtype || p.version != kBaseTicketVersion)) {
      return Fail(Rule::kTicketType, offset,
                  "MIKEY base ticket subtype " + Num(p.subtype) + " version " + Num(p.version) +
                      " is not defined (RFC 6043 Appendix A: subtype 1, version 1)");
    }
    if (!Known(IsKnownPrf(p.prf_func), Rule::kPrfFunc, offset, "TP PRF func", p.prf_func)) {
      return false;
    }
    if ((p.flags & ~kAllTicketFlags) != 0) {
      return Fail(Rule::kTicketFlags, offset, "reserved ticket policy bits are set");
    }
    return true;
  }

 private:
  CodecError& err_;
};

// ============================================================================
// Decoder
// ============================================================================
class Decoder {
 public:
  Decoder(const DecodeLimits& limits, CodecError& err) : limits_(limits), err_(err), check_(err) {}

  bool Fail(Rule rule, size_t offset, std::string detail) {
    return check_.Fail(rule, offset, std::move(detail));
  }
  bool Truncated(const ByteReader& r, const char* field) {
    return Fail(Rule::kTruncated, r.offset(),
                std::string("input ends inside ") + field + " (" + Num(r.remaining()) +
                    " bytes left)");
  }

  bool U8(ByteReader& r, uint8_t& v, const char* field) { return r.ReadU8(v) || Truncated(r, field); }
  bool U16(ByteReader& r, uint16_t& v, const char* field) { return r.ReadU16(v) || Truncated(r, field); }
  bool U32(ByteReader& r, uint32_t& v, const char* field) { return r.ReadU32(v) || Truncated(r, field); }
  bool Uint(ByteReader& r, size_t n, uint64_t& v, const char* field) {
    return r.ReadUint(n, v) || Truncated(r, field);
  }
  bool Bytes_(ByteReader& r, size_t n, Bytes& out, const char* field) {
    ByteSpan s;
    if (!r.ReadBytes(n, s)) return Truncated(r, field);
    out.assign(s.begin(), s.end());
    return true;
  }
  bool Secret(ByteReader& r, size_t n, SecretBytes& out, const char* field) {
    ByteSpan s;
    if (!r.ReadBytes(n, s)) return Truncated(r, field);
    out.assign(s.begin(), s.end());
    return true;
  }
  bool Sub(ByteReader& r, size_t n, ByteReader& sub, const char* field) {
    return r.ReadSub(n, sub) || Truncated(r, field);
  }
  bool End(const ByteReader& r, const char* what) {
    if (r.empty()) return true;
    return Fail(Rule::kTrailingBytes, r.offset(),
                Num(r.remaining()) + " unexpected bytes after " + what);
  }
  bool Count(size_t offset) {
    if (++payload_count_ <= limits_.max_payloads) return true;
    return Fail(Rule::kTooManyPayloads, offset,
                "more than " + Num(limits_.max_payloads) + " payloads");
  }

  // ---- common header (RFC 3830 §6.1, RFC 6043 §6.1) ----
  // The fixed ten bytes are read before any of them is checked, so that a
  // caller answering with an Error message can copy version, PRF func and
  // CSB ID (RFC 6043 §5.4) even when one of the fields is refused.
  bool Header(ByteReader& r, CommonHeader& h, uint8_t& next, std::optional<HeaderPrefix>* prefix) {
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

  bool GenericIdBlock(ByteReader& r, CommonHeader& h) {
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

  // ---- payloads ----
  bool Kv(ByteReader& r, uint8_t kv_type, KeyValidity& kv) {
    kv.kv_type = kv_type;
    uint8_t len = 0;
    switch (static_cast<KvType>(kv_type)) {
      case KvType::kNull:
        return true;
      case KvType::kSpi:
        return U8(r, len, "KV SPI length") && Bytes_(r, len, kv.spi, "KV SPI");
      case KvType::kInterval:
        if (!U8(r, len, "KV Valid From length") || !Bytes_(r, len, kv.valid_from, "KV Valid From")) {
          return false;
        }
        return U8(r, len, "KV Valid To length") && Bytes_(r, len, kv.valid_to, "KV Valid To");
    }
    return false;
  }

  bool Kemac(ByteReader& r, KemacPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    uint16_t len = 0;
    if (!U8(r, next, "KEMAC next payload") || !U8(r, p.encr_alg, "KEMAC Encr alg")) return false;
    if (!check_.Known(IsKnownEncrAlg(p.encr_alg), Rule::kEncrAlg, at + 1, "Encr alg", p.encr_alg)) {
      return false;
    }
    if (!U16(r, len, "KEMAC Encr data len") || !Bytes_(r, len, p.encr_data, "KEMAC Encr data")) {
      return false;
    }
    const size_t mac_at = r.offset();
    if (!U8(r, p.mac_alg, "KEMAC MAC alg")) return false;
    if (!check_.Known(IsKnownMacAlg(p.mac_alg), Rule::kMacAlg, mac_at, "MAC alg", p.mac_alg)) {
      return false;
    }
    return Bytes_(r, MacLength(static_cast<MacAlg>(p.mac_alg)), p.mac, "KEMAC MAC");
  }

  bool Pke(ByteReader& r, PkePayload& p, uint8_t& next) {
    const size_t at = r.offset();
    uint16_t c_len = 0;
    if (!U8(r, next, "PKE next payload") || !U16(r, c_len, "PKE C/Data len")) return false;
    p.c = static_cast<uint8_t>(c_len >> 14);
    if (!check_.Known(IsKnownPkeCache(p.c), Rule::kPkeCache, at + 1, "PKE C", p.c)) return false;
    return Bytes_(r, c_len & 0x3FFF, p.data, "PKE Data");
  }

  bool Dh(ByteReader& r, DhPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    uint8_t res_kv = 0;
    if (!U8(r, next, "DH next payload") || !U8(r, p.group, "DH-Group")) return false;
    if (!check_.Known(IsKnownDhGroup(p.group), Rule::kDhGroup, at + 1, "DH-Group", p.group)) {
      return false;
    }
    if (!Bytes_(r, DhValueLength(static_cast<DhGroup>(p.group)), p.value, "DH-value")) return false;
    const size_t kv_at = r.offset();
    if (!U8(r, res_kv, "DH Reserv/KV")) return false;
    if ((res_kv & 0xF0) != 0) return Fail(Rule::kReservedBits, kv_at, "DH Reserv bits are not zero");
    const uint8_t kv_type = res_kv & 0x0F;
    if (!check_.Known(IsKnownKvType(kv_type), Rule::kKvType, kv_at, "KV type", kv_type)) return false;
    return Kv(r, kv_type, p.kv);
  }

  bool Sign(ByteReader& r, SignPayload& p) {
    const size_t at = r.offset();
    uint16_t type_len = 0;
    if (!U16(r, type_len, "SIGN S type/Signature len")) return false;
    p.s_type = static_cast<uint8_t>(type_len >> 12);
    if (!check_.Known(IsKnownSignType(p.s_type), Rule::kSignType, at, "S type", p.s_type)) {
      return false;
    }
    return Bytes_(r, type_len & 0x0FFF, p.signature, "SIGN Signature");
  }

  bool Timestamp(ByteReader& r, uint8_t& ts_type, uint64_t& value) {
    const size_t at = r.offset();
    if (!U8(r, ts_type, "TS type")) return false;
    if (!check_.Known(IsKnownTsType(ts_type), Rule::kTsType, at, "TS type", ts_type)) return false;
    return Uint(r, TsLength(static_cast<TsType>(ts_type)), value, "TS value");
  }

  bool T(ByteReader& r, TPayload& p, uint8_t& next) {
    return U8(r, next, "T next payload") && Timestamp(r, p.ts_type, p.value);
  }

  bool Id(ByteReader& r, IdPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    if (!U8(r, next, "ID next payload") || !U8(r, p.id_type, "ID Type")) return false;
    if (!check_.Known(IsKnownIdType(p.id_type), Rule::kIdType, at + 1, "ID type", p.id_type)) {
      return false;
    }
    uint16_t len = 0;
    return U16(r, len, "ID len") && Bytes_(r, len, p.data, "ID data");
  }

  bool Cert(ByteReader& r, CertPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    if (!U8(r, next, "CERT next payload") || !U8(r, p.cert_type, "Cert type")) return false;
    if (!check_.Known(IsKnownCertType(p.cert_type), Rule::kCertType, at + 1, "Cert type",
                      p.cert_type)) {
      return false;
    }
    uint16_t len = 0;
    return U16(r, len, "Cert len") && Bytes_(r, len, p.data, "Certificate");
  }

  bool Chash(ByteReader& r, ChashPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    if (!U8(r, next, "CHASH next payload") || !U8(r, p.hash_func, "Hash func")) return false;
    if (!check_.Known(IsKnownHashFunc(p.hash_func), Rule::kHashFunc, at + 1, "Hash func",
                      p.hash_func)) {
      return false;
    }
    return Bytes_(r, HashLength(static_cast<HashFunc>(p.hash_func)), p.hash, "CHASH Hash");
  }

  bool V(ByteReader& r, VPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    if (!U8(r, next, "V next payload") || !U8(r, p.auth_alg, "V Auth alg")) return false;
    if (!check_.Known(IsKnownMacAlg(p.auth_alg), Rule::kMacAlg, at + 1, "Auth alg", p.auth_alg)) {
      return false;
    }
    return Bytes_(r, MacLength(static_cast<MacAlg>(p.auth_alg)), p.mac, "V MAC");
  }

  bool Sp(ByteReader& r, SpPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    uint16_t len = 0;
    if (!U8(r, next, "SP next payload") || !U8(r, p.policy_no, "SP Policy no") ||
        !U8(r, p.prot_type, "SP Prot type")) {
      return false;
    }
    if (!check_.Known(IsKnownProtType(p.prot_type), Rule::kProtType, at + 2, "Prot type",
                      p.prot_type)) {
      return false;
    }
    ByteReader params;
    if (!U16(r, len, "SP Policy param length") || !Sub(r, len, params, "SP policy params")) {
      return false;
    }
    while (!params.empty()) {
      const size_t param_at = params.offset();
      SpParam param;
      uint8_t plen = 0;
      if (!U8(params, param.type, "SP param Type") || !U8(params, plen, "SP param Length") ||
          !Bytes_(params, plen, param.value, "SP param Value")) {
        return false;
      }
      if (!check_.SpParamType(p.prot_type, param.type, param_at)) return false;
      p.params.push_back(std::move(param));
    }
    return true;
  }

  bool Rand(ByteReader& r, RandPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    uint8_t len = 0;
    if (!U8(r, next, "RAND next payload") || !U8(r, len, "RAND len")) return false;
    if (!check_.Rand(len, at + 1)) return false;
    return Bytes_(r, len, p.rand, "RAND");
  }

  bool Err(ByteReader& r, ErrPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    uint16_t reserved = 0;
    if (!U8(r, next, "ERR next payload") || !U8(r, p.error_no, "Error no")) return false;
    if (!check_.Known(IsKnownErrorNo(p.error_no), Rule::kErrorNo, at + 1, "Error no", p.error_no)) {
      return false;
    }
    if (!U16(r, reserved, "ERR Reserved")) return false;
    if (reserved != 0) return Fail(Rule::kReservedBits, at + 2, "ERR Reserved is not zero");
    return true;
  }

  bool GeneralExt(ByteReader& r, GeneralExtPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    uint16_t len = 0;
    if (!U8(r, next, "General Extension next payload") || !U8(r, p.ext_type, "General Extension Type")) {
      return false;
    }
    if (!check_.Known(IsKnownGeneralExtType(p.ext_type), Rule::kGeneralExtType, at + 1,
                      "General Extension type", p.ext_type)) {
      return false;
    }
    return U16(r, len, "General Extension Length") && Bytes_(r, len, p.data, "General Extension Data");
  }

  bool Tr(ByteReader& r, TrPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    if (!U8(r, next, "TR next payload") || !U8(r, p.role, "TS Role")) return false;
    if (!check_.Known(IsKnownTsRole(p.role), Rule::kTsRole, at + 1, "TS role", p.role)) return false;
    return Timestamp(r, p.ts_type, p.value);
  }

  bool Idr(ByteReader& r, IdrPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    uint16_t len = 0;
    if (!U8(r, next, "IDR next payload") || !U8(r, p.role, "ID Role")) return false;
    if (!check_.Known(IsKnownIdRole(p.role), Rule::kIdRole, at + 1, "ID role", p.role)) return false;
    if (!U8(r, p.id_type, "IDR ID Type")) return false;
    if (!check_.Known(IsKnownIdType(p.id_type), Rule::kIdType, at + 2, "ID type", p.id_type)) {
      return false;
    }
    return U16(r, len, "IDR ID len") && Bytes_(r, len, p.data, "IDR ID Data");
  }

  bool Randr(ByteReader& r, RandrPayload& p, uint8_t& next) {
    const size_t at = r.offset();
    uint8_t len = 0;
    if (!U8(r, next, "RANDR next payload") || !U8(r, p.role, "RAND Role")) return false;
    if (!check_.Known(IsKnownRandRole(p.role), Rule::kRandRole, at + 1, "RAND role", p.role)) {
      return false;
    }
    if (!U8(r, len, "RANDR RAND length") || !check_.Rand(len, at + 2)) return false;
    return Bytes_(r, len, p.rand, "RANDR RAND");
  }

  bool Sakke(ByteReader& r, SakkePayload& p, uint8_t& next) {
    const size_t at = r.offset();
    uint16_t len = 0;
    if (!U8(r, next, "SAKKE next payload") || !U8(r, p.params, "SAKKE params") ||
        !U8(r, p.id_scheme, "SAKKE ID scheme")) {
      return false;
    }
    if (!check_.Known(IsKnownSakkeParams(p.params), Rule::kSakkeParams, at + 1, "SAKKE params",
                      p.params) ||
        !check_.Known(IsKnownSakkeIdScheme(p.id_scheme), Rule::kSakkeParams, at + 2,
                      "SAKKE ID scheme", p.id_scheme)) {
      return false;
    }
    return U16(r, len, "SAKKE data length") && Bytes_(r, len, p.data, "SAKKE data");
  }

  // TP / TICKET common part (RFC 6043 §6.10).
  bool PolicyHeader(ByteReader& r, TicketPolicy& p, uint8_t& next) {
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

  bool TpData(ByteReader& r, TicketPolicy& p) {
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

  bool InitiatorDataField(ByteReader& r, std::optional<InitiatorData>& out) {
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

  bool Tp(ByteReader& r, TpPayload& p, uint8_t& next) {
    return PolicyHeader(r, p.policy, next) && TpData(r, p.policy);
  }

  bool Ticket(ByteReader& r, TicketPayload& p, uint8_t& next) {
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

  bool PayloadAt(ByteReader& r, uint8_t type, Payload& out, uint8_t& next) {
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

  bool MessageBody(ByteReader& r, Message& m, std::vector<PayloadExtent>* extents,
                   std::optional<HeaderPrefix>* prefix = nullptr) {
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

  // ---- KEMAC plaintext: Key data sub-payloads (RFC 3830 §6.13) ----
  bool KeyDataChain(ByteReader& r, std::vector<KeyDataPayload>& out) {
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

  // ---- base ticket (RFC 6043 Appendix A) ----
  bool BaseTicket(ByteReader& r, BaseTicketData& b) {
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

 private:
  const DecodeLimits& limits_;
  CodecError& err_;
  Checker check_;
  size_t payload_count_ = 0;
};

// ============================================================================
// Encoder
// ============================================================================
class Encoder {
 public:
  explicit Encoder(CodecError& err) : err_(err), check_(err) {}

  bool Fail(Rule rule, std::string detail) { return check_.Fail(rule, 0, std::move(detail)); }
  bool Known(bool known, Rule rule, const char* field, uint64_t value) {
    return check_.Known(known, rule, 0, field, value);
  }
  bool Prefixed(ByteWriter& w, size_t width, ByteSpan data, const char* field) {
    if (!check_.LengthFits(data.size(), width == 1 ? 0xFF : 0xFFFF, 0, field)) return false;
    w.Uint(width, data.size()).Bytes(data);
    return true;
  }

  bool Header(ByteWriter& w, const CommonHeader& h, uint8_t next) {
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

  bool Kv(ByteWriter& w, const KeyValidity& kv) {
    if (!check_.Kv(kv, 0)) return false;
    switch (static_cast<KvType>(kv.kv_type)) {
      case KvType::kNull: return true;
      case KvType::kSpi: return Prefixed(w, 1, kv.spi, "SPI");
      case KvType::kInterval:
        return Prefixed(w, 1, kv.valid_from, "Valid From") && Prefixed(w, 1, kv.valid_to, "Valid To");
    }
    return false;
  }

  bool Timestamp(ByteWriter& w, uint8_t ts_type, uint64_t value) {
    if (!Known(IsKnownTsType(ts_type), Rule::kTsType, "TS type", ts_type) ||
        !check_.TsFits(ts_type, value, 0)) {
      return false;
    }
    w.U8(ts_type).Uint(TsLength(static_cast<TsType>(ts_type)), value);
    return true;
  }

  bool Mac(ByteWriter& w, uint8_t alg, const Bytes& mac) {
    if (!Known(IsKnownMacAlg(alg), Rule::kMacAlg, "MAC alg", alg) ||
        !check_.MacLengthMatches(alg, mac.size(), 0)) {
      return false;
    }
    w.U8(alg).Bytes(mac);
    return true;
  }

  bool Write(ByteWriter& w, const KemacPayload& p, uint8_t next) {
    if (!Known(IsKnownEncrAlg(p.encr_alg), Rule::kEncrAlg, "Encr alg", p.encr_alg)) return false;
    w.U8(next).U8(p.encr_alg);
    return Prefixed(w, 2, p.encr_data, "KEMAC Encr data") && Mac(w, p.mac_alg, p.mac);
  }
  bool Write(ByteWriter& w, const PkePayload& p, uint8_t next) {
    if (!Known(IsKnownPkeCache(p.c), Rule::kPkeCache, "PKE C", p.c) ||
        !check_.LengthFits(p.data.size(), 0x3FFF, 0, "PKE Data")) {
      return false;
    }
    w.U8(next).U16(static_cast<uint16_t>((p.c << 14) | p.data.size())).Bytes(p.data);
    return true;
  }
  bool Write(ByteWriter& w, const DhPayload& p, uint8_t next) {
    if (!Known(IsKnownDhGroup(p.group), Rule::kDhGroup, "DH-Group", p.group)) return false;
    const size_t want = DhValueLength(static_cast<DhGroup>(p.group));
    if (p.value.size() != want) {
      return Fail(Rule::kFieldTooLong, "DH-value of " + Num(p.value.size()) + " bytes, group needs " + Num(want));
    }
    w.U8(next).U8(p.group).Bytes(p.value).U8(p.kv.kv_type & 0x0F);
    return Kv(w, p.kv);
  }
  bool Write(ByteWriter& w, const SignPayload& p, uint8_t /*next*/) {
    if (!Known(IsKnownSignType(p.s_type), Rule::kSignType, "S type", p.s_type) ||
        !check_.LengthFits(p.signature.size(), 0x0FFF, 0, "Signature")) {
      return false;
    }
    w.U16(static_cast<uint16_t>((p.s_type << 12) | p.signature.size())).Bytes(p.signature);
    return true;
  }
  bool Write(ByteWriter& w, const TPayload& p, uint8_t next) {
    w.U8(next);
    return Timestamp(w, p.ts_type, p.value);
  }
  bool Write(ByteWriter& w, const IdPayload& p, uint8_t next) {
    if (!Known(IsKnownIdType(p.id_type), Rule::kIdType, "ID type", p.id_type)) return false;
    w.U8(next).U8(p.id_type);
    return Prefixed(w, 2, p.data, "ID data");
  }
  bool Write(ByteWriter& w, const CertPayload& p, uint8_t next) {
    if (!Known(IsKnownCertType(p.cert_type), Rule::kCertType, "Cert type", p.cert_type)) return false;
    w.U8(next).U8(p.cert_type);
    return Prefixed(w, 2, p.data, "Certificate");
  }
  bool Write(ByteWriter& w, const ChashPayload& p, uint8_t next) {
    if (!Known(IsKnownHashFunc(p.hash_func), Rule::kHashFunc, "Hash func", p.hash_func)) return false;
    const size_t want = HashLength(static_cast<HashFunc>(p.hash_func));
    if (p.hash.size() != want) {
      return Fail(Rule::kFieldTooLong, "hash of " + Num(p.hash.size()) + " bytes, function needs " + Num(want));
    }
    w.U8(next).U8(p.hash_func).Bytes(p.hash);
    return true;
  }
  bool Write(ByteWriter& w, const VPayload& p, uint8_t next) {
    w.U8(next);
    return Mac(w, p.auth_alg, p.mac);
  }
  bool Write(ByteWriter& w, const SpPayload& p, uint8_t next) {
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
  bool Write(ByteWriter& w, const RandPayload& p, uint8_t next) {
    if (!check_.Rand(p.rand.size(), 0)) return false;
    w.U8(next).U8(static_cast<uint8_t>(p.rand.size())).Bytes(p.rand);
    return true;
  }
  bool Write(ByteWriter& w, const ErrPayload& p, uint8_t next) {
    if (!Known(IsKnownErrorNo(p.error_no), Rule::kErrorNo, "Error no", p.error_no)) return false;
    w.U8(next).U8(p.error_no).U16(0);
    return true;
  }
  bool Write(ByteWriter& w, const GeneralExtPayload& p, uint8_t next) {
    if (!Known(IsKnownGeneralExtType(p.ext_type), Rule::kGeneralExtType, "General Extension type",
               p.ext_type)) {
      return false;
    }
    w.U8(next).U8(p.ext_type);
    return Prefixed(w, 2, p.data, "General Extension Data");
  }
  bool Write(ByteWriter& w, const TrPayload& p, uint8_t next) {
    if (!Known(IsKnownTsRole(p.role), Rule::kTsRole, "TS role", p.role)) return false;
    w.U8(next).U8(p.role);
    return Timestamp(w, p.ts_type, p.value);
  }
  bool Write(ByteWriter& w, const IdrPayload& p, uint8_t next) {
    if (!Known(IsKnownIdRole(p.role), Rule::kIdRole, "ID role", p.role) ||
        !Known(IsKnownIdType(p.id_type), Rule::kIdType, "ID type", p.id_type)) {
      return false;
    }
    w.U8(next).U8(p.role).U8(p.id_type);
    return Prefixed(w, 2, p.data, "IDR ID Data");
  }
  bool Write(ByteWriter& w, const RandrPayload& p, uint8_t next) {
    if (!Known(IsKnownRandRole(p.role), Rule::kRandRole, "RAND role", p.role) ||
        !check_.Rand(p.rand.size(), 0)) {
      return false;
    }
    w.U8(next).U8(p.role).U8(static_cast<uint8_t>(p.rand.size())).Bytes(p.rand);
    return true;
  }
  bool Write(ByteWriter& w, const SakkePayload& p, uint8_t next) {
    if (!Known(IsKnownSakkeParams(p.params), Rule::kSakkeParams, "SAKKE params", p.params) ||
        !Known(IsKnownSakkeIdScheme(p.id_scheme), Rule::kSakkeParams, "SAKKE ID scheme", p.id_scheme)) {
      return false;
    }
    w.U8(next).U8(p.params).U8(p.id_scheme);
    return Prefixed(w, 2, p.data, "SAKKE data");
  }

  bool Policy(ByteWriter& w, const TicketPolicy& p, uint8_t next) {
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
  bool Write(ByteWriter& w, const TpPayload& p, uint8_t next) { return Policy(w, p.policy, next); }
  bool Write(ByteWriter& w, const TicketPayload& p, uint8_t next) {
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

  bool Payloads(ByteWriter& w, const std::vector<Payload>& payloads) {
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

  bool KeyData(ByteWriter& w, const KeyDataPayload& k, uint8_t next) {
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

  bool BaseTicket(ByteWriter& w, const BaseTicketData& b) {
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

 private:
  CodecError& err_;
  Checker check_;
};

}  // namespace

PayloadType TypeOf(const Payload& p) {
  return std::visit(
      Overloaded{
          [](const KemacPayload&) { return PayloadType::kKemac; },
          [](const PkePayload&) { return PayloadType::kPke; },
          [](const DhPayload&) { return PayloadType::kDh; },
          [](const SignPayload&) { return PayloadType::kSign; },
          [](const TPayload&) { return PayloadType::kT; },
          [](const IdPayload&) { return PayloadType::kId; },
          [](const CertPayload&) { return PayloadType::kCert; },
          [](const ChashPayload&) { return PayloadType::kChash; },
          [](const VPayload&) { return PayloadType::kV; },
          [](const SpPayload&) { return PayloadType::kSp; },
          [](const RandPayload&) { return PayloadType::kRand; },
          [](const ErrPayload&) { return PayloadType::kErr; },
          [](const TrPayload&) { return PayloadType::kTr; },
          [](const IdrPayload&) { return PayloadType::kIdr; },
          [](const RandrPayload&) { return PayloadType::kRandr; },
          [](const TpPayload&) { return PayloadType::kTp; },
          [](const TicketPayload&) { return PayloadType::kTicket; },
          [](const GeneralExtPayload&) { return PayloadType::kGeneralExt; },
          [](const SakkePayload&) { return PayloadType::kSakke; },
      },
      p);
}

PayloadType TypeOf(const TpDataPayload& p) {
  return std::visit(Overloaded{
                        [](const IdrPayload&) { return PayloadType::kIdr; },
                        [](const TrPayload&) { return PayloadType::kTr; },
                        [](const KemacPayload&) { return PayloadType::kKemac; },
                    },
                    p);
}

bool IsBaseTicket(const TicketPolicy& policy) {
  return policy.ticket_type == static_cast<uint16_t>(TicketType::kMikeyBase) &&
         policy.subtype == kBaseTicketSubtype && policy.version == kBaseTicketVersion;
}

Result<Message, CodecError> Decode(ByteSpan bytes, const DecodeOptions& options, DecodeReport& report) {
  CodecError err;
  report.extents.clear();
  report.header.reset();
  if (bytes.size() > options.limits.max_message_bytes) {
    return CodecError{Rule::kMessageTooLarge, 0,
                      "message of " + Num(bytes.size()) + " bytes exceeds the limit of " +
                          Num(options.limits.max_message_bytes)};
  }
  ByteReader r(bytes);
  Decoder d(options.limits, err);
  Message m;
  if (!d.MessageBody(r, m, &report.extents, &report.header)) return err;
  if (options.check_composition) {
    auto composition = CheckComposition(m, report.extents);
    if (!composition.ok()) return std::move(composition).error();
  }
  return m;
}

Result<Message, CodecError> Decode(ByteSpan bytes, const DecodeOptions& options,
                                   std::vector<PayloadExtent>& extents) {
  DecodeReport report;
  auto m = Decode(bytes, options, report);
  extents = std::move(report.extents);
  return m;
}

Result<Message, CodecError> Decode(ByteSpan bytes, const DecodeOptions& options) {
  DecodeReport report;
  return Decode(bytes, options, report);
}

Result<Bytes, CodecError> Encode(const Message& message) {
  CodecError err;
  Encoder e(err);
  ByteWriter w;
  const uint8_t first =
      message.payloads.empty() ? 0 : static_cast<uint8_t>(TypeOf(message.payloads.front()));
  if (!e.Header(w, message.header, first) || !e.Payloads(w, message.payloads)) return err;
  return w.Take();
}

Result<Bytes, CodecError> EncodePayload(const Payload& payload, uint8_t next_payload) {
  CodecError err;
  Encoder e(err);
  ByteWriter w;
  const bool ok = std::visit([&](const auto& x) { return e.Write(w, x, next_payload); }, payload);
  if (!ok) return err;
  return w.Take();
}

Result<std::vector<KeyDataPayload>, CodecError> DecodeKeyDataChain(ByteSpan plaintext,
                                                                   size_t base_offset) {
  CodecError err;
  DecodeLimits limits;
  Decoder d(limits, err);
  ByteReader r(plaintext, base_offset);
  std::vector<KeyDataPayload> keys;
  if (!d.KeyDataChain(r, keys)) return err;
  return keys;
}

Result<SecretBytes, CodecError> EncodeKeyDataChain(const std::vector<KeyDataPayload>& keys) {
  CodecError err;
  Encoder e(err);
  ByteWriter w;
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint8_t next = i + 1 < keys.size() ? static_cast<uint8_t>(PayloadType::kKeyData) : 0;
    if (!e.KeyData(w, keys[i], next)) return err;
  }
  Bytes plain = w.Take();
  SecretBytes out(plain.begin(), plain.end());
  SecureWipe(plain.data(), plain.size());
  return out;
}

Result<BaseTicketData, CodecError> DecodeBaseTicketData(ByteSpan bytes, size_t base_offset) {
  CodecError err;
  DecodeLimits limits;
  Decoder d(limits, err);
  ByteReader r(bytes, base_offset);
  BaseTicketData b;
  if (!d.BaseTicket(r, b)) return err;
  return b;
}

Result<Bytes, CodecError> EncodeBaseTicketData(const BaseTicketData& data) {
  CodecError err;
  Encoder e(err);
  ByteWriter w;
  if (!e.BaseTicket(w, data)) return err;
  return w.Take();
}

}  // namespace tkms::mikey
