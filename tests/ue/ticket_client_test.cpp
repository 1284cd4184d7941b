// The UE's MIKEY-TICKET messages (tools/ue/ticket_client.h): every message it
// builds decodes with the composition rules on and verifies independently
// (hand-written labels and MAC inputs in fake_kms.h, crypto::VerifyV over the
// RFC 6043 §5.5 coverage); answers from the hand-written KMS are accepted, and
// every deviation (a flipped byte, another CSB ID, data type or KMS identity,
// a wrong key order, an Error message) is refused with the right kind.
#include "tools/ue/ticket_client.h"

#include <gtest/gtest.h>

#include "firmware/mikey/composition.h"
#include "firmware/mikey/coverage.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/mac.h"
#include "firmware/mikey/crypto/protect.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/ue/fake_kms.h"

namespace tkms::ue {
namespace {

using mikey::Message;
using testing::FakeKms;
using testing::Filled;
using testing::KmsBehaviour;
using testing::Text;
namespace crypto = mikey::crypto;

class TicketClient : public ::testing::Test {
 protected:
  RequestInitParams RequestParams() {
    RequestInitParams p;
    p.psk = kms_.psk_i;
    p.psk_id = Text("alice-psk-1");
    p.initiator.id = kms_.id_i;
    p.kms.id = kms_.id_kms;
    p.policy.responders.push_back(IdValue{kms_.id_r});
    p.policy.keys.push_back(RequestedKey{});  // one TGK of 16 bytes
    return p;
  }

  ResolveInitParams ResolveParams(const mikey::TicketPayload& ticket) {
    ResolveInitParams p;
    p.psk = kms_.psk_r;
    p.psk_id = Text("bob-psk-1");
    p.responder.id = kms_.id_r;
    p.kms.id = kms_.id_kms;
    p.ticket = ticket;
    return p;
  }

  RequestInit Request(const RequestInitParams& p) {
    auto r = BuildRequestInitPsk(provider_, p);
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return std::move(*r);
  }

  TicketGrant Grant(const RequestInitParams& p) {
    RequestInit req = Request(p);
    auto grant = ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes), req);
    EXPECT_TRUE(grant.ok()) << grant.error().ToString();
    return std::move(*grant);
  }

  crypto::TransientCryptoProvider provider_;
  FakeKms kms_{provider_};
};

// ---- REQUEST_INIT_PSK ------------------------------------------------------------

TEST_F(TicketClient, RequestInitDecodesWithTheRfc6043Composition) {
  const uint64_t before = NtpUtcNow();
  RequestInit req = Request(RequestParams());
  std::vector<mikey::PayloadExtent> extents;
  auto m = mikey::Decode(req.bytes, {}, extents);  // composition check on
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->header.data_type, 11);
  EXPECT_TRUE(m->header.v);
  EXPECT_EQ(m->header.prf_func, 1);
  EXPECT_EQ(m->header.cs_count, 0);
  EXPECT_EQ(m->header.cs_id_map_type, 1);  // Empty map
  EXPECT_EQ(m->header.csb_id, req.csb_id);
  ASSERT_EQ(m->payloads.size(), 7u);  // T, RANDRi, IDRi, IDRkms, TP, IDRpsk, V
  const auto& t = std::get<mikey::TPayload>(m->payloads[0]);
  EXPECT_EQ(t.ts_type, 0);
  EXPECT_GE(t.value, before);
  EXPECT_LE(t.value, NtpUtcNow());
  const auto& randri = std::get<mikey::RandrPayload>(m->payloads[1]);
  EXPECT_EQ(randri.role, 1);
  EXPECT_EQ(randri.rand.size(), 32u);  // max(16, |PSK|), RFC 6043 §12.1
  EXPECT_EQ(randri.rand, req.randri);
  EXPECT_EQ(std::get<mikey::IdrPayload>(m->payloads[2]), (mikey::IdrPayload{1, 1, kms_.id_i}));
  EXPECT_EQ(std::get<mikey::IdrPayload>(m->payloads[3]), (mikey::IdrPayload{3, 1, kms_.id_kms}));
  const auto& tp = std::get<mikey::TpPayload>(m->payloads[4]).policy;
  EXPECT_EQ(tp.ticket_type, 1);
  EXPECT_EQ(tp.subtype, 1);
  EXPECT_EQ(tp.version, 1);
  EXPECT_EQ(tp.prf_func, 1);
  EXPECT_NE(tp.flags & mikey::kFlagD, 0);
  EXPECT_EQ(tp.flags & mikey::kFlagK, 0);
  ASSERT_EQ(tp.tp_data.size(), 2u);  // KEMAC, IDRr
  const auto& kemac = std::get<mikey::KemacPayload>(tp.tp_data[0]);
  EXPECT_EQ(kemac.encr_alg, 0);
  EXPECT_EQ(kemac.mac_alg, 0);
  auto wanted = mikey::DecodeKeyDataChain(kemac.encr_data);
  ASSERT_TRUE(wanted.ok());
  ASSERT_EQ(wanted->size(), 1u);
  EXPECT_EQ((*wanted)[0].key_type, 0);                   // TGK
  EXPECT_EQ((*wanted)[0].key, SecretBytes(16, 0));       // zeroed key field
  EXPECT_EQ(std::get<mikey::IdrPayload>(tp.tp_data[1]), (mikey::IdrPayload{2, 1, kms_.id_r}));
  EXPECT_EQ(std::get<mikey::IdrPayload>(m->payloads[5]), (mikey::IdrPayload{4, 2, Text("alice-psk-1")}));
  EXPECT_EQ(std::get<mikey::VPayload>(m->payloads[6]).auth_alg, 2);
  // Canonical: what the codec decodes it re-encodes byte for byte.
  EXPECT_EQ(mikey::Encode(*m).value(), req.bytes);
}

