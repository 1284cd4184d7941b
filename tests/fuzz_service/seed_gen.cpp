// fuzz_service_seeds OUTDIR: writes the seed inputs of the service fuzz targets
// to OUTDIR/<target>/<sha1 of the contents>, as libFuzzer names corpus files.
//
// Why: a fuzzer that starts from random bytes never produces a REQUEST_INIT
// with a correct V MAC, so it never gets past authentication. These seeds are
// real messages of the fixed test world (service_env.h): valid requests and
// resolves the fake KMS grants, requests it refuses for each reason it can
// give after authentication, and mutations (bad MAC, truncations, wrong data
// type or version). For ue_response_fuzz, the fake KMS's real answers to the
// fixed requests and its Error messages. For kms_zk_fuzz, unprotected
// RESOLVE_INIT_PSKs of the fixed world's tickets from a peer KMS and from a
// network function (accepted, and refused for each reason AdmitZkClient and
// ResolveTicket give), and the KMS's Zk answers to them for ReadPeerAnswer.
// For web_annex_a_fuzz, query strings,
// Content-Type values, Connection values and bodies. Each seed's first byte is
// the target's selector byte (kms_handle_fuzz: requesttype; ue_response_fuzz:
// which check), documented in the targets.
//
// Everything is deterministic (counter RNGs, a fixed clock): running the tool
// again writes the same files. Not a test; not built in the fuzz preset.
#include <mbedtls/sha1.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/kms/exchange.h"
#include "firmware/kms/payload_helpers.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/protect.h"
#include "tests/fuzz_service/service_env.h"

namespace {

namespace fs = tkms::fuzz_service;
namespace kms = tkms::kms;
namespace mikey = tkms::mikey;
namespace ue = tkms::ue;
using mikey::Bytes;

std::filesystem::path g_out;
int g_written = 0;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_service_seeds: %s\n", what.c_str());
  std::exit(1);
}

void Write(const char* target, const Bytes& bytes, const char* what) {
  unsigned char digest[20];
  if (mbedtls_sha1_ret(bytes.data(), bytes.size(), digest) != 0) Fail("sha1");
  const auto dir = g_out / target;
  std::filesystem::create_directories(dir);
  const auto path = dir / tkms::HexEncode(digest);
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) Fail("cannot write " + path.string());
  std::printf("%-18s %s  %s (%zu bytes)\n", target, path.filename().c_str(), what, bytes.size());
  ++g_written;
}

// Capacity first: g++ 12 at -O3 reports a false -Warray-bounds for an insert
// that grows a one-element vector.
Bytes With(uint8_t selector, const Bytes& message) {
  Bytes out;
  out.reserve(message.size() + 1);
  out.push_back(selector);
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

constexpr uint8_t kRequest = 0;
constexpr uint8_t kResolve = 1;

constexpr uint8_t kKmsReseal = 2;  // kms_handle_fuzz mode bit: recompute V before the KMS sees it

void Kms(uint8_t type, const Bytes& message, const char* what) {
  Write("kms_handle_fuzz", With(type, message), what);
}

// Runs the message on a fresh KMS (what kms_handle_fuzz does with a seed).
kms::KmsReply Run(uint8_t type, const Bytes& message) {
  fs::FreshKms k;
  return k.Handle(type == kResolve ? kms::RequestType::kTicketResolve : kms::RequestType::kTicketRequest, message);
}

constexpr int kAnyError = -1;

// Writes a kms_handle_fuzz seed after checking that the KMS answers it as
// intended, so each seed reaches the branch it is meant for. `error_no`: the
// expected MIKEY error number of a kMikeyError, or kAnyError.
void KmsChecked(uint8_t type, const Bytes& message, const char* what, kms::Outcome expected,
                int error_no = kAnyError) {
  const kms::KmsReply r = Run(type, message);
  const bool error_ok = error_no == kAnyError || (r.mikey_error && *r.mikey_error == error_no);
  if (r.outcome != expected || (expected == kms::Outcome::kMikeyError && !error_ok)) {
    Fail(std::string(what) + ": unexpected outcome " + std::string(kms::OutcomeName(r.outcome)) + " (" + r.detail + ")");
  }
  Kms(type, message, what);
}

ue::RequestInit Request(tkms::mikey::crypto::CryptoProvider& p, const ue::RequestInitParams& params) {
  auto r = ue::BuildRequestInitPsk(p, params);
  if (!r.ok()) Fail("BuildRequestInitPsk: " + r.error().ToString());
  return std::move(*r);
}

ue::ResolveInit Resolve(tkms::mikey::crypto::CryptoProvider& p, const ue::ResolveInitParams& params) {
  auto r = ue::BuildResolveInitPsk(p, params);
  if (!r.ok()) Fail("BuildResolveInitPsk: " + r.error().ToString());
  return std::move(*r);
}

ue::TicketGrant Grant(tkms::mikey::crypto::CryptoProvider& p, const ue::RequestInit& request) {
  const kms::KmsReply reply = Run(kRequest, request.bytes);
  if (reply.outcome != kms::Outcome::kOk) Fail("request refused: " + reply.detail);
  auto grant = ue::ParseRequestResp(p, reply.mikey, request);
  if (!grant.ok()) Fail("ParseRequestResp: " + grant.error().ToString());
  return std::move(*grant);
}

Bytes Truncated(const Bytes& b, size_t n) { return Bytes(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n)); }

