#include "tools/ue/transfer.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <utility>

#include "firmware/mikey/composition.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/protect.h"
#include "firmware/mikey/crypto/srtp_keys.h"

namespace tkms::ue {

using mikey::CommonHeader;
using mikey::DataType;
using mikey::GenericIdEntry;
using mikey::IdrPayload;
using mikey::KeyDataPayload;
using mikey::Message;
using mikey::RandrPayload;
using mikey::SpParam;
using mikey::SpPayload;
using mikey::TicketPayload;
using mikey::TPayload;
using mikey::VPayload;
namespace crypto = mikey::crypto;

namespace {

constexpr uint8_t kProtSrtp = 0;                   // RFC 3830 Table 6.10 Prot type
constexpr size_t kMinRandBytes = 16;               // RFC 3830 §6.11
constexpr size_t kMaxRandBytes = 255;

// RFC 3830 Table 6.10.1.a parameter types and the AES_CM_128_HMAC_SHA1_80 values.
struct SrtpParamValue {
  uint8_t type;
  uint8_t value;
};
constexpr SrtpParamValue kAesCm128HmacSha1_80[] = {
    {0, 1},   // encryption algorithm: AES-CM
    {1, 16},  // session encr. key length (= master key length, RFC 3830 §6.10.1)
    {2, 1},   // authentication algorithm: HMAC-SHA-1
    {3, 20},  // session auth. key length
    {4, 14},  // session salt key length
    {5, 0},   // SRTP PRF: AES-CM
    {7, 1},   // SRTP encryption on
    {8, 1},   // SRTCP encryption on
    {10, 1},  // SRTP authentication on
    {11, 10}, // authentication tag length (80 bits)
    {12, 0},  // SRTP prefix length
};

UeError Err(UeErrorKind kind, std::string detail) {
  UeError e;
  e.kind = kind;
  e.detail = std::move(detail);
  return e;
}
UeError Invalid(std::string detail) { return Err(UeErrorKind::kInvalidArgument, std::move(detail)); }
UeError Verification(std::string detail) { return Err(UeErrorKind::kVerification, std::move(detail)); }
UeError FromStatus(const Status& s) {
  return Err(s.code() == StatusCode::kInvalidArgument ? UeErrorKind::kInvalidArgument : UeErrorKind::kInternal,
             s.ToString());
}

bool Has(uint16_t flags, uint16_t flag) { return (flags & flag) != 0; }

UeResult<crypto::SecretKeyPtr> Import(crypto::CryptoProvider& provider, ByteSpan bytes) {
  auto key = provider.ImportTransientKey(bytes);
  if (!key.ok()) return FromStatus(key.error());
  return std::move(*key);
}

UeResult<Bytes> RandomBytes(crypto::CryptoProvider& provider, size_t n) {
  Bytes out(n);
  Status s = provider.Random(out);
  if (!s.ok()) return FromStatus(s);
  return out;
}

template <typename T>
const T* Find(const Message& m) {
  for (const auto& p : m.payloads) {
    if (const auto* x = std::get_if<T>(&p)) return x;
  }
  return nullptr;
}

const IdrPayload* FindIdr(const Message& m, mikey::IdRole role) {
  for (const auto& p : m.payloads) {
    if (const auto* x = std::get_if<IdrPayload>(&p); x != nullptr && x->role == static_cast<uint8_t>(role)) return x;
  }
  return nullptr;
}

const RandrPayload* FindRandr(const Message& m, mikey::RandRole role) {
  for (const auto& p : m.payloads) {
    if (const auto* x = std::get_if<RandrPayload>(&p); x != nullptr && x->role == static_cast<uint8_t>(role)) return x;
  }
  return nullptr;
}

std::vector<SpPayload> SpsOf(const Message& m) {
  std::vector<SpPayload> out;
  for (const auto& p : m.payloads) {
    if (const auto* sp = std::get_if<SpPayload>(&p)) out.push_back(*sp);
  }
  return out;
}

UeResult<Message> DecodeWithExtents(ByteSpan bytes, std::vector<mikey::PayloadExtent>& extents,
                                    const char* what) {
  auto decoded = mikey::Decode(bytes, {}, extents);
  if (!decoded.ok()) {
    UeError e = Err(UeErrorKind::kBadResponse, std::string("undecodable ") + what + ": " + decoded.error().ToString());
    e.codec_rule = decoded.error().rule;
    return e;
  }
  return std::move(*decoded);
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
  auto key = Import(provider, mpk);
  if (!key.ok()) return std::move(key).error();
  auto keys = crypto::DeriveMessageKeys(provider, static_cast<mikey::PrfFunc>(prf), **key, direction, csb_id,
                                        randri, randrr, mikey::EncrAlg::kNull,
                                        static_cast<mikey::MacAlg>(mac_alg));
  if (!keys.ok()) return FromStatus(keys.error());
  return std::move(*keys);
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

std::optional<uint32_t> SsrcOf(const GenericIdEntry& cs) {
  if (cs.prot_type != kProtSrtp || cs.session_data.size() < 4) return std::nullopt;
  const auto& d = cs.session_data;
  return (uint32_t{d[0]} << 24) | (uint32_t{d[1]} << 16) | (uint32_t{d[2]} << 8) | uint32_t{d[3]};
}

Bytes SsrcBytes(uint32_t ssrc) {
  return Bytes{static_cast<uint8_t>(ssrc >> 24), static_cast<uint8_t>(ssrc >> 16), static_cast<uint8_t>(ssrc >> 8),
               static_cast<uint8_t>(ssrc)};
}

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

// RFC 3830 §6.1 common header: data type at offset 1, CS ID map type at 9.
constexpr size_t kHdrDataTypeOffset = 1;
constexpr size_t kHdrMapTypeOffset = 9;

std::string MessageName(DataType type) { return std::string(mikey::DataTypeName(static_cast<uint8_t>(type))); }

}  // namespace

// ---- Checks of received messages ------------------------------------------------

Result<void, UeError> CheckTransferMapType(uint8_t map_type, std::string_view what) {
  if (map_type == static_cast<uint8_t>(mikey::CsIdMapType::kGenericId) ||
      map_type == static_cast<uint8_t>(mikey::CsIdMapType::kEmpty)) {
    return {};
  }
  if (map_type == static_cast<uint8_t>(mikey::CsIdMapType::kSrtpId)) {
    return Verification(std::string(what) +
                        " uses the SRTP-ID CS ID map (type 0), which SHALL NOT be used in the Ticket Transfer "
                        "exchange (RFC 6043 §6.1)");
  }
  return Verification(std::string(what) + " uses CS ID map type " + std::to_string(map_type) +
                      ", which is not defined (RFC 6043 §6.1: GENERIC-ID, 2; RFC 3830 §6.1: Empty, 1)");
}

Result<void, UeError> CheckTransferMapTypeBytes(ByteSpan message, DataType expected) {
  if (message.size() <= kHdrMapTypeOffset || message[kHdrDataTypeOffset] != static_cast<uint8_t>(expected)) return {};
  return CheckTransferMapType(message[kHdrMapTypeOffset], MessageName(expected));
}

UeResult<Message> DecodeTransferInit(ByteSpan bytes) {
  auto raw = CheckTransferMapTypeBytes(bytes, DataType::kTransferInit);
  if (!raw.ok()) return std::move(raw).error();
  std::vector<mikey::PayloadExtent> extents;
  auto m = DecodeWithExtents(bytes, extents, "TRANSFER_INIT");
  if (!m.ok()) return std::move(m).error();
  if (m->header.data_type != static_cast<uint8_t>(DataType::kTransferInit)) {
    return Verification("expected TRANSFER_INIT, received " + std::string(mikey::DataTypeName(m->header.data_type)));
  }
  auto map = CheckTransferMapType(m->header.cs_id_map_type, "TRANSFER_INIT");
  if (!map.ok()) return std::move(map).error();
  return std::move(*m);
}

Result<void, UeError> CheckTicketValidityPeriod(const mikey::TicketPolicy& policy, uint64_t now_ntp) {
  // NTP-UTC-32 values are compared as seconds; 64-bit values as they are.
  const auto as_ntp64 = [](const mikey::TrPayload& tr) -> std::optional<uint64_t> {
    if (tr.ts_type == static_cast<uint8_t>(mikey::TsType::kNtpUtc32)) return tr.value << 32;
    if (tr.ts_type == static_cast<uint8_t>(mikey::TsType::kNtpUtc) ||
        tr.ts_type == static_cast<uint8_t>(mikey::TsType::kNtp)) {
      return tr.value;
    }
    return std::nullopt;
  };
  for (const auto& item : policy.tp_data) {
    const auto* tr = std::get_if<mikey::TrPayload>(&item);
    if (tr == nullptr) continue;
    const auto value = as_ntp64(*tr);
    if (tr->role == static_cast<uint8_t>(mikey::TsRole::kStart) && value && now_ntp < *value) {
      return Verification("the ticket is not valid yet (TRs)");
    }
    if (tr->role == static_cast<uint8_t>(mikey::TsRole::kEnd) && value && now_ntp > *value) {
      return Verification("the ticket has expired (TRe)");
    }
  }
  return {};
}

// ---- SRTP policy ------------------------------------------------------------------

SpPayload SrtpAesCm128HmacSha1_80Policy(uint8_t policy_no) {
  SpPayload sp;
  sp.policy_no = policy_no;
  sp.prot_type = kProtSrtp;
  for (const auto& p : kAesCm128HmacSha1_80) sp.params.push_back(SpParam{p.type, Bytes{p.value}});
  return sp;
}

bool IsAcceptableSrtpPolicy(const SpPayload& policy) {
  if (policy.prot_type != kProtSrtp) return false;
  for (const SpParam& param : policy.params) {
    for (const auto& want : kAesCm128HmacSha1_80) {
      if (param.type != want.type) continue;
      // Values are unsigned integers of any width (RFC 3830 §6.10: "Policy param length").
      if (param.value.empty()) return false;
      uint64_t v = 0;
      for (uint8_t b : param.value) {
        if (v > (UINT64_MAX >> 8)) return false;
        v = (v << 8) | b;
      }
      if (v != want.value) return false;
    }
    // Parameters outside the table (key derivation rate 6, FEC order 9) are
    // not part of the transform: key derivation rate 0 and any FEC order work.
    if (param.type == 6) {
      for (uint8_t b : param.value) {
        if (b != 0) return false;  // rekeying by key derivation rate is not supported
      }
    }
  }
  return true;
}

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

