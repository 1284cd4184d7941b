// Two rules of the UE library against the hand-written KMS (fake_kms.h):
//   - KEMAC algorithms: a KMS answers with AES-CM-128 (the mandatory
//     algorithm, RFC 3830 §4.2.3) by default and AES-CM-256 (RFC 6043 §6.2)
//     where its policy allows; the UE opens both in REQUEST_RESP and
//     RESOLVE_RESP, also when the KEMAC's keys are derived by hand (RFC 3830
//     §4.1.4 labels written out) rather than by the library, and refuses
//     NULL encryption where the KMS must encrypt (ticket_client.h reading 6);
//   - RAND lengths (RFC 6043 §12.1, ticket_client.h reading 4): the UE's own
//     RANDs are at least as long as the longest key they are used with, both
//     when drawn and when given.
#include <gtest/gtest.h>

#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/ue/fake_kms.h"
#include "tools/ue/ticket_client.h"
#include "tools/ue/transfer.h"

namespace tkms::ue {
namespace {

using testing::FakeKms;
using testing::Filled;
using testing::KmsBehaviour;
using testing::Text;
namespace crypto = mikey::crypto;

constexpr uint8_t kAesCm128 = static_cast<uint8_t>(mikey::EncrAlg::kAesCm128);
constexpr uint8_t kAesCm256 = static_cast<uint8_t>(mikey::EncrAlg::kAesCm256);

class KemacAndRand : public ::testing::Test {
 protected:
  RequestInitParams RequestParams(bool forking = false) {
    RequestInitParams p;
    p.psk = kms_.psk_i;
    p.initiator.id = kms_.id_i;
    p.kms.id = kms_.id_kms;
    p.policy.responders.push_back(IdValue{kms_.id_r});
    if (forking) p.policy.flags |= mikey::kFlagI;
    return p;
  }

  ResolveInitParams ResolveParams(const mikey::TicketPayload& ticket) {
    ResolveInitParams p;
    p.psk = kms_.psk_r;
    p.responder.id = kms_.id_r;
    p.kms.id = kms_.id_kms;
    p.ticket = ticket;
    return p;
  }

  TransferInit Transfer(const TicketGrant& grant) {
    TransferInitParams tp;
    tp.initiator.id = kms_.id_i;
    tp.responder.id = kms_.id_r;
    auto ti = BuildTransferInit(provider_, grant, tp);
    EXPECT_TRUE(ti.ok()) << ti.error().ToString();
    return std::move(*ti);
  }

  // The encryption algorithm of the KEMAC in an answer.
  static uint8_t KemacAlg(const Bytes& answer) {
    auto m = mikey::Decode(answer);
    EXPECT_TRUE(m.ok());
    for (const auto& p : m->payloads) {
      if (const auto* k = std::get_if<mikey::KemacPayload>(&p)) return k->encr_alg;
    }
    ADD_FAILURE() << "no KEMAC";
    return 0xFF;
  }

