// Fuzz target: the two untrusted-input paths of KMS-to-KMS resolution over Zk
// (docs/zk.md; TS 33.328 B.2.2.3, RFC 6043 §10, TR 33.828 step 5).
//
// Input: byte 0 selects the mode (taken modulo 3, so that no mutation of it
// is wasted; in mode 0, bit 0 of byte0 / 3 is the query's `forking`: the
// ticket forks, so the answer must be forked); the rest is a MIKEY message.
//   0  kms::ReadPeerAnswer(bytes, query): KMS_R reading the issuing KMS's
//      unprotected RESOLVE_RESP or Error, against the fixed PeerQuery
//      {kZkCsbId, kZkPrf, issuer kms.example.org, responder sip:bob@example.org}
//      that the seeds' RESOLVE_INITs were sent with (service_env.h);
//   1  kms::Kms::Handle on Interface::kZk from the peer KMS kms.b.example.org
//      (ZkClientKind::kPeerKms): KMS_I serving an unprotected RESOLVE_INIT_PSK;
//   2  the same from the authorised network function li-gw-1
//      (ZkClientKind::kNetworkFunction).
// Every input of modes 1 and 2 gets a fresh Kms (service_env.h: fake keys,
// counter RNG, ManualClock at a fixed time, empty replay cache). Neither
// message is integrity protected (the TLS session protects them), so
// mutations reach everything except the ticket, whose MAC only the issuer's
// ticket key makes; the seeds carry real tickets of the fixed world.
//
// Properties, mode 0:
//   * ok only with 1..32 keys, the first an MPK (MPKi), the RESOLVE_RESP data
//     type, and after_kemac empty or exactly [IDRr naming the queried
//     responder, RANDRkms]; the input is then an unprotected RESOLVE_RESP as
//     read independently here (lenient decode, data type 18, the query's CSB
//     ID and PRF, last payload V with MAC NULL and no MAC bytes, an IDRkms
//     naming the issuer, a KEMAC with encryption NULL / MAC NULL whose key
//     data are exactly the keys returned);
//   * a rejection is kMikeyError with refusal kPeerRefused only when the input
//     decodes as an Error message (data type 6), with the number of its first
//     ERR payload (a defined number, which KMS_R can send on); otherwise
//     kUnavailable with refusal kPeerUnavailable;
//   * the detail is log-safe: printable ASCII (and the codec's "§"), untrusted
//     bytes only escaped.
// Properties, modes 1 and 2:
//   * the outcome is kOk, kMikeyError or kBadRequest, never kUnavailable or
//     kInternal (the fake keys never fail, there is no forwarding on Zk);
//     kBadRequest exactly when there is no readable version-1 common header;
//   * kOk: the answer decodes with the strict codec (composition rules on) as
//     a RESOLVE_RESP with the request's CSB ID and PRF, IDRkms naming this
//     KMS, last payload V with MAC NULL and no MAC, and one KEMAC with
//     encryption NULL / MAC NULL whose key data start with MPKi;
//     for a peer KMS the request named a responder (IDRr) that the ticket
//     lists (directly or through the group sip:team@example.org), and the
//     answer carries MPKr' + [IDRr = that responder, RANDRkms] exactly when
//     the ticket forks; for a network function nothing is forked (no IDRr,
//     no RANDRkms; MPKr unforked as the second key of a forking ticket);
//     KMS_R's ReadPeerAnswer accepts the answer with the same keys;
//   * kMikeyError: an Error message (strict decode, the request's CSB ID)
//     without V (the Zk client shares no key with this KMS), with exactly one
//     ERR equal to mikey_error; KMS_R's ReadPeerAnswer passes that number on;
//   * detail and user are log-safe in the same way.
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/printable.h"
#include "firmware/base/user_identity.h"
#include "firmware/kms/exchange.h"
#include "firmware/mikey/codec.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz_service/service_env.h"

