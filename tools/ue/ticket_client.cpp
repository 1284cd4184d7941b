// The UE's Ticket Request (RFC 6043 §4.2.1), its errors, NTP time, RAND
// lengths (§12.1) and MIKEY Error messages (§5.4); see ticket_client.h.
#include "tools/ue/ticket_client.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "firmware/mikey/composition.h"
#include "firmware/mikey/crypto/protect.h"
#include "tools/ue/ue_internal.h"

namespace tkms::ue {

using mikey::CommonHeader;
using mikey::DataType;
using mikey::IdrPayload;
using mikey::KemacPayload;
using mikey::KeyDataPayload;
using mikey::Message;
using mikey::Payload;
using mikey::RandrPayload;
using mikey::TicketPayload;
using mikey::TicketPolicy;
using mikey::TPayload;
using mikey::VPayload;
namespace crypto = mikey::crypto;
using namespace internal;  // NOLINT: the file's building blocks

namespace {

constexpr uint64_t kNtpUnixOffset = 2208988800ull;  // seconds from 1900-01-01 to 1970-01-01

bool HasTgk(const DesiredTicketPolicy& p) {
  if (p.keys.empty()) return true;  // RFC 6043 §4.2.1.5: the KMS default is a single TGK
  return std::any_of(p.keys.begin(), p.keys.end(), [](const RequestedKey& k) {
    return k.key_type == static_cast<uint8_t>(mikey::KeyType::kTgk) ||
           k.key_type == static_cast<uint8_t>(mikey::KeyType::kTgkSalt);
  });
}


}  // namespace

// ---- errors ------------------------------------------------------------------------

std::string_view UeErrorKindName(UeErrorKind kind) {
  switch (kind) {
    case UeErrorKind::kInvalidArgument: return "invalid_argument";
    case UeErrorKind::kTransport: return "transport";
    case UeErrorKind::kHttpStatus: return "http_status";
    case UeErrorKind::kBadResponse: return "bad_response";
    case UeErrorKind::kMikeyError: return "mikey_error";
    case UeErrorKind::kVerification: return "verification";
    case UeErrorKind::kInternal: return "internal";
  }
  return "unknown";
}

std::string UeError::ToString() const {
  std::string out(UeErrorKindName(kind));
  // Appended piecewise: g++ 12 at -O3 warns (-Wrestrict, a false positive)
  // about "literal" + std::string temporaries.
  if (kind == UeErrorKind::kHttpStatus) out.append(" ").append(std::to_string(http_status));
  if (!detail.empty()) out.append(": ").append(detail);
  return out;
}

// ---- RAND lengths (reading 4) ---------------------------------------------------------

size_t RandLengthFor(size_t longest_key) { return std::clamp(longest_key, kMinRandBytes, kMaxRandBytes); }

size_t RequestRandLength(const RequestInitParams& params) {
  size_t longest = params.psk.size();
  for (const RequestedKey& k : params.policy.keys) longest = std::max(longest, k.length);
  return RandLengthFor(longest);
}

size_t LongestTransferKey(const TicketGrant& grant) {
  size_t longest = grant.mpki.size();
  if (grant.mpkr) longest = std::max(longest, grant.mpkr->size());
  for (const auto& k : grant.session_keys) longest = std::max(longest, k.key.size());
  return longest;
}

size_t LongestTransferKey(const ResolvedTicket& resolved) {
  size_t longest = resolved.mpki.size();
  if (resolved.mpkr_forked) longest = std::max(longest, resolved.mpkr_forked->size());
  for (const auto& k : resolved.session_keys) longest = std::max(longest, k.key.size());
  return longest;
}

// ---- time ----------------------------------------------------------------------------

uint64_t NtpUtcFromUnixNanos(int64_t unix_ns) {
  const auto ns = static_cast<uint64_t>(unix_ns < 0 ? 0 : unix_ns);
  const uint64_t seconds = ns / 1000000000ull + kNtpUnixOffset;
  const uint64_t fraction = ((ns % 1000000000ull) << 32) / 1000000000ull;
  return ((seconds & 0xFFFFFFFFull) << 32) | fraction;
}

uint64_t NtpUtcNow() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return NtpUtcFromUnixNanos(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count());
}

