// HttpClient over https:// (web/client/tls_client.h) against an independent TLS
// stack (OpenSSL, through tests/ue/tls/tls_test_server.py) on loopback, with
// a test PKI made by the openssl command for this run: success and keep-alive
// over one TLS session against the right CA; refusal of an untrusted CA, a
// certificate for another host name, a TLS 1.1-only and a CBC-only server;
// the client certificate presented when configured and its absence reported
// when the server requires one; close_notify; the handshake timeout; the key
// file permission rule and the other configuration errors; tkms-bench's echo
// mode over https.
#include "web/client/tls_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "tests/ue/tls_test_server.h"
#include "tools/bench/bench.h"
#include "web/client/http_client.h"

namespace tkms::web::client {
namespace {

using ue::testing::TlsTestPki;
using ue::testing::TlsTestServer;

class TlsClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new TlsTestPki(); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(pki_->ok()) << "make_test_pki.sh failed"; }

  static std::string F(const std::string& name) { return pki_->File(name); }

  // A server with `cert_name`.pem / .key and extra options.
  std::unique_ptr<TlsTestServer> Server(const std::string& cert_name, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--cert", F(cert_name + ".pem"), "--key", F(cert_name + ".key")};
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string log = pki_->dir() + "/server-" + std::to_string(++servers_) + ".log";
    auto server = TlsTestServer::Start(args, log);
    EXPECT_NE(server, nullptr) << "tls_test_server.py did not start";
    return server;
  }

  static Result<HttpClient> Client(const std::string& url, TlsClientOptions tls,
                                   std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    HttpClientOptions options;
    options.timeout = timeout;
    options.tls = std::move(tls);
    return HttpClient::FromUrl(url, options);
  }
  static TlsClientOptions Ca(const std::string& ca = "ca.pem") { return TlsClientOptions{F(ca), "", ""}; }
  static TlsClientOptions WithClientCert() { return TlsClientOptions{F("ca.pem"), F("client.pem"), F("client.key")}; }

  // A POST's result through a fresh client.
  static Result<HttpResponse> PostOnce(const std::string& url, TlsClientOptions tls) {
    auto client = Client(url, std::move(tls));
    if (!client.ok()) return client.error();
    return client->Post("/keymanagement?requesttype=ticketrequest", "application/mikey", "AAAA");
  }

  static TlsTestPki* pki_;
  int servers_ = 0;
};

TlsTestPki* TlsClientTest::pki_ = nullptr;

TEST(HttpsUrl, SchemeSelectsTlsAndPort443) {
  auto u = ParseHttpUrl("https://kms.example.org/base/");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->https);
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->base_path, "/base");
  u = ParseHttpUrl("HTTPS://localhost:8443");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->https);
  EXPECT_EQ(u->port, 8443);
  u = ParseHttpUrl("http://localhost");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->https);
  EXPECT_EQ(u->port, 80);
  EXPECT_FALSE(ParseHttpUrl("ftp://localhost").ok());
  EXPECT_FALSE(ParseHttpUrl("httpss://localhost").ok());
}

TEST_F(TlsClientTest, SucceedsAgainstTheRightCaAndKeepsOneSessionAlive) {
  auto server = Server("server");
  ASSERT_NE(server, nullptr);
  auto client = Client(server->url(), Ca());
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  EXPECT_TRUE(client->https());
  for (int i = 0; i < 3; ++i) {
    auto resp = client->Post("/keymanagement?requesttype=ticketrequest", "application/mikey", "AAAA");
    ASSERT_TRUE(resp.ok()) << resp.error().ToString() << "\n" << server->Log();
    EXPECT_EQ(resp->status, 200);
    // One connection, requests 0, 1, 2 on it; no client certificate; TLS 1.2 with an ECDHE AEAD suite.
    EXPECT_EQ(resp->body.rfind("ok conn=0 req=" + std::to_string(i) + " peer=- version=TLSv1.2 cipher=ECDHE-RSA-", 0),
              0u)
        << resp->body;
  }
  EXPECT_EQ(client->connections_opened(), 1u);
  EXPECT_EQ(client->tls_version(), "TLSv1.2");
  const std::string suite = client->tls_cipher_suite();
  EXPECT_TRUE(suite.find("GCM") != std::string::npos || suite.find("CHACHA20-POLY1305") != std::string::npos) << suite;
  EXPECT_EQ(suite.rfind("TLS-ECDHE-RSA-", 0), 0u) << suite;
  // close_notify on close (RFC 5246 §7.2.1): the server logs it.
  client->Close();
  EXPECT_TRUE(server->WaitForLog("connection 0: close_notify received after 3 requests")) << server->Log();
}

