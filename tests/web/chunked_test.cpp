// Chunked request bodies (RFC 9112 §7.1) and body framing (§6.3) end to
// end: a real WebServer on 127.0.0.1 (kernel-chosen ports) with a fake
// KmsService, driven by curl as a subprocess and by a raw-socket client; and
// the plaintext transport's HttpRequest, seen by a recording handler. Every
// refusal has a test, each followed by a valid request on a new connection.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "firmware/base/encoding.h"
#include "tests/web/fake_service.h"
#include "tests/web/http_client.h"
#include "web/echo.h"
#include "web/server.h"
#include "web/transport.h"

namespace tkms::web {
namespace {

using testing::FakeKmsService;
using testing::HttpClient;
using testing::HttpReply;

constexpr size_t kMaxBody = 1024;
constexpr const char* kHead =
    "POST /keymanagement?requesttype=ticketrequest HTTP/1.1\r\nHost: x\r\n"
    "Content-Type: application/mikey\r\n";
const std::vector<uint8_t> kValidBytes = {0x01, 0x02, 0x03, 0xff};

// `body` as chunks of at most `size` bytes, then the last chunk.
std::string Chunked(std::string_view body, size_t size) {
  std::string out;
  static constexpr char kHex[] = "0123456789abcdef";
  while (!body.empty()) {
    const size_t n = std::min(size, body.size());
    std::string hex;
    for (size_t v = n; v > 0; v >>= 4) hex.insert(hex.begin(), kHex[v & 15]);
    out.append(hex).append("\r\n").append(body.substr(0, n)).append("\r\n");
    body.remove_prefix(n);
  }
  return out + "0\r\n\r\n";
}

// Runs a shell command; its standard output, and the exit status in `status`.
std::string RunCommand(const std::string& command, int& status) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int raw = pclose(pipe);
  status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

class ChunkedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WebServerOptions options;
    options.ua_listen = "127.0.0.1:0";
    options.admin_listen = "127.0.0.1:0";
    options.max_body_bytes = kMaxBody;
    options.worker_threads = 2;
    options.request_timeout_ms = 3000;
    options.keep_alive_timeout_ms = 3000;
    AdminPostRoute route;
    route.path = "/admin/thing";
    route.max_body_bytes = 16;
    route.handler = [this](std::string_view body, const Peer&) {
      std::lock_guard<std::mutex> lock(mu_);
      admin_bodies_.emplace_back(body);
      return AdminPostReply{200, "{\"ok\":true}\n"};
    };
    options.admin_post_routes.push_back(route);
    auto started = WebServer::Start(options, service_);
    ASSERT_TRUE(started.ok()) << started.error().ToString();
    server_ = std::move(*started);
  }
  void TearDown() override { server_.reset(); }

  uint16_t ua() const { return server_->ua_port(); }
  uint16_t admin() const { return server_->admin_port(); }
  Metrics& metrics() { return server_->metrics(); }
  std::vector<std::string> admin_bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return admin_bodies_;
  }

  // Sends `raw` on a new connection; expects `status` and a closed connection.
  std::optional<HttpReply> ExpectClosedWith(const std::string& raw, int status) {
    HttpClient client(ua());
    EXPECT_TRUE(client.SendRaw(raw));
    auto reply = client.ReadReply();
    EXPECT_TRUE(reply.has_value()) << raw;
    if (!reply.has_value()) return reply;
    EXPECT_EQ(reply->status, status) << raw << "\n" << reply->body;
    EXPECT_EQ(reply->header("Connection"), "close") << raw;
    EXPECT_TRUE(client.WaitForClose(3000)) << raw;
    return reply;
  }

  void ExpectValidRequestSucceeds() {
    HttpClient client(ua());
    auto reply = client.Post("/keymanagement?requesttype=ticketrequest", "AQID/w==");
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 200);
  }

  FakeKmsService service_;
  std::unique_ptr<WebServer> server_;
  std::mutex mu_;
  std::vector<std::string> admin_bodies_;
};

