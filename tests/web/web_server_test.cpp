// WebServer end to end: a real WebServer (the event listener of transport.h)
// on 127.0.0.1 (ports chosen by the kernel), a FakeKmsService behind it, and
// a raw-socket HTTP/1.1 client.
// Covers every Annex A check (docs/http.md, TS 33.328 Annex A), the KmsReply
// mapping, keep-alive, request ids, the admin endpoints and exact metrics,
// the admin listener under a saturated Ua pool, draining on Stop(), Start()
// errors and the echo server. After every refusal a valid request must still
// succeed.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/base/log.h"
#include "tests/web/fake_service.h"
#include "tests/web/http_client.h"
#include "web/echo.h"
#include "web/server.h"

namespace tkms::web {
namespace {

using testing::FakeKmsService;
using testing::Headers;
using testing::HttpClient;
using testing::HttpReply;

constexpr const char* kRequestTarget = "/keymanagement?requesttype=ticketrequest";
constexpr const char* kResolveTarget = "/keymanagement?requesttype=ticketresolve";
constexpr const char* kValidBody = "AQID/w==";  // bytes 01 02 03 ff
const std::vector<uint8_t> kValidBytes = {0x01, 0x02, 0x03, 0xff};
constexpr size_t kMaxBody = 1024;

bool HasLine(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

// Binds and listens on 127.0.0.1 with a kernel-chosen port; closes on exit.
class PortBlocker {
 public:
  PortBlocker() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(fd_, 1) != 0) {
      return;
    }
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~PortBlocker() { close(fd_); }
  PortBlocker(const PortBlocker&) = delete;
  PortBlocker& operator=(const PortBlocker&) = delete;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

class WebServerTest : public ::testing::Test {
 protected:
  static WebServerOptions TestOptions() {
    WebServerOptions options;
    options.ua_listen = "127.0.0.1:0";
    options.admin_listen = "127.0.0.1:0";
    options.max_body_bytes = kMaxBody;
    options.worker_threads = 4;
    options.request_timeout_ms = 5000;
    options.keep_alive_timeout_ms = 5000;
    return options;
  }

  void SetUp() override { StartServer(TestOptions()); }

  void TearDown() override {
    service_.OpenGate();  // never leave a handler blocked: Stop() would wait for it
    server_.reset();
  }

  void StartServer(const WebServerOptions& options) {
    service_.OpenGate();
    server_.reset();
    auto started = WebServer::Start(options, service_);
    ASSERT_TRUE(started.ok()) << started.error().ToString();
    server_ = std::move(*started);
  }

  uint16_t ua() const { return server_->ua_port(); }
  uint16_t admin() const { return server_->admin_port(); }
  Metrics& metrics() { return server_->metrics(); }

  std::optional<HttpReply> Admin(const std::string& path, const std::string& method = "GET") {
    HttpClient client(admin());
    return client.Request(method, path);
  }

  // The liveness check after every negative case: a fresh, valid request.
  void ExpectValidRequestSucceeds() {
    HttpClient client(ua());
    auto reply = client.Post(kRequestTarget, kValidBody);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 200);
  }

  // Checks the headers every response carries, and a text/plain one-line body.
  static void ExpectRefusal(const std::optional<HttpReply>& reply, int status) {
    ASSERT_TRUE(reply.has_value()) << "no response, expected " << status;
    EXPECT_EQ(reply->status, status) << reply->body;
    EXPECT_EQ(reply->header("Content-Type"), "text/plain; charset=utf-8");
    EXPECT_EQ(reply->header("Content-Length"), std::to_string(reply->body.size()));
    EXPECT_EQ(reply->header("Cache-Control"), "no-store");
    EXPECT_FALSE(reply->header("X-Request-Id").empty());
    ASSERT_FALSE(reply->body.empty());
    EXPECT_EQ(reply->body.back(), '\n');
    EXPECT_EQ(reply->body.find('\n'), reply->body.size() - 1) << reply->body;
  }

  FakeKmsService service_;
  std::unique_ptr<WebServer> server_;
};

// ---- 1. path ------------------------------------------------------------------

TEST_F(WebServerTest, OtherPathsAre404) {
  HttpClient client(ua());
  for (const char* target : {"/", "/keymanagement/", "/keymanagementx?requesttype=ticketrequest",
                             "/other?requesttype=ticketrequest", "/healthz", "/metrics",
                             "/a/../keymanagement?requesttype=ticketrequest",
                             "/KEYMANAGEMENT?requesttype=ticketrequest"}) {
    auto reply = client.Post(target, kValidBody);
    ExpectRefusal(reply, 404);
    EXPECT_EQ(reply->body, "not found\n");
  }
  EXPECT_EQ(metrics().rejections(404), 8u);
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

// ---- 2. method ----------------------------------------------------------------

TEST_F(WebServerTest, OtherMethodsAre405WithAllow) {
  HttpClient client(ua());
  for (const char* method : {"GET", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"}) {
    auto reply = client.Request(method, kRequestTarget, {{"Content-Type", "application/mikey"}});
    if (std::string(method) == "HEAD") {
      // The answer to HEAD has no body on the wire, only its Content-Length.
      ASSERT_TRUE(reply.has_value());
      EXPECT_EQ(reply->status, 405);
      EXPECT_EQ(reply->header("Allow"), "POST");
      EXPECT_EQ(reply->header("Content-Length"), "19");
      continue;
    }
    ExpectRefusal(reply, 405);
    EXPECT_EQ(reply->header("Allow"), "POST") << method;
  }
  EXPECT_EQ(metrics().rejections(405), 6u);
  // The path is checked before the method.
  ExpectRefusal(client.Request("GET", "/nothing"), 404);
  ExpectValidRequestSucceeds();
}

// ---- 3. requesttype -------------------------------------------------------------

TEST_F(WebServerTest, MissingInvalidOrRepeatedRequestTypeIs400) {
  HttpClient client(ua());
  for (const char* target :
       {"/keymanagement", "/keymanagement?", "/keymanagement?requesttype=",
        "/keymanagement?requesttype=TicketRequest", "/keymanagement?requesttype=ticket",
        "/keymanagement?requesttype=ticketrequest&requesttype=ticketrequest",
        "/keymanagement?requesttype=ticketrequest&requesttype=ticketresolve",
        "/keymanagement?type=ticketrequest"}) {
    auto reply = client.Post(target, kValidBody);
    ExpectRefusal(reply, 400);
    EXPECT_EQ(reply->header("Connection"), "keep-alive") << target;
  }
  EXPECT_EQ(metrics().rejections(400), 8u);
  EXPECT_EQ(client.connects(), 1);
  // A malformed %XX is not a request-target at all (RFC 3986 §2.1, RFC 9112
  // §3.2): the listener's parser refuses it before the Ua handler sees it,
  // a protocol error, and the connection closes.
  auto bad_escape = client.Post("/keymanagement?requesttype=ticket%ZZ", kValidBody);
  ExpectRefusal(bad_escape, 400);
  EXPECT_EQ(bad_escape->header("Connection"), "close");
  EXPECT_EQ(metrics().rejections(400), 8u);
  EXPECT_EQ(metrics().protocol_errors(400), 1u);
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

TEST_F(WebServerTest, ExtraUriParametersAreIgnored) {
  HttpClient client(ua());
  auto reply = client.Post("/keymanagement?foo=bar&requesttype=ticketresolve&x", kValidBody);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  ASSERT_EQ(service_.calls().size(), 1u);
  EXPECT_EQ(service_.calls()[0].context.type, kms::RequestType::kTicketResolve);
}

// ---- 4. Content-Type ------------------------------------------------------------

TEST_F(WebServerTest, WrongOrMissingContentTypeIs415) {
  HttpClient client(ua());
  for (const char* type : {"text/plain", "application/octet-stream", "application/mikeyx",
                           "application/x-www-form-urlencoded"}) {
    ExpectRefusal(client.Post(kRequestTarget, kValidBody, type), 415);
  }
  ExpectRefusal(client.Post(kRequestTarget, kValidBody, ""), 415);
  // Two Content-Type headers are refused even when one is right.
  ExpectRefusal(
      client.Request("POST", kRequestTarget,
                     {{"Content-Type", "application/mikey"}, {"Content-Type", "text/plain"}},
                     kValidBody),
      415);
  EXPECT_EQ(metrics().rejections(415), 6u);
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

TEST_F(WebServerTest, ContentTypeIsCaseInsensitiveAndMayHaveParameters) {
  HttpClient client(ua());
  for (const char* type :
       {"Application/MIKEY", "application/mikey; charset=us-ascii", "application/mikey ;foo=bar"}) {
    auto reply = client.Post(kRequestTarget, kValidBody, type);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 200) << type;
  }
  EXPECT_EQ(service_.calls().size(), 3u);
  EXPECT_EQ(client.connects(), 1);
}

// ---- 5. size and framing ----------------------------------------------------------

TEST_F(WebServerTest, BodyLargerThanLimitIs413FromContentLength) {
  HttpClient client(ua());
  // Only the head is sent: the limit is enforced from Content-Length alone.
  ASSERT_TRUE(client.SendRaw(std::string("POST ") + kRequestTarget +
                             " HTTP/1.1\r\nHost: x\r\nContent-Type: application/mikey\r\n"
                             "Content-Length: " +
                             std::to_string(kMaxBody + 1) + "\r\n\r\n"));
  auto reply = client.ReadReply();
  ExpectRefusal(reply, 413);
  EXPECT_EQ(reply->header("Connection"), "close");
  EXPECT_TRUE(client.WaitForClose());
  EXPECT_EQ(metrics().rejections(413), 1u);

  // A huge declared length is refused the same way.
  HttpClient huge(ua());
  ASSERT_TRUE(huge.SendRaw(std::string("POST ") + kRequestTarget +
                           " HTTP/1.1\r\nHost: x\r\nContent-Type: application/mikey\r\n"
                           "Content-Length: 99999999999\r\n\r\nAAAA"));
  ExpectRefusal(huge.ReadReply(), 413);
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

TEST_F(WebServerTest, BodyOfExactlyTheLimitIsAccepted) {
  // 1024 base64 characters = 768 bytes.
  const std::vector<uint8_t> bytes(kMaxBody / 4 * 3, 0x5a);
  const std::string body = Base64Encode(bytes);
  ASSERT_EQ(body.size(), kMaxBody);
  HttpClient client(ua());
  auto reply = client.Post(kRequestTarget, body);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  ASSERT_EQ(service_.calls().size(), 1u);
  EXPECT_EQ(service_.calls()[0].mikey, bytes);
}

TEST_F(WebServerTest, ExpectContinueGetsAnInterimResponse) {
  HttpClient client(ua());
  ASSERT_TRUE(client.SendRaw(std::string("POST ") + kRequestTarget +
                             " HTTP/1.1\r\nHost: x\r\nContent-Type: application/mikey\r\n"
                             "Content-Length: 8\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = client.ReadReply();
  ASSERT_TRUE(interim.has_value());
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client.SendRaw(kValidBody));
  auto reply = client.ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->header("Connection"), "keep-alive");
  ASSERT_EQ(service_.calls().size(), 1u);
  EXPECT_EQ(service_.calls()[0].mikey, kValidBytes);

  // A refused request gets its final status instead of 100 Continue, and the
  // connection closes (the unsent body is never read).
  HttpClient refused(ua());
  ASSERT_TRUE(refused.SendRaw(std::string("POST ") + kRequestTarget +
                              " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                              "Content-Length: 8\r\nExpect: 100-continue\r\n\r\n"));
  auto final_reply = refused.ReadReply();
  ExpectRefusal(final_reply, 415);
  EXPECT_EQ(final_reply->header("Connection"), "close");
  ExpectValidRequestSucceeds();
}

TEST_F(WebServerTest, MissingContentLengthIs411) {
  HttpClient client(ua());
  ASSERT_TRUE(client.SendRaw(std::string("POST ") + kRequestTarget +
                             " HTTP/1.1\r\nHost: x\r\nContent-Type: application/mikey\r\n\r\n"));
  auto reply = client.ReadReply();
  ExpectRefusal(reply, 411);
  EXPECT_EQ(reply->header("Connection"), "close");
  EXPECT_TRUE(client.WaitForClose());
  EXPECT_EQ(metrics().rejections(411), 1u);
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

// Chunked bodies are accepted (RFC 9112 §7.1, tests/web/chunked_test.cpp has
// the rules); the whole body was read, so the connection stays open for the
// next request.
TEST_F(WebServerTest, ChunkedBodyIsAccepted) {
  HttpClient client(ua());
  ASSERT_TRUE(client.SendRaw(std::string("POST ") + kRequestTarget +
                             " HTTP/1.1\r\nHost: x\r\nContent-Type: application/mikey\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n8\r\nAQID/w==\r\n0\r\n\r\n"));
  auto reply = client.ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->header("Connection"), "keep-alive");
  auto second = client.Post(kRequestTarget, kValidBody);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(client.connects(), 1);
  EXPECT_EQ(metrics().rejections(411), 0u);
  ASSERT_EQ(service_.calls().size(), 2u);
  EXPECT_EQ(service_.calls()[0].mikey, kValidBytes);
}

TEST_F(WebServerTest, RepeatedContentLengthIs400) {
  HttpClient client(ua());
  ASSERT_TRUE(client.SendRaw(std::string("POST ") + kRequestTarget +
                             " HTTP/1.1\r\nHost: x\r\nContent-Type: application/mikey\r\n"
                             "Content-Length: 8\r\nContent-Length: 8\r\n\r\nAQID/w=="));
  auto reply = client.ReadReply();
  ExpectRefusal(reply, 400);
  EXPECT_EQ(reply->header("Connection"), "close");
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

// ---- 6. body encoding ----------------------------------------------------------

TEST_F(WebServerTest, EmptyOrNonBase64BodyIs400) {
  HttpClient client(ua());
  for (const char* body :
       {"", " \r\n", "not base64!", "AQID/x==", "AQID/w", "AQID_w==", "AQID/w==AQ=="}) {
    auto reply = client.Post(kRequestTarget, body);
    ExpectRefusal(reply, 400);
  }
  // Binary garbage, including NUL bytes.
  ExpectRefusal(client.Post(kRequestTarget, std::string("\x00\x01\xff\xfe", 4)), 400);
  EXPECT_EQ(metrics().rejections(400), 8u);
  EXPECT_TRUE(service_.calls().empty());
  EXPECT_EQ(client.connects(), 1);  // refusals after the body was read keep the connection
  ExpectValidRequestSucceeds();
}

TEST_F(WebServerTest, WhitespaceAndNewlinesInBase64AreAccepted) {
  HttpClient client(ua());
  auto reply = client.Post(kRequestTarget, "  AQ\r\nID\t/w\n==\r\n");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  ASSERT_EQ(service_.calls().size(), 1u);
  EXPECT_EQ(service_.calls()[0].mikey, kValidBytes);
}

// ---- 7. the service and the reply mapping ------------------------------------------

TEST_F(WebServerTest, ServiceReceivesDecodedBytesTypeAndContext) {
  const std::vector<uint8_t> bytes = {0x01, 0x1a, 0x00, 0xff, 0x80, 0x7f, 0x00};
  HttpClient client(ua());
  auto first = client.Post(kRequestTarget, Base64Encode(bytes));
  auto second = client.Post(kResolveTarget, kValidBody);
  ASSERT_TRUE(first.has_value() && second.has_value());
  const auto calls = service_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].mikey, bytes);
  EXPECT_EQ(calls[0].context.type, kms::RequestType::kTicketRequest);
  EXPECT_EQ(calls[0].context.interface, kms::Interface::kUa);
  EXPECT_EQ(calls[0].context.request_id, first->header("X-Request-Id"));
  EXPECT_TRUE(std::regex_match(calls[0].context.peer, std::regex(R"(127\.0\.0\.1:[0-9]+)")))
      << calls[0].context.peer;
  EXPECT_EQ(calls[1].mikey, kValidBytes);
  EXPECT_EQ(calls[1].context.type, kms::RequestType::kTicketResolve);
  EXPECT_EQ(calls[1].context.request_id, second->header("X-Request-Id"));
  EXPECT_EQ(calls[0].context.peer, calls[1].context.peer);  // same connection
}

TEST_F(WebServerTest, OkReplyIs200WithBase64Mikey) {
  kms::KmsReply reply;
  reply.outcome = kms::Outcome::kOk;
  reply.mikey.assign(300, 0xa5);  // long enough that a wrapping encoder would wrap
  reply.user = "sip:alice@example.org";
  service_.SetReply(reply);
  HttpClient client(ua());
  auto http = client.Post(kRequestTarget, kValidBody);
  ASSERT_TRUE(http.has_value());
  EXPECT_EQ(http->status, 200);
  EXPECT_EQ(http->header("Content-Type"), "application/mikey");
  EXPECT_EQ(http->header("Cache-Control"), "no-store");
  EXPECT_EQ(http->header("Connection"), "keep-alive");
  EXPECT_EQ(http->body, Base64Encode(reply.mikey));
  EXPECT_EQ(http->body.find('\n'), std::string::npos);
  EXPECT_EQ(http->header("Content-Length"), std::to_string(http->body.size()));
  EXPECT_EQ(metrics().requests(kms::RequestType::kTicketRequest, kms::Outcome::kOk), 1u);
}

TEST_F(WebServerTest, MikeyErrorReplyIs200WithTheErrorMessage) {
  kms::KmsReply reply;
  reply.outcome = kms::Outcome::kMikeyError;
  reply.refusal = kms::Refusal::kAuthentication;
  reply.mikey = {0x01, 0x00, 0x12, 0x34};
  reply.mikey_error = 5;
  reply.detail = "bad V MAC";
  service_.SetReply(reply);
  HttpClient client(ua());
  auto http = client.Post(kResolveTarget, kValidBody);
  ASSERT_TRUE(http.has_value());
  EXPECT_EQ(http->status, 200);
  EXPECT_EQ(http->header("Content-Type"), "application/mikey");
  EXPECT_EQ(http->body, Base64Encode(reply.mikey));
  EXPECT_EQ(metrics().requests(kms::RequestType::kTicketResolve, kms::Outcome::kMikeyError), 1u);
  EXPECT_EQ(metrics().mikey_errors(5), 1u);
  EXPECT_EQ(metrics().refusals(kms::Refusal::kAuthentication), 1u);
}

TEST_F(WebServerTest, BadRequestOutcomeIs400) {
  kms::KmsReply reply;
  reply.outcome = kms::Outcome::kBadRequest;
  reply.refusal = kms::Refusal::kMalformed;
  service_.SetReply(reply);
  HttpClient client(ua());
  ExpectRefusal(client.Post(kRequestTarget, kValidBody), 400);
  EXPECT_EQ(metrics().requests(kms::RequestType::kTicketRequest, kms::Outcome::kBadRequest), 1u);
  EXPECT_EQ(metrics().rejections(400), 0u);  // reached the service: not an HTTP rejection
  EXPECT_EQ(metrics().refusals(kms::Refusal::kMalformed), 1u);
}

TEST_F(WebServerTest, UnavailableIs503WithRetryAfter) {
  kms::KmsReply reply;
  reply.outcome = kms::Outcome::kUnavailable;
  reply.refusal = kms::Refusal::kToken;
  service_.SetReply(reply);
  HttpClient client(ua());
  auto http = client.Post(kRequestTarget, kValidBody);
  ExpectRefusal(http, 503);
  EXPECT_EQ(http->header("Retry-After"), "1");
  EXPECT_EQ(metrics().token_errors(), 1u);
  EXPECT_EQ(metrics().requests(kms::RequestType::kTicketRequest, kms::Outcome::kUnavailable), 1u);
}

TEST_F(WebServerTest, InternalIs500) {
  kms::KmsReply reply;
  reply.outcome = kms::Outcome::kInternal;
  reply.refusal = kms::Refusal::kInternal;
  service_.SetReply(reply);
  HttpClient client(ua());
  ExpectRefusal(client.Post(kRequestTarget, kValidBody), 500);
  // kOk without a message is a service fault, not an empty 200.
  kms::KmsReply empty;
  empty.outcome = kms::Outcome::kOk;
  service_.SetReply(empty);
  ExpectRefusal(client.Post(kRequestTarget, kValidBody), 500);
  EXPECT_EQ(metrics().requests(kms::RequestType::kTicketRequest, kms::Outcome::kInternal), 2u);
}

TEST_F(WebServerTest, ThrowingServiceIs500) {
  service_.SetThrow(true);
  HttpClient client(ua());
  ExpectRefusal(client.Post(kRequestTarget, kValidBody), 500);
  ExpectRefusal(client.Post(kResolveTarget, kValidBody), 500);
  EXPECT_EQ(metrics().requests(kms::RequestType::kTicketRequest, kms::Outcome::kInternal), 1u);
  EXPECT_EQ(metrics().requests(kms::RequestType::kTicketResolve, kms::Outcome::kInternal), 1u);
  service_.SetThrow(false);
  ExpectValidRequestSucceeds();
}

// ---- connections and request ids ------------------------------------------------

TEST_F(WebServerTest, KeepAliveCarriesSeveralRequests) {
  HttpClient client(ua());
  std::set<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto reply = client.Post(i % 2 == 0 ? kRequestTarget : kResolveTarget, kValidBody);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(reply->header("Connection"), "keep-alive");
    ids.insert(reply->header("X-Request-Id"));
  }
  // Refusals with a small Content-Length body keep the connection too.
  for (auto reply : {client.Post("/elsewhere", kValidBody),
                     client.Post(kRequestTarget, kValidBody, "text/plain"),
                     client.Request("GET", kRequestTarget)}) {
    ASSERT_TRUE(reply.has_value());
    EXPECT_GE(reply->status, 400);
    EXPECT_EQ(reply->header("Connection"), "keep-alive");
    ids.insert(reply->header("X-Request-Id"));
  }
  auto last = client.Post(kRequestTarget, kValidBody);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->status, 200);
  ids.insert(last->header("X-Request-Id"));
  EXPECT_EQ(client.connects(), 1);
  EXPECT_EQ(ids.size(), 7u);
  EXPECT_EQ(service_.calls().size(), 4u);
}

TEST_F(WebServerTest, PipelinedRequestsAreAnsweredInOrder) {
  HttpClient client(ua());
  std::string two;
  for (const char* target : {kRequestTarget, kResolveTarget}) {
    two += std::string("POST ") + target +
           " HTTP/1.1\r\nHost: x\r\nContent-Type: application/mikey\r\nContent-Length: "
           "8\r\n\r\nAQID/w==";
  }
  ASSERT_TRUE(client.SendRaw(two));
  for (int i = 0; i < 2; ++i) {
    auto reply = client.ReadReply();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 200);
  }
  const auto calls = service_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].context.type, kms::RequestType::kTicketRequest);
  EXPECT_EQ(calls[1].context.type, kms::RequestType::kTicketResolve);
}

TEST_F(WebServerTest, ConnectionCloseIsHonoured) {
  HttpClient client(ua());
  auto reply =
      client.Request("POST", kRequestTarget,
                     {{"Content-Type", "application/mikey"}, {"Connection", "close"}}, kValidBody);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->header("Connection"), "close");
  EXPECT_TRUE(client.WaitForClose());
  // HTTP/1.0 without keep-alive closes as well.
  HttpClient old(ua());
  ASSERT_TRUE(old.SendRaw(
      std::string("POST ") + kRequestTarget +
      " HTTP/1.0\r\nContent-Type: application/mikey\r\nContent-Length: 8\r\n\r\nAQID/w=="));
  auto reply10 = old.ReadReply();
  ASSERT_TRUE(reply10.has_value());
  EXPECT_EQ(reply10->status, 200);
  EXPECT_EQ(reply10->header("Connection"), "close");
  EXPECT_TRUE(old.WaitForClose());
}

TEST_F(WebServerTest, KeepAliveCanBeDisabled) {
  WebServerOptions options = TestOptions();
  options.keep_alive_timeout_ms = 0;
  StartServer(options);
  HttpClient client(ua());
  auto reply = client.Post(kRequestTarget, kValidBody);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->header("Connection"), "close");
  EXPECT_TRUE(client.WaitForClose());
}

