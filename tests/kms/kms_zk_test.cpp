// KMS-to-KMS resolution (TS 33.328 B.2.2.3, RFC 6043 §10) and resolution by
// an authorised network function (TR 33.828 step 5), in-process: two Kms
// instances on one SoftHSM2 token. KMS_I is the fixture's kms.example.org,
// which issues alice's tickets; KMS_R is kms.b.example.org, whose bob brings
// the ticket to it. The Zk transport is a fake PeerKmsClient that hands the
// forwarded bytes to KMS_I as the Zk listener would (Interface::kZk, a peer
// KMS client), so every byte KMS_R sends and reads is the real thing. The
// UE's side is the project's UE library, which knows nothing of Zk: a
// re-encoded RESOLVE_RESP must look like any other to it.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "firmware/kms/exchange.h"
#include "firmware/kms/payload_helpers.h"
#include "firmware/mikey/codec.h"
#include "tests/kms/kms_fixture.h"

namespace tkms::kms {
namespace {

using namespace test;

constexpr char kIssuer[] = "kms.example.org";
constexpr char kResponderKms[] = "kms.b.example.org";
constexpr char kBob[] = "sip:bob@example.org";

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

mikey::DecodeOptions Lenient() {
  mikey::DecodeOptions o;
  o.check_composition = false;
  return o;
}

// Hands the forwarded request to KMS_I over a simulated Zk, or answers what
// the test says.
class FakePeers final : public PeerKmsClient {
 public:
  Result<std::vector<uint8_t>> Resolve(const std::string& kms_uri, ByteSpan resolve_init) override {
    ++calls;
    asked_kms = kms_uri;
    sent.assign(resolve_init.begin(), resolve_init.end());
    if (answer) return answer(resolve_init);
    return Unavailable("no peer");
  }
  std::function<Result<std::vector<uint8_t>>(ByteSpan)> answer;
  int calls = 0;
  std::string asked_kms;
  Bytes sent;
};

// An unprotected RESOLVE_INIT_PSK as the contract describes it (docs/zk.md),
// built here payload by payload: HDR, T, RAND, [IDRr], IDRkms, TICKET, V NULL.
Bytes UnprotectedResolveInit(const mikey::TicketPayload& ticket, std::optional<std::string> responder,
                             uint64_t t_value) {
  mikey::Message m;
  m.header.version = 1;
  m.header.data_type = static_cast<uint8_t>(mikey::DataType::kResolveInitPsk);
  m.header.prf_func = 0;
  m.header.csb_id = 0x0badcafe;
  m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kEmpty);
  m.payloads.emplace_back(mikey::TPayload{static_cast<uint8_t>(mikey::TsType::kNtpUtc), t_value});
  m.payloads.emplace_back(mikey::RandrPayload{static_cast<uint8_t>(mikey::RandRole::kResponder), Bytes(16, 0x5a)});
  if (responder) m.payloads.emplace_back(UriIdr(mikey::IdRole::kResponder, *responder));
  m.payloads.emplace_back(UriIdr(mikey::IdRole::kKms, kIssuer));
  m.payloads.emplace_back(ticket);
  m.payloads.emplace_back(mikey::VPayload{0, {}});
  auto bytes = mikey::Encode(m);
  EXPECT_TRUE(bytes.ok());
  return bytes.ok() ? *bytes : Bytes();
}

RequestContext ZkContext(ZkClientKind kind, std::string name) {
  RequestContext c;
  c.type = RequestType::kTicketResolve;
  c.interface = Interface::kZk;
  c.zk_client = kind;
  c.zk_client_name = std::move(name);
  return c;
}

class KmsZkTest : public KmsServiceTest {
 protected:
  void SetUp() override {
    KmsServiceTest::SetUp();
    if (HasFatalFailure()) return;
    responder_kms_ = std::make_unique<Kms>(*keys_, *clock_, Snapshot(ResponderConfig(true)));
    responder_kms_->SetPeerClient(&peers_);
    peers_.answer = [this](ByteSpan bytes) -> Result<std::vector<uint8_t>> {
      KmsReply reply = kms_->Handle(ZkContext(ZkClientKind::kPeerKms, kResponderKms), bytes);
      issuer_reply_ = reply;
      if (reply.outcome != Outcome::kOk && reply.outcome != Outcome::kMikeyError) {
        return Unavailable("the peer answered HTTP 5xx/4xx: " + reply.detail);
      }
      return reply.mikey;
    };
  }