  const bool send_randrr = params.send_randrr.value_or(Has(flags, mikey::kFlagG));
  std::optional<Bytes> randrr;
  if (send_randrr) {
    if (params.randrr) {
      if (params.randrr->empty() || params.randrr->size() > kMaxRandBytes) return Invalid("RANDRr must be 1-255 bytes");
      randrr = *params.randrr;
    } else {
      size_t longest = resolved.mpki.size();
      if (resolved.mpkr_forked) longest = std::max(longest, resolved.mpkr_forked->size());
      for (const auto& k : resolved.session_keys) longest = std::max(longest, k.key.size());
      auto r = RandomBytes(provider, std::clamp(longest, kMinRandBytes, kMaxRandBytes));
      if (!r.ok()) return std::move(r).error();
      randrr = std::move(*r);
    }
  }

  // Reading 11: complete the map.
  const std::vector<SpPayload> init_sps = SpsOf(init);
  std::vector<SpPayload> resp_sps;
  std::optional<uint8_t> our_policy;
  auto policy_for_new = [&]() -> uint8_t {
    if (!our_policy) {
      our_policy = LowestUnusedPolicyNo(init_sps);
      resp_sps.push_back(SrtpAesCm128HmacSha1_80Policy(*our_policy));
    }
    return *our_policy;
  };
  Bytes default_spi;
  if (!resolved.session_keys.empty()) default_spi = resolved.session_keys.front().kv.spi;
  // ReadTransferInit admitted only GENERIC-ID and Empty (reading 17).
  std::vector<GenericIdEntry> map;
  if (init.header.cs_id_map_type == static_cast<uint8_t>(mikey::CsIdMapType::kGenericId)) {
    map = init.header.generic_map;
  } else if (init.header.cs_id_map_type != static_cast<uint8_t>(mikey::CsIdMapType::kEmpty)) {
    return Err(UeErrorKind::kInternal, "CS ID map type not checked (reading 17)");
  }
  for (GenericIdEntry& cs : map) {
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
  for (uint32_t ssrc : params.add_ssrcs) {
    uint8_t next = 1;
    for (const auto& cs : map) next = std::max<uint8_t>(next, static_cast<uint8_t>(cs.cs_id + 1));
    if (next == 0 || map.size() >= 255) return Invalid("no CS ID left for an added crypto session");
    GenericIdEntry cs;
    cs.cs_id = next;
    cs.prot_type = kProtSrtp;
    cs.policies = {policy_for_new()};
    cs.session_data = SsrcBytes(ssrc);
    cs.spi = default_spi;
    map.push_back(std::move(cs));
  }
  for (const auto& cs : map) {
    if (cs.spi.empty()) return Invalid("the resolved session keys carry no SPI to name in the CS map");
  }

  TransferResp out;
  Message& m = out.message;
  m.header.version = init.header.version;
  m.header.data_type = static_cast<uint8_t>(DataType::kTransferResp);
  m.header.v = false;
  m.header.prf_func = init.header.prf_func;
  m.header.csb_id = init.header.csb_id;
  if (map.empty() && init.header.cs_id_map_type == static_cast<uint8_t>(mikey::CsIdMapType::kEmpty)) {
    m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kEmpty);
    m.header.cs_count = 0;
  } else {
    m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kGenericId);
    m.header.cs_count = static_cast<uint8_t>(map.size());
    m.header.generic_map = map;
  }
  m.payloads.emplace_back(*t);
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
  for (const auto& sp : resp_sps) m.payloads.emplace_back(sp);
  m.payloads.emplace_back(VPayload{mac_alg, {}});
  auto composition = mikey::CheckComposition(m);
  if (!composition.ok()) return Invalid("TRANSFER_RESP would not be well formed: " + composition.error().ToString());

