// The Ticket Transfer exchange completed (RFC 6043 §4.2.2.3, §4.2.2.4) and
// the per-crypto-session SRTP keys (§5.1.3): the Responder's TRANSFER_RESP,
// the Initiator's check of it, F = 0 without it, DeriveSrtpKeys; see
// transfer.h, readings 10-18. Checks of received messages that need no keys
// are in transfer_checks.cpp.
#include "tools/ue/transfer.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <utility>

#include "firmware/base/byte_writer.h"
#include "firmware/mikey/composition.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/protect.h"
#include "tools/ue/ue_internal.h"

namespace tkms::ue {

using mikey::CommonHeader;
using mikey::DataType;
using mikey::GenericIdEntry;
using mikey::IdrPayload;
using mikey::KeyDataPayload;
using mikey::Message;
using mikey::RandrPayload;
using mikey::SpPayload;
using mikey::TicketPayload;
using mikey::TPayload;
using mikey::VPayload;
namespace crypto = mikey::crypto;
using namespace internal;  // NOLINT: the file's building blocks

namespace {

constexpr uint8_t kProtSrtp = 0;  // RFC 3830 Table 6.10 Prot type

bool Has(uint16_t flags, uint16_t flag) { return (flags & flag) != 0; }

std::vector<SpPayload> SpsOf(const Message& m) {
  std::vector<SpPayload> out;
  for (const auto& p : m.payloads) {
    if (const auto* sp = std::get_if<SpPayload>(&p)) out.push_back(*sp);
  }
  return out;
}

// A TRANSFER_INIT of an initial exchange: RANDRi and TICKET present.
struct InitView {
  Message message;
  const RandrPayload* randri = nullptr;
  const TicketPayload* ticket = nullptr;
  const VPayload* v = nullptr;
};

UeResult<InitView> ReadTransferInit(ByteSpan bytes) {
  auto m = DecodeTransferInit(bytes);
  if (!m.ok()) return std::move(m).error();
  InitView view;
  view.message = std::move(*m);
  view.randri = FindRandr(view.message, mikey::RandRole::kInitiator);
  view.ticket = Find<TicketPayload>(view.message);
  view.v = std::get_if<VPayload>(&view.message.payloads.back());
  if (view.randri == nullptr || view.ticket == nullptr || view.v == nullptr) {
    return Verification("TRANSFER_INIT lacks RANDRi, TICKET or V (a CSB update is not an initial exchange)");
  }
  return view;
}

// RFC 6043 §5.1.2 keys of a TRANSFER_INIT (0x01, RANDRi) or TRANSFER_RESP
// (0x02, RANDRi, RANDRr iff G) from MPKi / MPKr'.
UeResult<crypto::MessageKeys> TransferKeys(crypto::CryptoProvider& provider, ByteSpan mpk, uint8_t prf,
                                           crypto::Direction direction, uint32_t csb_id, ByteSpan randri,
                                           std::optional<ByteSpan> randrr, uint8_t mac_alg) {
  return MessageKeysFrom(provider, mpk, prf, direction, csb_id, randri, randrr,
                         static_cast<uint8_t>(mikey::EncrAlg::kNull), mac_alg);
}

UeResult<SecretBytes> Fork(crypto::CryptoProvider& provider, uint8_t ticket_prf, ByteSpan inkey,
                           crypto::ForkedKeyType type, ByteSpan id_data, ByteSpan randrkms) {
  auto key = Import(provider, inkey);
  if (!key.ok()) return std::move(key).error();
  auto forked = crypto::DeriveForkedKey(provider, static_cast<mikey::PrfFunc>(ticket_prf), **key, type,
                                        id_data, randrkms);
  if (!forked.ok()) return FromStatus(forked.error());
  return std::move(*forked);
}

bool IsTgk(uint8_t key_type) {
  return key_type == static_cast<uint8_t>(mikey::KeyType::kTgk) ||
         key_type == static_cast<uint8_t>(mikey::KeyType::kTgkSalt);
}

uint8_t LowestUnusedPolicyNo(const std::vector<SpPayload>& used) {
  std::set<uint8_t> numbers;
  for (const auto& sp : used) numbers.insert(sp.policy_no);
  for (unsigned n = 0; n < 256; ++n) {
    if (numbers.count(static_cast<uint8_t>(n)) == 0) return static_cast<uint8_t>(n);
  }
  return 0;  // 256 SP payloads cannot all be distinct and leave none; unreachable in practice
}

const SpPayload* FindPolicy(const std::vector<SpPayload>& sps, uint8_t policy_no) {
  for (const auto& sp : sps) {
    if (sp.policy_no == policy_no) return &sp;
  }
  return nullptr;
}

// RFC 6043 §4.2.2.4 / §6.1.1 checks of a completed map entry (reading 14).
Result<void, UeError> CheckCompletedEntry(const GenericIdEntry& cs, const std::vector<SpPayload>& init_sps,
                                          const std::vector<SpPayload>& resp_sps) {
  const std::string name = "crypto session " + std::to_string(cs.cs_id);
  if (cs.prot_type != kProtSrtp) return Verification(name + " is not SRTP (Prot type " + std::to_string(cs.prot_type) + ")");
  if (cs.policies.size() != 1) return Verification(name + " has #P != 1 in the TRANSFER_RESP (RFC 6043 §6.1.1)");
  if (cs.session_data.size() < 4) return Verification(name + " lacks SRTP Session Data (RFC 6043 §4.2.2.3)");
  if (cs.spi.empty()) return Verification(name + " lacks an SPI (RFC 6043 §4.2.2.3)");
  // A Responder's SP takes precedence; otherwise the number refers to the TRANSFER_INIT's.
  const SpPayload* sp = FindPolicy(resp_sps, cs.policies[0]);
  if (sp == nullptr) sp = FindPolicy(init_sps, cs.policies[0]);
  if (sp == nullptr) return Verification(name + " names policy " + std::to_string(cs.policies[0]) + ", which no SP payload defines");
  if (!IsAcceptableSrtpPolicy(*sp)) {
    return Verification(name + ": policy " + std::to_string(sp->policy_no) + " is not SRTP AES_CM_128_HMAC_SHA1_80");
  }
  return {};
}

Bytes SsrcBytes(uint32_t ssrc) { return ByteWriter().U32(ssrc).Take(); }

UeResult<TPayload> FreshTimestamp(const std::optional<TimestampSpec>& spec, const TPayload& init_t) {
  TPayload t;
  if (spec.has_value()) {
    t.ts_type = spec->ts_type;
    if (!mikey::IsKnownTsType(t.ts_type)) return Invalid("unknown timestamp type");
    if (spec->value.has_value()) {
      t.value = *spec->value;
      if (mikey::TsLength(static_cast<mikey::TsType>(t.ts_type)) == 4 && t.value > 0xFFFFFFFFull) {
        return Invalid("timestamp value does not fit a 32-bit timestamp type");
      }
      return t;
    }
  } else {
    t.ts_type = init_t.ts_type;
  }
  switch (static_cast<mikey::TsType>(t.ts_type)) {
    case mikey::TsType::kCounter:
      // RFC 6043 §4.2.2.3: "the timestamp value MAY be equal to the one in the TRANSFER_INIT".
      t.value = init_t.value;
      break;
    case mikey::TsType::kNtpUtc32:
      t.value = NtpUtcNow() >> 32;
      break;
    default:
      t.value = NtpUtcNow();
      break;
  }
  return t;
}

// ---- Responder pieces ---------------------------------------------------------------

// RANDRr (reading 12, 18): sent iff the G flag (unless overridden); the
// caller's (at least as long as the longest key) or a fresh one. Then the sum
// with the received RANDRi is checked: RANDRr counts only with G, the only
// case in which it enters a derivation.
UeResult<std::optional<Bytes>> ResponderRand(crypto::CryptoProvider& provider, const TransferRespParams& params,
                                             uint16_t flags, size_t randri_bytes, size_t longest) {
  std::optional<Bytes> randrr;
  if (params.send_randrr.value_or(Has(flags, mikey::kFlagG))) {
    if (params.randrr) {
      if (params.randrr->empty() || params.randrr->size() > kMaxRandBytes) return Invalid("RANDRr must be 1-255 bytes");
      if (params.randrr->size() < std::min(longest, kMaxRandBytes)) {
        return Invalid("RANDRr of " + std::to_string(params.randrr->size()) +
                       " bytes is shorter than the longest key it is used with (" + std::to_string(longest) +
                       " bytes; RFC 6043 §12.1)");
      }
      randrr = *params.randrr;
    } else {
      auto r = RandomBytes(provider, RandLengthFor(longest));
      if (!r.ok()) return std::move(r).error();
      randrr = std::move(*r);
    }
  }
  const size_t used_randrr = Has(flags, mikey::kFlagG) && randrr ? randrr->size() : 0;
  auto lengths = CheckTransferRandLengths(randri_bytes, used_randrr, longest, "TRANSFER_INIT");
  if (!lengths.ok()) return std::move(lengths).error();
  return randrr;
}

// Reading 11: the TRANSFER_INIT's map completed, and the SP the Responder adds.
struct CompletedMap {
  std::vector<GenericIdEntry> map;
  std::vector<SpPayload> resp_sps;
};

UeResult<CompletedMap> CompleteMap(crypto::CryptoProvider& provider, const Message& init,
                                   const ResolvedTicket& resolved, const std::vector<uint32_t>& add_ssrcs) {
  const std::vector<SpPayload> init_sps = SpsOf(init);
  CompletedMap out;
  std::optional<uint8_t> our_policy;
  auto policy_for_new = [&]() -> uint8_t {
    if (!our_policy) {
      our_policy = LowestUnusedPolicyNo(init_sps);
      out.resp_sps.push_back(SrtpAesCm128HmacSha1_80Policy(*our_policy));
    }
    return *our_policy;
  };
  Bytes default_spi;
  if (!resolved.session_keys.empty()) default_spi = resolved.session_keys.front().kv.spi;
  // ReadTransferInit admitted only GENERIC-ID and Empty (reading 17).
  if (init.header.cs_id_map_type == static_cast<uint8_t>(mikey::CsIdMapType::kGenericId)) {
    out.map = init.header.generic_map;
  } else if (init.header.cs_id_map_type != static_cast<uint8_t>(mikey::CsIdMapType::kEmpty)) {
    return Err(UeErrorKind::kInternal, "CS ID map type not checked (reading 17)");
  }
  for (GenericIdEntry& cs : out.map) {
    if (cs.prot_type != kProtSrtp) {
      return Invalid("crypto session " + std::to_string(cs.cs_id) + " is not SRTP; only SRTP is supported");
    }
    if (cs.policies.empty()) {
      cs.policies = {policy_for_new()};
    } else {
      cs.policies.resize(1);  // the first suggested policy (RFC 6043 §6.1.1 "SHOULD be chosen")
      const SpPayload* sp = FindPolicy(init_sps, cs.policies[0]);
      if (sp == nullptr || !IsAcceptableSrtpPolicy(*sp)) cs.policies = {policy_for_new()};
    }
    if (cs.session_data.empty()) {
      auto ssrc = RandomBytes(provider, 4);
      if (!ssrc.ok()) return std::move(ssrc).error();
      cs.s_flag = false;
      cs.session_data = std::move(*ssrc);
    }
    if (cs.spi.empty()) cs.spi = default_spi;
  }
  for (uint32_t ssrc : add_ssrcs) {
    uint8_t next = 1;
    for (const auto& cs : out.map) next = std::max<uint8_t>(next, static_cast<uint8_t>(cs.cs_id + 1));
    if (next == 0 || out.map.size() >= 255) return Invalid("no CS ID left for an added crypto session");
    GenericIdEntry cs;
    cs.cs_id = next;
    cs.prot_type = kProtSrtp;
    cs.policies = {policy_for_new()};
    cs.session_data = SsrcBytes(ssrc);
    cs.spi = default_spi;
    out.map.push_back(std::move(cs));
  }
  for (const auto& cs : out.map) {
    if (cs.spi.empty()) return Invalid("the resolved session keys carry no SPI to name in the CS map");
  }
  return out;
}

// Reading 10, 12: HDR, T, [RANDRr], [IDRr], [RANDRkms], [SP], V (MAC empty).
Message ResponseMessage(const Message& init, const TPayload& t, const std::optional<Bytes>& randrr,
                        const ResolvedTicket& resolved, const TransferRespParams& params, const CompletedMap& completed,
                        uint8_t mac_alg) {
  Message m;
  m.header.version = init.header.version;
  m.header.data_type = static_cast<uint8_t>(DataType::kTransferResp);
  m.header.v = false;
  m.header.prf_func = init.header.prf_func;
  m.header.csb_id = init.header.csb_id;
  if (completed.map.empty() && init.header.cs_id_map_type == static_cast<uint8_t>(mikey::CsIdMapType::kEmpty)) {
    m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kEmpty);
    m.header.cs_count = 0;
  } else {
    m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kGenericId);
    m.header.cs_count = static_cast<uint8_t>(completed.map.size());
    m.header.generic_map = completed.map;
  }
  m.payloads.emplace_back(t);
  if (randrr) m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(mikey::RandRole::kResponder), *randrr});
  if (resolved.responder) {
    m.payloads.emplace_back(*resolved.responder);
  } else if (params.responder.send && !params.responder.id.empty()) {
    m.payloads.emplace_back(IdrPayload{static_cast<uint8_t>(mikey::IdRole::kResponder), params.responder.id_type,
                                       params.responder.id});
  }
  if (resolved.randrkms) {
    m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(mikey::RandRole::kKms), *resolved.randrkms});
  }
  for (const auto& sp : completed.resp_sps) m.payloads.emplace_back(sp);
  m.payloads.emplace_back(VPayload{mac_alg, {}});
  return m;
}

