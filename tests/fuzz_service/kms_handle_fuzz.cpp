// Fuzz target: the KMS request handler, kms::Kms::Handle (firmware/kms/kms.h),
// on arbitrary bytes.
//
// Input: byte 0 selects the Annex A requesttype (bit 0: 0 = ticketrequest,
// 1 = ticketresolve) and the mode (bit 1); the rest is the MIKEY message.
// Every input gets a fresh Kms (service_env.h: fake in-memory keys, counter
// RNG, ManualClock at a fixed time, empty replay cache), so the outcome
// depends on the input only.
//
// Mode bit 1 = "re-seal": if the message decodes (without the composition
// rules, as the KMS reads it), ends with an HMAC V and names one of the two
// users (IDRpsk, else IDRi / IDRr), the target recomputes its V MAC with that
// user's PSK the way the UE does (RFC 6043 §5.1.2 auth_key, §5.5 identities)
// before handing it to the KMS. A mutated request then passes authentication
// and reaches the timestamp, replay, policy (DecideTicketPolicy on fuzzed
// Ticket Policies) and ticket code; without the bit, mutations stop at the
// V MAC. The properties below are checked on the bytes the KMS received.
//
// Properties checked on every input:
//   * Handle returns (no crash, throw, leak or UB) with outcome kOk,
//     kMikeyError or kBadRequest: with keys that never fail, kUnavailable
//     (token trouble, full replay cache) and kInternal (a fault) must not
//     happen;
//   * kBadRequest if and only if the MIKEY bytes have no readable version-1
//     common header (shorter than 10 bytes, or first byte not 1), and then
//     no MIKEY bytes and no error number;
//   * kOk and kMikeyError carry a message the strict codec decodes (with the
//     composition rules), with the request's CSB ID: REQUEST_RESP (13) on
//     ticketrequest / RESOLVE_RESP (18) on ticketresolve for kOk, Error (6)
//     for kMikeyError;
//   * kMikeyError: mikey_error is set, the message holds exactly one ERR
//     payload and its number is mikey_error; the refusal is named; kOk: no
//     error number, no refusal, an authenticated user;
//   * kOk answers what the project's UE (tools/ue/ticket_client.h) accepts:
//     ParseRequestResp / ParseResolveResp with the request rebuilt from the
//     input and the user's PSK succeed (every request the KMS grants: the
//     seeds, and in re-seal mode whatever mutation still gets a grant).
#include <cstdio>
#include <optional>
#include <string>
#include <variant>

#include "firmware/base/byte_reader.h"
#include "firmware/base/encoding.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/kemac_cipher.h"
#include "firmware/mikey/crypto/protect.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz_service/service_env.h"

