#include "tools/ue/ticket_client.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "firmware/mikey/composition.h"
#include "firmware/mikey/coverage.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/kemac_cipher.h"
#include "firmware/mikey/crypto/mac.h"
#include "firmware/mikey/crypto/protect.h"
#include "tools/ue/transfer.h"

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

namespace {

constexpr uint64_t kNtpUnixOffset = 2208988800ull;  // seconds from 1900-01-01 to 1970-01-01
constexpr size_t kMinRandBytes = 16;                // RFC 3830 §6.11: at least 128 bits
constexpr size_t kMaxRandBytes = 255;               // RAND length is 8 bits

UeError Err(UeErrorKind kind, std::string detail) {
  UeError e;
  e.kind = kind;
  e.detail = std::move(detail);
  return e;
}
UeError Invalid(std::string detail) { return Err(UeErrorKind::kInvalidArgument, std::move(detail)); }
UeError Verification(std::string detail) { return Err(UeErrorKind::kVerification, std::move(detail)); }

// Provider and codec failures while building: the caller's inputs, or a fault.
UeError FromStatus(const Status& s, UeErrorKind otherwise = UeErrorKind::kInternal) {
  return Err(s.code() == StatusCode::kInvalidArgument ? UeErrorKind::kInvalidArgument : otherwise,
             s.ToString());
}

std::string Name(uint8_t data_type) {
  return std::string(mikey::DataTypeName(data_type)) + " (" + std::to_string(data_type) + ")";
}

UeResult<Bytes> RandomBytes(crypto::CryptoProvider& provider, size_t n) {
  Bytes out(n);
  Status s = provider.Random(out);
  if (!s.ok()) return FromStatus(s);
  return out;
}

UeResult<uint32_t> RandomU32(crypto::CryptoProvider& provider) {
  auto b = RandomBytes(provider, 4);
  if (!b.ok()) return std::move(b).error();
  return (uint32_t{(*b)[0]} << 24) | (uint32_t{(*b)[1]} << 16) | (uint32_t{(*b)[2]} << 8) |
         uint32_t{(*b)[3]};
}

UeResult<Bytes> RandOrRandom(crypto::CryptoProvider& provider, const std::optional<Bytes>& given,
                             size_t default_length, const char* what) {
  if (given.has_value()) {
    if (given->empty() || given->size() > kMaxRandBytes) {
      return Invalid(std::string(what) + " must be 1-255 bytes");
    }
    return *given;
  }
  return RandomBytes(provider, std::clamp(default_length, kMinRandBytes, kMaxRandBytes));
}

// The CSB ID the caller chose, or a random one (RFC 3830 §6.1).
UeResult<uint32_t> CsbIdOrRandom(crypto::CryptoProvider& provider, std::optional<uint32_t> chosen) {
  if (chosen) return *chosen;
  return RandomU32(provider);
}

UeResult<TPayload> MakeTimestamp(const TimestampSpec& spec) {
  if (!mikey::IsKnownTsType(spec.ts_type)) return Invalid("unknown timestamp type");
  const auto type = static_cast<mikey::TsType>(spec.ts_type);
  TPayload t;
  t.ts_type = spec.ts_type;
  if (spec.value.has_value()) {
    t.value = *spec.value;
  } else if (type == mikey::TsType::kCounter) {
    return Invalid("a COUNTER timestamp needs an explicit value");
  } else if (type == mikey::TsType::kNtpUtc32) {
    t.value = NtpUtcNow() >> 32;
  } else {
    t.value = NtpUtcNow();
  }
  if (mikey::TsLength(type) == 4 && t.value > 0xFFFFFFFFull) {
    return Invalid("timestamp value does not fit a 32-bit timestamp type");
  }
  return t;
}

UeResult<uint64_t> Ts64(const TPayload& t) {
  auto v = crypto::TimestampForIv(static_cast<mikey::TsType>(t.ts_type), t.value);
  if (!v.ok()) return Invalid("timestamp cannot enter an IV: " + v.error().message());
  return *v;
}

Result<void, UeError> CheckAlgorithms(uint8_t prf_func, uint8_t mac_alg) {
  if (!mikey::IsKnownPrf(prf_func)) return Invalid("unknown PRF func");
  if (!mikey::IsKnownMacAlg(mac_alg) || mac_alg == static_cast<uint8_t>(mikey::MacAlg::kNull)) {
    return Invalid("the V payload needs an HMAC algorithm (1 or 2)");
  }
  return {};
}

// What every message a UE sends in a PSK exchange starts with: its CSB ID,
// its timestamp and its own RAND (RANDRi / RANDRr), each the caller's or a
// fresh one.
struct MessageOpening {
  uint32_t csb_id = 0;
  TPayload t;
  Bytes rand;
};

UeResult<MessageOpening> OpenMessage(crypto::CryptoProvider& provider, std::optional<uint32_t> csb_id,
                                     const TimestampSpec& timestamp, const std::optional<Bytes>& rand,
                                     size_t rand_length, const char* rand_name) {
  MessageOpening o;
  auto chosen_csb_id = CsbIdOrRandom(provider, csb_id);
  if (!chosen_csb_id.ok()) return std::move(chosen_csb_id).error();
  o.csb_id = *chosen_csb_id;
  auto t = MakeTimestamp(timestamp);
  if (!t.ok()) return std::move(t).error();
  o.t = *t;
  auto r = RandOrRandom(provider, rand, rand_length, rand_name);
  if (!r.ok()) return std::move(r).error();
  o.rand = std::move(*r);
  return o;
}

UeResult<crypto::SecretKeyPtr> Import(crypto::CryptoProvider& provider, const SecretBytes& bytes) {
  auto key = provider.ImportTransientKey(bytes);
  if (!key.ok()) return FromStatus(key.error());
  return std::move(*key);
}

// RFC 6043 §5.1.2 message keys from `inkey`.
UeResult<crypto::MessageKeys> MessageKeysFrom(crypto::CryptoProvider& provider,
                                              const SecretBytes& inkey, uint8_t prf,
                                              crypto::Direction direction, uint32_t csb_id,
                                              std::optional<ByteSpan> randri,
                                              std::optional<ByteSpan> randrr, uint8_t encr_alg,
                                              uint8_t mac_alg) {
  auto key = Import(provider, inkey);
  if (!key.ok()) return std::move(key).error();
  auto keys = crypto::DeriveMessageKeys(provider, static_cast<mikey::PrfFunc>(prf), **key,
                                        direction, csb_id, randri, randrr,
                                        static_cast<mikey::EncrAlg>(encr_alg),
                                        static_cast<mikey::MacAlg>(mac_alg));
  if (!keys.ok()) return FromStatus(keys.error());
  return std::move(*keys);
}

IdrPayload Idr(mikey::IdRole role, uint8_t id_type, const Bytes& data) {
  return IdrPayload{static_cast<uint8_t>(role), id_type, data};
}

CommonHeader TicketHeader(DataType type, bool v, uint8_t prf, uint32_t csb_id) {
  CommonHeader h;
  h.data_type = static_cast<uint8_t>(type);
  h.v = v;
  h.prf_func = prf;
  h.csb_id = csb_id;
  h.cs_count = 0;
  h.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kEmpty);
  return h;
}