TEST_F(WebServerTest, RequestIdsAreUnique) {
  const std::regex format("r-[0-9a-f]{8}-[0-9]+");
  std::set<std::string> ids;
  for (int c = 0; c < 3; ++c) {
    HttpClient client(ua());
    for (int i = 0; i < 4; ++i) {
      auto reply = i == 3 ? client.Post("/nope", "") : client.Post(kRequestTarget, kValidBody);
      ASSERT_TRUE(reply.has_value());
      const std::string id = reply->header("X-Request-Id");
      EXPECT_EQ(reply->count_header("X-Request-Id"), 1);
      EXPECT_TRUE(std::regex_match(id, format)) << id;
      ids.insert(id);
    }
  }
  EXPECT_EQ(ids.size(), 12u);
}

TEST_F(WebServerTest, MalformedHttpGetsAShortResponse) {
  auto reply = testing::OneShot(ua(), "GARBAGE\r\n\r\n");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 400);
  EXPECT_EQ(reply->header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(reply->header("Connection"), "close");
  EXPECT_FALSE(reply->header("X-Request-Id").empty());
  // The parser's own one-line reason (http1_parser.h: HeadError::detail).
  EXPECT_EQ(reply->body, "request line is not method SP target SP version\n");
  EXPECT_EQ(metrics().protocol_errors(400), 1u);
  EXPECT_EQ(metrics().rejections(400), 0u);
  ExpectValidRequestSucceeds();
}