// ---- Initiator pieces ---------------------------------------------------------------

// An Error message answering the TRANSFER_INIT (RFC 6043 §5.4: its V uses the
// key of the message in error).
UeError ErrorAnswer(crypto::CryptoProvider& provider, ByteSpan response, const TicketGrant& grant,
                    const TransferInit& sent, uint8_t mac_alg) {
  const CommonHeader& req = sent.message.header;
  auto keys = TransferKeys(provider, grant.mpki, req.prf_func, crypto::Direction::kInitial, req.csb_id,
                           sent.randri, std::nullopt, mac_alg);
  if (!keys.ok()) return std::move(keys).error();
  auto report = ParseErrorMessage(provider, response, ErrorAuthKey{&keys->auth_key, mac_alg});
  if (!report.ok()) return std::move(report).error();
  return ErrorFromReport(*report);
}

// What a decoded TRANSFER_RESP must carry (readings 10, 12, 14).
struct RespView {
  const RandrPayload* randrr = nullptr;
  const IdrPayload* idrr = nullptr;
  const RandrPayload* randrkms = nullptr;
  const VPayload* v = nullptr;
};

UeResult<RespView> CheckResponseShape(const Message& m, const TicketGrant& grant, const TransferInit& sent) {
  const CommonHeader& h = m.header;
  const CommonHeader& req = sent.message.header;
  if (h.data_type != static_cast<uint8_t>(DataType::kTransferResp)) return Verification("expected TRANSFER_RESP");
  if (auto map = CheckTransferMapType(h.cs_id_map_type, "TRANSFER_RESP"); !map.ok()) return std::move(map).error();
  // RFC 6043 §4.2.2.3: version, PRF func and CSB ID identical; V ignored.
  if (h.version != req.version) return Verification("HDR version differs from the TRANSFER_INIT's");
  if (h.prf_func != req.prf_func) return Verification("HDR PRF func differs from the TRANSFER_INIT's");
  if (h.csb_id != req.csb_id) return Verification("HDR CSB ID differs from the TRANSFER_INIT's");
  const uint16_t flags = grant.ticket.policy.flags;
  if (!Has(flags, mikey::kFlagF)) {
    // Accepting one anyway is harmless for the keys (G = 0), but the
    // Responder did not follow the ticket: refuse rather than guess.
    return Verification("a TRANSFER_RESP arrived although the ticket's F flag is 0");
  }
  RespView view;
  view.randrr = FindRandr(m, mikey::RandRole::kResponder);
  const bool g = Has(flags, mikey::kFlagG);
  if (g && view.randrr == nullptr) return Verification("the ticket's G flag is set but TRANSFER_RESP lacks RANDRr");
  // Reading 18: RANDRi (ours) and RANDRr (theirs, used iff G) against the longest key.
  auto lengths = CheckTransferRandLengths(sent.randri.size(), g ? view.randrr->rand.size() : 0,
                                          LongestTransferKey(grant), "TRANSFER_RESP");
  if (!lengths.ok()) return std::move(lengths).error();
  view.idrr = FindIdr(m, mikey::IdRole::kResponder);
  view.randrkms = FindRandr(m, mikey::RandRole::kKms);
  if (Has(flags, mikey::kFlagI) && (view.idrr == nullptr || view.randrkms == nullptr)) {
    return Verification("the ticket uses key forking but TRANSFER_RESP lacks IDRr or RANDRkms");
  }
  if (Find<mikey::KemacPayload>(m) != nullptr) {
    return Verification("TRANSFER_RESP carries a KEMAC (responder-supplied keys are not supported)");
  }
  view.v = std::get_if<VPayload>(&m.payloads.back());
  if (view.v == nullptr || view.v->auth_alg == static_cast<uint8_t>(mikey::MacAlg::kNull)) {
    return Verification("TRANSFER_RESP must end with a V payload with an HMAC");
  }
  return view;
}