TEST_F(TicketClient, RequestInitVVerifiesIndependently) {
  RequestInit req = Request(RequestParams());
  // Hand-built label and MAC input (fake_kms.h).
  EXPECT_TRUE(kms_.RequestVerifies(req.bytes, kms_.id_i));
  EXPECT_FALSE(kms_.RequestVerifies(req.bytes, Text("sip:mallory@example.org")));
  // crypto::VerifyV over the §5.5 coverage with Identity_i || Identity_kms.
  std::vector<mikey::PayloadExtent> extents;
  auto m = mikey::Decode(req.bytes, {}, extents);
  ASSERT_TRUE(m.ok());
  auto auth = crypto::TransientCryptoProvider::MakeKey(kms_.RequestAuthKey(req.bytes));
  const ByteSpan ids[] = {kms_.id_i, kms_.id_kms};
  EXPECT_TRUE(crypto::VerifyV(provider_, req.bytes, *m, extents, *auth, ids).ok());
  const ByteSpan swapped[] = {kms_.id_kms, kms_.id_i};
  EXPECT_FALSE(crypto::VerifyV(provider_, req.bytes, *m, extents, *auth, swapped).ok());
  EXPECT_EQ(req.auth_key, kms_.RequestAuthKey(req.bytes));
}

TEST_F(TicketClient, OmittedIdentitiesAreStillCoveredByTheMac) {
  RequestInitParams p = RequestParams();
  p.initiator.send = false;
  p.kms.send = false;
  p.psk_id.reset();
  RequestInit req = Request(p);
  auto m = mikey::Decode(req.bytes);
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->payloads.size(), 4u);  // T, RANDRi, TP, V
  EXPECT_TRUE(kms_.RequestVerifies(req.bytes, kms_.id_i));
}

