// MAC coverage (RFC 6043 §5.5, Appendix A.1, §6.10): which bytes each MAC covers.
#include <gtest/gtest.h>

#include "firmware/base/encoding.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/coverage.h"
#include "tests/support/mikey_samples.h"

namespace tkms::mikey {
namespace {

Bytes Concat(const MacCoverage& c) {
  Bytes out;
  for (ByteSpan p : c.parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes Enc(const Message& m) {
  auto r = Encode(m);
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : Bytes{};
}

TEST(Coverage, InitialMessageIsMessageWithoutMacThenIdentities) {
  const Bytes msg = Enc(samples::RequestInitPsk());
  const Bytes id_i{'a'}, id_kms{'k', 'm', 's'};
  const ByteSpan appended[] = {id_i, id_kms};
  auto c = VPayloadCoverage(msg, appended);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  Bytes want(msg.begin(), msg.end() - 32);
  want.insert(want.end(), id_i.begin(), id_i.end());
  want.insert(want.end(), id_kms.begin(), id_kms.end());
  EXPECT_EQ(Concat(*c), want);
  EXPECT_EQ(Bytes(c->mac.begin(), c->mac.end()), Bytes(msg.end() - 32, msg.end()));
  EXPECT_EQ(c->mac_alg, static_cast<uint8_t>(MacAlg::kHmacSha256_256));
}

TEST(Coverage, ResponseAppendsTheCompleteInitialMessage) {
  const Bytes init = Enc(samples::ResolveInitPsk());
  const Bytes resp = Enc(samples::ResolveResp());
  const ByteSpan appended[] = {init};
  auto c = VPayloadCoverage(resp, appended);
  ASSERT_TRUE(c.ok());
  Bytes want(resp.begin(), resp.end() - 32);
  want.insert(want.end(), init.begin(), init.end());
  EXPECT_EQ(Concat(*c), want);
}

TEST(Coverage, TransferInitExcludesInitiatorDataLengthAndData) {
  const Message forked = samples::TransferInitForked();
  const Bytes msg = Enc(forked);
  auto c = VPayloadCoverage(msg, {});
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  // Initiator Data = First Payload (1) + Vi (34) + Vr (34), plus its 2-byte length.
  EXPECT_EQ(Concat(*c).size(), msg.size() - 32 - (2 + 1 + 34 + 34));
  // The covered bytes do not depend on the Initiator Data contents...
  Message other = forked;
  auto& ticket = std::get<TicketPayload>(other.payloads[5]);
  ticket.initiator_data->vi.mac.assign(32, 0xEE);
  const Bytes other_bytes = Enc(other);  // coverage parts are views: keep the bytes alive
  auto c2 = VPayloadCoverage(other_bytes, {});
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(Concat(*c), Concat(*c2));
  // ...and equal those of the message without Initiator Data (whose length field is also cut).
  ticket.initiator_data.reset();
  const Bytes without_bytes = Enc(other);
  auto c3 = VPayloadCoverage(without_bytes, {});
  ASSERT_TRUE(c3.ok());
  EXPECT_EQ(Concat(*c), Concat(*c3));
  // Other messages keep the Initiator Data fields in their coverage.
  const Bytes resolve = Enc(samples::ResolveInitPsk());
  auto c4 = VPayloadCoverage(resolve, {});
  ASSERT_TRUE(c4.ok());
  EXPECT_EQ(Concat(*c4).size(), resolve.size() - 32);
}

TEST(Coverage, RefusesMessagesNotEndingInV) {
  const Bytes pk = Enc(samples::PkInitRfc3830());
  auto c = VPayloadCoverage(pk, {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().rule, Rule::kComposition);
}

TEST(Coverage, BaseTicketCoversTicketPayloadFromTicketTypeToBeforeMac) {
  const Message m = samples::TransferInitForked();
  const auto& ticket = std::get<TicketPayload>(m.payloads[5]);
  auto input = BaseTicketMacInput(ticket);
  ASSERT_TRUE(input.ok()) << input.error().ToString();
  auto whole = EncodePayload(ticket, 0);
  ASSERT_TRUE(whole.ok());
  // TICKET = next(1) | policy header (7) | TP Data length+data | Ticket Data length+data | Initiator Data length+data.
  const size_t initiator_part = 2 + 1 + 34 + 34;
  EXPECT_EQ(input->size(), whole->size() - 1 - initiator_part - 32);
  EXPECT_EQ(HexEncode(ByteSpan(*input).first(4)), "00010101");  // ticket type 1, subtype 1, version 1
  EXPECT_TRUE(std::equal(input->begin(), input->end(), whole->begin() + 1));
  TicketPayload opaque = ticket;
  opaque.policy.ticket_type = 2;
  EXPECT_FALSE(BaseTicketMacInput(opaque).ok());
}

TEST(Coverage, InitiatorDataVrCoversFirstPayloadViAndVrHeader) {
  InitiatorData d{VPayload{2, Bytes(32, 0xAA)}, VPayload{2, Bytes(32, 0xBB)}};
  auto input = InitiatorDataMacInput(d);
  ASSERT_TRUE(input.ok());
  ASSERT_EQ(input->size(), 1u + 34u + 2u);
  EXPECT_EQ(HexEncode(ByteSpan(*input).first(3)), "090902");
  EXPECT_EQ(HexEncode(ByteSpan(*input).last(2)), "0002");
}

}  // namespace
}  // namespace tkms::mikey