  static provisioning::KmsConfig ResponderConfig(bool with_relation) {
    provisioning::KmsConfig config = BaseConfig();
    config.kms_identity = kResponderKms;
    if (with_relation) {
      config.trust_relations.push_back(provisioning::TrustRelationConfig{kIssuer, "127.0.0.1:1", "", "ca"});
    }
    return config;
  }

  // bob's RESOLVE_INIT_PSK to his own KMS, kms.b.example.org.
  Result<ue::ResolveInit, ue::UeError> BobAtResponderKms(const mikey::TicketPayload& ticket) {
    auto params = BobResolve(ticket);
    params.kms.id = B(kResponderKms);
    return ue::BuildResolveInitPsk(ue_provider_, params);
  }

  KmsReply AtResponderKms(ByteSpan bytes) {
    RequestContext context;
    context.type = RequestType::kTicketResolve;
    return responder_kms_->Handle(context, bytes);
  }

  FakePeers peers_;
  std::unique_ptr<Kms> responder_kms_;
  KmsReply issuer_reply_;
};

// The payload of type T in a decoded message, or nullptr.
template <typename T>
const T* Find(const mikey::Message& m) {
  for (const auto& p : m.payloads) {
    if (const auto* t = std::get_if<T>(&p)) return t;
  }
  return nullptr;
}

TEST_F(KmsZkTest, ResponderOfAnotherDomainGetsTheTicketsKeys) {
  const auto grant = Grant();
  auto resolve = BobAtResponderKms(grant.ticket);
  ASSERT_TRUE(resolve.ok());
  const KmsReply reply = AtResponderKms(resolve->bytes);
  ASSERT_EQ(reply.outcome, Outcome::kOk) << reply.detail;
  EXPECT_EQ(peers_.calls, 1);
  EXPECT_EQ(peers_.asked_kms, kIssuer);
  // The UE library reads the re-encoded answer like any RESOLVE_RESP: V
  // verifies with bob's keys, the KEMAC opens, IDRkms is KMS_R.
  auto resolved = ue::ParseResolveResp(ue_provider_, reply.mikey, *resolve);
  ASSERT_TRUE(resolved.ok()) << resolved.error().ToString();
  EXPECT_EQ(resolved->mpki, grant.mpki);
  ASSERT_TRUE(resolved->kms_identity.has_value());
  EXPECT_EQ(*resolved->kms_identity, B(kResponderKms));

  // Step 6: what went to KMS_I is unprotected, names bob and the issuer,
  // and carries the ticket as received.
  auto sent = mikey::Decode(peers_.sent, Lenient());
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(sent->header.data_type, static_cast<uint8_t>(mikey::DataType::kResolveInitPsk));
  EXPECT_EQ(sent->header.csb_id, resolve->csb_id);
  const auto* v = std::get_if<mikey::VPayload>(&sent->payloads.back());
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->auth_alg, static_cast<uint8_t>(mikey::MacAlg::kNull));
  EXPECT_TRUE(v->mac.empty());
  const auto* ticket = Find<mikey::TicketPayload>(*sent);
  ASSERT_NE(ticket, nullptr);
  EXPECT_EQ(*ticket, grant.ticket);
  std::vector<std::string> idrs;
  for (const auto& p : sent->payloads) {
    if (const auto* idr = std::get_if<mikey::IdrPayload>(&p)) idrs.push_back(std::to_string(idr->role) + ":" + IdText(idr->data));
  }
  EXPECT_EQ(idrs, (std::vector<std::string>{"2:" + std::string(kBob), "3:" + std::string(kIssuer)}));