// ---- Ticket Request ------------------------------------------------------------------

Result<uint16_t> RequestFlags(const DesiredTicketPolicy& policy) {
  if ((policy.flags & ~mikey::kAllTicketFlags) != 0) {
    return InvalidArgument("ticket policy flags: reserved bits set");
  }
  uint16_t f = static_cast<uint16_t>((policy.flags | mikey::kFlagD) & ~mikey::kFlagK);
  const bool tgk = HasTgk(policy);
  if (policy.complete_flags) {
    for (int round = 0; round < 4; ++round) {
      if (f & mikey::kFlagI) f |= mikey::kFlagE;
      if (f & (mikey::kFlagG | mikey::kFlagM)) f |= mikey::kFlagF;
      if (!(f & mikey::kFlagG) && !(f & mikey::kFlagH)) f |= mikey::kFlagH;
      if ((f & mikey::kFlagI) && tgk) f |= mikey::kFlagF;
    }
  }
  auto check = mikey::CheckTicketFlags(f);
  if (!check.ok()) return InvalidArgument(check.error().detail);
  if ((f & mikey::kFlagI) && tgk && !(f & mikey::kFlagF)) {
    return InvalidArgument("the F flag SHALL be set when the I flag is set and a TGK is in the ticket "
                           "(RFC 6043 §6.10)");
  }
  return f;
}

Result<TicketPolicy> BuildDesiredPolicy(const DesiredTicketPolicy& d) {
  if (d.responders.empty()) return InvalidArgument("the ticket policy needs at least one responder (IDRr)");
  if (!mikey::IsKnownPrf(d.prf_func)) return InvalidArgument("ticket policy: unknown PRF func");
  auto flags = RequestFlags(d);
  if (!flags.ok()) return flags.error();
  TicketPolicy p;
  p.ticket_type = d.ticket_type;
  p.subtype = d.subtype;
  p.version = d.version;
  p.prf_func = d.prf_func;
  p.flags = *flags;
  if (d.kms) p.tp_data.emplace_back(Idr(mikey::IdRole::kKms, d.kms->id_type, d.kms->data));
  if (d.initiator) p.tp_data.emplace_back(Idr(mikey::IdRole::kInitiator, d.initiator->id_type, d.initiator->data));
  auto tr = [&](mikey::TsRole role, const TsValue& ts) {
    p.tp_data.emplace_back(mikey::TrPayload{static_cast<uint8_t>(role), ts.ts_type, ts.value});
  };
  if (d.valid_from) tr(mikey::TsRole::kStart, *d.valid_from);
  if (d.valid_to) tr(mikey::TsRole::kEnd, *d.valid_to);
  if (d.rekey_interval) {
    tr(mikey::TsRole::kRekeying, TsValue{static_cast<uint8_t>(mikey::TsType::kNtpUtc32), *d.rekey_interval});
  }
  if (!d.keys.empty()) {
    std::vector<KeyDataPayload> wanted;
    for (const RequestedKey& k : d.keys) {
      if (!mikey::IsKnownKeyType(k.key_type) || k.key_type == static_cast<uint8_t>(mikey::KeyType::kMpk)) {
        return InvalidArgument("requested keys must be TEK, TGK or GTGK (with or without salt)");
      }
      KeyDataPayload kd;
      kd.key_type = k.key_type;
      kd.key = SecretBytes(k.length, 0);  // RFC 6043 §6.10: Key Data set to '0'
      if (mikey::KeyTypeHasSalt(static_cast<mikey::KeyType>(k.key_type))) {
        kd.salt = SecretBytes(k.salt_length, 0);
      }
      kd.kv = k.kv;
      wanted.push_back(std::move(kd));
    }
    auto chain = mikey::EncodeKeyDataChain(wanted);
    if (!chain.ok()) return InvalidArgument("requested keys: " + chain.error().ToString());
    KemacPayload kemac;
    kemac.encr_alg = static_cast<uint8_t>(mikey::EncrAlg::kNull);
    kemac.encr_data.assign(chain->begin(), chain->end());
    kemac.mac_alg = static_cast<uint8_t>(mikey::MacAlg::kNull);
    p.tp_data.emplace_back(std::move(kemac));
  }
  for (const IdValue& app : d.applications) {
    p.tp_data.emplace_back(Idr(mikey::IdRole::kApplication, app.id_type, app.data));
  }
  for (const IdValue& r : d.responders) {
    p.tp_data.emplace_back(Idr(mikey::IdRole::kResponder, r.id_type, r.data));
  }
  return p;
}

