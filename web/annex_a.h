// Annex A request checks and HTTP response framing, without sockets.
//
// Why: 3GPP TS 33.328 Annex A carries MIKEY-TICKET over HTTP: a UE sends
// `POST /keymanagement?requesttype=ticketrequest|ticketresolve` (Annex A.2)
// with Content-Type `application/mikey` and the MIKEY message base64-encoded
// in the body, and the KMS answers 200 with a base64 MIKEY response or MIKEY
// Error (RFC 3830 §6.12), 4xx when the UE erred, 5xx when the KMS erred.
// Everything here decides one of those rules on plain strings, so the rules
// are unit-tested without a server and the Ua handler (ua_handler.cpp) stays
// thin. Nothing here reads untrusted bytes beyond the strings handed in, and
// nothing allocates from a length the peer claims. (The HTTP message values,
// response framing and request ids are in http_message.h, included here.)
//
// Every function is pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "firmware/base/status.h"
#include "firmware/kms/service.h"
#include "web/http_message.h"

namespace tkms::web {

// ---- Annex A.2 URI ---------------------------------------------------------

// The only request path of the Ua (and later Zk) interface.
inline constexpr std::string_view kKeyManagementPath = "/keymanagement";
// The media type of Annex A bodies (RFC 3830 §10 registers application/mikey).
inline constexpr std::string_view kMikeyMediaType = "application/mikey";

// Why a request was refused before it reached the KMS service; `label` goes to
// the request log line (refusal=...), `status` to the response and to
// tkms_http_rejections_total{status=...}, `reason` is the one-line body.
struct Rejection {
  int status = 400;
  std::string label;
  std::string reason;
};

// Reads the requesttype parameter from a raw (still percent-encoded) query
// string: exactly one parameter named `requesttype` whose decoded value is
// exactly `ticketrequest` or `ticketresolve`. Other parameters are allowed
// (Annex A.2) and ignored. Parameters are separated by '&'; names and values
// are percent-decoded ('+' is a space); a malformed %-escape anywhere refuses
// the whole query. Errors are 400 rejections.
Result<kms::RequestType, Rejection> ParseRequestType(std::string_view query);

// Percent-decodes one query component ('+' -> ' '); false on a malformed
// escape. Exposed for tests.
bool PercentDecode(std::string_view in, std::string& out);

// True when the Content-Type header value names application/mikey: the media
// type before any ';' compared case-insensitively after trimming spaces and
// tabs; parameters (e.g. "; charset=...") are ignored.
bool IsMikeyContentType(std::string_view content_type);

// Strips ASCII whitespace (space, tab, CR, LF) and strictly base64-decodes the
// body (RFC 4648 §4). Errors are 400 rejections: empty body (also empty after
// stripping), or not base64.
Result<std::vector<uint8_t>, Rejection> DecodeMikeyBody(std::string_view body);

// ---- listen addresses ------------------------------------------------------

// "ADDR:PORT" with ADDR an IPv4 dotted quad and PORT 0..65535 (0: the kernel
// picks a free port). No host names, no IPv6, no port suffixes ('s', 'r').
struct ListenAddress {
  std::string address;
  uint16_t port = 0;
  std::string ToString() const;  // "127.0.0.1:8080"
};
Result<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace tkms::web