  // Step 10: what KMS_I answered is neither MACed nor enciphered.
  ASSERT_EQ(issuer_reply_.outcome, Outcome::kOk);
  auto answer = mikey::Decode(issuer_reply_.mikey, Lenient());
  ASSERT_TRUE(answer.ok());
  const auto* kemac = Find<mikey::KemacPayload>(*answer);
  ASSERT_NE(kemac, nullptr);
  EXPECT_EQ(kemac->encr_alg, static_cast<uint8_t>(mikey::EncrAlg::kNull));
  EXPECT_EQ(kemac->mac_alg, static_cast<uint8_t>(mikey::MacAlg::kNull));
  auto keys = mikey::DecodeKeyDataChain(kemac->encr_data);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(SecretBytes(keys->front().key.begin(), keys->front().key.end()), grant.mpki);
  EXPECT_EQ(std::get<mikey::VPayload>(answer->payloads.back()).auth_alg, static_cast<uint8_t>(mikey::MacAlg::kNull));
  EXPECT_EQ(issuer_reply_.ticket_initiator, "sip:alice@example.org");
  EXPECT_EQ(issuer_reply_.ticket_responders, kBob);
}

TEST_F(KmsZkTest, IssuersMikeyErrorReachesTheResponderAuthenticatedWithTheSameNumber) {
  // A ticket for carol: KMS_I finds bob is not a recipient (error 7).
  const auto grant = Grant(0, "sip:carol@example.org");
  auto resolve = BobAtResponderKms(grant.ticket);
  ASSERT_TRUE(resolve.ok());
  const KmsReply reply = AtResponderKms(resolve->bytes);
  ASSERT_EQ(reply.outcome, Outcome::kMikeyError) << reply.detail;
  EXPECT_EQ(reply.refusal, Refusal::kPeerRefused);
  EXPECT_EQ(issuer_reply_.refusal, Refusal::kNotRecipient);
  ASSERT_TRUE(reply.mikey_error.has_value());
  EXPECT_EQ(*reply.mikey_error, static_cast<uint8_t>(mikey::ErrorNo::kInvalidId));
  // Authenticated towards bob: the Error carries a V.
  auto err = mikey::Decode(reply.mikey, Lenient());
  ASSERT_TRUE(err.ok());
  const auto* v = std::get_if<mikey::VPayload>(&err->payloads.back());
  ASSERT_NE(v, nullptr);
  EXPECT_NE(v->auth_alg, static_cast<uint8_t>(mikey::MacAlg::kNull));
  auto parsed = ue::ParseResolveResp(ue_provider_, reply.mikey, *resolve);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().ToString().find("MIKEY error 7"), std::string::npos) << parsed.error().ToString();
}

TEST_F(KmsZkTest, ForeignTicketWithoutTrustRelationIsError14AndNothingIsSent) {
  responder_kms_->SetSnapshot(Snapshot(ResponderConfig(false)));
  const auto grant = Grant();
  auto resolve = BobAtResponderKms(grant.ticket);
  ASSERT_TRUE(resolve.ok());
  const KmsReply reply = AtResponderKms(resolve->bytes);
  EXPECT_EQ(reply.outcome, Outcome::kMikeyError);
  EXPECT_EQ(reply.refusal, Refusal::kNoTrustRelation);
  EXPECT_EQ(reply.mikey_error, static_cast<uint8_t>(mikey::ErrorNo::kInvalidTicket));
  EXPECT_NE(reply.detail.find("no trust relation"), std::string::npos) << reply.detail;
  EXPECT_EQ(peers_.calls, 0);
}

