// Fuzz target: the UE's handling of received Ticket Transfer messages
// (tools/ue/transfer.h, RFC 6043 §4.2.2): the Responder's checks of a
// TRANSFER_INIT and the TRANSFER_RESP it builds (DecodeTransferInit,
// CheckTransferInitEarly, VerifyTransferInit, BuildTransferResp,
// ResponderSessionWithoutResponse), and the Initiator's ParseTransferResp,
// against one fixed ticket without forking (MPKi of 32 bytes, one 16-byte
// TGK). Deterministic: the RNG is a counter that restarts for every input.
//
// Input: byte 0 selects the mode -- bit 0: the Initiator's side (the rest is
// a TRANSFER_RESP answering the built-in TRANSFER_INIT), else the Responder's
// (the rest is a TRANSFER_INIT); bit 1: re-seal (the target recomputes the V
// MAC with the right key first, so mutations reach the checks behind it);
// bit 2: patch (the rest is (offset, xor) byte pairs applied to the built-in
// message of that side instead of a whole message); bit 3 (before the
// others): the rest is the answer to a network function's unprotected
// RESOLVE_INIT_PSK for the built-in ticket (tools/ue/function_resolve.h, TR
// 33.828 step 5) -- failures are kVerification, kBadResponse or kMikeyError,
// an accepted answer has the request's CSB ID in its HDR and at least MPKi.
// Properties (besides no crash, leak, UB):
//   * failures are kVerification, kBadResponse, kInvalidArgument or (an Error
//     message at the Initiator) kMikeyError -- never kInternal;
//   * Responder: a TRANSFER_RESP it builds decodes strictly with the
//     TRANSFER_INIT's CSB ID; the Initiator that sent that TRANSFER_INIT
//     accepts it, and both sides derive the same SRTP keys; RANDRi and RANDRr
//     (G) together are at least as long as the longest key (RFC 6043 §12.1);
//   * Initiator: an accepted TRANSFER_RESP has the TRANSFER_INIT's CSB ID,
//     keeps every offered crypto session, carries RANDRr iff the G flag, and
//     RANDRi + RANDRr is at least the longest key.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "firmware/base/big_endian.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/protect.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/fuzz/fuzz_target.h"
#include "tools/ue/function_resolve.h"
#include "tools/ue/transfer.h"

namespace {

namespace mc = tkms::mikey::crypto;
namespace mikey = tkms::mikey;
namespace ue = tkms::ue;
using tkms::ByteSpan;
using tkms::SecretBytes;
using mikey::Bytes;

constexpr const char* kTarget = "ue_transfer_fuzz";
constexpr uint64_t kNow = 0xEB3F2A2080000000ull;  // NTP-UTC, 2025

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

// The TransientCryptoProvider with a counter for Random().
class CounterProvider final : public mc::CryptoProvider {
 public:
  tkms::Result<mc::SecretKeyPtr> ImportTransientKey(ByteSpan bytes) override {
    return inner_.ImportTransientKey(bytes);
  }
  tkms::Result<mc::SecretKeyPtr> SliceKey(const mc::SecretKey& key, size_t offset, size_t len) override {
    return inner_.SliceKey(key, offset, len);
  }
  tkms::Status Hmac(mc::HashAlg alg, const mc::SecretKey& key, std::span<const ByteSpan> parts,
                    std::span<uint8_t> out) override {
    return inner_.Hmac(alg, key, parts, out);
  }
  tkms::Status AesCtr(const mc::SecretKey& key, std::span<const uint8_t, 16> iv, ByteSpan in,
                      std::span<uint8_t> out) override {
    return inner_.AesCtr(key, iv, in, out);
  }
  tkms::Status Random(std::span<uint8_t> out) override {
    for (uint8_t& b : out) b = static_cast<uint8_t>(0x5A ^ counter_++);
    return tkms::Status::Ok();
  }

 private:
  mc::TransientCryptoProvider inner_;
  uint64_t counter_ = 0;
};

Bytes Text(const char* s) { return Bytes(s, s + std::char_traits<char>::length(s)); }
Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + 7 * i);
  return b;
}

// The fixed world: one ticket for bob, its grant (Initiator) and resolve (Responder).
struct World {
  ue::TicketGrant grant;
  ue::ResolvedTicket resolved;
  ue::TransferInit init;       // the built-in TRANSFER_INIT
  Bytes resp;                  // the built-in TRANSFER_RESP answering it
  ue::FunctionResolveInit function_init;  // a network function's resolve of the ticket
};

