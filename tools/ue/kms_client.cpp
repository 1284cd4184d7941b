#include "tools/ue/kms_client.h"

#include <utility>

#include "firmware/base/encoding.h"
#include "web/client/http_text.h"

namespace tkms::ue {
namespace {

// A short, printable excerpt of an error body for the error text.
std::string Excerpt(std::string_view body) {
  std::string out;
  for (char c : body.substr(0, 120)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7F ? c : '.');
  }
  if (body.size() > 120) out += "...";
  return out;
}

}  // namespace

bool IsMikeyContentType(std::string_view value) {
  namespace http_text = web::client::http_text;
  return http_text::EqualsIgnoreCase(http_text::TrimOws(value.substr(0, value.find(';'))), kMikeyContentType);
}

UeResult<Bytes> AnnexAAnswerBytes(const web::client::HttpResponse& resp, bool check_content_type) {
  if (resp.status != 200) {
    UeError e;
    e.kind = UeErrorKind::kHttpStatus;
    e.http_status = resp.status;
    e.detail = "HTTP " + std::to_string(resp.status) + " " + Excerpt(resp.reason);
    if (!resp.body.empty()) e.detail += ": " + Excerpt(resp.body);
    return e;
  }
  if (check_content_type) {
    const auto content_type = resp.Header("Content-Type");
    if (!content_type.has_value() || !IsMikeyContentType(*content_type)) {
      UeError e;
      e.kind = UeErrorKind::kBadResponse;
      e.detail = "200 answer is not application/mikey (Content-Type: " +
                 (content_type.has_value() ? Excerpt(*content_type) : std::string("none")) + ")";
      return e;
    }
  }
  auto bytes = Base64Decode(StripWhitespace(resp.body));
  if (!bytes.has_value() || bytes->empty()) {
    UeError e;
    e.kind = UeErrorKind::kBadResponse;
    e.detail = "200 answer body is not base64 (" + std::to_string(resp.body.size()) + " bytes)";
    return e;
  }
  return std::move(*bytes);
}

std::string_view AnnexARequestName(AnnexARequest type) {
  return type == AnnexARequest::kTicketRequest ? "ticketrequest" : "ticketresolve";
}

KmsClient::KmsClient(web::client::HttpClient http, KmsClientOptions options)
    : http_(std::move(http)),
      options_(std::move(options)),
      provider_(std::make_unique<mikey::crypto::TransientCryptoProvider>()) {}

UeResult<Bytes> KmsClient::Exchange(AnnexARequest type, ByteSpan mikey) {
  const std::string target = options_.path + "?requesttype=" + std::string(AnnexARequestName(type));
  const std::string body = Base64Encode(mikey);
  auto resp = http_.Post(target, kMikeyContentType, body);
  if (!resp.ok()) {
    UeError e;
    e.kind = UeErrorKind::kTransport;
    e.detail = resp.error().ToString();
    return e;
  }
  return AnnexAAnswerBytes(*resp, options_.check_content_type);
}

UeResult<TicketGrant> KmsClient::RequestTicket(const RequestInitParams& params) {
  auto request = BuildRequestInitPsk(*provider_, params);
  if (!request.ok()) return std::move(request).error();
  auto answer = Exchange(AnnexARequest::kTicketRequest, request->bytes);
  if (!answer.ok()) return std::move(answer).error();
  return ParseRequestResp(*provider_, *answer, *request);
}

UeResult<ResolvedTicket> KmsClient::ResolveTicket(const ResolveInitParams& params) {
  auto request = BuildResolveInitPsk(*provider_, params);
  if (!request.ok()) return std::move(request).error();
  auto answer = Exchange(AnnexARequest::kTicketResolve, request->bytes);
  if (!answer.ok()) return std::move(answer).error();
  return ParseResolveResp(*provider_, *answer, *request);
}

UeResult<FunctionResolvedKeys> KmsClient::FunctionResolve(const FunctionResolveParams& params) {
  auto request = BuildFunctionResolveInit(*provider_, params);
  if (!request.ok()) return std::move(request).error();
  auto answer = Exchange(AnnexARequest::kTicketResolve, request->bytes);
  if (!answer.ok()) return std::move(answer).error();
  auto keys = ParseFunctionResolveResp(*provider_, *answer, *request);
  SecureWipe(answer->data(), answer->size());  // the keys were in clear in it
  return keys;
}

}  // namespace tkms::ue
