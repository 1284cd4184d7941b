// KmsServiceTest: the ticket service in-process (no HTTP) with a real
// SoftHSM2 token, users alice and bob, a ManualClock, and counters of what
// reaches the token; shared by kms_service_test.cpp and
// kms_conformance_test.cpp.
#pragma once

#include <gtest/gtest.h>

#include <atomic>

#include "firmware/keystore/crypto_provider.h"
#include "firmware/keystore/kms_keys.h"
#include "firmware/keystore/user_psk.h"
#include "firmware/kms/kms.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/keystore/keystore_fixture.h"
#include "tests/support/hal_fakes.h"
#include "tools/ue/ticket_client.h"

namespace tkms::kms::test {

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
    clock_ = std::make_unique<hal::ManualClock>(std::chrono::system_clock::now());
    kms_ = std::make_unique<Kms>(*keys_, *clock_, Snapshot(BaseConfig()));
  }

  static provisioning::KmsConfig BaseConfig() {
    provisioning::KmsConfig config;
    config.kms_identity = "kms.example.org";
    config.policy_classes["default"] = provisioning::PolicyClass{};
    config.mikey.replay_cache_entries = 1000;
    return config;
  }

  // The snapshot `config` gives with the token's users.
  std::shared_ptr<const KmsSnapshot> Snapshot(const provisioning::KmsConfig& config) {
    auto snap = std::make_shared<KmsSnapshot>();
    snap->config = config;
    auto token_users = keystore::ListTokenUsers(*keystore_);
    EXPECT_TRUE(token_users.ok());
    std::vector<std::string> warnings;
    snap->users = UserDirectory::Build(snap->config, token_users.ok() ? *token_users : std::vector<TokenUser>{}, warnings);
    return snap;
  }

  // Alice asks for a ticket for `responder` (with `flags` added) and gets it.
  ue::TicketGrant Grant(uint16_t flags = 0, std::string responder = "sip:bob@example.org") {
    auto p = AliceRequest();
    p.policy.responders.clear();
    p.policy.responders.push_back(ue::IdValue{Bytes(responder.begin(), responder.end())});
    p.policy.flags |= flags;
    auto request = ue::BuildRequestInitPsk(ue_provider_, p);
    EXPECT_TRUE(request.ok());
    auto reply = Send(RequestType::kTicketRequest, request->bytes);
    EXPECT_EQ(reply.outcome, Outcome::kOk) << reply.detail;
    auto grant = ue::ParseRequestResp(ue_provider_, reply.mikey, *request);
    EXPECT_TRUE(grant.ok()) << grant.error().ToString();
    return std::move(*grant);
  }

  ue::ResolveInitParams BobResolve(const mikey::TicketPayload& ticket) {
    ue::ResolveInitParams r;
    r.psk = bob_psk_;
    const std::string bob = "sip:bob@example.org", kms = "kms.example.org";
    r.responder.id = Bytes(bob.begin(), bob.end());
    r.kms.id = Bytes(kms.begin(), kms.end());
    r.ticket = ticket;
    return r;
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

}  // namespace tkms::kms::test