// ---- logging ------------------------------------------------------------------------

TEST_F(WebServerTest, OneLogLinePerUaRequestWithoutBodyBytes) {
  char path[] = "/tmp/tkms_web_log_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  SetLogFd(fd);
  kms::KmsReply reply;
  reply.outcome = kms::Outcome::kMikeyError;
  reply.refusal = kms::Refusal::kReplay;
  reply.mikey = {0x01, 0x00, 0x12, 0x34};
  reply.mikey_error = 26;
  reply.user = "sip:bob@example.org";
  service_.SetReply(reply);
  {
    HttpClient client(ua());
    ASSERT_TRUE(client.Post(kResolveTarget, "SECRETBASE64SECRETBASE64").has_value());
    ASSERT_TRUE(client.Post("/x", "U0VDUkVU").has_value());
  }
  // The line is written after the response has left: wait for the second.
  std::stringstream text;
  std::vector<std::string> lines;
  for (int attempt = 0; attempt < 1000 && lines.size() < 2; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::ifstream in(path);
    text.str("");
    text << in.rdbuf();
    lines.clear();
    std::string line;
    std::istringstream scan(text.str());
    while (std::getline(scan, line)) {
      if (line.find(" event=request ") != std::string::npos) lines.push_back(line);
    }
  }
  SetLogFd(2);
  close(fd);
  unlink(path);
  ASSERT_EQ(lines.size(), 2u) << text.str();
  const std::string& ok = lines[0];
  for (const char* field : {" id=r-", " peer=127.0.0.1:", " type=ticketresolve", " status=200",
                            " outcome=mikey_error", " refusal=replay", " mikey_error=26",
                            " user=sip:bob@example.org", " bytes_in=24", " bytes_out=8", " us="}) {
    EXPECT_NE(ok.find(field), std::string::npos) << field << " in " << ok;
  }
  const std::string& refused = lines[1];
  for (const char* field : {" type=-", " status=404", " outcome=rejected", " refusal=path"}) {
    EXPECT_NE(refused.find(field), std::string::npos) << field << " in " << refused;
  }
  EXPECT_EQ(text.str().find("SECRETBASE64"), std::string::npos);
  EXPECT_EQ(text.str().find("U0VDUkVU"), std::string::npos);
  EXPECT_EQ(text.str().find(Base64Encode(reply.mikey)), std::string::npos);
}

