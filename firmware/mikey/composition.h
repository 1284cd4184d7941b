// Message-level rules: which payloads each MIKEY data type carries, in which
// order (RFC 3830 §3-§5, RFC 4650 §4, RFC 4738 §3, RFC 6043 §4.2 and §5.2,
// RFC 6509 §2.2.1), the header constraints of RFC 6043 §6.1, the TP Data
// composition and the ticket policy flag dependencies of RFC 6043 §6.10.
//
// Why: the decoder proves a message is well formed payload by payload; these
// rules prove it is the message its data type claims to be, so the KMS logic
// never meets a REQUEST_INIT_PSK without a V payload or a TICKET with flags
// that contradict each other. Violations name the rule and the payload.
//
// Composition grammar, per data type (RFC notation: [x] optional, {x} zero or
// more, (x) one or more). A General Extension payload (RFC 3830 §6.15, e.g.
// the RFC 4567 SDP IDs list) is accepted, zero or more times, immediately
// before the last payload of every message; RSA-R responses also carry one
// after HDR as RFC 4738 §3 specifies.
#pragma once

#include <string>
#include <vector>

#include "firmware/mikey/codec.h"
#include "firmware/mikey/codec_error.h"
#include "firmware/mikey/message.h"

namespace tkms::mikey {

// The composition of `data_type` in the notation above, e.g.
// "HDR, T, RANDRi, [IDRi], [IDRkms], TP, [IDRpsk], {GENERAL_EXT}, V".
// Alternatives (CSB updates) are joined with " | ".
std::string CompositionOf(uint8_t data_type);

// Checks the message against the rules above. `extents` (from Decode) lets
// errors name byte offsets; pass an empty vector to report payload indexes.
Result<void, CodecError> CheckComposition(const Message& message,
                                          const std::vector<PayloadExtent>& extents = {});

// Flag dependencies of a ticket policy (RFC 6043 §6.10): ¬D⇒L, G⇒F, ¬G⇒H,
// ¬H⇒G, I⇒E, K⇒D, M⇒F. Returns the first violated one.
Result<void, CodecError> CheckTicketFlags(uint16_t flags);

}  // namespace tkms::mikey
