// The ticket service in-process (no HTTP): Kms::Handle with a real SoftHSM2
// token, driven by the project's UE library. Checks what the integration
// tests cannot see from outside: the token operations one request costs (the
// "raw PKCS#11 operation mix" that `make bench` uses as a ceiling), that a
// token key never takes part in anything but HMAC inside the token, and the
// replay cache under a ManualClock.
#include "tests/kms/kms_fixture.h"
#include "tests/kms/token_op_mix.h"

namespace tkms::kms {
namespace {

using namespace test;

TEST_F(KmsServiceTest, TokenOperationMixOfOneRequestAndOneResolve) {
  auto request = ue::BuildRequestInitPsk(ue_provider_, AliceRequest());
  ASSERT_TRUE(request.ok());
  auto& c = keys_->counts();
  auto reply = Send(RequestType::kTicketRequest, request->bytes);
  ASSERT_EQ(reply.outcome, Outcome::kOk) << reply.detail;
  EXPECT_EQ(c.token_hmacs.load(), kTicketRequestMix.token_hmacs);
  EXPECT_EQ(c.randoms.load(), kTicketRequestMix.token_randoms);
  EXPECT_EQ(c.token_aes.load(), 0);
  auto grant = ue::ParseRequestResp(ue_provider_, reply.mikey, *request);
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();

  c.token_hmacs = 0;
  c.randoms = 0;
  ue::ResolveInitParams r;
  r.psk = bob_psk_;
  const std::string bob = "sip:bob@example.org", kms = "kms.example.org";
  r.responder.id = Bytes(bob.begin(), bob.end());
  r.kms.id = Bytes(kms.begin(), kms.end());
  r.ticket = grant->ticket;
  auto resolve = ue::BuildResolveInitPsk(ue_provider_, r);
  ASSERT_TRUE(resolve.ok());
  auto resolved_reply = Send(RequestType::kTicketResolve, resolve->bytes);
  ASSERT_EQ(resolved_reply.outcome, Outcome::kOk) << resolved_reply.detail;
  EXPECT_EQ(c.token_hmacs.load(), kTicketResolveMix.token_hmacs);
  EXPECT_EQ(c.randoms.load(), kTicketResolveMix.token_randoms);
  auto resolved = ue::ParseResolveResp(ue_provider_, resolved_reply.mikey, *resolve);
  ASSERT_TRUE(resolved.ok()) << resolved.error().ToString();
  EXPECT_EQ(resolved->mpki, grant->mpki);
}

TEST_F(KmsServiceTest, ClockDecidesReplayAndTimestampWindow) {
  auto request = ue::BuildRequestInitPsk(ue_provider_, AliceRequest());
  ASSERT_TRUE(request.ok());
  ASSERT_EQ(Send(RequestType::kTicketRequest, request->bytes).outcome, Outcome::kOk);
  // The same bytes later: still within the window, so the replay cache refuses.
  clock_->Advance(std::chrono::seconds(30));
  auto replay = Send(RequestType::kTicketRequest, request->bytes);
  EXPECT_EQ(replay.refusal, Refusal::kReplay);
  // Outside the window the timestamp refuses it first.
  clock_->Advance(std::chrono::seconds(60));
  auto stale = Send(RequestType::kTicketRequest, request->bytes);
  EXPECT_EQ(stale.refusal, Refusal::kStaleTimestamp);
  EXPECT_EQ(stale.mikey_error, 1);
  EXPECT_EQ(kms_->replay_cache_size(), 1u);
}

TEST_F(KmsServiceTest, NotAMikeyMessageIsABadRequest) {
  const uint8_t junk[] = {0x02, 0x0b, 0x05, 0x01, 0, 0, 0, 1, 0, 1};  // version 2
  EXPECT_EQ(Send(RequestType::kTicketRequest, junk).outcome, Outcome::kBadRequest);
  EXPECT_EQ(Send(RequestType::kTicketRequest, ByteSpan()).outcome, Outcome::kBadRequest);
  const Readiness ready = kms_->CheckReadiness();
  EXPECT_TRUE(ready.ready()) << ready.detail;
}

}  // namespace
}  // namespace tkms::kms
