// Step 4 of an exchange: the message the KMS sends back.
//   REQUEST_RESP / RESOLVE_RESP (RFC 6043 §4.2.1.5, §4.2.3.5): HDR copied
//     from the request with V = 0, fresh T, IDRkms, [TICKET], KEMAC of the
//     keys under PSK-derived keys (§5.1.2, direction 0x02), [IDRr, RANDRkms],
//     V over response || request (§5.5);
//   Error (RFC 6043 §5.4): HDR copying version, PRF func and
//     CSB ID, fresh T, ERR, and V once the sender is authenticated.
#include <string>

#include "firmware/kms/exchange.h"
#include "firmware/kms/payload_helpers.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/kemac_cipher.h"
#include "firmware/mikey/crypto/mac.h"
#include "firmware/mikey/crypto/protect.h"

namespace tkms::kms {
namespace {

namespace mc = mikey::crypto;

bool IsTokenTrouble(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kResourceExhausted;
}

// A fresh timestamp of the request's TS type when that is a time (RFC 6043
// §4.2.1.5), NTP-UTC otherwise.
StepResult<mikey::TPayload> FreshTimestamp(const mikey::TPayload* request_t, TimePoint now) {
  auto type = mikey::TsType::kNtpUtc;
  if (request_t != nullptr && request_t->ts_type != static_cast<uint8_t>(mikey::TsType::kCounter) &&
      request_t->ts_type <= static_cast<uint8_t>(mikey::TsType::kNtpUtc32)) {
    type = static_cast<mikey::TsType>(request_t->ts_type);
  }
  auto value = TimestampValue(type, now);
  if (!value) return Rejection::FromStatus(Internal("no timestamp value"), "timestamp");
  return mikey::TPayload{static_cast<uint8_t>(type), *value};
}

}  // namespace

Rejection Rejection::Mikey(mikey::ErrorNo error_no, Refusal refusal, std::string detail) {
  Rejection r;
  r.outcome = Outcome::kMikeyError;
  r.refusal = refusal;
  r.error_no = static_cast<uint8_t>(error_no);
  r.detail = std::move(detail);
  return r;
}

Rejection Rejection::BadRequest(std::string detail) {
  Rejection r;
  r.outcome = Outcome::kBadRequest;
  r.refusal = Refusal::kMalformed;
  r.detail = std::move(detail);
  return r;
}

Rejection Rejection::FromStatus(const Status& s, std::string_view what) {
  Rejection r;
  r.outcome = IsTokenTrouble(s) ? Outcome::kUnavailable : Outcome::kInternal;
  r.refusal = IsTokenTrouble(s) ? Refusal::kToken : Refusal::kInternal;
  r.detail = std::string(what) + ": " + s.ToString();
  return r;
}

mikey::EncrAlg KemacEncryptionFor(const UserRecord& user, const ParsedRequest& request) {
  switch (user.policy.kemac_encryption) {
    case provisioning::KemacEncryption::kAesCm256: return mikey::EncrAlg::kAesCm256;
    case provisioning::KemacEncryption::kAesCm128: return mikey::EncrAlg::kAesCm128;
    case provisioning::KemacEncryption::kAuto: break;
  }
  // RFC 6043 §12.1: a UE that supports one 256-bit algorithm supports all
  // three, and they SHALL NOT be mixed with 128-bit ones.
  const bool shown_256 =
      request.header().prf_func == static_cast<uint8_t>(mikey::PrfFunc::kHmacSha256) ||
      request.payloads.v->auth_alg == static_cast<uint8_t>(mikey::MacAlg::kHmacSha256_256);
  return shown_256 ? mikey::EncrAlg::kAesCm256 : mikey::EncrAlg::kAesCm128;
}

std::optional<Rejection> CheckKeysFitKemac(mikey::EncrAlg encr_alg, const std::vector<mikey::KeyDataPayload>& keys) {
  if (encr_alg != mikey::EncrAlg::kAesCm128) return std::nullopt;
  for (const auto& k : keys) {
    if (k.key_type == static_cast<uint8_t>(mikey::KeyType::kMpk) || k.key.size() <= 16) continue;
    return Rejection::Mikey(mikey::ErrorNo::kInvalidTpPar, Refusal::kPolicy,
                            "session keys longer than 128 bits need the 256-bit algorithms (RFC 6043 §12.1); "
                            "the KEMAC would be AES-CM-128");
  }
  return std::nullopt;
}

StepResult<mikey::Bytes> BuildResponse(const ParsedRequest& request, const Requester& requester,
                                       const ResponseContent& content, ExchangeEnv& env) {
  const RequestPayloads& p = request.payloads;
  const char* name = request.is_request() ? "REQUEST_RESP" : "RESOLVE_RESP";
  const ByteSpan rand = p.randr->rand;
  const auto encr_alg = KemacEncryptionFor(*requester.user, request);
  if (auto refused = CheckKeysFitKemac(encr_alg, content.kemac_keys)) return *refused;
  const auto mac_alg = static_cast<mikey::MacAlg>(p.v->auth_alg);
  const bool initiator = request.is_request();
  auto keys = mc::DeriveMessageKeys(env.provider, static_cast<mikey::PrfFunc>(request.header().prf_func),
                                    *requester.psk, mc::Direction::kResponse, request.header().csb_id,
                                    initiator ? std::optional<ByteSpan>(rand) : std::nullopt,
                                    initiator ? std::nullopt : std::optional<ByteSpan>(rand), encr_alg, mac_alg);
  if (!keys.ok()) return Rejection::FromStatus(keys.error(), std::string("deriving ") + name + " keys");
  auto t = FreshTimestamp(p.t, env.now);
  if (!t.ok()) return t.error();
  // The KEMAC's IV uses this response's CSB ID and, by default, this
  // response's T; mikey.kemac_iv_timestamp = request selects the request's T
  // (docs/kms.md).
  const bool request_t = env.snapshot.config.mikey.kemac_iv_timestamp == provisioning::KemacIvTimestamp::kRequest;
  const mikey::TPayload& iv_t = request_t ? *p.t : *t;
  auto ts64 = mc::TimestampForIv(static_cast<mikey::TsType>(iv_t.ts_type), iv_t.value);
  if (!ts64.ok()) return Rejection::FromStatus(ts64.error(), "timestamp");
  auto kemac = mc::SealKemac(env.provider, encr_alg, *keys, request.header().csb_id, *ts64, content.kemac_keys);
  if (!kemac.ok()) return Rejection::FromStatus(kemac.error(), std::string(name) + " KEMAC");

  mikey::Message resp;
  resp.header = request.header();
  resp.header.data_type = static_cast<uint8_t>(content.data_type);
  resp.header.v = false;
  resp.payloads.emplace_back(*t);
  resp.payloads.emplace_back(UriIdr(mikey::IdRole::kKms, env.kms_identity()));
  for (const auto& payload : content.before_kemac) resp.payloads.push_back(payload);
  resp.payloads.emplace_back(std::move(*kemac));
  for (const auto& payload : content.after_kemac) resp.payloads.push_back(payload);
  resp.payloads.emplace_back(mikey::VPayload{p.v->auth_alg, {}});
  auto resp_auth = env.provider.ImportTransientKey(keys->auth_key);
  if (!resp_auth.ok()) return Rejection::FromStatus(resp_auth.error(), "auth key");
  const ByteSpan appended[] = {request.bytes};
  auto out = mc::SealWithV(env.provider, resp, **resp_auth, appended);
  if (!out.ok()) return Rejection::FromStatus(out.error(), std::string("sealing ") + name);
  return std::move(*out);
}

StepResult<mikey::Bytes> BuildErrorMessage(const mikey::HeaderPrefix& header, uint8_t error_no,
                                           const mikey::TPayload* request_t, const mikey::VPayload* request_v,
                                           const Requester* requester, ExchangeEnv& env) {
  mikey::Message err;
  err.header.version = header.version;
  err.header.data_type = static_cast<uint8_t>(mikey::DataType::kError);
  err.header.v = false;
  err.header.prf_func = header.prf_func;  // identical to the request's (RFC 6043 §5.4)
  err.header.csb_id = header.csb_id;
  err.header.cs_count = 0;
  err.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kEmpty);
  auto t = FreshTimestamp(request_t, env.now);
  if (!t.ok()) return t.error();
  err.payloads.emplace_back(*t);
  err.payloads.emplace_back(mikey::ErrPayload{error_no});
  if (requester != nullptr && requester->auth_key != nullptr && request_v != nullptr) {
    // Authenticated with the auth key of the message in error (§5.4).
    err.payloads.emplace_back(mikey::VPayload{request_v->auth_alg, {}});
    auto sealed = mc::SealWithV(env.provider, err, *requester->auth_key, {});
    if (!sealed.ok()) return Rejection::FromStatus(sealed.error(), "building the MIKEY Error message");
    return std::move(*sealed);
  }
  auto encoded = mikey::Encode(err);
  if (!encoded.ok()) {
    return Rejection::FromStatus(Internal(encoded.error().ToString()), "building the MIKEY Error message");
  }
  return std::move(*encoded);
}

}  // namespace tkms::kms