// Reading 14: MPKr' and the TGKs forked with the TRANSFER_RESP's modifier
// (or MPKi and the keys as granted without the I flag).
struct InitiatorKeys {
  SecretBytes mpk;
  std::vector<KeyDataPayload> keys;
};

UeResult<InitiatorKeys> InitiatorKeysFor(crypto::CryptoProvider& provider, const TicketGrant& grant,
                                         const RespView& view) {
  InitiatorKeys out{grant.mpki, grant.session_keys};
  if (!Has(grant.ticket.policy.flags, mikey::kFlagI)) return out;
  if (!grant.mpkr || grant.mpkr->empty()) return Invalid("the grant has no MPKr for a forking ticket");
  const uint8_t prf = grant.ticket.policy.prf_func;
  auto mpkr = Fork(provider, prf, *grant.mpkr, crypto::ForkedKeyType::kMpkr, view.idrr->data, view.randrkms->rand);
  if (!mpkr.ok()) return std::move(mpkr).error();
  out.mpk = std::move(*mpkr);
  for (KeyDataPayload& k : out.keys) {
    if (!IsTgk(k.key_type)) continue;  // TEK, GTGK: never forked (§5.1.1)
    auto tgk = Fork(provider, prf, k.key, crypto::ForkedKeyType::kTgk, view.idrr->data, view.randrkms->rand);
    if (!tgk.ok()) return std::move(tgk).error();
    k.key = std::move(*tgk);
  }
  return out;
}

