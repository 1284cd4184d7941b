// Integration tests: a real tkmsd (--dev: SoftHSM2 token, demo users alice
// and bob) on free loopback ports, driven over HTTP by the project's UE client
// (tools/ue). Every exchange of RFC 6043 §4.2.1 / §4.2.3 over TS 33.328 Annex
// A, one negative test per rejection class (HTTP status and, where a MIKEY
// Error comes back, its error number), each followed by a valid request that
// must still succeed. The daemon's module is the test-only fault-injection
// shim (tests/fault_pkcs11) in front of SoftHSM2, so "token unavailable" is a
// real PKCS#11 failure. Every test ends with SIGTERM and expects exit 0, and
// checks that the daemon's log holds no PSK or PIN.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "firmware/base/secret_files.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/integration/tkmsd_fixture.h"
#include "tests/integration/tkmsd_process.h"
#include "tools/ue/kms_client.h"

namespace tkms::test {
namespace {

using namespace std::chrono_literals;

int64_t UnixNanos(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// ---- exchanges ---------------------------------------------------------------

TEST_F(TkmsdTest, TicketRequestAndResolveAgreeOnTheKeys) {
  auto client = Client();
  auto grant = client.RequestTicket(AliceRequest());
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  EXPECT_TRUE(grant->policy_changed);  // the KMS added TRe and chose the keys (K flag)
  ASSERT_EQ(grant->session_keys.size(), 1u);  // the default single TGK
  EXPECT_EQ(grant->session_keys[0].key_type, static_cast<uint8_t>(mikey::KeyType::kTgk));
  EXPECT_EQ(grant->kms_identity, B(kKmsId));

  ue::TransferInitParams t;
  t.initiator.id = B(kAlice);
  t.responder.id = B(kBob);
  auto transfer = ue::BuildTransferInit(provider_, *grant, t);
  ASSERT_TRUE(transfer.ok()) << transfer.error().ToString();

  auto resolved = client.ResolveTicket(Resolve(transfer->ticket, bob_psk_));
  ASSERT_TRUE(resolved.ok()) << resolved.error().ToString();
  EXPECT_EQ(resolved->mpki, grant->mpki);
  ASSERT_EQ(resolved->session_keys.size(), 1u);
  EXPECT_EQ(resolved->session_keys[0].key, grant->session_keys[0].key);
  EXPECT_EQ(resolved->session_keys[0].kv, grant->session_keys[0].kv);  // same SPI both sides
  EXPECT_FALSE(resolved->mpkr_forked);
  EXPECT_TRUE(ue::VerifyTransferInit(provider_, transfer->bytes, *resolved).ok());

  // Reuse: the KMS is stateless, the same ticket resolves again.
  auto again = client.ResolveTicket(Resolve(transfer->ticket, bob_psk_));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->mpki, grant->mpki);
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketrequest\",outcome=\"ok\"}"), 1);
  EXPECT_EQ(Metric("tkms_requests_total{type=\"ticketresolve\",outcome=\"ok\"}"), 2);
}