TEST_F(TicketClient, RequestParametersAreHonoured) {
  RequestInitParams p = RequestParams();
  p.csb_id = 0x01020304;
  p.randri = Filled(40, 7);  // at least |PSK| (RFC 6043 §12.1)
  p.timestamp.value = 0xD0000000'00000000ull;  // a stale timestamp (tests of the KMS's window)
  p.policy.valid_from = TsValue{0, 0xEB000000'00000000ull};
  p.policy.valid_to = TsValue{0, 0xEC000000'00000000ull};
  p.policy.rekey_interval = 3600;
  p.policy.kms = IdValue{kms_.id_kms};
  p.policy.initiator = IdValue{kms_.id_i};
  p.policy.applications.push_back(IdValue{Text("app"), 2});
  p.policy.responders.push_back(IdValue{Text("sip:carol@example.org")});
  RequestInit req = Request(p);
  auto m = mikey::Decode(req.bytes);
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->header.csb_id, 0x01020304u);
  EXPECT_EQ(std::get<mikey::TPayload>(m->payloads[0]).value, 0xD0000000'00000000ull);
  EXPECT_EQ(std::get<mikey::RandrPayload>(m->payloads[1]).rand, Filled(40, 7));
  const auto& tp = std::get<mikey::TpPayload>(m->payloads[4]).policy;
  // [IDRkms], [IDRi], [TRs], [TRe], [TRr], [KEMAC], {IDRapp}, (IDRr)
  ASSERT_EQ(tp.tp_data.size(), 9u);
  EXPECT_EQ(std::get<mikey::IdrPayload>(tp.tp_data[0]).role, 3);
  EXPECT_EQ(std::get<mikey::IdrPayload>(tp.tp_data[1]).role, 1);
  EXPECT_EQ(std::get<mikey::TrPayload>(tp.tp_data[2]), (mikey::TrPayload{2, 0, 0xEB000000'00000000ull}));
  EXPECT_EQ(std::get<mikey::TrPayload>(tp.tp_data[3]), (mikey::TrPayload{3, 0, 0xEC000000'00000000ull}));
  EXPECT_EQ(std::get<mikey::TrPayload>(tp.tp_data[4]), (mikey::TrPayload{4, 3, 3600}));
  EXPECT_TRUE(std::holds_alternative<mikey::KemacPayload>(tp.tp_data[5]));
  EXPECT_EQ(std::get<mikey::IdrPayload>(tp.tp_data[6]), (mikey::IdrPayload{5, 2, Text("app")}));
  EXPECT_EQ(std::get<mikey::IdrPayload>(tp.tp_data[8]).data, Text("sip:carol@example.org"));
  EXPECT_TRUE(kms_.RequestVerifies(req.bytes, kms_.id_i));
}

TEST_F(TicketClient, RequestFlagsFollowTheDependencies) {
  DesiredTicketPolicy d;
  d.responders.push_back(IdValue{Text("sip:bob@example.org")});
  d.flags = mikey::kFlagI | mikey::kFlagK;  // no E, F, G, H
  auto f = RequestFlags(d);
  ASSERT_TRUE(f.ok()) << f.error().ToString();
  EXPECT_NE(*f & mikey::kFlagD, 0);  // a KMS ticket
  EXPECT_EQ(*f & mikey::kFlagK, 0);  // "SHALL be set to '0' by the Initiator"
  EXPECT_NE(*f & mikey::kFlagE, 0);  // I => E
  EXPECT_NE(*f & mikey::kFlagH, 0);  // not G => H
  EXPECT_NE(*f & mikey::kFlagF, 0);  // I with the default TGK => F
  EXPECT_TRUE(mikey::CheckTicketFlags(*f).ok());
  d.flags = mikey::kFlagG | mikey::kFlagM;
  f = RequestFlags(d);
  ASSERT_TRUE(f.ok());
  EXPECT_NE(*f & mikey::kFlagF, 0);  // G => F, M => F
  EXPECT_EQ(*f & mikey::kFlagH, 0);  // G set: H stays as chosen
  d.complete_flags = false;
  d.flags = mikey::kFlagI | mikey::kFlagH;  // I without E
  EXPECT_FALSE(RequestFlags(d).ok());
  d.flags = mikey::kFlagI | mikey::kFlagE | mikey::kFlagH;  // I and a TGK without F
  EXPECT_FALSE(RequestFlags(d).ok());
  d.flags = 0x1000;  // reserved
  EXPECT_FALSE(RequestFlags(d).ok());
}

TEST_F(TicketClient, RequestBuilderRefusesImpossibleParameters) {
  RequestInitParams p = RequestParams();
  p.policy.responders.clear();
  EXPECT_EQ(BuildRequestInitPsk(provider_, p).error().kind, UeErrorKind::kInvalidArgument);
  p = RequestParams();
  p.psk.clear();
  EXPECT_EQ(BuildRequestInitPsk(provider_, p).error().kind, UeErrorKind::kInvalidArgument);
  p = RequestParams();
  p.mac_alg = 0;
  EXPECT_EQ(BuildRequestInitPsk(provider_, p).error().kind, UeErrorKind::kInvalidArgument);
  p = RequestParams();
  p.timestamp.ts_type = 2;  // COUNTER without a value
  EXPECT_EQ(BuildRequestInitPsk(provider_, p).error().kind, UeErrorKind::kInvalidArgument);
  p = RequestParams();
  p.randri = Bytes{};
  EXPECT_EQ(BuildRequestInitPsk(provider_, p).error().kind, UeErrorKind::kInvalidArgument);
  p = RequestParams();
  p.policy.keys[0].key_type = 6;  // an MPK cannot be requested
  EXPECT_EQ(BuildRequestInitPsk(provider_, p).error().kind, UeErrorKind::kInvalidArgument);
}

TEST(NtpTime, UnixToNtpUtc) {
  EXPECT_EQ(NtpUtcFromUnixNanos(0), 2208988800ull << 32);
  EXPECT_EQ(NtpUtcFromUnixNanos(1'500'000'000), ((2208988800ull + 1) << 32) | 0x80000000ull);
  // 2036-02-07 06:28:16 UTC: NTP era 1 starts, seconds wrap to 0.
  EXPECT_EQ(NtpUtcFromUnixNanos(2085978496ll * 1'000'000'000ll), 0u);
}

// ---- REQUEST_RESP -------------------------------------------------------------------

TEST_F(TicketClient, AcceptsAVerifiedRequestResp) {
  RequestInit req = Request(RequestParams());
  const Bytes resp = kms_.AnswerRequest(req.bytes);
  auto grant = ParseRequestResp(provider_, resp, req);
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  EXPECT_EQ(grant->mpki, kms_.mpki);
  EXPECT_FALSE(grant->mpkr.has_value());
  ASSERT_EQ(grant->session_keys.size(), 1u);
  EXPECT_EQ(grant->session_keys[0].key_type, 0);
  EXPECT_EQ(grant->session_keys[0].key, kms_.tgk);
  EXPECT_EQ(grant->session_keys[0].kv.spi, Bytes{0x03});
  ASSERT_EQ(grant->mpk_keys.size(), 1u);
  EXPECT_EQ(grant->mpk_keys[0].kv.spi, Bytes{0x01});
  EXPECT_EQ(grant->policy, kms_.last_granted);
  EXPECT_EQ(grant->ticket.policy, kms_.last_granted);
  EXPECT_FALSE(grant->ticket.ticket_data.empty());
  EXPECT_FALSE(grant->ticket.initiator_data.has_value());
  EXPECT_FALSE(grant->policy_changed);
  EXPECT_EQ(grant->kms_timestamp.value, KmsBehaviour{}.response_ts);
  EXPECT_EQ(grant->kms_identity, kms_.id_kms);
  EXPECT_EQ(grant->response, resp);
}

TEST_F(TicketClient, ReportsAChangedPolicy) {
  RequestInit req = Request(RequestParams());
  KmsBehaviour b;
  b.add_flags = mikey::kFlagK | mikey::kFlagJ;
  auto grant = ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes, b), req);
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  EXPECT_TRUE(grant->policy_changed);
  EXPECT_NE(grant->policy.flags & mikey::kFlagJ, 0);
}

TEST_F(TicketClient, ForkingGrantCarriesMpkr) {
  RequestInitParams p = RequestParams();
  p.policy.flags |= mikey::kFlagI;
  TicketGrant grant = Grant(p);
  ASSERT_TRUE(grant.mpkr.has_value());
  EXPECT_EQ(*grant.mpkr, kms_.mpkr);
  EXPECT_EQ(grant.mpki, kms_.mpki);
  EXPECT_EQ(grant.session_keys.size(), 1u);
}

TEST_F(TicketClient, EveryFlippedByteIsRefused) {
  RequestInit req = Request(RequestParams());
  const Bytes resp = kms_.AnswerRequest(req.bytes);
  for (size_t i = 0; i < resp.size(); ++i) {
    for (uint8_t bit : {uint8_t{0x01}, uint8_t{0x80}}) {
      Bytes bad = resp;
      bad[i] ^= bit;
      auto grant = ParseRequestResp(provider_, bad, req);
      ASSERT_FALSE(grant.ok()) << "byte " << i << " bit " << int{bit};
      const UeErrorKind kind = grant.error().kind;
      EXPECT_TRUE(kind == UeErrorKind::kVerification || kind == UeErrorKind::kBadResponse ||
                  kind == UeErrorKind::kMikeyError)
          << grant.error().ToString();
    }
  }
  // The request is covered too: an altered REQUEST_INIT does not match.
  RequestInit altered = req;
  altered.bytes[5] ^= 1;
  EXPECT_EQ(ParseRequestResp(provider_, resp, altered).error().kind, UeErrorKind::kVerification);
}

TEST_F(TicketClient, RefusesAnswersThatDoNotBelongToTheRequest) {
  RequestInit req = Request(RequestParams());
  KmsBehaviour other_csb;
  other_csb.csb_id = req.csb_id ^ 1;
  auto r = ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes, other_csb), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kVerification);
  EXPECT_NE(r.error().detail.find("CSB ID"), std::string::npos) << r.error().ToString();

  KmsBehaviour other_type;
  other_type.data_type = static_cast<uint8_t>(mikey::DataType::kResolveResp);
  r = ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes, other_type), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kVerification);
  EXPECT_NE(r.error().detail.find("RESOLVE_RESP"), std::string::npos) << r.error().ToString();

  KmsBehaviour other_kms;
  other_kms.kms_identity = Text("kms.evil.example");
  r = ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes, other_kms), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kVerification);
  EXPECT_NE(r.error().detail.find("IDRkms"), std::string::npos);

  KmsBehaviour no_kms_id;  // IDRkms is optional in REQUEST_RESP
  no_kms_id.send_idrkms = false;
  EXPECT_TRUE(ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes, no_kms_id), req).ok());

  // An answer to another request (different RANDRi, CSB ID, MAC input).
  RequestInit other = Request(RequestParams());
  r = ParseRequestResp(provider_, kms_.AnswerRequest(other.bytes), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kVerification);
}

TEST_F(TicketClient, RefusesWrongKemacContents) {
  RequestInit req = Request(RequestParams());
  KmsBehaviour order;
  order.session_key_first = true;
  EXPECT_EQ(ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes, order), req).error().kind,
            UeErrorKind::kVerification);
  KmsBehaviour no_spi;
  no_spi.with_spi = false;
  EXPECT_EQ(ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes, no_spi), req).error().kind,
            UeErrorKind::kVerification);
  RequestInit lenient = req;
  lenient.checks.require_key_spi = false;
  EXPECT_TRUE(ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes, no_spi), lenient).ok());
  KmsBehaviour null_encr;
  null_encr.encr_alg = 0;
  EXPECT_EQ(ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes, null_encr), req).error().kind,
            UeErrorKind::kVerification);
  lenient.checks.allow_null_encryption = true;
  EXPECT_TRUE(ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes, null_encr), lenient).ok());
  KmsBehaviour aes128;
  aes128.encr_alg = 1;
  EXPECT_TRUE(ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes, aes128), req).ok());

  // Forking policy granted, but only one MPK.
  RequestInitParams fork = RequestParams();
  fork.policy.flags |= mikey::kFlagI;
  RequestInit freq = Request(fork);
  KmsBehaviour one_mpk;
  one_mpk.omit_mpkr = true;
  EXPECT_EQ(ParseRequestResp(provider_, kms_.AnswerRequest(freq.bytes, one_mpk), freq).error().kind,
            UeErrorKind::kVerification);
  // A forking grant for a request without forking: two MPKs expected, one sent.
  KmsBehaviour granted_fork;
  granted_fork.add_flags = mikey::kFlagI | mikey::kFlagK;
  granted_fork.omit_mpkr = true;
  EXPECT_EQ(ParseRequestResp(provider_, kms_.AnswerRequest(req.bytes, granted_fork), req).error().kind,
            UeErrorKind::kVerification);
}

