// KMS_R's side of KMS-to-KMS resolution (TS 33.328 B.2.2.3 steps 6-12, RFC
// 6043 §10): a responder of this KMS brings a ticket another KMS issued.
//
// Steps 1-5 (the responder authenticated, IDRkms, freshness, replay) ran as
// for any resolve. Here:
//   6.  a new RESOLVE_INIT_PSK: IDRr reused if it is the responder's (it
//       matched a legitimate identity in step 5), else the responder's
//       identity that the ticket names; TICKET reused; not integrity
//       protected (V with MAC NULL);
//   7.  sent to the issuer over Annex A HTTP inside mutual TLS
//       (PeerKmsClient, firmware/zk);
//   10-11. the issuer's unprotected RESOLVE_RESP is read strictly
//       (ReadPeerAnswer): its keys and [IDRr, RANDRkms] become the content
//       that BuildResponse enciphers and MACs for the responder (step 12).
// A MIKEY Error from the issuer is passed on with its number; a ticket of a
// KMS with no trust relation is error 14 (Invalid TICKET); a peer that cannot
// answer gives 503.
#include <string>
#include <vector>

#include "firmware/base/printable.h"
#include "firmware/base/user_identity.h"
#include "firmware/kms/exchange.h"
#include "firmware/kms/payload_helpers.h"
#include "firmware/mikey/codec.h"

