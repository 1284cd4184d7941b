#include "firmware/kms/service.h"

namespace tkms::kms {

std::string_view RequestTypeName(RequestType type) {
  switch (type) {
    case RequestType::kTicketRequest: return "ticketrequest";
    case RequestType::kTicketResolve: return "ticketresolve";
  }
  return "unknown";
}

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk: return "ok";
    case Outcome::kMikeyError: return "mikey_error";
    case Outcome::kBadRequest: return "bad_request";
    case Outcome::kUnavailable: return "unavailable";
    case Outcome::kInternal: return "internal";
  }
  return "unknown";
}

std::string_view RefusalName(Refusal refusal) {
  switch (refusal) {
    case Refusal::kNone: return "none";
    case Refusal::kMalformed: return "malformed";
    case Refusal::kWrongDataType: return "wrong_data_type";
    case Refusal::kUnknownUser: return "unknown_user";
    case Refusal::kAuthentication: return "authentication";
    case Refusal::kIdentityNotOwned: return "identity_not_owned";
    case Refusal::kWrongKms: return "wrong_kms";
    case Refusal::kStaleTimestamp: return "stale_timestamp";
    case Refusal::kReplay: return "replay";
    case Refusal::kBeforeStart: return "before_start";
    case Refusal::kPolicy: return "policy";
    case Refusal::kInvalidTicket: return "invalid_ticket";
    case Refusal::kExpiredTicket: return "expired_ticket";
    case Refusal::kPolicyConflict: return "policy_conflict";
    case Refusal::kNotRecipient: return "not_recipient";
    case Refusal::kNoTrustRelation: return "no_trust_relation";
    case Refusal::kPeerRefused: return "peer_refused";
    case Refusal::kPeerUnavailable: return "peer_unavailable";
    case Refusal::kZkClient: return "zk_client";
    case Refusal::kToken: return "token";
    case Refusal::kOverloaded: return "overloaded";
    case Refusal::kInternal: return "internal";
  }
  return "unknown";
}

}  // namespace tkms::kms
