// CodecError: why the codec refused a MIKEY message, where, and which MIKEY
// Error number (RFC 3830 §6.12, RFC 4738, RFC 6043 §6.9) reports it.
//
// Why: a KMS answers a refused message with a MIKEY Error payload, operators
// read the rule name in logs and metrics, and tools print the byte offset.
// The detail text describes the field, never secret bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "firmware/mikey/types.h"

namespace tkms::mikey {

enum class Rule : uint8_t {
  kTruncated,            // input ends inside a field
  kTrailingBytes,        // bytes after the last payload (or inside a sized field)
  kMessageTooLarge,      // DecodeLimits::max_message_bytes
  kTooManyPayloads,      // DecodeLimits::max_payloads
  kVersion,              // HDR version != 1
  kDataType,             // unknown HDR data type
  kPrfFunc,              // unknown PRF func (HDR or TP)
  kCsIdMapType,          // unknown CS ID map type
  kCsIdMap,              // malformed CS ID map info (entries, #CS, #P, session data)
  kUnknownPayload,       // unknown next-payload identifier
  kMisplacedPayload,     // payload not allowed where it appears
  kEncrAlg,              // unknown KEMAC encryption algorithm
  kMacAlg,               // unknown MAC / auth algorithm
  kMacLength,            // MAC length does not match its algorithm
  kTsType,               // unknown timestamp type
  kTsRole,               // unknown TR role
  kIdType,               // unknown ID type
  kIdRole,               // unknown IDR role
  kRandRole,             // unknown RANDR role
  kRandLength,           // RAND of length 0
  kCertType,             // unknown certificate type
  kHashFunc,             // unknown CHASH hash function
  kSignType,             // unknown SIGN S type
  kDhGroup,              // unknown DH group
  kKeyType,              // unknown key data type
  kKvType,               // unknown key validity type
  kKeyData,              // malformed key data sub-payload chain
  kErrorNo,              // unknown ERR error number
  kPkeCache,             // unknown PKE cache indicator
  kGeneralExtType,       // unknown General Extension type
  kProtType,             // unknown security protocol type
  kSpParam,              // malformed or unknown SP policy parameter
  kSakkeParams,          // unknown SAKKE params / ID scheme
  kReservedBits,         // a reserved field is not zero
  kFieldTooLong,         // a value does not fit its length field
  kTicketType,           // unknown ticket type
  kTicketFlags,          // reserved TP bits or violated flag dependencies
  kTpData,               // malformed TP Data
  kTicketData,           // malformed base-ticket Ticket Data
  kInitiatorData,        // malformed Initiator Data
  kComposition,          // payloads do not form the message its data type names
  kHeader,               // HDR fields not allowed for this data type
};

// Stable, dotted rule name used in errors, logs and metrics ("kemac.mac_alg").
std::string_view RuleName(Rule rule);
// The MIKEY Error number that reports a violation of `rule`.
ErrorNo RuleErrorNo(Rule rule);

struct CodecError {
  Rule rule = Rule::kTruncated;
  size_t offset = 0;   // byte offset in the message being decoded (0 for encode errors)
  std::string detail;  // what was wrong, naming the field

  ErrorNo error_no() const { return RuleErrorNo(rule); }
  // "offset 23: kemac.mac_alg: MAC alg 7 is not defined (MIKEY error 3, Invalid MAC)"
  std::string ToString() const;
};

}  // namespace tkms::mikey
