// Unit tests of the ticket service's pure parts: ticket policy decisions
// (RFC 6043 §6.10 flags, validity, responders, requested keys), the replay
// cache (RFC 3830 §5.4), NTP timestamps (RFC 4330 era rule) and the user
// directory (identities, PSK ids, groups, policy classes).
#include <gtest/gtest.h>

#include <array>

#include "firmware/base/big_endian.h"
#include "firmware/kms/policy.h"
#include "firmware/kms/replay_cache.h"
#include "firmware/kms/timestamps.h"
#include "firmware/kms/users.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/composition.h"

namespace tkms::kms {
namespace {

using mikey::IdrPayload;
using mikey::TicketPolicy;
using mikey::TrPayload;
using namespace std::chrono_literals;

const TimePoint kNow = TimePoint(std::chrono::seconds(1800000000));  // 2027-01-15

IdrPayload Idr(mikey::IdRole role, std::string id) {
  return IdrPayload{static_cast<uint8_t>(role), static_cast<uint8_t>(mikey::IdType::kUri),
                    mikey::Bytes(id.begin(), id.end())};
}

TrPayload Tr(mikey::TsRole role, TimePoint t) {
  return TrPayload{static_cast<uint8_t>(role), static_cast<uint8_t>(mikey::TsType::kNtpUtc), NtpFromTime(t)};
}

constexpr uint16_t kPlainFlags = mikey::kFlagD | mikey::kFlagE | mikey::kFlagF | mikey::kFlagG |
                                 mikey::kFlagH | mikey::kFlagN | mikey::kFlagO;

TicketPolicy Requested(uint16_t flags = kPlainFlags) {
  TicketPolicy p;
  p.ticket_type = 1;
  p.subtype = 1;
  p.version = 1;
  p.prf_func = 1;
  p.flags = flags;
  p.tp_data.emplace_back(Idr(mikey::IdRole::kResponder, "sip:bob@example.org"));
  return p;
}

PolicyContext Context() { return PolicyContext{kNow, "sip:alice@example.org", "kms.example.org"}; }

std::optional<TimePoint> GrantedEnd(const TicketPolicy& p) {
  for (const auto& item : p.tp_data) {
    if (const auto* tr = std::get_if<TrPayload>(&item); tr && tr->role == static_cast<uint8_t>(mikey::TsRole::kEnd)) {
      return TimeFromTimestamp(tr->ts_type, tr->value);
    }
  }
  return std::nullopt;
}

mikey::KemacPayload KeyRequest(std::vector<std::pair<mikey::KeyType, size_t>> keys, bool with_spi = false);

// A request the KMS can grant exactly as asked: mode-1 flags, a TRe within
// the class's lifetime, and a key request whose keys carry SPIs.
TicketPolicy Complete(uint16_t flags = kPlainFlags) {
  TicketPolicy p = Requested(flags);
  p.tp_data.insert(p.tp_data.begin(), Tr(mikey::TsRole::kEnd, kNow + 1800s));
  p.tp_data.insert(p.tp_data.begin(), KeyRequest({{mikey::KeyType::kTgk, 16}}, /*with_spi=*/true));
  return p;
}

TEST(KmsPolicy, PlainRequestGetsTheDefaultsAndTheKFlag) {
  auto d = DecideTicketPolicy(Requested(), provisioning::PolicyClass{}, Context());
  ASSERT_TRUE(d.ok()) << d.error().detail;
  // No TRe and no key request: the KMS chose both, so it changed the desired
  // policy and KEMAC (RFC 6043 §6.10 K flag).
  EXPECT_TRUE(d->changed);
  EXPECT_EQ(d->granted.flags, kPlainFlags | mikey::kFlagK);
  ASSERT_EQ(d->responders, std::vector<std::string>{"sip:bob@example.org"});
  ASSERT_EQ(d->keys.size(), 1u);
  EXPECT_EQ(d->keys[0].key_type, static_cast<uint8_t>(mikey::KeyType::kTgk));
  EXPECT_EQ(d->keys[0].key_bytes, 16u);
  // Default lifetime, IDRkms and IDRi filled in; the result is a TP Data the
  // codec accepts in a granted TICKET.
  EXPECT_EQ(GrantedEnd(d->granted), kNow + 3600s);
  auto encoded = mikey::EncodePayload(mikey::TpPayload{d->granted}, 0);
  EXPECT_TRUE(encoded.ok()) << encoded.error().ToString();
  EXPECT_TRUE(mikey::CheckTicketFlags(d->granted.flags).ok());
}

TEST(KmsPolicy, CompleteRequestIsGrantedUnchanged) {
  auto d = DecideTicketPolicy(Complete(), provisioning::PolicyClass{}, Context());
  ASSERT_TRUE(d.ok()) << d.error().detail;
  EXPECT_FALSE(d->changed);
  EXPECT_EQ(d->granted.flags, kPlainFlags);
  EXPECT_EQ(GrantedEnd(d->granted), kNow + 1800s);
}

TEST(KmsPolicy, EachChangeSetsTheKFlag) {
  // TRe added.
  auto no_tre = Complete();
  no_tre.tp_data.erase(no_tre.tp_data.begin() + 1);
  auto d = DecideTicketPolicy(no_tre, provisioning::PolicyClass{}, Context());
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->changed);
  EXPECT_NE(d->granted.flags & mikey::kFlagK, 0);
  // TRe capped.
  auto long_tre = Complete();
  long_tre.tp_data[1] = Tr(mikey::TsRole::kEnd, kNow + 100000s);
  d = DecideTicketPolicy(long_tre, provisioning::PolicyClass{}, Context());
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->changed);
  // A requested key without an SPI: the KMS assigns one.
  auto no_spi = Complete();
  no_spi.tp_data[0] = KeyRequest({{mikey::KeyType::kTgk, 16}});
  d = DecideTicketPolicy(no_spi, provisioning::PolicyClass{}, Context());
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->changed);
  EXPECT_NE(d->granted.flags & mikey::kFlagK, 0);
}

