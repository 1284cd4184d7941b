// The Decoder's readers of the RFC 3830 §6 / RFC 6043 §6 / RFC 6509 §4.2
// payloads other than TP and TICKET (codec_decode.cpp).
#include <string>
#include <utility>

#include "firmware/mikey/codec_internal.h"
#include "firmware/mikey/composition.h"

namespace tkms::mikey::codec_internal {

bool Decoder::Kv(ByteReader& r, uint8_t kv_type, KeyValidity& kv) {
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

bool Decoder::Kemac(ByteReader& r, KemacPayload& p, uint8_t& next) {
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

bool Decoder::Pke(ByteReader& r, PkePayload& p, uint8_t& next) {
  const size_t at = r.offset();
  uint16_t c_len = 0;
  if (!U8(r, next, "PKE next payload") || !U16(r, c_len, "PKE C/Data len")) return false;
  p.c = static_cast<uint8_t>(c_len >> 14);
  if (!check_.Known(IsKnownPkeCache(p.c), Rule::kPkeCache, at + 1, "PKE C", p.c)) return false;
  return Bytes_(r, c_len & 0x3FFF, p.data, "PKE Data");
}

bool Decoder::Dh(ByteReader& r, DhPayload& p, uint8_t& next) {
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

bool Decoder::Sign(ByteReader& r, SignPayload& p) {
  const size_t at = r.offset();
  uint16_t type_len = 0;
  if (!U16(r, type_len, "SIGN S type/Signature len")) return false;
  p.s_type = static_cast<uint8_t>(type_len >> 12);
  if (!check_.Known(IsKnownSignType(p.s_type), Rule::kSignType, at, "S type", p.s_type)) {
    return false;
  }
  return Bytes_(r, type_len & 0x0FFF, p.signature, "SIGN Signature");
}

bool Decoder::Timestamp(ByteReader& r, uint8_t& ts_type, uint64_t& value) {
  const size_t at = r.offset();
  if (!U8(r, ts_type, "TS type")) return false;
  if (!check_.Known(IsKnownTsType(ts_type), Rule::kTsType, at, "TS type", ts_type)) return false;
  return Uint(r, TsLength(static_cast<TsType>(ts_type)), value, "TS value");
}

bool Decoder::T(ByteReader& r, TPayload& p, uint8_t& next) {
  return U8(r, next, "T next payload") && Timestamp(r, p.ts_type, p.value);
}

bool Decoder::Id(ByteReader& r, IdPayload& p, uint8_t& next) {
  const size_t at = r.offset();
  if (!U8(r, next, "ID next payload") || !U8(r, p.id_type, "ID Type")) return false;
  if (!check_.Known(IsKnownIdType(p.id_type), Rule::kIdType, at + 1, "ID type", p.id_type)) {
    return false;
  }
  uint16_t len = 0;
  return U16(r, len, "ID len") && Bytes_(r, len, p.data, "ID data");
}

bool Decoder::Cert(ByteReader& r, CertPayload& p, uint8_t& next) {
  const size_t at = r.offset();
  if (!U8(r, next, "CERT next payload") || !U8(r, p.cert_type, "Cert type")) return false;
  if (!check_.Known(IsKnownCertType(p.cert_type), Rule::kCertType, at + 1, "Cert type",
                    p.cert_type)) {
    return false;
  }
  uint16_t len = 0;
  return U16(r, len, "Cert len") && Bytes_(r, len, p.data, "Certificate");
}

bool Decoder::Chash(ByteReader& r, ChashPayload& p, uint8_t& next) {
  const size_t at = r.offset();
  if (!U8(r, next, "CHASH next payload") || !U8(r, p.hash_func, "Hash func")) return false;
  if (!check_.Known(IsKnownHashFunc(p.hash_func), Rule::kHashFunc, at + 1, "Hash func",
                    p.hash_func)) {
    return false;
  }
  return Bytes_(r, HashLength(static_cast<HashFunc>(p.hash_func)), p.hash, "CHASH Hash");
}

bool Decoder::V(ByteReader& r, VPayload& p, uint8_t& next) {
  const size_t at = r.offset();
  if (!U8(r, next, "V next payload") || !U8(r, p.auth_alg, "V Auth alg")) return false;
  if (!check_.Known(IsKnownMacAlg(p.auth_alg), Rule::kMacAlg, at + 1, "Auth alg", p.auth_alg)) {
    return false;
  }
  return Bytes_(r, MacLength(static_cast<MacAlg>(p.auth_alg)), p.mac, "V MAC");
}

bool Decoder::Sp(ByteReader& r, SpPayload& p, uint8_t& next) {
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

bool Decoder::Rand(ByteReader& r, RandPayload& p, uint8_t& next) {
  const size_t at = r.offset();
  uint8_t len = 0;
  if (!U8(r, next, "RAND next payload") || !U8(r, len, "RAND len")) return false;
  if (!check_.Rand(len, at + 1)) return false;
  return Bytes_(r, len, p.rand, "RAND");
}

bool Decoder::Err(ByteReader& r, ErrPayload& p, uint8_t& next) {
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

bool Decoder::GeneralExt(ByteReader& r, GeneralExtPayload& p, uint8_t& next) {
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

bool Decoder::Tr(ByteReader& r, TrPayload& p, uint8_t& next) {
  const size_t at = r.offset();
  if (!U8(r, next, "TR next payload") || !U8(r, p.role, "TS Role")) return false;
  if (!check_.Known(IsKnownTsRole(p.role), Rule::kTsRole, at + 1, "TS role", p.role)) return false;
  return Timestamp(r, p.ts_type, p.value);
}

bool Decoder::Idr(ByteReader& r, IdrPayload& p, uint8_t& next) {
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

bool Decoder::Randr(ByteReader& r, RandrPayload& p, uint8_t& next) {
  const size_t at = r.offset();
  uint8_t len = 0;
  if (!U8(r, next, "RANDR next payload") || !U8(r, p.role, "RAND Role")) return false;
  if (!check_.Known(IsKnownRandRole(p.role), Rule::kRandRole, at + 1, "RAND role", p.role)) {
    return false;
  }
  if (!U8(r, len, "RANDR RAND length") || !check_.Rand(len, at + 2)) return false;
  return Bytes_(r, len, p.rand, "RANDR RAND");
}

bool Decoder::Sakke(ByteReader& r, SakkePayload& p, uint8_t& next) {
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

}  // namespace tkms::mikey::codec_internal