  // Reading 13: MPKr' or MPKi, 0x02, RANDRi, RANDRr iff G.
  const SecretBytes& mpk = forking ? *resolved.mpkr_forked : resolved.mpki;
  const std::optional<ByteSpan> label_randrr =
      (Has(flags, mikey::kFlagG) && randrr) ? std::optional<ByteSpan>(*randrr) : std::nullopt;
  auto keys = TransferKeys(provider, mpk, init.header.prf_func, crypto::Direction::kResponse, init.header.csb_id,
                           view->randri->rand, label_randrr, mac_alg);
  if (!keys.ok()) return std::move(keys).error();
  auto auth = Import(provider, keys->auth_key);
  if (!auth.ok()) return std::move(auth).error();
  const ByteSpan appended[] = {transfer_init};
  auto sealed = crypto::SealWithV(provider, m, **auth, appended);
  if (!sealed.ok()) return FromStatus(sealed.error());
  auto& v = std::get<VPayload>(m.payloads.back());
  const size_t mac_len = mikey::MacLength(static_cast<mikey::MacAlg>(mac_alg));
  v.mac.assign(sealed->end() - static_cast<std::ptrdiff_t>(mac_len), sealed->end());
  out.bytes = std::move(*sealed);

  TransferSession& s = out.session;
  s.csb_id = init.header.csb_id;
  s.prf_func = init.header.prf_func;
  s.ticket_flags = flags;
  s.crypto_sessions = std::move(map);
  s.policies = init_sps;
  s.policies.insert(s.policies.begin(), resp_sps.begin(), resp_sps.end());  // the Responder's first
  s.randri = view->randri->rand;
  if (Has(flags, mikey::kFlagG)) s.randrr = randrr;
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
    // RFC 6043 §5.4: an Error's V uses the key of the message in error.
    auto keys = TransferKeys(provider, grant.mpki, req.prf_func, crypto::Direction::kInitial, req.csb_id,
                             sent.randri, std::nullopt, init_v->auth_alg);
    if (!keys.ok()) return std::move(keys).error();
    auto report = ParseErrorMessage(provider, response, ErrorAuthKey{&keys->auth_key, init_v->auth_alg});
    if (!report.ok()) return std::move(report).error();
    return ErrorFromReport(*report);
  }
  if (auto raw = CheckTransferMapTypeBytes(response, DataType::kTransferResp); !raw.ok()) {
    return std::move(raw).error();
  }
  std::vector<mikey::PayloadExtent> extents;
  auto decoded = DecodeWithExtents(response, extents, "TRANSFER_RESP");
  if (!decoded.ok()) return std::move(decoded).error();
  const Message& m = *decoded;
  const CommonHeader& h = m.header;
  if (h.data_type != static_cast<uint8_t>(DataType::kTransferResp)) return Verification("expected TRANSFER_RESP");
  if (auto map = CheckTransferMapType(h.cs_id_map_type, "TRANSFER_RESP"); !map.ok()) return std::move(map).error();
  // RFC 6043 §4.2.2.3: version, PRF func and CSB ID identical; V ignored.
  if (h.version != req.version) return Verification("HDR version differs from the TRANSFER_INIT's");
  if (h.prf_func != req.prf_func) return Verification("HDR PRF func differs from the TRANSFER_INIT's");
  if (h.csb_id != req.csb_id) return Verification("HDR CSB ID differs from the TRANSFER_INIT's");
  const uint16_t flags = grant.ticket.policy.flags;
  const bool forking = Has(flags, mikey::kFlagI);
  const bool g = Has(flags, mikey::kFlagG);
  if (!Has(flags, mikey::kFlagF)) {
    // Accepting one anyway is harmless for the keys (G = 0), but the
    // Responder did not follow the ticket: refuse rather than guess.
    return Verification("a TRANSFER_RESP arrived although the ticket's F flag is 0");
  }
  const RandrPayload* randrr = FindRandr(m, mikey::RandRole::kResponder);
  if (g && randrr == nullptr) return Verification("the ticket's G flag is set but TRANSFER_RESP lacks RANDRr");
  const IdrPayload* idrr = FindIdr(m, mikey::IdRole::kResponder);
  const RandrPayload* randrkms = FindRandr(m, mikey::RandRole::kKms);
  if (forking && (idrr == nullptr || randrkms == nullptr)) {
    return Verification("the ticket uses key forking but TRANSFER_RESP lacks IDRr or RANDRkms");
  }
  if (Find<mikey::KemacPayload>(m) != nullptr) {
    return Verification("TRANSFER_RESP carries a KEMAC (responder-supplied keys are not supported)");
  }
  const auto* v = std::get_if<VPayload>(&m.payloads.back());
  if (v == nullptr || v->auth_alg == static_cast<uint8_t>(mikey::MacAlg::kNull)) {
    return Verification("TRANSFER_RESP must end with a V payload with an HMAC");
  }

  // Reading 14: fork MPKr and the TGKs with the TRANSFER_RESP's modifier.
  SecretBytes mpk = grant.mpki;
  std::vector<KeyDataPayload> keys = grant.session_keys;
  if (forking) {
    if (!grant.mpkr || grant.mpkr->empty()) return Invalid("the grant has no MPKr for a forking ticket");
    auto mpkr = Fork(provider, grant.ticket.policy.prf_func, *grant.mpkr, crypto::ForkedKeyType::kMpkr, idrr->data,
                     randrkms->rand);
    if (!mpkr.ok()) return std::move(mpkr).error();
    mpk = std::move(*mpkr);
    for (KeyDataPayload& k : keys) {
      if (!IsTgk(k.key_type)) continue;  // TEK, GTGK: never forked (§5.1.1)
      auto tgk = Fork(provider, grant.ticket.policy.prf_func, k.key, crypto::ForkedKeyType::kTgk, idrr->data,
                      randrkms->rand);
      if (!tgk.ok()) return std::move(tgk).error();
      k.key = std::move(*tgk);
    }
  }
  const std::optional<ByteSpan> label_randrr = g ? std::optional<ByteSpan>(randrr->rand) : std::nullopt;
  auto mkeys = TransferKeys(provider, mpk, h.prf_func, crypto::Direction::kResponse, h.csb_id, sent.randri,
                            label_randrr, v->auth_alg);
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

  // Reading 10/14: the completed map.
  const std::vector<SpPayload> init_sps = SpsOf(sent.message);
  const std::vector<SpPayload> resp_sps = SpsOf(m);
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

  TransferSession s;
  s.csb_id = h.csb_id;
  s.prf_func = h.prf_func;
  s.ticket_flags = flags;
  s.crypto_sessions = h.generic_map;
  s.policies = resp_sps;
  s.policies.insert(s.policies.end(), init_sps.begin(), init_sps.end());
  s.randri = sent.randri;
  if (g) s.randrr = randrr->rand;
  s.session_keys = std::move(keys);
  if (idrr != nullptr) s.responder = *idrr;
  if (randrkms != nullptr) s.randrkms = randrkms->rand;
  s.last_message_key = std::move(mpk);
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