// Seals `m` (last payload V) with `auth_key`; fills m's V MAC from the bytes.
UeResult<Bytes> Seal(crypto::CryptoProvider& provider, Message& m, const SecretBytes& auth_key,
                     std::span<const ByteSpan> appended) {
  auto composition = mikey::CheckComposition(m);
  if (!composition.ok()) return Invalid("message would not be well formed: " + composition.error().ToString());
  auto key = Import(provider, auth_key);
  if (!key.ok()) return std::move(key).error();
  auto sealed = crypto::SealWithV(provider, m, **key, appended);
  if (!sealed.ok()) return FromStatus(sealed.error());
  auto& v = std::get<VPayload>(m.payloads.back());
  const size_t mac_len = mikey::MacLength(static_cast<mikey::MacAlg>(v.auth_alg));
  v.mac.assign(sealed->end() - static_cast<std::ptrdiff_t>(mac_len), sealed->end());
  return std::move(*sealed);
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
    if (const auto* x = std::get_if<IdrPayload>(&p); x != nullptr && x->role == static_cast<uint8_t>(role)) {
      return x;
    }
  }
  return nullptr;
}

const RandrPayload* FindRandr(const Message& m, mikey::RandRole role) {
  for (const auto& p : m.payloads) {
    if (const auto* x = std::get_if<RandrPayload>(&p); x != nullptr && x->role == static_cast<uint8_t>(role)) {
      return x;
    }
  }
  return nullptr;
}

