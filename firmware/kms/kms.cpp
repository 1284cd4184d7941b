#include "firmware/kms/kms.h"

#include <algorithm>
#include <exception>
#include <optional>
#include <string_view>

#include "firmware/base/encoding.h"
#include "firmware/kms/base_ticket.h"
#include "firmware/kms/policy.h"
#include "firmware/kms/payload_helpers.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/coverage.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/kemac_cipher.h"
#include "firmware/mikey/crypto/mac.h"
#include "firmware/mikey/crypto/protect.h"

namespace tkms::kms {
namespace {

namespace mc = mikey::crypto;
using mikey::Bytes;
using mikey::IdRole;

// Error numbers (RFC 3830 §6.12, RFC 4738 §3.3, RFC 6043 §6.9).
constexpr uint8_t kErrAuthFailure = 0;
constexpr uint8_t kErrInvalidTs = 1;
constexpr uint8_t kErrInvalidMacAlg = 3;
constexpr uint8_t kErrInvalidId = 7;
constexpr uint8_t kErrInvalidDt = 11;
constexpr uint8_t kErrUnspecified = 12;
constexpr uint8_t kErrUnsupportedMessage = 13;
constexpr uint8_t kErrInvalidTicket = 14;

constexpr size_t kRandrKmsBytes = 16;
// When a message carries no IDRi/IDRr, each of the user's identities is tried
// as Identity_i/r of the MAC (RFC 6043 §5.5); at most this many.
constexpr size_t kMaxIdentityCandidates = 8;

// The fixed part of the common header (RFC 3830 §6.1), read before decoding
// so that an Error message can copy version, PRF func and CSB ID (§5.4) even
// when the rest of the message is malformed.
struct HeaderPrefix {
  uint8_t version = 0;
  uint8_t data_type = 0;
  uint8_t prf_func = 0;
  uint32_t csb_id = 0;
};

std::optional<HeaderPrefix> ReadHeaderPrefix(ByteSpan b) {
  if (b.size() < 10 || b[0] != mikey::kMikeyVersion) return std::nullopt;
  HeaderPrefix h;
  h.version = b[0];
  h.data_type = b[1];
  h.prf_func = b[3] & 0x7F;
  h.csb_id = (uint32_t{b[4]} << 24) | (uint32_t{b[5]} << 16) | (uint32_t{b[6]} << 8) | b[7];
  return h;
}

bool IsTokenTrouble(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kResourceExhausted;
}

Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// RFC 6043 §6.2.1: "An SPI (or MKI) MUST be specified for each key". The
// ticket's MPK has a random 4-byte SPI; MPKi / MPKr(') are sent with that SPI
// followed by 0x01 / 0x02; session keys without a requested SPI get the MPK
// SPI followed by 0x10 + their index. The SPIs travel inside the ticket, so
// initiator and responder see the same SPI for the same key.
mikey::KeyValidity Spi(const Bytes& base, uint8_t suffix) {
  mikey::KeyValidity kv;
  kv.kv_type = static_cast<uint8_t>(mikey::KvType::kSpi);
  kv.spi = base;
  kv.spi.push_back(suffix);
  return kv;
}
constexpr uint8_t kMpkiSpiSuffix = 0x01;
constexpr uint8_t kMpkrSpiSuffix = 0x02;
constexpr uint8_t kSessionKeySpiBase = 0x10;
constexpr size_t kMpkSpiBytes = 4;

// The payloads a Ticket Request / Resolve uses; everything else is ignored.
struct Fields {
  const mikey::TPayload* t = nullptr;
  const mikey::RandrPayload* randr = nullptr;  // RANDRi / RANDRr
  const mikey::IdrPayload* idr_peer = nullptr;  // IDRi / IDRr
  const mikey::IdrPayload* idr_kms = nullptr;
  const mikey::IdrPayload* idr_psk = nullptr;
  const mikey::TpPayload* tp = nullptr;
  const mikey::TicketPayload* ticket = nullptr;
  const mikey::VPayload* v = nullptr;
};

}  // namespace

// One request: the state of a single Handle() call.
class Kms::Exchange {
 public:
  Exchange(Kms& kms, const RequestContext& context, ByteSpan bytes)
      : kms_(kms), context_(context), bytes_(bytes), snap_(kms.snapshot()), now_(kms.clock_.Now()),
        provider_(kms.keys_.provider()) {}

  KmsReply Run();

 private:
  KmsReply Request();
  KmsReply Resolve();
  // Gathers the payloads; nullopt if fine, else the error reply.
  std::optional<KmsReply> Gather(uint8_t peer_role, uint8_t rand_role);
  // Finds the user, verifies V, checks identities, timestamp and replays.
  std::optional<KmsReply> Authenticate(bool initiator_rand);