TEST(KmsPolicy, ForkingAndReuseNeedThePolicyClass) {
  provisioning::PolicyClass strict;
  strict.allow_forking = false;
  strict.allow_reuse = false;
  auto d = DecideTicketPolicy(Complete(kPlainFlags | mikey::kFlagI | mikey::kFlagJ), strict, Context());
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->changed);
  EXPECT_EQ(d->granted.flags & (mikey::kFlagI | mikey::kFlagJ), 0);
  EXPECT_NE(d->granted.flags & mikey::kFlagK, 0);

  auto allowed = DecideTicketPolicy(Complete(kPlainFlags | mikey::kFlagI | mikey::kFlagJ),
                                    provisioning::PolicyClass{}, Context());
  ASSERT_TRUE(allowed.ok());
  EXPECT_FALSE(allowed->changed);
  EXPECT_NE(allowed->granted.flags & mikey::kFlagI, 0);
}

TEST(KmsPolicy, ModeOneFlagsAndDependenciesAreRestored) {
  // D=0, E=0, F=0, G=0, H=0 and K=1 asked: the KMS sets D, E, H (¬G ⇒ H), N, O
  // and K; K from the request is ignored.
  auto d = DecideTicketPolicy(Requested(mikey::kFlagK), provisioning::PolicyClass{}, Context());
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->changed);
  const uint16_t f = d->granted.flags;
  for (uint16_t bit : {mikey::kFlagD, mikey::kFlagE, mikey::kFlagH, mikey::kFlagN, mikey::kFlagO, mikey::kFlagK}) {
    EXPECT_NE(f & bit, 0) << bit;
  }
  EXPECT_TRUE(mikey::CheckTicketFlags(f).ok());
  // Forking with a TGK forces F.
  auto fork = DecideTicketPolicy(Requested(mikey::kFlagD | mikey::kFlagE | mikey::kFlagH | mikey::kFlagI |
                                           mikey::kFlagN | mikey::kFlagO),
                                 provisioning::PolicyClass{}, Context());
  ASSERT_TRUE(fork.ok());
  EXPECT_NE(fork->granted.flags & mikey::kFlagF, 0);
  EXPECT_TRUE(fork->changed);
}

