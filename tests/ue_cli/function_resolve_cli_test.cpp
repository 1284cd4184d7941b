// tkms-ue function-resolve (tools/ue_cli/function_resolve.h; TR 33.828 step
// 5) as a process: usage errors, --keys-out (mode 0600, never overwritten,
// checked before the KMS is asked), the output (identities, key names, SPIs
// and fingerprints, never key bytes), a MIKEY Error, HTTP 403 and a TLS
// failure.
//
// Why without tkmsd: the command's own behaviour is tested against a
// stand-in for the KMS's Zk listener that does exactly what a test asks --
// the test PKI's TLS server (tests/ue/tls, OpenSSL, client certificate
// required) as a TLS-terminating proxy in front of an in-test HTTP server
// that checks the unprotected RESOLVE_INIT_PSK and answers an unprotected
// RESOLVE_RESP built here. The run against a real tkmsd Zk listener is in
// tests/integration (the server side).
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/integration/tkmsd_process.h"
#include "tests/ue/fake_kms.h"
#include "tests/ue/test_http_server.h"
#include "tests/ue/tls_test_server.h"
#include "tools/ue/sdp.h"
#include "tools/ue/ticket_client.h"

namespace tkms::test {
namespace {

using mikey::Bytes;
namespace fake = ue::testing;  // the in-test HTTP server, TLS server and helpers of tests/ue

const std::string kKms = "kms.a.example.org";
const Bytes kMpki = fake::Filled(16, 41), kTgk = fake::Filled(16, 42);

enum class Reply { kKeys, kMikeyError, kForbidden };

class FunctionResolveCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki_.ok()) << "make_test_pki.sh failed";
    server_ = std::make_unique<fake::TestHttpServer>([this](const fake::ServerRequest& req) { return Answer(req); });
    proxy_ = fake::TlsTestServer::Start(
        {"--cert", pki_.File("server.pem"), "--key", pki_.File("server.key"), "--verify", "required", "--cafile",
         pki_.File("ca.pem"), "--forward", "127.0.0.1:" + std::to_string(server_->port())},
        dir_.path() + "/proxy.log");
    ASSERT_NE(proxy_, nullptr);
    offer_ = dir_.path() + "/offer.sdp";
    WriteOffer(offer_);
  }

  // An SDP offer whose TRANSFER_INIT carries a ticket from alice to bob.
  void WriteOffer(const std::string& path) {
    mikey::crypto::TransientCryptoProvider provider;
    ue::TicketGrant grant;
    grant.ticket.policy.ticket_type = 1;
    grant.ticket.policy.subtype = 1;
    grant.ticket.policy.version = 1;
    grant.ticket.policy.prf_func = 1;
    grant.ticket.policy.flags = mikey::kFlagD | mikey::kFlagE | mikey::kFlagF | mikey::kFlagH | mikey::kFlagO;
    grant.ticket.policy.tp_data.emplace_back(mikey::IdrPayload{1, 1, fake::Text("sip:alice@a.example.org")});
    grant.ticket.policy.tp_data.emplace_back(mikey::IdrPayload{2, 1, fake::Text("sip:bob@b.example.org")});
    grant.ticket.ticket_data = fake::OpaqueBaseTicketData();
    grant.policy = grant.ticket.policy;
    grant.mpki = ToSecret(kMpki);
    ue::TransferInitParams tp;
    tp.initiator.id = fake::Text("sip:alice@a.example.org");
    tp.responder.id = fake::Text("sip:bob@b.example.org");
    auto init = ue::BuildTransferInit(provider, grant, tp);
    ASSERT_TRUE(init.ok()) << init.error().ToString();
    auto sdp = ue::BuildAudioSdp(ue::AudioSdpParams{1, "127.0.0.1", 49170}, init->bytes);
    ASSERT_TRUE(sdp.ok());
    std::ofstream(path) << *sdp;
  }

  static mikey::KeyDataPayload Key(mikey::KeyType type, const Bytes& key, uint8_t spi) {
    mikey::KeyDataPayload k;
    k.key_type = static_cast<uint8_t>(type);
    k.key = ToSecret(key);
    k.kv.kv_type = static_cast<uint8_t>(mikey::KvType::kSpi);
    k.kv.spi = {spi};
    return k;
  }

  // The Zk listener's side: the request must be the unprotected
  // RESOLVE_INIT_PSK of the contract; the answer as `reply_` says.
  fake::ServerReply Answer(const fake::ServerRequest& req) {
    ++requests_;
    EXPECT_EQ(req.target, "/keymanagement?requesttype=ticketresolve");
    const fake::ServerReply bad{"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"};
    auto body = Base64Decode(req.body);
    EXPECT_TRUE(body.has_value());
    if (!body) return bad;
    auto m = mikey::Decode(*body);
    EXPECT_TRUE(m.ok());
    if (!m.ok()) return bad;
    EXPECT_EQ(m->header.data_type, static_cast<uint8_t>(mikey::DataType::kResolveInitPsk));
    EXPECT_FALSE(m->header.v);
    const auto& v = std::get<mikey::VPayload>(m->payloads.back());
    EXPECT_EQ(v.auth_alg, 0);
    EXPECT_TRUE(v.mac.empty());
    if (reply_ == Reply::kForbidden) return fake::ServerReply{"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"};
    mikey::Message resp;
    resp.header = m->header;
    resp.payloads.emplace_back(mikey::TPayload{0, 0xEB3F2A2180000000ull});
    if (reply_ == Reply::kMikeyError) {
      resp.header.data_type = static_cast<uint8_t>(mikey::DataType::kError);
      resp.payloads.emplace_back(mikey::ErrPayload{14});
    } else {
      resp.header.data_type = static_cast<uint8_t>(mikey::DataType::kResolveResp);
      resp.payloads.emplace_back(mikey::IdrPayload{3, 1, fake::Text(kKms)});
      auto chain = mikey::EncodeKeyDataChain(
          {Key(mikey::KeyType::kMpk, kMpki, 1), Key(mikey::KeyType::kTgk, kTgk, 3)});
      EXPECT_TRUE(chain.ok());
      mikey::KemacPayload kemac;  // encryption NULL, MAC NULL: the keys in clear
      kemac.encr_alg = static_cast<uint8_t>(mikey::EncrAlg::kNull);
      kemac.mac_alg = static_cast<uint8_t>(mikey::MacAlg::kNull);
      kemac.encr_data.assign(chain->begin(), chain->end());
      resp.payloads.emplace_back(std::move(kemac));
      resp.payloads.emplace_back(mikey::VPayload{0, {}});
    }
    auto encoded = mikey::Encode(resp);
    EXPECT_TRUE(encoded.ok());
    return fake::ServerReply{fake::HttpOk(Base64Encode(*encoded), "application/mikey")};
  }

  std::vector<std::string> Args(std::vector<std::string> extra = {}, const std::string& offer = "") const {
    std::vector<std::string> a{"function-resolve", "--kms", proxy_->url(), "--kms-identity", kKms,
                               "--cacert", pki_.File("ca.pem"), "--cert", pki_.File("client.pem"),
                               "--key", pki_.File("client.key"), "--offer", offer.empty() ? offer_ : offer};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  // tkms-ue with stderr merged into the output.
  static std::pair<int, std::string> Ue(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/bin/sh", "-c", "exec \"$@\" 2>&1", "sh", TKMS_UE_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = RunCommand(argv);
    if (std::getenv("UE_CLI_TEST_VERBOSE") != nullptr) {  // as in ue_cli_test
      std::fprintf(stderr, "tkms-ue function-resolve -> %d\n%s", result.first, result.second.c_str());
    }
    return result;
  }

  TempDir dir_;
  fake::TlsTestPki pki_;
  std::unique_ptr<fake::TestHttpServer> server_;
  std::unique_ptr<fake::TlsTestServer> proxy_;
  std::string offer_;
  std::atomic<Reply> reply_{Reply::kKeys};
  std::atomic<int> requests_{0};
};

