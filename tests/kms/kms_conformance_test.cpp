// The ticket service against the rules of RFC 6043, RFC 3830 and TS 33.328
// that it broke before (each test failed on the earlier code): error numbers,
// the Error header, the KEMAC algorithm, RAND lengths, resolve-time policy,
// identities in the KMS user identity format, no user enumeration (counted
// token operations), and the restart rule of the replay protection.
#include "firmware/base/user_identity.h"
#include "firmware/keystore/key_info.h"
#include "firmware/mikey/codec.h"
#include "tests/kms/kms_fixture.h"

namespace tkms::kms {
namespace {

using namespace test;
using namespace std::chrono_literals;

Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }

// The decoded message of a reply (composition rules off, as a UE reads it).
mikey::Message Decoded(const KmsReply& reply) {
  auto m = mikey::Decode(reply.mikey, mikey::DecodeOptions{{}, false});
  EXPECT_TRUE(m.ok()) << m.error().ToString();
  return m.ok() ? std::move(*m) : mikey::Message{};
}

template <typename P>
const P* Find(const mikey::Message& m) {
  for (const auto& p : m.payloads) {
    if (const auto* x = std::get_if<P>(&p)) return x;
  }
  return nullptr;
}

class KmsConformanceTest : public KmsServiceTest {
 protected:
  KmsReply Request(const ue::RequestInitParams& p) {
    auto request = ue::BuildRequestInitPsk(ue_provider_, p);
    EXPECT_TRUE(request.ok());
    return Send(RequestType::kTicketRequest, request->bytes);
  }
  KmsReply Resolve(const ue::ResolveInitParams& p) {
    auto resolve = ue::BuildResolveInitPsk(ue_provider_, p);
    EXPECT_TRUE(resolve.ok());
    return Send(RequestType::kTicketResolve, resolve->bytes);
  }
  void Install(const provisioning::KmsConfig& config) { kms_->SetSnapshot(Snapshot(config)); }
};

// ---- error numbers (RFC 3830 Table 6.12, RFC 4738, RFC 6043 Table 6.14) ----

TEST_F(KmsConformanceTest, MalformedMessagesAreUnspecifiedNotUnsupported) {
  auto request = ue::BuildRequestInitPsk(ue_provider_, AliceRequest());
  ASSERT_TRUE(request.ok());
  const Bytes good = request->bytes;
  Bytes truncated(good.begin(), good.end() - 3);
  Bytes trailing = good;
  trailing.push_back(0);
  Bytes unknown_payload = good;
  unknown_payload[2] = 19;  // HDR next payload: unassigned
  Bytes cs_count = good;
  cs_count[8] = 1;  // #CS 1 with the Empty map
  for (const Bytes* bad : {&truncated, &trailing, &unknown_payload, &cs_count}) {
    auto reply = Send(RequestType::kTicketRequest, *bad);
    EXPECT_EQ(reply.outcome, Outcome::kMikeyError) << reply.detail;
    EXPECT_EQ(reply.mikey_error, 12) << reply.detail;
    EXPECT_EQ(reply.refusal, Refusal::kMalformed);
  }
  // 13 is for a message type the KMS does not serve.
  Bytes pk = good;
  pk[1] = static_cast<uint8_t>(mikey::DataType::kRequestInitPk);
  EXPECT_EQ(Send(RequestType::kTicketRequest, pk).mikey_error, 13);
}

TEST_F(KmsConformanceTest, ErrorHeaderCopiesPrfFuncAndCsbId) {
  for (uint8_t prf : {0, 1, 5}) {
    auto request = ue::BuildRequestInitPsk(ue_provider_, AliceRequest());
    ASSERT_TRUE(request.ok());
    Bytes bytes = request->bytes;
    bytes[3] = static_cast<uint8_t>((bytes[3] & 0x80) | prf);
    // On the wrong requesttype: error 11 whatever the PRF (the data type
    // decides first); on the right one, PRF 5 is error 2 (Invalid PRF).
    for (RequestType type : {RequestType::kTicketResolve, RequestType::kTicketRequest}) {
      auto reply = Send(type, bytes);
      if (type == RequestType::kTicketRequest && prf != 5) continue;
      ASSERT_EQ(reply.outcome, Outcome::kMikeyError) << reply.detail;
      EXPECT_EQ(reply.mikey_error, type == RequestType::kTicketResolve ? 11 : 2) << reply.detail;
      const mikey::Message error = Decoded(reply);
      EXPECT_EQ(error.header.prf_func, prf);  // RFC 6043 §5.4: "SHALL be identical"
      EXPECT_EQ(error.header.csb_id, request->csb_id);
      EXPECT_EQ(error.header.data_type, static_cast<uint8_t>(mikey::DataType::kError));
    }
  }
}

// ---- KEMAC algorithm (RFC 3830 §4.2.3 mandatory AES-CM-128; RFC 6043 §12.1) ----

uint8_t KemacAlgOf(const KmsReply& reply) {
  const mikey::Message m = Decoded(reply);
  const auto* kemac = Find<mikey::KemacPayload>(m);
  return kemac != nullptr ? kemac->encr_alg : 0xFF;
}

TEST_F(KmsConformanceTest, KemacAlgorithmFollowsTheRequestAndThePolicy) {
  constexpr auto k128 = static_cast<uint8_t>(mikey::EncrAlg::kAesCm128);
  constexpr auto k256 = static_cast<uint8_t>(mikey::EncrAlg::kAesCm256);
  // A UE with only the mandatory algorithms (PRF-HMAC-SHA-1, HMAC-SHA-1-160)
  // gets the mandatory AES-CM-128 and can decrypt it.
  auto mandatory = AliceRequest();
  mandatory.prf_func = static_cast<uint8_t>(mikey::PrfFunc::kMikey1);
  mandatory.mac_alg = static_cast<uint8_t>(mikey::MacAlg::kHmacSha1_160);
  mandatory.policy.prf_func = mandatory.prf_func;
  auto request = ue::BuildRequestInitPsk(ue_provider_, mandatory);
  ASSERT_TRUE(request.ok()) << request.error().ToString();
  auto reply = Send(RequestType::kTicketRequest, request->bytes);
  ASSERT_EQ(reply.outcome, Outcome::kOk) << reply.detail;
  EXPECT_EQ(KemacAlgOf(reply), k128);
  EXPECT_TRUE(ue::ParseRequestResp(ue_provider_, reply.mikey, *request).ok());
  // A UE that uses a 256-bit algorithm supports AES-CM-256, and the 256-bit
  // algorithms SHALL NOT be mixed with 128-bit ones (§12.1).
  EXPECT_EQ(KemacAlgOf(Request(AliceRequest())), k256);
  auto mac_only = mandatory;
  mac_only.mac_alg = static_cast<uint8_t>(mikey::MacAlg::kHmacSha256_256);
  EXPECT_EQ(KemacAlgOf(Request(mac_only)), k256);
  // Session keys over 128 bits with 128-bit algorithms: refused (§12.1).
  auto long_keys = mandatory;
  long_keys.policy.keys.push_back(ue::RequestedKey{static_cast<uint8_t>(mikey::KeyType::kTgk), 32, 0, {}});
  auto refused = Request(long_keys);
  EXPECT_EQ(refused.mikey_error, 15) << refused.detail;
  // The user's policy class overrides: fixed AES-CM-256 for a UE known to
  // support it, fixed AES-CM-128 for one known not to.
  provisioning::KmsConfig config = BaseConfig();
  config.policy_classes["default"].kemac_encryption = provisioning::KemacEncryption::kAesCm256;
  Install(config);
  auto forced = ue::BuildRequestInitPsk(ue_provider_, mandatory);
  ASSERT_TRUE(forced.ok());
  auto strong = Send(RequestType::kTicketRequest, forced->bytes);
  EXPECT_EQ(KemacAlgOf(strong), k256);
  EXPECT_TRUE(ue::ParseRequestResp(ue_provider_, strong.mikey, *forced).ok());
  EXPECT_EQ(Request(long_keys).outcome, Outcome::kOk);
  config.policy_classes["default"].kemac_encryption = provisioning::KemacEncryption::kAesCm128;
  Install(config);
  EXPECT_EQ(KemacAlgOf(Request(AliceRequest())), k128);
}

// ---- RAND lengths (RFC 6043 §12.1, MUST) ----

TEST_F(KmsConformanceTest, RandsAreAsLongAsTheKeysTheyProtect) {
  auto p = AliceRequest();
  p.policy.flags |= mikey::kFlagI;
  p.policy.keys.push_back(ue::RequestedKey{static_cast<uint8_t>(mikey::KeyType::kTgk), 64, 0, {}});
  auto request = ue::BuildRequestInitPsk(ue_provider_, p);
  ASSERT_TRUE(request.ok());
  auto reply = Send(RequestType::kTicketRequest, request->bytes);
  ASSERT_EQ(reply.outcome, Outcome::kOk) << reply.detail;
  auto grant = ue::ParseRequestResp(ue_provider_, reply.mikey, *request);
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  // The base ticket's RAND is at least as long as the TPK and the MPK.
  auto data = mikey::DecodeBaseTicketData(grant->ticket.ticket_data);
  ASSERT_TRUE(data.ok());
  EXPECT_GE(data->rand.rand.size(), 32u);
  ASSERT_TRUE(grant->mpkr.has_value());
  EXPECT_GE(data->rand.rand.size(), grant->mpkr->size());
  // RANDRkms is at least as long as the longest MPKr'/TGK it protects (64).
  ue::TransferInitParams t;
  t.initiator.id = Text("sip:alice@example.org");
  t.responder.id = Text("sip:bob@example.org");
  auto transfer = ue::BuildTransferInit(ue_provider_, *grant, t);
  ASSERT_TRUE(transfer.ok()) << transfer.error().ToString();
  auto resolved_reply = Resolve(BobResolve(transfer->ticket));
  ASSERT_EQ(resolved_reply.outcome, Outcome::kOk) << resolved_reply.detail;
  const mikey::Message resolve_resp = Decoded(resolved_reply);
  const auto* randr = Find<mikey::RandrPayload>(resolve_resp);
  ASSERT_NE(randr, nullptr);
  EXPECT_EQ(randr->role, static_cast<uint8_t>(mikey::RandRole::kKms));
  EXPECT_GE(randr->rand.size(), 64u);
}

// ---- resolve-time policy (TS 33.328 B.2.2.2 step 6) ----

TEST_F(KmsConformanceTest, ResolveChecksTheCurrentPolicyOfInitiatorAndResponder) {
  const ue::TicketGrant plain = Grant();
  const ue::TicketGrant reusable = Grant(mikey::kFlagJ);
  ASSERT_NE(reusable.policy.flags & mikey::kFlagJ, 0);
  ASSERT_EQ(Resolve(BobResolve(plain.ticket)).outcome, Outcome::kOk);

  auto expect_conflict = [&](const ue::TicketGrant& grant, const char* why) {
    auto reply = Resolve(BobResolve(grant.ticket));
    EXPECT_EQ(reply.outcome, Outcome::kMikeyError) << why;
    EXPECT_EQ(reply.mikey_error, 15) << why << ": " << reply.detail;
    EXPECT_EQ(reply.refusal, Refusal::kPolicyConflict) << why;
  };
  // The initiator's class no longer allows reuse: the J ticket is refused,
  // the plain one still resolves.
  provisioning::KmsConfig downgraded = BaseConfig();
  downgraded.policy_classes["default"].allow_reuse = false;
  Install(downgraded);
  expect_conflict(reusable, "initiator downgraded");
  EXPECT_EQ(Resolve(BobResolve(plain.ticket)).outcome, Outcome::kOk);
  // The initiator is no longer a user of this KMS.
  provisioning::KmsConfig without_alice = BaseConfig();
  without_alice.token_users = false;
  without_alice.users.push_back(provisioning::UserConfig{{"sip:bob@example.org"}, std::nullopt, ""});
  Install(without_alice);
  expect_conflict(plain, "initiator removed");
  // The responder's class does not allow resolving.
  provisioning::KmsConfig no_resolve = BaseConfig();
  no_resolve.policy_classes["default"].allow_resolve = false;
  Install(no_resolve);
  expect_conflict(plain, "responder not allowed");
  // A shorter maximum lifetime than what the ticket still has.
  provisioning::KmsConfig short_lived = BaseConfig();
  short_lived.policy_classes["default"].max_lifetime_s = 60;
  short_lived.policy_classes["default"].default_lifetime_s = 60;
  Install(short_lived);
  expect_conflict(plain, "lifetime");
  // Back to the policy the tickets were issued under: both resolve.
  Install(BaseConfig());
  EXPECT_EQ(Resolve(BobResolve(plain.ticket)).outcome, Outcome::kOk);
  EXPECT_EQ(Resolve(BobResolve(reusable.ticket)).outcome, Outcome::kOk);
}

TEST_F(KmsConformanceTest, ARequestTheClassForbidsIsRefused) {
  provisioning::KmsConfig config = BaseConfig();
  config.policy_classes["default"].allow_request = false;
  Install(config);
  auto reply = Request(AliceRequest());
  EXPECT_EQ(reply.mikey_error, 15) << reply.detail;
  EXPECT_EQ(reply.refusal, Refusal::kPolicy);
}

// ---- identities in the KMS user identity format (B.2.2.2 step 5) ----

TEST_F(KmsConformanceTest, IdentitiesMatchAfterTheTransformation) {
  auto p = AliceRequest();
  p.initiator.id = Text("SIP:alice@EXAMPLE.org");  // scheme and host differ in case
  p.kms.id = Text("KMS.Example.Org");
  p.policy.responders.clear();
  p.policy.responders.push_back(ue::IdValue{Text("sip:bob@Example.ORG")});
  auto request = ue::BuildRequestInitPsk(ue_provider_, p);
  ASSERT_TRUE(request.ok());
  auto reply = Send(RequestType::kTicketRequest, request->bytes);
  ASSERT_EQ(reply.outcome, Outcome::kOk) << reply.detail;
  auto grant = ue::ParseRequestResp(ue_provider_, reply.mikey, *request);
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  EXPECT_EQ(Resolve(BobResolve(grant->ticket)).outcome, Outcome::kOk);
  // The user part is case-sensitive (RFC 3261 §19.1.4): BOB is someone else.
  auto other = AliceRequest();
  other.policy.responders.clear();
  other.policy.responders.push_back(ue::IdValue{Text("sip:BOB@example.org")});
  auto stranger = Grant(0, "sip:BOB@example.org");
  auto refused = Resolve(BobResolve(stranger.ticket));
  EXPECT_EQ(refused.mikey_error, 7) << refused.detail;
}

// ---- no user enumeration ----

TEST_F(KmsConformanceTest, UnknownUserAndWrongMacCostTheSameAndLookTheSame) {
  struct Seen {
    int hmacs, randoms;
    KmsReply reply;
  };
  auto run = [&](ue::RequestInitParams p) {
    auto& c = keys_->counts();
    c.token_hmacs = 0;
    c.randoms = 0;
    KmsReply reply = Request(p);
    return Seen{c.token_hmacs.load(), c.randoms.load(), std::move(reply)};
  };
  auto wrong_mac = AliceRequest();
  wrong_mac.psk = SecretBytes(32, 0x77);
  auto unknown = AliceRequest();
  unknown.initiator.id = Text("sip:mallory@example.org");
  unknown.psk = SecretBytes(32, 0x77);
  for (bool by_psk_id : {false, true}) {
    if (by_psk_id) {
      auto users = keystore::ListUserPsks(*keystore_);
      ASSERT_TRUE(users.ok());
      for (const auto& u : *users) {
        if (u.identities.front() == "sip:alice@example.org") wrong_mac.psk_id = u.psk_id;
      }
      unknown.psk_id = Bytes(16, 0xEE);
    }
    const Seen a = run(wrong_mac);
    const Seen b = run(unknown);
    EXPECT_EQ(a.reply.outcome, Outcome::kMikeyError);
    EXPECT_EQ(b.reply.outcome, Outcome::kMikeyError);
    EXPECT_EQ(a.reply.mikey_error, 0);
    EXPECT_EQ(b.reply.mikey_error, 0);
    EXPECT_EQ(a.reply.refusal, Refusal::kAuthentication);
    EXPECT_EQ(b.reply.refusal, Refusal::kUnknownUser);
    EXPECT_GT(a.hmacs, 0);
    EXPECT_EQ(a.hmacs, b.hmacs) << (by_psk_id ? "by IDRpsk" : "by IDRi");
    EXPECT_EQ(a.randoms, b.randoms);
    // The same message shape: HDR, T, ERR, no V.
    EXPECT_EQ(a.reply.mikey.size(), b.reply.mikey.size());
    const mikey::Message error = Decoded(b.reply);
    EXPECT_EQ(Find<mikey::VPayload>(error), nullptr);
  }
}

// ---- replay protection across restarts (RFC 3830 §5.4) ----

TEST_F(KmsConformanceTest, RequestsTimestampedBeforeTheStartAreRefused) {
  // A KMS that started 1 s ago: a message from 2 s ago is within the window
  // but may have been accepted by the previous instance.
  auto p = AliceRequest();
  p.timestamp.value = NtpFromTime(clock_->Now() - 2s);
  kms_ = std::make_unique<Kms>(*keys_, *clock_, Snapshot(BaseConfig()));
  clock_->Advance(1s);
  auto reply = Request(p);
  EXPECT_EQ(reply.mikey_error, 1) << reply.detail;
  EXPECT_EQ(reply.refusal, Refusal::kBeforeStart);
  // A message from after the start is served.
  p.timestamp.value.reset();
  auto fresh = AliceRequest();
  fresh.timestamp.value = NtpFromTime(clock_->Now());
  EXPECT_EQ(Request(fresh).outcome, Outcome::kOk);
}

}  // namespace
}  // namespace tkms::kms