TEST_F(TlsClientTest, IdleConnectionClosedByTheServerIsReplacedTransparently) {
  // The server sends close_notify and closes after every answer: each next
  // request finds the idle connection closed and makes a new TLS session.
  auto server = Server("server", {"--close-after", "1"});
  ASSERT_NE(server, nullptr);
  auto client = Client(server->url(), Ca());
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  for (int i = 0; i < 3; ++i) {
    if (i > 0) {
      ASSERT_TRUE(server->WaitForLog("connection " + std::to_string(i - 1) + ": closing")) << server->Log();
    }
    auto resp = client->Post("/keymanagement?requesttype=ticketrequest", "application/mikey", "AAAA");
    ASSERT_TRUE(resp.ok()) << i << ": " << resp.error().ToString() << "\n" << server->Log();
    EXPECT_EQ(resp->body.rfind("ok conn=" + std::to_string(i) + " req=0 ", 0), 0u) << resp->body;
  }
  EXPECT_EQ(client->connections_opened(), 3u);
}

TEST_F(TlsClientTest, CaFileWithSeveralCertificates) {
  auto server = Server("server");
  ASSERT_NE(server, nullptr);
  auto resp = PostOnce(server->url(), Ca("ca-and-other.pem"));
  ASSERT_TRUE(resp.ok()) << resp.error().ToString();
  EXPECT_EQ(resp->status, 200);
}

TEST_F(TlsClientTest, UntrustedCaIsRefused) {
  // The server's certificate is from a CA the client does not have ...
  auto untrusted = Server("untrusted");
  ASSERT_NE(untrusted, nullptr);
  auto resp = PostOnce(untrusted->url(), Ca());
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code(), StatusCode::kPermissionDenied) << resp.error().ToString();
  EXPECT_NE(resp.error().message().find("certificate not trusted"), std::string::npos) << resp.error().ToString();
  EXPECT_EQ(resp.error().message().find("host name mismatch"), std::string::npos) << resp.error().ToString();
  // ... or the client trusts another CA than the one that issued it.
  auto server = Server("server");
  ASSERT_NE(server, nullptr);
  resp = PostOnce(server->url(), Ca("other-ca.pem"));
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.error().message().find("certificate not trusted"), std::string::npos) << resp.error().ToString();
}

TEST_F(TlsClientTest, HostNameMismatchIsRefused) {
  auto server = Server("wrongname");  // DNS:kms.example.org, asked for as localhost
  ASSERT_NE(server, nullptr);
  auto resp = PostOnce(server->url(), Ca());
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code(), StatusCode::kPermissionDenied) << resp.error().ToString();
  EXPECT_NE(resp.error().message().find("host name mismatch"), std::string::npos) << resp.error().ToString();
  EXPECT_NE(resp.error().message().find("\"localhost\""), std::string::npos) << resp.error().ToString();
  EXPECT_EQ(resp.error().message().find("not trusted"), std::string::npos) << resp.error().ToString();
}