TEST_F(TkmsdTest, ForkingGivesEachEndPointItsOwnKeys) {
  auto client = Client();
  auto request = AliceRequest();
  request.policy.flags |= mikey::kFlagI;
  auto grant = client.RequestTicket(request);
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  ASSERT_NE(grant->policy.flags & mikey::kFlagI, 0);
  ASSERT_TRUE(grant->mpkr);
  ue::TransferInitParams t;
  t.initiator.id = B(kAlice);
  t.responder.id = B(kBob);
  auto transfer = ue::BuildTransferInit(provider_, *grant, t);
  ASSERT_TRUE(transfer.ok());
  ASSERT_TRUE(transfer->ticket.initiator_data);

  // Two end-points of bob resolve the same ticket.
  auto one = client.ResolveTicket(Resolve(transfer->ticket, bob_psk_));
  auto two = client.ResolveTicket(Resolve(transfer->ticket, bob_psk_));
  ASSERT_TRUE(one.ok()) << one.error().ToString();
  ASSERT_TRUE(two.ok()) << two.error().ToString();
  ASSERT_TRUE(one->mpkr_forked && two->mpkr_forked && one->randrkms && two->randrkms && one->responder);
  EXPECT_NE(*one->randrkms, *two->randrkms);
  EXPECT_NE(*one->mpkr_forked, *two->mpkr_forked);
  EXPECT_NE(one->session_keys[0].key, two->session_keys[0].key);
  EXPECT_EQ(one->responder->data, B(kBob));
  EXPECT_TRUE(ue::VerifyTransferInit(provider_, transfer->bytes, *one).ok());

  // The initiator derives each end-point's MPKr' and TGK' (RFC 6043 §5.1.1)
  // from IDRr and RANDRkms and gets the same keys as the KMS gave.
  const auto prf = static_cast<mikey::PrfFunc>(grant->policy.prf_func);
  auto mpkr = provider_.ImportTransientKey(*grant->mpkr);
  auto tgk = provider_.ImportTransientKey(grant->session_keys[0].key);
  ASSERT_TRUE(mpkr.ok() && tgk.ok());
  for (const auto* r : {&*one, &*two}) {
    auto m = mikey::crypto::DeriveForkedKey(provider_, prf, **mpkr, mikey::crypto::ForkedKeyType::kMpkr,
                                            r->responder->data, *r->randrkms);
    auto g = mikey::crypto::DeriveForkedKey(provider_, prf, **tgk, mikey::crypto::ForkedKeyType::kTgk,
                                            r->responder->data, *r->randrkms);
    ASSERT_TRUE(m.ok() && g.ok());
    EXPECT_EQ(*m, *r->mpkr_forked);
    EXPECT_EQ(*g, r->session_keys[0].key);
  }

  // A TICKET whose Initiator Data was tampered with is refused (Vr).
  auto tampered = transfer->ticket;
  tampered.initiator_data->vr.mac[0] ^= 1;
  ExpectMikeyError(client.ResolveTicket(Resolve(tampered, bob_psk_)), 0, true);
  ExpectServing();
}

TEST_F(TkmsdTest, RequestedKeysAndPolicyChanges) {
  auto client = Client();
  auto request = AliceRequest();
  ue::RequestedKey tgk, tek;
  tgk.key_type = static_cast<uint8_t>(mikey::KeyType::kTgk);
  tgk.length = 32;
  tek.key_type = static_cast<uint8_t>(mikey::KeyType::kTekSalt);
  tek.length = 16;
  tek.salt_length = 14;
  request.policy.keys = {tgk, tek};
  // A week is more than the default class allows (one day): capped, K = 1.
  request.policy.valid_to =
      ue::TsValue{0, ue::NtpUtcFromUnixNanos(UnixNanos(std::chrono::system_clock::now() + 168h))};
  auto grant = client.RequestTicket(request);
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  EXPECT_TRUE(grant->policy_changed);
  ASSERT_EQ(grant->session_keys.size(), 2u);
  EXPECT_EQ(grant->session_keys[0].key.size(), 32u);
  ASSERT_TRUE(grant->session_keys[1].salt);
  EXPECT_EQ(grant->session_keys[1].salt->size(), 14u);
}

// ---- HTTP-level rejections (Annex A) -------------------------------------------------