void KmsSeeds() {
  const fs::FixedExchanges& fixed = fs::Fixed();
  fs::CounterRandomProvider p;
  const auto ok = kms::Outcome::kOk;
  const auto err = kms::Outcome::kMikeyError;
  const auto bad = kms::Outcome::kBadRequest;

  // Valid exchanges (the fixed ones ue_response_fuzz uses).
  KmsChecked(kRequest, fixed.plain_request.bytes, "REQUEST_INIT_PSK alice->bob", ok);
  KmsChecked(kRequest, fixed.forking_request.bytes, "REQUEST_INIT_PSK alice->bob, forking", ok);
  KmsChecked(kResolve, fixed.plain_resolve.bytes, "RESOLVE_INIT_PSK bob", ok);
  KmsChecked(kResolve, fixed.forking_resolve.bytes, "RESOLVE_INIT_PSK bob, forking ticket with Initiator Data", ok);

  // Alice with IDRpsk only (no IDRi, no IDRkms), SHA-1 PRF and MAC, requested
  // keys, validity, an application and two responders (Bob and the group).
  auto rich = fs::AliceRequestParams(false);
  rich.psk_id = fs::AlicePskId();
  rich.initiator.send = false;
  rich.kms.send = false;
  rich.prf_func = static_cast<uint8_t>(mikey::PrfFunc::kMikey1);
  rich.mac_alg = static_cast<uint8_t>(mikey::MacAlg::kHmacSha1_160);
  rich.csb_id = 0x31323334u;
  rich.policy.prf_func = static_cast<uint8_t>(mikey::PrfFunc::kMikey1);
  rich.policy.flags = static_cast<uint16_t>(rich.policy.flags | mikey::kFlagJ);
  rich.policy.valid_from = ue::TsValue{0, fs::NowNtp() - (uint64_t{10} << 32)};
  rich.policy.valid_to = ue::TsValue{0, fs::NowNtp() + (uint64_t{7200} << 32)};
  rich.policy.rekey_interval = 300;
  // A 128-bit TGK: with SHA-1 PRF and MAC the KEMAC is AES-CM-128, which
  // carries no session key over 128 bits (RFC 6043 §12.1, error 15).
  rich.policy.keys.push_back(ue::RequestedKey{static_cast<uint8_t>(mikey::KeyType::kTgk), 16, 0, {}});
  rich.policy.keys.push_back(ue::RequestedKey{static_cast<uint8_t>(mikey::KeyType::kTekSalt), 16, 14, {}});
  rich.policy.applications.push_back(ue::IdValue{fs::Text("urn:app:voice")});
  rich.policy.responders.push_back(ue::IdValue{fs::Text(fs::kTeam)});
  const ue::RequestInit rich_request = Request(p, rich);
  KmsChecked(kRequest, rich_request.bytes, "REQUEST_INIT_PSK by IDRpsk, SHA-1, keys, TRs/TRe/TRr, IDRapp, group", ok);

  // Alice resolves the group ticket as a member of sip:team@example.org,
  // naming herself only through IDRpsk.
  const ue::TicketGrant team = Grant(p, rich_request);
  auto alice_resolve = fs::BobResolveParams(team.ticket, 0x41424344u);
  alice_resolve.psk = fs::AlicePsk();
  alice_resolve.psk_id = fs::AlicePskId();
  alice_resolve.responder.id = fs::Text(fs::kAlice);
  alice_resolve.responder.send = false;
  KmsChecked(kResolve, Resolve(p, alice_resolve).bytes, "RESOLVE_INIT_PSK alice as group member", ok);

  // Alice resolves Bob's plain ticket: not a recipient (7, authenticated).
  const ue::TicketGrant plain = Grant(p, fixed.plain_request);
  auto not_recipient = fs::BobResolveParams(plain.ticket, 0x51525354u);
  not_recipient.psk = fs::AlicePsk();
  not_recipient.responder.id = fs::Text(fs::kAlice);
  KmsChecked(kResolve, Resolve(p, not_recipient).bytes, "resolve by a non-recipient", err, 7);

  // The forking ticket resolved without its Initiator Data (14). The UE
  // library refuses to build that (composition rules), so the fixed resolve
  // is re-sealed without it.
  {
    const ue::ResolveInit& r = fixed.forking_resolve;
    mikey::Message m = r.message;
    for (auto& payload : m.payloads) {
      if (auto* t = std::get_if<mikey::TicketPayload>(&payload)) t->initiator_data.reset();
    }
    auto key = p.ImportTransientKey(r.auth_key);
    if (!key.ok()) Fail("auth key");
    const tkms::ByteSpan ids[] = {r.responder_identity, r.kms_identity};
    auto sealed = tkms::mikey::crypto::SealWithV(p, m, **key, ids);
    if (!sealed.ok()) Fail("SealWithV: " + sealed.error().ToString());
    KmsChecked(kResolve, *sealed, "forking ticket without Initiator Data", err, 12);
  }

  // Bob (policy class "strict") asks for forking and reuse: granted without
  // them, K flag set. With two keys: refused (15, max_keys 1).
  auto bob = fs::AliceRequestParams(true);
  bob.psk = fs::BobPsk();
  bob.initiator.id = fs::Text(fs::kBob);
  bob.csb_id = 0x71727374u;
  bob.policy.flags = static_cast<uint16_t>(bob.policy.flags | mikey::kFlagJ);
  bob.policy.responders = {ue::IdValue{fs::Text(fs::kAlice)}};
  KmsChecked(kRequest, Request(p, bob).bytes, "strict class: forking and reuse cleared (K)", ok);
  bob.policy.keys.push_back(ue::RequestedKey{static_cast<uint8_t>(mikey::KeyType::kTek), 16, 0, {}});
  bob.policy.keys.push_back(ue::RequestedKey{static_cast<uint8_t>(mikey::KeyType::kGtgk), 16, 0, {}});
  KmsChecked(kRequest, Request(p, bob).bytes, "strict class: two keys refused", err, 15);

  // A validity that ended before now (15).
  auto past = fs::AliceRequestParams(false);
  past.csb_id = 0x81828384u;
  past.policy.valid_to = ue::TsValue{0, fs::NowNtp() - (uint64_t{60} << 32)};
  KmsChecked(kRequest, Request(p, past).bytes, "TRe in the past", err, 15);

  // Timestamps: an hour old (1), COUNTER (1), NTP-UTC-32 within the window (ok).
  auto stale = fs::AliceRequestParams(false);
  stale.timestamp.value = fs::NowNtp() - (uint64_t{3600} << 32);
  KmsChecked(kRequest, Request(p, stale).bytes, "stale T", err, 1);
  auto counter = fs::AliceRequestParams(false);
  counter.timestamp = ue::TimestampSpec{static_cast<uint8_t>(mikey::TsType::kCounter), 42};
  KmsChecked(kRequest, Request(p, counter).bytes, "COUNTER T", err, 1);
  auto ntp32 = fs::AliceRequestParams(false);
  ntp32.timestamp = ue::TimestampSpec{static_cast<uint8_t>(mikey::TsType::kNtpUtc32), fs::NowNtp() >> 32};
  KmsChecked(kRequest, Request(p, ntp32).bytes, "NTP-UTC-32 T", ok);

  // Identities: another KMS named in IDRkms (7); an unknown user (0).
  auto other_kms = fs::AliceRequestParams(false);
  other_kms.kms.id = fs::Text("kms.other.example");
  KmsChecked(kRequest, Request(p, other_kms).bytes, "IDRkms names another KMS", err, 7);
  auto carol = fs::AliceRequestParams(false);
  carol.initiator.id = fs::Text("sip:carol@example.org");
  KmsChecked(kRequest, Request(p, carol).bytes, "unknown user", err, 0);

  // Re-seal mode (the target recomputes V): the valid messages, whose V is
  // already right, as starting points for mutations past authentication.
  Kms(kRequest | kKmsReseal, fixed.plain_request.bytes, "re-seal: REQUEST_INIT_PSK alice->bob");
  Kms(kRequest | kKmsReseal, rich_request.bytes, "re-seal: REQUEST_INIT_PSK by IDRpsk with keys");
  Kms(kResolve | kKmsReseal, fixed.forking_resolve.bytes, "re-seal: RESOLVE_INIT_PSK forking");

  // Mutations of the plain request.
  const Bytes& req = fixed.plain_request.bytes;
  Bytes bad_mac = req;
  bad_mac.back() ^= 0x01;
  KmsChecked(kRequest, bad_mac, "V MAC wrong", err, 0);
  KmsChecked(kResolve, req, "REQUEST_INIT_PSK on requesttype=ticketresolve", err, 11);
  Bytes pk = req;
  pk[1] = static_cast<uint8_t>(mikey::DataType::kRequestInitPk);
  KmsChecked(kRequest, pk, "REQUEST_INIT_PK", err, 13);
  Bytes v2 = req;
  v2[0] = 2;
  KmsChecked(kRequest, v2, "version 2", bad);
  KmsChecked(kRequest, Truncated(req, 9), "nine bytes", bad);
  KmsChecked(kRequest, Truncated(req, req.size() / 2), "truncated REQUEST_INIT_PSK", err);
  KmsChecked(kResolve, Truncated(fixed.forking_resolve.bytes, fixed.forking_resolve.bytes.size() - 1),
             "truncated RESOLVE_INIT_PSK", err);
}