// ---- accepted ---------------------------------------------------------------------

TEST_F(ChunkedTest, CurlSendsAChunkedTicketRequest) {
  int status = 0;
  const std::string out =
      RunCommand("curl -sS -o - -w ' %{http_code}' -X POST -H 'Transfer-Encoding: chunked' "
          "-H 'Content-Type: application/mikey' --data-binary 'AQID/w==' "
          "'http://127.0.0.1:" + std::to_string(ua()) + "/keymanagement?requesttype=ticketrequest'",
          status);
  ASSERT_EQ(status, 0) << "curl failed: " << out;
  EXPECT_EQ(out, Base64Encode(std::vector<uint8_t>{0x01, 0x0a, 0x00, 0x42}) + " 200");
  ASSERT_EQ(service_.calls().size(), 1u);
  EXPECT_EQ(service_.calls()[0].mikey, kValidBytes);
}

TEST_F(ChunkedTest, CurlSendsAChunkedAdminPost) {
  int status = 0;
  const std::string out =
      RunCommand("curl -sS -o - -w ' %{http_code}' -X POST -H 'Transfer-Encoding: chunked' "
          "--data-binary 'hello' 'http://127.0.0.1:" + std::to_string(admin()) + "/admin/thing'",
          status);
  ASSERT_EQ(status, 0) << "curl failed: " << out;
  EXPECT_EQ(out, "{\"ok\":true}\n 200");
  EXPECT_EQ(admin_bodies(), std::vector<std::string>{"hello"});
  // Above the route's cap of 16 bytes: 413, the route's handler never runs.
  const std::string big =
      RunCommand("curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Transfer-Encoding: chunked' "
          "--data-binary '" + std::string(17, 'x') + "' 'http://127.0.0.1:" +
          std::to_string(admin()) + "/admin/thing'",
          status);
  EXPECT_EQ(big, "413");
  EXPECT_EQ(admin_bodies().size(), 1u);
}

TEST_F(ChunkedTest, ManySmallChunksUpToTheLimitSucceed) {
  // Exactly max_body_bytes of base64 (768 bytes), one byte per chunk, with
  // uppercase hex and leading zeros in the size lines.
  const std::vector<uint8_t> bytes(kMaxBody / 4 * 3, 0x5a);
  const std::string body = Base64Encode(bytes);
  ASSERT_EQ(body.size(), kMaxBody);
  std::string chunks = Chunked(body, 1);
  HttpClient client(ua());
  ASSERT_TRUE(client.SendRaw(std::string(kHead) + "Transfer-Encoding: chunked\r\n\r\n" + chunks));
  auto reply = client.ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  // The body was read to its last chunk: the connection carries the next
  // request (coding name case-insensitive, leading zeros, extensions, §7.1.1).
  EXPECT_EQ(reply->header("Connection"), "keep-alive");
  ASSERT_EQ(service_.calls().size(), 1u);
  EXPECT_EQ(service_.calls()[0].mikey, bytes);

  ASSERT_TRUE(client.SendRaw(std::string(kHead) +
                             "Transfer-Encoding: Chunked\r\n\r\n0004;a=b\r\nAQID\r\n4 ; x = \"q\\\"\"\r\n/w==\r\n"
                             "000;last\r\n\r\n"));
  auto second = client.ReadReply();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(client.connects(), 1);
  ASSERT_EQ(service_.calls().size(), 2u);
  EXPECT_EQ(service_.calls()[1].mikey, kValidBytes);
}

