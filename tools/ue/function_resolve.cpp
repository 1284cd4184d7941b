// A network function's unprotected Ticket Resolve on Zk (TR 33.828 step 5;
// TS 33.328 B.2.2.3 steps 6 and 10; RFC 6043 §4.2.3, §10); see
// function_resolve.h.
#include "tools/ue/function_resolve.h"

#include <utility>

#include "firmware/base/encoding.h"
#include "firmware/mikey/codec.h"
#include "firmware/pki/contexts.h"
#include "tools/ue/ue_internal.h"

namespace tkms::ue {

using mikey::DataType;
using mikey::KemacPayload;
using mikey::Message;
using mikey::RandrPayload;
using mikey::TPayload;
using mikey::VPayload;
using namespace internal;  // NOLINT: the file's building blocks

namespace {

constexpr auto kNullMac = static_cast<uint8_t>(mikey::MacAlg::kNull);
constexpr auto kNullEncr = static_cast<uint8_t>(mikey::EncrAlg::kNull);

// TS 33.328 B.2.2.3: the refusal on Zk is an Error message without V. One
// with V (or SIGN) cannot be checked -- no key is shared with the KMS -- and
// is not what Zk sends: refused as such, its numbers kept for the report.
UeError ErrorOnZk(const MikeyErrorReport& report) {
  UeError e = ErrorFromReport(report);
  if (report.has_v || report.has_sign) {
    e.kind = UeErrorKind::kVerification;
    e.detail += "; an Error message on Zk carries no V or SIGN (TS 33.328 B.2.2.3), this one does";
  }
  return e;
}

void WipeKemacs(Message& m) {
  for (auto& p : m.payloads) {
    if (auto* k = std::get_if<KemacPayload>(&p)) SecureWipe(k->encr_data.data(), k->encr_data.size());
  }
}

}  // namespace

UeResult<FunctionResolveInit> BuildFunctionResolveInit(crypto::CryptoProvider& provider,
                                                       const FunctionResolveParams& params) {
  if (params.kms_identity.empty()) return Invalid("the KMS identity (IDRkms) is empty");
  if (!mikey::IsKnownPrf(params.prf_func)) return Invalid("unknown PRF func");
  // RFC 3830 §6.11: at least 128 bits; the contract's 16 fresh bytes.
  auto opening = OpenMessage(provider, params.csb_id, params.timestamp, params.randrr, kMinRandBytes,
                             kMinRandBytes, "RANDRr");
  if (!opening.ok()) return std::move(opening).error();

  FunctionResolveInit out;
  Message& m = out.message;
  // TS 33.328 B.2.2.3 step 6: V flag 0 (no answer MAC to ask for), #CS 0, Empty map.
  m.header = TicketHeader(DataType::kResolveInitPsk, /*v=*/false, params.prf_func, opening->csb_id);
  m.payloads.emplace_back(opening->t);
  m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(mikey::RandRole::kResponder), opening->rand});
  if (params.responder) {
    m.payloads.emplace_back(Idr(mikey::IdRole::kResponder, static_cast<uint8_t>(mikey::IdType::kUri),
                                *params.responder));
  }
  m.payloads.emplace_back(
      Idr(mikey::IdRole::kKms, static_cast<uint8_t>(mikey::IdType::kUri), params.kms_identity));
  m.payloads.emplace_back(params.ticket);
  m.payloads.emplace_back(VPayload{kNullMac, {}});  // not integrity protected: TLS protects it
  auto encoded = mikey::Encode(m);
  if (!encoded.ok()) return Invalid("RESOLVE_INIT_PSK would not be well formed: " + encoded.error().ToString());

  out.bytes = std::move(*encoded);
  out.csb_id = opening->csb_id;
  out.randrr = std::move(opening->rand);
  out.kms_identity = params.kms_identity;
  out.forking = (params.ticket.policy.flags & mikey::kFlagI) != 0;
  return out;
}

UeResult<FunctionResolvedKeys> ParseFunctionResolveResp(crypto::CryptoProvider& provider, ByteSpan response,
                                                        const FunctionResolveInit& request, bool require_key_spi) {
  if (IsErrorMessage(response)) {
    auto report = ParseErrorMessage(provider, response);  // no key: a V is never "checked"
    if (!report.ok()) return std::move(report).error();
    return ErrorOnZk(*report);
  }
  auto bound = DecodeBoundResponse(
      response, ResponseBinding{DataType::kResolveResp, &request.message.header, &request.kms_identity, true});
  if (!bound.ok()) return std::move(bound).error();
  Message& m = bound->message;
  struct Wiper {
    Message& m;
    ~Wiper() { WipeKemacs(m); }
  } wiper{m};

  const auto& v = std::get<VPayload>(m.payloads.back());
  if (v.auth_alg != kNullMac || !v.mac.empty()) {
    return Verification("the RESOLVE_RESP on Zk must carry V with MAC NULL and no MAC (TS 33.328 B.2.2.3 step 10)");
  }
  const KemacPayload* kemac = Find<KemacPayload>(m);
  if (kemac->encr_alg != kNullEncr || kemac->mac_alg != kNullMac) {
    return Verification("the KEMAC on Zk must use encryption NULL and MAC NULL (TS 33.328 B.2.2.3 step 10)");
  }
  if (FindRandr(m, mikey::RandRole::kKms) != nullptr || FindIdr(m, mikey::IdRole::kResponder) != nullptr) {
    return Verification("the RESOLVE_RESP carries IDRr / RANDRkms: forked keys, where a network function gets "
                        "the ticket's own (TR 33.828 step 5)");
  }
  auto keys = mikey::DecodeKeyDataChain(kemac->encr_data);
  if (!keys.ok()) return Undecodable("KEMAC Key data chain", keys.error());
  FunctionResolvedKeys out;
  auto split = SplitKeys(*keys, request.forking ? 2 : 1, require_key_spi, out.mpk_keys, out.session_keys);
  if (!split.ok()) return std::move(split).error();
  out.kms_timestamp = std::get<TPayload>(m.payloads.front());
  out.kms_identity = FindIdr(m, mikey::IdRole::kKms)->data;
  return out;
}

std::string KeyFingerprint(const mikey::KeyDataPayload& key) {
  pki::Sha256 sha;
  sha.Update(ByteSpan(key.key));
  if (key.salt) sha.Update(ByteSpan(*key.salt));
  const auto digest = sha.Finish();
  return HexEncode(ByteSpan(digest.data(), 8));
}

}  // namespace tkms::ue
