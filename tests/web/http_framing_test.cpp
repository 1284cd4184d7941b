// Socket-free tests of the transport-neutral layer: body framing
// (http_framing.h, RFC 7230 §3.3.3), the HttpRequest helpers
// (http_message.h), and the Ua, admin and echo handlers driven with
// HttpRequest values only, as any transport would drive them.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "tests/web/fake_service.h"
#include "web/admin_handler.h"
#include "web/echo.h"
#include "web/http_framing.h"
#include "web/http_message.h"
#include "web/metrics.h"
#include "web/ua_handler.h"

namespace tkms::web {
namespace {

using testing::FakeKmsService;
using Kind = BodyFraming::Kind;

BodyFraming Frame(std::vector<HttpHeader> headers) { return DecideBodyFraming(headers); }

TEST(HttpFraming, NoBodyHeadersMeansNoBody) {
  const BodyFraming f = Frame({{"Host", "x"}, {"Content-Type", "application/mikey"}});
  EXPECT_EQ(f.kind, Kind::kNone);
  EXPECT_EQ(f.error, FramingError::kNone);
}

TEST(HttpFraming, ContentLengthIsStrictDigits) {
  for (const char* good : {"0", "8", " 16384 ", "\t42", "0007", "9223372036854775807"}) {
    const BodyFraming f = Frame({{"content-length", good}});
    EXPECT_EQ(f.kind, Kind::kContentLength) << good;
    EXPECT_EQ(f.error, FramingError::kNone) << good;
  }
  EXPECT_EQ(Frame({{"Content-Length", "0007"}}).content_length, 7u);
  EXPECT_EQ(Frame({{"Content-Length", "9223372036854775807"}}).content_length, 9223372036854775807u);
  for (const char* bad : {"", " ", "+5", "-1", "5abc", "5 5", "5,5", "0x10", "1e3", "\xd9\xa1",
                          "9223372036854775808", "99999999999999999999999"}) {
    const BodyFraming f = Frame({{"Content-Length", bad}});
    EXPECT_EQ(f.kind, Kind::kNone) << bad;
    EXPECT_EQ(f.error, FramingError::kBadContentLength) << bad;
  }
}

TEST(HttpFraming, RepeatedContentLengthIsRefused) {
  EXPECT_EQ(Frame({{"Content-Length", "8"}, {"content-length", "8"}}).error,
            FramingError::kRepeatedContentLength);
  // Checked first, also when a Transfer-Encoding is there too.
  EXPECT_EQ(Frame({{"Content-Length", "8"}, {"Transfer-Encoding", "chunked"}, {"Content-Length", "8"}})
                .error,
            FramingError::kRepeatedContentLength);
}

TEST(HttpFraming, ChunkedIsTheOnlyTransferCoding) {
  for (const char* good : {"chunked", "Chunked", "CHUNKED", " chunked\t"}) {
    const BodyFraming f = Frame({{"Transfer-Encoding", good}});
    EXPECT_EQ(f.kind, Kind::kChunked) << good;
    EXPECT_EQ(f.error, FramingError::kNone) << good;
  }
  for (const char* bad : {"gzip", "identity", "gzip, chunked", "chunked, gzip", "chunked, chunked",
                          "chunked;q=1", "", "chunkedx", "x-chunked"}) {
    const BodyFraming f = Frame({{"Transfer-Encoding", bad}});
    EXPECT_EQ(f.kind, Kind::kNone) << bad;
    EXPECT_EQ(f.error, FramingError::kUnsupportedTransferCoding) << bad;
  }
  EXPECT_EQ(Frame({{"Transfer-Encoding", "chunked"}, {"transfer-encoding", "chunked"}}).error,
            FramingError::kUnsupportedTransferCoding);
}

TEST(HttpFraming, ContentLengthWithTransferEncodingIsRefused) {
  for (const char* coding : {"chunked", "identity", "gzip"}) {
    EXPECT_EQ(Frame({{"Content-Length", "3"}, {"Transfer-Encoding", coding}}).error,
              FramingError::kContentLengthAndTransferEncoding)
        << coding;
    EXPECT_EQ(Frame({{"Transfer-Encoding", coding}, {"Content-Length", "3"}}).error,
              FramingError::kContentLengthAndTransferEncoding)
        << coding;
  }
}

TEST(HttpFraming, EveryErrorHasALabelAndText) {
  for (FramingError e : {FramingError::kRepeatedContentLength, FramingError::kBadContentLength,
                         FramingError::kContentLengthAndTransferEncoding,
                         FramingError::kUnsupportedTransferCoding}) {
    EXPECT_NE(FramingErrorLabel(e), "-");
    EXPECT_FALSE(FramingErrorText(e).empty());
    EXPECT_EQ(FramingErrorText(e).find('\n'), std::string_view::npos);
  }
}

TEST(HttpMessage, RequestHelpers) {
  HttpRequest r;
  r.target = "/key%6Danagement?requesttype=ticketrequest&x=?";
  r.version = "1.1";
  r.headers = {{"Connection", "Keep-Alive"}, {"X-A", "1"}, {"x-a", "2"}};
  EXPECT_EQ(r.path(), "/key%6Danagement");
  EXPECT_EQ(r.query(), "requesttype=ticketrequest&x=?");
  EXPECT_TRUE(PathIs(r, "/keymanagement"));
  ASSERT_NE(r.FindHeader("x-A"), nullptr);
  EXPECT_EQ(*r.FindHeader("x-A"), "1");
  EXPECT_EQ(r.CountHeaders("X-A"), 2u);
  EXPECT_EQ(r.FindHeader("Expect"), nullptr);
  EXPECT_TRUE(RequestAllowsKeepAlive(r));
  r.headers = {{"Connection", "close"}};
  EXPECT_FALSE(RequestAllowsKeepAlive(r));
  r.headers.clear();
  EXPECT_TRUE(RequestAllowsKeepAlive(r));
  r.version = "1.0";
  EXPECT_FALSE(RequestAllowsKeepAlive(r));
  r.headers = {{"Expect", "100-continue"}};
  EXPECT_FALSE(ExpectsContinue(r));  // HTTP/1.0 has no interim responses
  r.version = "1.1";
  EXPECT_TRUE(ExpectsContinue(r));

  r.target = "/keymanagement%";
  EXPECT_FALSE(PathIs(r, "/keymanagement"));
  r.target = "/keymanagement+";
  EXPECT_FALSE(PathIs(r, "/keymanagement "));
  std::string out;
  EXPECT_TRUE(PercentDecodePath("/a+b%2F", out));
  EXPECT_EQ(out, "/a+b/");
  EXPECT_FALSE(PercentDecodePath("/%4", out));
  EXPECT_FALSE(PercentDecodePath("/%zz", out));
}

// ---- handlers over values ---------------------------------------------------------

HttpRequest UaRequest(std::string body, BodyState state = BodyState::kComplete) {
  HttpRequest r;
  r.id = "r-test-1";
  r.method = "POST";
  r.target = "/keymanagement?requesttype=ticketresolve";
  r.version = "1.1";
  r.headers = {{"Content-Type", "application/mikey"}, {"Transfer-Encoding", "chunked"}};
  r.framing = DecideBodyFraming(r.headers);
  r.peer.address = "192.0.2.1:4242";
  r.received = std::chrono::steady_clock::now();
  r.body_state = state;
  r.body = std::move(body);
  return r;
}

class UaHandlerTest : public ::testing::Test {
 protected:
  FakeKmsService service_;
  Metrics metrics_;
  std::atomic<bool> stopping_{false};
  UaHandler handler_{16, service_, metrics_, stopping_};
};

TEST_F(UaHandlerTest, PlansTheBodyOnlyForAnAcceptableHead) {
  HttpRequest head = UaRequest("", BodyState::kNotRead);
  EXPECT_EQ(handler_.PlanBody(head).action, BodyPlan::Action::kRead);
  EXPECT_EQ(handler_.PlanBody(head).max_body_bytes, 16u);
  head.target = "/other";
  EXPECT_EQ(handler_.PlanBody(head).action, BodyPlan::Action::kDiscard);
  head = UaRequest("", BodyState::kNotRead);
  head.headers[0].value = "text/plain";
  EXPECT_EQ(handler_.PlanBody(head).action, BodyPlan::Action::kDiscard);
  stopping_ = true;
  EXPECT_EQ(handler_.PlanBody(UaRequest("", BodyState::kNotRead)).action, BodyPlan::Action::kDiscard);
}

TEST_F(UaHandlerTest, AnswersAReadBodyWithTheService) {
  HttpResponse response = handler_.Handle(UaRequest("AQID/w=="));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "application/mikey");
  EXPECT_TRUE(response.keep_alive);
  ASSERT_TRUE(response.on_written);
  response.on_written(true);
  ASSERT_EQ(service_.calls().size(), 1u);
  EXPECT_EQ(service_.calls()[0].context.peer, "192.0.2.1:4242");
  EXPECT_EQ(service_.calls()[0].context.request_id, "r-test-1");
  EXPECT_EQ(service_.calls()[0].mikey, (std::vector<uint8_t>{1, 2, 3, 255}));
  EXPECT_EQ(metrics_.requests(kms::RequestType::kTicketResolve, kms::Outcome::kOk), 1u);
}

TEST_F(UaHandlerTest, MapsEveryBodyFailure) {
  struct Case {
    BodyState state;
    int status;
  };
  for (const Case c : {Case{BodyState::kTooLarge, 413}, Case{BodyState::kBadChunked, 400},
                       Case{BodyState::kIncomplete, 400}, Case{BodyState::kNotRead, 500}}) {
    const HttpResponse response = handler_.Handle(UaRequest("", c.state));
    EXPECT_EQ(response.status, c.status) << static_cast<int>(c.state);
  }
  EXPECT_EQ(handler_.Handle(UaRequest("", BodyState::kTooLarge)).body, "body larger than 16 bytes\n");
  EXPECT_EQ(metrics_.rejections(413), 2u);
  EXPECT_EQ(metrics_.rejections(400), 2u);
  EXPECT_TRUE(service_.calls().empty());
}

TEST_F(UaHandlerTest, RefusesFramingErrorsAndMissingFraming) {
  HttpRequest both = UaRequest("", BodyState::kNotRead);
  both.headers.push_back({"Content-Length", "8"});
  both.framing = DecideBodyFraming(both.headers);
  HttpResponse response = handler_.Handle(both);
  EXPECT_EQ(response.status, 400);
  EXPECT_EQ(response.body, "Content-Length and Transfer-Encoding together\n");
  HttpRequest none = UaRequest("", BodyState::kEmpty);
  none.headers.pop_back();
  none.framing = DecideBodyFraming(none.headers);
  response = handler_.Handle(none);
  EXPECT_EQ(response.status, 411);
  EXPECT_FALSE(response.keep_alive);
  EXPECT_TRUE(service_.calls().empty());
}

TEST_F(UaHandlerTest, StoppingIs503AndCloses) {
  stopping_ = true;
  const HttpResponse response = handler_.Handle(UaRequest("AQID/w=="));
  EXPECT_EQ(response.status, 503);
  EXPECT_FALSE(response.keep_alive);
  EXPECT_TRUE(service_.calls().empty());
}

TEST(AdminHandlerValues, PostRouteGetsItsCapAndBody) {
  FakeKmsService service;
  Metrics metrics;
  std::atomic<bool> stopping{false};
  std::string seen = "untouched";
  AdminPostRoute route{"/admin/thing", 4, [&seen](std::string_view body, const Peer&) {
                         seen = std::string(body);
                         return AdminPostReply{200, "{}\n"};
                       }};
  AdminHandler handler({route}, service, metrics, stopping);
  HttpRequest post;
  post.method = "POST";
  post.target = "/admin/thing";
  post.version = "1.1";
  post.headers = {{"Transfer-Encoding", "chunked"}};
  post.framing = DecideBodyFraming(post.headers);
  post.body_state = BodyState::kNotRead;
  const BodyPlan plan = handler.PlanBody(post);
  EXPECT_EQ(plan.action, BodyPlan::Action::kRead);
  EXPECT_EQ(plan.max_body_bytes, 4u);
  post.body_state = BodyState::kTooLarge;
  EXPECT_EQ(handler.Handle(post).status, 413);
  post.body_state = BodyState::kBadChunked;
  EXPECT_EQ(handler.Handle(post).status, 400);
  EXPECT_EQ(seen, "untouched");
  post.body_state = BodyState::kComplete;
  post.body = "abcd";
  const HttpResponse ok = handler.Handle(post);
  EXPECT_EQ(ok.status, 200);
  EXPECT_FALSE(ok.keep_alive);
  EXPECT_EQ(seen, "abcd");

  HttpRequest get = post;
  get.method = "GET";
  get.target = "/healthz";
  EXPECT_EQ(handler.PlanBody(get).action, BodyPlan::Action::kSkip);
  EXPECT_EQ(handler.Handle(get).body, "ok\n");
}

TEST(EchoHandlerValues, EchoesOrRefuses) {
  EchoHandler handler(8);
  HttpRequest r;
  r.method = "POST";
  r.target = "/keymanagement";
  r.body_state = BodyState::kComplete;
  r.body = "hello";
  EXPECT_EQ(handler.PlanBody(r).max_body_bytes, 8u);
  EXPECT_EQ(handler.Handle(r).body, "hello");
  r.body_state = BodyState::kTooLarge;
  EXPECT_EQ(handler.Handle(r).status, 413);
  r.target = "/x";
  EXPECT_EQ(handler.PlanBody(r).action, BodyPlan::Action::kSkip);
  EXPECT_EQ(handler.Handle(r).status, 404);
}

}  // namespace
}  // namespace tkms::web
