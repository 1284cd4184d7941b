// The strict MIKEY codec's machinery, shared by its translation units
// (codec.cpp: the public API; codec_decode*.cpp: the Decoder;
// codec_encode.cpp: the Encoder). Internal to firmware/mikey.
//
// Why: one Checker holds every field rule, used by the Decoder on values just
// read and by the Encoder on the model before writing, so that what decodes
// encodes and the reverse (codec.h: Encode(Decode(b)) == b). Layouts follow
// RFC 3830 §6, RFC 6043 §6 and Appendix A, RFC 6509 §4.2.
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/byte_writer.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/codec_error.h"
#include "firmware/mikey/message.h"

namespace tkms::mikey::codec_internal {

inline constexpr uint8_t kSrtpMaxParamType = 20;  // RFC 3830 / 4771 / 7714 SRTP parameters
inline constexpr size_t kSrtpSessionDataShort = 4;   // SSRC
inline constexpr size_t kSrtpSessionDataLong = 10;   // SSRC | ROC | SEQ

template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

inline std::string Num(uint64_t v) { return std::to_string(v); }

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

// Reads untrusted bytes through one ByteReader (codec_decode*.cpp).
class Decoder {
 public:
  Decoder(const DecodeLimits& limits, CodecError& err) : limits_(limits), err_(err), check_(err) {}

  bool Fail(Rule rule, size_t offset, std::string detail);
  bool Truncated(const ByteReader& r, const char* field);

  bool U8(ByteReader& r, uint8_t& v, const char* field) { return r.ReadU8(v) || Truncated(r, field); }
  bool U16(ByteReader& r, uint16_t& v, const char* field) { return r.ReadU16(v) || Truncated(r, field); }
  bool U32(ByteReader& r, uint32_t& v, const char* field) { return r.ReadU32(v) || Truncated(r, field); }
  bool Uint(ByteReader& r, size_t n, uint64_t& v, const char* field);
  bool Bytes_(ByteReader& r, size_t n, Bytes& out, const char* field);
  bool Secret(ByteReader& r, size_t n, SecretBytes& out, const char* field);
  bool Sub(ByteReader& r, size_t n, ByteReader& sub, const char* field);
  bool End(const ByteReader& r, const char* what);
  bool Count(size_t offset);

  // ---- common header (RFC 3830 §6.1, RFC 6043 §6.1) ----
  // The fixed ten bytes are read before any of them is checked, so that a
  // caller answering with an Error message can copy version, PRF func and
  // CSB ID (RFC 6043 §5.4) even when one of the fields is refused.
  bool Header(ByteReader& r, CommonHeader& h, uint8_t& next, std::optional<HeaderPrefix>* prefix);

  bool GenericIdBlock(ByteReader& r, CommonHeader& h);

  // ---- payloads ----
  bool Kv(ByteReader& r, uint8_t kv_type, KeyValidity& kv);

  bool Kemac(ByteReader& r, KemacPayload& p, uint8_t& next);

  bool Pke(ByteReader& r, PkePayload& p, uint8_t& next);

  bool Dh(ByteReader& r, DhPayload& p, uint8_t& next);

  bool Sign(ByteReader& r, SignPayload& p);

  bool Timestamp(ByteReader& r, uint8_t& ts_type, uint64_t& value);

  bool T(ByteReader& r, TPayload& p, uint8_t& next);

  bool Id(ByteReader& r, IdPayload& p, uint8_t& next);

  bool Cert(ByteReader& r, CertPayload& p, uint8_t& next);

  bool Chash(ByteReader& r, ChashPayload& p, uint8_t& next);

  bool V(ByteReader& r, VPayload& p, uint8_t& next);

  bool Sp(ByteReader& r, SpPayload& p, uint8_t& next);

  bool Rand(ByteReader& r, RandPayload& p, uint8_t& next);

  bool Err(ByteReader& r, ErrPayload& p, uint8_t& next);

  bool GeneralExt(ByteReader& r, GeneralExtPayload& p, uint8_t& next);

  bool Tr(ByteReader& r, TrPayload& p, uint8_t& next);

  bool Idr(ByteReader& r, IdrPayload& p, uint8_t& next);

  bool Randr(ByteReader& r, RandrPayload& p, uint8_t& next);

  bool Sakke(ByteReader& r, SakkePayload& p, uint8_t& next);

  // TP / TICKET common part (RFC 6043 §6.10).
  bool PolicyHeader(ByteReader& r, TicketPolicy& p, uint8_t& next);

  bool TpData(ByteReader& r, TicketPolicy& p);

  bool InitiatorDataField(ByteReader& r, std::optional<InitiatorData>& out);

  bool Tp(ByteReader& r, TpPayload& p, uint8_t& next);

  bool Ticket(ByteReader& r, TicketPayload& p, uint8_t& next);

  bool PayloadAt(ByteReader& r, uint8_t type, Payload& out, uint8_t& next);

  bool MessageBody(ByteReader& r, Message& m, std::vector<PayloadExtent>* extents,
                   std::optional<HeaderPrefix>* prefix = nullptr);

  // ---- KEMAC plaintext: Key data sub-payloads (RFC 3830 §6.13) ----
  bool KeyDataChain(ByteReader& r, std::vector<KeyDataPayload>& out);

  // ---- base ticket (RFC 6043 Appendix A) ----
  bool BaseTicket(ByteReader& r, BaseTicketData& b);

 private:
  const DecodeLimits& limits_;
  CodecError& err_;
  Checker check_;
  size_t payload_count_ = 0;
};

// Writes a model, refusing what would not decode (codec_encode.cpp).
class Encoder {
 public:
  explicit Encoder(CodecError& err) : err_(err), check_(err) {}

  bool Fail(Rule rule, std::string detail) { return check_.Fail(rule, 0, std::move(detail)); }
  bool Known(bool known, Rule rule, const char* field, uint64_t value);
  bool Prefixed(ByteWriter& w, size_t width, ByteSpan data, const char* field);

  bool Header(ByteWriter& w, const CommonHeader& h, uint8_t next);

  bool Kv(ByteWriter& w, const KeyValidity& kv);

  bool Timestamp(ByteWriter& w, uint8_t ts_type, uint64_t value);

  bool Mac(ByteWriter& w, uint8_t alg, const Bytes& mac);

  bool Write(ByteWriter& w, const KemacPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const PkePayload& p, uint8_t next);
  bool Write(ByteWriter& w, const DhPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const SignPayload& p, uint8_t /*next*/);
  bool Write(ByteWriter& w, const TPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const IdPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const CertPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const ChashPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const VPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const SpPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const RandPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const ErrPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const GeneralExtPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const TrPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const IdrPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const RandrPayload& p, uint8_t next);
  bool Write(ByteWriter& w, const SakkePayload& p, uint8_t next);

  bool Policy(ByteWriter& w, const TicketPolicy& p, uint8_t next);
  bool Write(ByteWriter& w, const TpPayload& p, uint8_t next) { return Policy(w, p.policy, next); }
  bool Write(ByteWriter& w, const TicketPayload& p, uint8_t next);

  bool Payloads(ByteWriter& w, const std::vector<Payload>& payloads);

  bool KeyData(ByteWriter& w, const KeyDataPayload& k, uint8_t next);

  bool BaseTicket(ByteWriter& w, const BaseTicketData& b);

 private:
  CodecError& err_;
  Checker check_;
};

}  // namespace tkms::mikey::codec_internal
