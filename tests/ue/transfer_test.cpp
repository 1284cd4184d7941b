// The complete MIKEY-TICKET call set-up in-process: the real KMS (Kms::Handle
// over a SoftHSM2 token, no HTTP) serves Ticket Request and Ticket Resolve;
// the UE library plays the Initiator and one or more Responders through the
// Ticket Transfer exchange (tools/ue/transfer.h), and both sides derive the
// per-crypto-session SRTP keys from their OWN inputs: the Initiator from its
// TicketGrant + TRANSFER_INIT + TRANSFER_RESP, the Responder from its
// ResolvedTicket + TRANSFER_INIT. Agreement therefore tests the KMS's forking,
// the TRANSFER_RESP and the Initiator's re-derivation against each other.
// One test recomputes a TEK from the RFC 6043 §5.1.3 label written out by hand.
#include <gtest/gtest.h>

#include <string>

#include "firmware/base/big_endian.h"
#include "tests/ue/transfer_fixture.h"

namespace tkms::ue {
namespace {

namespace mc = mikey::crypto;
using mikey::Bytes;
using testing::B;
using testing::kAlice;
using testing::kBob;
using testing::kCarol;
using testing::ResponderSide;
using testing::TransferTest;

TEST_F(TransferTest, WithoutForkingBothSidesDeriveTheSameSrtpKeys) {
  TicketGrant grant = Request(kBase, {kBob});
  ASSERT_EQ(grant.policy.flags & mikey::kFlagI, 0);
  TransferInit init = Transfer(grant, kBob);
  TransferRespParams params;
  params.add_ssrcs = {0x0B0B0B0B};  // bob's own send stream: CS 2
  ResponderSide bob = Answer(init, kBob, params);

  const mikey::Message& m = bob.resp.message;
  EXPECT_EQ(m.header.data_type, static_cast<uint8_t>(mikey::DataType::kTransferResp));
  EXPECT_EQ(m.header.csb_id, init.csb_id);
  EXPECT_FALSE(m.header.v);
  ASSERT_EQ(m.header.cs_count, 2);
  for (const auto& cs : m.header.generic_map) {
    EXPECT_EQ(cs.policies.size(), 1u);
    EXPECT_FALSE(cs.spi.empty());
  }
  EXPECT_EQ(m.header.generic_map[0].session_data, init.message.header.generic_map[0].session_data);

  auto initiator = ParseTransferResp(provider_, bob.resp.bytes, grant, init);
  ASSERT_TRUE(initiator.ok()) << initiator.error().ToString();
  EXPECT_TRUE(initiator->randrr.has_value());  // G
  auto ik = Keys(*initiator);
  auto rk = Keys(bob.resp.session);
  ExpectSame(ik, rk);
  ASSERT_EQ(ik.size(), 2u);
  EXPECT_EQ(ik[1].ssrc, 0x0B0B0B0Bu);
  EXPECT_FALSE(ik[0].master_key == ik[1].master_key);  // the CS ID separates the keys
}

TEST_F(TransferTest, TekMatchesTheRfc6043Label) {
  // RFC 6043 §5.1.3 with the HDR PRF (HMAC-SHA-256), written out:
  // 0x2AD01C64 || CS ID || 0xFFFFFFFF || 0x03 || L8 RANDRi || RANDRi || L8 RANDRr || RANDRr.
  TicketGrant grant = Request(kBase, {kBob});
  TransferInit init = Transfer(grant, kBob);
  ResponderSide bob = Answer(init, kBob);
  const TransferSession& s = bob.resp.session;
  ASSERT_TRUE(s.randrr.has_value());
  Bytes label = {0x2A, 0xD0, 0x1C, 0x64, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x03};
  label.push_back(static_cast<uint8_t>(s.randri.size()));
  label.insert(label.end(), s.randri.begin(), s.randri.end());
  label.push_back(static_cast<uint8_t>(s.randrr->size()));
  label.insert(label.end(), s.randrr->begin(), s.randrr->end());
  auto tgk = provider_.ImportTransientKey(grant.session_keys.at(0).key);  // unforked: no I flag
  ASSERT_TRUE(tgk.ok());
  auto tek = mc::Prf(provider_, mikey::PrfFunc::kHmacSha256, **tgk, label, 16);
  ASSERT_TRUE(tek.ok());
  auto keys = Keys(s);
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_TRUE(keys[0].master_key == *tek);
  const Bytes& session_data = init.message.header.generic_map[0].session_data;
  ASSERT_GE(session_data.size(), 4u);
  EXPECT_EQ(keys[0].ssrc, LoadBe32(std::span<const uint8_t>(session_data).first<4>()));
}

TEST_F(TransferTest, ForkingGivesEachEndPointItsOwnKeys) {
  TicketGrant grant = Request(kBase | mikey::kFlagI, {kBob, kCarol});
  ASSERT_NE(grant.policy.flags & mikey::kFlagI, 0) << "the default policy class allows forking";
  TransferInit init = Transfer(grant, std::nullopt);
  ResponderSide bob = Answer(init, kBob);
  ResponderSide carol = Answer(init, kCarol);

  for (const auto* side : {&bob, &carol}) {
    const auto& m = side->resp.message;
    bool idrr = false, randrkms = false;
    for (const auto& p : m.payloads) {
      if (const auto* x = std::get_if<mikey::IdrPayload>(&p)) idrr = x->role == static_cast<uint8_t>(mikey::IdRole::kResponder);
      if (const auto* x = std::get_if<mikey::RandrPayload>(&p)) randrkms |= x->role == static_cast<uint8_t>(mikey::RandRole::kKms);
    }
    EXPECT_TRUE(idrr);
    EXPECT_TRUE(randrkms);
  }

  auto with_bob = ParseTransferResp(provider_, bob.resp.bytes, grant, init);
  ASSERT_TRUE(with_bob.ok()) << with_bob.error().ToString();
  auto with_carol = ParseTransferResp(provider_, carol.resp.bytes, grant, init);
  ASSERT_TRUE(with_carol.ok()) << with_carol.error().ToString();
  EXPECT_TRUE(with_bob->last_message_key == *bob.resolved.mpkr_forked);
  EXPECT_TRUE(with_carol->last_message_key == *carol.resolved.mpkr_forked);

  auto ik_bob = Keys(*with_bob), ik_carol = Keys(*with_carol);
  auto rk_bob = Keys(bob.resp.session), rk_carol = Keys(carol.resp.session);
  ExpectSame(ik_bob, rk_bob);
  ExpectSame(ik_carol, rk_carol);
  EXPECT_FALSE(rk_bob[0].master_key == rk_carol[0].master_key);

  // Carol's TRANSFER_RESP does not verify as bob's: swap the modifiers.
  mikey::Message swapped = carol.resp.message;
  for (auto& p : swapped.payloads) {
    if (auto* x = std::get_if<mikey::IdrPayload>(&p)) x->data = B(kBob);
  }
  auto enc = mikey::Encode(swapped);
  ASSERT_TRUE(enc.ok());
  auto refused = ParseTransferResp(provider_, *enc, grant, init);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, UeErrorKind::kVerification);
}

TEST_F(TransferTest, ForkingRefusesAResponseWithoutTheModifier) {
  TicketGrant grant = Request(kBase | mikey::kFlagI, {kBob});
  TransferInit init = Transfer(grant, kBob);
  ResponderSide bob = Answer(init, kBob);
  for (auto role : {mikey::RandRole::kKms}) {
    mikey::Message m = bob.resp.message;
    std::erase_if(m.payloads, [&](const mikey::Payload& p) {
      const auto* x = std::get_if<mikey::RandrPayload>(&p);
      return x != nullptr && x->role == static_cast<uint8_t>(role);
    });
    Bytes bytes = Reseal(m, *bob.resolved.mpkr_forked, init, ByteSpan(*bob.resp.session.randrr));
    auto refused = ParseTransferResp(provider_, bytes, grant, init);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().detail.find("RANDRkms"), std::string::npos) << refused.error().detail;
  }
  mikey::Message m = bob.resp.message;
  std::erase_if(m.payloads, [](const mikey::Payload& p) { return std::holds_alternative<mikey::IdrPayload>(p); });
  Bytes bytes = Reseal(m, *bob.resolved.mpkr_forked, init, ByteSpan(*bob.resp.session.randrr));
  auto refused = ParseTransferResp(provider_, bytes, grant, init);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().detail.find("IDRr"), std::string::npos) << refused.error().detail;

  // Keyed from MPKi instead of MPKr': refused.
  Bytes mpki_keyed = Reseal(bob.resp.message, bob.resolved.mpki, init, ByteSpan(*bob.resp.session.randrr));
  auto wrong_key = ParseTransferResp(provider_, mpki_keyed, grant, init);
  ASSERT_FALSE(wrong_key.ok());
  EXPECT_EQ(wrong_key.error().kind, UeErrorKind::kVerification);
}

