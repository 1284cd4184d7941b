// KmsClient (tools/ue/kms_client.h): TS 33.328 Annex A requests to an in-test
// HTTP server that answers with the hand-written KMS of fake_kms.h, and the
// distinct error kinds for HTTP statuses, content types, base64, MIKEY Error
// messages and transport failures.
#include "tools/ue/kms_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "firmware/base/encoding.h"
#include "tests/ue/fake_kms.h"
#include "tests/ue/test_http_server.h"

namespace tkms::ue {
namespace {

using testing::FakeKms;
using testing::HttpOk;
using testing::ServerReply;
using testing::ServerRequest;
using testing::TestHttpServer;
using testing::Text;
namespace crypto = mikey::crypto;

std::string B64(const Bytes& b) { return Base64Encode(b); }

class KmsClientTest : public ::testing::Test {
 protected:
  // The default server: a correct Annex A KMS.
  ServerReply Answer(const ServerRequest& req) {
    EXPECT_EQ(req.method, "POST");
    EXPECT_EQ(req.Header("Content-Type"), "application/mikey");
    auto body = Base64Decode(req.body);
    EXPECT_TRUE(body.has_value());
    if (!body) return ServerReply{"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"};
    Bytes answer;
    if (req.target == "/keymanagement?requesttype=ticketrequest") {
      answer = kms_.AnswerRequest(*body);
    } else if (req.target == "/keymanagement?requesttype=ticketresolve") {
      answer = kms_.AnswerResolve(*body);
    } else {
      return ServerReply{"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"};
    }
    return ServerReply{HttpOk(B64(answer), "application/mikey")};
  }

  RequestInitParams RequestParams() {
    RequestInitParams p;
    p.psk = kms_.psk_i;
    p.initiator.id = kms_.id_i;
    p.kms.id = kms_.id_kms;
    p.policy.responders.push_back(IdValue{kms_.id_r});
    return p;
  }

  KmsClient ClientFor(const TestHttpServer& server) {
    auto http = web::client::HttpClient::FromUrl(server.url());
    EXPECT_TRUE(http.ok());
    return KmsClient(std::move(*http));
  }

  crypto::TransientCryptoProvider provider_;
  FakeKms kms_{provider_};
};

TEST_F(KmsClientTest, RequestsAndResolvesOverOneConnection) {
  TestHttpServer server([this](const ServerRequest& req) { return Answer(req); });
  KmsClient client = ClientFor(server);
  auto grant = client.RequestTicket(RequestParams());
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  EXPECT_EQ(grant->mpki, kms_.mpki);
  ResolveInitParams rp;
  rp.psk = kms_.psk_r;
  rp.responder.id = kms_.id_r;
  rp.kms.id = kms_.id_kms;
  rp.ticket = grant->ticket;
  auto resolved = client.ResolveTicket(rp);
  ASSERT_TRUE(resolved.ok()) << resolved.error().ToString();
  EXPECT_EQ(resolved->mpki, kms_.mpki);
  EXPECT_EQ(resolved->session_keys.at(0).key, kms_.tgk);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.RequestTicket(RequestParams()).ok());
  EXPECT_EQ(client.http().connections_opened(), 1u);
  EXPECT_EQ(server.requests(), 5);
}

TEST_F(KmsClientTest, HttpStatusesAreTheirOwnKind) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\n\r\ntoken down\n"};
  });
  KmsClient client = ClientFor(server);
  auto r = client.RequestTicket(RequestParams());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kHttpStatus);
  EXPECT_EQ(r.error().http_status, 503);
  EXPECT_NE(r.error().ToString().find("token down"), std::string::npos) << r.error().ToString();
}

TEST_F(KmsClientTest, ContentTypeAndBase64AreChecked) {
  std::atomic<int> mode{0};
  TestHttpServer server([&](const ServerRequest& req) {
    auto body = Base64Decode(req.body);
    const Bytes answer = kms_.AnswerRequest(*body);
    switch (mode.load()) {
      case 0: return ServerReply{HttpOk(B64(answer), "text/plain")};
      case 1: return ServerReply{HttpOk("not base64!", "application/mikey")};
      case 2: return ServerReply{HttpOk(B64(answer) + "\r\n", "Application/MIKEY; version=1")};
      default: return ServerReply{HttpOk(B64(answer), "application/mikey")};
    }
  });
  KmsClient client = ClientFor(server);
  auto r = client.RequestTicket(RequestParams());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kBadResponse);
  mode = 1;
  r = client.RequestTicket(RequestParams());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kBadResponse);
  mode = 2;  // media type case-insensitive, parameters and trailing whitespace allowed
  r = client.RequestTicket(RequestParams());
  EXPECT_TRUE(r.ok()) << r.error().ToString();
}

TEST_F(KmsClientTest, MikeyErrorMessagesCarryTheirNumber) {
  TestHttpServer server([this](const ServerRequest& req) {
    auto body = Base64Decode(req.body);
    const SecretBytes auth = kms_.RequestAuthKey(*body);
    return ServerReply{HttpOk(B64(kms_.Error(*body, 1, &auth)), "application/mikey")};
  });
  KmsClient client = ClientFor(server);
  auto r = client.RequestTicket(RequestParams());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kMikeyError);
  EXPECT_EQ(r.error().mikey_error(), 1);
  EXPECT_TRUE(r.error().error_authenticated);
}

TEST_F(KmsClientTest, TransportFailuresAreTheirOwnKind) {
  uint16_t port = 0;
  {
    TestHttpServer server([](const ServerRequest&) { return ServerReply{HttpOk("")}; });
    port = server.port();
  }
  KmsClient client(web::client::HttpClient("127.0.0.1", port));
  auto r = client.RequestTicket(RequestParams());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kTransport);
}

TEST_F(KmsClientTest, ExchangeReturnsTheRawAnswer) {
  TestHttpServer server([this](const ServerRequest& req) { return Answer(req); });
  KmsClient client = ClientFor(server);
  auto request = BuildRequestInitPsk(client.provider(), RequestParams());
  ASSERT_TRUE(request.ok());
  auto answer = client.Exchange(AnnexARequest::kTicketRequest, request->bytes);
  ASSERT_TRUE(answer.ok()) << answer.error().ToString();
  EXPECT_EQ(answer->at(1), 13);  // REQUEST_RESP
  EXPECT_TRUE(ParseRequestResp(client.provider(), *answer, *request).ok());
}

}  // namespace
}  // namespace tkms::ue
