// Unit tests of the socket-free pieces of web/: the Annex A checks
// (annex_a.h) and the Prometheus rendering of Metrics (metrics.h).
#include "web/annex_a.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>

#include "web/metrics.h"

namespace tkms::web {
namespace {

using kms::RequestType;

TEST(AnnexA, RequestTypeAccepted) {
  auto r = ParseRequestType("requesttype=ticketrequest");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, RequestType::kTicketRequest);
  r = ParseRequestType("requesttype=ticketresolve");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, RequestType::kTicketResolve);
  // Other parameters are allowed (Annex A.2) and ignored, in any position.
  r = ParseRequestType("a=1&requesttype=ticketresolve&flag&b=%41+x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, RequestType::kTicketResolve);
  // Percent-encoded name and value decode to the same thing.
  r = ParseRequestType("request%74ype=ticket%72equest");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, RequestType::kTicketRequest);
  // Empty parts are skipped.
  EXPECT_TRUE(ParseRequestType("&&requesttype=ticketrequest&").ok());
}

TEST(AnnexA, RequestTypeRefused) {
  struct Case {
    const char* query;
    const char* label;
  };
  const Case cases[] = {
      {"", "requesttype_missing"},
      {"foo=bar", "requesttype_missing"},
      {"requesttypes=ticketrequest", "requesttype_missing"},
      {"RequestType=ticketrequest", "requesttype_missing"},
      {"requesttype=ticketrequest&requesttype=ticketrequest", "requesttype_repeated"},
      {"requesttype=ticketrequest&requesttype=ticketresolve", "requesttype_repeated"},
      {"requesttype=", "requesttype_invalid"},
      {"requesttype", "requesttype_invalid"},
      {"requesttype=TicketRequest", "requesttype_invalid"},
      {"requesttype=ticketrequest%20", "requesttype_invalid"},
      {"requesttype=ticketrequest+", "requesttype_invalid"},
      {"requesttype=ticketrequestx", "requesttype_invalid"},
      {"requesttype=ticketrequest;x=1", "requesttype_invalid"},
      {"requesttype=ticket%zzrequest", "bad_query"},
      {"x=%4&requesttype=ticketrequest", "bad_query"},
      {"x=%&requesttype=ticketrequest", "bad_query"},
  };
  for (const Case& c : cases) {
    auto r = ParseRequestType(c.query);
    ASSERT_FALSE(r.ok()) << c.query;
    EXPECT_EQ(r.error().status, 400) << c.query;
    EXPECT_EQ(r.error().label, c.label) << c.query;
    EXPECT_FALSE(r.error().reason.empty());
    EXPECT_EQ(r.error().reason.find('\n'), std::string::npos);
  }
}

