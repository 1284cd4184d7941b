// KmsClient: the UE's Ticket Request and Ticket Resolve exchanges over HTTP
// (TS 33.328 Annex A; RFC 6043 §4.2.1, §4.2.3, §7).
//
// Why: Annex A carries each exchange as one HTTP/1.1 POST to
// /keymanagement?requesttype=ticketrequest|ticketresolve with Content-Type
// application/mikey and the base64 MIKEY message as body; the KMS answers 200
// with a base64 REQUEST_RESP / RESOLVE_RESP or a MIKEY Error message, 4xx if
// the UE erred and 5xx if the KMS did. This wraps HttpClient (keep-alive) and
// ticket_client.h so that tests and the load generator get one call per
// exchange, and keeps the outcomes apart as UeErrorKind values:
//   kTransport    no HTTP response (connect, timeout, malformed/oversized HTTP)
//   kHttpStatus   HTTP status other than 200 (UeError::http_status)
//   kBadResponse  200 but not application/mikey, not base64, not MIKEY
//   kMikeyError   200 with a MIKEY Error message (UeError::mikey_errors)
//   kVerification 200 with a message that does not verify against the request
// Reading: the media type is compared case-insensitively and parameters
// (e.g. "; version=1", RFC 3830 §10.1) are allowed; ASCII whitespace around or
// inside the base64 body is ignored, the base64 itself is strict (RFC 4648).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "firmware/mikey/crypto/transient_provider.h"
#include "tools/ue/function_resolve.h"
#include "web/client/http_client.h"
#include "tools/ue/ticket_client.h"

namespace tkms::ue {

// "application/mikey", any case, OWS around it, parameters after ";" allowed.
bool IsMikeyContentType(std::string_view value);

// The MIKEY bytes of an Annex A answer (the pure part of KmsClient::Exchange,
// apart so that it can be fuzzed with the HTTP parser): kHttpStatus for a
// status other than 200 (an excerpt of the reason and body, printable ASCII
// only, in the detail), kBadResponse unless the Content-Type is
// application/mikey (if checked) and the body is non-empty strict base64
// once ASCII whitespace is removed.
UeResult<Bytes> AnnexAAnswerBytes(const web::client::HttpResponse& resp, bool check_content_type);

// The requesttype URI parameter of Annex A.
enum class AnnexARequest : uint8_t { kTicketRequest, kTicketResolve };
std::string_view AnnexARequestName(AnnexARequest type);  // "ticketrequest" | "ticketresolve"

inline constexpr std::string_view kMikeyContentType = "application/mikey";

struct KmsClientOptions {
  std::string path = "/keymanagement";  // appended to the HttpClient's base path
  bool check_content_type = true;       // a 200 answer must be application/mikey
};

class KmsClient {
 public:
  explicit KmsClient(web::client::HttpClient http, KmsClientOptions options = {});

  // Builds a fresh REQUEST_INIT_PSK, sends it and checks the REQUEST_RESP.
  UeResult<TicketGrant> RequestTicket(const RequestInitParams& params);
  // Builds a fresh RESOLVE_INIT_PSK, sends it and checks the RESOLVE_RESP.
  UeResult<ResolvedTicket> ResolveTicket(const ResolveInitParams& params);
  // A network function's resolve on the KMS's Zk listener (function_resolve.h;
  // the HttpClient must be https with the function's client certificate):
  // an unprotected RESOLVE_INIT_PSK, the unprotected RESOLVE_RESP checked.
  UeResult<FunctionResolvedKeys> FunctionResolve(const FunctionResolveParams& params);

  // One Annex A round trip for already-built MIKEY bytes: the MIKEY bytes of
  // a 200 answer (not yet checked), or kTransport / kHttpStatus / kBadResponse.
  UeResult<Bytes> Exchange(AnnexARequest type, ByteSpan mikey);

  web::client::HttpClient& http() { return http_; }
  mikey::crypto::CryptoProvider& provider() { return *provider_; }

 private:
  web::client::HttpClient http_;
  KmsClientOptions options_;
  std::unique_ptr<mikey::crypto::TransientCryptoProvider> provider_;
};

}  // namespace tkms::ue
