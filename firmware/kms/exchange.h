// The steps of one KMS exchange and the values that flow between them.
//
// Why: a Ticket Request (RFC 6043 §4.2.1) and a Ticket Resolve (§4.2.3; TS
// 33.328 B.2.2.2 steps 4-7) are the same pipeline with a different decision
// in the middle:
//
//   bytes ─ ParseRequest ─► ParsedRequest          parse.cpp
//         ─ Authenticate, AdmitRequester ─► Requester   authenticate.cpp
//         ─ DecideTicketRequest / DecideTicketResolve
//                         ─► ResponseContent       request.cpp, resolve.cpp
//         ─ BuildResponse ─► REQUEST_RESP / RESOLVE_RESP bytes   response.cpp
//   any step ─ Rejection ─► BuildErrorReply: MIKEY Error message, or a
//                           4xx/5xx condition                    response.cpp
//
// Over Zk (docs/zk.md; TS 33.328 B.2.2.3, RFC 6043 §10) two variants:
//   KMS_R, a ticket of a KMS it has a trust relation with: DecideTicketResolve
//     hands over to ForwardResolve, which sends an unprotected RESOLVE_INIT to
//     the issuer (BuildPeerResolveInit, through PeerKmsClient) and turns its
//     unprotected RESOLVE_RESP into ResponseContent (ReadPeerAnswer); the
//     response to the UE is then built as any other.       zk_forward.cpp
//   KMS_I (or this KMS for an authorised network function): a Zk client
//     instead of Authenticate/AdmitRequester (AdmitZkClient), ResolveTicket
//     for a Resolver that is not a local user, BuildUnprotectedResponse.
//                                                            zk_serve.cpp
//
// Every step is a function of its inputs and the ExchangeEnv (the KMS's
// keys, clock, snapshot and replay cache); nothing is shared between
// requests except the replay cache. A new kind of exchange (a resolve
// forwarded to another KMS, a resolve by an authorised network function)
// is a new decision function, or a new authentication step, producing the
// same types; the other steps do not change. Kms::Handle (kms.cpp) wires
// the steps together.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/kms/keys.h"
#include "firmware/kms/peer_kms.h"
#include "firmware/kms/replay_cache.h"
#include "firmware/kms/service.h"
#include "firmware/kms/ticket_format.h"
#include "firmware/kms/timestamps.h"
#include "firmware/kms/users.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/provider.h"
#include "firmware/mikey/message.h"
#include "provisioning/config.h"

namespace tkms::kms {

// What a request is checked against; replaced as a whole on reload.
struct KmsSnapshot {
  provisioning::KmsConfig config;
  std::shared_ptr<const UserDirectory> users;
};

// Everything a step may use besides its inputs. Lives for one request.
struct ExchangeEnv {
  KmsKeys& keys;
  mikey::crypto::CryptoProvider& provider;  // keys.provider()
  const KmsSnapshot& snapshot;
  ReplayCache& replay;
  const TicketFormats& formats;
  TimePoint now;                                   // wall time of this request
  std::chrono::steady_clock::time_point mono_now;  // monotonic time of this request
  TimePoint started;                               // when this KMS started (replay rule)
  PeerKmsClient* peers = nullptr;                  // Zk client (KMS_R); nullptr: no forwarding

  const std::string& kms_identity() const { return snapshot.config.kms_identity; }
};

// A step's refusal: what the client is told and why (log-safe).
struct Rejection {
  Outcome outcome = Outcome::kInternal;  // kMikeyError, kBadRequest, kUnavailable or kInternal
  Refusal refusal = Refusal::kInternal;
  uint8_t error_no = 0;  // the ERR payload's number when outcome is kMikeyError
  std::string detail;

  static Rejection Mikey(mikey::ErrorNo error_no, Refusal refusal, std::string detail);
  static Rejection BadRequest(std::string detail);
  // kUnavailable (503) for token trouble and exhausted resources, else
  // kInternal (500); `what` names the operation.
  static Rejection FromStatus(const Status& s, std::string_view what);
};

template <typename T>
using StepResult = Result<T, Rejection>;

// The payloads of a REQUEST_INIT_PSK / RESOLVE_INIT_PSK the KMS uses
// (pointers into ParsedRequest::message; unexpected payloads are ignored,
// RFC 6043 §4.2.1.4, §4.2.3.4).
struct RequestPayloads {
  const mikey::TPayload* t = nullptr;
  const mikey::RandrPayload* randr = nullptr;    // RANDRi (request) / RANDRr (resolve)
  const mikey::IdrPayload* idr_peer = nullptr;   // IDRi (request) / IDRr (resolve)
  const mikey::IdrPayload* idr_kms = nullptr;
  const mikey::IdrPayload* idr_psk = nullptr;
  const mikey::TpPayload* tp = nullptr;          // request only
  const mikey::TicketPayload* ticket = nullptr;  // resolve only
  const mikey::VPayload* v = nullptr;            // always the last payload
};

// Step 1's output: the message, decoded once. Move-only: `payloads` points
// into `message.payloads`, whose elements a move does not relocate.
struct ParsedRequest {
  RequestType type = RequestType::kTicketRequest;
  ByteSpan bytes;  // the request as received (MACs cover it)
  mikey::Message message;
  std::vector<mikey::PayloadExtent> extents;
  RequestPayloads payloads;