TEST(KmsPolicy, LifetimeIsCappedAndPastValidityRefused) {
  provisioning::PolicyClass c;
  c.max_lifetime_s = 600;
  auto req = Requested();
  req.tp_data.insert(req.tp_data.begin(), Tr(mikey::TsRole::kEnd, kNow + 86400s));
  auto d = DecideTicketPolicy(req, c, Context());
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->changed);
  EXPECT_EQ(GrantedEnd(d->granted), kNow + 600s);

  auto past = Requested();
  past.tp_data.insert(past.tp_data.begin(), Tr(mikey::TsRole::kEnd, kNow - 1s));
  auto refused = DecideTicketPolicy(past, c, Context());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().error_no, 15);

  auto inverted = Requested();
  inverted.tp_data.insert(inverted.tp_data.begin(), Tr(mikey::TsRole::kEnd, kNow + 60s));
  inverted.tp_data.insert(inverted.tp_data.begin(), Tr(mikey::TsRole::kStart, kNow + 120s));
  EXPECT_FALSE(DecideTicketPolicy(inverted, c, Context()).ok());
}

TEST(KmsPolicy, RekeyIntervalMustBeNtpUtc32) {
  auto req = Requested();
  req.tp_data.insert(req.tp_data.begin(), Tr(mikey::TsRole::kRekeying, kNow));  // NTP-UTC: wrong type
  auto refused = DecideTicketPolicy(req, provisioning::PolicyClass{}, Context());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().detail.find("TRr"), std::string::npos);
  req.tp_data[0] = TrPayload{static_cast<uint8_t>(mikey::TsRole::kRekeying),
                             static_cast<uint8_t>(mikey::TsType::kNtpUtc32), 300};
  auto d = DecideTicketPolicy(req, provisioning::PolicyClass{}, Context());
  ASSERT_TRUE(d.ok()) << d.error().detail;
  EXPECT_TRUE(mikey::EncodePayload(mikey::TpPayload{d->granted}, 0).ok());
}

TEST(KmsPolicy, ResponderCountIsChecked) {
  TicketPolicy none = Requested();
  none.tp_data.clear();
  auto d = DecideTicketPolicy(none, provisioning::PolicyClass{}, Context());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().error_no, 15);
  EXPECT_NE(d.error().detail.find("no responder"), std::string::npos);

  provisioning::PolicyClass two;
  two.max_responders = 2;
  TicketPolicy three = Requested();
  three.tp_data.emplace_back(Idr(mikey::IdRole::kResponder, "sip:carol@example.org"));
  three.tp_data.emplace_back(Idr(mikey::IdRole::kResponder, "sip:dave@example.org"));
  EXPECT_FALSE(DecideTicketPolicy(three, two, Context()).ok());
  three.tp_data.pop_back();
  EXPECT_TRUE(DecideTicketPolicy(three, two, Context()).ok());
}

TEST(KmsPolicy, ForeignKmsOrInitiatorInTheTpIsRefused) {
  auto other_kms = Requested();
  other_kms.tp_data.insert(other_kms.tp_data.begin(), Idr(mikey::IdRole::kKms, "kms.other.example"));
  EXPECT_FALSE(DecideTicketPolicy(other_kms, provisioning::PolicyClass{}, Context()).ok());
  auto other_i = Requested();
  other_i.tp_data.insert(other_i.tp_data.begin(), Idr(mikey::IdRole::kInitiator, "sip:mallory@example.org"));
  EXPECT_FALSE(DecideTicketPolicy(other_i, provisioning::PolicyClass{}, Context()).ok());
}