TEST_F(TkmsdTest, AnnexAHttpRejections) {
  auto http = web::client::HttpClient::FromUrl(kms_->ua_url());
  ASSERT_TRUE(http.ok());
  auto get = http->Get("/keymanagement?requesttype=ticketrequest");
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->status, 405);
  EXPECT_EQ(Post("/other?requesttype=ticketrequest", "application/mikey", "AAAA").status, 404);
  EXPECT_EQ(Post("/keymanagement?requesttype=ticketgrab", "application/mikey", "AAAA").status, 400);
  EXPECT_EQ(Post("/keymanagement", "application/mikey", "AAAA").status, 400);
  EXPECT_EQ(Post("/keymanagement?requesttype=ticketrequest", "text/plain", "AAAA").status, 415);
  EXPECT_EQ(Post("/keymanagement?requesttype=ticketrequest", "application/mikey", "!!not base64!!").status, 400);
  EXPECT_EQ(Post("/keymanagement?requesttype=ticketrequest", "application/mikey", std::string(20000, 'A')).status,
            413);
  // Base64 of something that is not a MIKEY message at all.
  EXPECT_EQ(Post("/keymanagement?requesttype=ticketrequest", "application/mikey", "aGVsbG8=").status, 400);
  EXPECT_EQ(Metric("tkms_http_rejections_total{status=\"415\"}"), 1);
  ExpectServing();
}

// ---- MIKEY-level rejections (200 + MIKEY Error) -------------------------------------

TEST_F(TkmsdTest, TruncatedMessageGetsTheCodecErrorNumber) {
  auto built = ue::BuildRequestInitPsk(provider_, AliceRequest());
  ASSERT_TRUE(built.ok());
  const Bytes truncated(built->bytes.begin(), built->bytes.begin() + 30);
  auto expected = mikey::Decode(truncated);
  ASSERT_FALSE(expected.ok());
  auto reply = Post("/keymanagement?requesttype=ticketrequest", "application/mikey", Base64Encode(truncated));
  ASSERT_EQ(reply.status, 200);
  auto bytes = Base64Decode(reply.body);
  ASSERT_TRUE(bytes);
  auto report = ue::ParseErrorMessage(provider_, *bytes);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->errors.size(), 1u);
  EXPECT_EQ(report->errors[0], static_cast<uint8_t>(mikey::RuleErrorNo(expected.error().rule)));
  EXPECT_EQ(report->csb_id, built->csb_id);  // HDR fields copied (RFC 6043 §5.4)
  EXPECT_FALSE(report->has_v);
  ExpectServing();
}

TEST_F(TkmsdTest, DataTypeMustMatchRequestType) {
  auto client = Client();
  auto built = ue::BuildRequestInitPsk(provider_, AliceRequest());
  ASSERT_TRUE(built.ok());
  auto reply = client.Exchange(ue::AnnexARequest::kTicketResolve, built->bytes);
  ASSERT_TRUE(reply.ok());
  auto report = ue::ParseErrorMessage(provider_, *reply);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->errors, std::vector<uint8_t>{11});
  ExpectServing();
}

TEST_F(TkmsdTest, WrongPskIsAnAuthenticationFailure) {
  auto client = Client();
  auto request = AliceRequest();
  request.psk = bob_psk_;
  ExpectMikeyError(client.RequestTicket(request), 0, false);
  EXPECT_EQ(Metric("tkms_refusals_total{refusal=\"authentication\"}"), 1);
  ExpectServing();
}

TEST_F(TkmsdTest, UnknownUserIsAnAuthenticationFailure) {
  auto client = Client();
  auto request = AliceRequest();
  request.initiator.id = B("sip:nobody@example.org");
  ExpectMikeyError(client.RequestTicket(request), 0, false);
  EXPECT_EQ(Metric("tkms_refusals_total{refusal=\"unknown_user\"}"), 1);
  ExpectServing();
}

