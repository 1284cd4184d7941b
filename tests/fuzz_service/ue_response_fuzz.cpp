// Fuzz target: the UE's checks of untrusted KMS answers (tools/ue/ticket_client.h
// ParseRequestResp, ParseResolveResp, ParseErrorMessage).
//
// Input: byte 0 selects the check ((byte & 0x7F) mod 6) and the mode (bit 7);
// the rest is the KMS's answer:
//   0  ParseRequestResp  against Alice's plain REQUEST_INIT_PSK
//   1  ParseRequestResp  against Alice's forking REQUEST_INIT_PSK (I flag)
//   2  ParseResolveResp  against Bob's RESOLVE_INIT_PSK of the plain ticket
//   3  ParseResolveResp  against Bob's RESOLVE_INIT_PSK of the forking ticket
//   4  ParseErrorMessage with the auth_key of the plain REQUEST_INIT_PSK
//   5  ParseErrorMessage without a key
// The four requests are fixed (service_env.h: fixed PSKs, CSB IDs, RANDs and
// timestamp) and built once; nothing else persists between inputs.
//
// Mode bit 7 = "re-seal" (service_env.h ResealAnswer): the target plays a
// KMS that holds the PSK. If the answer decodes and ends with an HMAC V, its
// first AES-CM KEMAC's data is taken as the plaintext Key data chain and
// encrypted with the answer's keys, and V is recomputed (for an Error
// message, with the request's auth_key). Mutations then get past the V MAC
// and the KEMAC cipher into the key-data, key-order, SPI, MPK-count and
// forking checks; without the bit they stop at V. Properties are checked on
// the bytes the UE received.
//
// Properties checked on every input:
//   * no crash, leak or UB; the failure kind is one that describes the
//     answer (kBadResponse, kMikeyError, kVerification): never kTransport or
//     kHttpStatus (no HTTP here), kInvalidArgument (the request's parameters
//     are fine) or kInternal (the provider never fails);
//   * a successful ParseRequestResp / ParseResolveResp implies the answer
//     decodes with the strict codec, is REQUEST_RESP (13) / RESOLVE_RESP
//     (18), and has the request's version, PRF func and CSB ID in its header;
//     the grant keeps the answer's bytes, has a non-empty MPKi, an MPKr iff
//     the granted (or resolved) ticket forks, no MPK among the session keys,
//     and IDRkms, if present, is the expected KMS; a forking resolve has
//     IDRr and RANDRkms;
//   * an answer that is an Error message (byte 1 = 6) fails with kMikeyError
//     or kVerification (authenticated errors only with a verifying V) or
//     kBadResponse (undecodable), never succeeds;
//   * a successful ParseErrorMessage implies the answer decodes, is data type
//     6, the reported CSB ID is the header's, the error numbers are the ERR
//     payloads in order, and `authenticated` implies a V was checked.
#include <cstdio>
#include <optional>
#include <variant>

#include "firmware/base/encoding.h"
#include "firmware/mikey/codec.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz_service/service_env.h"