// ---- admin listener ------------------------------------------------------------------

TEST_F(WebServerTest, Healthz) {
  auto reply = Admin("/healthz");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "ok\n");
  EXPECT_EQ(reply->header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(reply->header("Connection"), "close");
  ExpectRefusal(Admin("/nothing"), 404);
  ExpectRefusal(Admin("/keymanagement?requesttype=ticketrequest", "POST"), 404);
  auto post = Admin("/healthz", "POST");
  ExpectRefusal(post, 405);
  EXPECT_EQ(post->header("Allow"), "GET");
  // The Ua listener does not serve admin paths and vice versa (checked above).
  ExpectValidRequestSucceeds();
}

TEST_F(WebServerTest, AdminPostRoutesGetTheBodyAndAnswerJson) {
  WebServerOptions options = TestOptions();
  std::string seen;
  AdminPostRoute route;
  route.path = "/admin/thing";
  route.max_body_bytes = 16;
  route.handler = [&seen](std::string_view body, const Peer&) {
    seen = std::string(body);
    if (body == "boom") throw std::runtime_error("handler failure");
    return AdminPostReply{body == "no" ? 409 : 200, "{\"ok\":true}\n"};
  };
  options.admin_post_routes.push_back(route);
  StartServer(options);

  HttpClient client(admin());
  auto ok = client.Request("POST", "/admin/thing", {{"Content-Type", "application/json"}}, "hello");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "{\"ok\":true}\n");
  EXPECT_EQ(ok->header("Content-Type"), "application/json");
  EXPECT_EQ(seen, "hello");

  HttpClient c2(admin());
  auto conflict = c2.Request("POST", "/admin/thing", {}, "no");
  ASSERT_TRUE(conflict.has_value());
  EXPECT_EQ(conflict->status, 409);

  seen.clear();
  HttpClient c3(admin());
  auto big = c3.Request("POST", "/admin/thing", {}, std::string(17, 'x'));
  ExpectRefusal(big, 413);
  EXPECT_EQ(seen, "");  // the handler never saw it

  HttpClient c4(admin());
  auto thrown = c4.Request("POST", "/admin/thing", {}, "boom");
  ASSERT_TRUE(thrown.has_value());
  EXPECT_EQ(thrown->status, 500);
  EXPECT_EQ(thrown->body, "{\"error\":\"internal error\"}\n");

  auto get = Admin("/admin/thing");
  ExpectRefusal(get, 405);
  EXPECT_EQ(get->header("Allow"), "POST");
  ExpectRefusal(Admin("/admin/other", "POST"), 404);
  // The server keeps serving.
  ExpectValidRequestSucceeds();
  EXPECT_EQ(Admin("/healthz")->status, 200);
}