void UeSeeds() {
  const fs::FixedExchanges& fixed = fs::Fixed();
  const Bytes plain = Run(kRequest, fixed.plain_request.bytes).mikey;
  const Bytes forking = Run(kRequest, fixed.forking_request.bytes).mikey;
  const Bytes plain_resolved = Run(kResolve, fixed.plain_resolve.bytes).mikey;
  const Bytes forking_resolved = Run(kResolve, fixed.forking_resolve.bytes).mikey;
  Write("ue_response_fuzz", With(0, plain), "REQUEST_RESP to the plain request");
  Write("ue_response_fuzz", With(1, forking), "REQUEST_RESP to the forking request");
  Write("ue_response_fuzz", With(2, plain_resolved), "RESOLVE_RESP to the plain resolve");
  Write("ue_response_fuzz", With(3, forking_resolved), "RESOLVE_RESP to the forking resolve");

  // An authenticated Error message: the same request twice (replay, error 1).
  fs::FreshKms k;
  (void)k.Handle(kms::RequestType::kTicketRequest, fixed.plain_request.bytes);
  const kms::KmsReply replay = k.Handle(kms::RequestType::kTicketRequest, fixed.plain_request.bytes);
  if (replay.refusal != kms::Refusal::kReplay) Fail("expected a replay refusal");
  // An unauthenticated one: bad MAC (error 0, no V).
  Bytes bad_mac = fixed.plain_request.bytes;
  bad_mac.back() ^= 0x01;
  const Bytes unauthenticated = Run(kRequest, bad_mac).mikey;
  Write("ue_response_fuzz", With(0, replay.mikey), "authenticated Error (replay) to the plain request");
  Write("ue_response_fuzz", With(4, replay.mikey), "authenticated Error, ParseErrorMessage with the key");
  Write("ue_response_fuzz", With(5, unauthenticated), "unauthenticated Error, ParseErrorMessage without key");
  Write("ue_response_fuzz", With(2, unauthenticated), "unauthenticated Error to a resolve");
  // Cross-wired answers and a truncation.
  Write("ue_response_fuzz", With(2, plain), "REQUEST_RESP where a RESOLVE_RESP is expected");
  Write("ue_response_fuzz", With(1, plain), "plain REQUEST_RESP to the forking request");
  Write("ue_response_fuzz", With(0, Truncated(plain, plain.size() - 1)), "truncated REQUEST_RESP");

  // Re-seal mode (bit 7): the answers with their KEMAC in plaintext; the
  // target encrypts it and recomputes V, giving the valid answer back.
  constexpr uint8_t kUeReseal = 0x80;
  struct Plain {
    uint8_t check;
    const Bytes* answer;
    fs::AnswerContext ctx;
    const char* what;
  };
  const Plain plains[] = {
      {0, &plain, fs::ContextOf(fixed.plain_request), "re-seal: REQUEST_RESP, KEMAC in plaintext"},
      {1, &forking, fs::ContextOf(fixed.forking_request), "re-seal: forking REQUEST_RESP, KEMAC in plaintext"},
      {2, &plain_resolved, fs::ContextOf(fixed.plain_resolve), "re-seal: RESOLVE_RESP, KEMAC in plaintext"},
      {3, &forking_resolved, fs::ContextOf(fixed.forking_resolve), "re-seal: forking RESOLVE_RESP, KEMAC in plaintext"},
  };
  for (const Plain& x : plains) {
    auto opened = fs::WithPlaintextKemac(*x.answer, x.ctx);
    if (!opened) Fail(std::string("WithPlaintextKemac: ") + x.what);
    auto again = fs::ResealAnswer(*opened, x.ctx);
    if (!again || *again != *x.answer) Fail(std::string("ResealAnswer does not give the answer back: ") + x.what);
    Write("ue_response_fuzz", With(static_cast<uint8_t>(kUeReseal | x.check), *opened), x.what);
  }
  Write("ue_response_fuzz", With(kUeReseal | 4, replay.mikey), "re-seal: authenticated Error");
}