TEST_F(ChunkedTest, ExpectContinueAndTrailerAreHandled) {
  HttpClient client(ua());
  ASSERT_TRUE(client.SendRaw(std::string(kHead) +
                             "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = client.ReadReply();
  ASSERT_TRUE(interim.has_value());
  EXPECT_EQ(interim->status, 100);
  // A trailer section is discarded (RFC 9112 §7.1.2); the body is complete,
  // so the connection stays open, and the bytes after the trailer section
  // are the next request.
  ASSERT_TRUE(client.SendRaw("8\r\nAQID/w==\r\n0\r\nX-Trailer: 1\r\n\r\n"));
  auto reply = client.ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->header("Connection"), "keep-alive");
  EXPECT_FALSE(reply->has_header("X-Trailer"));
  ASSERT_TRUE(client.SendRaw(std::string(kHead) + "Content-Length: 8\r\n\r\nAQID/w=="));
  auto next = client.ReadReply();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(client.connects(), 1);
  ASSERT_EQ(service_.calls().size(), 2u);
  EXPECT_EQ(service_.calls()[0].mikey, kValidBytes);
}

// ---- the limit ---------------------------------------------------------------------

TEST_F(ChunkedTest, DecodedBodyAboveTheLimitIs413) {
  // Valid base64 of 1028 characters: without the limit this would be a 200.
  const std::string body = Base64Encode(std::vector<uint8_t>(kMaxBody / 4 * 3 + 3, 0x5a));
  ASSERT_GT(body.size(), kMaxBody);
  for (size_t chunk : {size_t{7}, body.size()}) {
    auto reply = ExpectClosedWith(
        std::string(kHead) + "Transfer-Encoding: chunked\r\n\r\n" + Chunked(body, chunk), 413);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->body, "body larger than 1024 bytes\n");
  }
  EXPECT_EQ(metrics().rejections(413), 2u);
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

TEST_F(ChunkedTest, HugeChunkSizeIsStoppedAtTheLimit) {
  // 2^63 - 1, the largest chunk-size the decoder takes (http1_parser.h): the
  // cap answers 413 as soon as max_body_bytes + 1 data bytes arrived, while
  // the client still holds the socket open (the decoder never appends more
  // than cap + 1 bytes: Http1Chunked.* checks that on the decoder itself).
  HttpClient client(ua());
  ASSERT_TRUE(client.SendRaw(std::string(kHead) + "Transfer-Encoding: chunked\r\n\r\n" +
                             "7fffffffffffffff\r\n" + std::string(kMaxBody + 1, 'A')));
  auto reply = client.ReadReply(3000);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 413);
  EXPECT_EQ(reply->header("Connection"), "close");
  EXPECT_TRUE(client.WaitForClose(3000));
  // Exactly the cap is not enough for a 413: the server waits for more.
  HttpClient at_cap(ua());
  ASSERT_TRUE(at_cap.SendRaw(std::string(kHead) + "Transfer-Encoding: chunked\r\n\r\n" +
                             "7fffffffffffffff\r\n" + std::string(kMaxBody, 'A')));
  EXPECT_FALSE(at_cap.ReadReply(300).has_value());
  // 2^63 and above are not a chunk-size at all: 400 from the size line
  // alone, before any data byte.
  auto above = ExpectClosedWith(std::string(kHead) + "Transfer-Encoding: chunked\r\n\r\n" +
                                    "8000000000000000\r\n", 400);
  ASSERT_TRUE(above.has_value());
  EXPECT_EQ(above->body, "malformed or incomplete chunked body\n");
  EXPECT_EQ(metrics().rejections(413), 1u);
  EXPECT_EQ(metrics().rejections(400), 1u);
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

// ---- malformed chunked framing -----------------------------------------------------------

TEST_F(ChunkedTest, MalformedChunksAre400) {
  const std::string te = std::string(kHead) + "Transfer-Encoding: chunked\r\n\r\n";
  const std::vector<std::string> bad = {
      "zz\r\nAQID\r\n0\r\n\r\n",                                   // not hex
      "4;\r\nAQID\r\n0\r\n\r\n",                                   // extension without a name
      "4;a=\"x\r\nAQID\r\n0\r\n\r\n",                             // unterminated quoted value
      "4 \r\nAQID\r\n0\r\n\r\n",                                   // space after the size
      "4\nAQID\r\n0\r\n\r\n",                                      // bare LF
      "4\r\nAQIDX\r\n0\r\n\r\n",                                   // no CRLF after the data
      "\r\nAQID\r\n0\r\n\r\n",                                     // empty size line
      "-4\r\nAQID\r\n0\r\n\r\n",                                   // sign
      "10000000000000000\r\nAQID\r\n0\r\n\r\n",                    // 2^64: overflow
      "ffffffffffffffff\r\nAQID\r\n0\r\n\r\n",                     // 2^64 - 1
      std::string(62, '0') + "4\r\nAQID\r\n0\r\n\r\n",             // more than 16 HEXDIG
      "4\r\nAQID\r\n0\r\nBad Trailer: 1\r\n\r\n",                 // malformed trailer field
  };
  for (const std::string& chunks : bad) {
    auto reply = ExpectClosedWith(te + chunks, 400);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->body, "malformed or incomplete chunked body\n") << chunks;
  }
  EXPECT_EQ(metrics().rejections(400), bad.size());
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

TEST_F(ChunkedTest, ChunkedBodyCutShortIs400) {
  HttpClient client(ua());
  ASSERT_TRUE(client.SendRaw(std::string(kHead) + "Transfer-Encoding: chunked\r\n\r\n8\r\nAQID"));
  client.ShutdownWrite();
  auto reply = client.ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 400);
  EXPECT_TRUE(service_.calls().empty());
}