TEST_F(TransferTest, GFlagOffSendsNoRandRr) {
  const uint16_t flags = kBase & ~mikey::kFlagG;
  TicketGrant grant = Request(flags, {kBob});
  ASSERT_EQ(grant.policy.flags & mikey::kFlagG, 0);
  TransferInit init = Transfer(grant, kBob);
  ResponderSide bob = Answer(init, kBob);
  for (const auto& p : bob.resp.message.payloads) {
    EXPECT_FALSE(std::holds_alternative<mikey::RandrPayload>(p));
  }
  EXPECT_FALSE(bob.resp.session.randrr.has_value());
  auto initiator = ParseTransferResp(provider_, bob.resp.bytes, grant, init);
  ASSERT_TRUE(initiator.ok()) << initiator.error().ToString();
  ExpectSame(Keys(*initiator), Keys(bob.resp.session));
}

TEST_F(TransferTest, GFlagOnRequiresRandRr) {
  TicketGrant grant = Request(kBase, {kBob});
  TransferInit init = Transfer(grant, kBob);
  TransferRespParams params;
  params.send_randrr = false;  // a Responder ignoring the G flag
  ResponderSide bob = Answer(init, kBob, params);
  auto refused = ParseTransferResp(provider_, bob.resp.bytes, grant, init);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().detail.find("RANDRr"), std::string::npos) << refused.error().detail;
}