TEST_F(TkmsdTest, IdentityNotOwnedByTheAuthenticatedUser) {
  // alice authenticates with her PSK id (IDRpsk) but claims bob's identity.
  auto [rc, out] = RunCommand({TkmsctlPath(), "user", "list", "--state-dir", state_, "--pin-file",
                               state_ + "/token.pin", "--json"});
  ASSERT_EQ(rc, 0) << out;
  auto users = nlohmann::json::parse(out);
  std::optional<Bytes> alice_id;
  for (const auto& u : users) {
    if (u["identities"][0] == kAlice) alice_id = HexDecode(u["psk_id"].get<std::string>());
  }
  ASSERT_TRUE(alice_id);
  auto client = Client();
  auto request = AliceRequest();
  request.psk_id = *alice_id;
  // With IDRpsk and her own identity: fine.
  ASSERT_TRUE(client.RequestTicket(request).ok());
  request.initiator.id = B(kBob);
  ExpectMikeyError(client.RequestTicket(request), 7, true);
  ExpectServing();
}

TEST_F(TkmsdTest, WrongKmsIdentity) {
  auto client = Client();
  auto request = AliceRequest();
  request.kms.id = B("kms.elsewhere.example");
  ExpectMikeyError(client.RequestTicket(request), 7, true);
  ExpectServing();
}

TEST_F(TkmsdTest, ReplayedRequestIsRefused) {
  auto client = Client();
  auto built = ue::BuildRequestInitPsk(provider_, AliceRequest());
  ASSERT_TRUE(built.ok());
  auto first = client.Exchange(ue::AnnexARequest::kTicketRequest, built->bytes);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(ue::ParseRequestResp(provider_, *first, *built).ok());
  auto second = client.Exchange(ue::AnnexARequest::kTicketRequest, built->bytes);
  ASSERT_TRUE(second.ok());
  auto parsed = ue::ParseRequestResp(provider_, *second, *built);
  ExpectMikeyError(parsed, 1, true);
  EXPECT_EQ(Metric("tkms_replay_rejections_total"), 1);
  ExpectServing();
}

TEST_F(TkmsdTest, StaleTimestampIsRefused) {
  auto client = Client();
  auto request = AliceRequest();
  request.timestamp.value = ue::NtpUtcFromUnixNanos(UnixNanos(std::chrono::system_clock::now() - 600s));
  ExpectMikeyError(client.RequestTicket(request), 1, true);
  request.timestamp.value = ue::NtpUtcFromUnixNanos(UnixNanos(std::chrono::system_clock::now() + 600s));
  ExpectMikeyError(client.RequestTicket(request), 1, true);
  ExpectServing();
}

TEST_F(TkmsdTest, PolicyRefusalTooManyResponders) {
  // The default policy class allows 16 responders per ticket.
  auto client = Client();
  auto request = AliceRequest();
  for (int i = 0; i < 16; ++i) {
    request.policy.responders.push_back(ue::IdValue{B("sip:user" + std::to_string(i) + "@example.org")});
  }
  ExpectMikeyError(client.RequestTicket(request), 15, true);
  EXPECT_EQ(Metric("tkms_refusals_total{refusal=\"policy\"}"), 1);
  request.policy.responders.pop_back();
  EXPECT_TRUE(client.RequestTicket(request).ok());
  ExpectServing();
}

TEST_F(TkmsdTest, ExpiredTicketIsRefused) {
  auto client = Client();
  auto request = AliceRequest();
  request.policy.valid_to =
      ue::TsValue{0, ue::NtpUtcFromUnixNanos(UnixNanos(std::chrono::system_clock::now() + 1500ms))};
  auto grant = client.RequestTicket(request);
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  ASSERT_TRUE(client.ResolveTicket(Resolve(grant->ticket, bob_psk_)).ok());
  std::this_thread::sleep_for(2s);
  // An expired ticket conflicts with its own TP (TRe): 15 Invalid TPpar.
  ExpectMikeyError(client.ResolveTicket(Resolve(grant->ticket, bob_psk_)), 15, true);
  EXPECT_EQ(Metric("tkms_refusals_total{refusal=\"expired_ticket\"}"), 1);
  ExpectServing();
}

