#include "tests/fuzz_service/service_env.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/kemac_cipher.h"
#include "firmware/mikey/crypto/protect.h"

namespace tkms::fuzz_service {
namespace {

[[noreturn]] void Broken(const std::string& what) {
  std::fprintf(stderr, "fuzz_service: the fixed test world is broken: %s\n", what.c_str());
  std::abort();
}

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

const Bytes& TicketKeyBytes() {
  static const Bytes key = Pattern(32, 0x70);
  return key;
}

}  // namespace

kms::TimePoint Now() { return kms::TimePoint(std::chrono::seconds(1800000000)); }  // 2027-01-15 08:00:00Z

uint64_t NowNtp() { return kms::NtpFromTime(Now()); }

Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }

const SecretBytes& AlicePsk() {
  static const SecretBytes psk = ToSecret(Pattern(32, 0xA1));
  return psk;
}
const SecretBytes& BobPsk() {
  static const SecretBytes psk = ToSecret(Pattern(32, 0xB0));
  return psk;
}
const Bytes& AlicePskId() {
  static const Bytes id = Pattern(16, 0x11);
  return id;
}
const Bytes& BobPskId() {
  static const Bytes id = Pattern(16, 0x22);
  return id;
}

void CounterFill(uint64_t& counter, std::span<uint8_t> out) {
  size_t i = 0;
  while (i < out.size()) {
    // splitmix64 (a bijective mixer; nothing here needs to be unpredictable).
    uint64_t z = (counter++) + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (int b = 0; b < 8 && i < out.size(); ++b, ++i) out[i] = static_cast<uint8_t>(z >> (8 * b));
  }
}

// ---- FakeKeys ---------------------------------------------------------------------

mc::CryptoProvider& FakeKeys::provider() {
  // Stateless for everything the KMS calls (HMAC, AES-CM, key import).
  static mc::TransientCryptoProvider provider;
  return provider;
}

Result<mc::SecretKeyPtr> FakeKeys::UserPsk(ByteSpan psk_id) {
  const Bytes id(psk_id.begin(), psk_id.end());
  if (id == AlicePskId()) return provider().ImportTransientKey(AlicePsk());
  if (id == BobPskId()) return provider().ImportTransientKey(BobPsk());
  return NotFound("no such user PSK");
}

Result<mc::SecretKeyPtr> FakeKeys::DecoyPsk() {
  static const SecretBytes decoy(32, 0xDE);
  return provider().ImportTransientKey(decoy);
}

Result<mc::SecretKeyPtr> FakeKeys::TicketKey(uint32_t key_id) {
  if (key_id != kTicketKeyId) return NotFound("no such ticket key");
  return provider().ImportTransientKey(TicketKeyBytes());
}

Status FakeKeys::Random(std::span<uint8_t> out) {
  CounterFill(counter_, out);
  return Status();
}

// ---- snapshot and KMS --------------------------------------------------------------

std::shared_ptr<const kms::KmsSnapshot> Snapshot() {
  static const std::shared_ptr<const kms::KmsSnapshot> snapshot = [] {
    auto snap = std::make_shared<kms::KmsSnapshot>();
    auto& c = snap->config;
    c.kms_identity = std::string(kKmsIdentity);
    c.mikey.timestamp_window_s = 60;
    c.mikey.replay_cache_entries = 256;  // a fresh KMS per input: never full
    c.policy_classes["default"] = provisioning::PolicyClass{};
    provisioning::PolicyClass strict;
    strict.allow_forking = false;
    strict.allow_reuse = false;
    strict.max_keys = 1;
    strict.max_responders = 2;
    strict.max_lifetime_s = 600;
    strict.default_lifetime_s = 300;
    c.policy_classes["strict"] = strict;
    c.default_policy_class = "default";
    c.token_users = true;
    // Bob is named by the configuration (class "strict"); Alice is a token user.
    provisioning::UserConfig bob;
    bob.identities = {std::string(kBob)};
    bob.psk_id = BobPskId();
    bob.policy_class = "strict";
    c.users.push_back(bob);
    c.groups.push_back(provisioning::GroupConfig{std::string(kTeam), {std::string(kAlice), std::string(kBob)}});
    const std::vector<kms::TokenUser> token_users = {
        kms::TokenUser{AlicePskId(), {std::string(kAlice)}},
        kms::TokenUser{BobPskId(), {std::string(kBob)}},
    };
    std::vector<std::string> warnings;
    snap->users = kms::UserDirectory::Build(c, token_users, warnings);
    if (!warnings.empty()) Broken("UserDirectory::Build: " + warnings.front());
    if (snap->users->size() != 2) Broken("expected two users");
    return std::shared_ptr<const kms::KmsSnapshot>(std::move(snap));
  }();
  return snapshot;
}