// Readings 10, 14: every offered crypto session is still there, with the
// same Prot type; every entry is complete and acceptable; no CS ID twice.
Result<void, UeError> CheckCompletedMap(const CommonHeader& req, const CommonHeader& h,
                                        const std::vector<SpPayload>& init_sps,
                                        const std::vector<SpPayload>& resp_sps) {
  for (const GenericIdEntry& offered : req.generic_map) {
    auto it = std::find_if(h.generic_map.begin(), h.generic_map.end(),
                           [&](const GenericIdEntry& cs) { return cs.cs_id == offered.cs_id; });
    if (it == h.generic_map.end() || it->prot_type != offered.prot_type) {
      return Verification("crypto session " + std::to_string(offered.cs_id) + " of the TRANSFER_INIT is missing");
    }
  }
  std::set<uint8_t> ids;
  for (const GenericIdEntry& cs : h.generic_map) {
    if (!ids.insert(cs.cs_id).second) return Verification("CS ID " + std::to_string(cs.cs_id) + " appears twice");
    auto ok = CheckCompletedEntry(cs, init_sps, resp_sps);
    if (!ok.ok()) return std::move(ok).error();
  }
  return {};
}

}  // namespace

// ---- Responder -------------------------------------------------------------------

UeResult<TransferResp> BuildTransferResp(crypto::CryptoProvider& provider, ByteSpan transfer_init,
                                         const ResolvedTicket& resolved, const TransferRespParams& params) {
  auto view = ReadTransferInit(transfer_init);
  if (!view.ok()) return std::move(view).error();
  const Message& init = view->message;
  const uint16_t flags = view->ticket->policy.flags;
  const bool forking = Has(flags, mikey::kFlagI);
  if (!Has(flags, mikey::kFlagF)) {
    return Invalid("the ticket policy's F flag is 0: no TRANSFER_RESP is sent (RFC 6043 §4.2.2.2)");
  }
  if (params.verify_transfer_init) {
    auto ok = VerifyTransferInit(provider, transfer_init, resolved, params.identity_i, params.identity_r);
    if (!ok.ok()) return std::move(ok).error();
  }
  if (forking && (!resolved.mpkr_forked || !resolved.responder || !resolved.randrkms)) {
    return Invalid("key forking (I flag) needs MPKr', IDRr and RANDRkms from the RESOLVE_RESP");
  }
  const uint8_t mac_alg = params.mac_alg.value_or(view->v->auth_alg);
  if (!mikey::IsKnownMacAlg(mac_alg) || mac_alg == static_cast<uint8_t>(mikey::MacAlg::kNull)) {
    return Invalid("the V payload needs an HMAC algorithm (1 or 2)");
  }
  auto t = FreshTimestamp(params.timestamp, std::get<TPayload>(init.payloads.front()));
  if (!t.ok()) return std::move(t).error();
  auto randrr = ResponderRand(provider, params, flags, view->randri->rand.size(), LongestTransferKey(resolved));
  if (!randrr.ok()) return std::move(randrr).error();
  auto completed = CompleteMap(provider, init, resolved, params.add_ssrcs);
  if (!completed.ok()) return std::move(completed).error();

  TransferResp out;
  out.message = ResponseMessage(init, *t, *randrr, resolved, params, *completed, mac_alg);
  Message& m = out.message;
  auto composition = mikey::CheckComposition(m);
  if (!composition.ok()) return Invalid("TRANSFER_RESP would not be well formed: " + composition.error().ToString());
  // Reading 13: MPKr' or MPKi, 0x02, RANDRi, RANDRr iff G.
  const SecretBytes& mpk = forking ? *resolved.mpkr_forked : resolved.mpki;
  const std::optional<ByteSpan> label_randrr =
      (Has(flags, mikey::kFlagG) && *randrr) ? std::optional<ByteSpan>(**randrr) : std::nullopt;
  auto keys = TransferKeys(provider, mpk, init.header.prf_func, crypto::Direction::kResponse, init.header.csb_id,
                           view->randri->rand, label_randrr, mac_alg);
  if (!keys.ok()) return std::move(keys).error();
  const ByteSpan appended[] = {transfer_init};
  auto sealed = Seal(provider, m, keys->auth_key, appended);
  if (!sealed.ok()) return std::move(sealed).error();
  out.bytes = std::move(*sealed);

  TransferSession& s = out.session;
  s.csb_id = init.header.csb_id;
  s.prf_func = init.header.prf_func;
  s.ticket_flags = flags;
  s.crypto_sessions = std::move(completed->map);
  s.policies = SpsOf(init);
  s.policies.insert(s.policies.begin(), completed->resp_sps.begin(), completed->resp_sps.end());  // the Responder's first
  s.randri = view->randri->rand;
  if (Has(flags, mikey::kFlagG)) s.randrr = *randrr;
  s.session_keys = resolved.session_keys;  // TGK' already forked by the KMS (§4.2.3.5)
  s.responder = resolved.responder;
  s.randrkms = resolved.randrkms;
  s.last_message_key = mpk;
  s.response = true;
  return out;
}