// ---- kms_zk_fuzz ---------------------------------------------------------------------

constexpr uint8_t kZkPeerAnswer = 0;  // ReadPeerAnswer with the target's fixed PeerQuery
constexpr uint8_t kZkPeer = 1;        // Handle on Zk from kms.b.example.org
constexpr uint8_t kZkFunction = 2;    // Handle on Zk from the network function li-gw-1

// An unprotected RESOLVE_INIT_PSK as KMS_R sends it (docs/zk.md): HDR (CSB ID
// kZkCsbId, PRF kZkPrf, V flag 0), T, RANDRr, [IDRr], [IDRkms], TICKET, V with
// MAC NULL and no MAC.
struct ZkInit {
  mikey::TicketPayload ticket;
  std::optional<std::string> responder = std::string(fs::kBob);
  std::optional<std::string> kms = std::string(fs::kKmsIdentity);
  uint64_t t = fs::NowNtp();
  uint32_t csb_id = fs::kZkCsbId;
  mikey::VPayload v = mikey::VPayload{static_cast<uint8_t>(mikey::MacAlg::kNull), {}};
};

Bytes Build(const ZkInit& z) {
  mikey::Message m;
  m.header.version = mikey::kMikeyVersion;
  m.header.data_type = static_cast<uint8_t>(mikey::DataType::kResolveInitPsk);
  m.header.prf_func = fs::kZkPrf;
  m.header.csb_id = z.csb_id;
  m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kEmpty);
  m.payloads.emplace_back(mikey::TPayload{static_cast<uint8_t>(mikey::TsType::kNtpUtc), z.t});
  m.payloads.emplace_back(mikey::RandrPayload{static_cast<uint8_t>(mikey::RandRole::kResponder), Bytes(16, 0x5a)});
  if (z.responder) m.payloads.emplace_back(kms::UriIdr(mikey::IdRole::kResponder, *z.responder));
  if (z.kms) m.payloads.emplace_back(kms::UriIdr(mikey::IdRole::kKms, *z.kms));
  m.payloads.emplace_back(z.ticket);
  m.payloads.emplace_back(z.v);
  auto bytes = mikey::Encode(m);
  if (!bytes.ok()) Fail("encoding an unprotected RESOLVE_INIT: " + bytes.error().ToString());
  return std::move(*bytes);
}