  crypto::TransientCryptoProvider provider_;
  FakeKms kms_{provider_};
};

// ---- KEMAC algorithms ------------------------------------------------------------

TEST_F(KemacAndRand, OpensAesCm128AndAesCm256KemacsInBothAnswers) {
  for (uint8_t alg : {kAesCm256, kAesCm128}) {
    for (bool by_hand : {false, true}) {
      for (bool forking : {false, true}) {
        SCOPED_TRACE("encr_alg " + std::to_string(alg) + (by_hand ? " by hand" : "") + (forking ? " forking" : ""));
        KmsBehaviour b;
        b.encr_alg = alg;
        b.kemac_by_hand = by_hand;
        auto req = BuildRequestInitPsk(provider_, RequestParams(forking));
        ASSERT_TRUE(req.ok()) << req.error().ToString();
        const Bytes resp = kms_.AnswerRequest(req->bytes, b);
        EXPECT_EQ(KemacAlg(resp), alg);
        auto grant = ParseRequestResp(provider_, resp, *req);
        ASSERT_TRUE(grant.ok()) << grant.error().ToString();
        EXPECT_EQ(grant->mpki, kms_.mpki);
        EXPECT_EQ(grant->session_keys.at(0).key, kms_.tgk);
        EXPECT_EQ(grant->mpkr.has_value(), forking);
        if (forking) {
          EXPECT_EQ(*grant->mpkr, kms_.mpkr);
        }

        auto ri = BuildResolveInitPsk(provider_, ResolveParams(Transfer(*grant).ticket));
        ASSERT_TRUE(ri.ok()) << ri.error().ToString();
        const Bytes resolve_resp = kms_.AnswerResolve(ri->bytes, b);
        EXPECT_EQ(KemacAlg(resolve_resp), alg);
        auto resolved = ParseResolveResp(provider_, resolve_resp, *ri);
        ASSERT_TRUE(resolved.ok()) << resolved.error().ToString();
        EXPECT_EQ(resolved->mpki, kms_.mpki);
        EXPECT_EQ(resolved->mpkr_forked.has_value(), forking);
        if (!forking) {
          EXPECT_EQ(resolved->session_keys.at(0).key, kms_.tgk);  // forked keys: ticket_client_test
        }
      }
    }
  }
}

TEST_F(KemacAndRand, KeyLengthFollowsTheKemacAlgorithm) {
  // A KEMAC labelled with one AES-CM algorithm but encrypted with the other's
  // key length does not open (the decrypted chain does not decode).
  for (auto [label, key] : {std::pair{kAesCm128, kAesCm256}, std::pair{kAesCm256, kAesCm128}}) {
    KmsBehaviour b;
    b.encr_alg = label;
    b.kemac_by_hand = true;
    b.kemac_key_alg = key;
    auto req = BuildRequestInitPsk(provider_, RequestParams());
    ASSERT_TRUE(req.ok());
    auto grant = ParseRequestResp(provider_, kms_.AnswerRequest(req->bytes, b), *req);
    ASSERT_FALSE(grant.ok());
    EXPECT_EQ(grant.error().kind, UeErrorKind::kVerification) << grant.error().ToString();
    EXPECT_NE(grant.error().detail.find("KEMAC"), std::string::npos) << grant.error().ToString();
  }
}

TEST_F(KemacAndRand, NullEncryptionIsRefusedInBothAnswers) {
  KmsBehaviour null_encr;
  null_encr.encr_alg = static_cast<uint8_t>(mikey::EncrAlg::kNull);
  auto req = BuildRequestInitPsk(provider_, RequestParams());
  ASSERT_TRUE(req.ok());
  auto refused = ParseRequestResp(provider_, kms_.AnswerRequest(req->bytes, null_encr), *req);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, UeErrorKind::kVerification);
  EXPECT_NE(refused.error().detail.find("NULL encryption"), std::string::npos) << refused.error().ToString();