TEST_F(TkmsdTest, WrongResponderIsRefused) {
  auto client = Client();
  auto grant = client.RequestTicket(AliceRequest());
  ASSERT_TRUE(grant.ok());
  ExpectMikeyError(client.ResolveTicket(Resolve(grant->ticket, alice_psk_, kAlice)), 7, true);
  EXPECT_EQ(Metric("tkms_refusals_total{refusal=\"not_recipient\"}"), 1);
  ExpectServing();
}

TEST_F(TkmsdTest, UnknownTicketKeyAndForgedTicketAreRefused) {
  auto client = Client();
  auto grant = client.RequestTicket(AliceRequest());
  ASSERT_TRUE(grant.ok());
  auto data = mikey::DecodeBaseTicketData(grant->ticket.ticket_data);
  ASSERT_TRUE(data.ok() && data->idr_psk);
  data->idr_psk->data = {0, 0, 0, 99};
  auto unknown = grant->ticket;
  unknown.ticket_data = *mikey::EncodeBaseTicketData(*data);
  ExpectMikeyError(client.ResolveTicket(Resolve(unknown, bob_psk_)), 14, true);

  auto forged = grant->ticket;
  forged.policy.flags ^= mikey::kFlagJ;  // covered by the ticket MAC: it does not authenticate
  ExpectMikeyError(client.ResolveTicket(Resolve(forged, bob_psk_)), 0, true);

  // Mode 3 (a ticket made by the initiator, D = 0) is not supported.
  auto mode3 = grant->ticket;
  mode3.policy.flags &= static_cast<uint16_t>(~(mikey::kFlagD | mikey::kFlagK));  // ¬D ⇒ ¬K
  mode3.policy.flags |= mikey::kFlagL;  // ¬D ⇒ L (RFC 6043 §6.10)
  ExpectMikeyError(client.ResolveTicket(Resolve(mode3, bob_psk_)), 14, true);
  // Refused for D, not for the MAC (the log line follows the response).
  bool logged = false;
  for (int i = 0; i < 500 && !logged; ++i) {
    logged = kms_->Log().find("D = 0, mode 3") != std::string::npos;
    if (!logged) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(logged) << kms_->Log();
  EXPECT_EQ(Metric("tkms_refusals_total{refusal=\"invalid_ticket\"}"), 3);
  ExpectServing();
}

// ---- token and process ---------------------------------------------------------------

TEST_F(TkmsdTest, TokenUnavailableGives503AndRecovers) {
  {
    std::ofstream(FaultFile()) << "CKR_DEVICE_ERROR\n";
  }
  auto client = Client();
  auto failed = client.RequestTicket(AliceRequest());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().kind, UeErrorKind::kHttpStatus);
  EXPECT_EQ(failed.error().http_status, 503);
  // The failure makes the KMS unhealthy at once: /readyz and requests say 503.
  EXPECT_EQ(ReadyzStatus(), 503);
  auto refused = Client().RequestTicket(AliceRequest());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().http_status, 503);
  std::filesystem::remove(FaultFile());
  // The token monitor's next probe succeeds: keys and users re-read, serving.
  EXPECT_TRUE(WaitFor([&] { return ReadyzStatus() == 200; })) << kms_->Log();
  ExpectServing();
  EXPECT_GE(Metric("tkms_token_errors_total"), 1);
  EXPECT_TRUE(LogHas("event=token_unavailable"));
  EXPECT_TRUE(LogHas("event=token_recovered"));
}

TEST_F(TkmsdTest, RestartKeepsTicketsResolvable) {
  auto grant = Client().RequestTicket(AliceRequest());
  ASSERT_TRUE(grant.ok());
  ASSERT_EQ(kms_->Stop(), 0);
  kms_.reset();
  StartDev();  // the same state directory: token, keys and users are reused
  auto resolved = Client().ResolveTicket(Resolve(grant->ticket, bob_psk_));
  ASSERT_TRUE(resolved.ok()) << resolved.error().ToString();
  EXPECT_EQ(resolved->mpki, grant->mpki);
}