TEST_F(TicketClient, KemacIvUsesTheResponseTimestamp) {
  RequestInit req = Request(RequestParams());
  KmsBehaviour request_t;
  request_t.iv_from_request_t = true;
  const Bytes resp = kms_.AnswerRequest(req.bytes, request_t);
  auto r = ParseRequestResp(provider_, resp, req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kVerification);
  RequestInit other_reading = req;
  other_reading.checks.iv_timestamp = IvTimestamp::kRequestT;
  EXPECT_TRUE(ParseRequestResp(provider_, resp, other_reading).ok());
}

TEST_F(TicketClient, ErrorMessagesReturnTheirNumber) {
  RequestInit req = Request(RequestParams());
  // Unauthenticated Error (RFC 3830 §5.1.2: a hint).
  auto r = ParseRequestResp(provider_, kms_.Error(req.bytes, 0, nullptr), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kMikeyError);
  EXPECT_EQ(r.error().mikey_error(), 0);
  EXPECT_FALSE(r.error().error_authenticated);
  // Authenticated with the REQUEST_INIT's auth_key (RFC 6043 §5.4).
  const SecretBytes auth = kms_.RequestAuthKey(req.bytes);
  r = ParseRequestResp(provider_, kms_.Error(req.bytes, 15, &auth), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kMikeyError);
  EXPECT_EQ(r.error().mikey_error(), 15);
  EXPECT_TRUE(r.error().error_authenticated);
  EXPECT_NE(r.error().ToString().find("Invalid TPpar"), std::string::npos) << r.error().ToString();
  // A V that does not verify: not trusted.
  const SecretBytes wrong(32, 0x5A);
  r = ParseRequestResp(provider_, kms_.Error(req.bytes, 1, &wrong), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kVerification);
  EXPECT_EQ(r.error().mikey_error(), 1);
  EXPECT_FALSE(r.error().error_authenticated);
  // ParseErrorMessage directly.
  auto report = ParseErrorMessage(provider_, kms_.Error(req.bytes, 13, &auth), ErrorAuthKey{&auth, 2});
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->errors, std::vector<uint8_t>{13});
  EXPECT_TRUE(report->has_v);
  EXPECT_TRUE(report->authenticated);
  EXPECT_EQ(report->csb_id, req.csb_id);
  EXPECT_EQ(ParseErrorMessage(provider_, req.bytes).error().kind, UeErrorKind::kBadResponse);
}