  // The response (REQUEST_RESP / RESOLVE_RESP): HDR copied from the request
  // with `data_type` and V = 0, fresh T, IDRkms, `before_kemac`, the KEMAC
  // of `kemac_keys` (keys from the PSK, direction 0x02, the request's RAND),
  // `after_kemac`, and V over response || request (RFC 6043 §4.2.1.5,
  // §4.2.3.5, §5.5).
  KmsReply Respond(mikey::DataType data_type, std::vector<mikey::Payload> before_kemac,
                   const std::vector<mikey::KeyDataPayload>& kemac_keys, std::vector<mikey::Payload> after_kemac);
  KmsReply MikeyError(uint8_t error_no, Refusal refusal, std::string detail);
  KmsReply Failure(const Status& s, std::string_view what);
  KmsReply Ok(Bytes message);
  const std::string& kms_identity() const { return snap_->config.kms_identity; }
  mikey::EncrAlg KemacEncrAlg() const;
  Result<std::pair<uint8_t, uint64_t>> FreshTimestamp() const;

  Kms& kms_;
  const RequestContext& context_;
  ByteSpan bytes_;
  std::shared_ptr<const KmsSnapshot> snap_;
  TimePoint now_;
  mc::CryptoProvider& provider_;

  std::optional<HeaderPrefix> hdr_;
  mikey::Message msg_;
  bool decoded_ = false;
  std::vector<mikey::PayloadExtent> extents_;
  Fields f_;
  const UserRecord* user_ = nullptr;
  std::string identity_;  // the authenticated IDRi / IDRr identity
  mc::SecretKeyPtr psk_;
  mc::SecretKeyPtr auth_key_;  // of the request, for authenticated Error messages
};

KmsReply Kms::Exchange::Ok(Bytes message) {
  KmsReply r;
  r.outcome = Outcome::kOk;
  r.mikey = std::move(message);
  if (user_ != nullptr) r.user = user_->name;
  return r;
}

KmsReply Kms::Exchange::Failure(const Status& s, std::string_view what) {
  KmsReply r;
  r.outcome = IsTokenTrouble(s) ? Outcome::kUnavailable : Outcome::kInternal;
  r.refusal = IsTokenTrouble(s) ? Refusal::kToken : Refusal::kInternal;
  r.detail = std::string(what) + ": " + s.ToString();
  if (user_ != nullptr) r.user = user_->name;
  return r;
}

Result<std::pair<uint8_t, uint64_t>> Kms::Exchange::FreshTimestamp() const {
  // The request's TS type when it is a time (RFC 6043 §4.2.1.5: a fresh
  // value); NTP-UTC otherwise.
  auto type = mikey::TsType::kNtpUtc;
  if (f_.t != nullptr && f_.t->ts_type != static_cast<uint8_t>(mikey::TsType::kCounter) &&
      f_.t->ts_type <= static_cast<uint8_t>(mikey::TsType::kNtpUtc32)) {
    type = static_cast<mikey::TsType>(f_.t->ts_type);
  }
  auto value = TimestampValue(type, now_);
  if (!value) return Internal("no timestamp value");
  return std::make_pair(static_cast<uint8_t>(type), *value);
}

KmsReply Kms::Exchange::MikeyError(uint8_t error_no, Refusal refusal, std::string detail) {
  mikey::Message err;
  err.header.version = hdr_->version;
  err.header.data_type = static_cast<uint8_t>(mikey::DataType::kError);
  err.header.v = false;
  err.header.prf_func = hdr_->prf_func <= 1 ? hdr_->prf_func : 0;
  err.header.csb_id = hdr_->csb_id;
  err.header.cs_count = 0;
  err.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kEmpty);
  auto ts = FreshTimestamp();
  if (!ts.ok()) return Failure(ts.error(), "error message timestamp");
  err.payloads.emplace_back(mikey::TPayload{ts->first, ts->second});
  err.payloads.emplace_back(mikey::ErrPayload{error_no});
  Result<Bytes> bytes = Bytes{};
  if (auth_key_ != nullptr && f_.v != nullptr) {
    // Authenticated with the auth_key of the message in error (§5.4).
    err.payloads.emplace_back(mikey::VPayload{f_.v->auth_alg, {}});
    bytes = mc::SealWithV(provider_, err, *auth_key_, {});
  } else {
    auto encoded = mikey::Encode(err);
    if (encoded.ok()) {
      bytes = std::move(*encoded);
    } else {
      bytes = Internal(encoded.error().ToString());
    }
  }
  if (!bytes.ok()) return Failure(bytes.error(), "building the MIKEY Error message");
  KmsReply r;
  r.outcome = Outcome::kMikeyError;
  r.refusal = refusal;
  r.mikey_error = error_no;
  r.mikey = std::move(*bytes);
  r.detail = std::move(detail);
  if (user_ != nullptr) r.user = user_->name;
  return r;
}

