// The building blocks shared by the UE's message builders and checkers (see
// ue_internal.h; RFC 6043 §4.2, §5.1.2, §5.5, §12.1).
#include "tools/ue/ue_internal.h"

#include <algorithm>
#include <array>
#include <string>
#include <utility>

#include "firmware/base/big_endian.h"
#include "firmware/base/user_identity.h"
#include "firmware/mikey/composition.h"
#include "firmware/mikey/coverage.h"
#include "firmware/mikey/crypto/kemac_cipher.h"
#include "firmware/mikey/crypto/mac.h"
#include "firmware/mikey/crypto/protect.h"

namespace tkms::ue::internal {

using mikey::CommonHeader;
using mikey::DataType;
using mikey::IdrPayload;
using mikey::KemacPayload;
using mikey::KeyDataPayload;
using mikey::Message;
using mikey::RandrPayload;
using mikey::TPayload;
using mikey::VPayload;

namespace {

// The caller's RAND if it is long enough for `longest_key` (reading 4), or a
// fresh one of RandLengthFor(fresh_for_key) bytes.
UeResult<Bytes> RandOrRandom(crypto::CryptoProvider& provider, const std::optional<Bytes>& given,
                             size_t longest_key, size_t fresh_for_key, const char* what) {
  if (!given.has_value()) return RandomBytes(provider, RandLengthFor(std::max(longest_key, fresh_for_key)));
  if (given->empty() || given->size() > kMaxRandBytes) {
    return Invalid(std::string(what) + " must be 1-255 bytes");
  }
  if (given->size() < std::min(longest_key, kMaxRandBytes)) {
    return Invalid(std::string(what) + " of " + std::to_string(given->size()) +
                   " bytes is shorter than the longest key it is used with (" + std::to_string(longest_key) +
                   " bytes; RFC 6043 §12.1)");
  }
  return *given;
}

// The CSB ID the caller chose, or a random one (RFC 3830 §6.1).
UeResult<uint32_t> CsbIdOrRandom(crypto::CryptoProvider& provider, std::optional<uint32_t> chosen) {
  if (chosen) return *chosen;
  return RandomU32(provider);
}

}  // namespace

UeError Err(UeErrorKind kind, std::string detail) {
  UeError e;
  e.kind = kind;
  e.detail = std::move(detail);
  return e;
}
UeError Invalid(std::string detail) { return Err(UeErrorKind::kInvalidArgument, std::move(detail)); }
UeError Verification(std::string detail) { return Err(UeErrorKind::kVerification, std::move(detail)); }

UeError FromStatus(const Status& s, UeErrorKind otherwise) {
  return Err(s.code() == StatusCode::kInvalidArgument ? UeErrorKind::kInvalidArgument : otherwise,
             s.ToString());
}

UeError Undecodable(const std::string& what, const mikey::CodecError& error) {
  UeError e = Err(UeErrorKind::kBadResponse, "undecodable " + what + ": " + error.ToString());
  e.codec_rule = error.rule;
  return e;
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
  std::array<uint8_t, 4> b{};
  Status s = provider.Random(b);
  if (!s.ok()) return FromStatus(s);
  return LoadBe32(b);
}

UeResult<mikey::TPayload> MakeTimestamp(const TimestampSpec& spec) {
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

UeResult<uint64_t> Ts64(const mikey::TPayload& t) {
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

UeResult<MessageOpening> OpenMessage(crypto::CryptoProvider& provider, std::optional<uint32_t> csb_id,
                                     const TimestampSpec& timestamp, const std::optional<Bytes>& rand,
                                     size_t longest_key, size_t fresh_for_key, const char* rand_name) {
  MessageOpening o;
  auto chosen_csb_id = CsbIdOrRandom(provider, csb_id);
  if (!chosen_csb_id.ok()) return std::move(chosen_csb_id).error();
  o.csb_id = *chosen_csb_id;
  auto t = MakeTimestamp(timestamp);
  if (!t.ok()) return std::move(t).error();
  o.t = *t;
  auto r = RandOrRandom(provider, rand, longest_key, fresh_for_key, rand_name);
  if (!r.ok()) return std::move(r).error();
  o.rand = std::move(*r);
  return o;
}

UeResult<crypto::SecretKeyPtr> Import(crypto::CryptoProvider& provider, ByteSpan bytes) {
  auto key = provider.ImportTransientKey(bytes);
  if (!key.ok()) return FromStatus(key.error());
  return std::move(*key);
}

UeResult<crypto::MessageKeys> MessageKeysFrom(crypto::CryptoProvider& provider,
                                              ByteSpan inkey, uint8_t prf,
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

bool SameIdentity(const Bytes& a, const Bytes& b) {
  return SameUserIdentity(std::string_view(reinterpret_cast<const char*>(a.data()), a.size()),
                          std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

const mikey::IdrPayload* FindIdr(const Message& m, mikey::IdRole role) {
  for (const auto& p : m.payloads) {
    if (const auto* x = std::get_if<IdrPayload>(&p); x != nullptr && x->role == static_cast<uint8_t>(role)) {
      return x;
    }
  }
  return nullptr;
}

const mikey::RandrPayload* FindRandr(const Message& m, mikey::RandRole role) {
  for (const auto& p : m.payloads) {
    if (const auto* x = std::get_if<RandrPayload>(&p); x != nullptr && x->role == static_cast<uint8_t>(role)) {
      return x;
    }
  }
  return nullptr;
}

bool IsErrorMessage(ByteSpan bytes) {
  return bytes.size() >= 2 && bytes[1] == static_cast<uint8_t>(DataType::kError);
}

UeResult<DecodedResponse> DecodeBoundResponse(ByteSpan bytes, const ResponseBinding& b) {
  DecodedResponse out;
  auto decoded = mikey::Decode(bytes, {}, out.extents);
  if (!decoded.ok()) return Undecodable("MIKEY message", decoded.error());
  out.message = std::move(*decoded);
  const Message& m = out.message;
  const CommonHeader& h = m.header;
  const CommonHeader& req = *b.initial_header;
  if (h.data_type != static_cast<uint8_t>(b.expected)) {
    return Verification("expected " + Name(static_cast<uint8_t>(b.expected)) + ", received " +
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
  // Identities compare in the KMS user identity format (user_identity.h).
  const IdrPayload* kms = FindIdr(m, mikey::IdRole::kKms);
  if (kms == nullptr && b.require_kms_identity) return Verification("the answer lacks IDRkms");
  if (kms != nullptr && !b.kms_identity->empty() && !SameIdentity(kms->data, *b.kms_identity)) {
    return Verification("IDRkms of the answer is not the expected KMS identity");
  }
  if (m.payloads.empty() || !std::holds_alternative<TPayload>(m.payloads.front()) || Find<KemacPayload>(m) == nullptr ||
      !std::holds_alternative<VPayload>(m.payloads.back())) {
    return Verification("answer lacks T, KEMAC or V");  // composition makes this unreachable
  }
  return out;
}

UeResult<OpenedResponse> OpenResponse(crypto::CryptoProvider& provider, ByteSpan bytes,
                                      const ResponseContext& ctx) {
  if (IsErrorMessage(bytes)) {
    auto report = ParseErrorMessage(provider, bytes, ctx.error_key);
    if (!report.ok()) return std::move(report).error();
    return ErrorFromReport(*report);
  }
  auto bound = DecodeBoundResponse(bytes, ResponseBinding{ctx.expected, ctx.initial_header, ctx.kms_identity});
  if (!bound.ok()) return std::move(bound).error();
  Message& m = bound->message;
  const CommonHeader& h = m.header;
  const std::vector<mikey::PayloadExtent>& extents = bound->extents;
  const auto* t = &std::get<TPayload>(m.payloads.front());
  const KemacPayload* kemac = Find<KemacPayload>(m);
  const auto* v = &std::get<VPayload>(m.payloads.back());
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

// The order of RFC 6043 §4.2.1.5 / §4.2.3.5 and the SPI rule of §6.2.1.
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

}  // namespace tkms::ue::internal