FreshKms::FreshKms() : clock_(Now()), kms_(keys_, clock_, Snapshot()) {}

kms::KmsReply FreshKms::Handle(kms::RequestType type, ByteSpan mikey) {
  kms::RequestContext context;
  context.type = type;
  context.request_id = "fuzz";
  context.peer = "127.0.0.1:1";
  return kms_.Handle(context, mikey);
}

kms::KmsReply FreshKms::HandleZk(kms::ZkClientKind kind, std::string_view name, ByteSpan mikey) {
  kms::RequestContext context;
  context.type = kms::RequestType::kTicketResolve;
  context.interface = kms::Interface::kZk;
  context.zk_client = kind;
  context.zk_client_name = std::string(name);
  context.request_id = "fuzz";
  context.peer = "127.0.0.1:1";
  return kms_.Handle(context, mikey);
}

// ---- UE messages ------------------------------------------------------------------

mc::CryptoProvider& UeProvider() {
  static CounterRandomProvider provider;
  return provider;
}

ue::RequestInitParams AliceRequestParams(bool forking) {
  ue::RequestInitParams p;
  p.psk = AlicePsk();
  p.initiator.id = Text(kAlice);
  p.kms.id = Text(kKmsIdentity);
  p.csb_id = forking ? 0x0F0E0D0Cu : 0x01020304u;
  p.timestamp.ts_type = static_cast<uint8_t>(mikey::TsType::kNtpUtc);
  p.timestamp.value = NowNtp();
  p.randri = Pattern(32, forking ? 0x40 : 0x30);
  p.policy.responders.push_back(ue::IdValue{Text(kBob)});
  if (forking) p.policy.flags = static_cast<uint16_t>(p.policy.flags | mikey::kFlagI);
  return p;
}

ue::ResolveInitParams BobResolveParams(const mikey::TicketPayload& ticket, uint32_t csb_id) {
  ue::ResolveInitParams p;
  p.psk = BobPsk();
  p.responder.id = Text(kBob);
  p.kms.id = Text(kKmsIdentity);
  p.ticket = ticket;
  p.csb_id = csb_id;
  p.timestamp.ts_type = static_cast<uint8_t>(mikey::TsType::kNtpUtc);
  p.timestamp.value = NowNtp();
  p.randrr = Pattern(32, static_cast<uint8_t>(csb_id));
  return p;
}

namespace {

ue::RequestInit BuildRequest(mc::CryptoProvider& provider, bool forking) {
  auto r = ue::BuildRequestInitPsk(provider, AliceRequestParams(forking));
  if (!r.ok()) Broken("BuildRequestInitPsk: " + r.error().ToString());
  return std::move(*r);
}

ue::TicketGrant Grant(mc::CryptoProvider& provider, const ue::RequestInit& request) {
  FreshKms kms;
  auto reply = kms.Handle(kms::RequestType::kTicketRequest, request.bytes);
  if (reply.outcome != kms::Outcome::kOk) Broken("the KMS refused the fixed request: " + reply.detail);
  auto grant = ue::ParseRequestResp(provider, reply.mikey, request);
  if (!grant.ok()) Broken("ParseRequestResp: " + grant.error().ToString());
  return std::move(*grant);
}

ue::ResolveInit BuildResolve(mc::CryptoProvider& provider, const mikey::TicketPayload& ticket,
                             uint32_t csb_id) {
  auto r = ue::BuildResolveInitPsk(provider, BobResolveParams(ticket, csb_id));
  if (!r.ok()) Broken("BuildResolveInitPsk: " + r.error().ToString());
  return std::move(*r);
}

}  // namespace

const FixedExchanges& Fixed() {
  static const FixedExchanges fixed = [] {
    // Its own provider: the TRANSFER_INIT's SSRC comes from its counter RNG,
    // so the messages do not depend on what else used UeProvider() before.
    CounterRandomProvider provider;
    FixedExchanges f;
    f.plain_request = BuildRequest(provider, false);
    f.forking_request = BuildRequest(provider, true);
    const ue::TicketGrant plain = Grant(provider, f.plain_request);
    f.plain_resolve = BuildResolve(provider, plain.ticket, 0x0A0B0C0Du);
    const ue::TicketGrant forking = Grant(provider, f.forking_request);
    ue::TransferInitParams t;
    t.initiator.id = Text(kAlice);
    t.responder.id = Text(kBob);
    t.csb_id = 0x55667788u;
    t.timestamp.value = NowNtp();
    t.randri = Pattern(32, 0x50);
    auto transfer = ue::BuildTransferInit(provider, forking, t);
    if (!transfer.ok()) Broken("BuildTransferInit: " + transfer.error().ToString());
    f.forking_resolve = BuildResolve(provider, transfer->ticket, 0x1A1B1C1Du);
    return f;
  }();
  return fixed;
}