TEST_F(KmsZkTest, PeerThatCannotAnswerIs503) {
  const auto grant = Grant();
  auto resolve = BobAtResponderKms(grant.ticket);
  ASSERT_TRUE(resolve.ok());
  peers_.answer = [](ByteSpan) -> Result<std::vector<uint8_t>> { return Unavailable("connect timed out"); };
  KmsReply reply = AtResponderKms(resolve->bytes);
  EXPECT_EQ(reply.outcome, Outcome::kUnavailable);
  EXPECT_EQ(reply.refusal, Refusal::kPeerUnavailable);
  EXPECT_NE(reply.detail.find("connect timed out"), std::string::npos);
  // A relation removed while the request was on its way: error 14.
  peers_.answer = [](ByteSpan) -> Result<std::vector<uint8_t>> { return NotFound("no trust relation"); };
  auto again = BobAtResponderKms(grant.ticket);
  ASSERT_TRUE(again.ok());
  reply = AtResponderKms(again->bytes);
  EXPECT_EQ(reply.refusal, Refusal::kNoTrustRelation);
  EXPECT_EQ(reply.mikey_error, 14);
}

TEST_F(KmsZkTest, ProtectedOrGarbledPeerAnswersAreNotTrusted) {
  const auto grant = Grant();
  // KMS_I answering with bob's *own* protected RESOLVE_RESP shape (a KMS
  // that MACs its answer) is not the unprotected form: 503, not passed on.
  auto direct = ue::BuildResolveInitPsk(ue_provider_, BobResolve(grant.ticket));
  ASSERT_TRUE(direct.ok());
  const KmsReply protected_answer = Send(RequestType::kTicketResolve, direct->bytes);
  ASSERT_EQ(protected_answer.outcome, Outcome::kOk);
  const std::vector<std::vector<uint8_t>> answers = {protected_answer.mikey, {0x01, 0x02, 0x03}, {}};
  for (const auto& a : answers) {
    peers_.answer = [a](ByteSpan) -> Result<std::vector<uint8_t>> { return a; };
    auto resolve = BobAtResponderKms(grant.ticket);
    ASSERT_TRUE(resolve.ok());
    clock_->Advance(std::chrono::seconds(1));
    const KmsReply reply = AtResponderKms(resolve->bytes);
    EXPECT_EQ(reply.outcome, Outcome::kUnavailable) << reply.detail;
    EXPECT_EQ(reply.refusal, Refusal::kPeerUnavailable);
  }
}

TEST_F(KmsZkTest, UnprotectedResolveInitIsRefusedOnUa) {
  const auto grant = Grant();
  auto resolve = BobAtResponderKms(grant.ticket);
  ASSERT_TRUE(resolve.ok());
  ASSERT_EQ(AtResponderKms(resolve->bytes).outcome, Outcome::kOk);
  // What KMS_R sent to KMS_I, sent to KMS_I's Ua instead.
  const KmsReply reply = Send(RequestType::kTicketResolve, peers_.sent);
  EXPECT_EQ(reply.outcome, Outcome::kMikeyError);
  EXPECT_EQ(reply.mikey_error, static_cast<uint8_t>(mikey::ErrorNo::kInvalidMac));
  EXPECT_EQ(reply.refusal, Refusal::kAuthentication);
}

TEST_F(KmsZkTest, ZkTakesOnlyUnprotectedMessagesFromKnownClientsOnce) {
  const auto grant = Grant();
  // A UE's protected RESOLVE_INIT on Zk.
  auto direct = ue::BuildResolveInitPsk(ue_provider_, BobResolve(grant.ticket));
  ASSERT_TRUE(direct.ok());
  KmsReply reply = kms_->Handle(ZkContext(ZkClientKind::kPeerKms, kResponderKms), direct->bytes);
  EXPECT_EQ(reply.refusal, Refusal::kZkClient);
  EXPECT_EQ(reply.mikey_error, static_cast<uint8_t>(mikey::ErrorNo::kInvalidMac));
  // No client (the listener would have answered 403).
  auto resolve = BobAtResponderKms(grant.ticket);
  ASSERT_TRUE(resolve.ok());
  ASSERT_EQ(AtResponderKms(resolve->bytes).outcome, Outcome::kOk);
  reply = kms_->Handle(ZkContext(ZkClientKind::kNone, ""), peers_.sent);
  EXPECT_EQ(reply.refusal, Refusal::kZkClient);
  // The same forwarded message again: a replay.
  reply = kms_->Handle(ZkContext(ZkClientKind::kPeerKms, kResponderKms), peers_.sent);
  EXPECT_EQ(reply.refusal, Refusal::kReplay);
  // ticketrequest is not served on Zk.
  RequestContext request_on_zk = ZkContext(ZkClientKind::kPeerKms, kResponderKms);
  request_on_zk.type = RequestType::kTicketRequest;
  EXPECT_EQ(kms_->Handle(request_on_zk, peers_.sent).outcome, Outcome::kBadRequest);
}