namespace {

namespace fs = tkms::fuzz_service;
namespace kms = tkms::kms;
namespace mikey = tkms::mikey;
using tkms::ByteSpan;

constexpr const char* kTarget = "kms_zk_fuzz";
constexpr size_t kMaxPeerKeys = 32;
constexpr size_t kMinRandrKmsBytes = 16;

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

// Log-safe (service.h: "every field of a KmsReply is safe to log"): printable
// ASCII, except that the codec's constant messages cite "RFC 6043 §6.10" with
// a UTF-8 section sign (C2 A7). Untrusted bytes reach a detail only through
// Quote / EscapedDetail (firmware/base/printable.h), so no raw input byte
// (control character or not) may appear.
bool Printable(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xA7) {
      ++i;
      continue;
    }
    if (b < 0x20 || b > 0x7e) return false;
  }
  return true;
}

std::string Text(const mikey::Bytes& b) { return std::string(b.begin(), b.end()); }

mikey::DecodeOptions Lenient() {
  mikey::DecodeOptions o;
  o.check_composition = false;
  return o;
}

// The CSB ID of a common header (RFC 3830 §6.1: bytes 4-7); 0 for a shorter message.
uint32_t CsbIdOf(ByteSpan m) {
  tkms::ByteReader r(m);
  uint32_t csb_id = 0;
  if (!r.Skip(4) || !r.ReadU32(csb_id)) return 0;
  return csb_id;
}

template <typename T>
std::vector<const T*> All(const mikey::Message& m) {
  std::vector<const T*> out;
  for (const auto& p : m.payloads) {
    if (const auto* x = std::get_if<T>(&p)) out.push_back(x);
  }
  return out;
}

std::vector<const mikey::IdrPayload*> Idrs(const mikey::Message& m, mikey::IdRole role) {
  std::vector<const mikey::IdrPayload*> out;
  for (const auto* idr : All<mikey::IdrPayload>(m)) {
    if (idr->role == static_cast<uint8_t>(role)) out.push_back(idr);
  }
  return out;
}

std::vector<const mikey::RandrPayload*> Randrs(const mikey::Message& m, mikey::RandRole role) {
  std::vector<const mikey::RandrPayload*> out;
  for (const auto* r : All<mikey::RandrPayload>(m)) {
    if (r->role == static_cast<uint8_t>(role)) out.push_back(r);
  }
  return out;
}

bool IsMpk(const mikey::KeyDataPayload& k) { return k.key_type == static_cast<uint8_t>(mikey::KeyType::kMpk); }

kms::PeerQuery FixedQuery(bool forking = false) {
  kms::PeerQuery q;
  q.forking = forking;
  q.csb_id = fs::kZkCsbId;
  q.prf_func = fs::kZkPrf;
  q.issuer = std::string(fs::kKmsIdentity);
  q.responder = std::string(fs::kBob);
  return q;
}

// ---- mode 0: ReadPeerAnswer -------------------------------------------------------