// ---- re-sealing answers ---------------------------------------------------------------

AnswerContext ContextOf(const ue::RequestInit& r) {
  return AnswerContext{&r.bytes, &r.psk, ByteSpan(r.randri), std::nullopt, &r.auth_key};
}

AnswerContext ContextOf(const ue::ResolveInit& r) {
  return AnswerContext{&r.bytes, &r.psk, std::nullopt, ByteSpan(r.randrr), &r.auth_key};
}

namespace {

bool IsAesCm(uint8_t encr_alg) {
  return encr_alg == static_cast<uint8_t>(mikey::EncrAlg::kAesCm128) ||
         encr_alg == static_cast<uint8_t>(mikey::EncrAlg::kAesCm256);
}

// Decodes `answer` and derives its message keys; applies `transform` (the
// KEMAC cipher, either direction) to the first AES-CM KEMAC's data. With
// `seal`, recomputes V; otherwise re-encodes as is.
std::optional<Bytes> Rework(ByteSpan answer, const AnswerContext& ctx, bool seal) {
  mikey::DecodeOptions lenient;
  lenient.check_composition = false;
  auto decoded = mikey::Decode(answer, lenient);
  if (!decoded.ok() || decoded->payloads.empty()) return std::nullopt;
  mikey::Message& m = *decoded;
  const auto* v = std::get_if<mikey::VPayload>(&m.payloads.back());
  if (v == nullptr || v->auth_alg == static_cast<uint8_t>(mikey::MacAlg::kNull) ||
      !mikey::IsKnownMacAlg(v->auth_alg)) {
    return std::nullopt;
  }
  mc::CryptoProvider& provider = UeProvider();
  if (m.header.data_type == static_cast<uint8_t>(mikey::DataType::kError)) {
    if (!seal) return std::nullopt;
    auto key = provider.ImportTransientKey(*ctx.request_auth_key);
    if (!key.ok()) return std::nullopt;
    auto sealed = mc::SealWithV(provider, m, **key, {});
    if (!sealed.ok()) return std::nullopt;
    return std::move(*sealed);
  }
  mikey::KemacPayload* kemac = nullptr;
  for (auto& p : m.payloads) {
    if ((kemac = std::get_if<mikey::KemacPayload>(&p)) != nullptr) break;
  }
  const uint8_t encr_alg = kemac != nullptr ? kemac->encr_alg : static_cast<uint8_t>(mikey::EncrAlg::kNull);
  if (!mikey::IsKnownEncrAlg(encr_alg) || !mikey::IsKnownPrf(m.header.prf_func)) return std::nullopt;
  auto psk = provider.ImportTransientKey(*ctx.psk);
  if (!psk.ok()) return std::nullopt;
  auto keys = mc::DeriveMessageKeys(provider, static_cast<mikey::PrfFunc>(m.header.prf_func), **psk,
                                    mc::Direction::kResponse, m.header.csb_id, ctx.randri, ctx.randrr,
                                    static_cast<mikey::EncrAlg>(encr_alg), static_cast<mikey::MacAlg>(v->auth_alg));
  if (!keys.ok()) return std::nullopt;
  const auto* t = std::get_if<mikey::TPayload>(&m.payloads.front());
  if (kemac != nullptr && IsAesCm(encr_alg) && t != nullptr) {
    auto ts64 = mc::TimestampForIv(static_cast<mikey::TsType>(t->ts_type), t->value);
    auto encr_key = provider.ImportTransientKey(keys->encr_key);
    if (ts64.ok() && encr_key.ok()) {
      // AES-CM is its own inverse: the same call encrypts and decrypts.
      auto out = mc::KemacEncrypt(provider, static_cast<mikey::EncrAlg>(encr_alg), **encr_key, keys->salt_key,
                                  m.header.csb_id, *ts64, kemac->encr_data);
      if (!out.ok()) return std::nullopt;
      kemac->encr_data.assign(out->begin(), out->end());
    }
  }
  if (!seal) {
    auto encoded = mikey::Encode(m);
    if (!encoded.ok()) return std::nullopt;
    return std::move(*encoded);
  }
  auto auth = provider.ImportTransientKey(keys->auth_key);
  if (!auth.ok()) return std::nullopt;
  const ByteSpan appended[] = {*ctx.request};
  auto sealed = mc::SealWithV(provider, m, **auth, appended);
  if (!sealed.ok()) return std::nullopt;
  return std::move(*sealed);
}

}  // namespace

std::optional<Bytes> ResealAnswer(ByteSpan answer, const AnswerContext& ctx) { return Rework(answer, ctx, true); }

std::optional<Bytes> WithPlaintextKemac(ByteSpan answer, const AnswerContext& ctx) {
  return Rework(answer, ctx, false);
}

}  // namespace tkms::fuzz_service