TEST_F(TransferTest, SaltCarriedInTheKeyDataIsTheMasterSalt) {
  RequestedKey tgk_salt;
  tgk_salt.key_type = static_cast<uint8_t>(mikey::KeyType::kTgkSalt);
  TicketGrant grant = Request(kBase | mikey::kFlagI, {kBob}, {tgk_salt});
  ASSERT_EQ(grant.session_keys.size(), 1u);
  ASSERT_TRUE(grant.session_keys[0].salt.has_value());
  TransferInit init = Transfer(grant, kBob);
  ResponderSide bob = Answer(init, kBob);
  auto initiator = ParseTransferResp(provider_, bob.resp.bytes, grant, init);
  ASSERT_TRUE(initiator.ok()) << initiator.error().ToString();
  auto ik = Keys(*initiator);
  ExpectSame(ik, Keys(bob.resp.session));
  EXPECT_TRUE(ik[0].master_salt == *grant.session_keys[0].salt);
}

TEST_F(TransferTest, FFlagZeroNeedsNoResponse) {
  const uint16_t flags = mikey::kFlagE | mikey::kFlagH | mikey::kFlagN | mikey::kFlagO;
  TicketGrant grant = Request(flags, {kBob});
  ASSERT_EQ(grant.policy.flags & mikey::kFlagF, 0);
  TransferInit init = Transfer(grant, kBob);
  EXPECT_FALSE(init.message.header.v);  // V = F (RFC 6043 §4.2.2.1)
  ResolvedTicket resolved = Resolve(init, kBob);
  auto no_resp = BuildTransferResp(provider_, init.bytes, resolved, {});
  ASSERT_FALSE(no_resp.ok());
  EXPECT_EQ(no_resp.error().kind, UeErrorKind::kInvalidArgument);
  auto responder = ResponderSessionWithoutResponse(provider_, init.bytes, resolved);
  ASSERT_TRUE(responder.ok()) << responder.error().ToString();
  auto initiator = InitiatorSessionWithoutResponse(grant, init);
  ASSERT_TRUE(initiator.ok()) << initiator.error().ToString();
  ExpectSame(Keys(*initiator), Keys(*responder));
  // With F = 1 the Initiator must wait for the TRANSFER_RESP.
  TicketGrant f_grant = Request(kBase, {kBob});
  EXPECT_FALSE(InitiatorSessionWithoutResponse(f_grant, Transfer(f_grant, kBob)).ok());
}