UeResult<RequestInit> BuildRequestInitPsk(crypto::CryptoProvider& provider,
                                          const RequestInitParams& params) {
  if (params.psk.empty()) return Invalid("the PSK is empty");
  if (auto ok = CheckAlgorithms(params.prf_func, params.mac_alg); !ok.ok()) return std::move(ok).error();
  auto policy = BuildDesiredPolicy(params.policy);
  if (!policy.ok()) return Invalid(policy.error().message());
  // Reading 4: RANDRi is used with the PSK; a fresh one also covers the keys asked for.
  auto opening = OpenMessage(provider, params.csb_id, params.timestamp, params.randri, params.psk.size(),
                             RequestRandLength(params), "RANDRi");
  if (!opening.ok()) return std::move(opening).error();
  const uint32_t csb_id = opening->csb_id;
  const TPayload* t = &opening->t;
  auto ts64 = Ts64(*t);
  if (!ts64.ok()) return std::move(ts64).error();
  Bytes* randri = &opening->rand;

  RequestInit out;
  Message& m = out.message;
  // RFC 6043 §4.2.1.1: V = 1, #CS = 0, Empty map.
  m.header = TicketHeader(DataType::kRequestInitPsk, /*v=*/true, params.prf_func, csb_id);
  m.payloads.emplace_back(*t);
  m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(mikey::RandRole::kInitiator), *randri});
  if (params.initiator.send) {
    m.payloads.emplace_back(Idr(mikey::IdRole::kInitiator, params.initiator.id_type, params.initiator.id));
  }
  if (params.kms.send) m.payloads.emplace_back(Idr(mikey::IdRole::kKms, params.kms.id_type, params.kms.id));
  m.payloads.emplace_back(mikey::TpPayload{*policy});
  if (params.psk_id) {
    m.payloads.emplace_back(Idr(mikey::IdRole::kPsk, static_cast<uint8_t>(mikey::IdType::kByteString),
                                *params.psk_id));
  }
  m.payloads.emplace_back(VPayload{params.mac_alg, {}});

  // RFC 6043 §5.1.2, initial message: PSK, 0x01, RANDRi, no RANDRr.
  auto keys = MessageKeysFrom(provider, params.psk, params.prf_func, crypto::Direction::kInitial, csb_id,
                              ByteSpan(*randri), std::nullopt,
                              static_cast<uint8_t>(mikey::EncrAlg::kNull), params.mac_alg);
  if (!keys.ok()) return std::move(keys).error();
  // RFC 6043 §5.5: REQUEST_INIT || Identity_i || Identity_kms.
  const ByteSpan ids[] = {params.initiator.id, params.kms.id};
  auto sealed = Seal(provider, m, keys->auth_key, ids);
  if (!sealed.ok()) return std::move(sealed).error();

  out.bytes = std::move(*sealed);
  out.psk = params.psk;
  out.auth_key = std::move(keys->auth_key);
  out.mac_alg = params.mac_alg;
  out.prf_func = params.prf_func;
  out.csb_id = csb_id;
  out.randri = std::move(*randri);
  out.initiator_identity = params.initiator.id;
  out.kms_identity = params.kms.id;
  out.ts64 = *ts64;
  out.requested_policy = std::move(*policy);
  out.checks = params.checks;
  return out;
}