// What checking a REQUEST_RESP / RESOLVE_RESP needs from its request.
struct ResponseContext {
  DataType expected;
  ByteSpan initial;                   // the complete initial message
  const CommonHeader* initial_header;
  const SecretBytes* psk;
  std::optional<ByteSpan> randri;
  std::optional<ByteSpan> randrr;
  const Bytes* kms_identity;
  uint64_t request_ts64;
  const ResponseChecks* checks;
  ErrorAuthKey error_key;
};

struct OpenedResponse {
  Message message;
  std::vector<KeyDataPayload> keys;
};

// Steps common to REQUEST_RESP and RESOLVE_RESP: Error messages, decoding,
// header binding, IDRkms, V over RESP || INIT, KEMAC decryption.
UeResult<OpenedResponse> OpenResponse(crypto::CryptoProvider& provider, ByteSpan bytes,
                                      const ResponseContext& ctx) {
  if (bytes.size() >= 2 && bytes[1] == static_cast<uint8_t>(DataType::kError)) {
    auto report = ParseErrorMessage(provider, bytes, ctx.error_key);
    if (!report.ok()) return std::move(report).error();
    return ErrorFromReport(*report);
  }
  std::vector<mikey::PayloadExtent> extents;
  auto decoded = mikey::Decode(bytes, {}, extents);
  if (!decoded.ok()) {
    UeError e = Err(UeErrorKind::kBadResponse, "undecodable MIKEY message: " + decoded.error().ToString());
    e.codec_rule = decoded.error().rule;
    return e;
  }
  Message& m = *decoded;
  const CommonHeader& h = m.header;
  const CommonHeader& req = *ctx.initial_header;
  if (h.data_type != static_cast<uint8_t>(ctx.expected)) {
    return Verification("expected " + Name(static_cast<uint8_t>(ctx.expected)) + ", received " +
                        Name(h.data_type));
  }
  // RFC 6043 §4.2.1.5 / §4.2.3.5: version, PRF func, CSB ID, #CS and CS ID map
  // type identical to the initial message's; the V flag is ignored.
  if (h.version != req.version) return Verification("HDR version differs from the request's");
  if (h.prf_func != req.prf_func) return Verification("HDR PRF func differs from the request's");
  if (h.csb_id != req.csb_id) return Verification("HDR CSB ID differs from the request's");
  if (h.cs_count != req.cs_count || h.cs_id_map_type != req.cs_id_map_type) {
    return Verification("HDR #CS / CS ID map type differ from the request's");
  }
  if (const IdrPayload* kms = FindIdr(m, mikey::IdRole::kKms);
      kms != nullptr && !ctx.kms_identity->empty() && kms->data != *ctx.kms_identity) {
    return Verification("IDRkms of the answer is not the expected KMS identity");
  }
  const auto* t = std::get_if<TPayload>(&m.payloads.front());
  const KemacPayload* kemac = Find<KemacPayload>(m);
  const auto* v = std::get_if<VPayload>(&m.payloads.back());
  if (t == nullptr || kemac == nullptr || v == nullptr) {
    return Verification("answer lacks T, KEMAC or V");  // composition makes this unreachable
  }
  if (v->auth_alg == static_cast<uint8_t>(mikey::MacAlg::kNull)) {
    return Verification("the V payload uses the NULL MAC");
  }
  auto keys = MessageKeysFrom(provider, *ctx.psk, h.prf_func, crypto::Direction::kResponse, h.csb_id,
                              ctx.randri, ctx.randrr, kemac->encr_alg, v->auth_alg);
  if (!keys.ok()) return std::move(keys).error();
  auto auth = Import(provider, keys->auth_key);
  if (!auth.ok()) return std::move(auth).error();
  const ByteSpan appended[] = {ctx.initial};
  Status verified = crypto::VerifyV(provider, bytes, m, extents, **auth, appended);
  if (!verified.ok()) {
    if (verified.code() == StatusCode::kPermissionDenied || verified.code() == StatusCode::kInvalidArgument) {
      return Verification(Name(h.data_type) + ": V does not verify (" + verified.message() + ")");
    }
    return FromStatus(verified);
  }
  // The KEMAC (RFC 6043 §4.2.1.5, §4.2.3.5): NULL MAC, keys from the PSK.
  if (kemac->mac_alg != static_cast<uint8_t>(mikey::MacAlg::kNull)) {
    return Verification("the KEMAC must use the NULL MAC (RFC 6043 §4.2.1.5 / §4.2.3.5)");
  }
  if (kemac->encr_alg == static_cast<uint8_t>(mikey::EncrAlg::kNull) &&
      !ctx.checks->allow_null_encryption) {
    return Verification("the KEMAC uses NULL encryption (refused: keys would travel in clear)");
  }
  uint64_t ts64 = ctx.request_ts64;
  if (ctx.checks->iv_timestamp == IvTimestamp::kResponseT) {
    auto response_ts = Ts64(*t);
    if (!response_ts.ok()) return Verification("the answer's T cannot enter the KEMAC IV");
    ts64 = *response_ts;
  }
  auto opened = crypto::OpenKemac(provider, *kemac, *keys, h.csb_id, ts64);
  if (!opened.ok()) {
    if (opened.error().code() == StatusCode::kInternal) return FromStatus(opened.error());
    return Verification("KEMAC: " + opened.error().message());
  }
  return OpenedResponse{std::move(m), std::move(*opened)};
}