  auto grant = ParseRequestResp(provider_, kms_.AnswerRequest(req->bytes), *req);
  ASSERT_TRUE(grant.ok());
  auto ri = BuildResolveInitPsk(provider_, ResolveParams(grant->ticket));
  ASSERT_TRUE(ri.ok());
  auto resolve_refused = ParseResolveResp(provider_, kms_.AnswerResolve(ri->bytes, null_encr), *ri);
  ASSERT_FALSE(resolve_refused.ok());
  EXPECT_EQ(resolve_refused.error().kind, UeErrorKind::kVerification);
  EXPECT_NE(resolve_refused.error().detail.find("NULL encryption"), std::string::npos);
  // Only a caller that knows the transport is secure may allow it (RFC 3830 §4.2.3).
  ResolveInit lenient = *ri;
  lenient.checks.allow_null_encryption = true;
  EXPECT_TRUE(ParseResolveResp(provider_, kms_.AnswerResolve(ri->bytes, null_encr), lenient).ok());
}

// ---- RAND lengths (RFC 6043 §12.1) -------------------------------------------------------

size_t RandOf(const Bytes& message, mikey::RandRole role) {
  auto m = mikey::Decode(message);
  EXPECT_TRUE(m.ok());
  for (const auto& p : m->payloads) {
    if (const auto* r = std::get_if<mikey::RandrPayload>(&p); r != nullptr && r->role == static_cast<uint8_t>(role)) {
      return r->rand.size();
    }
  }
  return 0;
}

TEST_F(KemacAndRand, RandLengthFor) {
  EXPECT_EQ(RandLengthFor(0), 16u);   // RFC 3830 §6.11: at least 128 bits
  EXPECT_EQ(RandLengthFor(16), 16u);
  EXPECT_EQ(RandLengthFor(32), 32u);  // a 256-bit key
  EXPECT_EQ(RandLengthFor(1000), 255u);
}

TEST_F(KemacAndRand, RequestRandRiCoversThePskAndTheKeysAskedFor) {
  RequestInitParams p = RequestParams();  // 32-byte PSK
  auto req = BuildRequestInitPsk(provider_, p);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(RandOf(req->bytes, mikey::RandRole::kInitiator), 32u);
  p.psk = ToSecret(Filled(16, 1));
  EXPECT_EQ(RequestRandLength(p), 16u);
  p.policy.keys = {RequestedKey{}};  // a 16-byte TGK
  EXPECT_EQ(RequestRandLength(p), 16u);
  RequestedKey tgk256;
  tgk256.length = 32;
  p.policy.keys = {tgk256};  // 256-bit keys asked for: a 32-byte RANDRi
  EXPECT_EQ(RequestRandLength(p), 32u);
  req = BuildRequestInitPsk(provider_, p);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(RandOf(req->bytes, mikey::RandRole::kInitiator), 32u);

  // A RANDRi the caller gives must cover the PSK it is used with.
  p = RequestParams();
  p.randri = Filled(31, 7);
  auto short_rand = BuildRequestInitPsk(provider_, p);
  ASSERT_FALSE(short_rand.ok());
  EXPECT_EQ(short_rand.error().kind, UeErrorKind::kInvalidArgument);
  EXPECT_NE(short_rand.error().detail.find("RFC 6043 §12.1"), std::string::npos) << short_rand.error().ToString();
  p.randri = Filled(32, 7);
  EXPECT_TRUE(BuildRequestInitPsk(provider_, p).ok());
}

TEST_F(KemacAndRand, ResolveAndTransferRandsCoverTheirKeys) {
  auto req = BuildRequestInitPsk(provider_, RequestParams());
  ASSERT_TRUE(req.ok());
  auto grant = ParseRequestResp(provider_, kms_.AnswerRequest(req->bytes), *req);
  ASSERT_TRUE(grant.ok());
  ASSERT_EQ(LongestTransferKey(*grant), 32u);  // the fake KMS's 32-byte MPKi

  // RESOLVE_INIT: RANDRr with the 32-byte PSK.
  ResolveInitParams rp = ResolveParams(grant->ticket);
  auto ri = BuildResolveInitPsk(provider_, rp);
  ASSERT_TRUE(ri.ok());
  EXPECT_EQ(ri->randrr.size(), 32u);
  rp.randrr = Filled(31, 3);
  auto short_rr = BuildResolveInitPsk(provider_, rp);
  ASSERT_FALSE(short_rr.ok());
  EXPECT_EQ(short_rr.error().kind, UeErrorKind::kInvalidArgument);

  // TRANSFER_INIT: RANDRi with MPKi (32 bytes) and the TGK (16 bytes).
  TransferInit ti = Transfer(*grant);
  EXPECT_EQ(ti.randri.size(), 32u);
  TransferInitParams tp;
  tp.initiator.id = kms_.id_i;
  tp.responder.id = kms_.id_r;
  tp.randri = Filled(31, 4);
  auto short_ri = BuildTransferInit(provider_, *grant, tp);
  ASSERT_FALSE(short_ri.ok());
  EXPECT_EQ(short_ri.error().kind, UeErrorKind::kInvalidArgument);
  EXPECT_NE(short_ri.error().detail.find("RANDRi"), std::string::npos);
  tp.randri = Filled(32, 4);
  EXPECT_TRUE(BuildTransferInit(provider_, *grant, tp).ok());
}

TEST_F(KemacAndRand, CheckTransferRandLengthsIsTheSum) {
  EXPECT_TRUE(CheckTransferRandLengths(32, 0, 32, "x").ok());
  EXPECT_TRUE(CheckTransferRandLengths(16, 16, 32, "x").ok());  // the sum counts (RFC 6043 §12.1)
  auto refused = CheckTransferRandLengths(16, 15, 32, "TRANSFER_RESP");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, UeErrorKind::kVerification);
  EXPECT_NE(refused.error().detail.find("TRANSFER_RESP"), std::string::npos);
  EXPECT_NE(refused.error().detail.find("RFC 6043 §12.1"), std::string::npos);
}

}  // namespace
}  // namespace tkms::ue