UeResult<TransferSession> ResponderSessionWithoutResponse(crypto::CryptoProvider& provider, ByteSpan transfer_init,
                                                          const ResolvedTicket& resolved, bool verify) {
  auto view = ReadTransferInit(transfer_init);
  if (!view.ok()) return std::move(view).error();
  const uint16_t flags = view->ticket->policy.flags;
  if (Has(flags, mikey::kFlagF)) return Invalid("the ticket policy's F flag is set: a TRANSFER_RESP is required");
  if (verify) {
    auto ok = VerifyTransferInit(provider, transfer_init, resolved);
    if (!ok.ok()) return std::move(ok).error();
  }
  // Reading 18: without a TRANSFER_RESP (F = 0, so G = 0) RANDRi stands alone.
  auto lengths = CheckTransferRandLengths(view->randri->rand.size(), 0, LongestTransferKey(resolved), "TRANSFER_INIT");
  if (!lengths.ok()) return std::move(lengths).error();
  TransferSession s;
  s.csb_id = view->message.header.csb_id;
  s.prf_func = view->message.header.prf_func;
  s.ticket_flags = flags;
  s.crypto_sessions = view->message.header.generic_map;
  s.policies = SpsOf(view->message);
  s.randri = view->randri->rand;
  s.session_keys = resolved.session_keys;
  s.last_message_key = resolved.mpki;
  return s;
}

