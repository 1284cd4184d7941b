#include "web/ua_handler.h"

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "firmware/base/encoding.h"
#include "firmware/base/log.h"
#include "firmware/base/secret_bytes.h"
#include "web/annex_a.h"
#include "web/http_framing.h"

namespace tkms::web {
namespace {

// Everything the request log line and the metrics need about one Ua request.
struct UaRecord {
  std::string id;
  std::string peer;
  std::optional<kms::RequestType> type;
  // Set when an Annex A check refused the request (tkms_http_rejections_total).
  std::optional<int> rejection_status;
  // Set when the request reached the service.
  std::optional<kms::KmsReply> reply;
  std::string outcome = "rejected";
  std::string refusal = "-";
  std::string detail;
  size_t bytes_in = 0;
  // Zk only: who the client is, or why it is not authorised.
  std::optional<ZkAuthorization> zk;
  std::string certificate_sha256;
  std::string certificate_subject;
  // Zk only: the audit line could not be written, the answer was withheld.
  bool audit_failed = false;
};

HttpResponse Refuse(UaRecord& rec, const Rejection& rejection) {
  rec.rejection_status = rejection.status;
  rec.refusal = rejection.label;
  HttpResponse response = TextResponse(rejection.status, rejection.reason);
  if (rejection.status == 405) response.extra_headers.emplace_back("Allow", "POST");
  return response;
}

// Rules 1-4 (path, method, requesttype, Content-Type), decided from the head
// alone. Sets `type` once the requesttype is known.
std::optional<Rejection> CheckHead(const HttpRequest& head, std::optional<kms::RequestType>& type) {
  if (!PathIs(head, kKeyManagementPath)) return Rejection{404, "path", "not found"};
  if (head.method != "POST") return Rejection{405, "method", "method not allowed"};
  auto parsed = ParseRequestType(head.query());
  if (!parsed.ok()) return parsed.error();
  type = *parsed;
  const std::string* content_type = head.FindHeader("Content-Type");
  if (content_type == nullptr || head.CountHeaders("Content-Type") != 1 ||
      !IsMikeyContentType(*content_type)) {
    return Rejection{415, "content_type", "Content-Type must be application/mikey"};
  }
  return std::nullopt;
}

// Rules 5 and the reading half of 6: framing and what became of the body.
std::optional<Rejection> CheckBody(const HttpRequest& request, size_t max_body_bytes) {
  const FramingError framing_error = request.framing.error;
  if (framing_error != FramingError::kNone) {
    return Rejection{400, std::string(FramingErrorLabel(framing_error)),
                     std::string(FramingErrorText(framing_error))};
  }
  if (request.framing.kind == BodyFraming::Kind::kNone) {
    return Rejection{411, "length_required", "Content-Length required"};
  }
  switch (request.body_state) {
    case BodyState::kEmpty:
    case BodyState::kComplete: return std::nullopt;
    case BodyState::kTooLarge:
      return Rejection{413, "too_large",
                       "body larger than " + std::to_string(max_body_bytes) + " bytes"};
    case BodyState::kIncomplete:
      return Rejection{400, "incomplete_body", "body shorter than Content-Length"};
    case BodyState::kBadChunked:
      return Rejection{400, "bad_chunked_body", "malformed or incomplete chunked body"};
    case BodyState::kNotRead: break;
  }
  return Rejection{500, "internal", "internal error"};  // the transport ignored the plan
}

// Maps a KmsReply onto the Annex A response.
HttpResponse ReplyToResponse(const kms::KmsReply& reply) {
  switch (reply.outcome) {
    case kms::Outcome::kOk:
    case kms::Outcome::kMikeyError: {
      HttpResponse response;
      response.status = 200;
      response.content_type = std::string(kMikeyMediaType);
      response.body = Base64Encode(reply.mikey);
      return response;
    }
    case kms::Outcome::kBadRequest: return TextResponse(400, "not a MIKEY message");
    case kms::Outcome::kUnavailable: {
      HttpResponse response = TextResponse(503, "KMS temporarily unavailable");
      response.extra_headers.emplace_back("Retry-After", "1");
      return response;
    }
    case kms::Outcome::kInternal: break;
  }
  return TextResponse(500, "internal error");
}

// Rule 7: the service; a throwing service or an empty MIKEY answer is kInternal.
kms::KmsReply CallService(kms::KmsService& service, const kms::RequestContext& context,
                          const std::vector<uint8_t>& mikey) {
  kms::KmsReply reply;
  try {
    reply = service.Handle(context, mikey);
  } catch (const std::exception& e) {
    reply = kms::KmsReply{};
    reply.outcome = kms::Outcome::kInternal;
    reply.detail = std::string("service threw: ") + e.what();
  } catch (...) {
    reply = kms::KmsReply{};
    reply.outcome = kms::Outcome::kInternal;
    reply.detail = "service threw a non-standard exception";
  }
  if ((reply.outcome == kms::Outcome::kOk || reply.outcome == kms::Outcome::kMikeyError) &&
      reply.mikey.empty()) {
    reply.outcome = kms::Outcome::kInternal;
    reply.detail = "service returned no MIKEY message" +
                   (reply.detail.empty() ? std::string() : "; " + reply.detail);
  }
  return reply;
}

// Zk: only from an authorised client, and only ticketresolve (docs/zk.md).
// Who the client is is established first, so every refusal's audit line
// names it.
std::optional<Rejection> CheckZkClient(const HttpRequest& request, const ZkAuthorizer& authorizer, UaRecord& rec) {
  if (!request.peer.tls_identity.has_value()) {
    rec.zk = ZkAuthorization{kms::ZkClientKind::kNone, "", "no client certificate"};
  } else {
    const PeerIdentity& identity = *request.peer.tls_identity;
    rec.certificate_sha256 = HexEncode(ByteSpan(identity.certificate_sha256.data(), identity.certificate_sha256.size()));
    rec.certificate_subject = identity.subject;
    rec.zk = authorizer(identity);
  }
  if (rec.zk->kind == kms::ZkClientKind::kNone) {
    return Rejection{403, "zk_forbidden", "client certificate not authorised on Zk"};
  }
  if (*rec.type != kms::RequestType::kTicketResolve) {
    return Rejection{403, "zk_request_type", "only requesttype=ticketresolve is served on Zk"};
  }
  return std::nullopt;
}

// The checks in their documented order (docs/http.md), then the service.
HttpResponse Serve(const HttpRequest& request, size_t max_body_bytes, bool stopping,
                   kms::KmsService& service, const ZkAuthorizer& zk_authorizer, UaRecord& rec) {
  if (stopping) {
    rec.refusal = "stopping";
    HttpResponse response = TextResponse(503, "KMS is shutting down");
    response.extra_headers.emplace_back("Retry-After", "1");
    return response;
  }
  if (auto rejection = CheckHead(request, rec.type)) return Refuse(rec, *rejection);
  if (zk_authorizer) {
    if (auto rejection = CheckZkClient(request, zk_authorizer, rec)) return Refuse(rec, *rejection);
  }
  rec.bytes_in = request.body.size();
  if (auto rejection = CheckBody(request, max_body_bytes)) {
    HttpResponse response = Refuse(rec, *rejection);
    response.keep_alive = rejection->status != 411;  // no body framing: close, as always
    return response;
  }
  auto mikey = DecodeMikeyBody(request.body);
  if (!mikey.ok()) return Refuse(rec, mikey.error());

  kms::RequestContext context;
  context.type = *rec.type;
  context.request_id = rec.id;
  context.peer = rec.peer;
  if (rec.zk.has_value()) {
    context.interface = kms::Interface::kZk;
    context.zk_client = rec.zk->kind;
    context.zk_client_name = rec.zk->name;
  }
  kms::KmsReply reply = CallService(service, context, *mikey);
  HttpResponse response = ReplyToResponse(reply);
  rec.outcome = std::string(kms::OutcomeName(reply.outcome));
  rec.refusal =
      reply.refusal == kms::Refusal::kNone ? "-" : std::string(kms::RefusalName(reply.refusal));
  rec.reply = std::move(reply);
  return response;
}

Metrics::ZkClient ZkClientOf(const UaRecord& rec) {
  if (!rec.zk.has_value()) return Metrics::ZkClient::kUnauthorised;
  switch (rec.zk->kind) {
    case kms::ZkClientKind::kPeerKms: return Metrics::ZkClient::kPeerKms;
    case kms::ZkClientKind::kNetworkFunction: return Metrics::ZkClient::kNetworkFunction;
    case kms::ZkClientKind::kNone: break;
  }
  return Metrics::ZkClient::kUnauthorised;
}

Metrics::ZkResult ZkResultOf(const UaRecord& rec, int status) {
  if (status == 403) return Metrics::ZkResult::kForbidden;
  if (rec.audit_failed && status == 503) return Metrics::ZkResult::kUnavailable;
  if (!rec.reply.has_value()) return Metrics::ZkResult::kRejected;
  switch (rec.reply->outcome) {
    case kms::Outcome::kOk: return Metrics::ZkResult::kOk;
    case kms::Outcome::kMikeyError: return Metrics::ZkResult::kMikeyError;
    case kms::Outcome::kBadRequest: return Metrics::ZkResult::kBadRequest;
    case kms::Outcome::kUnavailable: return Metrics::ZkResult::kUnavailable;
    case kms::Outcome::kInternal: break;
  }
  return Metrics::ZkResult::kInternal;
}

// The audit line of every Zk request (docs/zk.md "Audit"): who (the client
// and its certificate), whose ticket (initiator, responders), when (the log
// line's time), and what happened. Network functions' resolves are the
// lawful-interception accesses an operator must be able to account for.
// Written before the response leaves (issue 14): the caller withholds the
// response if the line could not be written.
Status LogZkAudit(const UaRecord& rec, int status, const std::string& mikey_error) {
  const ZkAuthorization& zk = *rec.zk;
  const bool refused = status == 403;
  LogLine line(refused || status >= 500 ? LogLevel::kWarn : LogLevel::kInfo, "zk_request", AuditRecord::kZkRequest);
  line.Add("id", rec.id)
      .Add("peer", rec.peer)
      .Add("client_kind", Metrics::ZkClientName(ZkClientOf(rec)))
      .Add("client", zk.name.empty() ? std::string("-") : zk.name)
      .Add("certificate_subject", rec.certificate_subject.empty() ? std::string("-") : rec.certificate_subject)
      .Add("certificate_sha256", rec.certificate_sha256.empty() ? std::string("-") : rec.certificate_sha256)
      .Add("status", status)
      .Add("outcome", rec.outcome)
      .Add("refusal", rec.refusal)
      .Add("mikey_error", mikey_error);
  if (rec.reply.has_value()) {
    line.Add("ticket_initiator", rec.reply->ticket_initiator.empty() ? std::string("-") : rec.reply->ticket_initiator)
        .Add("ticket_responders",
             rec.reply->ticket_responders.empty() ? std::string("-") : rec.reply->ticket_responders)
        .Add("responder", rec.reply->user.empty() ? std::string("-") : rec.reply->user);
  }
  if (!zk.refusal.empty()) line.Add("why", zk.refusal);
  if (!rec.detail.empty()) line.Add("detail", rec.detail);
  return line.Emit();
}

}  // namespace

BodyPlan UaHandler::PlanBody(const HttpRequest& head) {
  std::optional<kms::RequestType> type;
  if (stopping_.load() || CheckHead(head, type).has_value()) {
    return BodyPlan::Discard(max_body_bytes_);  // refused: keep the connection if cheap
  }
  return BodyPlan::Read(max_body_bytes_);
}

HttpResponse UaHandler::Handle(const HttpRequest& request) {
  UaRecord rec;
  rec.id = request.id;
  rec.peer = request.peer.address;
  HttpResponse response;
  try {
    response = Serve(request, max_body_bytes_, stopping_.load(), service_, zk_authorizer_, rec);
  } catch (const std::exception& e) {
    response = TextResponse(500, "internal error");
    rec.outcome = "internal";
    rec.detail = std::string("front end threw: ") + e.what();
  } catch (...) {
    response = TextResponse(500, "internal error");
    rec.outcome = "internal";
    rec.detail = "front end threw a non-standard exception";
  }

  // Counted before the response leaves, so a client that has its response
  // also sees it in /metrics. The latency ends here too: the one write that
  // follows is a single send() of a small buffer.
  const auto latency = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now() - request.received);
  if (rec.rejection_status.has_value()) metrics_.RecordRejection(*rec.rejection_status);
  std::string mikey_error = "-";
  std::string user = "-";
  if (rec.reply.has_value()) {
    const kms::KmsReply& reply = *rec.reply;
    if (rec.type.has_value() && !zk()) metrics_.RecordRequest(*rec.type, reply.outcome, latency);
    metrics_.RecordRefusal(reply.refusal);
    if (reply.mikey_error.has_value()) {
      metrics_.RecordMikeyError(*reply.mikey_error);
      mikey_error = std::to_string(*reply.mikey_error);
    }
    if (!reply.user.empty()) user = reply.user;
    if (rec.detail.empty()) rec.detail = reply.detail;
  }
  if (zk()) {
    if (!rec.zk.has_value()) rec.zk = ZkAuthorization{};  // refused before the client was looked at
    // The audit line is the record of who got which keys: it is written
    // before the answer leaves, and an answer whose record could not be
    // written is withheld (fail closed, docs/zk.md "Audit").
    Status audited = Status::Ok();
    try {
      audited = LogZkAudit(rec, response.status, mikey_error);
    } catch (const std::exception& e) {
      audited = Internal(std::string("audit line: ") + e.what());
    }
    if (!audited.ok()) {
      rec.audit_failed = true;
      if (response.status == 200) {
        SecureWipe(response.body.data(), response.body.size());
        const bool keep_alive = response.keep_alive;
        response = TextResponse(503, "KMS cannot write its audit record");
        response.extra_headers.emplace_back("Retry-After", "1");
        response.keep_alive = keep_alive;
      }
      // Most likely lost too (counted in tkms_log_write_failures_total).
      LogLine(LogLevel::kError, "zk_audit_failed")
          .Add("id", rec.id)
          .Add("status", response.status)
          .Add("error", audited.message());
    }
    metrics_.RecordZkRequest(ZkClientOf(rec), ZkResultOf(rec, response.status));
    if (stopping_.load()) response.keep_alive = false;
    return response;
  }
  if (stopping_.load()) response.keep_alive = false;

  response.on_written = [rec = std::move(rec), mikey_error, user, latency,
                         status = response.status,
                         bytes_out = response.body.size()](bool written) {
    try {
      LogLine line(status >= 500 ? LogLevel::kWarn : LogLevel::kInfo, "request");
      line.Add("id", rec.id)
          .Add("peer", rec.peer)
          .Add("type", rec.type.has_value() ? kms::RequestTypeName(*rec.type) : std::string_view("-"))
          .Add("status", status)
          .Add("outcome", rec.outcome)
          .Add("refusal", rec.refusal)
          .Add("mikey_error", mikey_error)
          .Add("user", user)
          .Add("bytes_in", static_cast<uint64_t>(rec.bytes_in))
          .Add("bytes_out", static_cast<uint64_t>(bytes_out))
          .Add("us", static_cast<int64_t>(latency.count() / 1000));
      if (!written) line.Add("write", "failed");
      if (!rec.detail.empty()) line.Add("detail", rec.detail);
    } catch (...) {
      // A lost log line must not take the worker down.
    }
  };
  return response;
}

}  // namespace tkms::web