kms::KmsReply RunZk(uint8_t mode, const Bytes& message) {
  fs::FreshKms k;
  return mode == kZkPeer ? k.HandleZk(kms::ZkClientKind::kPeerKms, fs::kPeerKms, message)
                         : k.HandleZk(kms::ZkClientKind::kNetworkFunction, fs::kNetworkFunction, message);
}

// Writes a kms_zk_fuzz seed of mode 1 / 2 after checking that the KMS answers
// it as intended (outcome, error number, refusal); returns the reply.
kms::KmsReply ZkChecked(uint8_t mode, const Bytes& message, const char* what, kms::Outcome expected,
                        int error_no = kAnyError, std::optional<kms::Refusal> refusal = std::nullopt) {
  kms::KmsReply r = RunZk(mode, message);
  const bool error_ok = error_no == kAnyError || (r.mikey_error && *r.mikey_error == error_no);
  const bool refusal_ok = !refusal || r.refusal == *refusal;
  if (r.outcome != expected || (expected == kms::Outcome::kMikeyError && !error_ok) || !refusal_ok) {
    Fail(std::string(what) + ": unexpected outcome " + std::string(kms::OutcomeName(r.outcome)) + ", refusal " +
         std::string(kms::RefusalName(r.refusal)) + " (" + r.detail + ")");
  }
  Write("kms_zk_fuzz", With(mode, message), what);
  return r;
}

kms::PeerQuery ZkQuery() {
  kms::PeerQuery q;
  q.csb_id = fs::kZkCsbId;
  q.prf_func = fs::kZkPrf;
  q.issuer = std::string(fs::kKmsIdentity);
  q.responder = std::string(fs::kBob);
  return q;
}