TEST_F(FunctionResolveCli, PrintsIdentitiesAndFingerprintsAndWritesTheKeysFile0600) {
  const std::string keys = dir_.path() + "/keys.json";
  auto [rc, out] = Ue(Args({"--keys-out", keys}));
  ASSERT_EQ(rc, 0) << out << proxy_->Log();
  EXPECT_NE(out.find("ticket initiator 'sip:alice@a.example.org'; responders 'sip:bob@b.example.org'"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("key MPKi type MPK spi 01 sha256 "), std::string::npos) << out;
  EXPECT_NE(out.find("key key1 type TGK spi 03 sha256 "), std::string::npos) << out;
  // Never key bytes on the screen.
  EXPECT_EQ(out.find(HexEncode(kMpki)), std::string::npos) << out;
  EXPECT_EQ(out.find(HexEncode(kTgk)), std::string::npos) << out;

  struct stat st {};
  ASSERT_EQ(::stat(keys.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(keys);
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["kms"], kKms);
  EXPECT_EQ(j["initiator"], "sip:alice@a.example.org");
  EXPECT_EQ(j["responders"][0], "sip:bob@b.example.org");
  ASSERT_EQ(j["keys"].size(), 2u);
  EXPECT_EQ(j["keys"][0]["name"], "MPKi");
  EXPECT_EQ(j["keys"][0]["key"], HexEncode(kMpki));
  EXPECT_EQ(j["keys"][0]["spi"], "01");
  EXPECT_EQ(j["keys"][1]["type"], "TGK");
  EXPECT_EQ(j["keys"][1]["key_type"], 0);
  EXPECT_EQ(j["keys"][1]["key"], HexEncode(kTgk));

  // Never overwritten, and refused before the KMS is asked.
  const int before = requests_.load();
  auto [rc2, out2] = Ue(Args({"--keys-out", keys}));
  EXPECT_EQ(rc2, 1) << out2;
  EXPECT_NE(out2.find("refusing to overwrite"), std::string::npos) << out2;
  EXPECT_EQ(requests_.load(), before);
}

TEST_F(FunctionResolveCli, RefusalsNameTheirCause) {
  const std::string keys = dir_.path() + "/keys.json";
  reply_ = Reply::kMikeyError;
  auto [rc, out] = Ue(Args({"--keys-out", keys}));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("tkms-ue: KMS refused: MIKEY error 14 (Invalid TICKET)"), std::string::npos) << out;
  struct stat st {};
  EXPECT_NE(::stat(keys.c_str(), &st), 0);  // no keys, no file

  reply_ = Reply::kForbidden;
  auto [rc2, out2] = Ue(Args());
  EXPECT_EQ(rc2, 1) << out2;
  EXPECT_NE(out2.find("the KMS does not authorise this certificate for the resolve role"), std::string::npos)
      << out2;

  // TLS: a CA that did not issue the listener's certificate.
  std::vector<std::string> wrong_ca = Args();
  wrong_ca[6] = pki_.File("other-ca.pem");
  auto [rc3, out3] = Ue(wrong_ca);
  EXPECT_EQ(rc3, 1) << out3;
  EXPECT_NE(out3.find("certificate not trusted"), std::string::npos) << out3;
}

TEST_F(FunctionResolveCli, UsageErrors) {
  // Missing options: CLI11's usage error, before anything else.
  for (const char* drop : {"--offer", "--cacert", "--cert", "--key", "--kms"}) {
    std::vector<std::string> args;
    const std::vector<std::string> all = Args();
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i] == drop) {
        ++i;  // and its value
        continue;
      }
      args.push_back(all[i]);
    }
    auto [rc, out] = Ue(args);
    EXPECT_NE(rc, 0) << drop << ": " << out;
    EXPECT_NE(out.find(std::string(drop).substr(2)), std::string::npos) << drop << ": " << out;
  }
  std::vector<std::string> plain = Args();
  plain[2] = "http://localhost:" + std::to_string(server_->port());
  auto [rc, out] = Ue(plain);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("must be https://"), std::string::npos) << out;
  auto [rc2, out2] = Ue(Args({}, dir_.path() + "/missing.sdp"));
  EXPECT_EQ(rc2, 1) << out2;
  EXPECT_NE(out2.find("cannot open"), std::string::npos) << out2;
  std::ofstream(dir_.path() + "/no-mikey.sdp") << "v=0\r\n";
  auto [rc3, out3] = Ue(Args({}, dir_.path() + "/no-mikey.sdp"));
  EXPECT_EQ(rc3, 1) << out3;
  EXPECT_EQ(requests_.load(), 0);
}

}  // namespace
}  // namespace tkms::test