// The properties of ReadPeerAnswer(answer, query) on any bytes; returns its result.
tkms::Result<kms::ResponseContent, kms::Rejection> CheckPeerAnswer(ByteSpan answer, const kms::PeerQuery& query) {
  auto content = kms::ReadPeerAnswer(answer, query);
  auto decoded = mikey::Decode(answer, Lenient());
  if (!content.ok()) {
    const kms::Rejection& r = content.error();
    if (!Printable(r.detail)) std::fprintf(stderr, "%s: detail: %s\n", kTarget, tkms::Escaped(r.detail).c_str());
    Check(Printable(r.detail), "ReadPeerAnswer: the detail is printable (ASCII and the sign §)");
    if (r.outcome == kms::Outcome::kMikeyError) {
      Check(r.refusal == kms::Refusal::kPeerRefused, "ReadPeerAnswer: a MIKEY error is kPeerRefused");
      Check(decoded.ok() && decoded->header.data_type == static_cast<uint8_t>(mikey::DataType::kError),
            "ReadPeerAnswer: kMikeyError only for an Error message");
      const auto errs = All<mikey::ErrPayload>(*decoded);
      Check(!errs.empty() && errs.front()->error_no == r.error_no,
            "ReadPeerAnswer: the error number is the Error message's ERR");
      // KMS_R re-encodes it in its own Error message to the UE.
      Check(mikey::IsKnownErrorNo(r.error_no), "ReadPeerAnswer: the error number is a defined one");
    } else {
      Check(r.outcome == kms::Outcome::kUnavailable && r.refusal == kms::Refusal::kPeerUnavailable,
            "ReadPeerAnswer: any other rejection is kUnavailable / kPeerUnavailable");
    }
    return content;
  }
  const kms::ResponseContent& c = *content;
  Check(c.data_type == mikey::DataType::kResolveResp, "ReadPeerAnswer: ok is RESOLVE_RESP content");
  Check(c.before_kemac.empty(), "ReadPeerAnswer: nothing before the KEMAC");
  Check(!c.kemac_keys.empty() && c.kemac_keys.size() <= kMaxPeerKeys, "ReadPeerAnswer: ok with 1..32 keys");
  Check(IsMpk(c.kemac_keys.front()), "ReadPeerAnswer: the first key is an MPK (MPKi)");
  if (!c.after_kemac.empty()) {
    Check(c.after_kemac.size() == 2, "ReadPeerAnswer: after_kemac is empty or [IDRr, RANDRkms]");
    const auto* idr = std::get_if<mikey::IdrPayload>(&c.after_kemac[0]);
    const auto* randr = std::get_if<mikey::RandrPayload>(&c.after_kemac[1]);
    Check(idr != nullptr && idr->role == static_cast<uint8_t>(mikey::IdRole::kResponder) &&
              tkms::SameUserIdentity(Text(idr->data), query.responder),
          "ReadPeerAnswer: a forked answer's IDRr names the queried responder");
    Check(randr != nullptr && randr->role == static_cast<uint8_t>(mikey::RandRole::kKms),
          "ReadPeerAnswer: a forked answer's IDRr comes with RANDRkms");
  }
  // The input, read independently.
  Check(decoded.ok(), "ReadPeerAnswer: an accepted answer decodes");
  const mikey::Message& m = *decoded;
  Check(m.header.data_type == static_cast<uint8_t>(mikey::DataType::kResolveResp) &&
            m.header.csb_id == query.csb_id && m.header.prf_func == query.prf_func,
        "ReadPeerAnswer: an accepted answer is a RESOLVE_RESP with the query's CSB ID and PRF");
  const auto* v = m.payloads.empty() ? nullptr : std::get_if<mikey::VPayload>(&m.payloads.back());
  Check(v != nullptr && v->auth_alg == static_cast<uint8_t>(mikey::MacAlg::kNull) && v->mac.empty(),
        "ReadPeerAnswer: an accepted answer ends with V, MAC NULL, no MAC");
  const auto kms_ids = Idrs(m, mikey::IdRole::kKms);
  Check(kms_ids.size() == 1 && tkms::SameUserIdentity(Text(kms_ids.front()->data), query.issuer),
        "ReadPeerAnswer: an accepted answer has one IDRkms naming the issuer");
  const auto kemacs = All<mikey::KemacPayload>(m);
  Check(kemacs.size() == 1, "ReadPeerAnswer: an accepted answer has one KEMAC");
  const mikey::KemacPayload& kemac = *kemacs.front();
  Check(kemac.encr_alg == static_cast<uint8_t>(mikey::EncrAlg::kNull) &&
            kemac.mac_alg == static_cast<uint8_t>(mikey::MacAlg::kNull) && kemac.mac.empty(),
        "ReadPeerAnswer: an accepted answer's KEMAC is encryption NULL / MAC NULL");
  auto chain = mikey::DecodeKeyDataChain(kemac.encr_data);
  Check(chain.ok() && *chain == c.kemac_keys, "ReadPeerAnswer: the keys are the KEMAC's key data");
  const size_t idr_r = Idrs(m, mikey::IdRole::kResponder).size();
  const size_t randr_kms = Randrs(m, mikey::RandRole::kKms).size();
  Check(idr_r == randr_kms && idr_r == (c.after_kemac.empty() ? 0u : 1u),
        "ReadPeerAnswer: IDRr / RANDRkms in the answer exactly when returned");
  return content;
}

// ---- modes 1, 2: Handle on Zk ------------------------------------------------------