// Writes a mode-0 seed after checking what ReadPeerAnswer makes of it: ok with
// `after_kemac` payloads after the KEMAC, or the rejection's outcome / number
// and a piece of its detail.
// A forked answer is read with the query's `forking` set: the target's
// selector 3 (mode 0, forking).
constexpr uint8_t kZkPeerAnswerForking = 3;

void PeerAnswerOk(const Bytes& answer, const char* what, size_t after_kemac) {
  kms::PeerQuery query = ZkQuery();
  query.forking = after_kemac != 0;
  auto r = kms::ReadPeerAnswer(answer, query);
  if (!r.ok()) Fail(std::string(what) + ": ReadPeerAnswer refused: " + r.error().detail);
  if (r->after_kemac.size() != after_kemac) Fail(std::string(what) + ": unexpected after_kemac");
  Write("kms_zk_fuzz", With(query.forking ? kZkPeerAnswerForking : kZkPeerAnswer, answer), what);
}

void PeerAnswerRefused(const Bytes& answer, const char* what, kms::Outcome outcome, int error_no,
                       const char* detail) {
  auto r = kms::ReadPeerAnswer(answer, ZkQuery());
  if (r.ok()) Fail(std::string(what) + ": ReadPeerAnswer accepted it");
  if (r.error().outcome != outcome || (error_no != kAnyError && r.error().error_no != error_no) ||
      r.error().detail.find(detail) == std::string::npos) {
    Fail(std::string(what) + ": ReadPeerAnswer: unexpected " + std::string(kms::OutcomeName(r.error().outcome)) +
         " (" + r.error().detail + ")");
  }
  Write("kms_zk_fuzz", With(kZkPeerAnswer, answer), what);
}

template <typename T>
const T& The(const mikey::Message& m) {
  for (const auto& p : m.payloads) {
    if (const auto* x = std::get_if<T>(&p)) return *x;
  }
  Fail("payload missing");
}

// Re-encodes `message` after `change` (lenient decode; composition not checked).
template <typename F>
Bytes Changed(const Bytes& message, F change) {
  mikey::DecodeOptions lenient;
  lenient.check_composition = false;
  auto m = mikey::Decode(message, lenient);
  if (!m.ok()) Fail("Changed: " + m.error().ToString());
  change(*m);
  auto bytes = mikey::Encode(*m);
  if (!bytes.ok()) Fail("Changed: " + bytes.error().ToString());
  return std::move(*bytes);
}