mikey::KeyDataPayload Key(mikey::KeyType type, Bytes key, uint8_t spi) {
  mikey::KeyDataPayload k;
  k.key_type = static_cast<uint8_t>(type);
  k.key = SecretBytes(key.begin(), key.end());
  k.kv.kv_type = static_cast<uint8_t>(mikey::KvType::kSpi);
  k.kv.spi = {spi};
  return k;
}

ue::TransferRespParams RespParams() {
  ue::TransferRespParams p;
  p.responder.id = Text("sip:bob@example.org");
  p.timestamp = ue::TimestampSpec{0, kNow + 1};
  p.randrr = Pattern(32, 0x30);
  p.add_ssrcs = {0x0B0B0B0B};
  return p;
}

const World& TheWorld() {
  static const World world = [] {
    World w;
    mikey::TicketPolicy policy;
    policy.ticket_type = static_cast<uint16_t>(mikey::TicketType::kMikeyBase);
    policy.subtype = mikey::kBaseTicketSubtype;
    policy.version = mikey::kBaseTicketVersion;
    policy.flags = mikey::kFlagD | mikey::kFlagE | mikey::kFlagF | mikey::kFlagG | mikey::kFlagH |
                   mikey::kFlagN | mikey::kFlagO;
    policy.prf_func = static_cast<uint8_t>(mikey::PrfFunc::kHmacSha256);
    policy.tp_data.emplace_back(mikey::IdrPayload{2, 1, Text("sip:bob@example.org")});
    w.grant.ticket.policy = policy;
    mikey::BaseTicketData data;  // opaque to the UE, but well formed (RFC 6043 App. A)
    data.thdr.data = {0x00, 0x01};
    data.t = mikey::TPayload{0, kNow};
    data.rand.rand = Pattern(32, 0x10);
    data.kemac.encr_alg = static_cast<uint8_t>(mikey::EncrAlg::kAesCm256);
    data.kemac.encr_data = Pattern(60, 0x11);
    data.v = mikey::VPayload{2, Pattern(32, 0x12)};
    auto ticket_data = mikey::EncodeBaseTicketData(data);
    Check(ticket_data.ok(), "the built-in Ticket Data encodes");
    w.grant.ticket.ticket_data = std::move(*ticket_data);
    w.grant.policy = policy;
    w.grant.mpk_keys = {Key(mikey::KeyType::kMpk, Pattern(32, 0x01), 1)};
    w.grant.mpki = w.grant.mpk_keys[0].key;
    w.grant.session_keys = {Key(mikey::KeyType::kTgk, Pattern(16, 0x02), 3)};
    w.resolved.mpki = w.grant.mpki;
    w.resolved.mpk_keys = w.grant.mpk_keys;
    w.resolved.session_keys = w.grant.session_keys;
    CounterProvider provider;
    ue::TransferInitParams ip;
    ip.initiator.id = Text("sip:alice@example.org");
    ip.responder.id = Text("sip:bob@example.org");
    ip.csb_id = 0x01020304;
    ip.timestamp = ue::TimestampSpec{0, kNow};
    ip.randri = Pattern(32, 0x20);
    auto init = ue::BuildTransferInit(provider, w.grant, ip);
    if (!init.ok()) std::fprintf(stderr, "%s: %s\n", kTarget, init.error().ToString().c_str());
    Check(init.ok(), "the built-in TRANSFER_INIT builds");
    w.init = std::move(*init);
    auto resp = ue::BuildTransferResp(provider, w.init.bytes, w.resolved, RespParams());
    if (!resp.ok()) std::fprintf(stderr, "%s: %s\n", kTarget, resp.error().ToString().c_str());
    Check(resp.ok(), "the built-in TRANSFER_RESP builds");
    w.resp = std::move(resp->bytes);
    ue::FunctionResolveParams fp;
    fp.ticket = w.init.ticket;
    fp.kms_identity = Text("kms.example.org");
    fp.csb_id = 0x01020304;
    fp.timestamp = ue::TimestampSpec{0, kNow};
    fp.randrr = Pattern(16, 0x30);
    auto function_init = ue::BuildFunctionResolveInit(provider, fp);
    Check(function_init.ok(), "the built-in network function RESOLVE_INIT_PSK builds");
    w.function_init = std::move(*function_init);
    return w;
  }();
  return world;
}

// (offset, xor) pairs from `patch` applied to `base`.
Bytes Patched(const Bytes& base, ByteSpan patch) {
  Bytes out = base;
  for (size_t i = 0; i + 1 < patch.size() && !out.empty(); i += 2) out[patch[i] % out.size()] ^= patch[i + 1];
  return out;
}