mikey::EncrAlg Kms::Exchange::KemacEncrAlg() const {
  // A request that uses SHA-256 (PRF or MAC, RFC 6043) gets AES-CM-256 so
  // the KEMAC is as strong as the keys it carries (§12.1); otherwise the
  // mandatory AES-CM-128 (RFC 3830 §4.2.3).
  const bool sha256 = hdr_->prf_func == static_cast<uint8_t>(mikey::PrfFunc::kHmacSha256) ||
                      (f_.v != nullptr && f_.v->auth_alg == static_cast<uint8_t>(mikey::MacAlg::kHmacSha256_256));
  return sha256 ? mikey::EncrAlg::kAesCm256 : mikey::EncrAlg::kAesCm128;
}

KmsReply Kms::Exchange::Run() {
  hdr_ = ReadHeaderPrefix(bytes_);
  if (!hdr_) {
    KmsReply r;
    r.outcome = Outcome::kBadRequest;
    r.refusal = Refusal::kMalformed;
    r.detail = "the body is not a MIKEY message (no version-1 common header)";
    return r;
  }
  const bool request = context_.type == RequestType::kTicketRequest;
  const auto expected = request ? mikey::DataType::kRequestInitPsk : mikey::DataType::kResolveInitPsk;
  const auto pk_variant = request ? mikey::DataType::kRequestInitPk : mikey::DataType::kResolveInitPk;
  if (hdr_->data_type == static_cast<uint8_t>(pk_variant)) {
    return MikeyError(kErrUnsupportedMessage, Refusal::kWrongDataType,
                      "the public-key variant (data type " + std::to_string(hdr_->data_type) +
                          ") is not supported; use the PSK variant");
  }
  if (hdr_->data_type != static_cast<uint8_t>(expected)) {
    return MikeyError(kErrInvalidDt, Refusal::kWrongDataType,
                      "data type " + std::to_string(hdr_->data_type) + " on requesttype=" +
                          std::string(RequestTypeName(context_.type)) + " (expected " +
                          std::to_string(static_cast<int>(expected)) + ")");
  }
  mikey::DecodeOptions options;
  options.check_composition = false;  // unexpected payloads are ignored (§4.2.1.4)
  auto decoded = mikey::Decode(bytes_, options, extents_);
  if (!decoded.ok()) {
    const auto& e = decoded.error();
    return MikeyError(static_cast<uint8_t>(mikey::RuleErrorNo(e.rule)), Refusal::kMalformed, e.ToString());
  }
  msg_ = std::move(*decoded);
  decoded_ = true;
  return request ? Request() : Resolve();
}

std::optional<KmsReply> Kms::Exchange::Gather(uint8_t peer_role, uint8_t rand_role) {
  const auto& p = msg_.payloads;
  if (p.empty() || !std::holds_alternative<mikey::VPayload>(p.back())) {
    return MikeyError(kErrUnspecified, Refusal::kMalformed, "the last payload must be V");
  }
  f_.v = &std::get<mikey::VPayload>(p.back());
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    const auto& payload = p[i];
    if (const auto* t = std::get_if<mikey::TPayload>(&payload)) {
      if (f_.t != nullptr) return MikeyError(kErrUnspecified, Refusal::kMalformed, "more than one T payload");
      f_.t = t;
    } else if (const auto* r = std::get_if<mikey::RandrPayload>(&payload)) {
      if (r->role != rand_role) continue;
      if (f_.randr != nullptr) return MikeyError(kErrUnspecified, Refusal::kMalformed, "more than one RANDR");
      f_.randr = r;
    } else if (const auto* idr = std::get_if<mikey::IdrPayload>(&payload)) {
      const mikey::IdrPayload** slot = nullptr;
      if (idr->role == peer_role) slot = &f_.idr_peer;
      if (idr->role == static_cast<uint8_t>(IdRole::kKms)) slot = &f_.idr_kms;
      if (idr->role == static_cast<uint8_t>(IdRole::kPsk)) slot = &f_.idr_psk;
      if (slot == nullptr) continue;
      if (*slot != nullptr) {
        return MikeyError(kErrInvalidId, Refusal::kMalformed,
                          "more than one IDR with role " + std::to_string(idr->role));
      }
      *slot = idr;
    } else if (const auto* tp = std::get_if<mikey::TpPayload>(&payload)) {
      if (f_.tp != nullptr) return MikeyError(kErrUnspecified, Refusal::kMalformed, "more than one TP");
      f_.tp = tp;
    } else if (const auto* ticket = std::get_if<mikey::TicketPayload>(&payload)) {
      if (f_.ticket != nullptr) return MikeyError(kErrUnspecified, Refusal::kMalformed, "more than one TICKET");
      f_.ticket = ticket;
    }
  }
  if (f_.t == nullptr) return MikeyError(kErrUnspecified, Refusal::kMalformed, "no T payload");
  // RFC 6043 §4.2.1.1 / §4.2.3.1: "#CS MUST be set to '0' and the CS ID map
  // type SHALL be the Empty map"; the response copies both, so a request that
  // breaks the rule would get a response that breaks it too.
  if (msg_.header.cs_count != 0 ||
      msg_.header.cs_id_map_type != static_cast<uint8_t>(mikey::CsIdMapType::kEmpty)) {
    return MikeyError(static_cast<uint8_t>(mikey::RuleErrorNo(mikey::Rule::kHeader)), Refusal::kMalformed,
                      "#CS must be 0 with the Empty CS ID map (RFC 6043 §4.2.1.1, §4.2.3.1)");
  }
  if (f_.randr == nullptr) {
    return MikeyError(kErrUnspecified, Refusal::kMalformed,
                      rand_role == static_cast<uint8_t>(mikey::RandRole::kInitiator) ? "no RANDRi payload"
                                                                                     : "no RANDRr payload");
  }
  return std::nullopt;
}

