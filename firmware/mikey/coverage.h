// Which bytes a MIKEY MAC covers.
//
// Why: MAC coverage is defined on the wire encoding, not on the model
// (RFC 3830 §5.2, RFC 6043 §5.5 Table 5.2), so a KMS verifies the bytes it
// received and signs the bytes it sends. These functions return the covered
// bytes as views (no copies on the verify path) for the crypto layer to feed
// into HMAC:
//   - the V payload of a message: the message up to the MAC field, without the
//     TICKET's Initiator Data length and Initiator Data in TRANSFER_INIT, then
//     the identities (initial messages) or the complete initial message
//     (responses), which the caller passes as `appended`;
//   - the V payload of the MIKEY base ticket (RFC 6043 Appendix A.1): the
//     TICKET payload without its next-payload byte, Initiator Data length,
//     Initiator Data, and the MAC;
//   - Vr in Initiator Data (RFC 6043 §6.10): the Initiator Data without Vr's MAC.
#pragma once

#include <span>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/mikey/codec.h"

namespace tkms::mikey {

struct MacCoverage {
  std::vector<ByteSpan> parts;  // views into the message and `appended`; HMAC their concatenation
  ByteSpan mac;                 // the MAC field as received (empty when building)
  uint8_t mac_alg = 0;
};

// Coverage of the V payload that ends `message` (RFC 6043 §5.5). `decoded` and
// `extents` come from Decode(message, options, extents). Fails with
// Rule::kComposition if the last payload is not V.
Result<MacCoverage, CodecError> VPayloadCoverage(ByteSpan message, const Message& decoded,
                                                 const std::vector<PayloadExtent>& extents,
                                                 std::span<const ByteSpan> appended);

// The same, decoding `message` itself (no composition check).
Result<MacCoverage, CodecError> VPayloadCoverage(ByteSpan message,
                                                 std::span<const ByteSpan> appended);

// Bytes covered by the V payload inside base-ticket Ticket Data (RFC 6043
// Appendix A.1), as an owned copy: the TICKET payload from its Ticket Type
// field to the end of Ticket Data, minus the trailing MAC bytes.
Result<Bytes, CodecError> BaseTicketMacInput(const TicketPayload& ticket);

// Bytes covered by Vr (RFC 6043 §6.10): First Payload, Vi, and Vr's header.
Result<Bytes, CodecError> InitiatorDataMacInput(const InitiatorData& data);

}  // namespace tkms::mikey