TEST_F(TkmsdTest, ConfigModeWithGroupAndRotation) {
  // The dev token (made by SetUp) served from a --config file with a group.
  ASSERT_EQ(kms_->Stop(), 0);
  kms_.reset();
  const std::string config = dir_.path() + "/tkmsd.json";
  std::ofstream(config) << nlohmann::json{
      {"kms_identity", kKmsId},
      {"token", {{"module_path", FaultModulePath()}, {"token", "tkms"}, {"pin_file", state_ + "/token.pin"},
                 {"softhsm2_conf", state_ + "/softhsm2.conf"}}},
      {"groups", {{{"identity", "sip:team@example.org"}, {"members", {kBob}}}}}}.dump(2);
  Start({"--config", config});
  auto client = Client();
  auto request = AliceRequest("sip:team@example.org");
  request.policy.flags |= mikey::kFlagI;
  auto grant = client.RequestTicket(request);
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  ue::TransferInitParams t;
  t.initiator.id = B(kAlice);
  t.responder.id = B("sip:team@example.org");
  auto transfer = ue::BuildTransferInit(provider_, *grant, t);
  ASSERT_TRUE(transfer.ok());
  // bob is a member: he resolves, and the KMS answers with his own identity.
  auto resolved = client.ResolveTicket(Resolve(transfer->ticket, bob_psk_));
  ASSERT_TRUE(resolved.ok()) << resolved.error().ToString() << kms_->Log();
  ASSERT_TRUE(resolved->responder);
  EXPECT_EQ(resolved->responder->data, B(kBob));
  // alice is not.
  ExpectMikeyError(client.ResolveTicket(Resolve(transfer->ticket, alice_psk_, kAlice)), 7, true);

  // Rotation: a new ticket key becomes current (tkmsctl + SIGHUP); old
  // tickets keep resolving until their key is destroyed.
  const std::vector<std::pair<std::string, std::string>> env = {{"TKMS_PKCS11_MODULE", FaultModulePath()},
                                                                {"TKMS_FAULT_TRIGGER", FaultFile()}};
  auto [rc, out] = RunCommand({TkmsctlPath(), "key", "rotate", "--type", "hmac-sha256", "--state-dir", state_,
                               "--pin-file", state_ + "/token.pin"},
                              env);
  ASSERT_EQ(rc, 0) << out;
  kms_->Signal(SIGHUP);
  for (int i = 0; i < 1000 && kms_->Log().find("event=reloaded") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  auto fresh = client.RequestTicket(AliceRequest());
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(fresh->ticket.ticket_data, grant->ticket.ticket_data);
  auto old_data = mikey::DecodeBaseTicketData(grant->ticket.ticket_data);
  auto new_data = mikey::DecodeBaseTicketData(fresh->ticket.ticket_data);
  ASSERT_TRUE(old_data.ok() && new_data.ok());
  EXPECT_EQ(old_data->idr_psk->data, (Bytes{0, 0, 0, 1}));
  EXPECT_EQ(new_data->idr_psk->data, (Bytes{0, 0, 0, 2}));
  ASSERT_TRUE(client.ResolveTicket(Resolve(transfer->ticket, bob_psk_)).ok());
  auto [rc2, out2] = RunCommand({TkmsctlPath(), "key", "destroy", "tkms-ticket-1", "--state-dir", state_,
                                 "--pin-file", state_ + "/token.pin"},
                                env);
  ASSERT_EQ(rc2, 0) << out2;
  kms_->Signal(SIGHUP);
  bool refused = false;
  for (int i = 0; i < 1000 && !refused; ++i) {
    auto r = client.ResolveTicket(Resolve(transfer->ticket, bob_psk_));
    refused = !r.ok() && r.error().mikey_error() == 14;
    if (!refused) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(refused);
  ASSERT_TRUE(client.ResolveTicket(Resolve(fresh->ticket, bob_psk_)).ok());
}

// A ticket key that cannot seal tickets (aes256: the protection keys are
// derived with HMAC-SHA-256) is refused at reload, and tickets stay sealed
// with the newest key that can (found by the PKCS#11 soak: it used to make
// every ticket request a 500).
TEST_F(TkmsdTest, Aes256TicketKeyIsRefusedAtReloadAndSealingGoesOn) {
  const std::vector<std::pair<std::string, std::string>> env = {{"TKMS_PKCS11_MODULE", FaultModulePath()},
                                                                {"TKMS_FAULT_TRIGGER", FaultFile()}};
  auto [rc, out] = RunCommand({TkmsctlPath(), "key", "rotate", "--type", "aes256", "--state-dir", state_,
                               "--pin-file", state_ + "/token.pin"},
                              env);
  ASSERT_EQ(rc, 0) << out;
  kms_->Signal(SIGHUP);
  for (int i = 0; i < 1000 && kms_->Log().find("event=reload_refused") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_NE(kms_->Log().find("ticket key 2 is not an hmac-sha256 key and cannot seal tickets (ticket key 1 keeps "
                             "sealing them)"),
            std::string::npos)
      << kms_->Log();
  auto client = Client();
  auto grant = client.RequestTicket(AliceRequest());
  ASSERT_TRUE(grant.ok()) << grant.error().ToString() << kms_->Log();
  auto data = mikey::DecodeBaseTicketData(grant->ticket.ticket_data);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->idr_psk->data, (Bytes{0, 0, 0, 1}));
}

TEST_F(TkmsdTest, KemacIvTimestampFollowsTheConfiguration) {
  // mikey.kemac_iv_timestamp = request: the KEMAC IV of REQUEST_RESP and
  // RESOLVE_RESP uses the request's T (RFC 3830 §4.2.3 read literally).
  ASSERT_EQ(kms_->Stop(), 0);
  kms_.reset();
  const std::string config = dir_.path() + "/tkmsd.json";
  std::ofstream(config) << nlohmann::json{
      {"kms_identity", kKmsId},
      {"token", {{"module_path", FaultModulePath()}, {"token", "tkms"}, {"pin_file", state_ + "/token.pin"},
                 {"softhsm2_conf", state_ + "/softhsm2.conf"}}},
      {"mikey", {{"kemac_iv_timestamp", "request"}}}}.dump(2);
  Start({"--config", config});
  auto client = Client();
  auto request = AliceRequest();
  request.checks.iv_timestamp = ue::IvTimestamp::kRequestT;
  auto grant = client.RequestTicket(request);
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  auto resolve = Resolve(grant->ticket, bob_psk_);
  resolve.checks.iv_timestamp = ue::IvTimestamp::kRequestT;
  auto resolved = client.ResolveTicket(resolve);
  ASSERT_TRUE(resolved.ok()) << resolved.error().ToString();
  EXPECT_EQ(resolved->session_keys[0].key, grant->session_keys[0].key);
  // A UE that uses the response's T cannot open this KMS's KEMAC.
  auto mismatch = client.RequestTicket(AliceRequest());
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().kind, UeErrorKind::kVerification) << mismatch.error().ToString();
}

TEST_F(TkmsdTest, BadConfigurationFailsToStartWithTheField) {
  ASSERT_EQ(kms_->Stop(), 0);
  kms_.reset();
  const std::string config = dir_.path() + "/bad.json";
  std::ofstream(config) << R"({"kms_identity": "kms.example.org", "token": {"pin_file": "x"}, "http": {"max_body_bytes": 1}})";
  TkmsdProcess::Options o;
  o.args = {"--config", config};
  o.work_dir = dir_.path();
  auto p = TkmsdProcess::Start(o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message().find("http.max_body_bytes"), std::string::npos) << p.error().message();
}

}  // namespace
}  // namespace tkms::test