void ZkSeeds() {
  const fs::FixedExchanges& fixed = fs::Fixed();
  fs::CounterRandomProvider p;
  const auto ok = kms::Outcome::kOk;
  const auto err = kms::Outcome::kMikeyError;
  const auto bad = kms::Outcome::kBadRequest;
  const auto unavailable = kms::Outcome::kUnavailable;

  // The fixed world's tickets: plain and forking (with Initiator Data) for
  // bob, and one for the group sip:team@example.org.
  const mikey::TicketPayload& plain = The<mikey::TicketPayload>(fixed.plain_resolve.message);
  const mikey::TicketPayload& forking = The<mikey::TicketPayload>(fixed.forking_resolve.message);
  if (!forking.initiator_data) Fail("the forking resolve has no Initiator Data");
  auto rich = fs::AliceRequestParams(false);
  rich.csb_id = 0x61626364u;
  rich.policy.responders = {ue::IdValue{fs::Text(fs::kTeam)}};
  const ue::TicketGrant team = Grant(p, Request(p, rich));

  // Mode 1, a peer KMS: accepted (plain, forking, a group member).
  const Bytes peer_plain = Build(ZkInit{plain});
  const Bytes peer_forking = Build(ZkInit{forking});
  ZkInit alice_team{team.ticket};
  alice_team.responder = std::string(fs::kAlice);
  const kms::KmsReply plain_resp = ZkChecked(kZkPeer, peer_plain, "zk peer: RESOLVE_INIT plain ticket, IDRr bob", ok);
  const kms::KmsReply forked_resp =
      ZkChecked(kZkPeer, peer_forking, "zk peer: RESOLVE_INIT forking ticket, IDRr bob", ok);
  ZkChecked(kZkPeer, Build(alice_team), "zk peer: RESOLVE_INIT group ticket, IDRr alice (member)", ok);
  ZkInit no_kms{plain};
  no_kms.kms.reset();
  ZkChecked(kZkPeer, Build(no_kms), "zk peer: RESOLVE_INIT without IDRkms", ok);

  // Mode 1 refusals, one per rule.
  ZkChecked(kZkPeer, fixed.plain_resolve.bytes, "zk peer: a UE's protected RESOLVE_INIT (HMAC V)", err, 3,
            kms::Refusal::kZkClient);
  ZkInit mac_bytes{plain};
  mac_bytes.v = mikey::VPayload{static_cast<uint8_t>(mikey::MacAlg::kHmacSha1_160), Bytes(20, 0)};
  ZkChecked(kZkPeer, Build(mac_bytes), "zk peer: V with an HMAC-SHA-1 MAC", err, 3, kms::Refusal::kZkClient);
  ZkInit no_idrr{plain};
  no_idrr.responder.reset();
  const kms::KmsReply no_idrr_reply =
      ZkChecked(kZkPeer, Build(no_idrr), "zk peer: no IDRr", err, 7, kms::Refusal::kZkClient);
  ZkInit wrong_kms{plain};
  wrong_kms.kms = "kms.b.example.org";
  ZkChecked(kZkPeer, Build(wrong_kms), "zk peer: IDRkms names another KMS", err, 7, kms::Refusal::kWrongKms);
  ZkInit stale{plain};
  stale.t = fs::NowNtp() - (uint64_t{3600} << 32);
  const kms::KmsReply stale_reply =
      ZkChecked(kZkPeer, Build(stale), "zk peer: stale T", err, 1, kms::Refusal::kStaleTimestamp);
  ZkInit carol{plain};
  carol.responder = "sip:carol@example.org";
  const kms::KmsReply carol_reply =
      ZkChecked(kZkPeer, Build(carol), "zk peer: IDRr not a recipient", err, 7, kms::Refusal::kNotRecipient);
  ZkInit no_idata{forking};
  no_idata.ticket.initiator_data.reset();
  ZkChecked(kZkPeer, Build(no_idata), "zk peer: forking ticket without Initiator Data", err, kAnyError,
            kms::Refusal::kInvalidTicket);
  ZkInit bad_ticket{plain};
  bad_ticket.ticket.ticket_data.back() ^= 0x01;
  ZkChecked(kZkPeer, Build(bad_ticket), "zk peer: ticket MAC wrong", err, 0, kms::Refusal::kInvalidTicket);
  ZkChecked(kZkPeer, fixed.plain_request.bytes, "zk peer: a REQUEST_INIT_PSK", err, 11,
            kms::Refusal::kWrongDataType);
  ZkChecked(kZkPeer, Truncated(peer_plain, 9), "zk peer: nine bytes", bad);
  ZkChecked(kZkPeer, Truncated(peer_plain, peer_plain.size() / 2), "zk peer: truncated RESOLVE_INIT", err);
  ZkChecked(kZkPeer, Truncated(peer_forking, peer_forking.size() - 1), "zk peer: RESOLVE_INIT without its last byte",
            err);

  // Mode 2, the network function: accepted (with and without IDRr; forking
  // answered unforked), and refused.
  ZkInit nf_plain{plain};
  nf_plain.responder.reset();
  ZkInit nf_forking{forking};
  nf_forking.responder.reset();
  ZkChecked(kZkFunction, Build(nf_plain), "zk function: RESOLVE_INIT plain ticket, no IDRr", ok);
  const kms::KmsReply nf_forked_resp =
      ZkChecked(kZkFunction, Build(nf_forking), "zk function: RESOLVE_INIT forking ticket, no IDRr", ok);
  ZkChecked(kZkFunction, peer_forking, "zk function: RESOLVE_INIT forking ticket with IDRr", ok);
  ZkChecked(kZkFunction, Build(alice_team), "zk function: RESOLVE_INIT group ticket", ok);
  ZkChecked(kZkFunction, fixed.forking_resolve.bytes, "zk function: a UE's protected RESOLVE_INIT", err, 3,
            kms::Refusal::kZkClient);
  ZkInit nf_wrong_kms{nf_plain};
  nf_wrong_kms.kms = "kms.other.example";
  ZkChecked(kZkFunction, Build(nf_wrong_kms), "zk function: IDRkms names another KMS", err, 7,
            kms::Refusal::kWrongKms);
  ZkInit nf_stale{nf_plain};
  nf_stale.t = fs::NowNtp() + (uint64_t{3600} << 32);
  ZkChecked(kZkFunction, Build(nf_stale), "zk function: T an hour ahead", err, 1, kms::Refusal::kStaleTimestamp);
  ZkChecked(kZkFunction, Truncated(Build(nf_plain), 40), "zk function: truncated RESOLVE_INIT", err);

  // Mode 0: what KMS_I answers, read by KMS_R against the fixed query.
  PeerAnswerOk(plain_resp.mikey, "zk answer: RESOLVE_RESP plain", 0);
  PeerAnswerOk(forked_resp.mikey, "zk answer: RESOLVE_RESP forked (IDRr bob, RANDRkms)", 2);
  PeerAnswerOk(nf_forked_resp.mikey, "zk answer: RESOLVE_RESP to a network function (MPKr unforked)", 0);
  PeerAnswerRefused(no_idrr_reply.mikey, "zk answer: Error 7", kms::Outcome::kMikeyError, 7, "MIKEY error 7");
  PeerAnswerRefused(stale_reply.mikey, "zk answer: Error 1", kms::Outcome::kMikeyError, 1, "MIKEY error 1");
  (void)carol_reply;
  const Bytes no_err = Changed(stale_reply.mikey, [](mikey::Message& m) {
    std::erase_if(m.payloads, [](const mikey::Payload& x) { return std::holds_alternative<mikey::ErrPayload>(x); });
  });
  PeerAnswerRefused(no_err, "zk answer: Error without ERR", unavailable, kAnyError, "without an ERR");
  PeerAnswerRefused(Truncated(forked_resp.mikey, forked_resp.mikey.size() - 1), "zk answer: truncated RESOLVE_RESP",
                    unavailable, kAnyError, "not a MIKEY message");
  PeerAnswerRefused(Run(kResolve, fixed.plain_resolve.bytes).mikey, "zk answer: a protected RESOLVE_RESP (Ua)",
                    unavailable, kAnyError, "CSB ID");
  PeerAnswerRefused(Changed(forked_resp.mikey,
                            [](mikey::Message& m) {
                              for (auto& x : m.payloads) {
                                if (auto* v = std::get_if<mikey::VPayload>(&x)) *v = mikey::VPayload{2, Bytes(32, 0)};
                              }
                            }),
                    "zk answer: V with a MAC", unavailable, kAnyError, "V is not");
  PeerAnswerRefused(Changed(forked_resp.mikey,
                            [](mikey::Message& m) {
                              for (auto& x : m.payloads) {
                                if (auto* i = std::get_if<mikey::IdrPayload>(&x);
                                    i != nullptr && i->role == static_cast<uint8_t>(mikey::IdRole::kResponder)) {
                                  *i = kms::UriIdr(mikey::IdRole::kResponder, "sip:eve@example.org");
                                }
                              }
                            }),
                    "zk answer: forked for another responder", unavailable, kAnyError, "not the responder");
  PeerAnswerRefused(Changed(plain_resp.mikey,
                            [](mikey::Message& m) {
                              for (auto& x : m.payloads) {
                                if (auto* k = std::get_if<mikey::KemacPayload>(&x)) k->encr_alg = 1;
                              }
                            }),
                    "zk answer: KEMAC not encryption NULL", unavailable, kAnyError, "KEMAC is not");
}