// A peer's RESOLVE_INIT without IDRr names no responder: refused. With it,
// the hand-made message (not KMS_R's code) is served.
TEST_F(KmsZkTest, PeerKmsMustNameTheResponder) {
  const auto grant = Grant();
  const uint64_t now = *TimestampValue(mikey::TsType::kNtpUtc, clock_->Now());
  KmsReply reply = kms_->Handle(ZkContext(ZkClientKind::kPeerKms, kResponderKms),
                                UnprotectedResolveInit(grant.ticket, std::nullopt, now));
  EXPECT_EQ(reply.refusal, Refusal::kZkClient);
  EXPECT_EQ(reply.mikey_error, static_cast<uint8_t>(mikey::ErrorNo::kInvalidId));
  reply = kms_->Handle(ZkContext(ZkClientKind::kPeerKms, kResponderKms), UnprotectedResolveInit(grant.ticket, kBob, now));
  EXPECT_EQ(reply.outcome, Outcome::kOk) << reply.detail;
}

TEST_F(KmsZkTest, NetworkFunctionGetsTheUnforkedKeysOfAnyTicketOfThisKms) {
  const auto grant = Grant(mikey::kFlagI);  // forking: MPKr travels unforked
  const uint64_t now = *TimestampValue(mikey::TsType::kNtpUtc, clock_->Now());
  const KmsReply reply = kms_->Handle(ZkContext(ZkClientKind::kNetworkFunction, "li-gw-1"),
                                      UnprotectedResolveInit(grant.ticket, std::nullopt, now));
  ASSERT_EQ(reply.outcome, Outcome::kOk) << reply.detail;
  EXPECT_EQ(reply.ticket_initiator, "sip:alice@example.org");
  EXPECT_EQ(reply.ticket_responders, kBob);
  auto answer = mikey::Decode(reply.mikey, Lenient());
  ASSERT_TRUE(answer.ok());
  const auto* kemac = Find<mikey::KemacPayload>(*answer);
  ASSERT_NE(kemac, nullptr);
  auto keys = mikey::DecodeKeyDataChain(kemac->encr_data);
  ASSERT_TRUE(keys.ok());
  ASSERT_GE(keys->size(), 2u);
  EXPECT_EQ(SecretBytes((*keys)[0].key.begin(), (*keys)[0].key.end()), grant.mpki);
  EXPECT_EQ((*keys)[1].key_type, static_cast<uint8_t>(mikey::KeyType::kMpk));  // MPKr, unforked
  EXPECT_EQ(Find<mikey::RandrPayload>(*answer), nullptr);                     // nothing forked
  // Another KMS does not resolve this KMS's tickets for its own network
  // functions (the message names kms.example.org: wrong KMS).
  const KmsReply elsewhere = responder_kms_->Handle(ZkContext(ZkClientKind::kNetworkFunction, "li-gw-1"),
                                                    UnprotectedResolveInit(grant.ticket, std::nullopt, now));
  EXPECT_EQ(elsewhere.refusal, Refusal::kWrongKms);
  EXPECT_EQ(peers_.calls, 0);
}