// Splits MPKi, [MPKr / MPKr'] from the session keys, checking the order of
// RFC 6043 §4.2.1.5 / §4.2.3.5 and the SPI rule of §6.2.1.
Result<void, UeError> SplitKeys(std::vector<KeyDataPayload>& keys, size_t mpk_count,
                                bool require_spi, std::vector<KeyDataPayload>& mpks,
                                std::vector<KeyDataPayload>& sessions) {
  constexpr auto kMpk = static_cast<uint8_t>(mikey::KeyType::kMpk);
  if (keys.size() < mpk_count) {
    return Verification("the KEMAC carries " + std::to_string(keys.size()) + " keys; expected " +
                        std::to_string(mpk_count) + " MPK(s) first");
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    const KeyDataPayload& k = keys[i];
    const bool is_mpk = k.key_type == kMpk;
    if (i < mpk_count && !is_mpk) {
      return Verification("KEMAC key #" + std::to_string(i + 1) + " is " +
                          std::string(mikey::KeyTypeName(k.key_type)) + ", expected MPK (type 6)");
    }
    if (i >= mpk_count && is_mpk) {
      return Verification("KEMAC key #" + std::to_string(i + 1) +
                          " is an MPK where only TEK/TGK/GTGK may follow (the ticket policy's I flag "
                          "decides the number of MPKs)");
    }
    if (k.key.empty()) return Verification("KEMAC key #" + std::to_string(i + 1) + " is empty");
    if (require_spi && (k.kv.kv_type != static_cast<uint8_t>(mikey::KvType::kSpi) || k.kv.spi.empty())) {
      return Verification("KEMAC key #" + std::to_string(i + 1) +
                          " carries no SPI/MKI (RFC 6043 §6.2.1)");
    }
  }
  mpks.assign(std::make_move_iterator(keys.begin()),
              std::make_move_iterator(keys.begin() + static_cast<std::ptrdiff_t>(mpk_count)));
  sessions.assign(std::make_move_iterator(keys.begin() + static_cast<std::ptrdiff_t>(mpk_count)),
                  std::make_move_iterator(keys.end()));
  return {};
}

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
  if (kind == UeErrorKind::kHttpStatus) out += " " + std::to_string(http_status);
  if (!detail.empty()) out += ": " + detail;
  return out;
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
  auto opening = OpenMessage(provider, params.csb_id, params.timestamp, params.randri, params.psk.size(), "RANDRi");
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