  ParsedRequest() = default;
  ParsedRequest(ParsedRequest&&) = default;
  ParsedRequest& operator=(ParsedRequest&&) = default;
  ParsedRequest(const ParsedRequest&) = delete;
  ParsedRequest& operator=(const ParsedRequest&) = delete;

  const mikey::CommonHeader& header() const { return message.header; }
  bool is_request() const { return type == RequestType::kTicketRequest; }
};

// Step 2's output: who sent the request, proven by its V payload.
struct Requester {
  const UserRecord* user = nullptr;
  std::string identity;                // the authenticated IDRi / IDRr, as sent
  mikey::crypto::SecretKeyPtr psk;     // the user's key (a token handle)
  mikey::crypto::SecretKeyPtr auth_key;  // the request's auth key: Error messages carry V with it
};

// Step 3's output: what the response carries (RFC 6043 §4.2.1.5, §4.2.3.5).
struct ResponseContent {
  mikey::DataType data_type = mikey::DataType::kRequestResp;
  std::vector<mikey::Payload> before_kemac;        // TICKET (REQUEST_RESP)
  std::vector<mikey::KeyDataPayload> kemac_keys;   // MPKi, [MPKr(')], session keys
  std::vector<mikey::Payload> after_kemac;         // IDRr, RANDRkms (forked RESOLVE_RESP)
};

// Who a Ticket Resolve is answered for: a local user (Ua), a user of
// another KMS whose request a peer KMS forwarded (Zk, B.2.2.3 step 9), or an
// authorised network function (Zk, TR 33.828 step 5).
struct Resolver {
  const UserRecord* user = nullptr;     // the local user; nullptr over Zk
  std::vector<std::string> identities;  // identities it may answer as, preferred first
  bool network_function = false;        // all keys, unforked, no recipient or policy check
  std::string name;                     // for messages: user name, "sip:b@y via kms.y", function name
};

// ---- the steps ---------------------------------------------------------------

// Decodes `bytes` (the header once, payloads strictly, composition rules not
// applied: §4.2.1.4) and picks out the payloads the exchange needs. On a
// failure, `header` is set when the header's fixed fields could be read, so
// the Error message can copy them.
StepResult<ParsedRequest> ParseRequest(RequestType type, ByteSpan bytes,
                                       std::optional<mikey::HeaderPrefix>& header);

// Finds the user, verifies V with the user's key (the same token work for an
// unknown user: a decoy key), then checks identities, IDRkms, the timestamp
// window and the replay cache (RFC 3830 §5.4; TS 33.328 B.2.2.2 steps 4-5).
StepResult<Requester> Authenticate(const ParsedRequest& request, ExchangeEnv& env);

// The checks that need the authenticated requester (their refusals are
// authenticated Error messages): the claimed identity is the user's, IDRkms
// names this KMS, T is within the window and not older than this KMS's
// start, and the message is not a replay.
std::optional<Rejection> AdmitRequester(const ParsedRequest& request, const Requester& requester, ExchangeEnv& env);

// Ticket Request: policy, keys, ticket (RFC 6043 §4.2.1.4-5).
StepResult<ResponseContent> DecideTicketRequest(const ParsedRequest& request, const Requester& requester,
                                                ExchangeEnv& env);

// Ticket Resolve: open the ticket, check it against the current policy for
// the requesting user and the initiator, forking (RFC 6043 §4.2.3.4-5; TS
// 33.328 B.2.2.2 step 6).
StepResult<ResponseContent> DecideTicketResolve(const ParsedRequest& request, const Requester& requester,
                                                ExchangeEnv& env);

// Opens a ticket of this KMS and decides the keys of the RESOLVE_RESP for
// `resolver` (recipient and policy checks, forking): the part of
// DecideTicketResolve shared with Zk.
StepResult<ResponseContent> ResolveTicket(const ParsedRequest& request, const Resolver& resolver, ExchangeEnv& env);

// The timestamp window, the restart rule and the replay cache (RFC 3830
// §5.4) for a message from `who` whose unique part is `unique` (the MAC, or
// for an unprotected Zk message its RAND).
std::optional<Rejection> CheckFreshness(const ParsedRequest& request, ByteSpan who, ByteSpan unique,
                                        ExchangeEnv& env);

// ---- Zk (zk_forward.cpp, zk_serve.cpp) -----------------------------------------

// KMS_R (B.2.2.3 steps 6-12): resolves the ticket through the trust relation
// with `issuer`. The peer's MIKEY Error becomes a rejection with the same
// number (authenticated towards the UE by BuildErrorMessage); no relation is
// error 14; a peer that cannot answer is 503.
StepResult<ResponseContent> ForwardResolve(const ParsedRequest& request, const Requester& requester,
                                           const std::string& issuer, ExchangeEnv& env);
// Step 6: the unprotected RESOLVE_INIT_PSK to the issuer: HDR (PRF, CSB ID
// of the UE's request), fresh T and RAND, IDRr = `responder`, IDRkms =
// `issuer`, the TICKET as received, V with MAC NULL.
StepResult<mikey::Bytes> BuildPeerResolveInit(const ParsedRequest& request, const std::string& responder,
                                              const std::string& issuer, ExchangeEnv& env);
// What was sent to the peer, for checking its answer.
struct PeerQuery {
  uint32_t csb_id = 0;
  uint8_t prf_func = 0;
  std::string issuer;     // IDRkms the answer must carry
  std::string responder;  // IDRr the answer may carry (forked)
  bool forking = false;   // the ticket's I flag: the answer is forked (IDRr, RANDRkms) iff set
};
// Steps 10-11: the peer's answer (untrusted bytes) as the content of the
// RESOLVE_RESP to the UE, or the rejection it means. Strict: an unprotected
// RESOLVE_RESP (T, IDRkms, KEMAC with encryption NULL and MAC NULL, [IDRr,
// RANDRkms of at least 16 bytes, exactly when the ticket forks, with MPKr'
// second], V with MAC NULL) or an Error; anything else is kUnavailable.
StepResult<ResponseContent> ReadPeerAnswer(ByteSpan answer, const PeerQuery& query);

// Step 8 (KMS_I) / TR 33.828 step 5: the checks of an unprotected
// RESOLVE_INIT from the Zk client `context` names: V names the NULL MAC,
// IDRkms (if any) is this KMS, T is fresh and not a replay; a peer KMS must
// name the responder (IDRr). Returns who the keys are for.
StepResult<Resolver> AdmitZkClient(const ParsedRequest& request, const RequestContext& context, ExchangeEnv& env);
// Step 10: the unprotected RESOLVE_RESP: HDR copied, fresh T, IDRkms, KEMAC
// with encryption NULL and MAC NULL, [IDRr, RANDRkms], V with MAC NULL.
StepResult<mikey::Bytes> BuildUnprotectedResponse(const ParsedRequest& request, const ResponseContent& content,
                                                  ExchangeEnv& env);
// The audit fields of a Zk resolve: the ticket's initiator and responders.
void SetTicketAudit(const mikey::TicketPolicy& policy, KmsReply& reply);

// The REQUEST_RESP / RESOLVE_RESP: KEMAC under the requester's keys, V over
// response || request (§4.2.1.5, §4.2.3.5, §5.5).
StepResult<mikey::Bytes> BuildResponse(const ParsedRequest& request, const Requester& requester,
                                       const ResponseContent& content, ExchangeEnv& env);

// The MIKEY Error message for a MIKEY-error rejection (RFC 6043 §5.4): HDR
// copying version, PRF func and CSB ID, fresh T, ERR, and V keyed with the
// request's auth key once the sender is authenticated (`requester` set).
StepResult<mikey::Bytes> BuildErrorMessage(const mikey::HeaderPrefix& header, uint8_t error_no,
                                           const mikey::TPayload* request_t, const mikey::VPayload* request_v,
                                           const Requester* requester, ExchangeEnv& env);

// The KEMAC encryption algorithm of the answer to `user`'s `request`
// (docs/kms.md "KEMAC encryption algorithm").
mikey::EncrAlg KemacEncryptionFor(const UserRecord& user, const ParsedRequest& request);
// RFC 6043 §12.1: "If session keys (TEK/TGK/GTGK) longer than 128 bits are
// used, 128-bit algorithms SHALL NOT be used": error 15 if they would be.
std::optional<Rejection> CheckKeysFitKemac(mikey::EncrAlg encr_alg, const std::vector<mikey::KeyDataPayload>& keys);

}  // namespace tkms::kms