// ---- framing decided from the head ------------------------------------------------------------

TEST_F(ChunkedTest, ContentLengthWithTransferEncodingIs400) {
  auto reply = ExpectClosedWith(
      std::string(kHead) +
          "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nAQID/w==\r\n0\r\n\r\n",
      400);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, "Content-Length and Transfer-Encoding together\n");
  ExpectClosedWith(std::string(kHead) + "Transfer-Encoding: identity\r\nContent-Length: 8\r\n\r\nAQID/w==",
                   400);
  EXPECT_EQ(metrics().rejections(400), 2u);
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

TEST_F(ChunkedTest, OtherTransferCodingsAre400) {
  // Two Transfer-Encoding fields: the list is "chunked, gzip", not chunked last.
  auto ours = ExpectClosedWith(std::string(kHead) +
                                   "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"
                                   "8\r\nAQID/w==\r\n0\r\n\r\n",
                               400);
  ASSERT_TRUE(ours.has_value());
  EXPECT_EQ(ours->body, "only Transfer-Encoding: chunked is accepted\n");
  EXPECT_EQ(metrics().rejections(400), 1u);
  // The head parser does not judge transfer codings; DecideBodyFraming does,
  // and the Ua handler words the refusal (a rejection, not a protocol error).
  for (const char* coding : {"gzip", "gzip, chunked", "chunked, gzip"}) {
    auto reply =
        ExpectClosedWith(std::string(kHead) + "Transfer-Encoding: " + coding + "\r\n\r\n0\r\n\r\n", 400);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->body, "only Transfer-Encoding: chunked is accepted\n") << coding;
  }
  EXPECT_EQ(metrics().rejections(400), 4u);
  EXPECT_EQ(metrics().protocol_errors(400), 0u);
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

TEST_F(ChunkedTest, MalformedContentLengthIs400) {
  for (const char* length : {"+8", "8abc", "8, 8"}) {
    auto reply = ExpectClosedWith(
        std::string(kHead) + "Content-Length: " + length + "\r\n\r\nAQID/w==", 400);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->body, "malformed Content-Length\n") << length;
  }
  EXPECT_TRUE(service_.calls().empty());
  ExpectValidRequestSucceeds();
}