TEST_F(TicketClient, GarbageIsABadResponse) {
  RequestInit req = Request(RequestParams());
  auto r = ParseRequestResp(provider_, Bytes{1, 13, 0, 0}, req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kBadResponse);
  EXPECT_TRUE(r.error().codec_rule.has_value());
  EXPECT_EQ(ParseRequestResp(provider_, Bytes{}, req).error().kind, UeErrorKind::kBadResponse);
}

// ---- TRANSFER_INIT --------------------------------------------------------------------

TEST_F(TicketClient, TransferInitVerifiesWithMpki) {
  TicketGrant grant = Grant(RequestParams());
  TransferInitParams tp;
  tp.initiator.id = kms_.id_i;
  tp.responder.id = kms_.id_r;
  auto ti = BuildTransferInit(provider_, grant, tp);
  ASSERT_TRUE(ti.ok()) << ti.error().ToString();
  std::vector<mikey::PayloadExtent> extents;
  auto m = mikey::Decode(ti->bytes, {}, extents);
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->header.data_type, 14);
  EXPECT_EQ(m->header.v, (grant.policy.flags & mikey::kFlagF) != 0);
  EXPECT_EQ(m->header.cs_id_map_type, 2);  // GENERIC-ID
  ASSERT_EQ(m->header.generic_map.size(), 1u);
  EXPECT_EQ(m->header.generic_map[0].cs_id, 1);
  EXPECT_EQ(m->header.generic_map[0].session_data.size(), 4u);
  EXPECT_EQ(std::get<mikey::TicketPayload>(m->payloads[4]), ti->ticket);
  EXPECT_FALSE(ti->ticket.initiator_data.has_value());
  EXPECT_EQ(ti->ticket.ticket_data, grant.ticket.ticket_data);
  // V: auth_key from MPKi (label 0x01, RANDRi), Identity_i || Identity_r.
  const SecretBytes auth = testing::AuthKey(provider_, kms_.mpki, ti->csb_id, 0x01, ti->randri, {});
  auto key = crypto::TransientCryptoProvider::MakeKey(auth);
  const ByteSpan ids[] = {kms_.id_i, kms_.id_r};
  EXPECT_TRUE(crypto::VerifyV(provider_, ti->bytes, *m, extents, *key, ids).ok());
  // By hand: the TICKET's Initiator Data length (its last two bytes here, 0x0000)
  // is not covered (RFC 6043 §5.5), neither is the MAC.
  const size_t ticket_end = extents[5].offset + extents[5].length;
  EXPECT_EQ(ti->bytes[ticket_end - 2], 0);
  EXPECT_EQ(ti->bytes[ticket_end - 1], 0);
  const ByteSpan before_id_len(ti->bytes.data(), ticket_end - 2);
  const ByteSpan after_ticket(ti->bytes.data() + ticket_end, ti->bytes.size() - 32 - ticket_end);
  EXPECT_EQ(testing::HmacSha256(provider_, auth, {before_id_len, after_ticket, kms_.id_i, kms_.id_r}),
            Bytes(ti->bytes.end() - 32, ti->bytes.end()));

  TransferInitParams empty_map = tp;
  empty_map.generic_id_map = false;
  auto ti2 = BuildTransferInit(provider_, grant, empty_map);
  ASSERT_TRUE(ti2.ok());
  auto m2 = mikey::Decode(ti2->bytes);
  ASSERT_TRUE(m2.ok()) << m2.error().ToString();
  EXPECT_EQ(m2->header.cs_id_map_type, 1);
  EXPECT_EQ(m2->header.cs_count, 0);
}