std::optional<KmsReply> Kms::Exchange::Authenticate(bool initiator_rand) {
  const UserDirectory& users = *snap_->users;
  if (f_.idr_psk != nullptr) {
    user_ = users.FindByPskId(f_.idr_psk->data);
    if (user_ == nullptr) {
      return MikeyError(kErrAuthFailure, Refusal::kUnknownUser,
                        "no user with PSK id " + HexEncode(f_.idr_psk->data));
    }
  } else if (f_.idr_peer != nullptr) {
    user_ = users.FindByIdentity(IdText(f_.idr_peer->data));
    if (user_ == nullptr) {
      return MikeyError(kErrAuthFailure, Refusal::kUnknownUser, "no user with identity '" + IdText(f_.idr_peer->data) + "'");
    }
  } else {
    return MikeyError(kErrAuthFailure, Refusal::kUnknownUser, "neither IDRpsk nor an identity names the user");
  }
  const auto mac_alg = static_cast<mikey::MacAlg>(f_.v->auth_alg);
  if (mac_alg == mikey::MacAlg::kNull) {
    return MikeyError(kErrInvalidMacAlg, Refusal::kAuthentication, "the V payload names the NULL MAC");
  }
  auto psk = kms_.keys_.UserPsk(user_->psk_id);
  if (!psk.ok()) {
    if (psk.error().code() == StatusCode::kNotFound) {
      return MikeyError(kErrAuthFailure, Refusal::kUnknownUser, user_->name + ": PSK no longer on the token");
    }
    return Failure(psk.error(), "user PSK");
  }
  psk_ = std::move(*psk);
  const ByteSpan rand = f_.randr->rand;
  auto keys = mc::DeriveMessageKeys(provider_, static_cast<mikey::PrfFunc>(hdr_->prf_func), *psk_,
                                    mc::Direction::kInitial, hdr_->csb_id,
                                    initiator_rand ? std::optional<ByteSpan>(rand) : std::nullopt,
                                    initiator_rand ? std::nullopt : std::optional<ByteSpan>(rand),
                                    mikey::EncrAlg::kNull, mac_alg);
  if (!keys.ok()) return Failure(keys.error(), "deriving the request's auth key");
  auto auth_key = provider_.ImportTransientKey(keys->auth_key);
  if (!auth_key.ok()) return Failure(auth_key.error(), "auth key");

  // Identity_i/r || Identity_kms follow the message in the MAC (§5.5).
  std::vector<std::string> candidates;
  if (f_.idr_peer != nullptr) {
    candidates.push_back(IdText(f_.idr_peer->data));
  } else {
    for (size_t i = 0; i < user_->identities.size() && i < kMaxIdentityCandidates; ++i) {
      candidates.push_back(user_->identities[i]);
    }
  }
  const std::string kms_id = f_.idr_kms != nullptr ? IdText(f_.idr_kms->data) : kms_identity();
  bool verified = false;
  for (const auto& candidate : candidates) {
    const ByteSpan appended[] = {ByteSpan(reinterpret_cast<const uint8_t*>(candidate.data()), candidate.size()),
                                 ByteSpan(reinterpret_cast<const uint8_t*>(kms_id.data()), kms_id.size())};
    Status s = mc::VerifyV(provider_, bytes_, msg_, extents_, **auth_key, appended);
    if (s.ok()) {
      verified = true;
      identity_ = candidate;
      break;
    }
    if (s.code() != StatusCode::kPermissionDenied) {
      if (IsTokenTrouble(s)) return Failure(s, "verifying V");
      return MikeyError(kErrAuthFailure, Refusal::kAuthentication, "V: " + s.message());
    }
  }
  if (!verified) {
    return MikeyError(kErrAuthFailure, Refusal::kAuthentication, "V MAC does not verify for " + user_->name);
  }
  auth_key_ = std::move(*auth_key);  // from here on, Error messages carry a V

  if (!user_->Owns(identity_)) {
    return MikeyError(kErrInvalidId, Refusal::kIdentityNotOwned,
                      "identity '" + identity_ + "' does not belong to " + user_->name);
  }
  if (f_.idr_kms != nullptr && kms_id != kms_identity()) {
    return MikeyError(kErrInvalidId, Refusal::kWrongKms, "IDRkms names '" + kms_id + "'");
  }
  // Timestamp window (RFC 3830 §5.4).
  const auto sent = TimeFromTimestamp(f_.t->ts_type, f_.t->value);
  if (!sent) {
    return MikeyError(kErrInvalidTs, Refusal::kStaleTimestamp,
                      "TS type " + std::to_string(f_.t->ts_type) + " is not a time (COUNTER is not accepted)");
  }
  const auto window = std::chrono::seconds(snap_->config.mikey.timestamp_window_s);
  const auto skew = *sent > now_ ? *sent - now_ : now_ - *sent;
  if (skew > window) {
    return MikeyError(kErrInvalidTs, Refusal::kStaleTimestamp,
                      "timestamp is " + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(skew).count()) +
                          " s from the KMS clock (window " + std::to_string(window.count()) + " s)");
  }
  // Replay cache: one entry per (data type, user, MAC).
  Bytes key;
  key.push_back(hdr_->data_type);
  key.insert(key.end(), user_->psk_id.begin(), user_->psk_id.end());
  key.insert(key.end(), f_.v->mac.begin(), f_.v->mac.end());
  // The entry lives until the message's T leaves the window.
  const auto steady_now = ReplayCache::Clock::now();
  const auto expires = steady_now + std::chrono::duration_cast<ReplayCache::Clock::duration>(*sent + window - now_);
  Status inserted = kms_.replay_.Insert(key, expires, steady_now);
  if (inserted.code() == StatusCode::kPermissionDenied) {
    return MikeyError(kErrInvalidTs, Refusal::kReplay, "replayed message");
  }
  if (!inserted.ok()) {
    KmsReply r;
    r.outcome = Outcome::kUnavailable;
    r.refusal = Refusal::kOverloaded;
    r.detail = inserted.message();
    r.user = user_->name;
    return r;
  }
  return std::nullopt;
}