// ---- Ticket Transfer -------------------------------------------------------------------

UeResult<TransferInit> BuildTransferInit(crypto::CryptoProvider& provider, const TicketGrant& grant,
                                         const TransferInitParams& params) {
  if (auto ok = CheckAlgorithms(params.prf_func, params.mac_alg); !ok.ok()) return std::move(ok).error();
  if (grant.mpki.empty()) return Invalid("the grant has no MPKi");
  const uint16_t flags = grant.ticket.policy.flags;
  const bool forking = (flags & mikey::kFlagI) != 0;
  if (forking && (!grant.mpkr.has_value() || grant.mpkr->empty())) {
    return Invalid("the ticket uses key forking (I flag) but the grant has no MPKr");
  }
  size_t longest = grant.mpki.size();
  if (grant.mpkr) longest = std::max(longest, grant.mpkr->size());
  for (const auto& k : grant.session_keys) longest = std::max(longest, k.key.size());
  auto opening = OpenMessage(provider, params.csb_id, params.timestamp, params.randri, longest, "RANDRi");
  if (!opening.ok()) return std::move(opening).error();
  const uint32_t csb_id = opening->csb_id;
  const TPayload* t = &opening->t;
  Bytes* randri = &opening->rand;

  TransferInit out;
  Message& m = out.message;
  // RFC 6043 §4.2.2.1: new CSB ID, V flag = the F flag of the ticket policy.
  m.header = TicketHeader(DataType::kTransferInit, (flags & mikey::kFlagF) != 0, params.prf_func, csb_id);
  if (params.generic_id_map) {
    auto ssrc = RandomBytes(provider, 4);
    if (!ssrc.ok()) return std::move(ssrc).error();
    mikey::GenericIdEntry cs;
    cs.cs_id = 1;
    cs.prot_type = 0;  // SRTP
    cs.s_flag = false;
    cs.session_data = std::move(*ssrc);  // SSRC only (S = 0); #P = 0: the Responder chooses
    m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kGenericId);
    m.header.generic_map.push_back(std::move(cs));
    m.header.cs_count = 1;
  }
  m.payloads.emplace_back(*t);
  m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(mikey::RandRole::kInitiator), *randri});
  if (params.initiator.send) {
    m.payloads.emplace_back(Idr(mikey::IdRole::kInitiator, params.initiator.id_type, params.initiator.id));
  }
  if (params.responder.send) {
    m.payloads.emplace_back(Idr(mikey::IdRole::kResponder, params.responder.id_type, params.responder.id));
  }
  TicketPayload ticket = grant.ticket;
  const size_t mac_len = mikey::MacLength(static_cast<mikey::MacAlg>(params.mac_alg));
  if (forking) {
    // Placeholders: the V MAC does not cover Initiator Data (RFC 6043 §5.5).
    ticket.initiator_data = mikey::InitiatorData{VPayload{params.mac_alg, Bytes(mac_len, 0)},
                                                 VPayload{params.mac_alg, Bytes(mac_len, 0)}};
  } else {
    ticket.initiator_data.reset();
  }
  const size_t ticket_index = m.payloads.size();
  m.payloads.emplace_back(ticket);
  m.payloads.emplace_back(VPayload{params.mac_alg, {}});

  // RFC 6043 §5.1.2: MPKi, 0x01, RANDRi, no RANDRr.
  auto keys = MessageKeysFrom(provider, grant.mpki, params.prf_func, crypto::Direction::kInitial, csb_id,
                              ByteSpan(*randri), std::nullopt,
                              static_cast<uint8_t>(mikey::EncrAlg::kNull), params.mac_alg);
  if (!keys.ok()) return std::move(keys).error();
  // RFC 6043 §5.5: TRANSFER_INIT (without Initiator Data) || Identity_i || Identity_r.
  const ByteSpan ids[] = {params.initiator.id, params.responder.id};
  auto sealed = Seal(provider, m, keys->auth_key, ids);
  if (!sealed.ok()) return std::move(sealed).error();

  if (forking) {
    // Initiator Data = Vi (the V payload just computed), Vr keyed from MPKr.
    mikey::InitiatorData data;
    data.vi = std::get<VPayload>(m.payloads.back());
    data.vr = VPayload{params.mac_alg, {}};
    auto input = mikey::InitiatorDataMacInput(data);
    if (!input.ok()) return Invalid("Initiator Data: " + input.error().ToString());
    auto mpkr = Import(provider, *grant.mpkr);
    if (!mpkr.ok()) return std::move(mpkr).error();
    auto vr_key = crypto::DeriveInitiatorDataAuthKey(
        provider, static_cast<mikey::PrfFunc>(grant.ticket.policy.prf_func), **mpkr,
        static_cast<mikey::MacAlg>(params.mac_alg));
    if (!vr_key.ok()) return FromStatus(vr_key.error());
    auto vr_auth = Import(provider, *vr_key);
    if (!vr_auth.ok()) return std::move(vr_auth).error();
    const ByteSpan parts[] = {*input};
    auto vr_mac = crypto::ComputeMac(provider, static_cast<mikey::MacAlg>(params.mac_alg), **vr_auth, parts);
    if (!vr_mac.ok()) return FromStatus(vr_mac.error());
    data.vr.mac = std::move(*vr_mac);
    std::get<TicketPayload>(m.payloads[ticket_index]).initiator_data = std::move(data);
    auto encoded = mikey::Encode(m);
    if (!encoded.ok()) return Invalid("TRANSFER_INIT: " + encoded.error().ToString());
    out.bytes = std::move(*encoded);
  } else {
    out.bytes = std::move(*sealed);
  }
  out.ticket = std::get<TicketPayload>(m.payloads[ticket_index]);
  out.csb_id = csb_id;
  out.randri = std::move(*randri);
  return out;
}