// Whether `id` is named by the ticket's responder list: directly or through
// the one group of the fixed world, sip:team@example.org = {alice, bob}.
bool TicketNames(const mikey::TicketPolicy& policy, const std::string& id) {
  for (const auto& item : policy.tp_data) {
    const auto* idr = std::get_if<mikey::IdrPayload>(&item);
    if (idr == nullptr || idr->role != static_cast<uint8_t>(mikey::IdRole::kResponder)) continue;
    const std::string r = Text(idr->data);
    if (tkms::SameUserIdentity(r, id)) return true;
    if (tkms::SameUserIdentity(r, fs::kTeam) &&
        (tkms::SameUserIdentity(id, fs::kAlice) || tkms::SameUserIdentity(id, fs::kBob))) {
      return true;
    }
  }
  return false;
}

void CheckGrant(bool peer, ByteSpan request, const mikey::Message& answer, const kms::KmsReply& reply) {
  Check(!reply.mikey_error.has_value() && reply.refusal == kms::Refusal::kNone, "kOk has no error number");
  Check(!reply.user.empty(), "kOk names the Zk client's resolver");
  auto req = mikey::Decode(request, Lenient());
  Check(req.ok(), "a request answered with kOk decodes");
  Check(answer.header.data_type == static_cast<uint8_t>(mikey::DataType::kResolveResp),
        "kOk answers a RESOLVE_RESP");
  Check(answer.header.prf_func == req->header.prf_func, "the RESOLVE_RESP has the request's PRF");
  const auto* v = answer.payloads.empty() ? nullptr : std::get_if<mikey::VPayload>(&answer.payloads.back());
  Check(v != nullptr && v->auth_alg == static_cast<uint8_t>(mikey::MacAlg::kNull) && v->mac.empty(),
        "the RESOLVE_RESP's V is MAC NULL with no MAC");
  const auto kms_ids = Idrs(answer, mikey::IdRole::kKms);
  Check(kms_ids.size() == 1 && Text(kms_ids.front()->data) == fs::kKmsIdentity,
        "the RESOLVE_RESP's IDRkms names this KMS");
  const auto kemacs = All<mikey::KemacPayload>(answer);
  Check(kemacs.size() == 1, "the RESOLVE_RESP has one KEMAC");
  const mikey::KemacPayload& kemac = *kemacs.front();
  Check(kemac.encr_alg == static_cast<uint8_t>(mikey::EncrAlg::kNull) &&
            kemac.mac_alg == static_cast<uint8_t>(mikey::MacAlg::kNull) && kemac.mac.empty(),
        "the RESOLVE_RESP's KEMAC is encryption NULL / MAC NULL");
  auto keys = mikey::DecodeKeyDataChain(kemac.encr_data);
  Check(keys.ok() && !keys->empty() && IsMpk(keys->front()), "the KEMAC's key data start with MPKi");

  const auto tickets = All<mikey::TicketPayload>(*req);
  Check(tickets.size() == 1, "a granted RESOLVE_INIT has one TICKET");
  const bool forking = (tickets.front()->policy.flags & mikey::kFlagI) != 0;
  const auto req_idr = Idrs(*req, mikey::IdRole::kResponder);
  const auto ans_idr = Idrs(answer, mikey::IdRole::kResponder);
  const auto ans_randr = Randrs(answer, mikey::RandRole::kKms);
  if (forking) Check(keys->size() >= 2 && IsMpk((*keys)[1]), "a forking ticket's answer has MPKr(') second");
  std::string responder;
  if (peer) {
    Check(req_idr.size() == 1, "a peer KMS's granted RESOLVE_INIT names the responder (IDRr)");
    responder = Text(req_idr.front()->data);
    Check(TicketNames(tickets.front()->policy, responder),
          "a peer KMS gets keys only for a responder the ticket names");
    if (forking) {
      Check(ans_idr.size() == 1 && ans_idr.front()->data == req_idr.front()->data && ans_randr.size() == 1 &&
                ans_randr.front()->rand.size() >= kMinRandrKmsBytes,
            "a forked answer to a peer KMS carries IDRr = the responder and RANDRkms");
    } else {
      Check(ans_idr.empty() && ans_randr.empty(), "an unforked answer carries no IDRr / RANDRkms");
    }
  } else {
    Check(ans_idr.empty() && ans_randr.empty(), "a network function's answer is never forked");
  }
  // KMS_R, having asked for `responder`, accepts exactly these keys.
  kms::PeerQuery query;
  query.csb_id = req->header.csb_id;
  query.prf_func = req->header.prf_func;
  query.issuer = std::string(fs::kKmsIdentity);
  query.responder = responder;
  query.forking = forking && peer;  // a network function's answer is never forked
  auto read = CheckPeerAnswer(reply.mikey, query);
  if (!read.ok()) std::fprintf(stderr, "%s: ReadPeerAnswer: %s\n", kTarget, read.error().detail.c_str());
  Check(read.ok() && read->kemac_keys == *keys, "KMS_R's ReadPeerAnswer accepts KMS_I's RESOLVE_RESP");
}