namespace tkms::kms {
namespace {

using mikey::ErrorNo;
using mikey::IdRole;

// RANDRr of the forwarded request (RFC 3830 §6.11: at least 16 bytes).
constexpr size_t kRandBytes = 16;
// Most Key data sub-payloads accepted from a peer: MPKi, MPKr', and at most
// 16 session keys per ticket (policy max_keys), with room to spare.
constexpr size_t kMaxPeerKeys = 32;
// RFC 6043 §12.1: RANDRkms is at least as long as the keys it forks; 16
// bytes is the least this KMS sends and accepts.
constexpr size_t kMinRandrKmsBytes = 16;

Rejection PeerFailure(const std::string& issuer, const std::string& what) {
  Rejection r;
  r.outcome = Outcome::kUnavailable;
  r.refusal = Refusal::kPeerUnavailable;
  r.detail = "KMS " + Quote(issuer) + ": " + what;
  return r;
}

const provisioning::TrustRelationConfig* FindRelation(const provisioning::KmsConfig& config,
                                                      const std::string& issuer) {
  for (const auto& relation : config.trust_relations) {
    if (SameUserIdentity(relation.kms_uri, issuer)) return &relation;
  }
  return nullptr;
}

// The ticket's IDRr list as read before the ticket is opened (untrusted here:
// only the issuer can verify it; used to pick which identity to ask for).
std::vector<std::string> TicketRecipients(const mikey::TicketPolicy& policy) {
  std::vector<std::string> out;
  for (const auto& item : policy.tp_data) {
    const auto* idr = std::get_if<mikey::IdrPayload>(&item);
    if (idr != nullptr && idr->role == static_cast<uint8_t>(IdRole::kResponder)) out.push_back(IdText(idr->data));
  }
  return out;
}

// Step 6: "If the IDRr payload in the received RESOLVE_INIT_PSK message
// matched a legitimate recipient it is reused ..., otherwise KMS_R inserts a
// matching KMS UID as IDRr": the identity the responder authenticated as if
// the request named one, else the user's identity the ticket lists (or its
// first identity, and the issuer decides).
std::string ResponderToAskFor(const ParsedRequest& request, const Requester& requester) {
  if (request.payloads.idr_peer != nullptr) return requester.identity;
  const auto recipients = TicketRecipients(request.payloads.ticket->policy);
  for (const auto& id : requester.user->identities) {
    for (const auto& r : recipients) {
      if (SameUserIdentity(r, id)) return id;
    }
  }
  return requester.user->identities.empty() ? requester.identity : requester.user->identities.front();
}

// The parts of a peer's RESOLVE_RESP, each at most once.
struct AnswerParts {
  const mikey::TPayload* t = nullptr;
  const mikey::IdrPayload* idr_kms = nullptr;
  const mikey::IdrPayload* idr_r = nullptr;
  const mikey::KemacPayload* kemac = nullptr;
  const mikey::RandrPayload* randr_kms = nullptr;
  const mikey::VPayload* v = nullptr;
};

template <typename T>
bool TakeOnce(const T* candidate, const T*& slot) {
  if (slot != nullptr) return false;
  slot = candidate;
  return true;
}

// nullptr on success, else why the payload list is not an unprotected
// RESOLVE_RESP.
const char* SortPayloads(const mikey::Message& m, AnswerParts& parts) {
  if (m.payloads.empty()) return "no payloads";
  const auto* v = std::get_if<mikey::VPayload>(&m.payloads.back());
  if (v == nullptr) return "the last payload is not V";
  parts.v = v;
  for (size_t i = 0; i + 1 < m.payloads.size(); ++i) {
    const auto& payload = m.payloads[i];
    bool ok = false;
    if (const auto* t = std::get_if<mikey::TPayload>(&payload)) {
      ok = TakeOnce(t, parts.t);
    } else if (const auto* idr = std::get_if<mikey::IdrPayload>(&payload)) {
      if (idr->role == static_cast<uint8_t>(IdRole::kKms)) ok = TakeOnce(idr, parts.idr_kms);
      if (idr->role == static_cast<uint8_t>(IdRole::kResponder)) ok = TakeOnce(idr, parts.idr_r);
    } else if (const auto* kemac = std::get_if<mikey::KemacPayload>(&payload)) {
      ok = TakeOnce(kemac, parts.kemac);
    } else if (const auto* randr = std::get_if<mikey::RandrPayload>(&payload)) {
      if (randr->role == static_cast<uint8_t>(mikey::RandRole::kKms)) ok = TakeOnce(randr, parts.randr_kms);
    }
    if (!ok) return "an unexpected or repeated payload";
  }
  if (parts.t == nullptr) return "no T payload";
  if (parts.idr_kms == nullptr) return "no IDRkms payload";
  if (parts.kemac == nullptr) return "no KEMAC payload";
  if ((parts.idr_r == nullptr) != (parts.randr_kms == nullptr)) return "IDRr and RANDRkms must come together";
  return nullptr;
}

}  // namespace

StepResult<mikey::Bytes> BuildPeerResolveInit(const ParsedRequest& request, const std::string& responder,
                                              const std::string& issuer, ExchangeEnv& env) {
  mikey::Message m;
  m.header = request.header();
  m.header.data_type = static_cast<uint8_t>(mikey::DataType::kResolveInitPsk);
  m.header.v = false;
  auto t = TimestampValue(mikey::TsType::kNtpUtc, env.now);
  if (!t) return Rejection::FromStatus(Internal("no timestamp value"), "timestamp");
  m.payloads.emplace_back(mikey::TPayload{static_cast<uint8_t>(mikey::TsType::kNtpUtc), *t});
  mikey::Bytes rand(kRandBytes);
  if (auto s = env.keys.Random(rand); !s.ok()) return Rejection::FromStatus(s, "token RNG");
  m.payloads.emplace_back(mikey::RandrPayload{static_cast<uint8_t>(mikey::RandRole::kResponder), std::move(rand)});
  m.payloads.emplace_back(UriIdr(IdRole::kResponder, responder));
  m.payloads.emplace_back(UriIdr(IdRole::kKms, issuer));
  m.payloads.emplace_back(*request.payloads.ticket);
  m.payloads.emplace_back(mikey::VPayload{static_cast<uint8_t>(mikey::MacAlg::kNull), {}});
  auto encoded = mikey::Encode(m);
  if (!encoded.ok()) return Rejection::FromStatus(Internal(encoded.error().ToString()), "encoding the RESOLVE_INIT");
  return std::move(*encoded);
}

StepResult<ResponseContent> ReadPeerAnswer(ByteSpan answer, const PeerQuery& query) {
  mikey::DecodeOptions options;
  options.check_composition = false;  // the checks below are stricter and name what is wrong
  auto decoded = mikey::Decode(answer, options);
  if (!decoded.ok()) {
    return PeerFailure(query.issuer, "answer is not a MIKEY message: " + EscapedDetail(decoded.error().ToString()));
  }
  const mikey::Message& m = *decoded;
  if (m.header.data_type == static_cast<uint8_t>(mikey::DataType::kError)) {
    for (const auto& payload : m.payloads) {
      if (const auto* err = std::get_if<mikey::ErrPayload>(&payload)) {
        Rejection r;
        r.outcome = Outcome::kMikeyError;
        r.refusal = Refusal::kPeerRefused;
        r.error_no = err->error_no;
        r.detail = "KMS " + Quote(query.issuer) + " refused the resolve: MIKEY error " +
                   std::to_string(err->error_no);
        return r;
      }
    }
    return PeerFailure(query.issuer, "answered with an Error message without an ERR payload");
  }
  if (m.header.data_type != static_cast<uint8_t>(mikey::DataType::kResolveResp)) {
    return PeerFailure(query.issuer, "answered with data type " + std::to_string(m.header.data_type) +
                                         ", not RESOLVE_RESP");
  }
  if (m.header.csb_id != query.csb_id || m.header.prf_func != query.prf_func) {
    return PeerFailure(query.issuer, "the RESOLVE_RESP's CSB ID or PRF differs from the request's");
  }
  AnswerParts parts;
  if (const char* why = SortPayloads(m, parts)) {
    return PeerFailure(query.issuer, std::string("not an unprotected RESOLVE_RESP: ") + why);
  }
  if (!SameUserIdentity(IdText(parts.idr_kms->data), query.issuer)) {
    return PeerFailure(query.issuer, "the RESOLVE_RESP names KMS " + Quote(IdText(parts.idr_kms->data)));
  }
  // Step 10: "no integrity protection and the KEMAC is not enciphered".
  if (parts.v->auth_alg != static_cast<uint8_t>(mikey::MacAlg::kNull) || !parts.v->mac.empty()) {
    return PeerFailure(query.issuer, "the RESOLVE_RESP's V is not MAC algorithm NULL");
  }
  if (parts.kemac->encr_alg != static_cast<uint8_t>(mikey::EncrAlg::kNull) ||
      parts.kemac->mac_alg != static_cast<uint8_t>(mikey::MacAlg::kNull) || !parts.kemac->mac.empty()) {
    return PeerFailure(query.issuer, "the RESOLVE_RESP's KEMAC is not encryption NULL with MAC NULL");
  }
  auto keys = mikey::DecodeKeyDataChain(parts.kemac->encr_data);
  if (!keys.ok()) {
    return PeerFailure(query.issuer, "the KEMAC's key data: " + EscapedDetail(keys.error().ToString()));
  }
  if (keys->empty() || keys->size() > kMaxPeerKeys) {
    return PeerFailure(query.issuer, "the KEMAC carries " + std::to_string(keys->size()) + " keys");
  }
  if (keys->front().key_type != static_cast<uint8_t>(mikey::KeyType::kMpk)) {
    return PeerFailure(query.issuer, "the KEMAC does not start with MPKi");
  }
  if (parts.idr_r != nullptr && !SameUserIdentity(IdText(parts.idr_r->data), query.responder)) {
    return PeerFailure(query.issuer, "the RESOLVE_RESP's IDRr " + Quote(IdText(parts.idr_r->data)) +
                                         " is not the responder asked for");
  }
  // A forking ticket's answer is forked for the responder asked for (§5.1.1),
  // an unforked one is not: anything else is a confused or lying peer.
  if (query.forking != (parts.idr_r != nullptr)) {
    return PeerFailure(query.issuer, query.forking ? "the ticket forks but the RESOLVE_RESP is not forked"
                                                   : "the RESOLVE_RESP is forked but the ticket does not fork");
  }
  if (query.forking && (keys->size() < 2 || (*keys)[1].key_type != static_cast<uint8_t>(mikey::KeyType::kMpk) ||
                        parts.randr_kms->rand.size() < kMinRandrKmsBytes)) {
    return PeerFailure(query.issuer, "the forked RESOLVE_RESP lacks MPKr' or a RANDRkms of at least 16 bytes");
  }
  ResponseContent content;
  content.data_type = mikey::DataType::kResolveResp;
  content.kemac_keys = std::move(*keys);
  if (parts.idr_r != nullptr) {
    content.after_kemac.emplace_back(*parts.idr_r);
    content.after_kemac.emplace_back(*parts.randr_kms);
  }
  return content;
}

StepResult<ResponseContent> ForwardResolve(const ParsedRequest& request, const Requester& requester,
                                           const std::string& issuer, ExchangeEnv& env) {
  const auto* relation = FindRelation(env.snapshot.config, issuer);
  if (relation == nullptr || env.peers == nullptr) {
    return Rejection::Mikey(ErrorNo::kInvalidTicket, Refusal::kNoTrustRelation,
                            "ticket was issued by KMS " + Quote(issuer) + ", with which this KMS has no trust relation");
  }
  // The responder's own policy still applies (the issuer checks the
  // initiator's, step 9).
  if (!requester.user->policy.allow_resolve) {
    return Rejection::Mikey(ErrorNo::kInvalidTpPar, Refusal::kPolicyConflict,
                            requester.user->name + " may not resolve tickets (policy class '" +
                                requester.user->policy_class + "')");
  }
  PeerQuery query;
  query.csb_id = request.header().csb_id;
  query.prf_func = request.header().prf_func;
  query.issuer = relation->kms_uri;
  query.responder = ResponderToAskFor(request, requester);
  query.forking = (request.payloads.ticket->policy.flags & mikey::kFlagI) != 0;
  auto init = BuildPeerResolveInit(request, query.responder, query.issuer, env);
  if (!init.ok()) return init.error();
  auto answer = env.peers->Resolve(relation->kms_uri, *init);
  if (!answer.ok()) {
    if (answer.error().code() == StatusCode::kNotFound) {
      return Rejection::Mikey(ErrorNo::kInvalidTicket, Refusal::kNoTrustRelation,
                              "ticket was issued by KMS " + Quote(issuer) + ": " + answer.error().message());
    }
    return PeerFailure(relation->kms_uri, answer.error().message());
  }
  return ReadPeerAnswer(*answer, query);
}

}  // namespace tkms::kms