// ReadPeerAnswer against hand-made answers: the valid one, then one mutation
// per rule.
class PeerAnswerTest : public ::testing::Test {
 protected:
  static PeerQuery Query(bool forking = false) { return PeerQuery{0x1234, 1, kIssuer, kBob, forking}; }

  // An empty message with the header the query expects.
  static mikey::Message Answer(mikey::DataType type) {
    mikey::Message m;
    m.header.version = 1;
    m.header.data_type = static_cast<uint8_t>(type);
    m.header.prf_func = 1;
    m.header.csb_id = 0x1234;
    m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kEmpty);
    return m;
  }

  static mikey::Message Valid(bool forked) {
    mikey::Message m = Answer(mikey::DataType::kResolveResp);
    m.payloads.emplace_back(mikey::TPayload{0, 0x1122334455667788});
    m.payloads.emplace_back(UriIdr(mikey::IdRole::kKms, kIssuer));
    std::vector<mikey::KeyDataPayload> keys = {
        MpkKeyData(SecretBytes(16, 0x11), {1, 2, 3, 4}, kMpkiSpiSuffix),
        MpkKeyData(SecretBytes(16, 0x12), {1, 2, 3, 4}, kMpkrSpiSuffix),
        mikey::KeyDataPayload{static_cast<uint8_t>(mikey::KeyType::kTgk), SecretBytes(16, 0x22), std::nullopt,
                              SpiWithSuffix({1, 2, 3, 4}, 0x10)}};
    auto chain = mikey::EncodeKeyDataChain(keys);
    EXPECT_TRUE(chain.ok());
    mikey::KemacPayload kemac;
    kemac.encr_data.assign(chain->begin(), chain->end());
    m.payloads.emplace_back(std::move(kemac));
    if (forked) {
      m.payloads.emplace_back(UriIdr(mikey::IdRole::kResponder, kBob));
      m.payloads.emplace_back(mikey::RandrPayload{static_cast<uint8_t>(mikey::RandRole::kKms), Bytes(16, 0x33)});
    }
    m.payloads.emplace_back(mikey::VPayload{0, {}});
    return m;
  }

  static StepResult<ResponseContent> Read(const mikey::Message& m, bool forking = false) {
    auto bytes = mikey::Encode(m);
    EXPECT_TRUE(bytes.ok());
    return ReadPeerAnswer(*bytes, Query(forking));
  }
};

TEST_F(PeerAnswerTest, ValidAnswersGiveTheirKeys) {
  for (bool forked : {false, true}) {
    auto content = Read(Valid(forked), forked);
    ASSERT_TRUE(content.ok()) << content.error().detail;
    ASSERT_EQ(content->kemac_keys.size(), 3u);
    EXPECT_EQ(content->kemac_keys[2].key, SecretBytes(16, 0x22));
    EXPECT_EQ(content->after_kemac.size(), forked ? 2u : 0u);
    // The other way round: refused.
    auto mismatch = Read(Valid(forked), !forked);
    ASSERT_FALSE(mismatch.ok());
    EXPECT_EQ(mismatch.error().refusal, Refusal::kPeerUnavailable);
    EXPECT_NE(mismatch.error().detail.find("fork"), std::string::npos) << mismatch.error().detail;
  }
  // A forked answer with a short RANDRkms.
  mikey::Message short_rand = Valid(true);
  std::get<mikey::RandrPayload>(short_rand.payloads[short_rand.payloads.size() - 2]).rand.resize(8);
  auto refused = Read(short_rand, true);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().detail.find("RANDRkms"), std::string::npos) << refused.error().detail;
}