mikey::KemacPayload KeyRequest(std::vector<std::pair<mikey::KeyType, size_t>> keys, bool with_spi) {
  std::vector<mikey::KeyDataPayload> chain;
  for (auto [type, len] : keys) {
    mikey::KeyDataPayload k;
    k.key_type = static_cast<uint8_t>(type);
    k.key = SecretBytes(len);
    if (mikey::KeyTypeHasSalt(type)) k.salt = SecretBytes(14);
    if (with_spi) {
      k.kv.kv_type = static_cast<uint8_t>(mikey::KvType::kSpi);
      k.kv.spi = {0xC0, 0xFF, 0xEE, static_cast<uint8_t>(chain.size())};
    }
    chain.push_back(std::move(k));
  }
  auto plain = mikey::EncodeKeyDataChain(chain);
  EXPECT_TRUE(plain.ok());
  return mikey::KemacPayload{0, mikey::Bytes(plain->begin(), plain->end()), 0, {}};
}

TEST(KmsPolicy, RequestedKeysAreHonouredWithinLimits) {
  auto req = Requested();
  req.tp_data.insert(req.tp_data.begin(),
                     KeyRequest({{mikey::KeyType::kTgk, 32}, {mikey::KeyType::kTekSalt, 16}}));
  auto d = DecideTicketPolicy(req, provisioning::PolicyClass{}, Context());
  ASSERT_TRUE(d.ok()) << d.error().detail;
  ASSERT_EQ(d->keys.size(), 2u);
  EXPECT_EQ(d->keys[0].key_bytes, 32u);
  EXPECT_EQ(d->keys[1].salt_bytes, 14u);
  // The KEMAC never appears in the granted policy (§6.10).
  for (const auto& item : d->granted.tp_data) EXPECT_FALSE(std::holds_alternative<mikey::KemacPayload>(item));

  provisioning::PolicyClass one;
  one.max_keys = 1;
  EXPECT_FALSE(DecideTicketPolicy(req, one, Context()).ok());
  auto mpk = Requested();
  mpk.tp_data.insert(mpk.tp_data.begin(), KeyRequest({{mikey::KeyType::kMpk, 32}}));
  EXPECT_FALSE(DecideTicketPolicy(mpk, provisioning::PolicyClass{}, Context()).ok());
  auto tiny = Requested();
  tiny.tp_data.insert(tiny.tp_data.begin(), KeyRequest({{mikey::KeyType::kTgk, 8}}));
  EXPECT_FALSE(DecideTicketPolicy(tiny, provisioning::PolicyClass{}, Context()).ok());
}