// ---- Ticket Resolve --------------------------------------------------------------------

UeResult<ResolveInit> BuildResolveInitPsk(crypto::CryptoProvider& provider,
                                          const ResolveInitParams& params) {
  if (params.psk.empty()) return Invalid("the PSK is empty");
  if (auto ok = CheckAlgorithms(params.prf_func, params.mac_alg); !ok.ok()) return std::move(ok).error();
  auto opening = OpenMessage(provider, params.csb_id, params.timestamp, params.randrr, params.psk.size(), "RANDRr");
  if (!opening.ok()) return std::move(opening).error();
  const uint32_t csb_id = opening->csb_id;
  const TPayload* t = &opening->t;
  auto ts64 = Ts64(*t);
  if (!ts64.ok()) return std::move(ts64).error();
  Bytes* randrr = &opening->rand;

  ResolveInit out;
  Message& m = out.message;
  // RFC 6043 §4.2.3.1: V = 1, #CS = 0, Empty map.
  m.header = TicketHeader(DataType::kResolveInitPsk, /*v=*/true, params.prf_func, csb_id);
  m.payloads.emplace_back(*t);
  m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(mikey::RandRole::kResponder), *randrr});
  if (params.responder.send) {
    m.payloads.emplace_back(Idr(mikey::IdRole::kResponder, params.responder.id_type, params.responder.id));
  }
  if (params.kms.send) m.payloads.emplace_back(Idr(mikey::IdRole::kKms, params.kms.id_type, params.kms.id));
  m.payloads.emplace_back(params.ticket);
  if (params.psk_id) {
    m.payloads.emplace_back(Idr(mikey::IdRole::kPsk, static_cast<uint8_t>(mikey::IdType::kByteString),
                                *params.psk_id));
  }
  m.payloads.emplace_back(VPayload{params.mac_alg, {}});

  // RFC 6043 §5.1.2 (reading 2): PSK, 0x01, no RANDRi, RANDRr.
  auto keys = MessageKeysFrom(provider, params.psk, params.prf_func, crypto::Direction::kInitial, csb_id,
                              std::nullopt, ByteSpan(*randrr),
                              static_cast<uint8_t>(mikey::EncrAlg::kNull), params.mac_alg);
  if (!keys.ok()) return std::move(keys).error();
  // RFC 6043 §5.5: RESOLVE_INIT || Identity_r || Identity_kms.
  const ByteSpan ids[] = {params.responder.id, params.kms.id};
  auto sealed = Seal(provider, m, keys->auth_key, ids);
  if (!sealed.ok()) return std::move(sealed).error();

  out.bytes = std::move(*sealed);
  out.psk = params.psk;
  out.auth_key = std::move(keys->auth_key);
  out.mac_alg = params.mac_alg;
  out.prf_func = params.prf_func;
  out.csb_id = csb_id;
  out.randrr = std::move(*randrr);
  out.responder_identity = params.responder.id;
  out.kms_identity = params.kms.id;
  out.ts64 = *ts64;
  out.forking = (params.ticket.policy.flags & mikey::kFlagI) != 0;
  out.checks = params.checks;
  return out;
}