namespace {

namespace fs = tkms::fuzz_service;
namespace kms = tkms::kms;
namespace mikey = tkms::mikey;
namespace ue = tkms::ue;
using tkms::ByteSpan;

constexpr const char* kTarget = "kms_handle_fuzz";

// In re-seal mode, the bytes the KMS received (printed with a violation, so
// the report has a reproducer that needs no re-sealing).
ByteSpan g_resealed;

void Check(bool ok, const char* property) {
  if (ok) return;
  if (!g_resealed.empty()) {
    std::fprintf(stderr, "%s: re-sealed MIKEY message the KMS received: %s\n", kTarget,
                 tkms::HexEncode(g_resealed).c_str());
  }
  tkms::fuzz::Violation(kTarget, property);
}

// The CSB ID of a common header (RFC 3830 §6.1: bytes 4-7); 0 for a shorter message.
uint32_t CsbIdOf(ByteSpan m) {
  tkms::ByteReader r(m);
  uint32_t csb_id = 0;
  if (!r.Skip(4) || !r.ReadU32(csb_id)) return 0;
  return csb_id;
}

template <typename T>
const T* Find(const mikey::Message& m) {
  for (const auto& p : m.payloads) {
    if (const auto* x = std::get_if<T>(&p)) return x;
  }
  return nullptr;
}

const mikey::RandrPayload* FindRandr(const mikey::Message& m, mikey::RandRole role) {
  for (const auto& p : m.payloads) {
    const auto* r = std::get_if<mikey::RandrPayload>(&p);
    if (r != nullptr && r->role == static_cast<uint8_t>(role)) return r;
  }
  return nullptr;
}

// The PSK of the user the KMS names in KmsReply::user ("psk:<hex id>").
const tkms::SecretBytes* PskOf(const std::string& user) {
  if (user == "psk:" + tkms::HexEncode(fs::AlicePskId())) return &fs::AlicePsk();
  if (user == "psk:" + tkms::HexEncode(fs::BobPskId())) return &fs::BobPsk();
  return nullptr;
}

// Rebuilds what the UE knew when it sent `request`, and checks that the UE
// library accepts the KMS's answer.
void CheckUeAccepts(kms::RequestType type, ByteSpan request, const kms::KmsReply& reply) {
  mikey::DecodeOptions lenient;
  lenient.check_composition = false;  // as the KMS read it
  auto decoded = mikey::Decode(request, lenient);
  Check(decoded.ok(), "a request answered with kOk decodes");
  const tkms::SecretBytes* psk = PskOf(reply.user);
  Check(psk != nullptr, "kOk names one of the two users");
  const auto* t = Find<mikey::TPayload>(*decoded);
  const auto* v = std::get_if<mikey::VPayload>(&decoded->payloads.back());
  Check(t != nullptr && v != nullptr, "a request answered with kOk has T and a final V");
  auto ts64 = mikey::crypto::TimestampForIv(static_cast<mikey::TsType>(t->ts_type), t->value);
  Check(ts64.ok(), "the T of an accepted request is a time");
  const mikey::Bytes kms_identity = fs::Text(fs::kKmsIdentity);
  if (type == kms::RequestType::kTicketRequest) {
    const auto* randri = FindRandr(*decoded, mikey::RandRole::kInitiator);
    Check(randri != nullptr, "an accepted REQUEST_INIT has RANDRi");
    ue::RequestInit init;
    init.bytes.assign(request.begin(), request.end());
    init.message = *decoded;
    init.psk = *psk;
    init.mac_alg = v->auth_alg;
    init.prf_func = decoded->header.prf_func;
    init.csb_id = decoded->header.csb_id;
    init.randri = randri->rand;
    init.kms_identity = kms_identity;
    init.ts64 = *ts64;
    auto grant = ue::ParseRequestResp(fs::UeProvider(), reply.mikey, init);
    if (!grant.ok()) std::fprintf(stderr, "%s: UE: %s\n", kTarget, grant.error().ToString().c_str());
    Check(grant.ok(), "the UE library accepts every REQUEST_RESP the KMS sends");
  } else {
    const auto* randrr = FindRandr(*decoded, mikey::RandRole::kResponder);
    const auto* ticket = Find<mikey::TicketPayload>(*decoded);
    Check(randrr != nullptr && ticket != nullptr, "an accepted RESOLVE_INIT has RANDRr and TICKET");
    ue::ResolveInit init;
    init.bytes.assign(request.begin(), request.end());
    init.message = *decoded;
    init.psk = *psk;
    init.mac_alg = v->auth_alg;
    init.prf_func = decoded->header.prf_func;
    init.csb_id = decoded->header.csb_id;
    init.randrr = randrr->rand;
    init.kms_identity = kms_identity;
    init.ts64 = *ts64;
    init.forking = (ticket->policy.flags & mikey::kFlagI) != 0;
    auto resolved = ue::ParseResolveResp(fs::UeProvider(), reply.mikey, init);
    if (!resolved.ok()) std::fprintf(stderr, "%s: UE: %s\n", kTarget, resolved.error().ToString().c_str());
    Check(resolved.ok(), "the UE library accepts every RESOLVE_RESP the KMS sends");
  }
}

// Mode "re-seal": the request with its V MAC recomputed for the user it
// names, or nullopt if it does not get that far.
std::optional<mikey::Bytes> Reseal(kms::RequestType type, ByteSpan request) {
  mikey::DecodeOptions lenient;
  lenient.check_composition = false;
  auto m = mikey::Decode(request, lenient);
  if (!m.ok() || m->payloads.empty()) return std::nullopt;
  const auto* v = std::get_if<mikey::VPayload>(&m->payloads.back());
  if (v == nullptr || v->auth_alg == static_cast<uint8_t>(mikey::MacAlg::kNull)) return std::nullopt;
  const bool is_request = type == kms::RequestType::kTicketRequest;
  const uint8_t peer_role = static_cast<uint8_t>(is_request ? mikey::IdRole::kInitiator : mikey::IdRole::kResponder);
  const mikey::IdrPayload* peer = nullptr;
  const mikey::IdrPayload* kms_idr = nullptr;
  const mikey::IdrPayload* psk_idr = nullptr;
  for (const auto& p : m->payloads) {
    const auto* idr = std::get_if<mikey::IdrPayload>(&p);
    if (idr == nullptr) continue;
    if (idr->role == peer_role && peer == nullptr) peer = idr;
    if (idr->role == static_cast<uint8_t>(mikey::IdRole::kKms) && kms_idr == nullptr) kms_idr = idr;
    if (idr->role == static_cast<uint8_t>(mikey::IdRole::kPsk) && psk_idr == nullptr) psk_idr = idr;
  }
  const auto* rand = FindRandr(*m, is_request ? mikey::RandRole::kInitiator : mikey::RandRole::kResponder);
  if (rand == nullptr) return std::nullopt;
  const tkms::SecretBytes* psk = nullptr;
  mikey::Bytes identity;
  if (psk_idr != nullptr) {
    if (psk_idr->data == fs::AlicePskId()) {
      psk = &fs::AlicePsk();
      identity = fs::Text(fs::kAlice);
    } else if (psk_idr->data == fs::BobPskId()) {
      psk = &fs::BobPsk();
      identity = fs::Text(fs::kBob);
    }
  } else if (peer != nullptr) {
    if (peer->data == fs::Text(fs::kAlice)) psk = &fs::AlicePsk();
    if (peer->data == fs::Text(fs::kBob)) psk = &fs::BobPsk();
  }
  if (psk == nullptr) return std::nullopt;
  if (peer != nullptr) identity = peer->data;
  const mikey::Bytes kms_identity = kms_idr != nullptr ? kms_idr->data : fs::Text(fs::kKmsIdentity);

  auto& provider = fs::UeProvider();
  auto psk_key = provider.ImportTransientKey(*psk);
  if (!psk_key.ok()) return std::nullopt;
  const ByteSpan rand_bytes(rand->rand);
  auto keys = mikey::crypto::DeriveMessageKeys(
      provider, static_cast<mikey::PrfFunc>(m->header.prf_func), **psk_key, mikey::crypto::Direction::kInitial,
      m->header.csb_id, is_request ? std::optional<ByteSpan>(rand_bytes) : std::nullopt,
      is_request ? std::nullopt : std::optional<ByteSpan>(rand_bytes), mikey::EncrAlg::kNull,
      static_cast<mikey::MacAlg>(v->auth_alg));
  if (!keys.ok()) return std::nullopt;
  auto auth = provider.ImportTransientKey(keys->auth_key);
  if (!auth.ok()) return std::nullopt;
  const ByteSpan appended[] = {identity, kms_identity};
  auto sealed = mikey::crypto::SealWithV(provider, *m, **auth, appended);
  if (!sealed.ok()) return std::nullopt;
  return std::move(*sealed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto type = (data[0] & 1) != 0 ? kms::RequestType::kTicketResolve : kms::RequestType::kTicketRequest;
  ByteSpan request(data + 1, size - 1);
  std::optional<mikey::Bytes> resealed;
  if ((data[0] & 2) != 0) {
    resealed = Reseal(type, request);
    if (resealed) request = *resealed;
  }
  g_resealed = resealed ? ByteSpan(*resealed) : ByteSpan();
  struct ClearOnReturn {
    ~ClearOnReturn() { g_resealed = ByteSpan(); }
  } clear_on_return;

  fs::FreshKms kms;
  const kms::KmsReply reply = kms.Handle(type, request);

  const bool header_readable = request.size() >= 10 && request[0] == mikey::kMikeyVersion;
  switch (reply.outcome) {
    case kms::Outcome::kBadRequest:
      Check(!header_readable, "kBadRequest only without a readable version-1 common header");
      Check(reply.mikey.empty() && !reply.mikey_error.has_value(), "kBadRequest carries no MIKEY message");
      return 0;
    case kms::Outcome::kOk:
    case kms::Outcome::kMikeyError:
      break;
    case kms::Outcome::kUnavailable:
    case kms::Outcome::kInternal:
      std::fprintf(stderr, "%s: outcome %s, refusal %s: %s\n", kTarget,
                   std::string(kms::OutcomeName(reply.outcome)).c_str(),
                   std::string(kms::RefusalName(reply.refusal)).c_str(), reply.detail.c_str());
      Check(false, "outcome is kOk, kMikeyError or kBadRequest (fake keys never fail)");
      return 0;
  }
  Check(header_readable, "a readable common header is never kBadRequest");

  auto answer = mikey::Decode(reply.mikey);  // strict: composition rules on
  if (!answer.ok()) std::fprintf(stderr, "%s: %s\n", kTarget, answer.error().ToString().c_str());
  Check(answer.ok(), "the KMS's answer decodes with the composition rules");
  Check(answer->header.csb_id == CsbIdOf(request), "the answer carries the request's CSB ID");

  if (reply.outcome == kms::Outcome::kOk) {
    const auto expected = type == kms::RequestType::kTicketRequest ? mikey::DataType::kRequestResp
                                                                    : mikey::DataType::kResolveResp;
    Check(answer->header.data_type == static_cast<uint8_t>(expected),
          "kOk answers REQUEST_RESP on ticketrequest, RESOLVE_RESP on ticketresolve");
    Check(!reply.mikey_error.has_value() && reply.refusal == kms::Refusal::kNone, "kOk has no error number");
    Check(!reply.user.empty(), "kOk names the authenticated user");
    CheckUeAccepts(type, request, reply);
    return 0;
  }

  Check(answer->header.data_type == static_cast<uint8_t>(mikey::DataType::kError),
        "kMikeyError answers an Error message (data type 6)");
  Check(reply.mikey_error.has_value(), "kMikeyError sets mikey_error");
  Check(reply.refusal != kms::Refusal::kNone, "kMikeyError names the refusal");
  int errs = 0;
  for (const auto& p : answer->payloads) {
    if (const auto* e = std::get_if<mikey::ErrPayload>(&p)) {
      ++errs;
      Check(e->error_no == *reply.mikey_error, "mikey_error is the ERR payload's error number");
    }
  }
  Check(errs == 1, "the Error message carries exactly one ERR payload");
  return 0;
}
