// The ticket service in-process (no HTTP): Kms::Handle with a real SoftHSM2
// token, driven by the project's UE library. Checks what the integration
// tests cannot see from outside: the token operations one request costs (the
// "raw PKCS#11 operation mix" that `make bench` uses as a ceiling), that a
// token key never takes part in anything but HMAC inside the token, and the
// replay cache under a ManualClock.
#include <gtest/gtest.h>

#include <atomic>

#include "firmware/kms/kms.h"
#include "tests/support/hal_fakes.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "firmware/keystore/crypto_provider.h"
#include "firmware/keystore/kms_keys.h"
#include "firmware/keystore/user_psk.h"
#include "tests/keystore/keystore_fixture.h"
#include "tests/kms/token_op_mix.h"
#include "tools/ue/ticket_client.h"

namespace tkms::kms {
namespace {

namespace mc = mikey::crypto;
using mikey::Bytes;

// Forwards to the token's provider and counts what reaches the token.
class CountingProvider final : public mc::CryptoProvider {
 public:
  explicit CountingProvider(mc::CryptoProvider& inner) : inner_(inner) {}
  Result<mc::SecretKeyPtr> ImportTransientKey(ByteSpan bytes) override { return inner_.ImportTransientKey(bytes); }
  Result<mc::SecretKeyPtr> SliceKey(const mc::SecretKey& key, size_t offset, size_t len) override {
    return inner_.SliceKey(key, offset, len);
  }
  Status Hmac(mc::HashAlg alg, const mc::SecretKey& key, std::span<const ByteSpan> parts,
              std::span<uint8_t> out) override {
    if (keystore::Pkcs11CryptoProvider::IsTokenKey(key)) ++token_hmacs;
    return inner_.Hmac(alg, key, parts, out);
  }
  Status AesCtr(const mc::SecretKey& key, std::span<const uint8_t, 16> iv, ByteSpan in,
                std::span<uint8_t> out) override {
    if (keystore::Pkcs11CryptoProvider::IsTokenKey(key)) ++token_aes;
    return inner_.AesCtr(key, iv, in, out);
  }
  Status Random(std::span<uint8_t> out) override {
    ++randoms;
    return inner_.Random(out);
  }
  std::atomic<int> token_hmacs{0}, token_aes{0}, randoms{0};

 private:
  mc::CryptoProvider& inner_;
};

class CountingKeys final : public KmsKeys {
 public:
  explicit CountingKeys(keystore::Keystore& ks) : inner_(ks), provider_(ks.provider()) {}
  mc::CryptoProvider& provider() override { return provider_; }
  Result<mc::SecretKeyPtr> UserPsk(ByteSpan psk_id) override { return inner_.UserPsk(psk_id); }
  Result<mc::SecretKeyPtr> DecoyPsk() override { return inner_.DecoyPsk(); }
  Status Health() override { return inner_.Health(); }
  Result<uint32_t> CurrentTicketKeyId() override { return inner_.CurrentTicketKeyId(); }
  Result<mc::SecretKeyPtr> TicketKey(uint32_t id) override { return inner_.TicketKey(id); }
  Status Random(std::span<uint8_t> out) override {
    ++provider_.randoms;
    return inner_.Random(out);
  }
  CountingProvider& counts() { return provider_; }

 private:
  keystore::KeystoreKeys inner_;
  CountingProvider provider_;
};

class KmsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto token = pkcs11::test::SoftHsmToken::Create();
    ASSERT_TRUE(token.ok()) << token.error().ToString();
    token_ = std::move(*token);
    auto ks = keystore::test::OpenKeystore(*token_);
    ASSERT_TRUE(ks.ok());
    keystore_ = std::move(*ks);
    ASSERT_TRUE(keystore_->RotateTicketKey(keystore::KeyType::kHmacSha256).ok());
    alice_psk_ = SecretBytes(32, 0xA1);
    bob_psk_ = SecretBytes(32, 0xB0);
    ASSERT_TRUE(keystore::AddUserPsk(*keystore_, {"sip:alice@example.org"}, alice_psk_).ok());
    ASSERT_TRUE(keystore::AddUserPsk(*keystore_, {"sip:bob@example.org"}, bob_psk_).ok());
    keys_ = std::make_unique<CountingKeys>(*keystore_);
    auto snap = std::make_shared<KmsSnapshot>();
    snap->config.kms_identity = "kms.example.org";
    snap->config.policy_classes["default"] = provisioning::PolicyClass{};
    snap->config.mikey.replay_cache_entries = 1000;
    auto users = keystore::ListUserPsks(*keystore_);
    ASSERT_TRUE(users.ok());
    std::vector<TokenUser> token_users;
    for (const auto& user : *users) token_users.push_back(TokenUser{user.psk_id, user.identities});
    std::vector<std::string> warnings;
    snap->users = UserDirectory::Build(snap->config, token_users, warnings);
    clock_ = std::make_unique<hal::ManualClock>(std::chrono::system_clock::now());
    kms_ = std::make_unique<Kms>(*keys_, *clock_, snap);
  }

  ue::RequestInitParams AliceRequest() {
    ue::RequestInitParams p;
    p.psk = alice_psk_;
    p.initiator.id = Bytes{'s', 'i', 'p', ':', 'a', 'l', 'i', 'c', 'e', '@', 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'o', 'r', 'g'};
    const std::string kms = "kms.example.org", bob = "sip:bob@example.org";
    p.kms.id = Bytes(kms.begin(), kms.end());
    p.policy.responders.push_back(ue::IdValue{Bytes(bob.begin(), bob.end())});
    return p;
  }

  KmsReply Send(RequestType type, ByteSpan bytes) {
    RequestContext context;
    context.type = type;
    return kms_->Handle(context, bytes);
  }

  std::unique_ptr<pkcs11::test::SoftHsmToken> token_;
  std::unique_ptr<keystore::Keystore> keystore_;
  std::unique_ptr<CountingKeys> keys_;
  std::unique_ptr<hal::ManualClock> clock_;
  std::unique_ptr<Kms> kms_;
  SecretBytes alice_psk_, bob_psk_;
  mc::TransientCryptoProvider ue_provider_;
};

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
