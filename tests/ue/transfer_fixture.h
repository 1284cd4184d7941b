// The fixture of the Ticket Transfer tests (transfer_test.cpp,
// transfer_rand_test.cpp): the real KMS (kms::Kms over a SoftHSM2 token, no
// HTTP) serving Ticket Request and Resolve for alice, bob and carol, and the
// UE library playing the Initiator and the Responders.
//
// Why a header: the tests of RFC 6043 §4.2.2 / §5.1.3 and those of the RAND
// lengths (§12.1) share it, and one file would be over the size limit.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "firmware/kms/kms.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/prf.h"
#include "firmware/mikey/crypto/protect.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "hal/clock.h"
#include "firmware/keystore/kms_keys.h"
#include "firmware/keystore/user_psk.h"
#include "tests/keystore/keystore_fixture.h"
#include "tools/ue/ticket_client.h"
#include "tools/ue/transfer.h"

namespace tkms::ue::testing {

namespace mc = mikey::crypto;
using mikey::Bytes;

inline Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

inline const std::string kAlice = "sip:alice@example.org";
inline const std::string kBob = "sip:bob@example.org";
inline const std::string kCarol = "sip:carol@example.org";
inline const std::string kKmsId = "kms.example.org";

// What one Responder end-point ends up with.
struct ResponderSide {
  ResolvedTicket resolved;
  TransferResp resp;
};

class TransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto token = pkcs11::test::SoftHsmToken::Create();
    ASSERT_TRUE(token.ok()) << token.error().ToString();
    token_ = std::move(*token);
    auto ks = keystore::test::OpenKeystore(*token_);
    ASSERT_TRUE(ks.ok());
    keystore_ = std::move(*ks);
    ASSERT_TRUE(keystore_->RotateTicketKey(keystore::KeyType::kHmacSha256).ok());
    psks_[kAlice] = SecretBytes(32, 0xA1);
    psks_[kBob] = SecretBytes(32, 0xB0);
    psks_[kCarol] = SecretBytes(32, 0xC0);
    for (const auto& [id, psk] : psks_) {
      auto added = keystore::AddUserPsk(*keystore_, {id}, psk);
      ASSERT_TRUE(added.ok()) << added.error().ToString();
    }
    keys_ = std::make_unique<keystore::KeystoreKeys>(*keystore_);
    auto snap = std::make_shared<kms::KmsSnapshot>();
    snap->config.kms_identity = kKmsId;
    snap->config.policy_classes["default"] = provisioning::PolicyClass{};
    snap->config.mikey.replay_cache_entries = 1000;
    auto token_users = keystore::ListTokenUsers(*keystore_);
    ASSERT_TRUE(token_users.ok());
    std::vector<std::string> warnings;
    snap->users = kms::UserDirectory::Build(snap->config, *token_users, warnings);
    kms_ = std::make_unique<kms::Kms>(*keys_, clock_, snap);
  }

  kms::KmsReply Send(kms::RequestType type, ByteSpan bytes) {
    kms::RequestContext context;
    context.type = type;
    return kms_->Handle(context, bytes);
  }

  // Ticket Request as alice for `responders` with ticket policy `flags`.
  TicketGrant Request(uint16_t flags, const std::vector<std::string>& responders,
                      std::vector<RequestedKey> keys = {}) {
    RequestInitParams p;
    p.psk = psks_[kAlice];
    p.initiator.id = B(kAlice);
    p.kms.id = B(kKmsId);
    p.policy.flags = flags;
    p.policy.complete_flags = false;
    p.policy.keys = std::move(keys);
    for (const auto& r : responders) p.policy.responders.push_back(IdValue{B(r)});
    auto request = BuildRequestInitPsk(provider_, p);
    EXPECT_TRUE(request.ok()) << request.error().ToString();
    auto reply = Send(kms::RequestType::kTicketRequest, request->bytes);
    EXPECT_EQ(reply.outcome, kms::Outcome::kOk) << reply.detail;
    auto grant = ParseRequestResp(provider_, reply.mikey, *request);
    EXPECT_TRUE(grant.ok()) << grant.error().ToString();
    return std::move(*grant);
  }

  TransferInit Transfer(const TicketGrant& grant, std::optional<std::string> responder) {
    TransferInitParams p;
    p.initiator.id = B(kAlice);
    if (responder) {
      p.responder.id = B(*responder);
    } else {
      p.responder.send = false;  // forked to several end-points: no single IDRr
    }
    auto init = BuildTransferInit(provider_, grant, p);
    EXPECT_TRUE(init.ok()) << init.error().ToString();
    return std::move(*init);
  }

  ResolvedTicket Resolve(const TransferInit& init, const std::string& who) {
    ResolveInitParams r;
    r.psk = psks_[who];
    r.responder.id = B(who);
    r.kms.id = B(kKmsId);
    r.ticket = init.ticket;
    auto resolve = BuildResolveInitPsk(provider_, r);
    EXPECT_TRUE(resolve.ok()) << resolve.error().ToString();
    auto reply = Send(kms::RequestType::kTicketResolve, resolve->bytes);
    EXPECT_EQ(reply.outcome, kms::Outcome::kOk) << reply.detail;
    auto resolved = ParseResolveResp(provider_, reply.mikey, *resolve);
    EXPECT_TRUE(resolved.ok()) << resolved.error().ToString();
    return std::move(*resolved);
  }

  ResponderSide Answer(const TransferInit& init, const std::string& who, TransferRespParams params = {}) {
    ResponderSide side;
    side.resolved = Resolve(init, who);
    params.responder.id = B(who);
    auto resp = BuildTransferResp(provider_, init.bytes, side.resolved, params);
    EXPECT_TRUE(resp.ok()) << resp.error().ToString();
    side.resp = std::move(*resp);
    return side;
  }

  std::vector<SrtpSessionKeys> Keys(const TransferSession& s) {
    auto keys = DeriveSrtpKeys(provider_, s);
    EXPECT_TRUE(keys.ok()) << keys.error().ToString();
    return keys.ok() ? std::move(*keys) : std::vector<SrtpSessionKeys>{};
  }

  static void ExpectSame(const std::vector<SrtpSessionKeys>& a, const std::vector<SrtpSessionKeys>& b) {
    ASSERT_EQ(a.size(), b.size());
    ASSERT_FALSE(a.empty());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].cs_id, b[i].cs_id);
      EXPECT_EQ(a[i].ssrc, b[i].ssrc);
      EXPECT_EQ(a[i].master_key.size(), 16u);
      EXPECT_EQ(a[i].master_salt.size(), 14u);
      EXPECT_TRUE(a[i].master_key == b[i].master_key) << "CS " << int{a[i].cs_id};
      EXPECT_TRUE(a[i].master_salt == b[i].master_salt) << "CS " << int{a[i].cs_id};
    }
  }

  // Re-seals a (modified) TRANSFER_RESP with the right key, as a Responder
  // that deviates from the RFC on purpose would.
  Bytes Reseal(mikey::Message m, const SecretBytes& mpk, const TransferInit& init,
               std::optional<ByteSpan> randrr) {
    auto key = provider_.ImportTransientKey(mpk);
    EXPECT_TRUE(key.ok());
    auto mk = mc::DeriveMessageKeys(provider_, static_cast<mikey::PrfFunc>(m.header.prf_func), **key,
                                    mc::Direction::kResponse, m.header.csb_id, ByteSpan(init.randri), randrr,
                                    mikey::EncrAlg::kNull, mikey::MacAlg::kHmacSha256_256);
    EXPECT_TRUE(mk.ok());
    auto auth = provider_.ImportTransientKey(mk->auth_key);
    EXPECT_TRUE(auth.ok());
    const ByteSpan appended[] = {init.bytes};
    auto sealed = mc::SealWithV(provider_, m, **auth, appended);
    EXPECT_TRUE(sealed.ok());
    return std::move(*sealed);
  }

  // `init` changed by `change` and its V recomputed with MPKi (RFC 6043
  // §5.1.2, §5.5), as an Initiator that deviates on purpose would send it.
  // Only for tickets without the I flag (no Initiator Data to redo).
  TransferInit Resealed(const TransferInit& init, const SecretBytes& mpki,
                        const std::function<void(mikey::Message&)>& change) {
    mikey::Message m = init.message;
    change(m);
    Bytes randri;
    for (const auto& p : m.payloads) {
      if (const auto* r = std::get_if<mikey::RandrPayload>(&p); r != nullptr && r->role == 1) randri = r->rand;
    }
    auto key = provider_.ImportTransientKey(mpki);
    EXPECT_TRUE(key.ok());
    auto mk = mc::DeriveMessageKeys(provider_, static_cast<mikey::PrfFunc>(m.header.prf_func), **key,
                                    mc::Direction::kInitial, m.header.csb_id, ByteSpan(randri), std::nullopt,
                                    mikey::EncrAlg::kNull, mikey::MacAlg::kHmacSha256_256);
    EXPECT_TRUE(mk.ok());
    auto auth = provider_.ImportTransientKey(mk->auth_key);
    EXPECT_TRUE(auth.ok());
    const Bytes id_i = B(kAlice), id_r = B(kBob);
    const ByteSpan appended[] = {id_i, id_r};
    auto sealed = mc::SealWithV(provider_, m, **auth, appended);
    EXPECT_TRUE(sealed.ok()) << sealed.error().ToString();
    TransferInit out = init;
    out.bytes = std::move(*sealed);
    auto decoded = mikey::Decode(out.bytes);
    EXPECT_TRUE(decoded.ok()) << decoded.error().ToString();
    out.message = std::move(*decoded);
    out.randri = std::move(randri);
    return out;
  }

  // `init` with its RANDRi replaced by `n` bytes, resealed.
  TransferInit WithRandRi(const TransferInit& init, const SecretBytes& mpki, size_t n) {
    return Resealed(init, mpki, [n](mikey::Message& m) {
      for (auto& p : m.payloads) {
        if (auto* r = std::get_if<mikey::RandrPayload>(&p); r != nullptr && r->role == 1) r->rand = Bytes(n, 0x5C);
      }
    });
  }

  static constexpr uint16_t kBase = mikey::kFlagE | mikey::kFlagF | mikey::kFlagG | mikey::kFlagH |
                                    mikey::kFlagN | mikey::kFlagO;

  std::unique_ptr<pkcs11::test::SoftHsmToken> token_;
  std::unique_ptr<keystore::Keystore> keystore_;
  std::unique_ptr<keystore::KeystoreKeys> keys_;
  hal::SystemClock clock_;
  std::unique_ptr<kms::Kms> kms_;
  std::map<std::string, SecretBytes> psks_;
  mc::TransientCryptoProvider provider_;
};

}  // namespace tkms::ue::testing