UeResult<ResolvedTicket> ParseResolveResp(crypto::CryptoProvider& provider, ByteSpan response,
                                          const ResolveInit& request) {
  ResponseContext ctx{DataType::kResolveResp,
                      request.bytes,
                      &request.message.header,
                      &request.psk,
                      std::nullopt,
                      ByteSpan(request.randrr),
                      &request.kms_identity,
                      request.ts64,
                      &request.checks,
                      ErrorAuthKey{&request.auth_key, request.mac_alg}};
  auto opened = OpenResponse(provider, response, ctx);
  if (!opened.ok()) return std::move(opened).error();
  Message& m = opened->message;
  ResolvedTicket out;
  const IdrPayload* idrr = FindIdr(m, mikey::IdRole::kResponder);
  const RandrPayload* randrkms = FindRandr(m, mikey::RandRole::kKms);
  if (request.forking && (idrr == nullptr || randrkms == nullptr)) {
    return Verification("the ticket uses key forking but RESOLVE_RESP lacks IDRr or RANDRkms "
                        "(RFC 6043 §4.2.3.5: the modifier SHALL be included)");
  }
  auto split = SplitKeys(opened->keys, request.forking ? 2 : 1, request.checks.require_key_spi,
                         out.mpk_keys, out.session_keys);
  if (!split.ok()) return std::move(split).error();
  out.mpki = out.mpk_keys[0].key;
  if (request.forking) out.mpkr_forked = out.mpk_keys[1].key;
  if (idrr != nullptr) out.responder = *idrr;
  if (randrkms != nullptr) out.randrkms = randrkms->rand;
  out.kms_timestamp = std::get<TPayload>(m.payloads.front());
  if (const IdrPayload* kms = FindIdr(m, mikey::IdRole::kKms)) out.kms_identity = kms->data;
  out.response.assign(response.begin(), response.end());
  return out;
}