TEST(AnnexA, PercentDecode) {
  std::string out;
  EXPECT_TRUE(PercentDecode("a%2Fb+c%41", out));
  EXPECT_EQ(out, "a/b cA");
  EXPECT_TRUE(PercentDecode("", out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(PercentDecode("%", out));
  EXPECT_FALSE(PercentDecode("%4", out));
  EXPECT_FALSE(PercentDecode("%g1", out));
  EXPECT_TRUE(PercentDecode("%00", out));
  EXPECT_EQ(out, std::string(1, '\0'));
}

TEST(AnnexA, ContentType) {
  EXPECT_TRUE(IsMikeyContentType("application/mikey"));
  EXPECT_TRUE(IsMikeyContentType("Application/MIKEY"));
  EXPECT_TRUE(IsMikeyContentType("application/mikey; charset=us-ascii"));
  EXPECT_TRUE(IsMikeyContentType(" application/mikey ;x=y"));
  EXPECT_TRUE(IsMikeyContentType("application/mikey\t"));
  EXPECT_FALSE(IsMikeyContentType(""));
  EXPECT_FALSE(IsMikeyContentType("text/plain"));
  EXPECT_FALSE(IsMikeyContentType("application/mikeyx"));
  EXPECT_FALSE(IsMikeyContentType("application/mikey+xml"));
  EXPECT_FALSE(IsMikeyContentType("application/octet-stream"));
  EXPECT_FALSE(IsMikeyContentType("application / mikey"));
  EXPECT_FALSE(IsMikeyContentType("application/mikey, text/plain"));
}

TEST(AnnexA, DecodeBody) {
  auto r = DecodeMikeyBody("AQID/w==");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<uint8_t>{1, 2, 3, 255}));
  // ASCII whitespace anywhere is removed first.
  r = DecodeMikeyBody(" AQ\tID\r\n/w==\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<uint8_t>{1, 2, 3, 255}));

  struct Case {
    const char* body;
    const char* label;
  };
  const Case cases[] = {
      {"", "empty_body"},           {" \r\n\t", "empty_body"},  {"AQID/w", "bad_base64"},
      {"AQID/x==", "bad_base64"},   {"AQID*w==", "bad_base64"}, {"AQ==AQ==", "bad_base64"},
      {"AQID/w==\f", "bad_base64"}, {"AQID_w==", "bad_base64"},
  };
  for (const Case& c : cases) {
    auto bad = DecodeMikeyBody(c.body);
    ASSERT_FALSE(bad.ok()) << c.body;
    EXPECT_EQ(bad.error().status, 400);
    EXPECT_EQ(bad.error().label, c.label) << c.body;
  }
}

TEST(AnnexA, HeaderTokens) {
  EXPECT_TRUE(HeaderHasToken("keep-alive", "keep-alive"));
  EXPECT_TRUE(HeaderHasToken("Upgrade, Keep-Alive", "keep-alive"));
  EXPECT_TRUE(HeaderHasToken(" close ", "close"));
  EXPECT_FALSE(HeaderHasToken("keep-alive2", "keep-alive"));
  EXPECT_FALSE(HeaderHasToken("", "close"));
}

TEST(AnnexA, ListenAddress) {
  auto a = ParseListenAddress("127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->address, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  EXPECT_EQ(a->ToString(), "127.0.0.1:8080");
  a = ParseListenAddress("0.0.0.0:0");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->port, 0);
  for (const char* bad :
       {"", "8080", "127.0.0.1", "127.0.0.1:", ":8080", "localhost:8080", "127.0.0.1:65536",
        "127.0.0.1:-1", "127.0.0.1:80s", "127.0.0.1:+80", "1.2.3:80", "[::1]:80",
        "127.0.0.1:8080,127.0.0.1:8081", "127.0.0.1:123456"}) {
    auto r = ParseListenAddress(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
  }
  // inet_pton would stop at the NUL and read 127.0.0.1.
  EXPECT_FALSE(ParseListenAddress(std::string_view("127.0.0.1\0evil:8080", 19)).ok());
}

TEST(AnnexA, SerializeResponse) {
  HttpResponse response = TextResponse(405, "method not allowed");
  response.extra_headers.emplace_back("Allow", "POST");
  EXPECT_EQ(SerializeResponse(response, "r-1", true),
            "HTTP/1.1 405 Method Not Allowed\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 19\r\n"
            "X-Request-Id: r-1\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: keep-alive\r\n"
            "Allow: POST\r\n"
            "\r\n"
            "method not allowed\n");
  HttpResponse ok;
  ok.status = 200;
  ok.content_type = "application/mikey";
  ok.body = "AQID";
  EXPECT_EQ(SerializeResponse(ok, "r-2", false),
            "HTTP/1.1 200 OK\r\nContent-Type: application/mikey\r\nContent-Length: 4\r\n"
            "X-Request-Id: r-2\r\nCache-Control: no-store\r\nConnection: close\r\n\r\nAQID");
  for (int status : {200, 400, 404, 405, 411, 413, 415, 500, 503}) {
    EXPECT_NE(StatusReason(status), "Unknown") << status;
  }
}

TEST(AnnexA, RequestIdsAreUnique) {
  const std::regex format("r-[0-9a-f]{8}-[0-9]+");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewRequestId();
    EXPECT_TRUE(std::regex_match(id, format)) << id;
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
}

// ---- Metrics ----------------------------------------------------------------

bool HasLine(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(Metrics, EmptyExposition) {
  Metrics m;
  const std::string text = m.RenderPrometheus();
  EXPECT_TRUE(HasLine(text, "# TYPE tkms_requests_total counter"));
  EXPECT_TRUE(HasLine(text, "tkms_requests_total{type=\"ticketrequest\",outcome=\"ok\"} 0"));
  EXPECT_TRUE(HasLine(text, "tkms_requests_total{type=\"ticketresolve\",outcome=\"internal\"} 0"));
  EXPECT_TRUE(HasLine(text, "tkms_http_rejections_total{status=\"415\"} 0"));
  EXPECT_TRUE(HasLine(text, "# TYPE tkms_request_duration_seconds histogram"));
  EXPECT_TRUE(HasLine(
      text, "tkms_request_duration_seconds_bucket{type=\"ticketresolve\",le=\"0.0005\"} 0"));
  EXPECT_TRUE(
      HasLine(text, "tkms_request_duration_seconds_bucket{type=\"ticketresolve\",le=\"+Inf\"} 0"));
  EXPECT_TRUE(HasLine(text, "tkms_request_duration_seconds_sum{type=\"ticketresolve\"} 0"));
  EXPECT_TRUE(HasLine(text, "tkms_request_duration_seconds_count{type=\"ticketresolve\"} 0"));
  EXPECT_TRUE(HasLine(text, "tkms_refusals_total{refusal=\"replay\"} 0"));
  EXPECT_FALSE(HasLine(text, "tkms_refusals_total{refusal=\"none\"} 0"));
  EXPECT_TRUE(HasLine(text, "tkms_replay_rejections_total 0"));
  EXPECT_TRUE(HasLine(text, "tkms_token_errors_total 0"));
  EXPECT_TRUE(HasLine(text, "# TYPE tkms_mikey_errors_total counter"));
  EXPECT_EQ(text.find("tkms_mikey_errors_total{"), std::string::npos);
  // Every line is a comment or "name{labels} value"; the text ends with \n.
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const std::regex sample(
      R"((# (HELP|TYPE) .*)|([a-z_:]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-+0-9.eInfNa]+))");
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
    start = end + 1;
  }
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Metrics m;
  using std::chrono::microseconds;
  m.RecordRequest(RequestType::kTicketRequest, kms::Outcome::kOk, microseconds(100));  // <= 0.0005
  m.RecordRequest(RequestType::kTicketRequest, kms::Outcome::kOk, microseconds(500));  // <= 0.0005
  m.RecordRequest(RequestType::kTicketRequest, kms::Outcome::kMikeyError,
                  microseconds(3000));  // <= 0.005
  m.RecordRequest(RequestType::kTicketRequest, kms::Outcome::kOk, std::chrono::seconds(2));  // +Inf
  const std::string text = m.RenderPrometheus();
  const std::string b = "tkms_request_duration_seconds_bucket{type=\"ticketrequest\",le=";
  EXPECT_TRUE(HasLine(text, b + "\"0.0005\"} 2"));
  EXPECT_TRUE(HasLine(text, b + "\"0.001\"} 2"));
  EXPECT_TRUE(HasLine(text, b + "\"0.0025\"} 2"));
  EXPECT_TRUE(HasLine(text, b + "\"0.005\"} 3"));
  EXPECT_TRUE(HasLine(text, b + "\"1\"} 3"));
  EXPECT_TRUE(HasLine(text, b + "\"+Inf\"} 4"));
  EXPECT_TRUE(HasLine(text, "tkms_request_duration_seconds_count{type=\"ticketrequest\"} 4"));
  EXPECT_TRUE(HasLine(text, "tkms_request_duration_seconds_sum{type=\"ticketrequest\"} 2.0036"));
  EXPECT_TRUE(HasLine(text, "tkms_requests_total{type=\"ticketrequest\",outcome=\"ok\"} 3"));
  EXPECT_EQ(m.duration_count(RequestType::kTicketRequest), 4u);
  EXPECT_EQ(m.duration_count(RequestType::kTicketResolve), 0u);
}

TEST(Metrics, CountersAndLabels) {
  Metrics m;
  m.RecordRefusal(kms::Refusal::kNone);
  m.RecordRefusal(kms::Refusal::kReplay);
  m.RecordRefusal(kms::Refusal::kReplay);
  m.RecordRefusal(kms::Refusal::kToken);
  m.RecordMikeyError(5);
  m.RecordMikeyError(255);
  m.RecordRejection(413);
  m.RecordRejection(418);  // not an Annex A rejection status: ignored
  m.RecordProtocolError(505);
  EXPECT_EQ(m.refusals(kms::Refusal::kReplay), 2u);
  EXPECT_EQ(m.replay_rejections(), 2u);
  EXPECT_EQ(m.token_errors(), 1u);
  EXPECT_EQ(m.refusals(kms::Refusal::kNone), 0u);
  EXPECT_EQ(m.mikey_errors(5), 1u);
  EXPECT_EQ(m.rejections(413), 1u);
  EXPECT_EQ(m.rejections(418), 0u);
  EXPECT_EQ(m.protocol_errors(505), 1u);
  const std::string text = m.RenderPrometheus();
  EXPECT_TRUE(HasLine(text, "tkms_refusals_total{refusal=\"replay\"} 2"));
  EXPECT_TRUE(HasLine(text, "tkms_refusals_total{refusal=\"token\"} 1"));
  EXPECT_TRUE(HasLine(text, "tkms_replay_rejections_total 2"));
  EXPECT_TRUE(HasLine(text, "tkms_token_errors_total 1"));
  EXPECT_TRUE(HasLine(text, "tkms_mikey_errors_total{error_no=\"5\"} 1"));
  EXPECT_TRUE(HasLine(text, "tkms_mikey_errors_total{error_no=\"255\"} 1"));
  EXPECT_TRUE(HasLine(text, "tkms_http_rejections_total{status=\"413\"} 1"));
  EXPECT_TRUE(HasLine(text, "tkms_http_protocol_errors_total{status=\"505\"} 1"));
}

TEST(Metrics, NetworkFunctionRequestsAreNotExported) {
  Metrics m;
  m.RecordZkRequest(Metrics::ZkClient::kNetworkFunction, Metrics::ZkResult::kOk);
  m.RecordZkRequest(Metrics::ZkClient::kPeerKms, Metrics::ZkResult::kOk);
  EXPECT_EQ(m.zk_requests(Metrics::ZkClient::kNetworkFunction, Metrics::ZkResult::kOk), 1u);
  const std::string text = m.RenderPrometheus();
  EXPECT_NE(text.find("tkms_zk_requests_total{client=\"peer_kms\",result=\"ok\"} 1"), std::string::npos) << text;
  EXPECT_EQ(text.find("network_function"), std::string::npos) << text;
}

TEST(Metrics, Gauges) {
  Metrics m;
  EXPECT_TRUE(m.SetGauge("tkms_replay_cache_entries", "Entries in the replay cache.", [] {
                 return 42.0;
               }).ok());
  EXPECT_TRUE(m.SetGauge("tkms_a_gauge", "Two\nlines \\ here.", [] { return 0.5; }).ok());
  EXPECT_TRUE(
      m.SetGauge("tkms_broken", "Throws.", []() -> double { throw std::runtime_error("x"); }).ok());
  EXPECT_FALSE(m.SetGauge("1bad", "x", [] { return 1.0; }).ok());
  EXPECT_FALSE(m.SetGauge("bad-name", "x", [] { return 1.0; }).ok());
  EXPECT_FALSE(m.SetGauge("", "x", [] { return 1.0; }).ok());
  EXPECT_FALSE(m.SetGauge("tkms_requests_total", "x", [] { return 1.0; }).ok());
  EXPECT_FALSE(m.SetGauge("tkms_request_duration_seconds_count", "x", [] { return 1.0; }).ok());
  EXPECT_FALSE(m.SetGauge("tkms_empty", "x", nullptr).ok());
  std::string text = m.RenderPrometheus();
  EXPECT_TRUE(HasLine(text, "# TYPE tkms_replay_cache_entries gauge"));
  EXPECT_TRUE(HasLine(text, "# HELP tkms_replay_cache_entries Entries in the replay cache."));
  EXPECT_TRUE(HasLine(text, "tkms_replay_cache_entries 42"));
  EXPECT_TRUE(HasLine(text, "# HELP tkms_a_gauge Two\\nlines \\\\ here."));
  EXPECT_TRUE(HasLine(text, "tkms_a_gauge 0.5"));
  EXPECT_TRUE(HasLine(text, "tkms_broken NaN"));
  // Replacing keeps one series; removing drops it.
  EXPECT_TRUE(m.SetGauge("tkms_replay_cache_entries", "Entries.", [] { return 7.0; }).ok());
  text = m.RenderPrometheus();
  EXPECT_TRUE(HasLine(text, "tkms_replay_cache_entries 7"));
  EXPECT_FALSE(HasLine(text, "tkms_replay_cache_entries 42"));
  m.RemoveGauge("tkms_replay_cache_entries");
  EXPECT_EQ(m.RenderPrometheus().find("tkms_replay_cache_entries"), std::string::npos);
}

}  // namespace
}  // namespace tkms::web