void CheckError(const mikey::Message& answer, const kms::KmsReply& reply) {
  Check(answer.header.data_type == static_cast<uint8_t>(mikey::DataType::kError),
        "kMikeyError answers an Error message (data type 6)");
  Check(reply.mikey_error.has_value(), "kMikeyError sets mikey_error");
  Check(reply.refusal != kms::Refusal::kNone, "kMikeyError names the refusal");
  Check(All<mikey::VPayload>(answer).empty(), "an Error on Zk carries no V (no shared key)");
  const auto errs = All<mikey::ErrPayload>(answer);
  Check(errs.size() == 1, "the Error message carries exactly one ERR payload");
  Check(errs.front()->error_no == *reply.mikey_error, "mikey_error is the ERR payload's error number");
  auto read = CheckPeerAnswer(reply.mikey, FixedQuery());
  Check(!read.ok() && read.error().outcome == kms::Outcome::kMikeyError &&
            read.error().error_no == *reply.mikey_error,
        "KMS_R's ReadPeerAnswer passes KMS_I's error number on");
}

void CheckHandle(bool peer, ByteSpan request) {
  fs::FreshKms k;
  const kms::KmsReply reply =
      peer ? k.HandleZk(kms::ZkClientKind::kPeerKms, fs::kPeerKms, request)
           : k.HandleZk(kms::ZkClientKind::kNetworkFunction, fs::kNetworkFunction, request);
  if (!Printable(reply.detail) || !Printable(reply.user)) {
    std::fprintf(stderr, "%s: detail: %s\n%s: user: %s\n", kTarget, tkms::Escaped(reply.detail).c_str(), kTarget,
                 tkms::Escaped(reply.user).c_str());
  }
  Check(Printable(reply.detail) && Printable(reply.user), "detail and user are printable (ASCII and the sign §)");
  const bool header_readable = request.size() >= 10 && request[0] == mikey::kMikeyVersion;
  switch (reply.outcome) {
    case kms::Outcome::kBadRequest:
      Check(!header_readable, "kBadRequest only without a readable version-1 common header");
      Check(reply.mikey.empty() && !reply.mikey_error.has_value(), "kBadRequest carries no MIKEY message");
      return;
    case kms::Outcome::kOk:
    case kms::Outcome::kMikeyError:
      break;
    case kms::Outcome::kUnavailable:
    case kms::Outcome::kInternal:
      std::fprintf(stderr, "%s: outcome %s, refusal %s: %s\n", kTarget,
                   std::string(kms::OutcomeName(reply.outcome)).c_str(),
                   std::string(kms::RefusalName(reply.refusal)).c_str(), reply.detail.c_str());
      Check(false, "outcome is kOk, kMikeyError or kBadRequest (fake keys never fail, no forwarding on Zk)");
      return;
  }
  Check(header_readable, "a readable common header is never kBadRequest");
  auto answer = mikey::Decode(reply.mikey);  // strict: composition rules on
  if (!answer.ok()) std::fprintf(stderr, "%s: %s\n", kTarget, answer.error().ToString().c_str());
  Check(answer.ok(), "the KMS's answer decodes with the composition rules");
  Check(answer->header.csb_id == CsbIdOf(request), "the answer carries the request's CSB ID");
  if (reply.outcome == kms::Outcome::kOk) {
    CheckGrant(peer, request, *answer, reply);
  } else {
    CheckError(*answer, reply);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ByteSpan message(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      (void)CheckPeerAnswer(message, FixedQuery(((data[0] / 3) & 1) != 0));
      break;
    case 1:
      CheckHandle(true, message);
      break;
    default:
      CheckHandle(false, message);
      break;
  }
  return 0;
}