namespace {

namespace fs = tkms::fuzz_service;
namespace mikey = tkms::mikey;
namespace ue = tkms::ue;
using tkms::ByteSpan;

constexpr const char* kTarget = "ue_response_fuzz";

// In re-seal mode, the bytes the UE received (printed with a violation, so
// the report has a reproducer that needs no re-sealing).
ByteSpan g_resealed;

void Check(bool ok, const char* property) {
  if (ok) return;
  if (!g_resealed.empty()) {
    std::fprintf(stderr, "%s: re-sealed answer the UE received: %s\n", kTarget, tkms::HexEncode(g_resealed).c_str());
  }
  tkms::fuzz::Violation(kTarget, property);
}

void CheckFailure(const ue::UeError& e, ByteSpan answer) {
  const bool describes_answer = e.kind == ue::UeErrorKind::kBadResponse || e.kind == ue::UeErrorKind::kMikeyError ||
                                e.kind == ue::UeErrorKind::kVerification;
  if (!describes_answer) std::fprintf(stderr, "%s: %s\n", kTarget, e.ToString().c_str());
  Check(describes_answer, "a refused answer fails with kBadResponse, kMikeyError or kVerification");
  if (e.kind == ue::UeErrorKind::kMikeyError) {
    Check(answer.size() >= 2 && answer[1] == static_cast<uint8_t>(mikey::DataType::kError),
          "kMikeyError only for an Error message");
  }
  if (e.error_authenticated) Check(e.kind == ue::UeErrorKind::kMikeyError, "an authenticated error is kMikeyError");
}

// What every accepted REQUEST_RESP / RESOLVE_RESP has in common.
mikey::Message CheckAcceptedHeader(ByteSpan answer, const mikey::Message& request, mikey::DataType expected) {
  auto decoded = mikey::Decode(answer);  // strict: composition rules on
  Check(decoded.ok(), "an accepted answer decodes with the strict codec");
  const auto& h = decoded->header;
  Check(h.data_type == static_cast<uint8_t>(expected), "an accepted answer has the expected data type");
  Check(h.csb_id == request.header.csb_id, "an accepted answer has the request's CSB ID");
  Check(h.version == request.header.version && h.prf_func == request.header.prf_func,
        "an accepted answer has the request's version and PRF func");
  return std::move(*decoded);
}

void CheckKeys(const std::vector<mikey::KeyDataPayload>& mpks, const std::vector<mikey::KeyDataPayload>& sessions,
               size_t mpk_count) {
  Check(mpks.size() == mpk_count, "one MPK, two when forking");
  for (const auto& k : mpks) Check(k.key_type == static_cast<uint8_t>(mikey::KeyType::kMpk), "MPKs are MPKs");
  for (const auto& k : sessions) {
    Check(k.key_type != static_cast<uint8_t>(mikey::KeyType::kMpk), "no MPK among the session keys");
    Check(!k.key.empty(), "session keys are not empty");
  }
}

void CheckKmsIdentity(const std::optional<mikey::Bytes>& kms) {
  if (kms) Check(*kms == fs::Text(fs::kKmsIdentity), "IDRkms of an accepted answer is the expected KMS");
}

void RequestResp(ByteSpan answer, const ue::RequestInit& request) {
  auto grant = ue::ParseRequestResp(fs::UeProvider(), answer, request);
  if (!grant.ok()) {
    CheckFailure(grant.error(), answer);
    return;
  }
  Check(answer.size() < 2 || answer[1] != static_cast<uint8_t>(mikey::DataType::kError),
        "an Error message is never a grant");
  CheckAcceptedHeader(answer, request.message, mikey::DataType::kRequestResp);
  Check(grant->response == mikey::Bytes(answer.begin(), answer.end()), "the grant keeps the answer's bytes");
  Check(grant->policy == grant->ticket.policy, "policy is the ticket's policy");
  Check(!grant->ticket.initiator_data.has_value(), "a granted ticket has no Initiator Data");
  const bool forking = (grant->policy.flags & mikey::kFlagI) != 0;
  Check(!grant->mpki.empty(), "a grant has an MPKi");
  Check(grant->mpkr.has_value() == forking, "MPKr iff the granted ticket forks");
  CheckKeys(grant->mpk_keys, grant->session_keys, forking ? 2 : 1);
  CheckKmsIdentity(grant->kms_identity);
}

void ResolveResp(ByteSpan answer, const ue::ResolveInit& request) {
  auto resolved = ue::ParseResolveResp(fs::UeProvider(), answer, request);
  if (!resolved.ok()) {
    CheckFailure(resolved.error(), answer);
    return;
  }
  Check(answer.size() < 2 || answer[1] != static_cast<uint8_t>(mikey::DataType::kError),
        "an Error message is never a resolved ticket");
  CheckAcceptedHeader(answer, request.message, mikey::DataType::kResolveResp);
  Check(resolved->response == mikey::Bytes(answer.begin(), answer.end()), "the result keeps the answer's bytes");
  Check(!resolved->mpki.empty(), "a resolved ticket has an MPKi");
  Check(resolved->mpkr_forked.has_value() == request.forking, "MPKr' iff the ticket forks");
  if (request.forking) {
    Check(resolved->responder.has_value() && resolved->randrkms.has_value(),
          "a forking RESOLVE_RESP has IDRr and RANDRkms");
  }
  CheckKeys(resolved->mpk_keys, resolved->session_keys, request.forking ? 2 : 1);
  CheckKmsIdentity(resolved->kms_identity);
}

void ErrorMessage(ByteSpan answer, const ue::ErrorAuthKey& key) {
  auto report = ue::ParseErrorMessage(fs::UeProvider(), answer, key);
  if (!report.ok()) {
    Check(report.error().kind == ue::UeErrorKind::kBadResponse,
          "ParseErrorMessage fails only with kBadResponse (not an Error message)");
    return;
  }
  auto decoded = mikey::Decode(answer);
  Check(decoded.ok(), "an accepted Error message decodes with the strict codec");
  Check(decoded->header.data_type == static_cast<uint8_t>(mikey::DataType::kError), "an Error message is type 6");
  Check(report->csb_id == decoded->header.csb_id, "the report's CSB ID is the header's");
  std::vector<uint8_t> errors;
  for (const auto& p : decoded->payloads) {
    if (const auto* e = std::get_if<mikey::ErrPayload>(&p)) errors.push_back(e->error_no);
  }
  Check(report->errors == errors, "the report lists the ERR payloads in order");
  Check(report->has_v == std::holds_alternative<mikey::VPayload>(decoded->payloads.back()),
        "has_v iff the last payload is V");
  if (report->v_checked) Check(report->has_v && key.auth_key != nullptr, "v_checked needs a V and a key");
  if (report->authenticated) Check(report->v_checked, "authenticated implies a checked V");
  if (key.auth_key == nullptr) Check(!report->v_checked, "no key: nothing checked");
  const ue::UeError e = ue::ErrorFromReport(*report);
  Check(e.mikey_errors == report->errors, "ErrorFromReport keeps the error numbers");
  Check(e.kind == ue::UeErrorKind::kMikeyError || e.kind == ue::UeErrorKind::kVerification,
        "ErrorFromReport gives kMikeyError or kVerification");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const fs::FixedExchanges& fixed = fs::Fixed();
  const int check = (data[0] & 0x7F) % 6;
  ByteSpan answer(data + 1, size - 1);
  std::optional<mikey::Bytes> resealed;
  if ((data[0] & 0x80) != 0) {
    const fs::AnswerContext ctx = check == 2   ? fs::ContextOf(fixed.plain_resolve)
                                  : check == 3 ? fs::ContextOf(fixed.forking_resolve)
                                  : check == 1 ? fs::ContextOf(fixed.forking_request)
                                               : fs::ContextOf(fixed.plain_request);
    resealed = fs::ResealAnswer(answer, ctx);
    if (resealed) answer = *resealed;
  }
  g_resealed = resealed ? ByteSpan(*resealed) : ByteSpan();
  struct ClearOnReturn {
    ~ClearOnReturn() { g_resealed = ByteSpan(); }
  } clear_on_return;
  switch (check) {
    case 0: RequestResp(answer, fixed.plain_request); break;
    case 1: RequestResp(answer, fixed.forking_request); break;
    case 2: ResolveResp(answer, fixed.plain_resolve); break;
    case 3: ResolveResp(answer, fixed.forking_resolve); break;
    case 4:
      ErrorMessage(answer, ue::ErrorAuthKey{&fixed.plain_request.auth_key, fixed.plain_request.mac_alg});
      break;
    default: ErrorMessage(answer, {}); break;
  }
  return 0;
}
