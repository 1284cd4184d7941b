#include "firmware/mikey/codec_error.h"

namespace tkms::mikey {

std::string_view RuleName(Rule rule) {
  switch (rule) {
    case Rule::kTruncated: return "truncated";
    case Rule::kTrailingBytes: return "trailing_bytes";
    case Rule::kMessageTooLarge: return "limits.message_size";
    case Rule::kTooManyPayloads: return "limits.payload_count";
    case Rule::kVersion: return "hdr.version";
    case Rule::kDataType: return "hdr.data_type";
    case Rule::kPrfFunc: return "prf_func";
    case Rule::kCsIdMapType: return "hdr.cs_id_map_type";
    case Rule::kCsIdMap: return "hdr.cs_id_map";
    case Rule::kUnknownPayload: return "payload.unknown_type";
    case Rule::kMisplacedPayload: return "payload.misplaced";
    case Rule::kEncrAlg: return "kemac.encr_alg";
    case Rule::kMacAlg: return "mac_alg";
    case Rule::kMacLength: return "mac_length";
    case Rule::kTsType: return "ts_type";
    case Rule::kTsRole: return "tr.ts_role";
    case Rule::kIdType: return "id_type";
    case Rule::kIdRole: return "idr.id_role";
    case Rule::kRandRole: return "randr.rand_role";
    case Rule::kRandLength: return "rand.length";
    case Rule::kCertType: return "cert.cert_type";
    case Rule::kHashFunc: return "chash.hash_func";
    case Rule::kSignType: return "sign.s_type";
    case Rule::kDhGroup: return "dh.group";
    case Rule::kKeyType: return "key_data.type";
    case Rule::kKvType: return "kv_type";
    case Rule::kKeyData: return "key_data";
    case Rule::kErrorNo: return "err.error_no";
    case Rule::kPkeCache: return "pke.c";
    case Rule::kGeneralExtType: return "general_ext.type";
    case Rule::kProtType: return "prot_type";
    case Rule::kSpParam: return "sp.param";
    case Rule::kSakkeParams: return "sakke.params";
    case Rule::kReservedBits: return "reserved_bits";
    case Rule::kFieldTooLong: return "field_too_long";
    case Rule::kTicketType: return "tp.ticket_type";
    case Rule::kTicketFlags: return "tp.flags";
    case Rule::kTpData: return "tp.tp_data";
    case Rule::kTicketData: return "ticket.ticket_data";
    case Rule::kInitiatorData: return "ticket.initiator_data";
    case Rule::kComposition: return "composition";
    case Rule::kHeader: return "composition.hdr";
  }
  return "unknown";
}

ErrorNo RuleErrorNo(Rule rule) {
  switch (rule) {
    case Rule::kDataType: return ErrorNo::kInvalidDt;
    case Rule::kPrfFunc: return ErrorNo::kInvalidPrf;
    case Rule::kEncrAlg: return ErrorNo::kInvalidEa;
    case Rule::kMacAlg:
    case Rule::kMacLength: return ErrorNo::kInvalidMac;
    case Rule::kTsType:
    case Rule::kTsRole: return ErrorNo::kInvalidTs;
    case Rule::kIdType:
    case Rule::kIdRole: return ErrorNo::kInvalidId;
    case Rule::kCertType: return ErrorNo::kInvalidCert;
    case Rule::kHashFunc: return ErrorNo::kInvalidHa;
    case Rule::kDhGroup: return ErrorNo::kInvalidDh;
    case Rule::kProtType: return ErrorNo::kInvalidSp;
    case Rule::kSpParam: return ErrorNo::kInvalidSpPar;
    case Rule::kTicketType: return ErrorNo::kInvalidTicket;  // "Ticket Type not supported"
    case Rule::kTicketFlags:
    case Rule::kTpData: return ErrorNo::kInvalidTpPar;
    // Everything else is a malformed message (RFC 3830 Table 6.12: 12
    // "an unspecified error occurred"). 13 (RFC 4738 "Unsupported message
    // type") is only sent for a well-formed message of a type the receiver
    // does not support, which is a decision of the receiver, not of the
    // codec; malformed Ticket Data or Initiator Data is malformed too.
    case Rule::kTicketData:
    case Rule::kInitiatorData:
    case Rule::kRandRole:
    case Rule::kKeyType:
    case Rule::kKvType:
    case Rule::kKeyData:
    case Rule::kErrorNo:
    case Rule::kPkeCache:
    case Rule::kSignType:
    case Rule::kSakkeParams:
    case Rule::kTruncated:
    case Rule::kTrailingBytes:
    case Rule::kMessageTooLarge:
    case Rule::kTooManyPayloads:
    case Rule::kVersion:
    case Rule::kCsIdMapType:
    case Rule::kCsIdMap:
    case Rule::kUnknownPayload:
    case Rule::kMisplacedPayload:
    case Rule::kRandLength:
    case Rule::kGeneralExtType:
    case Rule::kReservedBits:
    case Rule::kFieldTooLong:
    case Rule::kComposition:
    case Rule::kHeader: return ErrorNo::kUnspecified;
  }
  return ErrorNo::kUnspecified;
}

std::string CodecError::ToString() const {
  const auto no = static_cast<uint8_t>(error_no());
  std::string out = "offset " + std::to_string(offset) + ": " + std::string(RuleName(rule)) + ": " +
                    detail + " (MIKEY error " + std::to_string(no) + ", " +
                    std::string(ErrorNoName(no)) + ")";
  return out;
}

}  // namespace tkms::mikey
