// The state file of `tkms-ue offer` (read back by `finish` and by `offer
// --reuse-state`): what it holds, how it is written, and its strict reader.
//
// Why: the file comes back from disk, possibly edited or damaged, so it is
// untrusted input. ParseState is a pure, bounded scanner over the text (at
// most kMaxStateBytes, each line split once at its first space, no
// allocation before a length is checked) so that it can be unit-tested and
// fuzzed (ue_state_fuzz) apart from the file system.
//
// Format (line-based, LF line ends): the magic line "tkms-ue-state 2", then
// one "key value" line per field, each of the twelve fields exactly once, in
// any order, no other field, no empty line. Values: identities printable
// (no control characters), non-empty; "0" / "1" flags; decimal numbers
// without sign, space or prefix that fit their type; strict hex (RFC 4648
// base16, either case), non-empty. The file holds no key: the REQUEST_INIT's
// public inputs (CSB ID, RANDRi, T, identities, flags, requested TRe, RFC
// 6043 §4.2.1), the REQUEST_RESP, the TRANSFER_INIT and the RTP port.
// Error messages start with the file's name and never echo a value; an
// unknown field is named only if it is short and printable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/status.h"

namespace tkms::ue_cli {

inline constexpr size_t kMaxStateBytes = 256 * 1024;
inline constexpr std::string_view kStateMagic = "tkms-ue-state 2";

// What offer saves for finish (and for a reusing offer). No keys.
struct OfferState {
  std::string initiator, responder, kms_identity;
  bool forking = false, reusable = false;
  uint32_t csb_id = 0;            // the REQUEST_INIT's
  std::vector<uint8_t> randri;    // the REQUEST_INIT's
  uint64_t timestamp = 0;         // the REQUEST_INIT's T (NTP-UTC)
  uint64_t valid_to = 0;          // the requested TRe; 0: none requested
  uint16_t rtp_port = 0;          // announced in the offer
  std::vector<uint8_t> request_resp;
  std::vector<uint8_t> transfer_init;

  bool operator==(const OfferState&) const = default;
};

std::string SerializeState(const OfferState& s);

// The state in `text`; `name` (the file's path) starts every error message.
// kInvalidArgument for anything but a well-formed state file.
Result<OfferState> ParseState(std::string_view text, const std::string& name);

// kInvalidArgument unless `value` is non-empty and free of control characters.
Status CheckPrintable(const std::string& value, const std::string& what);

}  // namespace tkms::ue_cli