KmsReply Kms::Exchange::Request() {
  if (auto e = Gather(static_cast<uint8_t>(IdRole::kInitiator), static_cast<uint8_t>(mikey::RandRole::kInitiator))) {
    return *e;
  }
  if (f_.tp == nullptr) return MikeyError(kErrUnspecified, Refusal::kMalformed, "no TP payload");
  if (auto e = Authenticate(/*initiator_rand=*/true)) return *e;

  TicketFormat* format = kms_.formats_.For(f_.tp->policy);
  if (format == nullptr) {
    return MikeyError(kErrInvalidTicket, Refusal::kPolicy,
                      "ticket type " + std::to_string(f_.tp->policy.ticket_type) + " subtype " +
                          std::to_string(f_.tp->policy.subtype) + " version " +
                          std::to_string(f_.tp->policy.version) + " is not supported");
  }
  auto decision = DecideTicketPolicy(f_.tp->policy, user_->policy, PolicyContext{now_, identity_, kms_identity()});
  if (!decision.ok()) {
    return MikeyError(decision.error().error_no, Refusal::kPolicy, decision.error().detail);
  }
  Bytes mpk_spi(kMpkSpiBytes);
  if (auto s = kms_.keys_.Random(mpk_spi); !s.ok()) return Failure(s, "token RNG");
  std::vector<mikey::KeyDataPayload> session_keys;
  for (const auto& spec : decision->keys) {
    mikey::KeyDataPayload k;
    k.key_type = spec.key_type;
    k.key = SecretBytes(spec.key_bytes);
    if (auto s = kms_.keys_.Random(k.key); !s.ok()) return Failure(s, "token RNG");
    if (spec.salt_bytes > 0) {
      k.salt = SecretBytes(spec.salt_bytes);
      if (auto s = kms_.keys_.Random(*k.salt); !s.ok()) return Failure(s, "token RNG");
    }
    k.kv = spec.kv;
    if (k.kv.kv_type != static_cast<uint8_t>(mikey::KvType::kSpi) || k.kv.spi.empty()) {
      k.kv = Spi(mpk_spi, static_cast<uint8_t>(kSessionKeySpiBase + session_keys.size()));
    }
    session_keys.push_back(std::move(k));
  }
  auto sealed = format->Seal(decision->granted, mpk_spi, std::move(session_keys), now_);
  if (!sealed.ok()) return Failure(sealed.error(), "sealing the ticket");

  std::vector<mikey::KeyDataPayload> kemac_keys;
  const auto mpk_type = static_cast<uint8_t>(mikey::KeyType::kMpk);
  kemac_keys.push_back(mikey::KeyDataPayload{mpk_type, sealed->keys.mpki, std::nullopt, Spi(mpk_spi, kMpkiSpiSuffix)});
  if (decision->granted.flags & mikey::kFlagI) {
    kemac_keys.push_back(
        mikey::KeyDataPayload{mpk_type, sealed->keys.mpkr, std::nullopt, Spi(mpk_spi, kMpkrSpiSuffix)});
  }
  for (const auto& k : sealed->keys.session_keys) kemac_keys.push_back(k);
  std::vector<mikey::Payload> before;
  before.emplace_back(mikey::TicketPayload{decision->granted, std::move(sealed->ticket_data), std::nullopt});
  return Respond(mikey::DataType::kRequestResp, std::move(before), kemac_keys, {});
}