const mikey::RandrPayload* FindRandr(const mikey::Message& m, uint8_t role) {
  for (const auto& p : m.payloads) {
    if (const auto* r = std::get_if<mikey::RandrPayload>(&p); r != nullptr && r->role == role) return r;
  }
  return nullptr;
}

const mikey::IdrPayload* FindIdr(const mikey::Message& m, uint8_t role) {
  for (const auto& p : m.payloads) {
    if (const auto* r = std::get_if<mikey::IdrPayload>(&p); r != nullptr && r->role == role) return r;
  }
  return nullptr;
}

// Re-seals `bytes` (if it decodes strictly and ends with an HMAC V) as the
// peer holding `mpk` would: label RANDRi [, RANDRr], `appended` after it.
Bytes Reseal(mc::CryptoProvider& provider, const Bytes& bytes, ByteSpan mpk, mc::Direction direction,
             const Bytes& randri, bool with_randrr, const std::vector<Bytes>& appended_extra) {
  auto m = mikey::Decode(bytes);
  if (!m.ok() || m->payloads.empty()) return bytes;
  const auto* v = std::get_if<mikey::VPayload>(&m->payloads.back());
  if (v == nullptr || v->auth_alg == 0 || !mikey::IsKnownMacAlg(v->auth_alg) || !mikey::IsKnownPrf(m->header.prf_func)) {
    return bytes;
  }
  const auto* ri = direction == mc::Direction::kInitial ? FindRandr(*m, 1) : nullptr;
  const Bytes& label_ri = ri != nullptr ? ri->rand : randri;
  const auto* rr = with_randrr ? FindRandr(*m, 2) : nullptr;
  auto key = provider.ImportTransientKey(mpk);
  if (!key.ok()) return bytes;
  auto keys = mc::DeriveMessageKeys(provider, static_cast<mikey::PrfFunc>(m->header.prf_func), **key, direction,
                                    m->header.csb_id, ByteSpan(label_ri),
                                    rr != nullptr ? std::optional<ByteSpan>(rr->rand) : std::nullopt,
                                    mikey::EncrAlg::kNull, static_cast<mikey::MacAlg>(v->auth_alg));
  if (!keys.ok()) return bytes;
  auto auth = provider.ImportTransientKey(keys->auth_key);
  if (!auth.ok()) return bytes;
  std::vector<ByteSpan> appended(appended_extra.begin(), appended_extra.end());
  auto sealed = mc::SealWithV(provider, *m, **auth, appended);
  return sealed.ok() ? *sealed : bytes;
}

void CheckKind(const ue::UeError& e, bool mikey_error_allowed) {
  Check(e.kind == ue::UeErrorKind::kVerification || e.kind == ue::UeErrorKind::kBadResponse ||
            e.kind == ue::UeErrorKind::kInvalidArgument ||
            (mikey_error_allowed && e.kind == ue::UeErrorKind::kMikeyError),
        "failure kinds");
}

bool SameKeys(const std::vector<ue::SrtpSessionKeys>& a, const std::vector<ue::SrtpSessionKeys>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].cs_id != b[i].cs_id || a[i].ssrc != b[i].ssrc || a[i].master_key != b[i].master_key ||
        a[i].master_salt != b[i].master_salt) {
      return false;
    }
  }
  return true;
}