TEST_F(PeerAnswerTest, EveryDeviationIsRefused) {
  struct Case {
    const char* what;
    std::function<void(mikey::Message&)> change;
    const char* detail;
  };
  auto kemac = [](mikey::Message& m) -> mikey::KemacPayload& { return std::get<mikey::KemacPayload>(m.payloads[2]); };
  const Case cases[] = {
      {"wrong issuer", [](mikey::Message& m) { m.payloads[1] = UriIdr(mikey::IdRole::kKms, "kms.evil.org"); },
       "names KMS"},
      {"enciphered KEMAC", [&](mikey::Message& m) { kemac(m).encr_alg = 1; }, "KEMAC is not encryption NULL"},
      {"MACed KEMAC",
       [&](mikey::Message& m) {
         kemac(m).mac_alg = 1;
         kemac(m).mac = Bytes(20, 0);
       },
       "KEMAC is not encryption NULL"},
      {"MACed V", [](mikey::Message& m) { m.payloads.back() = mikey::VPayload{2, Bytes(32, 0)}; }, "V is not"},
      {"CSB ID", [](mikey::Message& m) { m.header.csb_id = 9; }, "CSB ID"},
      {"data type", [](mikey::Message& m) { m.header.data_type = static_cast<uint8_t>(mikey::DataType::kRequestResp); },
       "data type"},
      {"no KEMAC", [](mikey::Message& m) { m.payloads.erase(m.payloads.begin() + 2); }, "no KEMAC"},
      {"no IDRkms", [](mikey::Message& m) { m.payloads.erase(m.payloads.begin() + 1); }, "no IDRkms"},
      {"two T", [](mikey::Message& m) { m.payloads.insert(m.payloads.begin(), mikey::TPayload{0, 1}); },
       "repeated"},
      {"IDRr without RANDRkms",
       [](mikey::Message& m) { m.payloads.insert(m.payloads.end() - 1, UriIdr(mikey::IdRole::kResponder, kBob)); },
       "together"},
      {"someone else's IDRr",
       [](mikey::Message& m) {
         m.payloads.insert(m.payloads.end() - 1, UriIdr(mikey::IdRole::kResponder, "sip:eve@example.org"));
         m.payloads.insert(m.payloads.end() - 1,
                           mikey::RandrPayload{static_cast<uint8_t>(mikey::RandRole::kKms), Bytes(16, 0)});
       },
       "not the responder"},
      {"no keys", [&](mikey::Message& m) { kemac(m).encr_data.clear(); }, "keys"},
      {"first key not MPK",
       [&](mikey::Message& m) {
         std::vector<mikey::KeyDataPayload> keys(1);
         keys[0].key_type = static_cast<uint8_t>(mikey::KeyType::kTgk);
         keys[0].key = SecretBytes(16, 1);
         auto chain = mikey::EncodeKeyDataChain(keys);
         kemac(m).encr_data.assign(chain->begin(), chain->end());
       },
       "MPKi"},
  };
  for (const Case& c : cases) {
    mikey::Message m = Valid(false);
    c.change(m);
    auto content = Read(m);
    ASSERT_FALSE(content.ok()) << c.what;
    EXPECT_EQ(content.error().outcome, Outcome::kUnavailable) << c.what;
    EXPECT_EQ(content.error().refusal, Refusal::kPeerUnavailable) << c.what;
    EXPECT_NE(content.error().detail.find(c.detail), std::string::npos) << c.what << ": " << content.error().detail;
  }
}

TEST_F(PeerAnswerTest, ErrorMessagesPassTheirNumber) {
  mikey::Message m = Answer(mikey::DataType::kError);
  m.payloads.emplace_back(mikey::TPayload{0, 1});
  m.payloads.emplace_back(mikey::ErrPayload{15});
  auto content = Read(m);
  ASSERT_FALSE(content.ok());
  EXPECT_EQ(content.error().outcome, Outcome::kMikeyError);
  EXPECT_EQ(content.error().error_no, 15);
  EXPECT_EQ(content.error().refusal, Refusal::kPeerRefused);
  m.payloads.pop_back();
  content = Read(m);
  ASSERT_FALSE(content.ok());
  EXPECT_EQ(content.error().outcome, Outcome::kUnavailable);
}

}  // namespace
}  // namespace tkms::kms