TEST_F(WebServerTest, AdminPostRoutesAreValidated) {
  WebServerOptions options = TestOptions();
  AdminPostRoute route;
  route.path = "/keymanagement";
  route.handler = [](std::string_view, const Peer&) { return AdminPostReply{}; };
  options.admin_post_routes.push_back(route);
  EXPECT_EQ(WebServer::Start(options, service_).error().code(), StatusCode::kInvalidArgument);
  options.admin_post_routes[0].path = "/admin/x";
  options.admin_post_routes[0].handler = nullptr;
  EXPECT_EQ(WebServer::Start(options, service_).error().code(), StatusCode::kInvalidArgument);
}

TEST_F(WebServerTest, ReadyzReflectsTheService) {
  auto ready = Admin("/readyz");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(ready->header("Content-Type"), "application/json");
  EXPECT_EQ(ready->body,
            "{\"ready\":true,\"token\":true,\"config\":true,\"keys\":true,\"detail\":\"ok\"}\n");

  kms::Readiness readiness;
  readiness.token_ready = true;
  readiness.config_loaded = true;
  readiness.keys_present = false;
  readiness.detail = "no ticket key \"tk-1\"\n";
  service_.SetReadiness(readiness);
  auto not_ready = Admin("/readyz");
  ASSERT_TRUE(not_ready.has_value());
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_EQ(not_ready->body,
            "{\"ready\":false,\"token\":true,\"config\":true,\"keys\":false,"
            "\"detail\":\"no ticket key \\\"tk-1\\\"\\u000a\"}\n");
}

