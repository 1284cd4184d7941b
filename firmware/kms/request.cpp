// Step 3 of a Ticket Request (RFC 6043 §4.2.1.4-4.2.1.5): decide the ticket
// policy for the authenticated initiator, draw the keys from the token RNG,
// seal the ticket, and list the keys the REQUEST_RESP's KEMAC carries.
#include <string>

#include "firmware/kms/exchange.h"
#include "firmware/kms/payload_helpers.h"
#include "firmware/kms/policy.h"

namespace tkms::kms {
namespace {

using mikey::ErrorNo;

// The session keys the policy asks for, from the token RNG, each with an SPI.
StepResult<std::vector<mikey::KeyDataPayload>> DrawSessionKeys(const std::vector<KeySpec>& specs,
                                                               const mikey::Bytes& mpk_spi, ExchangeEnv& env) {
  std::vector<mikey::KeyDataPayload> keys;
  for (const auto& spec : specs) {
    mikey::KeyDataPayload k;
    k.key_type = spec.key_type;
    k.key = SecretBytes(spec.key_bytes);
    if (auto s = env.keys.Random(k.key); !s.ok()) return Rejection::FromStatus(s, "token RNG");
    if (spec.salt_bytes > 0) {
      k.salt = SecretBytes(spec.salt_bytes);
      if (auto s = env.keys.Random(*k.salt); !s.ok()) return Rejection::FromStatus(s, "token RNG");
    }
    k.kv = spec.kv;
    if (k.kv.kv_type != static_cast<uint8_t>(mikey::KvType::kSpi) || k.kv.spi.empty()) {
      k.kv = SpiWithSuffix(mpk_spi, static_cast<uint8_t>(kSessionKeySpiBase + keys.size()));
    }
    keys.push_back(std::move(k));
  }
  return keys;
}

}  // namespace

StepResult<ResponseContent> DecideTicketRequest(const ParsedRequest& request, const Requester& requester,
                                                ExchangeEnv& env) {
  const mikey::TicketPolicy& asked = request.payloads.tp->policy;
  TicketFormat* format = env.formats.For(asked);
  if (format == nullptr) {
    return Rejection::Mikey(ErrorNo::kInvalidTicket, Refusal::kPolicy,
                            "ticket type " + std::to_string(asked.ticket_type) + " subtype " +
                                std::to_string(asked.subtype) + " version " + std::to_string(asked.version) +
                                " is not supported");
  }
  const UserRecord& user = *requester.user;
  if (!user.policy.allow_request) {
    return Rejection::Mikey(ErrorNo::kInvalidTpPar, Refusal::kPolicy,
                            user.name + " may not request tickets (policy class '" + user.policy_class + "')");
  }
  auto decision =
      DecideTicketPolicy(asked, user.policy, PolicyContext{env.now, requester.identity, env.kms_identity()});
  if (!decision.ok()) {
    return Rejection::Mikey(static_cast<ErrorNo>(decision.error().error_no), Refusal::kPolicy,
                            decision.error().detail);
  }
  mikey::Bytes mpk_spi(kMpkSpiBytes);
  if (auto s = env.keys.Random(mpk_spi); !s.ok()) return Rejection::FromStatus(s, "token RNG");
  auto session_keys = DrawSessionKeys(decision->keys, mpk_spi, env);
  if (!session_keys.ok()) return session_keys.error();
  auto sealed = format->Seal(decision->granted, mpk_spi, std::move(*session_keys), env.now);
  if (!sealed.ok()) return Rejection::FromStatus(sealed.error(), "sealing the ticket");

  ResponseContent content;
  content.data_type = mikey::DataType::kRequestResp;
  content.kemac_keys.push_back(MpkKeyData(sealed->keys.mpki, mpk_spi, kMpkiSpiSuffix));
  if (decision->granted.flags & mikey::kFlagI) {
    content.kemac_keys.push_back(MpkKeyData(sealed->keys.mpkr, mpk_spi, kMpkrSpiSuffix));
  }
  for (const auto& k : sealed->keys.session_keys) content.kemac_keys.push_back(k);
  content.before_kemac.emplace_back(
      mikey::TicketPayload{decision->granted, std::move(sealed->ticket_data), std::nullopt});
  return content;
}

}  // namespace tkms::kms