UeResult<TicketGrant> ParseRequestResp(crypto::CryptoProvider& provider, ByteSpan response,
                                       const RequestInit& request) {
  ResponseContext ctx{DataType::kRequestResp,
                      request.bytes,
                      &request.message.header,
                      &request.psk,
                      ByteSpan(request.randri),
                      std::nullopt,
                      &request.kms_identity,
                      request.ts64,
                      &request.checks,
                      ErrorAuthKey{&request.auth_key, request.mac_alg}};
  auto opened = OpenResponse(provider, response, ctx);
  if (!opened.ok()) return std::move(opened).error();
  Message& m = opened->message;
  const TicketPayload* ticket = Find<TicketPayload>(m);
  if (ticket == nullptr) return Verification("REQUEST_RESP without TICKET");
  TicketGrant grant;
  const bool forking = (ticket->policy.flags & mikey::kFlagI) != 0;
  auto split = SplitKeys(opened->keys, forking ? 2 : 1, request.checks.require_key_spi,
                         grant.mpk_keys, grant.session_keys);
  if (!split.ok()) return std::move(split).error();
  grant.ticket = *ticket;
  grant.policy = ticket->policy;
  grant.mpki = grant.mpk_keys[0].key;
  if (forking) grant.mpkr = grant.mpk_keys[1].key;
  grant.policy_changed = (ticket->policy.flags & mikey::kFlagK) != 0;
  grant.kms_timestamp = std::get<TPayload>(m.payloads.front());
  if (const IdrPayload* kms = FindIdr(m, mikey::IdRole::kKms)) grant.kms_identity = kms->data;
  grant.response.assign(response.begin(), response.end());
  return grant;
}

// ---- Error messages ----------------------------------------------------------------------

UeResult<MikeyErrorReport> ParseErrorMessage(crypto::CryptoProvider& provider, ByteSpan bytes,
                                             const ErrorAuthKey& key) {
  std::vector<mikey::PayloadExtent> extents;
  auto decoded = mikey::Decode(bytes, {}, extents);
  if (!decoded.ok()) return Undecodable("MIKEY message", decoded.error());
  const Message& m = *decoded;
  if (m.header.data_type != static_cast<uint8_t>(DataType::kError)) {
    return Err(UeErrorKind::kBadResponse, "not an Error message: " + Name(m.header.data_type));
  }
  MikeyErrorReport report;
  report.csb_id = m.header.csb_id;
  for (const Payload& p : m.payloads) {
    if (const auto* err = std::get_if<mikey::ErrPayload>(&p)) report.errors.push_back(err->error_no);
  }
  const auto* v = std::get_if<VPayload>(&m.payloads.back());
  report.has_v = v != nullptr;
  report.has_sign = std::holds_alternative<mikey::SignPayload>(m.payloads.back());
  if (v != nullptr && key.auth_key != nullptr) {
    report.v_checked = true;
    // The auth_key of the message in error (RFC 6043 §5.4), over the Error
    // message alone (Table 5.2).
    if (v->auth_alg == key.mac_alg && v->auth_alg != static_cast<uint8_t>(mikey::MacAlg::kNull)) {
      auto auth = Import(provider, *key.auth_key);
      if (!auth.ok()) return std::move(auth).error();
      report.authenticated = crypto::VerifyV(provider, bytes, m, extents, **auth, {}).ok();
    }
  }
  return report;
}

UeError ErrorFromReport(const MikeyErrorReport& report) {
  std::string text;
  for (uint8_t no : report.errors) {
    if (!text.empty()) text += ", ";
    text += "MIKEY error " + std::to_string(no) + " (" + std::string(mikey::ErrorNoName(no)) + ")";
  }
  UeError e;
  e.mikey_errors = report.errors;
  e.error_authenticated = report.authenticated;
  if (report.has_v && report.v_checked && !report.authenticated) {
    e.kind = UeErrorKind::kVerification;
    e.detail = text + "; the Error message's V does not verify";
  } else {
    e.kind = UeErrorKind::kMikeyError;
    e.detail = text + (report.authenticated ? ", authenticated" : ", unauthenticated");
  }
  return e;
}

}  // namespace tkms::ue