TEST_F(TlsClientTest, Tls11OnlyServerIsRefused) {
  // OpenSSL 3 allows TLS 1.1 only at security level 0. TLS 1.1 has no AEAD
  // suite, so the server finds nothing it can pick from the tkms client's
  // offer (TLS 1.2, ECDHE + AEAD) and aborts with handshake_failure (were it
  // to answer with TLS 1.1, mbedTLS would refuse its ServerHello: min 1.2).
  auto server = Server("server", {"--max-tls", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0"});
  ASSERT_NE(server, nullptr);
  auto resp = PostOnce(server->url(), Ca());
  ASSERT_FALSE(resp.ok()) << resp->body;
  EXPECT_EQ(resp.error().code(), StatusCode::kUnavailable) << resp.error().ToString();
  EXPECT_NE(resp.error().message().find("alert 40 (handshake_failure): no common protocol version and cipher suite"),
            std::string::npos)
      << resp.error().ToString();
  EXPECT_TRUE(server->WaitForLog("handshake failed")) << server->Log();
}

TEST_F(TlsClientTest, CbcOnlyServerIsRefused) {
  // TLS 1.2 with CBC suites only (ECDHE, so only the AEAD rule refuses them).
  auto server = Server("server", {"--ciphers", "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA"});
  ASSERT_NE(server, nullptr);
  auto resp = PostOnce(server->url(), Ca());
  ASSERT_FALSE(resp.ok()) << resp->body;
  EXPECT_NE(resp.error().message().find("alert 40 (handshake_failure)"), std::string::npos)
      << resp.error().ToString();
  EXPECT_NE(resp.error().message().find("no common protocol version and cipher suite"), std::string::npos)
      << resp.error().ToString();
  EXPECT_TRUE(server->WaitForLog("handshake failed")) << server->Log();
}

TEST_F(TlsClientTest, ClientCertificateIsPresentedWhenConfigured) {
  auto server = Server("server", {"--verify", "required", "--cafile", F("ca.pem")});
  ASSERT_NE(server, nullptr);
  auto resp = PostOnce(server->url(), WithClientCert());
  ASSERT_TRUE(resp.ok()) << resp.error().ToString() << "\n" << server->Log();
  EXPECT_NE(resp->body.find("peer=ue-alice"), std::string::npos) << resp->body;
}

TEST_F(TlsClientTest, MissingClientCertificateIsReportedClearly) {
  auto server = Server("server", {"--verify", "required", "--cafile", F("ca.pem")});
  ASSERT_NE(server, nullptr);
  auto resp = PostOnce(server->url(), Ca());
  ASSERT_FALSE(resp.ok()) << resp->body;
  EXPECT_EQ(resp.error().code(), StatusCode::kUnavailable) << resp.error().ToString();
  // The server's alert may be lost to its reset (the client is still sending
  // its flight): either way the cause is named.
  EXPECT_NE(resp.error().message().find("the server requires a client certificate (it sent a CertificateRequest) and "
                                        "none is configured (--cert FILE --key FILE)"),
            std::string::npos)
      << resp.error().ToString();
}

TEST_F(TlsClientTest, GroupOrOtherReadableKeyIsRefused) {
  for (const mode_t mode : {0640, 0604, 0660}) {
    const std::string key = pki_->dir() + "/client-" + std::to_string(mode) + ".key";
    std::filesystem::copy_file(F("client.key"), key, std::filesystem::copy_options::overwrite_existing);
    ASSERT_EQ(::chmod(key.c_str(), mode), 0);
    auto client = Client("https://localhost:1", TlsClientOptions{F("ca.pem"), F("client.pem"), key});
    ASSERT_FALSE(client.ok()) << mode;
    EXPECT_EQ(client.error().code(), StatusCode::kPermissionDenied) << client.error().ToString();
    EXPECT_NE(client.error().message().find("accessible by group or others"), std::string::npos)
        << client.error().ToString();
    EXPECT_NE(client.error().message().find("chmod 600 " + key), std::string::npos) << client.error().ToString();
  }
  // The same key with mode 0600 loads.
  const std::string key = pki_->dir() + "/client-0600.key";
  std::filesystem::copy_file(F("client.key"), key, std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  auto client = Client("https://localhost:1", TlsClientOptions{F("ca.pem"), F("client.pem"), key});
  EXPECT_TRUE(client.ok()) << client.error().ToString();
}

TEST_F(TlsClientTest, ConfigurationErrorsNameTheCause) {
  const auto error = [](const Result<HttpClient>& r) { return r.ok() ? std::string("(ok)") : r.error().ToString(); };
  // https needs --cacert: there is no unverified mode.
  auto r = Client("https://localhost:1", {});
  EXPECT_NE(error(r).find("--cacert"), std::string::npos) << error(r);
  // IP literals cannot be checked against the certificate by mbedTLS 2.28.
  r = Client("https://127.0.0.1:1", Ca());
  EXPECT_NE(error(r).find("DNS name"), std::string::npos) << error(r);
  r = Client("https://[::1]:1", Ca());
  EXPECT_NE(error(r).find("DNS name"), std::string::npos) << error(r);
  // TLS files with an http URL are refused, not ignored.
  r = Client("http://localhost:1", Ca());
  EXPECT_NE(error(r).find("use https://"), std::string::npos) << error(r);
  // A certificate without its key (and the other way round).
  r = Client("https://localhost:1", TlsClientOptions{F("ca.pem"), F("client.pem"), ""});
  EXPECT_NE(error(r).find("--cert FILE --key FILE"), std::string::npos) << error(r);
  r = Client("https://localhost:1", TlsClientOptions{F("ca.pem"), "", F("client.key")});
  EXPECT_NE(error(r).find("--cert FILE --key FILE"), std::string::npos) << error(r);
  // A key that is not the certificate's.
  r = Client("https://localhost:1", TlsClientOptions{F("ca.pem"), F("client.pem"), F("wrongname.key")});
  EXPECT_NE(error(r).find("is not the key of the certificate"), std::string::npos) << error(r);
  // Files that are missing or do not parse.
  r = Client("https://localhost:1", Ca("missing.pem"));
  EXPECT_NE(error(r).find("CA file"), std::string::npos) << error(r);
  EXPECT_EQ(r.error().code(), StatusCode::kNotFound);
  r = Client("https://localhost:1", Ca("client.key"));  // a key, not certificates
  EXPECT_NE(error(r).find("CA file"), std::string::npos) << error(r);
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  r = Client("https://localhost:1", TlsClientOptions{F("ca.pem"), F("client.pem"), F("client.pem")});
  EXPECT_NE(error(r).find("accessible by group or others"), std::string::npos) << error(r);  // 0644
}

TEST_F(TlsClientTest, HandshakeTimeoutIsReported) {
  // A listener that never accepts: TCP connects (backlog), the handshake gets no answer.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  auto client = Client("https://localhost:" + std::to_string(ntohs(addr.sin_port)), Ca(),
                       std::chrono::milliseconds(300));
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  const auto start = std::chrono::steady_clock::now();
  auto resp = client->Post("/keymanagement", "application/mikey", "AAAA");
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(resp.error().message().find("timed out during the TLS handshake"), std::string::npos)
      << resp.error().ToString();
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST_F(TlsClientTest, BenchEchoModeOverHttps) {
  auto server = Server("server");
  ASSERT_NE(server, nullptr);
  bench::BenchConfig c;
  c.url = server->url();
  c.tls = Ca();
  c.mode = bench::BenchMode::kEcho;
  c.connections = 2;
  c.duration_s = 0.5;
  c.warmup_s = 0.1;
  auto report = bench::RunBench(c);
  ASSERT_TRUE(report.ok()) << report.error().ToString();
  EXPECT_GT(report->ok, 0u);
  EXPECT_EQ(report->errors, 0u) << report->first_error;
  EXPECT_EQ(report->connections_opened, 2u);  // one TLS session per connection, kept alive
  EXPECT_EQ(report->tls.rfind("TLSv1.2 TLS-ECDHE-RSA-", 0), 0u) << report->tls;
  EXPECT_NE(bench::FormatJson(*report).find("\"tls\":\"TLSv1.2 "), std::string::npos);
  // Without the right CA, every connection fails before the clock starts.
  c.tls = Ca("other-ca.pem");
  c.mode = bench::BenchMode::kEcho;
  c.duration_s = 0.2;
  c.warmup_s = 0;
  report = bench::RunBench(c);
  ASSERT_TRUE(report.ok()) << report.error().ToString();  // echo mode has no trial request
  EXPECT_EQ(report->ok, 0u);
  EXPECT_GT(report->errors, 0u);
  EXPECT_NE(report->first_error.find("certificate not trusted"), std::string::npos) << report->first_error;
}

}  // namespace
}  // namespace tkms::web::client
