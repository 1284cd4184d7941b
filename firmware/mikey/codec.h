// Decode and Encode: the strict MIKEY / MIKEY-TICKET wire codec.
//
// Why: every MIKEY message tkms sees (Ticket Request and Resolve over HTTP,
// Ticket Transfer in SDP, tickets it minted itself) crosses this boundary.
// Decode reads untrusted bytes through one ByteReader, never recurses on
// input, never allocates more than the input could justify, and refuses
// truncation, impossible lengths, trailing bytes, unknown or misplaced
// payloads, unknown enumerated values, non-zero reserved bits and inputs over
// the configured limits. What it accepts is canonical: Encode(Decode(b)) == b.
// Encode refuses a model that would not decode (unknown values, wrong MAC
// lengths, fields too long for their length field).
//
// Decode checks the structure of every payload and the message-level rules of
// composition.h (which payloads each data type carries, in which order).
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/mikey/codec_error.h"
#include "firmware/mikey/message.h"

namespace tkms::mikey {

struct DecodeLimits {
  size_t max_message_bytes = 65535;  // largest message accepted
  size_t max_payloads = 128;         // payloads, counting those inside TP Data
};

// Where each payload of a decoded message starts and ends in the input.
struct PayloadExtent {
  size_t offset = 0;
  size_t length = 0;
};

struct DecodeOptions {
  DecodeLimits limits;
  // Apply the message-composition rules of composition.h (on by default).
  bool check_composition = true;
};

// The fixed fields of the common header (RFC 3830 §6.1) as read from the
// wire, before any of them is checked.
struct HeaderPrefix {
  uint8_t version = 0;
  uint8_t data_type = 0;
  uint8_t prf_func = 0;
  uint32_t csb_id = 0;
};

// What Decode learned besides the message, also when it failed.
struct DecodeReport {
  std::vector<PayloadExtent> extents;  // of every top-level payload (and HDR)
  // Set once the ten fixed header bytes of a version-1 message were read,
  // whatever their values: an Error message copies version, PRF func and
  // CSB ID of the message in error (RFC 6043 §5.4).
  std::optional<HeaderPrefix> header;
};

Result<Message, CodecError> Decode(ByteSpan bytes, const DecodeOptions& options = {});
// As Decode, and reports the extent of every top-level payload (for MAC
// coverage over the received bytes).
Result<Message, CodecError> Decode(ByteSpan bytes, const DecodeOptions& options,
                                   std::vector<PayloadExtent>& extents);
Result<Message, CodecError> Decode(ByteSpan bytes, const DecodeOptions& options, DecodeReport& report);

Result<Bytes, CodecError> Encode(const Message& message);

// Encodes one payload as it would appear with `next_payload` in its chain
// (used for MAC coverage computations and tests).
Result<Bytes, CodecError> EncodePayload(const Payload& payload, uint8_t next_payload);

// Key data sub-payload chain: the plaintext of a KEMAC (RFC 3830 §6.13).
Result<std::vector<KeyDataPayload>, CodecError> DecodeKeyDataChain(ByteSpan plaintext,
                                                                   size_t base_offset = 0);
Result<SecretBytes, CodecError> EncodeKeyDataChain(const std::vector<KeyDataPayload>& keys);

// Ticket Data of the MIKEY base ticket (RFC 6043 Appendix A).
Result<BaseTicketData, CodecError> DecodeBaseTicketData(ByteSpan bytes, size_t base_offset = 0);
Result<Bytes, CodecError> EncodeBaseTicketData(const BaseTicketData& data);

// True if `policy` names the MIKEY base ticket (type 1, subtype 1, version 1).
bool IsBaseTicket(const TicketPolicy& policy);

}  // namespace tkms::mikey