// ---- Initiator -------------------------------------------------------------------

UeResult<TransferSession> ParseTransferResp(crypto::CryptoProvider& provider, ByteSpan response,
                                            const TicketGrant& grant, const TransferInit& sent) {
  const CommonHeader& req = sent.message.header;
  if (auto own = CheckTransferMapType(req.cs_id_map_type, "the TRANSFER_INIT sent"); !own.ok()) {
    return Invalid(own.error().detail);
  }
  if (sent.message.payloads.empty()) return Invalid("the TRANSFER_INIT has no payloads");
  const auto* init_v = std::get_if<VPayload>(&sent.message.payloads.back());
  if (init_v == nullptr) return Invalid("the TRANSFER_INIT has no V payload");
  if (response.size() >= 2 && response[1] == static_cast<uint8_t>(DataType::kError)) {
    return ErrorAnswer(provider, response, grant, sent, init_v->auth_alg);
  }
  if (auto raw = CheckTransferMapTypeBytes(response, DataType::kTransferResp); !raw.ok()) {
    return std::move(raw).error();
  }
  std::vector<mikey::PayloadExtent> extents;
  auto decoded = mikey::Decode(response, {}, extents);
  if (!decoded.ok()) return Undecodable("TRANSFER_RESP", decoded.error());
  const Message& m = *decoded;
  const CommonHeader& h = m.header;
  auto view = CheckResponseShape(m, grant, sent);
  if (!view.ok()) return std::move(view).error();
  const bool g = Has(grant.ticket.policy.flags, mikey::kFlagG);

  auto keys = InitiatorKeysFor(provider, grant, *view);
  if (!keys.ok()) return std::move(keys).error();
  const std::optional<ByteSpan> label_randrr = g ? std::optional<ByteSpan>(view->randrr->rand) : std::nullopt;
  auto mkeys = TransferKeys(provider, keys->mpk, h.prf_func, crypto::Direction::kResponse, h.csb_id, sent.randri,
                            label_randrr, view->v->auth_alg);
  if (!mkeys.ok()) return std::move(mkeys).error();
  auto auth = Import(provider, mkeys->auth_key);
  if (!auth.ok()) return std::move(auth).error();
  const ByteSpan appended[] = {sent.bytes};
  Status verified = crypto::VerifyV(provider, response, m, extents, **auth, appended);
  if (!verified.ok()) {
    if (verified.code() == StatusCode::kPermissionDenied || verified.code() == StatusCode::kInvalidArgument) {
      return Verification("TRANSFER_RESP: V does not verify (" + verified.message() + ")");
    }
    return FromStatus(verified);
  }
  const std::vector<SpPayload> init_sps = SpsOf(sent.message);
  const std::vector<SpPayload> resp_sps = SpsOf(m);
  if (auto map = CheckCompletedMap(req, h, init_sps, resp_sps); !map.ok()) return std::move(map).error();

  TransferSession s;
  s.csb_id = h.csb_id;
  s.prf_func = h.prf_func;
  s.ticket_flags = grant.ticket.policy.flags;
  s.crypto_sessions = h.generic_map;
  s.policies = resp_sps;
  s.policies.insert(s.policies.end(), init_sps.begin(), init_sps.end());
  s.randri = sent.randri;
  if (g) s.randrr = view->randrr->rand;
  s.session_keys = std::move(keys->keys);
  if (view->idrr != nullptr) s.responder = *view->idrr;
  if (view->randrkms != nullptr) s.randrkms = view->randrkms->rand;
  s.last_message_key = std::move(keys->mpk);
  s.response = true;
  return s;
}

