#include "firmware/kms/policy.h"

#include <optional>

#include "firmware/base/user_identity.h"
#include "firmware/kms/payload_helpers.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/composition.h"

namespace tkms::kms {
namespace {

using mikey::IdRole;
using mikey::IdrPayload;
using mikey::KemacPayload;
using mikey::TrPayload;
using mikey::TsRole;

PolicyRefusal Refuse(std::string detail) { return PolicyRefusal{15, std::move(detail)}; }

TrPayload NtpTr(TsRole role, TimePoint t) {
  return TrPayload{static_cast<uint8_t>(role), static_cast<uint8_t>(mikey::TsType::kNtpUtc), NtpFromTime(t)};
}

Result<std::vector<KeySpec>, PolicyRefusal> RequestedKeys(const KemacPayload& kemac,
                                                          const provisioning::PolicyClass& policy) {
  if (kemac.encr_alg != static_cast<uint8_t>(mikey::EncrAlg::kNull) ||
      kemac.mac_alg != static_cast<uint8_t>(mikey::MacAlg::kNull)) {
    return Refuse("the KEMAC in TP Data must use NULL encryption and NULL MAC (RFC 6043 §6.10)");
  }
  auto chain = mikey::DecodeKeyDataChain(kemac.encr_data);
  if (!chain.ok()) return Refuse("KEMAC in TP Data: " + chain.error().ToString());
  if (chain->empty()) return Refuse("the KEMAC in TP Data requests no key");
  if (chain->size() > policy.max_keys) {
    return Refuse("requested " + std::to_string(chain->size()) + " keys; the policy allows " +
                  std::to_string(policy.max_keys));
  }
  std::vector<KeySpec> keys;
  for (const auto& k : *chain) {
    const auto type = static_cast<mikey::KeyType>(k.key_type);
    switch (type) {
      case mikey::KeyType::kTgk: case mikey::KeyType::kTgkSalt: case mikey::KeyType::kTek:
      case mikey::KeyType::kTekSalt: case mikey::KeyType::kGtgk: case mikey::KeyType::kGtgkSalt:
        break;
      default:
        return Refuse("key type " + std::to_string(k.key_type) + " cannot be requested (TEK, TGK or GTGK)");
    }
    const size_t len = k.key.size();
    if (len < kMinSessionKeyBytes || len > kMaxSessionKeyBytes) {
      return Refuse("requested key length " + std::to_string(len) + " bytes is outside 16..64");
    }
    size_t salt = 0;
    if (mikey::KeyTypeHasSalt(type)) {
      salt = (k.salt && !k.salt->empty()) ? k.salt->size() : kDefaultSaltBytes;
      if (salt > kMaxSessionKeyBytes) return Refuse("requested salt length is over 64 bytes");
    }
    keys.push_back(KeySpec{k.key_type, len, salt, k.kv});
  }
  return keys;
}

// The TP Data of a request, sorted by what it is (RFC 6043 §6.10).
struct RequestedTpData {
  std::optional<TrPayload> trs, tre, trr;
  std::vector<IdrPayload> apps, responders;
  std::optional<KemacPayload> key_request;
};

Result<RequestedTpData, PolicyRefusal> ReadTpData(const mikey::TicketPolicy& requested, const PolicyContext& context) {
  RequestedTpData r;
  for (const auto& item : requested.tp_data) {
    if (const auto* idr = std::get_if<IdrPayload>(&item)) {
      switch (static_cast<IdRole>(idr->role)) {
        case IdRole::kKms:
          if (!SameUserIdentity(IdText(idr->data), context.kms_identity)) {
            return Refuse("TP names KMS '" + IdText(idr->data) + "'; this KMS is '" + context.kms_identity + "'");
          }
          break;
        case IdRole::kInitiator:
          if (!SameUserIdentity(IdText(idr->data), context.initiator_identity)) {
            return Refuse("TP names initiator '" + IdText(idr->data) + "', not the requester");
          }
          break;
        case IdRole::kResponder: r.responders.push_back(*idr); break;
        case IdRole::kApplication: r.apps.push_back(*idr); break;
        default: break;  // unexpected payloads in TP Data are ignored (§6.10)
      }
    } else if (const auto* tr = std::get_if<TrPayload>(&item)) {
      switch (static_cast<TsRole>(tr->role)) {
        case TsRole::kStart: r.trs = *tr; break;
        case TsRole::kEnd: r.tre = *tr; break;
        case TsRole::kRekeying:
          if (tr->ts_type != static_cast<uint8_t>(mikey::TsType::kNtpUtc32)) {
            return Refuse("TRr must use TS type NTP-UTC-32 (RFC 6043 §6.10)");
          }
          r.trr = *tr;
          break;
        default: break;
      }
    } else if (const auto* kemac = std::get_if<KemacPayload>(&item)) {
      r.key_request = *kemac;
    }
  }
  return r;
}

// Responders and keys; sets d.changed when the KMS chooses keys or SPIs.
std::optional<PolicyRefusal> DecideRespondersAndKeys(const RequestedTpData& r, const provisioning::PolicyClass& policy,
                                                     PolicyDecision& d) {
  if (r.responders.empty()) return Refuse("the TP names no responder (IDRr is required, RFC 6043 §6.10)");
  if (r.responders.size() > policy.max_responders) {
    return Refuse("the TP names " + std::to_string(r.responders.size()) + " responders; the policy allows " +
                  std::to_string(policy.max_responders));
  }
  for (const auto& idr : r.responders) {
    if (idr.data.empty()) return Refuse("an IDRr in the TP is empty");
    d.responders.push_back(IdText(idr.data));
  }
  if (!r.key_request) {
    d.keys.push_back(KeySpec{static_cast<uint8_t>(mikey::KeyType::kTgk), kDefaultTgkBytes, 0, {}});
    d.changed = true;  // the KMS chose the keys
    return std::nullopt;
  }
  auto keys = RequestedKeys(*r.key_request, policy);
  if (!keys.ok()) return keys.error();
  d.keys = std::move(*keys);
  for (const auto& k : d.keys) {
    if (k.kv.kv_type != static_cast<uint8_t>(mikey::KvType::kSpi) || k.kv.spi.empty()) d.changed = true;
  }
  return std::nullopt;
}

// The granted TRe (capped, or the default); sets d.changed when it differs.
Result<TrPayload, PolicyRefusal> DecideValidity(const RequestedTpData& r, const provisioning::PolicyClass& policy,
                                                TimePoint now, PolicyDecision& d) {
  const TimePoint max_end = now + std::chrono::seconds(policy.max_lifetime_s);
  std::optional<TimePoint> start;
  if (r.trs) {
    start = TimeFromTimestamp(r.trs->ts_type, r.trs->value);
    if (!start) return Refuse("TRs must be an NTP timestamp");
  }
  TrPayload tre;
  TimePoint end;
  if (r.tre) {
    auto asked = TimeFromTimestamp(r.tre->ts_type, r.tre->value);
    if (!asked) return Refuse("TRe must be an NTP timestamp");
    if (*asked <= now) return Refuse("the requested validity ends in the past (TRe)");
    tre = *r.tre;
    end = *asked;
    if (*asked > max_end) {
      tre = NtpTr(TsRole::kEnd, max_end);
      end = max_end;
      d.changed = true;
    }
  } else {
    end = now + std::chrono::seconds(policy.default_lifetime_s);
    tre = NtpTr(TsRole::kEnd, end);
    d.changed = true;  // TRe added
  }
  if (start && *start >= end) return Refuse("the requested validity starts (TRs) after it ends (TRe)");
  return tre;
}

// The granted flags: mode 1, the class's permissions, §6.10 dependencies, K.
Result<uint16_t, PolicyRefusal> DecideFlags(uint16_t requested, const provisioning::PolicyClass& policy,
                                            bool has_tgk, bool changed) {
  const uint16_t asked = requested & mikey::kAllTicketFlags & ~uint16_t{mikey::kFlagK};
  uint16_t f = asked | mikey::kFlagD | mikey::kFlagE | mikey::kFlagN | mikey::kFlagO;
  if (!policy.allow_forking) f &= ~uint16_t{mikey::kFlagI};
  if (!policy.allow_reuse) f &= ~uint16_t{mikey::kFlagJ};
  if (!policy.allow_initiator_keys) f &= ~uint16_t{mikey::kFlagL};
  if (!policy.allow_responder_keys) f &= ~uint16_t{mikey::kFlagM};
  if ((f & (mikey::kFlagG | mikey::kFlagH)) == 0) f |= mikey::kFlagH;  // ¬G ⇒ H, ¬H ⇒ G
  if (f & (mikey::kFlagG | mikey::kFlagM)) f |= mikey::kFlagF;          // G ⇒ F, M ⇒ F
  if ((f & mikey::kFlagI) && has_tgk) f |= mikey::kFlagF;              // §6.10
  if (f != asked || changed) f |= mikey::kFlagK;
  if (auto ok = mikey::CheckTicketFlags(f); !ok.ok()) {
    return PolicyRefusal{12, "internal: granted flags violate RFC 6043 §6.10: " + ok.error().ToString()};
  }
  return f;
}

}  // namespace

Result<PolicyDecision, PolicyRefusal> DecideTicketPolicy(const mikey::TicketPolicy& requested,
                                                         const provisioning::PolicyClass& policy,
                                                         const PolicyContext& context) {
  auto tp = ReadTpData(requested, context);
  if (!tp.ok()) return tp.error();
  PolicyDecision d;
  if (auto refused = DecideRespondersAndKeys(*tp, policy, d)) return *refused;
  auto tre = DecideValidity(*tp, policy, context.now, d);
  if (!tre.ok()) return tre.error();
  bool has_tgk = false;
  for (const auto& k : d.keys) has_tgk = has_tgk || IsTgk(k.key_type);
  auto flags = DecideFlags(requested.flags, policy, has_tgk, d.changed);
  if (!flags.ok()) return flags.error();
  d.changed = (*flags & mikey::kFlagK) != 0;

  // The granted policy, TP Data in the order of §6.10.
  d.granted.ticket_type = requested.ticket_type;
  d.granted.subtype = requested.subtype;
  d.granted.version = requested.version;
  d.granted.prf_func = requested.prf_func;
  d.granted.flags = *flags;
  d.granted.tp_data.emplace_back(UriIdr(IdRole::kKms, context.kms_identity));
  d.granted.tp_data.emplace_back(UriIdr(IdRole::kInitiator, context.initiator_identity));
  if (tp->trs) d.granted.tp_data.emplace_back(*tp->trs);
  d.granted.tp_data.emplace_back(*tre);
  if (tp->trr) d.granted.tp_data.emplace_back(*tp->trr);
  for (auto& a : tp->apps) d.granted.tp_data.emplace_back(std::move(a));
  for (auto& r : tp->responders) d.granted.tp_data.emplace_back(std::move(r));
  return d;
}

Result<void, PolicyRefusal> CheckTicketUse(const TicketUse& use, const UserRecord* initiator,
                                           const UserRecord* responder, TimePoint now) {
  if (responder != nullptr && !responder->policy.allow_resolve) {
    return Refuse(responder->name + " may not resolve tickets (policy class '" + responder->policy_class + "')");
  }
  if (initiator == nullptr) return Refuse("the ticket's initiator is no longer a user of this KMS");
  const provisioning::PolicyClass& p = initiator->policy;
  const std::string whose = "the initiator's policy (class '" + initiator->policy_class + "') ";
  if (!p.allow_request) return Refuse(whose + "no longer allows ticket requests");
  struct FlagRule {
    uint16_t flag;
    bool allowed;
    const char* what;
  };
  const FlagRule rules[] = {{mikey::kFlagI, p.allow_forking, "forking (I)"},
                            {mikey::kFlagJ, p.allow_reuse, "reuse (J)"},
                            {mikey::kFlagL, p.allow_initiator_keys, "initiator keys (L)"},
                            {mikey::kFlagM, p.allow_responder_keys, "responder keys (M)"}};
  for (const auto& rule : rules) {
    if ((use.flags & rule.flag) && !rule.allowed) return Refuse(whose + "no longer allows " + rule.what);
  }
  if (use.valid_to && *use.valid_to > now + std::chrono::seconds(p.max_lifetime_s)) {
    return Refuse(whose + "no longer allows a ticket valid this long (max_lifetime_s " +
                  std::to_string(p.max_lifetime_s) + ")");
  }
  if (use.responders > p.max_responders) {
    return Refuse(whose + "no longer allows " + std::to_string(use.responders) + " responders");
  }
  if (use.session_keys > p.max_keys) {
    return Refuse(whose + "no longer allows " + std::to_string(use.session_keys) + " keys");
  }
  return {};
}

}  // namespace tkms::kms
