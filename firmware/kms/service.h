// KmsService: the boundary between the HTTP front end (web/) and the KMS
// logic (firmware/kms).
//
// Why: TS 33.328 Annex A separates three kinds of outcome, and the front end
// must map them without knowing MIKEY:
//   - an HTTP request that is not a valid Annex A request     -> 4xx (web/ decides)
//   - a MIKEY message the KMS processed and refused          -> 200 + MIKEY Error
//     (RFC 3830 §6.12, RFC 6043 §5.4 / §6.9)
//   - a KMS that cannot answer (token unavailable, fault)     -> 5xx
// The service receives the base64-decoded MIKEY bytes and returns either a
// MIKEY message to send with 200 (a response or an Error message) or a
// condition that web/ turns into a 4xx/5xx. Every field of a KmsReply is safe
// to log and to count: no key bytes, no PINs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/byte_reader.h"

namespace tkms::kms {

// The requesttype URI parameter of Annex A.2.
enum class RequestType : uint8_t { kTicketRequest, kTicketResolve };
std::string_view RequestTypeName(RequestType type);  // "ticketrequest" | "ticketresolve"

// Where a request came from (Ua: UEs; Zk: peer KMSs, added with KMS-to-KMS).
enum class Interface : uint8_t { kUa, kZk };

// Who sent a Zk request, as the Zk listener established it from the TLS
// client certificate (docs/zk.md): a peer KMS of a trust relation (TS 33.328
// B.2.2.3 step 8) or a network function granted the resolve role (TR 33.828
// step 5). Never set on Ua.
enum class ZkClientKind : uint8_t { kNone, kPeerKms, kNetworkFunction };

struct RequestContext {
  RequestType type = RequestType::kTicketRequest;
  Interface interface = Interface::kUa;
  ZkClientKind zk_client = ZkClientKind::kNone;
  std::string zk_client_name;  // the peer's kms_uri, or the network function's name
  std::string request_id;  // for log lines; chosen by web/
  std::string peer;        // "127.0.0.1:53312"; for log lines only
};

// What happened, for the HTTP status and the metrics.
enum class Outcome : uint8_t {
  kOk,           // 200 with a REQUEST_RESP / RESOLVE_RESP
  kMikeyError,   // 200 with a MIKEY Error message (mikey_error says why)
  kBadRequest,   // 400: the body is not a MIKEY message at all
  kUnavailable,  // 503: the token (or another dependency) cannot be used now
  kInternal,     // 500: a fault in the KMS
};
std::string_view OutcomeName(Outcome outcome);  // "ok", "mikey_error", ...

// Why a request was refused, one label per rejection class (metrics, logs).
enum class Refusal : uint8_t {
  kNone,
  kMalformed,         // MIKEY codec refused the message
  kWrongDataType,     // data type does not match requesttype, or unsupported
  kUnknownUser,       // no security association for the claimed identity / PSK id
  kAuthentication,    // V MAC wrong
  kIdentityNotOwned,  // IDRi / IDRr not an identity of the authenticated user
  kWrongKms,          // IDRkms names another KMS
  kStaleTimestamp,    // T outside the window, or an unsupported TS type
  kReplay,            // seen before (replay cache)
  kBeforeStart,       // T older than this KMS's start (replay across restarts)
  kPolicy,            // requested ticket policy refused
  kInvalidTicket,     // ticket type unknown, ticket MAC wrong, unknown ticket key
  kExpiredTicket,     // outside the ticket's validity period
  kPolicyConflict,    // the ticket conflicts with the current policy (resolve)
  kNotRecipient,      // responder not among the ticket's IDRr / groups
  kNoTrustRelation,   // a ticket of another KMS with which there is no trust relation
  kPeerRefused,       // the issuing KMS answered a forwarded resolve with a MIKEY Error
  kPeerUnavailable,   // the issuing KMS could not be reached, was too slow, or answered badly (503)
  kZkClient,          // a Zk request this client may not make (unprotected message rules)
  kToken,             // PKCS#11 failure (Outcome kUnavailable)
  kOverloaded,        // a bounded resource (replay cache) is full
  kInternal,
};
std::string_view RefusalName(Refusal refusal);  // "malformed", "replay", ...

struct KmsReply {
  Outcome outcome = Outcome::kInternal;
  Refusal refusal = Refusal::kNone;
  std::vector<uint8_t> mikey;               // kOk / kMikeyError: the message to send
  std::optional<uint8_t> mikey_error;       // kMikeyError: the ERR payload's error no
  std::string detail;                       // log-safe explanation ("bad V MAC for psk:ab12..")
  std::string user;                         // authenticated user, if any (log-safe)
  // For the audit line of a Zk resolve: whose ticket it was (the ticket's
  // IDRi, and its IDRr list joined with ","); raw text, the logger escapes.
  std::string ticket_initiator = {};
  std::string ticket_responders = {};
};

// Readiness for /readyz: each condition with a short log-safe explanation.
struct Readiness {
  bool token_ready = false;
  bool config_loaded = false;
  bool keys_present = false;
  std::string detail;
  bool ready() const { return token_ready && config_loaded && keys_present; }
};

class KmsService {
 public:
  virtual ~KmsService() = default;
  // Handles one decoded Annex A request. Must not throw; may be called from
  // many threads at once.
  virtual KmsReply Handle(const RequestContext& context, ByteSpan mikey) = 0;
  virtual Readiness CheckReadiness() = 0;
};

}  // namespace tkms::kms