UeResult<TransferSession> InitiatorSessionWithoutResponse(const TicketGrant& grant, const TransferInit& sent) {
  const uint16_t flags = grant.ticket.policy.flags;
  if (Has(flags, mikey::kFlagF)) return Invalid("the ticket policy's F flag is set: wait for the TRANSFER_RESP");
  if (Has(flags, mikey::kFlagI) &&
      std::any_of(grant.session_keys.begin(), grant.session_keys.end(),
                  [](const KeyDataPayload& k) { return IsTgk(k.key_type); })) {
    return Invalid("a forked TGK needs the TRANSFER_RESP's modifier (I flag with a TGK implies F)");
  }
  // Reading 18: RANDRi stands alone (a TRANSFER_INIT rebuilt from elsewhere may be short).
  if (auto lengths = CheckTransferRandLengths(sent.randri.size(), 0, LongestTransferKey(grant), "the TRANSFER_INIT sent");
      !lengths.ok()) {
    return Invalid(lengths.error().detail);
  }
  TransferSession s;
  s.csb_id = sent.message.header.csb_id;
  s.prf_func = sent.message.header.prf_func;
  s.ticket_flags = flags;
  s.crypto_sessions = sent.message.header.generic_map;
  s.policies = SpsOf(sent.message);
  s.randri = sent.randri;
  s.session_keys = grant.session_keys;
  s.last_message_key = grant.mpki;
  return s;
}

}  // namespace tkms::ue