TEST_F(TransferTest, TamperedOrMisdirectedResponsesAreRefused) {
  TicketGrant grant = Request(kBase, {kBob});
  TransferInit init = Transfer(grant, kBob);
  ResponderSide bob = Answer(init, kBob);
  ASSERT_TRUE(ParseTransferResp(provider_, bob.resp.bytes, grant, init).ok());

  Bytes mac_flipped = bob.resp.bytes;
  mac_flipped.back() ^= 0x01;
  auto r1 = ParseTransferResp(provider_, mac_flipped, grant, init);
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.error().kind, UeErrorKind::kVerification);

  // A covered byte (the first SSRC byte of CS 1 in the header map).
  mikey::Message m = bob.resp.message;
  m.header.generic_map[0].session_data[0] ^= 0x80;
  auto enc = mikey::Encode(m);
  ASSERT_TRUE(enc.ok());
  auto r2 = ParseTransferResp(provider_, *enc, grant, init);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().kind, UeErrorKind::kVerification);

  // An answer to another TRANSFER_INIT (another CSB ID).
  TransferInit other = Transfer(grant, kBob);
  ASSERT_NE(other.csb_id, init.csb_id);
  auto r3 = ParseTransferResp(provider_, bob.resp.bytes, grant, other);
  ASSERT_FALSE(r3.ok());
  EXPECT_NE(r3.error().detail.find("CSB ID"), std::string::npos);

  // The same CSB ID but a different TRANSFER_INIT (the MAC covers it).
  TransferInitParams same_csb;
  same_csb.initiator.id = B(kAlice);
  same_csb.responder.id = B(kBob);
  same_csb.csb_id = init.csb_id;
  auto twin = BuildTransferInit(provider_, grant, same_csb);
  ASSERT_TRUE(twin.ok());
  auto r4 = ParseTransferResp(provider_, bob.resp.bytes, grant, *twin);
  ASSERT_FALSE(r4.ok());
  EXPECT_EQ(r4.error().kind, UeErrorKind::kVerification);

  // Garbage and a TRANSFER_INIT in place of a TRANSFER_RESP.
  EXPECT_EQ(ParseTransferResp(provider_, Bytes{1, 2, 3}, grant, init).error().kind, UeErrorKind::kBadResponse);
  EXPECT_FALSE(ParseTransferResp(provider_, init.bytes, grant, init).ok());
}

TEST_F(TransferTest, ResponderRefusesATransferInitThatDoesNotVerify) {
  TicketGrant grant = Request(kBase, {kBob});
  TransferInit init = Transfer(grant, kBob);
  ResolvedTicket resolved = Resolve(init, kBob);
  Bytes tampered = init.bytes;
  tampered.back() ^= 0x01;
  auto resp = BuildTransferResp(provider_, tampered, resolved, {});
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().kind, UeErrorKind::kVerification);
}

// ---- RFC 6043 §6.1: "The map type SRTP-ID SHALL NOT be used" (transfer.h reading 17).

// `m` with the SRTP-ID map (one entry) in place of its CS ID map.
mikey::Message WithSrtpIdMap(mikey::Message m) {
  m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kSrtpId);
  m.header.generic_map.clear();
  m.header.srtp_map = {mikey::SrtpIdEntry{0, 0x01020304, 0}};
  m.header.cs_count = 1;
  return m;
}

// The map type byte of the common header (offset 9) replaced.
Bytes WithMapTypeByte(Bytes bytes, uint8_t map_type) {
  bytes.at(9) = map_type;
  return bytes;
}

// A refusal by the map check: kVerification naming the map and the RFC (not
// the codec's "undecodable", which is kBadResponse).
void ExpectMapRefused(const UeError& e, const std::string& what) {
  EXPECT_EQ(e.kind, UeErrorKind::kVerification) << e.ToString();
  EXPECT_NE(e.detail.find(what), std::string::npos) << e.ToString();
  EXPECT_NE(e.detail.find("RFC 6043 §6.1"), std::string::npos) << e.ToString();
}