TEST_F(TicketClient, ForkingTransferInitCarriesInitiatorData) {
  RequestInitParams p = RequestParams();
  p.policy.flags |= mikey::kFlagI;
  TicketGrant grant = Grant(p);
  TransferInitParams tp;
  tp.initiator.id = kms_.id_i;
  tp.responder.id = kms_.id_r;
  auto ti = BuildTransferInit(provider_, grant, tp);
  ASSERT_TRUE(ti.ok()) << ti.error().ToString();
  std::vector<mikey::PayloadExtent> extents;
  auto m = mikey::Decode(ti->bytes, {}, extents);
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  const auto& ticket = std::get<mikey::TicketPayload>(m->payloads[4]);
  ASSERT_TRUE(ticket.initiator_data.has_value());
  const auto& v = std::get<mikey::VPayload>(m->payloads.back());
  EXPECT_EQ(ticket.initiator_data->vi, v);  // Vi identical to V
  EXPECT_EQ(ticket, ti->ticket);
  // Vr keyed from MPKr (label 0x04), over First Payload, Vi, Vr's header.
  auto vr_key = crypto::DeriveInitiatorDataAuthKey(provider_, mikey::PrfFunc::kHmacSha256,
                                                   *FakeKms::Key(kms_.mpkr), mikey::MacAlg::kHmacSha256_256);
  ASSERT_TRUE(vr_key.ok());
  Bytes input = {9, 9, 2};  // First Payload = V; Vi: next = V, alg
  input.insert(input.end(), v.mac.begin(), v.mac.end());
  input.push_back(0);  // Vr: next = last
  input.push_back(2);
  EXPECT_EQ(testing::HmacSha256(provider_, *vr_key, {input}), ticket.initiator_data->vr.mac);
  // V does not cover Initiator Data (RFC 6043 §5.5) but covers the rest.
  const SecretBytes auth = testing::AuthKey(provider_, kms_.mpki, ti->csb_id, 0x01, ti->randri, {});
  auto key = crypto::TransientCryptoProvider::MakeKey(auth);
  const ByteSpan ids[] = {kms_.id_i, kms_.id_r};
  EXPECT_TRUE(crypto::VerifyV(provider_, ti->bytes, *m, extents, *key, ids).ok());
  Message changed = *m;
  std::get<mikey::TicketPayload>(changed.payloads[4]).initiator_data->vr.mac[0] ^= 1;
  auto changed_bytes = mikey::Encode(changed);
  ASSERT_TRUE(changed_bytes.ok());
  std::vector<mikey::PayloadExtent> changed_extents;
  auto cm = mikey::Decode(*changed_bytes, {}, changed_extents);
  ASSERT_TRUE(cm.ok());
  EXPECT_TRUE(crypto::VerifyV(provider_, *changed_bytes, *cm, changed_extents, *key, ids).ok());

  TicketGrant no_mpkr = grant;
  no_mpkr.mpkr.reset();
  EXPECT_EQ(BuildTransferInit(provider_, no_mpkr, tp).error().kind, UeErrorKind::kInvalidArgument);
}

