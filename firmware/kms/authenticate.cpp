// Step 2 of an exchange: who sent this request? (RFC 6043 §4.2.1.4,
// §4.2.3.4; RFC 3830 §5.4 timestamps and replay; TS 33.328 B.2.2.2 steps 4-5.)
//
// The user is found by IDRpsk, else by IDRi / IDRr; V is verified with a key
// derived from the user's PSK by the MIKEY PRF, inside the token. An unknown
// user costs the same token work as a known one with a wrong MAC (a decoy
// key takes the PSK's place) and gets the same answer, so the KMS's answers
// and its token load do not tell a prober which users exist. Only then are
// identities, IDRkms, the timestamp and the replay cache looked at.
#include <string>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/base/user_identity.h"
#include "firmware/kms/exchange.h"
#include "firmware/kms/payload_helpers.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/mac.h"
#include "firmware/mikey/crypto/protect.h"

namespace tkms::kms {
namespace {

namespace mc = mikey::crypto;
using mikey::ErrorNo;

// When a message carries no IDRi / IDRr, each of the user's identities is
// tried as Identity_i/r of the MAC (RFC 6043 §5.5); always this many MACs,
// so the count does not depend on the user.
constexpr size_t kIdentityCandidates = 8;

bool IsTokenTrouble(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kResourceExhausted;
}

ByteSpan AsBytes(const std::string& s) { return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

// The user the message names, or nullptr (unknown: the decoy is used).
const UserRecord* FindUser(const RequestPayloads& p, const UserDirectory& users) {
  if (p.idr_psk != nullptr) return users.FindByPskId(p.idr_psk->data);
  return users.FindByIdentity(IdText(p.idr_peer->data));
}

std::string NamedAs(const RequestPayloads& p) {
  if (p.idr_psk != nullptr) return "PSK id " + HexEncode(p.idr_psk->data);
  return "identity '" + IdText(p.idr_peer->data) + "'";
}

// Identity_i/r candidates of the MAC: IDRi/IDRr when present, else the
// user's identities, padded to a fixed count.
std::vector<std::string> IdentityCandidates(const RequestPayloads& p, const UserRecord* user) {
  if (p.idr_peer != nullptr) return {IdText(p.idr_peer->data)};
  std::vector<std::string> out;
  if (user != nullptr) {
    for (size_t i = 0; i < user->identities.size() && out.size() < kIdentityCandidates; ++i) {
      out.push_back(user->identities[i]);
    }
  }
  if (out.empty()) out.push_back(std::string());
  while (out.size() < kIdentityCandidates) out.push_back(out.back());
  return out;
}

// Verifies V against every candidate (no early exit); the first that
// verifies is the authenticated identity.
StepResult<std::optional<std::string>> VerifyAgainst(const ParsedRequest& request, const mc::SecretKey& auth_key,
                                                     const std::vector<std::string>& candidates,
                                                     const std::string& kms_id, ExchangeEnv& env) {
  std::optional<std::string> verified;
  for (const auto& candidate : candidates) {
    const ByteSpan appended[] = {AsBytes(candidate), AsBytes(kms_id)};
    Status s = mc::VerifyV(env.provider, request.bytes, request.message, request.extents, auth_key, appended);
    if (s.ok()) {
      if (!verified) verified = candidate;
      continue;
    }
    if (s.code() == StatusCode::kPermissionDenied) continue;
    if (IsTokenTrouble(s)) return Rejection::FromStatus(s, "verifying V");
    return Rejection::Mikey(ErrorNo::kAuthFailure, Refusal::kAuthentication, "V: " + s.message());
  }
  return verified;
}

}  // namespace

StepResult<Requester> Authenticate(const ParsedRequest& request, ExchangeEnv& env) {
  const RequestPayloads& p = request.payloads;
  // First: an unprotected message (V with the NULL MAC, as on Zk) is never
  // served on Ua, whoever it names (docs/zk.md).
  const auto mac_alg = static_cast<mikey::MacAlg>(p.v->auth_alg);
  if (mac_alg == mikey::MacAlg::kNull) {
    return Rejection::Mikey(ErrorNo::kInvalidMac, Refusal::kAuthentication, "the V payload names the NULL MAC");
  }
  if (p.idr_psk == nullptr && p.idr_peer == nullptr) {
    return Rejection::Mikey(ErrorNo::kAuthFailure, Refusal::kUnknownUser,
                            "neither IDRpsk nor an identity names the user");
  }
  Requester who;
  who.user = FindUser(p, *env.snapshot.users);
  std::string unknown_why = who.user == nullptr ? "no user with " + NamedAs(p) : std::string();
  if (who.user != nullptr) {
    auto psk = env.keys.UserPsk(who.user->psk_id);
    if (psk.ok()) {
      who.psk = std::move(*psk);
    } else if (psk.error().code() == StatusCode::kNotFound) {
      unknown_why = who.user->name + ": PSK no longer on the token";
      who.user = nullptr;
    } else {
      return Rejection::FromStatus(psk.error(), "user PSK");
    }
  }
  // The unknown user's decoy: the same derivation and verification work.
  mc::SecretKeyPtr decoy;
  if (who.user == nullptr) {
    auto key = env.keys.DecoyPsk();
    if (!key.ok()) return Rejection::FromStatus(key.error(), "decoy key");
    decoy = std::move(*key);
  }
  const mc::SecretKey& psk = who.user != nullptr ? *who.psk : *decoy;
  const ByteSpan rand = p.randr->rand;
  const bool initiator = request.is_request();
  auto keys = mc::DeriveMessageKeys(env.provider, static_cast<mikey::PrfFunc>(request.header().prf_func), psk,
                                    mc::Direction::kInitial, request.header().csb_id,
                                    initiator ? std::optional<ByteSpan>(rand) : std::nullopt,
                                    initiator ? std::nullopt : std::optional<ByteSpan>(rand),
                                    mikey::EncrAlg::kNull, mac_alg);
  if (!keys.ok()) return Rejection::FromStatus(keys.error(), "deriving the request's auth key");
  auto auth_key = env.provider.ImportTransientKey(keys->auth_key);
  if (!auth_key.ok()) return Rejection::FromStatus(auth_key.error(), "auth key");

  // Identity_i/r || Identity_kms follow the message in the MAC (§5.5).
  const std::string kms_id = p.idr_kms != nullptr ? IdText(p.idr_kms->data) : env.kms_identity();
  auto verified = VerifyAgainst(request, **auth_key, IdentityCandidates(p, who.user), kms_id, env);
  if (!verified.ok()) return verified.error();
  if (who.user == nullptr) return Rejection::Mikey(ErrorNo::kAuthFailure, Refusal::kUnknownUser, unknown_why);
  if (!*verified) {
    return Rejection::Mikey(ErrorNo::kAuthFailure, Refusal::kAuthentication,
                            "V MAC does not verify for " + who.user->name);
  }
  who.identity = **verified;
  who.auth_key = std::move(*auth_key);  // from here on, Error messages carry a V
  return who;
}

std::optional<Rejection> AdmitRequester(const ParsedRequest& request, const Requester& who, ExchangeEnv& env) {
  const RequestPayloads& p = request.payloads;
  if (!who.user->Owns(who.identity)) {
    return Rejection::Mikey(ErrorNo::kInvalidId, Refusal::kIdentityNotOwned,
                            "identity '" + who.identity + "' does not belong to " + who.user->name);
  }
  if (p.idr_kms != nullptr && !SameUserIdentity(IdText(p.idr_kms->data), env.kms_identity())) {
    return Rejection::Mikey(ErrorNo::kInvalidId, Refusal::kWrongKms,
                            "IDRkms names '" + IdText(p.idr_kms->data) + "'");
  }
  return CheckFreshness(request, who.user->psk_id, p.v->mac, env);
}

// The timestamp window (RFC 3830 §5.4) and the restart rule (docs/kms.md
// "Replay protection across restarts"), then the replay cache.
std::optional<Rejection> CheckFreshness(const ParsedRequest& request, ByteSpan who, ByteSpan unique,
                                        ExchangeEnv& env) {
  const auto& t = *request.payloads.t;
  const auto sent = TimeFromTimestamp(t.ts_type, t.value);
  if (!sent) {
    return Rejection::Mikey(ErrorNo::kInvalidTs, Refusal::kStaleTimestamp,
                            "TS type " + std::to_string(t.ts_type) + " is not a time (COUNTER is not accepted)");
  }
  const auto window = std::chrono::seconds(env.snapshot.config.mikey.timestamp_window_s);
  const auto skew = *sent > env.now ? *sent - env.now : env.now - *sent;
  if (skew > window) {
    return Rejection::Mikey(
        ErrorNo::kInvalidTs, Refusal::kStaleTimestamp,
        "timestamp is " + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(skew).count()) +
            " s from the KMS clock (window " + std::to_string(window.count()) + " s)");
  }
  // Whole seconds: NTP-UTC-32 has no fraction, and a request made in the
  // second the KMS started cannot have reached the previous instance.
  using std::chrono::floor;
  using std::chrono::seconds;
  if (floor<seconds>(*sent) < floor<seconds>(env.started)) {
    // A previous instance of this KMS may have accepted it: its replay
    // cache is gone (RFC 3830 §5.4).
    return Rejection::Mikey(ErrorNo::kInvalidTs, Refusal::kBeforeStart,
                            "timestamp precedes this KMS's start; it may have been accepted before the restart");
  }
  // One entry per (data type, sender, MAC or RAND), until the message's T
  // leaves the window. The sender's length is part of the key, so no two
  // (who, unique) pairs give the same bytes.
  mikey::Bytes key;
  key.push_back(request.header().data_type);
  key.push_back(static_cast<uint8_t>(who.size() >> 8));
  key.push_back(static_cast<uint8_t>(who.size()));
  key.insert(key.end(), who.begin(), who.end());
  key.insert(key.end(), unique.begin(), unique.end());
  const auto expires = env.mono_now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                          *sent + window - env.now);
  Status inserted = env.replay.Insert(key, expires, env.mono_now);
  if (inserted.code() == StatusCode::kPermissionDenied) {
    return Rejection::Mikey(ErrorNo::kInvalidTs, Refusal::kReplay, "replayed message");
  }
  if (!inserted.ok()) {
    Rejection r = Rejection::FromStatus(inserted, "replay cache");
    r.outcome = Outcome::kUnavailable;
    r.refusal = Refusal::kOverloaded;
    return r;
  }
  return std::nullopt;
}


}  // namespace tkms::kms