KmsReply Kms::Exchange::Resolve() {
  if (auto e = Gather(static_cast<uint8_t>(IdRole::kResponder), static_cast<uint8_t>(mikey::RandRole::kResponder))) {
    return *e;
  }
  if (f_.ticket == nullptr) return MikeyError(kErrUnspecified, Refusal::kMalformed, "no TICKET payload");
  if (auto e = Authenticate(/*initiator_rand=*/false)) return *e;

  const auto& policy = f_.ticket->policy;
  std::optional<TimePoint> valid_from, valid_to;
  std::vector<std::string> recipients;
  for (const auto& item : policy.tp_data) {
    if (const auto* idr = std::get_if<mikey::IdrPayload>(&item)) {
      if (idr->role == static_cast<uint8_t>(IdRole::kKms) && IdText(idr->data) != kms_identity()) {
        return MikeyError(kErrInvalidTicket, Refusal::kInvalidTicket,
                          "ticket was issued by KMS '" + IdText(idr->data) +
                              "' (KMS-to-KMS resolution is not configured)");
      }
      if (idr->role == static_cast<uint8_t>(IdRole::kResponder)) recipients.push_back(IdText(idr->data));
    } else if (const auto* tr = std::get_if<mikey::TrPayload>(&item)) {
      if (tr->role == static_cast<uint8_t>(mikey::TsRole::kStart)) valid_from = TimeFromTimestamp(tr->ts_type, tr->value);
      if (tr->role == static_cast<uint8_t>(mikey::TsRole::kEnd)) valid_to = TimeFromTimestamp(tr->ts_type, tr->value);
    }
  }
  if ((policy.flags & mikey::kFlagD) == 0) {
    // Mode 3 (RFC 6043 §4.1.1): the initiator made the ticket with a TPK it
    // shares with the KMS. tkms holds no initiator-shared TPKs.
    return MikeyError(kErrInvalidTicket, Refusal::kInvalidTicket,
                      "tickets generated by the initiator (D = 0, mode 3) are not supported");
  }
  TicketFormat* format = kms_.formats_.For(policy);
  if (format == nullptr) {
    return MikeyError(kErrInvalidTicket, Refusal::kInvalidTicket,
                      "ticket type " + std::to_string(policy.ticket_type) + " is not supported");
  }
  auto opened = format->Open(*f_.ticket);
  if (!opened.ok()) {
    const auto& e = opened.error();
    if (e.token_failure) return Failure(*e.token_failure, "opening the ticket");
    return MikeyError(kErrInvalidTicket, Refusal::kInvalidTicket, e.detail);
  }
  // The ticket is authentic: its policy can be trusted from here on.
  if (valid_from && now_ < *valid_from) {
    return MikeyError(kErrInvalidTicket, Refusal::kExpiredTicket, "ticket is not valid yet (TRs)");
  }
  if (valid_to && now_ > *valid_to) {
    return MikeyError(kErrInvalidTicket, Refusal::kExpiredTicket, "ticket has expired (TRe)");
  }
  // Is this responder an intended recipient (an IDRr, or a member of an IDRr
  // group)? The answering identity is the responder's own identity (§4.2.3.5).
  std::vector<std::string> mine{identity_};
  for (const auto& id : user_->identities) {
    if (id != identity_) mine.push_back(id);
  }
  std::optional<std::string> answered;
  for (const auto& id : mine) {
    for (const auto& r : recipients) {
      if (r == id || snap_->users->IsGroupMember(r, id)) {
        answered = id;
        break;
      }
    }
    if (answered) break;
  }
  if (!answered) {
    return MikeyError(kErrInvalidId, Refusal::kNotRecipient,
                      user_->name + " is not among the ticket's responders");
  }

  const bool forking = (policy.flags & mikey::kFlagI) != 0;
  const auto ticket_prf = static_cast<mikey::PrfFunc>(policy.prf_func);
  TicketKeys& tk = *opened;
  Bytes randr_kms;
  SecretBytes mpkr_forked;
  if (forking) {
    const auto& idata = f_.ticket->initiator_data;
    if (!idata) {
      return MikeyError(kErrInvalidTicket, Refusal::kInvalidTicket, "forking ticket without Initiator Data");
    }
    const auto vr_alg = static_cast<mikey::MacAlg>(idata->vr.auth_alg);
    if (vr_alg == mikey::MacAlg::kNull || idata->vr.auth_alg != idata->vi.auth_alg) {
      return MikeyError(kErrInvalidTicket, Refusal::kInvalidTicket, "Initiator Data Vr/Vi MAC algorithms");
    }
    auto mpkr = provider_.ImportTransientKey(tk.mpkr);
    if (!mpkr.ok()) return Failure(mpkr.error(), "MPKr");
    auto vr_key = mc::DeriveInitiatorDataAuthKey(provider_, ticket_prf, **mpkr, vr_alg);
    if (!vr_key.ok()) return Failure(vr_key.error(), "Vr key");
    auto vr_key_handle = provider_.ImportTransientKey(*vr_key);
    if (!vr_key_handle.ok()) return Failure(vr_key_handle.error(), "Vr key");
    auto input = mikey::InitiatorDataMacInput(*idata);
    if (!input.ok()) return MikeyError(kErrInvalidTicket, Refusal::kInvalidTicket, input.error().ToString());
    const ByteSpan parts[] = {*input};
    if (auto s = mc::VerifyMac(provider_, vr_alg, **vr_key_handle, parts, idata->vr.mac); !s.ok()) {
      if (IsTokenTrouble(s)) return Failure(s, "verifying Vr");
      return MikeyError(kErrAuthFailure, Refusal::kInvalidTicket, "Initiator Data Vr does not verify");
    }
    randr_kms.resize(kRandrKmsBytes);
    if (auto s = kms_.keys_.Random(randr_kms); !s.ok()) return Failure(s, "token RNG");
    const Bytes id_data = ToBytes(*answered);
    auto forked = mc::DeriveForkedKey(provider_, ticket_prf, **mpkr, mc::ForkedKeyType::kMpkr, id_data, randr_kms);
    if (!forked.ok()) return Failure(forked.error(), "forking MPKr");
    mpkr_forked = std::move(*forked);
    for (auto& k : tk.session_keys) {
      if (!IsTgk(k.key_type)) continue;  // TEK, GTGK and MPKi are never forked (§5.1.1)
      auto tgk = provider_.ImportTransientKey(k.key);
      if (!tgk.ok()) return Failure(tgk.error(), "TGK");
      auto tgk_forked = mc::DeriveForkedKey(provider_, ticket_prf, **tgk, mc::ForkedKeyType::kTgk, id_data, randr_kms);
      if (!tgk_forked.ok()) return Failure(tgk_forked.error(), "forking a TGK");
      k.key = std::move(*tgk_forked);
    }
  }

  const auto mpk_type = static_cast<uint8_t>(mikey::KeyType::kMpk);
  std::vector<mikey::KeyDataPayload> kemac_keys;
  kemac_keys.push_back(mikey::KeyDataPayload{mpk_type, tk.mpki, std::nullopt, Spi(tk.mpk_spi, kMpkiSpiSuffix)});
  if (forking) {
    kemac_keys.push_back(
        mikey::KeyDataPayload{mpk_type, mpkr_forked, std::nullopt, Spi(tk.mpk_spi, kMpkrSpiSuffix)});
  }
  for (const auto& k : tk.session_keys) kemac_keys.push_back(k);
  std::vector<mikey::Payload> after;
  if (forking) {
    after.emplace_back(UriIdr(IdRole::kResponder, *answered));
    after.emplace_back(mikey::RandrPayload{static_cast<uint8_t>(mikey::RandRole::kKms), randr_kms});
  }
  return Respond(mikey::DataType::kResolveResp, {}, kemac_keys, std::move(after));
}