Result<void, UeError> VerifyTransferInit(crypto::CryptoProvider& provider, ByteSpan transfer_init,
                                         const ResolvedTicket& resolved,
                                         const std::optional<Bytes>& identity_i,
                                         const std::optional<Bytes>& identity_r) {
  // transfer.h reading 17: no SRTP-ID (or undefined) CS ID map.
  if (auto map = CheckTransferMapTypeBytes(transfer_init, DataType::kTransferInit); !map.ok()) {
    return std::move(map).error();
  }
  std::vector<mikey::PayloadExtent> extents;
  auto decoded = mikey::Decode(transfer_init, {}, extents);
  if (!decoded.ok()) {
    UeError e = Err(UeErrorKind::kBadResponse, "undecodable TRANSFER_INIT: " + decoded.error().ToString());
    e.codec_rule = decoded.error().rule;
    return e;
  }
  const Message& m = *decoded;
  if (m.header.data_type != static_cast<uint8_t>(DataType::kTransferInit)) {
    return Verification("expected TRANSFER_INIT, received " + Name(m.header.data_type));
  }
  if (auto map = CheckTransferMapType(m.header.cs_id_map_type, "TRANSFER_INIT"); !map.ok()) {
    return std::move(map).error();
  }
  const RandrPayload* randri = FindRandr(m, mikey::RandRole::kInitiator);
  const TicketPayload* ticket = Find<TicketPayload>(m);
  const auto* v = std::get_if<VPayload>(&m.payloads.back());
  if (randri == nullptr || ticket == nullptr || v == nullptr) {
    return Verification("TRANSFER_INIT lacks RANDRi, TICKET or V (a CSB update?)");
  }
  if (v->auth_alg == static_cast<uint8_t>(mikey::MacAlg::kNull)) return Verification("V uses the NULL MAC");
  Bytes id_i, id_r;
  if (identity_i) id_i = *identity_i;
  else if (const IdrPayload* p = FindIdr(m, mikey::IdRole::kInitiator)) id_i = p->data;
  if (identity_r) id_r = *identity_r;
  else if (const IdrPayload* p = FindIdr(m, mikey::IdRole::kResponder)) id_r = p->data;
  auto keys = MessageKeysFrom(provider, resolved.mpki, m.header.prf_func, crypto::Direction::kInitial,
                              m.header.csb_id, ByteSpan(randri->rand), std::nullopt,
                              static_cast<uint8_t>(mikey::EncrAlg::kNull), v->auth_alg);
  if (!keys.ok()) return std::move(keys).error();
  auto auth = Import(provider, keys->auth_key);
  if (!auth.ok()) return std::move(auth).error();
  const ByteSpan ids[] = {id_i, id_r};
  Status verified = crypto::VerifyV(provider, transfer_init, m, extents, **auth, ids);
  if (!verified.ok()) return Verification("TRANSFER_INIT: V does not verify with MPKi (" + verified.message() + ")");
  if ((ticket->policy.flags & mikey::kFlagI) != 0) {
    // RFC 6043 §4.2.3.6: the V MAC must be identical to Vi's MAC.
    if (!ticket->initiator_data || ticket->initiator_data->vi.auth_alg != v->auth_alg ||
        !ConstantTimeEquals(ticket->initiator_data->vi.mac, v->mac)) {
      return Verification("TRANSFER_INIT: the V MAC differs from Vi in the Initiator Data");
    }
  }
  return {};
}

// ---- Error messages ----------------------------------------------------------------------

UeResult<MikeyErrorReport> ParseErrorMessage(crypto::CryptoProvider& provider, ByteSpan bytes,
                                             const ErrorAuthKey& key) {
  std::vector<mikey::PayloadExtent> extents;
  auto decoded = mikey::Decode(bytes, {}, extents);
  if (!decoded.ok()) {
    UeError e = Err(UeErrorKind::kBadResponse, "undecodable MIKEY message: " + decoded.error().ToString());
    e.codec_rule = decoded.error().rule;
    return e;
  }
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