// ---- Per-CS SRTP keys ------------------------------------------------------------

UeResult<std::vector<SrtpSessionKeys>> DeriveSrtpKeys(crypto::CryptoProvider& provider,
                                                      const TransferSession& session) {
  if (!mikey::IsKnownPrf(session.prf_func)) return Invalid("unknown PRF func");
  if (session.session_keys.empty()) return Invalid("no session key (TEK / TGK / GTGK) in the bundle");
  const bool h = Has(session.ticket_flags, mikey::kFlagH);
  const bool g = Has(session.ticket_flags, mikey::kFlagG);
  if (g && !session.randrr) return Invalid("the G flag is set but the bundle has no RANDRr");
  const Bytes empty;
  std::vector<SrtpSessionKeys> out;
  for (const GenericIdEntry& cs : session.crypto_sessions) {
    const std::string name = "crypto session " + std::to_string(cs.cs_id);
    if (cs.prot_type != kProtSrtp) return Invalid(name + " is not SRTP");
    const KeyDataPayload* key = &session.session_keys.front();
    if (!cs.spi.empty()) {
      auto it = std::find_if(session.session_keys.begin(), session.session_keys.end(), [&](const KeyDataPayload& k) {
        return k.kv.kv_type == static_cast<uint8_t>(mikey::KvType::kSpi) && k.kv.spi == cs.spi;
      });
      if (it == session.session_keys.end()) return Invalid(name + " names an SPI that no session key carries");
      key = &*it;
    }
    SrtpSessionKeys k;
    k.cs_id = cs.cs_id;
    k.ssrc = SsrcOf(cs);
    const auto type = static_cast<mikey::KeyType>(key->key_type);
    if (type == mikey::KeyType::kTek || type == mikey::KeyType::kTekSalt) {
      // Reading 16: a delivered TEK is the master key.
      if (key->key.size() != kSrtpMasterKeyBytes) return Invalid(name + ": the TEK is not 16 bytes");
      if (!key->salt || key->salt->size() != crypto::kSrtpMasterSaltBytes) {
        return Invalid(name + ": a TEK without a 14-byte salt gives no SRTP master salt");
      }
      k.master_key = key->key;
      k.master_salt = *key->salt;
    } else {
      auto ctx = crypto::TicketTekContextFromFlags(cs.cs_id, h, g, session.randri,
                                                   session.randrr ? ByteSpan(*session.randrr) : ByteSpan(empty));
      if (!ctx.ok()) return FromStatus(ctx.error());
      auto tgk = Import(provider, key->key);
      if (!tgk.ok()) return std::move(tgk).error();
      std::optional<ByteSpan> salt;
      if (key->salt) salt = ByteSpan(*key->salt);
      auto master = crypto::DeriveSrtpMasterKeys(provider, static_cast<mikey::PrfFunc>(session.prf_func), **tgk,
                                                 *ctx, kSrtpMasterKeyBytes, salt);
      if (!master.ok()) return FromStatus(master.error());
      k.master_key = std::move(master->master_key);
      k.master_salt = std::move(master->master_salt);
    }
    out.push_back(std::move(k));
  }
  return out;
}