KmsReply Kms::Exchange::Respond(mikey::DataType data_type, std::vector<mikey::Payload> before_kemac,
                                const std::vector<mikey::KeyDataPayload>& kemac_keys,
                                std::vector<mikey::Payload> after_kemac) {
  const bool request = data_type == mikey::DataType::kRequestResp;
  const char* name = request ? "REQUEST_RESP" : "RESOLVE_RESP";
  const ByteSpan rand = f_.randr->rand;
  const auto encr_alg = KemacEncrAlg();
  const auto mac_alg = static_cast<mikey::MacAlg>(f_.v->auth_alg);
  auto keys = mc::DeriveMessageKeys(provider_, static_cast<mikey::PrfFunc>(hdr_->prf_func), *psk_,
                                    mc::Direction::kResponse, hdr_->csb_id,
                                    request ? std::optional<ByteSpan>(rand) : std::nullopt,
                                    request ? std::nullopt : std::optional<ByteSpan>(rand), encr_alg, mac_alg);
  if (!keys.ok()) return Failure(keys.error(), std::string("deriving ") + name + " keys");
  auto ts = FreshTimestamp();
  if (!ts.ok()) return Failure(ts.error(), "timestamp");
  // The KEMAC's IV uses this response's CSB ID and, by default, this
  // response's T; mikey.kemac_iv_timestamp = request selects the request's T
  // (docs/kms.md).
  const bool request_t = snap_->config.mikey.kemac_iv_timestamp == provisioning::KemacIvTimestamp::kRequest;
  auto ts64 = request_t ? mc::TimestampForIv(static_cast<mikey::TsType>(f_.t->ts_type), f_.t->value)
                        : mc::TimestampForIv(static_cast<mikey::TsType>(ts->first), ts->second);
  if (!ts64.ok()) return Failure(ts64.error(), "timestamp");
  auto kemac = mc::SealKemac(provider_, encr_alg, *keys, hdr_->csb_id, *ts64, kemac_keys);
  if (!kemac.ok()) return Failure(kemac.error(), std::string(name) + " KEMAC");

  mikey::Message resp;
  resp.header = msg_.header;
  resp.header.data_type = static_cast<uint8_t>(data_type);
  resp.header.v = false;
  resp.payloads.emplace_back(mikey::TPayload{ts->first, ts->second});
  resp.payloads.emplace_back(UriIdr(IdRole::kKms, kms_identity()));
  for (auto& p : before_kemac) resp.payloads.push_back(std::move(p));
  resp.payloads.emplace_back(std::move(*kemac));
  for (auto& p : after_kemac) resp.payloads.push_back(std::move(p));
  resp.payloads.emplace_back(mikey::VPayload{f_.v->auth_alg, {}});
  auto resp_auth = provider_.ImportTransientKey(keys->auth_key);
  if (!resp_auth.ok()) return Failure(resp_auth.error(), "auth key");
  const ByteSpan appended[] = {bytes_};
  auto out = mc::SealWithV(provider_, resp, **resp_auth, appended);
  if (!out.ok()) return Failure(out.error(), std::string("sealing ") + name);
  return Ok(std::move(*out));
}