TEST_F(WebServerTest, MetricsAfterAKnownSequence) {
  ASSERT_TRUE(
      metrics()
          .SetGauge("tkms_test_gauge", "A gauge registered by the daemon.", [] { return 3.0; })
          .ok());
  HttpClient client(ua());
  // Two ok ticket requests.
  ASSERT_EQ(client.Post(kRequestTarget, kValidBody)->status, 200);
  ASSERT_EQ(client.Post(kRequestTarget, kValidBody)->status, 200);
  // One MIKEY Error (replay, error 26) on a resolve.
  kms::KmsReply replay;
  replay.outcome = kms::Outcome::kMikeyError;
  replay.refusal = kms::Refusal::kReplay;
  replay.mikey = {0x01};
  replay.mikey_error = 26;
  service_.SetReply(replay);
  ASSERT_EQ(client.Post(kResolveTarget, kValidBody)->status, 200);
  // One token failure.
  kms::KmsReply token;
  token.outcome = kms::Outcome::kUnavailable;
  token.refusal = kms::Refusal::kToken;
  service_.SetReply(token);
  ASSERT_EQ(client.Post(kRequestTarget, kValidBody)->status, 503);
  // Rejections: 404, 405, 415, 400 x2, 413.
  ASSERT_EQ(client.Post("/x", kValidBody)->status, 404);
  ASSERT_EQ(client.Request("GET", kRequestTarget)->status, 405);
  ASSERT_EQ(client.Post(kRequestTarget, kValidBody, "text/plain")->status, 415);
  ASSERT_EQ(client.Post("/keymanagement", kValidBody)->status, 400);
  ASSERT_EQ(client.Post(kRequestTarget, "!!!!")->status, 400);
  ASSERT_EQ(client.Post(kRequestTarget, std::string(kMaxBody + 1, 'A'))->status, 413);
  service_.SetReply(kms::KmsReply{kms::Outcome::kOk, kms::Refusal::kNone, {0x01}, {}, {}, {}});

  auto reply = Admin("/metrics");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = reply->body;
  const std::vector<std::string> expected = {
      "tkms_requests_total{type=\"ticketrequest\",outcome=\"ok\"} 2",
      "tkms_requests_total{type=\"ticketrequest\",outcome=\"mikey_error\"} 0",
      "tkms_requests_total{type=\"ticketrequest\",outcome=\"unavailable\"} 1",
      "tkms_requests_total{type=\"ticketresolve\",outcome=\"mikey_error\"} 1",
      "tkms_requests_total{type=\"ticketresolve\",outcome=\"ok\"} 0",
      "tkms_http_rejections_total{status=\"400\"} 2",
      "tkms_http_rejections_total{status=\"404\"} 1",
      "tkms_http_rejections_total{status=\"405\"} 1",
      "tkms_http_rejections_total{status=\"411\"} 0",
      "tkms_http_rejections_total{status=\"413\"} 1",
      "tkms_http_rejections_total{status=\"415\"} 1",
      "tkms_request_duration_seconds_bucket{type=\"ticketrequest\",le=\"+Inf\"} 3",
      "tkms_request_duration_seconds_count{type=\"ticketrequest\"} 3",
      "tkms_request_duration_seconds_count{type=\"ticketresolve\"} 1",
      "tkms_mikey_errors_total{error_no=\"26\"} 1",
      "tkms_refusals_total{refusal=\"replay\"} 1",
      "tkms_refusals_total{refusal=\"token\"} 1",
      "tkms_refusals_total{refusal=\"authentication\"} 0",
      "tkms_replay_rejections_total 1",
      "tkms_token_errors_total 1",
      "# TYPE tkms_test_gauge gauge",
      "tkms_test_gauge 3",
  };
  for (const std::string& line : expected) {
    EXPECT_TRUE(HasLine(text, line)) << line << "\n---\n" << text;
  }
  // Exactly one mikey_errors series.
  size_t series = 0;
  for (size_t at = text.find("\ntkms_mikey_errors_total{"); at != std::string::npos;
       at = text.find("\ntkms_mikey_errors_total{", at + 1)) {
    ++series;
  }
  EXPECT_EQ(series, 1u);
  ExpectValidRequestSucceeds();
}