Result<void, UeError> CheckTransferInitEarly(const mikey::Message& transfer_init,
                                             const std::vector<Bytes>& acceptable, uint64_t now_ntp) {
  const auto refuse = [](std::string why) {
    UeError e;
    e.kind = UeErrorKind::kVerification;
    e.detail = "TRANSFER_INIT rejected before resolving: " + std::move(why);
    return e;
  };
  const mikey::TicketPayload* ticket = nullptr;
  for (const auto& p : transfer_init.payloads) {
    if (const auto* t = std::get_if<mikey::TicketPayload>(&p)) ticket = t;
  }
  if (auto map = CheckTransferMapType(transfer_init.header.cs_id_map_type, "the TRANSFER_INIT"); !map.ok()) {
    return refuse(map.error().detail);
  }
  if (ticket == nullptr) return refuse("no TICKET payload");
  const auto& policy = ticket->policy;
  if ((policy.flags & mikey::kFlagO) == 0) return refuse("the O flag is 0 (the ticket needs processing beyond RFC 6043)");
  if ((policy.flags & mikey::kFlagI) != 0 && !ticket->initiator_data) {
    return refuse("the I flag is set but the TICKET has no Initiator Data");
  }
  if (auto period = CheckTicketValidityPeriod(policy, now_ntp); !period.ok()) return refuse(period.error().detail);
  bool listed = false;
  for (const auto& item : policy.tp_data) {
    if (const auto* idr = std::get_if<mikey::IdrPayload>(&item)) {
      if (idr->role != static_cast<uint8_t>(mikey::IdRole::kResponder)) continue;
      for (const auto& id : acceptable) listed = listed || idr->data == id;
    }
  }
  if (!listed) return refuse("none of this end-point's identities is a responder (IDRr) of the ticket");
  return {};
}

}  // namespace tkms::ue