// ---- RESOLVE_INIT_PSK / RESOLVE_RESP ------------------------------------------------------

TEST_F(TicketClient, ResolveInitUsesRandrrInTheRandrrSlot) {
  TicketGrant grant = Grant(RequestParams());
  auto ri = BuildResolveInitPsk(provider_, ResolveParams(grant.ticket));
  ASSERT_TRUE(ri.ok()) << ri.error().ToString();
  std::vector<mikey::PayloadExtent> extents;
  auto m = mikey::Decode(ri->bytes, {}, extents);
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->header.data_type, 16);
  EXPECT_TRUE(m->header.v);
  EXPECT_EQ(m->header.cs_id_map_type, 1);
  ASSERT_EQ(m->payloads.size(), 7u);  // T, RANDRr, IDRr, IDRkms, TICKET, IDRpsk, V
  EXPECT_EQ(std::get<mikey::RandrPayload>(m->payloads[1]).role, 2);
  EXPECT_EQ(std::get<mikey::RandrPayload>(m->payloads[1]).rand.size(), 32u);
  EXPECT_EQ(std::get<mikey::IdrPayload>(m->payloads[2]), (mikey::IdrPayload{2, 1, kms_.id_r}));
  EXPECT_EQ(std::get<mikey::TicketPayload>(m->payloads[4]), grant.ticket);
  EXPECT_EQ(std::get<mikey::IdrPayload>(m->payloads[5]), (mikey::IdrPayload{4, 2, Text("bob-psk-1")}));
  // label: const || 0xFF || CSB || 0x01 || 0x00 || L8(RANDRr) || RANDRr
  EXPECT_TRUE(kms_.ResolveVerifies(ri->bytes, kms_.id_r));
  const SecretBytes wrong_slot =
      testing::AuthKey(provider_, kms_.psk_r, ri->csb_id, 0x01, ri->randrr, {});
  auto key = crypto::TransientCryptoProvider::MakeKey(wrong_slot);
  const ByteSpan ids[] = {kms_.id_r, kms_.id_kms};
  EXPECT_FALSE(crypto::VerifyV(provider_, ri->bytes, *m, extents, *key, ids).ok());
}

TEST_F(TicketClient, AcceptsAVerifiedResolveResp) {
  TicketGrant grant = Grant(RequestParams());
  TransferInitParams tp;
  tp.initiator.id = kms_.id_i;
  tp.responder.id = kms_.id_r;
  auto ti = BuildTransferInit(provider_, grant, tp);
  ASSERT_TRUE(ti.ok());
  auto ri = BuildResolveInitPsk(provider_, ResolveParams(ti->ticket));
  ASSERT_TRUE(ri.ok());
  const Bytes resp = kms_.AnswerResolve(ri->bytes);
  auto resolved = ParseResolveResp(provider_, resp, *ri);
  ASSERT_TRUE(resolved.ok()) << resolved.error().ToString();
  EXPECT_EQ(resolved->mpki, kms_.mpki);
  EXPECT_FALSE(resolved->mpkr_forked.has_value());
  ASSERT_EQ(resolved->session_keys.size(), 1u);
  EXPECT_EQ(resolved->session_keys[0].key, kms_.tgk);
  EXPECT_FALSE(resolved->responder.has_value());
  EXPECT_FALSE(resolved->randrkms.has_value());
  EXPECT_EQ(resolved->kms_identity, kms_.id_kms);
  // The Responder can now check the TRANSFER_INIT with MPKi (§4.2.3.6).
  EXPECT_TRUE(VerifyTransferInit(provider_, ti->bytes, *resolved).ok());
  ResolvedTicket wrong = *resolved;
  wrong.mpki[0] ^= 1;
  EXPECT_EQ(VerifyTransferInit(provider_, ti->bytes, wrong).error().kind, UeErrorKind::kVerification);
  EXPECT_FALSE(VerifyTransferInit(provider_, ti->bytes, *resolved, Text("sip:eve@example.org")).ok());
}