TEST(KmsReplayCache, RefusesRepeatsUntilExpiry) {
  ReplayCache cache(100);
  const auto t0 = ReplayCache::Clock::time_point(1000s);
  const uint8_t a[] = {1, 2, 3};
  const uint8_t b[] = {1, 2, 4};
  EXPECT_TRUE(cache.Insert(a, t0 + 10s, t0).ok());
  EXPECT_EQ(cache.Insert(a, t0 + 11s, t0 + 1s).code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(cache.Insert(b, t0 + 5s, t0 + 1s).ok());
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_TRUE(cache.Insert(a, t0 + 30s, t0 + 10s).ok());  // expired and forgotten
  EXPECT_LE(cache.size(), 2u);  // expired entries are dropped lazily, per shard
}

TEST(KmsReplayCache, FullCacheRefusesInsteadOfForgetting) {
  ReplayCache cache(16);  // one entry per shard
  const auto t0 = ReplayCache::Clock::time_point(1000s);
  size_t accepted = 0, exhausted = 0;
  for (uint32_t i = 0; i < 200; ++i) {
    std::array<uint8_t, 2> key{};
    StoreBe16(static_cast<uint16_t>(i), key);
    Status s = cache.Insert(key, t0 + 60s, t0);
    if (s.ok()) ++accepted;
    if (s.code() == StatusCode::kResourceExhausted) ++exhausted;
  }
  EXPECT_GE(accepted, 8u);  // each key lands in one of 16 shards of capacity 1
  EXPECT_LE(accepted, 16u);
  EXPECT_EQ(accepted + exhausted, 200u);
  EXPECT_LE(cache.size(), 16u);
  const uint8_t late[] = {0xAA, 0xBB};
  EXPECT_TRUE(cache.Insert(late, t0 + 120s, t0 + 61s).ok());  // room again after expiry
}

TEST(KmsTimestamps, NtpRoundTripAndEras) {
  const TimePoint t = TimePoint(std::chrono::milliseconds(1764620000123));  // 2025-12-01
  const uint64_t ntp = NtpFromTime(t);
  auto back = TimeFromTimestamp(static_cast<uint8_t>(mikey::TsType::kNtpUtc), ntp);
  ASSERT_TRUE(back);
  EXPECT_LT(std::chrono::abs(*back - t), 1ms);
  // RFC 4330 §3: seconds with the MSB clear are in era 1 (after 2036-02-07).
  const TimePoint after_2036 = TimePoint(std::chrono::seconds(2100000000));
  auto era1 = TimeFromTimestamp(0, NtpFromTime(after_2036));
  ASSERT_TRUE(era1);
  EXPECT_EQ(std::chrono::floor<std::chrono::seconds>(*era1), after_2036);
  // NTP-UTC-32 carries the seconds only; COUNTER is not a time.
  EXPECT_EQ(TimestampValue(mikey::TsType::kNtpUtc32, t), ntp >> 32);
  EXPECT_FALSE(TimeFromTimestamp(static_cast<uint8_t>(mikey::TsType::kCounter), 5));
  EXPECT_FALSE(TimeFromTimestamp(static_cast<uint8_t>(mikey::TsType::kNtpUtc32), uint64_t{1} << 33));
  // A known value: 1900 + 3913056000 s = 2024-01-01T00:00:00Z.
  EXPECT_EQ(NtpFromTime(TimePoint(std::chrono::seconds(1704067200))), uint64_t{3913056000} << 32);
}

TEST(KmsUserDirectory, ConfigAndTokenUsers) {
  provisioning::KmsConfig config;
  config.kms_identity = "kms.example.org";
  config.policy_classes["default"] = provisioning::PolicyClass{};
  provisioning::PolicyClass gold;
  gold.max_responders = 100;
  config.policy_classes["gold"] = gold;
  config.users.push_back(provisioning::UserConfig{{"sip:alice@example.org", "tel:+15551234"}, std::nullopt, "gold"});
  config.users.push_back(provisioning::UserConfig{{"sip:ghost@example.org"}, std::nullopt, ""});
  config.groups.push_back(provisioning::GroupConfig{"sip:team@example.org", {"sip:bob@example.org"}});
  std::vector<TokenUser> token = {
      {{1, 1}, {"sip:alice@example.org"}},
      {{2, 2}, {"sip:bob@example.org"}},
      {{3, 3}, {"sip:bob@example.org"}},  // clash
  };
  std::vector<std::string> warnings;
  auto dir = UserDirectory::Build(config, token, warnings);
  ASSERT_EQ(dir->size(), 2u);
  ASSERT_EQ(warnings.size(), 2u);  // ghost has no PSK; the second bob clashes
  const UserRecord* alice = dir->FindByIdentity("tel:+15551234");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->policy_class, "gold");
  EXPECT_EQ(alice->policy.max_responders, 100u);
  EXPECT_EQ(dir->FindByPskId(std::vector<uint8_t>{1, 1}), alice);
  const UserRecord* bob = dir->FindByIdentity("sip:bob@example.org");
  ASSERT_NE(bob, nullptr);
  EXPECT_EQ(bob->policy_class, "default");
  EXPECT_EQ(bob->name, "psk:0202");
  EXPECT_TRUE(dir->IsGroupMember("sip:team@example.org", "sip:bob@example.org"));
  EXPECT_FALSE(dir->IsGroupMember("sip:team@example.org", "sip:alice@example.org"));
  EXPECT_EQ(dir->FindByIdentity("sip:ghost@example.org"), nullptr);

  config.token_users = false;
  warnings.clear();
  EXPECT_EQ(UserDirectory::Build(config, token, warnings)->size(), 1u);
}

}  // namespace
}  // namespace tkms::kms
