// MIKEY in SDP (RFC 4567 §3.1): the session-level attribute
//   a=key-mgmt:mikey <base64 of the MIKEY message>
// and a minimal offer/answer body for one audio stream (RFC 4566), enough for
// a loopback call between two tkms-ue end-points.
//
// Why: the TRANSFER_INIT travels in the SIP INVITE's SDP offer and the
// TRANSFER_RESP in the 200 OK's answer (RFC 6043 §7, TS 33.328). The SDP
// comes from the peer, so extraction is strict and bounded: at most
// kMaxSdpBytes of text, scanned line by line once (no recursion, no
// allocation beyond the result); attribute grammar of RFC 4567 §3.1:
//   key-mgmt-att-value = 0*1SP prtcl-id SP keymgmt-data
//   prtcl-id = 1*(ALPHA / DIGIT), case-sensitive; only "mikey" is taken
// keymgmt-data is strict base64 (RFC 4648: padding, no whitespace), at most
// kMaxMikeyBytes once decoded. Lines end with CRLF or LF (RFC 4566 §5 asks
// parsers to accept LF). Readings: key-mgmt lines of other protocols are
// skipped (even malformed ones); a session-level and media-level mikey line
// both count, and two mikey lines are refused (which one would apply to
// which medium is out of scope for a one-stream call); a malformed mikey
// line is refused rather than skipped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/mikey/message.h"

namespace tkms::ue {

inline constexpr size_t kMaxSdpBytes = 64 * 1024;
inline constexpr size_t kMaxMikeyBytes = 16 * 1024;

// The minimal body: v=0, o=- ID ID IN IP4 ADDR, s=-, c=IN IP4 ADDR, t=0 0,
// [a=key-mgmt:mikey ...], m=audio PORT RTP/SAVP 0. CRLF line ends.
struct AudioSdpParams {
  uint64_t session_id = 0;            // o= sess-id and sess-version
  std::string address = "127.0.0.1";  // IPv4 literal for o= and c=
  uint16_t rtp_port = 0;
};

// kInvalidArgument if the address is not a dotted IPv4 literal or the MIKEY
// message is empty or longer than kMaxMikeyBytes.
Result<std::string> BuildAudioSdp(const AudioSdpParams& params, ByteSpan mikey);

// Inserts the session-level a=key-mgmt:mikey line before the first m= line
// (at the end if there is none). Refuses an SDP that already has one.
Result<std::string> AddMikeyKeyMgmt(std::string_view sdp, ByteSpan mikey);

// The MIKEY message of the SDP's one a=key-mgmt:mikey line. kNotFound-like
// failures are kInvalidArgument with "no a=key-mgmt:mikey line".
Result<mikey::Bytes> ExtractMikeyKeyMgmt(std::string_view sdp);

// The port of the first m=audio line (1-65535).
Result<uint16_t> AudioRtpPort(std::string_view sdp);

// The connection address of the first m=audio stream (RFC 4566 §5.7): its
// media-level c= line if it has one, else the session-level c= line. Only
// "c=IN IP4 <dotted IPv4 literal>" is taken (no /TTL multicast suffix, no
// IP6); two c= lines at one level are refused. kInvalidArgument if there is
// no m=audio line or no applicable c= line.
Result<std::string> AudioConnectionAddress(std::string_view sdp);

}  // namespace tkms::ue