TEST_F(TransferTest, ResponderRefusesSrtpIdAndUnknownMapTypes) {
  TicketGrant grant = Request(kBase, {kBob});
  TransferInit init = Transfer(grant, kBob);
  ResolvedTicket resolved = Resolve(init, kBob);
  auto srtp_id = mikey::Encode(WithSrtpIdMap(init.message));  // Encode applies no composition rules
  ASSERT_TRUE(srtp_id.ok());
  ASSERT_EQ((*srtp_id)[9], 0);

  ExpectMapRefused(DecodeTransferInit(*srtp_id).error(), "SRTP-ID");
  ExpectMapRefused(VerifyTransferInit(provider_, *srtp_id, resolved).error(), "SRTP-ID");
  ExpectMapRefused(BuildTransferResp(provider_, *srtp_id, resolved, {}).error(), "SRTP-ID");
  TransferRespParams unverified;
  unverified.verify_transfer_init = false;
  ExpectMapRefused(BuildTransferResp(provider_, *srtp_id, resolved, unverified).error(), "SRTP-ID");
  ExpectMapRefused(ResponderSessionWithoutResponse(provider_, *srtp_id, resolved, false).error(), "SRTP-ID");
  // Decoded by a decoder without the composition rules, the early check still refuses it.
  mikey::DecodeOptions lax;
  lax.check_composition = false;
  auto decoded = mikey::Decode(*srtp_id, lax);
  ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
  auto early = CheckTransferInitEarly(*decoded, {B(kBob)}, NtpUtcNow());
  ASSERT_FALSE(early.ok());
  ExpectMapRefused(early.error(), "SRTP-ID");

  // Map types RFC 3830 / RFC 6043 do not define: refused by name (the codec
  // could not even parse past them).
  for (uint8_t type : {uint8_t{3}, uint8_t{255}}) {
    const Bytes unknown = WithMapTypeByte(init.bytes, type);
    const std::string name = "CS ID map type " + std::to_string(type);
    ExpectMapRefused(DecodeTransferInit(unknown).error(), name);
    ExpectMapRefused(VerifyTransferInit(provider_, unknown, resolved).error(), name);
    ExpectMapRefused(BuildTransferResp(provider_, unknown, resolved, {}).error(), name);
    ExpectMapRefused(ResponderSessionWithoutResponse(provider_, unknown, resolved).error(), name);
  }
  // The TRANSFER_INIT as sent is answered.
  EXPECT_TRUE(BuildTransferResp(provider_, init.bytes, resolved, {}).ok());
  EXPECT_TRUE(DecodeTransferInit(init.bytes).ok());
}

TEST_F(TransferTest, InitiatorRefusesAnSrtpIdTransferResp) {
  TicketGrant grant = Request(kBase, {kBob});
  TransferInit init = Transfer(grant, kBob);
  ResponderSide bob = Answer(init, kBob);
  ASSERT_TRUE(ParseTransferResp(provider_, bob.resp.bytes, grant, init).ok());
  // Correctly MACed (a Responder that uses SRTP-ID on purpose): only the map check can refuse it.
  const Bytes srtp_id =
      Reseal(WithSrtpIdMap(bob.resp.message), bob.resolved.mpki, init, ByteSpan(*bob.resp.session.randrr));
  ASSERT_EQ(srtp_id.at(9), 0);
  ExpectMapRefused(ParseTransferResp(provider_, srtp_id, grant, init).error(), "SRTP-ID");
  ExpectMapRefused(ParseTransferResp(provider_, WithMapTypeByte(bob.resp.bytes, 7), grant, init).error(),
                   "CS ID map type 7");
  // The caller's own TRANSFER_INIT with the SRTP-ID map: its mistake.
  TransferInit own = init;
  own.message = WithSrtpIdMap(init.message);
  auto refused = ParseTransferResp(provider_, bob.resp.bytes, grant, own);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, UeErrorKind::kInvalidArgument);
  EXPECT_NE(refused.error().detail.find("SRTP-ID"), std::string::npos);
}

TEST(SrtpPolicyTest, AcceptsTheProfileAndDefaultsRefusesOthers) {
  EXPECT_TRUE(IsAcceptableSrtpPolicy(SrtpAesCm128HmacSha1_80Policy(3)));
  mikey::SpPayload defaults;  // no parameters: RFC 3830 / RFC 3711 defaults
  EXPECT_TRUE(IsAcceptableSrtpPolicy(defaults));
  mikey::SpPayload null_cipher = SrtpAesCm128HmacSha1_80Policy(0);
  null_cipher.params[0].value = {0};
  EXPECT_FALSE(IsAcceptableSrtpPolicy(null_cipher));
  mikey::SpPayload aes256 = defaults;
  aes256.params.push_back(mikey::SpParam{1, {32}});
  EXPECT_FALSE(IsAcceptableSrtpPolicy(aes256));
  mikey::SpPayload two_byte = defaults;
  two_byte.params.push_back(mikey::SpParam{1, {0, 16}});
  EXPECT_TRUE(IsAcceptableSrtpPolicy(two_byte));
  mikey::SpPayload srtcp_off = defaults;
  srtcp_off.params.push_back(mikey::SpParam{8, {0}});
  EXPECT_FALSE(IsAcceptableSrtpPolicy(srtcp_off));
}

}  // namespace
}  // namespace tkms::ue