// The Responder's side: a received TRANSFER_INIT.
void Responder(const Bytes& init_bytes) {
  const World& w = TheWorld();
  CounterProvider provider;
  auto decoded = ue::DecodeTransferInit(init_bytes);
  if (!decoded.ok()) {
    CheckKind(decoded.error(), false);
    return;
  }
  (void)ue::CheckTransferInitEarly(*decoded, {Text("sip:bob@example.org")}, kNow);
  if (auto v = ue::VerifyTransferInit(provider, init_bytes, w.resolved); !v.ok()) CheckKind(v.error(), false);
  if (auto s = ue::ResponderSessionWithoutResponse(provider, init_bytes, w.resolved); !s.ok()) {
    CheckKind(s.error(), false);
  }
  auto resp = ue::BuildTransferResp(provider, init_bytes, w.resolved, RespParams());
  if (!resp.ok()) {
    CheckKind(resp.error(), false);
    return;
  }
  auto resp_decoded = mikey::Decode(resp->bytes);
  Check(resp_decoded.ok() && resp_decoded->header.csb_id == decoded->header.csb_id,
        "a built TRANSFER_RESP decodes with the TRANSFER_INIT's CSB ID");
  const auto* randri = FindRandr(*decoded, 1);
  const bool g = (resp->session.ticket_flags & mikey::kFlagG) != 0;
  Check(randri != nullptr && randri->rand.size() + (g && resp->session.randrr ? resp->session.randrr->size() : 0) >=
                                 ue::LongestTransferKey(w.resolved),
        "RANDRi + RANDRr covers the longest key");
  // The Initiator that sent this TRANSFER_INIT (its grant carries the same ticket).
  ue::TicketGrant grant = w.grant;
  for (const auto& p : decoded->payloads) {
    if (const auto* t = std::get_if<mikey::TicketPayload>(&p)) grant.ticket = *t;
  }
  grant.ticket.initiator_data.reset();
  grant.policy = grant.ticket.policy;
  ue::TransferInit sent;
  sent.bytes = init_bytes;
  sent.message = *decoded;
  sent.ticket = grant.ticket;
  sent.csb_id = decoded->header.csb_id;
  sent.randri = randri->rand;
  auto initiator = ue::ParseTransferResp(provider, resp->bytes, grant, sent);
  if (!initiator.ok()) std::fprintf(stderr, "%s: %s\n", kTarget, initiator.error().ToString().c_str());
  Check(initiator.ok(), "the Initiator accepts the TRANSFER_RESP the Responder built");
  auto ik = ue::DeriveSrtpKeys(provider, *initiator);
  auto rk = ue::DeriveSrtpKeys(provider, resp->session);
  Check(ik.ok() == rk.ok(), "both sides derive keys or neither does");
  if (ik.ok()) Check(SameKeys(*ik, *rk), "both sides derive the same SRTP keys");
}

// The Initiator's side: a received TRANSFER_RESP answering the built-in TRANSFER_INIT.
void Initiator(const Bytes& resp_bytes) {
  const World& w = TheWorld();
  CounterProvider provider;
  auto session = ue::ParseTransferResp(provider, resp_bytes, w.grant, w.init);
  if (!session.ok()) {
    CheckKind(session.error(), true);
    return;
  }
  Check(session->csb_id == w.init.csb_id, "the TRANSFER_INIT's CSB ID");
  for (const auto& offered : w.init.message.header.generic_map) {
    Check(std::any_of(session->crypto_sessions.begin(), session->crypto_sessions.end(),
                      [&](const mikey::GenericIdEntry& cs) { return cs.cs_id == offered.cs_id; }),
          "every offered crypto session is kept");
  }
  Check(session->randrr.has_value() == ((w.grant.policy.flags & mikey::kFlagG) != 0), "RANDRr iff G");
  Check(session->randri.size() + (session->randrr ? session->randrr->size() : 0) >= ue::LongestTransferKey(w.grant),
        "RANDRi + RANDRr covers the longest key");
  if (auto keys = ue::DeriveSrtpKeys(provider, *session); !keys.ok()) CheckKind(keys.error(), false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const World& w = TheWorld();
  const uint8_t mode = data[0];
  const bool initiator = (mode & 1) != 0, reseal = (mode & 2) != 0, patch = (mode & 4) != 0;
  const ByteSpan rest(data + 1, size - 1);
  if ((mode & 8) != 0) {
    CounterProvider provider;
    auto keys = ue::ParseFunctionResolveResp(provider, rest, w.function_init);
    if (!keys.ok()) {
      CheckKind(keys.error(), true);
      Check(keys.error().kind != ue::UeErrorKind::kInvalidArgument, "no invalid_argument for an answer");
      return 0;
    }
    Check(!keys->mpk_keys.empty() && rest.size() >= 8 && tkms::LoadBe32(rest.subspan<4, 4>()) == 0x01020304,
          "an accepted answer carries MPKi and the request's CSB ID");
    return 0;
  }
  Bytes message = patch ? Patched(initiator ? w.resp : w.init.bytes, rest) : Bytes(rest.begin(), rest.end());
  CounterProvider provider;
  if (initiator) {
    if (reseal) {
      message = Reseal(provider, message, w.grant.mpki, mc::Direction::kResponse, w.init.randri, true, {w.init.bytes});
    }
    Initiator(message);
  } else {
    if (reseal) {
      auto m = mikey::Decode(message);
      std::vector<Bytes> ids{{}, {}};
      if (m.ok()) {
        if (const auto* i = FindIdr(*m, 1)) ids[0] = i->data;
        if (const auto* r = FindIdr(*m, 2)) ids[1] = r->data;
      }
      message = Reseal(provider, message, w.resolved.mpki, mc::Direction::kInitial, {}, false, ids);
    }
    Responder(message);
  }
  return 0;
}
