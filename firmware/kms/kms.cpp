#include "firmware/kms/kms.h"

#include <exception>
#include <optional>

#include "firmware/kms/base_ticket.h"

namespace tkms::kms {
namespace {

KmsReply FailureReply(Outcome outcome, Refusal refusal, std::string detail) {
  KmsReply r;
  r.outcome = outcome;
  r.refusal = refusal;
  r.detail = std::move(detail);
  return r;
}

// A refusal as the reply to send: a MIKEY Error message for MIKEY errors
// (authenticated once `requester` is known), else the 4xx/5xx condition.
KmsReply ReplyFor(const Rejection& rejection, const std::optional<mikey::HeaderPrefix>& header,
                  const ParsedRequest* request, const Requester* requester, ExchangeEnv& env) {
  if (rejection.outcome != Outcome::kMikeyError || !header) {
    return FailureReply(rejection.outcome, rejection.refusal, rejection.detail);
  }
  const mikey::TPayload* t = request != nullptr ? request->payloads.t : nullptr;
  const mikey::VPayload* v = request != nullptr ? request->payloads.v : nullptr;
  auto message = BuildErrorMessage(*header, rejection.error_no, t, v, requester, env);
  if (!message.ok()) return FailureReply(message.error().outcome, message.error().refusal, message.error().detail);
  KmsReply r;
  r.outcome = Outcome::kMikeyError;
  r.refusal = rejection.refusal;
  r.mikey_error = rejection.error_no;
  r.mikey = std::move(*message);
  r.detail = rejection.detail;
  return r;
}

}  // namespace

Kms::Kms(KmsKeys& keys, const hal::Clock& clock, std::shared_ptr<const KmsSnapshot> snapshot)
    : keys_(keys),
      clock_(clock),
      started_(clock.Now()),
      snapshot_(std::move(snapshot)),
      replay_(snapshot_->config.mikey.replay_cache_entries) {
  formats_.Add(std::make_unique<BaseTicketFormat>(keys_));
}

void Kms::SetSnapshot(std::shared_ptr<const KmsSnapshot> snapshot) {
  std::atomic_store(&snapshot_, std::move(snapshot));
}

std::shared_ptr<const KmsSnapshot> Kms::snapshot() const { return std::atomic_load(&snapshot_); }

KmsReply Kms::Serve(const RequestContext& context, ByteSpan bytes) {
  if (Status health = keys_.Health(); !health.ok()) {
    return FailureReply(Outcome::kUnavailable, Refusal::kToken, "token: " + health.message());
  }
  const auto snap = snapshot();
  ExchangeEnv env{keys_,          keys_.provider(),      *snap,    replay_, formats_,
                  clock_.Now(),   clock_.MonotonicNow(), started_, peers_};
  KmsReply reply;
  if (context.interface == Interface::kZk) {
    reply = RunZkSteps(context, bytes, env);
  } else {
    reply = RunSteps(context.type, bytes, env);
  }
  if (reply.refusal == Refusal::kToken) keys_.OnTokenFailure(reply.detail);
  return reply;
}

KmsReply Kms::RunSteps(RequestType type, ByteSpan bytes, ExchangeEnv& env) {
  std::optional<mikey::HeaderPrefix> header;
  auto request = ParseRequest(type, bytes, header);
  if (!request.ok()) return ReplyFor(request.error(), header, nullptr, nullptr, env);
  auto requester = Authenticate(*request, env);
  if (!requester.ok()) return ReplyFor(requester.error(), header, &*request, nullptr, env);
  KmsReply reply;
  if (auto refused = AdmitRequester(*request, *requester, env)) {
    reply = ReplyFor(*refused, header, &*request, &*requester, env);
  } else {
    auto content = request->is_request() ? DecideTicketRequest(*request, *requester, env)
                                         : DecideTicketResolve(*request, *requester, env);
    auto response = content.ok() ? BuildResponse(*request, *requester, *content, env)
                                 : StepResult<mikey::Bytes>(content.error());
    if (response.ok()) {
      reply.outcome = Outcome::kOk;
      reply.mikey = std::move(*response);
    } else {
      reply = ReplyFor(response.error(), header, &*request, &*requester, env);
    }
  }
  reply.user = requester->user->name;
  return reply;
}

KmsReply Kms::RunZkSteps(const RequestContext& context, ByteSpan bytes, ExchangeEnv& env) {
  if (context.type != RequestType::kTicketResolve) {
    return FailureReply(Outcome::kBadRequest, Refusal::kZkClient, "only ticketresolve is served on Zk");
  }
  std::optional<mikey::HeaderPrefix> header;
  auto request = ParseRequest(context.type, bytes, header);
  if (!request.ok()) return ReplyFor(request.error(), header, nullptr, nullptr, env);
  auto resolver = AdmitZkClient(*request, context, env);
  if (!resolver.ok()) return ReplyFor(resolver.error(), header, &*request, nullptr, env);
  auto content = ResolveTicket(*request, *resolver, env);
  auto response = content.ok() ? BuildUnprotectedResponse(*request, *content, env)
                               : StepResult<mikey::Bytes>(content.error());
  KmsReply reply;
  if (response.ok()) {
    reply.outcome = Outcome::kOk;
    reply.mikey = std::move(*response);
  } else {
    reply = ReplyFor(response.error(), header, &*request, nullptr, env);
  }
  reply.user = resolver->name;
  SetTicketAudit(request->payloads.ticket->policy, reply);
  return reply;
}

KmsReply Kms::Handle(const RequestContext& context, ByteSpan mikey) {
  try {
    return Serve(context, mikey);
  } catch (const std::exception& e) {
    return FailureReply(Outcome::kInternal, Refusal::kInternal, std::string("exception: ") + e.what());
  } catch (...) {
    return FailureReply(Outcome::kInternal, Refusal::kInternal, "unknown exception");
  }
}

Readiness Kms::CheckReadiness() {
  Readiness r;
  auto snap = snapshot();
  r.config_loaded = snap != nullptr && snap->users != nullptr;
  Status token = keys_.Health();
  r.token_ready = token.ok();
  auto key_id = keys_.CurrentTicketKeyId();
  r.keys_present = key_id.ok();
  if (!r.token_ready) r.detail += "token: " + token.message() + "; ";
  if (!r.keys_present) r.detail += "ticket key: " + key_id.error().message() + "; ";
  if (r.config_loaded) {
    r.detail += std::to_string(snap->users->size()) + " users";
    if (r.keys_present) r.detail += ", ticket key " + std::to_string(*key_id);
  } else {
    r.detail += "no configuration";
  }
  return r;
}

}  // namespace tkms::kms