// max_header_fields (100 by default) bounds the head; below it nothing is
// dropped, so a framing field after the 64th is still seen.
TEST_F(ChunkedTest, MoreThanMaxHeaderFieldsIs431) {
  // kHead has 2 fields (Host, Content-Type); with Content-Length, 100 in all.
  std::string hundred = kHead;
  for (int i = 0; i < 97; ++i) hundred += "X-Filler-" + std::to_string(i) + ": 1\r\n";
  HttpClient client(ua());
  auto first = client.Post("/keymanagement?requesttype=ticketrequest", "AQID/w==");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 200);
  ASSERT_TRUE(client.SendRaw(hundred + "Content-Length: 8\r\n\r\nAQID/w=="));
  auto reply = client.ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->header("Connection"), "keep-alive");
  EXPECT_EQ(client.connects(), 1);
  ASSERT_EQ(service_.calls().size(), 2u);
  EXPECT_EQ(service_.calls()[1].mikey, kValidBytes);
  // One more field: 431, the connection closes, nothing reaches the service.
  auto refused = ExpectClosedWith(hundred + "X-One-Too-Many: 1\r\nContent-Length: 8\r\n\r\nAQID/w==", 431);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(metrics().protocol_errors(431), 1u);
  EXPECT_EQ(service_.calls().size(), 2u);
  ExpectValidRequestSucceeds();
}

TEST_F(ChunkedTest, EchoServerEchoesChunkedBodies) {
  WebServerOptions options;
  options.ua_listen = "127.0.0.1:0";
  options.worker_threads = 1;
  options.max_body_bytes = 8;
  auto echo = StartEchoServer(options);
  ASSERT_TRUE(echo.ok()) << echo.error().ToString();
  HttpClient client((*echo)->port());
  ASSERT_TRUE(client.SendRaw("POST /keymanagement HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                             Chunked("hello", 2)));
  auto reply = client.ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "hello");
  HttpClient big((*echo)->port());
  ASSERT_TRUE(big.SendRaw("POST /keymanagement HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                          Chunked("123456789", 3)));
  auto refused = big.ReadReply();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 413);
}

// ---- the transport's HttpRequest ---------------------------------------------------------------

class RecordingHandler final : public HttpHandler {
 public:
  BodyPlan PlanBody(const HttpRequest&) override { return BodyPlan::Read(64); }
  HttpResponse Handle(const HttpRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    last_ = request;
    return TextResponse(200, "seen");
  }
  HttpRequest last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  std::mutex mu_;
  HttpRequest last_;
};

TEST(PlaintextTransport, BuildsTheRequestFromTheWireOnly) {
  RecordingHandler handler;
  ListenerConfig config;
  config.name = "Test listener";
  config.log_name = "test";
  config.listen = "127.0.0.1:0";
  config.threads = 1;
  auto listener = StartListener(config, handler);
  ASSERT_TRUE(listener.ok()) << listener.error().ToString();
  HttpClient client((*listener)->port());
  // Headers a proxy would use to pass on a TLS client identity: a plaintext
  // listener must not turn any of them into Peer::tls_identity or the address.
  ASSERT_TRUE(client.SendRaw(
      "POST /p%41th/x?a=%41&b HTTP/1.1\r\nHost: x\r\n"
      "X-SSL-Client-Cert: -----BEGIN CERTIFICATE-----\r\n"
      "X-SSL-Client-S-DN: CN=kms.example.org\r\nX-Client-Verify: SUCCESS\r\n"
      "Forwarded: for=192.0.2.7\r\nX-Forwarded-For: 192.0.2.7\r\n"
      "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
  auto reply = client.ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  const HttpRequest seen = handler.last();
  EXPECT_FALSE(seen.peer.tls_identity.has_value());
  EXPECT_EQ(seen.peer.address.rfind("127.0.0.1:", 0), 0u) << seen.peer.address;
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/p%41th/x?a=%41&b");  // as sent: decoding is the handler's
  EXPECT_EQ(seen.version, "1.1");
  EXPECT_EQ(seen.CountHeaders("x-forwarded-for"), 1u);
  EXPECT_EQ(seen.framing.kind, BodyFraming::Kind::kChunked);
  EXPECT_EQ(seen.body_state, BodyState::kComplete);
  EXPECT_EQ(seen.body, "abcde");
  EXPECT_EQ(seen.id, reply->header("X-Request-Id"));
  (*listener)->Stop();
}

}  // namespace
}  // namespace tkms::web