// ---------------------------------------------------------------------------

Kms::Kms(KmsKeys& keys, const hal::Clock& clock, std::shared_ptr<const KmsSnapshot> snapshot)
    : keys_(keys),
      clock_(clock),
      snapshot_(std::move(snapshot)),
      replay_(snapshot_->config.mikey.replay_cache_entries) {
  formats_.Add(std::make_unique<BaseTicketFormat>(keys_));
}

void Kms::SetSnapshot(std::shared_ptr<const KmsSnapshot> snapshot) {
  std::atomic_store(&snapshot_, std::move(snapshot));
}

std::shared_ptr<const KmsSnapshot> Kms::snapshot() const { return std::atomic_load(&snapshot_); }

KmsReply Kms::Handle(const RequestContext& context, ByteSpan mikey) {
  try {
    Exchange exchange(*this, context, mikey);
    return exchange.Run();
  } catch (const std::exception& e) {
    KmsReply r;
    r.outcome = Outcome::kInternal;
    r.refusal = Refusal::kInternal;
    r.detail = std::string("exception: ") + e.what();
    return r;
  } catch (...) {
    KmsReply r;
    r.outcome = Outcome::kInternal;
    r.refusal = Refusal::kInternal;
    r.detail = "unknown exception";
    return r;
  }
}

Readiness Kms::CheckReadiness() {
  Readiness r;
  auto snap = snapshot();
  r.config_loaded = snap != nullptr && snap->users != nullptr;
  uint8_t probe[1];
  Status token = keys_.Random(probe);
  r.token_ready = token.ok();
  auto key_id = keys_.CurrentTicketKeyId();
  r.keys_present = key_id.ok();
  if (!r.token_ready) r.detail += "token: " + token.message() + "; ";
  if (!r.keys_present) r.detail += "ticket key: " + key_id.error().message() + "; ";
  if (r.config_loaded) {
    r.detail += std::to_string(snap->users->size()) + " users";
    if (r.keys_present) r.detail += ", ticket key " + std::to_string(*key_id);
  } else {
    r.detail += "no configuration";
  }
  return r;
}

}  // namespace tkms::kms