TEST_F(WebServerTest, AdminAnswersWhileAllUaWorkersAreBusy) {
  WebServerOptions options = TestOptions();
  options.worker_threads = 2;
  StartServer(options);
  service_.CloseGate();
  std::vector<std::optional<HttpReply>> replies(2);
  std::vector<std::thread> clients;
  for (int i = 0; i < 2; ++i) {
    clients.emplace_back([this, i, &replies] {
      HttpClient client(ua());
      replies[static_cast<size_t>(i)] = client.Post(kRequestTarget, kValidBody);
    });
  }
  ASSERT_TRUE(service_.WaitForCalls(2));  // both Ua workers are now inside the service
  auto health = Admin("/healthz");
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->status, 200);
  auto scrape = Admin("/metrics");
  ASSERT_TRUE(scrape.has_value());
  EXPECT_EQ(scrape->status, 200);
  service_.OpenGate();
  for (auto& t : clients) t.join();
  for (const auto& reply : replies) {
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 200);
  }
}

// ---- lifecycle ---------------------------------------------------------------------

TEST_F(WebServerTest, StopLetsAnInFlightRequestComplete) {
  service_.CloseGate();
  std::optional<HttpReply> reply;
  std::thread client([this, &reply] {
    HttpClient c(ua());
    reply = c.Post(kRequestTarget, kValidBody);
  });
  ASSERT_TRUE(service_.WaitForCalls(1));
  const uint16_t ua_port = ua();
  const uint16_t admin_port = admin();
  std::atomic<bool> stopped{false};
  std::thread stopper([this, &stopped] {
    server_->Stop();
    stopped = true;
  });
  // Stop() has begun once /readyz reports the shutdown; it must now wait.
  bool draining = false;
  for (int i = 0; i < 500 && !draining; ++i) {
    auto ready = Admin("/readyz");
    draining = ready.has_value() && ready->status == 503 &&
               ready->body.find("shutting down") != std::string::npos;
    if (!draining) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(draining);
  // The Ua listening socket is closed as the drain begins: new connections
  // are refused by the kernel (not accepted and answered), while the request
  // in progress is still held by the service.
  bool refused = false;
  for (int i = 0; i < 2500 && !refused; ++i) {
    refused = testing::ConnectionRefused(ua_port);
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(refused);
  EXPECT_FALSE(stopped.load());
  service_.OpenGate();
  client.join();
  stopper.join();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(service_.calls().size(), 1u);
  EXPECT_TRUE(testing::ConnectionRefused(ua_port));
  EXPECT_TRUE(testing::ConnectionRefused(admin_port));
  server_->Stop();  // idempotent
}

TEST_F(WebServerTest, StartReportsAPortInUse) {
  PortBlocker blocker;
  ASSERT_NE(blocker.port(), 0);
  const std::string taken = "127.0.0.1:" + std::to_string(blocker.port());
  WebServerOptions options = TestOptions();
  options.ua_listen = taken;
  auto ua_fail = WebServer::Start(options, service_);
  ASSERT_FALSE(ua_fail.ok());
  EXPECT_EQ(ua_fail.error().message().rfind("Ua listener " + taken + ": ", 0), 0u)
      << ua_fail.error().message();
  EXPECT_NE(ua_fail.error().message().find("in use"), std::string::npos)
      << ua_fail.error().message();

  options = TestOptions();
  options.admin_listen = taken;
  auto admin_fail = WebServer::Start(options, service_);
  ASSERT_FALSE(admin_fail.ok());
  EXPECT_EQ(admin_fail.error().message().rfind("admin listener " + taken + ": ", 0), 0u)
      << admin_fail.error().message();
  ExpectValidRequestSucceeds();  // the fixture's server is unaffected
}

TEST_F(WebServerTest, StartRefusesBadAddresses) {
  for (const char* bad : {"localhost:8080", "127.0.0.1", "127.0.0.1:65536", "8080", "[::1]:0"}) {
    WebServerOptions options = TestOptions();
    options.ua_listen = bad;
    auto started = WebServer::Start(options, service_);
    ASSERT_FALSE(started.ok()) << bad;
    EXPECT_EQ(started.error().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(started.error().message().rfind(std::string("Ua listener ") + bad + ": ", 0), 0u)
        << started.error().message();
  }
  WebServerOptions options = TestOptions();
  options.admin_listen = "999.0.0.1:0";
  auto started = WebServer::Start(options, service_);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().message().rfind("admin listener 999.0.0.1:0: ", 0), 0u);
}

TEST_F(WebServerTest, PortsAreTheBoundOnes) {
  EXPECT_NE(ua(), 0);
  EXPECT_NE(admin(), 0);
  EXPECT_NE(ua(), admin());
  EXPECT_FALSE(testing::ConnectionRefused(ua()));
  EXPECT_FALSE(testing::ConnectionRefused(admin()));
}

// ---- echo server --------------------------------------------------------------------

TEST(WebEchoServer, EchoesTheBody) {
  WebServerOptions options;
  options.ua_listen = "127.0.0.1:0";
  options.worker_threads = 2;
  options.keep_alive_timeout_ms = 5000;
  auto echo = StartEchoServer(options);
  ASSERT_TRUE(echo.ok()) << echo.error().ToString();
  HttpClient client((*echo)->port());
  const std::string binary("\x00\x01not base64\xff", 14);
  for (const std::string& body : {std::string(kValidBody), binary, std::string()}) {
    auto reply = client.Post("/keymanagement", body, "");
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(reply->header("Content-Type"), "application/mikey");
    EXPECT_EQ(reply->body, body);
    EXPECT_EQ(reply->header("Connection"), "keep-alive");
  }
  EXPECT_EQ(client.connects(), 1);
  auto other = client.Request("GET", "/other");
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->status, 404);
  client.Close();
  (*echo)->Stop();
  (*echo)->Stop();
}

TEST(WebEchoServer, ReportsAPortInUse) {
  PortBlocker blocker;
  WebServerOptions options;
  options.ua_listen = "127.0.0.1:" + std::to_string(blocker.port());
  auto echo = StartEchoServer(options);
  ASSERT_FALSE(echo.ok());
  EXPECT_EQ(echo.error().message().rfind("Echo listener " + options.ua_listen + ": ", 0), 0u)
      << echo.error().message();
}

}  // namespace
}  // namespace tkms::web
