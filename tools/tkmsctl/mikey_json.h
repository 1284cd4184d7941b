// The JSON view of a MIKEY message used by `tkmsctl mikey decode/encode`:
// one object per common header (RFC 3830 §6.1, RFC 6043 §6.1) and per payload
// (RFC 3830 §6.2-6.15, RFC 6043 §6.2-6.10 and Appendix A, RFC 6509 §4.2).
// The field reference is docs/mikey-json.md.
//
// Why: operators and test authors read and hand-edit MIKEY messages. The
// mapping is canonical — MessageFromJson(MessageToJson(m)) == m for every
// model the codec accepts — and strict on the way in: every error names the
// JSON path of the offending field ("payloads[3].rand"). Numbers are
// authoritative; informational fields (*_name, "name", id_text, data_text,
// value_hex) and decoded views (KEMAC "key_data", TICKET "base_ticket") are
// cross-checked against them when present, and a decoded view alone is
// encoded (EncodeKeyDataChain / EncodeBaseTicketData).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "firmware/base/status.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/message.h"

namespace tkms::tkmsctl {

// Objects keep their keys in the documented order.
using Json = nlohmann::ordered_json;

struct JsonError {
  std::string path;    // e.g. "payloads[3].rand"; empty for the whole document
  std::string detail;  // what is wrong
  // "payloads[3].rand: rand.length: RAND length 0 (MIKEY error 13, ...)"
  std::string ToString() const;
};

// The JSON view of a message. Total for any model; *_name fields are left out
// for values the registries do not define.
Json MessageToJson(const mikey::Message& message);

// Builds the model from its JSON view, checking syntax-level rules (field
// presence, JSON types, integer ranges, hex strings, payload type numbers,
// cross-checks of informational fields and decoded views). Values the codec
// refuses (unknown algorithms, wrong MAC lengths, ...) are left to Encode.
Result<mikey::Message, JsonError> MessageFromJson(const Json& json);

// Parses JSON text with the bounded reader (firmware/json/bounded_json.h),
// keeping key order: strict RFC 8259, at most kMaxInputBytes, 32 levels,
// 65536 values, strings of 256 KiB; duplicate keys, invalid UTF-8 and
// trailing data refused. The error names the JSON path where the reader was
// and the byte offset ("header.csb_id: duplicate key at byte offset 25
// (line 1, column 26)").
Result<Json, JsonError> ParseJsonText(std::string_view text);

// JSON text -> model -> Encode -> Decode: the bytes `tkmsctl mikey encode`
// prints. Codec errors are reported with the path of the payload (and, where
// the rule names one, the field) they concern; a message that Decode would
// refuse (e.g. a composition error) is refused too.
Result<mikey::Bytes, JsonError> EncodeJsonText(std::string_view text);

// Where a codec error from Encode(message) lies: the JSON path of the header
// or payload part it concerns ("header.prf_func", "payloads[4].tp_data[1].role",
// "payloads[2]", or "" when no single part is to blame), with the error that
// part alone produces, as CodecErrorText.
JsonError LocateEncodeError(const mikey::Message& message, const mikey::CodecError& error);

// "rule: detail (MIKEY error n, name)": CodecError::ToString() without the
// offset, for errors where the offset carries no information (Encode).
std::string CodecErrorText(const mikey::CodecError& error);

}  // namespace tkms::tkmsctl