TEST_F(TicketClient, ForkingResolveReturnsForkedKeysAndModifier) {
  RequestInitParams p = RequestParams();
  p.policy.flags |= mikey::kFlagI;
  TicketGrant grant = Grant(p);
  TransferInitParams tp;
  tp.initiator.id = kms_.id_i;
  tp.responder.id = kms_.id_r;
  auto ti = BuildTransferInit(provider_, grant, tp);
  ASSERT_TRUE(ti.ok());
  auto ri = BuildResolveInitPsk(provider_, ResolveParams(ti->ticket));
  ASSERT_TRUE(ri.ok()) << ri.error().ToString();
  EXPECT_TRUE(ri->forking);
  auto resolved = ParseResolveResp(provider_, kms_.AnswerResolve(ri->bytes), *ri);
  ASSERT_TRUE(resolved.ok()) << resolved.error().ToString();
  ASSERT_TRUE(resolved->responder.has_value());
  EXPECT_EQ(resolved->responder->data, kms_.id_r);
  ASSERT_TRUE(resolved->randrkms.has_value());
  EXPECT_EQ(*resolved->randrkms, kms_.randrkms);
  // The Initiator forks MPKr and the TGK with the same modifier.
  auto mpkr_forked = crypto::DeriveForkedKey(provider_, mikey::PrfFunc::kHmacSha256, *FakeKms::Key(*grant.mpkr),
                                             crypto::ForkedKeyType::kMpkr, resolved->responder->data,
                                             *resolved->randrkms);
  ASSERT_TRUE(mpkr_forked.ok());
  ASSERT_TRUE(resolved->mpkr_forked.has_value());
  EXPECT_EQ(*resolved->mpkr_forked, *mpkr_forked);
  auto tgk_forked = crypto::DeriveForkedKey(provider_, mikey::PrfFunc::kHmacSha256,
                                            *FakeKms::Key(grant.session_keys[0].key), crypto::ForkedKeyType::kTgk,
                                            resolved->responder->data, *resolved->randrkms);
  ASSERT_TRUE(tgk_forked.ok());
  EXPECT_EQ(resolved->session_keys.at(0).key, *tgk_forked);
  EXPECT_TRUE(VerifyTransferInit(provider_, ti->bytes, *resolved).ok());
  // Vi that is not the V of the TRANSFER_INIT is caught.
  auto m = mikey::Decode(ti->bytes);
  ASSERT_TRUE(m.ok());
  std::get<mikey::TicketPayload>(m->payloads[4]).initiator_data->vi.mac[3] ^= 1;
  auto tampered = mikey::Encode(*m);
  ASSERT_TRUE(tampered.ok());
  EXPECT_EQ(VerifyTransferInit(provider_, *tampered, *resolved).error().kind, UeErrorKind::kVerification);

  KmsBehaviour no_modifier;
  no_modifier.omit_randrkms = true;
  auto r = ParseResolveResp(provider_, kms_.AnswerResolve(ri->bytes, no_modifier), *ri);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kVerification);
  KmsBehaviour one_mpk;
  one_mpk.omit_mpkr = true;
  EXPECT_EQ(ParseResolveResp(provider_, kms_.AnswerResolve(ri->bytes, one_mpk), *ri).error().kind,
            UeErrorKind::kVerification);
}

TEST_F(TicketClient, ResolveRespRejections) {
  TicketGrant grant = Grant(RequestParams());
  auto ri = BuildResolveInitPsk(provider_, ResolveParams(grant.ticket));
  ASSERT_TRUE(ri.ok());
  const Bytes resp = kms_.AnswerResolve(ri->bytes);
  for (size_t i = 0; i < resp.size(); ++i) {
    Bytes bad = resp;
    bad[i] ^= 0x02;
    EXPECT_FALSE(ParseResolveResp(provider_, bad, *ri).ok()) << "byte " << i;
  }
  KmsBehaviour other_csb;
  other_csb.csb_id = ri->csb_id + 1;
  EXPECT_EQ(ParseResolveResp(provider_, kms_.AnswerResolve(ri->bytes, other_csb), *ri).error().kind,
            UeErrorKind::kVerification);
  KmsBehaviour other_kms;
  other_kms.kms_identity = Text("kms.other.example");
  EXPECT_EQ(ParseResolveResp(provider_, kms_.AnswerResolve(ri->bytes, other_kms), *ri).error().kind,
            UeErrorKind::kVerification);
  // A KMS that put RANDRr in the RANDRi slot of the label (the other reading).
  KmsBehaviour other_slot;
  other_slot.rand_in_randri_slot = true;
  EXPECT_EQ(ParseResolveResp(provider_, kms_.AnswerResolve(ri->bytes, other_slot), *ri).error().kind,
            UeErrorKind::kVerification);
  // A REQUEST_RESP is not a RESOLVE_RESP.
  RequestInit req = Request(RequestParams());
  EXPECT_FALSE(ParseResolveResp(provider_, kms_.AnswerRequest(req.bytes), *ri).ok());
  // Error messages.
  auto e = ParseResolveResp(provider_, kms_.Error(ri->bytes, 14, nullptr), *ri);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().kind, UeErrorKind::kMikeyError);
  EXPECT_EQ(e.error().mikey_error(), 14);
  const SecretBytes auth = testing::AuthKey(provider_, kms_.psk_r, ri->csb_id, 0x01, {}, ri->randrr);
  EXPECT_EQ(auth, ri->auth_key);
  e = ParseResolveResp(provider_, kms_.Error(ri->bytes, 0, &auth), *ri);
  ASSERT_FALSE(e.ok());
  EXPECT_TRUE(e.error().error_authenticated);
}

}  // namespace
}  // namespace tkms::ue
