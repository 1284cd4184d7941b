// KMS_I's side of KMS-to-KMS resolution (TS 33.328 B.2.2.3 steps 8-10, RFC
// 6043 §10), and ticket resolution by an authorised network function (TR
// 33.828 step 5).
//
// Both arrive on the Zk listener only, from a client whose TLS certificate
// the listener mapped to a trust relation or to a network function granted
// the resolve role (web/zk_handler.h): that is the "trusted source" of step
// 8. The RESOLVE_INIT_PSK is not integrity protected (V with MAC NULL; the
// KMS_R has no key shared with this KMS) and the RESOLVE_RESP is neither
// integrity protected nor enciphered (step 10): the TLS session protects
// both. An unprotected message on Ua is refused by Authenticate (the NULL
// MAC), so nothing here is reachable without a mutually authenticated peer.
#include <string>

#include "firmware/base/printable.h"
#include "firmware/base/user_identity.h"
#include "firmware/kms/exchange.h"
#include "firmware/kms/payload_helpers.h"
#include "firmware/mikey/codec.h"

namespace tkms::kms {
namespace {

using mikey::ErrorNo;

Rejection ZkRefusal(ErrorNo no, std::string detail) {
  return Rejection::Mikey(no, Refusal::kZkClient, std::move(detail));
}

ByteSpan AsBytes(const std::string& s) { return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

}  // namespace

StepResult<Resolver> AdmitZkClient(const ParsedRequest& request, const RequestContext& context, ExchangeEnv& env) {
  const RequestPayloads& p = request.payloads;
  if (context.zk_client == ZkClientKind::kNone) {
    return ZkRefusal(ErrorNo::kAuthFailure, "no authorised Zk client");
  }
  if (p.v->auth_alg != static_cast<uint8_t>(mikey::MacAlg::kNull) || !p.v->mac.empty()) {
    return ZkRefusal(ErrorNo::kInvalidMac,
                     "a RESOLVE_INIT on Zk is not integrity protected (V with MAC NULL, TS 33.328 B.2.2.3 step 6)");
  }
  if (p.idr_kms != nullptr && !SameUserIdentity(IdText(p.idr_kms->data), env.kms_identity())) {
    return Rejection::Mikey(ErrorNo::kInvalidId, Refusal::kWrongKms, "IDRkms names " + Quote(IdText(p.idr_kms->data)));
  }
  Resolver resolver;
  if (context.zk_client == ZkClientKind::kNetworkFunction) {
    resolver.network_function = true;
    resolver.name = "network function " + context.zk_client_name;
  } else {
    if (p.idr_peer == nullptr) {
      return ZkRefusal(ErrorNo::kInvalidId, "a peer KMS's RESOLVE_INIT must name the responder (IDRr)");
    }
    const std::string responder = IdText(p.idr_peer->data);
    resolver.identities.push_back(responder);
    resolver.name = Quote(responder) + " of KMS " + Quote(context.zk_client_name);
  }
  // One replay-cache entry per (client, RAND) while T is in the window.
  const std::string who = "zk:" + context.zk_client_name;
  if (auto refused = CheckFreshness(request, AsBytes(who), p.randr->rand, env)) return *refused;
  return resolver;
}

StepResult<mikey::Bytes> BuildUnprotectedResponse(const ParsedRequest& request, const ResponseContent& content,
                                                  ExchangeEnv& env) {
  mikey::Message resp;
  resp.header = request.header();
  resp.header.data_type = static_cast<uint8_t>(content.data_type);
  resp.header.v = false;
  auto t = TimestampValue(mikey::TsType::kNtpUtc, env.now);
  if (!t) return Rejection::FromStatus(Internal("no timestamp value"), "timestamp");
  resp.payloads.emplace_back(mikey::TPayload{static_cast<uint8_t>(mikey::TsType::kNtpUtc), *t});
  resp.payloads.emplace_back(UriIdr(mikey::IdRole::kKms, env.kms_identity()));
  for (const auto& payload : content.before_kemac) resp.payloads.push_back(payload);
  auto chain = mikey::EncodeKeyDataChain(content.kemac_keys);
  if (!chain.ok()) return Rejection::FromStatus(Internal(chain.error().ToString()), "RESOLVE_RESP key data");
  mikey::KemacPayload kemac;
  kemac.encr_alg = static_cast<uint8_t>(mikey::EncrAlg::kNull);
  kemac.mac_alg = static_cast<uint8_t>(mikey::MacAlg::kNull);
  kemac.encr_data.assign(chain->begin(), chain->end());
  resp.payloads.emplace_back(std::move(kemac));
  for (const auto& payload : content.after_kemac) resp.payloads.push_back(payload);
  resp.payloads.emplace_back(mikey::VPayload{static_cast<uint8_t>(mikey::MacAlg::kNull), {}});
  auto encoded = mikey::Encode(resp);
  // The clear key data also sat in the message's KEMAC: wipe that copy.
  for (auto& payload : resp.payloads) {
    if (auto* k = std::get_if<mikey::KemacPayload>(&payload)) SecureWipe(k->encr_data.data(), k->encr_data.size());
  }
  if (!encoded.ok()) return Rejection::FromStatus(Internal(encoded.error().ToString()), "encoding the RESOLVE_RESP");
  return std::move(*encoded);
}

}  // namespace tkms::kms
