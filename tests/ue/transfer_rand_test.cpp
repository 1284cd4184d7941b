// RAND lengths in the Ticket Transfer exchange (RFC 6043 §12.1, transfer.h
// reading 18) against the real KMS (transfer_fixture.h), whose MPKs are 32
// bytes: RANDRi and RANDRr together must be at least as long as the longest
// key they are used with. The Responder checks the received RANDRi with the
// RANDRr it sends; the Initiator checks the received RANDRr with its own
// RANDRi; the UE's own RANDs are long enough on their own. The short RANDs
// come in correctly MACed messages, so only the length check can refuse them.
#include <gtest/gtest.h>

#include <string>

#include "tests/ue/transfer_fixture.h"

namespace tkms::ue {
namespace {

namespace mc = mikey::crypto;
using mikey::Bytes;
using testing::B;
using testing::kBob;
using testing::ResponderSide;
using testing::TransferTest;

void ExpectRandRefusal(const UeError& e, UeErrorKind kind) {
  EXPECT_EQ(e.kind, kind) << e.ToString();
  EXPECT_NE(e.detail.find("RFC 6043 §12.1"), std::string::npos) << e.ToString();
}

TEST_F(TransferTest, TheUesOwnTransferRandsCoverTheLongestKey) {
  TicketGrant grant = Request(kBase, {kBob});
  ASSERT_EQ(LongestTransferKey(grant), 32u);  // the KMS's 256-bit MPKs
  TransferInit init = Transfer(grant, kBob);
  EXPECT_EQ(init.randri.size(), 32u);
  ResponderSide bob = Answer(init, kBob);
  ASSERT_TRUE(bob.resp.session.randrr.has_value());  // G
  EXPECT_EQ(bob.resp.session.randrr->size(), 32u);
  EXPECT_EQ(LongestTransferKey(bob.resolved), 32u);

  // A RANDRr the caller gives must cover the longest key on its own.
  TransferRespParams short_rr;
  short_rr.randrr = Bytes(31, 1);
  auto refused = BuildTransferResp(provider_, init.bytes, bob.resolved, short_rr);
  ASSERT_FALSE(refused.ok());
  ExpectRandRefusal(refused.error(), UeErrorKind::kInvalidArgument);
}

TEST_F(TransferTest, ResponderRefusesATransferInitWithAShortRandRi) {
  // G = 0: no RANDRr, so RANDRi alone must reach 32 bytes.
  const uint16_t no_g = kBase & ~mikey::kFlagG;
  TicketGrant grant = Request(no_g, {kBob});
  const TransferInit init = Transfer(grant, kBob);
  ResolvedTicket resolved = Resolve(init, kBob);
  const TransferInit exactly = WithRandRi(init, grant.mpki, 32);
  ASSERT_TRUE(VerifyTransferInit(provider_, exactly.bytes, resolved).ok());
  EXPECT_TRUE(BuildTransferResp(provider_, exactly.bytes, resolved, {}).ok());
  const TransferInit short_ri = WithRandRi(init, grant.mpki, 31);
  ASSERT_TRUE(VerifyTransferInit(provider_, short_ri.bytes, resolved).ok());  // correctly MACed
  auto refused = BuildTransferResp(provider_, short_ri.bytes, resolved, {});
  ASSERT_FALSE(refused.ok());
  ExpectRandRefusal(refused.error(), UeErrorKind::kVerification);

  // F = 0 (so G = 0): the same check without a TRANSFER_RESP.
  const uint16_t no_f = mikey::kFlagE | mikey::kFlagH | mikey::kFlagN | mikey::kFlagO;
  TicketGrant f_grant = Request(no_f, {kBob});
  const TransferInit f_init = Transfer(f_grant, kBob);
  ResolvedTicket f_resolved = Resolve(f_init, kBob);
  EXPECT_TRUE(ResponderSessionWithoutResponse(provider_, f_init.bytes, f_resolved).ok());
  const TransferInit f_short = WithRandRi(f_init, f_grant.mpki, 16);
  auto f_refused = ResponderSessionWithoutResponse(provider_, f_short.bytes, f_resolved);
  ASSERT_FALSE(f_refused.ok());
  ExpectRandRefusal(f_refused.error(), UeErrorKind::kVerification);
  // The Initiator's own session with such a TRANSFER_INIT (e.g. rebuilt from a file).
  auto own = InitiatorSessionWithoutResponse(f_grant, f_short);
  ASSERT_FALSE(own.ok());
  ExpectRandRefusal(own.error(), UeErrorKind::kInvalidArgument);
}

TEST_F(TransferTest, WithTheGFlagTheSumOfBothRandsCounts) {
  TicketGrant grant = Request(kBase, {kBob});
  const TransferInit short_ri = WithRandRi(Transfer(grant, kBob), grant.mpki, 16);
  ResponderSide bob = Answer(short_ri, kBob);  // 16 + its own 32: accepted
  auto ok = ParseTransferResp(provider_, bob.resp.bytes, grant, short_ri);
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();

  // A Responder ignoring the G flag sends no RANDRr: 16 bytes alone are refused.
  ResolvedTicket resolved = Resolve(short_ri, kBob);
  TransferRespParams no_randrr;
  no_randrr.send_randrr = false;
  auto refused = BuildTransferResp(provider_, short_ri.bytes, resolved, no_randrr);
  ASSERT_FALSE(refused.ok());
  ExpectRandRefusal(refused.error(), UeErrorKind::kVerification);
}

TEST_F(TransferTest, InitiatorRefusesATransferRespWithAShortRandRr) {
  TicketGrant grant = Request(kBase, {kBob});
  const TransferInit short_ri = WithRandRi(Transfer(grant, kBob), grant.mpki, 16);
  ResponderSide bob = Answer(short_ri, kBob);
  // The TRANSFER_RESP with a 15-byte RANDRr, MACed with that RANDRr in the label: 16 + 15 < 32.
  mikey::Message m = bob.resp.message;
  const Bytes randrr(15, 0x77);
  for (auto& p : m.payloads) {
    if (auto* r = std::get_if<mikey::RandrPayload>(&p); r != nullptr && r->role == 2) r->rand = randrr;
  }
  const Bytes resealed = Reseal(m, bob.resolved.mpki, short_ri, ByteSpan(randrr));
  auto refused = ParseTransferResp(provider_, resealed, grant, short_ri);
  ASSERT_FALSE(refused.ok());
  ExpectRandRefusal(refused.error(), UeErrorKind::kVerification);
  EXPECT_NE(refused.error().detail.find("TRANSFER_RESP"), std::string::npos);
  // 16 + 16 is enough: the same message with a 16-byte RANDRr verifies.
  const Bytes randrr16(16, 0x77);
  for (auto& p : m.payloads) {
    if (auto* r = std::get_if<mikey::RandrPayload>(&p); r != nullptr && r->role == 2) r->rand = randrr16;
  }
  auto accepted = ParseTransferResp(provider_, Reseal(m, bob.resolved.mpki, short_ri, ByteSpan(randrr16)), grant,
                                    short_ri);
  EXPECT_TRUE(accepted.ok()) << accepted.error().ToString();
}

}  // namespace
}  // namespace tkms::ue