void WebSeeds() {
  const std::vector<std::string> texts = {
      "requesttype=ticketrequest",
      "requesttype=ticketresolve",
      "a=b&requesttype=ticket%72esolve&&c",
      "request%74ype=ticketrequest&x=%41+b",
      "requesttype=ticketrequest&requesttype=ticketresolve",
      "requesttype=ticket+request",
      "requesttype",
      "requesttype=%zz",
      "x=%4",
      "application/mikey",
      " Application/MIKEY ;version=1",
      "application/mikey2",
      "keep-alive, Upgrade",
      std::string("Close,\tkeep-alive\0close", 23),
      "",
  };
  for (const auto& t : texts) Write("web_annex_a_fuzz", Bytes(t.begin(), t.end()), "text");
  // A real body: the plain request in base64, wrapped in CRLF lines.
  std::string b64 = tkms::Base64Encode(fs::Fixed().plain_request.bytes);
  std::string body;
  for (size_t i = 0; i < b64.size(); i += 64) body += b64.substr(i, 64) + "\r\n";
  Write("web_annex_a_fuzz", Bytes(body.begin(), body.end()), "base64 body with CRLF");
  Write("web_annex_a_fuzz", Bytes{'A', 'Q', '=', '='}, "base64 with non-zero unused bits");
  Write("web_annex_a_fuzz", Bytes{' ', '\t', '\r', '\n'}, "whitespace only");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_service_seeds OUTDIR\n");
    return 2;
  }
  g_out = argv[1];
  KmsSeeds();
  UeSeeds();
  ZkSeeds();
  WebSeeds();
  std::printf("%d seeds\n", g_written);
  return 0;
}
