// HttpResponseParser (web/client/http_response_parser.h) on its own, without
// sockets: valid responses give the same result however the bytes are split
// into reads (every byte boundary, and one byte at a time), each limit holds
// exactly at its value and refuses one byte more, and every documented
// refusal has a negative case -- also under every split.
#include "web/client/http_response_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tkms::web::client {
namespace {

// What feeding `input` in pieces (cut at `cuts`) and then, if nothing is
// complete, Finish() gives. Pieces after a complete response count as
// leftover, as the client would have received them with it.
struct Outcome {
  bool ok = false;
  StatusCode code = StatusCode::kOk;
  std::string message;
  ParsedHttpResponse parsed;
};

Outcome Run(std::string_view input, const std::vector<size_t>& cuts, HttpResponseLimits limits = {},
            bool head = false) {
  HttpResponseParser parser(limits, head);
  Outcome out;
  size_t at = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  for (size_t end : ends) {
    auto fed = parser.Feed(input.substr(at, end - at));
    at = end;
    if (!fed.ok()) {
      out.code = fed.error().code();
      out.message = fed.error().message();
      return out;
    }
    if (fed->has_value()) {
      out.ok = true;
      out.parsed = std::move(**fed);
      out.parsed.leftover += std::string(input.substr(at));
      return out;
    }
  }
  auto finished = parser.Finish();
  if (!finished.ok()) {
    out.code = finished.error().code();
    out.message = finished.error().message();
    return out;
  }
  out.ok = true;
  out.parsed = std::move(*finished);
  return out;
}

Outcome Whole(std::string_view input, HttpResponseLimits limits = {}, bool head = false) {
  return Run(input, {}, limits, head);
}

void ExpectSameOutcome(const Outcome& a, const Outcome& b, const std::string& where) {
  ASSERT_EQ(a.ok, b.ok) << where << ": " << a.message << " / " << b.message;
  EXPECT_EQ(a.code, b.code) << where;
  EXPECT_EQ(a.message, b.message) << where;
  if (!a.ok) return;
  EXPECT_EQ(a.parsed.response.status, b.parsed.response.status) << where;
  EXPECT_EQ(a.parsed.response.reason, b.parsed.response.reason) << where;
  EXPECT_EQ(a.parsed.response.headers, b.parsed.response.headers) << where;
  EXPECT_EQ(a.parsed.response.body, b.parsed.response.body) << where;
  EXPECT_EQ(a.parsed.keep_alive, b.parsed.keep_alive) << where;
  EXPECT_EQ(a.parsed.leftover, b.parsed.leftover) << where;
}

// Every two-piece split and the one-byte-at-a-time feed agree with the whole.
void ExpectSplitInvariant(std::string_view input, HttpResponseLimits limits = {}, bool head = false) {
  const Outcome whole = Whole(input, limits, head);
  for (size_t i = 0; i <= input.size(); ++i) {
    ExpectSameOutcome(whole, Run(input, {i}, limits, head), "split at " + std::to_string(i));
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < input.size(); ++i) every.push_back(i);
  ExpectSameOutcome(whole, Run(input, every, limits, head), "one byte at a time");
}

HttpResponseLimits Small() {
  HttpResponseLimits l;
  l.max_header_bytes = 64;
  l.max_body_bytes = 16;
  return l;
}

const std::string kChunked =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n"
    "X-Trailer: t\r\n\r\n";

// ---- valid responses -------------------------------------------------------------

TEST(HttpResponseParser, ReadsAContentLengthResponse) {
  const Outcome o = Whole("HTTP/1.1 201 Created here\r\nContent-Type: application/mikey\r\n"
                          "X-Spaces: \t padded \t\r\nContent-Length: 4\r\n\r\nAQID");
  ASSERT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.parsed.response.status, 201);
  EXPECT_EQ(o.parsed.response.reason, "Created here");
  ASSERT_EQ(o.parsed.response.headers.size(), 3u);
  EXPECT_EQ(o.parsed.response.headers[0].first, "Content-Type");  // as received, in order
  EXPECT_EQ(*o.parsed.response.Header("content-type"), "application/mikey");
  EXPECT_EQ(*o.parsed.response.Header("X-SPACES"), "padded");  // OWS trimmed
  EXPECT_FALSE(o.parsed.response.Header("X-Missing").has_value());
  EXPECT_EQ(o.parsed.response.body, "AQID");
  EXPECT_TRUE(o.parsed.keep_alive);
  EXPECT_TRUE(o.parsed.leftover.empty());
}

TEST(HttpResponseParser, EverySplitOfValidResponsesGivesTheSameResult) {
  const std::string cases[] = {
      "HTTP/1.1 200 OK\r\nContent-Type: application/mikey\r\nContent-Length: 11\r\n\r\nhello world",
      kChunked,
      "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\nHTTP/1.1 200 OK\r\n"
      "Content-Length: 5\r\n\r\nfinal",
      "HTTP/1.1 204 No Content\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 \r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nokEXTRA",  // equal repeats; leftover
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
  };
  for (const std::string& input : cases) {
    SCOPED_TRACE(input);
    const Outcome whole = Whole(input);
    ASSERT_TRUE(whole.ok) << whole.message;
    ExpectSplitInvariant(input);
  }
  ExpectSplitInvariant("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", {}, /*head=*/true);
}

TEST(HttpResponseParser, ChunkedBodyExtensionsAndTrailers) {
  const Outcome o = Whole(kChunked);
  ASSERT_TRUE(o.ok) << o.message;
  EXPECT_EQ(o.parsed.response.body, "hello world");
  EXPECT_TRUE(o.parsed.keep_alive);
  EXPECT_FALSE(o.parsed.response.Header("X-Trailer").has_value());  // trailers are dropped
}

TEST(HttpResponseParser, ConnectionPersistence) {
  EXPECT_FALSE(Whole("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n")
                   .parsed.keep_alive);
  EXPECT_FALSE(Whole("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").parsed.keep_alive);
  EXPECT_TRUE(Whole("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").parsed.keep_alive);
  // A close-delimited body ends the connection whatever the headers say.
  const Outcome close = Whole("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nbody");
  ASSERT_TRUE(close.ok);
  EXPECT_FALSE(close.parsed.keep_alive);
  EXPECT_EQ(close.parsed.response.body, "body");
}

TEST(HttpResponseParser, BytesAfterTheResponseAreLeftOver) {
  const Outcome o = Whole("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n");
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.parsed.response.body, "ok");
  EXPECT_EQ(o.parsed.leftover, "HTTP/1.1 200 OK\r\n");
  // Responses without a body end at the empty line.
  EXPECT_EQ(Whole("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\nxyz").parsed.leftover, "xyz");
  EXPECT_EQ(Whole("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nxyz", {}, true).parsed.leftover, "xyz");
}

TEST(HttpResponseParser, LimitsHoldExactlyAtTheirValue) {
  const HttpResponseLimits small = Small();
  // Head of exactly 64 bytes (status line + two headers + empty line), then one more.
  const auto head = [](size_t value) {
    return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: " + std::string(value, 'a') + "\r\n\r\n";
  };
  const std::string head64 = head(21);
  ASSERT_EQ(head64.size(), 64u);
  EXPECT_TRUE(Whole(head64, small).ok);
  const std::string head65 = head(22);
  EXPECT_EQ(Whole(head65, small).code, StatusCode::kResourceExhausted);
  ExpectSplitInvariant(head65, small);
  // Body of exactly 16 bytes, by each framing, then one more.
  for (size_t n : {size_t{16}, size_t{17}}) {
    const std::string body(n, 'b');
    const bool fits = n == 16;
    const std::string cl = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(n) + "\r\n\r\n" + body;
    const std::string close = "HTTP/1.1 200 OK\r\n\r\n" + body;
    const std::string chunks = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n" + body.substr(0, 8) +
                               "\r\n" + std::to_string(n - 8) + "\r\n" + body.substr(8) + "\r\n0\r\n\r\n";
    for (const std::string& input : {cl, close, chunks}) {
      const Outcome o = Whole(input, small);
      EXPECT_EQ(o.ok, fits) << input << ": " << o.message;
      if (fits) {
        EXPECT_EQ(o.parsed.response.body, body);
      } else {
        EXPECT_EQ(o.code, StatusCode::kResourceExhausted) << input;
      }
      ExpectSplitInvariant(input, small);
    }
  }
  // A chunk-size line of exactly 64 bytes (extensions included), then 65.
  const std::string line64 = "1;" + std::string(62, 'e');
  const std::string ok_chunk = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + line64 + "\r\nx\r\n0\r\n\r\n";
  EXPECT_TRUE(Whole(ok_chunk).ok);
  const std::string long_chunk =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + line64 + "e\r\nx\r\n0\r\n\r\n";
  const Outcome refused = Whole(long_chunk);
  EXPECT_EQ(refused.code, StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message.find("chunk size line"), std::string::npos) << refused.message;
  ExpectSplitInvariant(long_chunk);
  // Eight interim responses are skipped; a ninth is refused.
  std::string interim;
  for (int i = 0; i < kMaxInterimResponses; ++i) interim += "HTTP/1.1 100 Continue\r\n\r\n";
  EXPECT_TRUE(Whole(interim + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").ok);
  const Outcome nine = Whole(interim + "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(nine.code, StatusCode::kInvalidArgument);
  EXPECT_NE(nine.message.find("interim"), std::string::npos);
}

// ---- refusals ------------------------------------------------------------------------

struct Refusal {
  std::string input;
  StatusCode code;
  std::string words;   // in the message
  bool small = false;  // with Small() limits
};

TEST(HttpResponseParser, EveryDocumentedRefusal) {
  const HttpResponseLimits small = Small();
  const std::string ok_head = "HTTP/1.1 200 OK\r\n";
  const std::string te = ok_head + "Transfer-Encoding: chunked\r\n\r\n";
  const Refusal cases[] = {
      {"HTTP/2 200 OK\r\n\r\n", StatusCode::kInvalidArgument, "bad status line"},
      {"HTTP/1.2 200 OK\r\n\r\n", StatusCode::kInvalidArgument, "bad status line"},
      {"HTTP/1.1 20 OK\r\n\r\n", StatusCode::kInvalidArgument, "bad status line"},
      {"HTTP/1.1 2000\r\n\r\n", StatusCode::kInvalidArgument, "bad status line"},
      {"\r\nHTTP/1.1 200 OK\r\n\r\n", StatusCode::kInvalidArgument, "bad status line"},
      {"HTTP/1.1 2x0 OK\r\n\r\n", StatusCode::kInvalidArgument, "bad status code"},
      {"HTTP/1.1 099 Low\r\n\r\n", StatusCode::kInvalidArgument, "out of range"},
      {"HTTP/1.1 600 High\r\n\r\n", StatusCode::kInvalidArgument, "out of range"},
      {"HTTP/1.1 200 O\x01K\r\n\r\n", StatusCode::kInvalidArgument, "control character in the status line"},
      {ok_head + "X: a\r\n folded\r\n\r\n", StatusCode::kInvalidArgument, "obsolete header line folding"},
      {ok_head + "\tX: a\r\n\r\n", StatusCode::kInvalidArgument, "obsolete header line folding"},
      {ok_head + ": a\r\n\r\n", StatusCode::kInvalidArgument, "without a name"},
      {ok_head + "NoColon\r\n\r\n", StatusCode::kInvalidArgument, "without a name"},
      {ok_head + "Bad Name: a\r\n\r\n", StatusCode::kInvalidArgument, "invalid character in a header name"},
      {ok_head + "X: a\x01" "b\r\n\r\n", StatusCode::kInvalidArgument, "control character in a header value"},
      {ok_head + "X: a\x7f\r\n\r\n", StatusCode::kInvalidArgument, "control character in a header value"},
      {ok_head + "X: a\nb\r\n\r\n", StatusCode::kInvalidArgument, "control character in a header value"},
      {ok_head + "Content-Length: -1\r\n\r\n", StatusCode::kInvalidArgument, "invalid Content-Length"},
      {ok_head + "Content-Length: 1 2\r\n\r\n", StatusCode::kInvalidArgument, "invalid Content-Length"},
      {ok_head + "Content-Length: 12345678901234567890\r\n\r\n", StatusCode::kInvalidArgument,
       "invalid Content-Length"},
      {ok_head + "Content-Length:\r\n\r\n", StatusCode::kInvalidArgument, "invalid Content-Length"},
      {ok_head + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", StatusCode::kInvalidArgument,
       "conflicting Content-Length"},
      {ok_head + "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
       StatusCode::kInvalidArgument, "both Content-Length and Transfer-Encoding"},
      {ok_head + "Transfer-Encoding: gzip\r\n\r\n", StatusCode::kInvalidArgument, "unsupported Transfer-Encoding"},
      {ok_head + "Transfer-Encoding: gzip, chunked\r\n\r\n", StatusCode::kInvalidArgument,
       "unsupported Transfer-Encoding"},
      {ok_head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       StatusCode::kInvalidArgument, "unsupported Transfer-Encoding"},
      {te + "zz\r\n", StatusCode::kInvalidArgument, "invalid chunk size"},
      {te + "\r\n", StatusCode::kInvalidArgument, "invalid chunk size"},
      {te + "123456789\r\n", StatusCode::kInvalidArgument, "invalid chunk size"},
      {te + "-1\r\n", StatusCode::kInvalidArgument, "invalid chunk size"},
      {te + "2\r\nabXX0\r\n\r\n", StatusCode::kInvalidArgument, "chunk not followed by CRLF"},
      {te + "0\r\n folded: t\r\n\r\n", StatusCode::kInvalidArgument, "obsolete trailer line folding"},
      {te + "0\r\nX: \x02\r\n\r\n", StatusCode::kInvalidArgument, "control character in a trailer value"},
      {te + "0\r\nno colon\r\n\r\n", StatusCode::kInvalidArgument, "trailer line without a name"},
      {"HTTP/1.1 101 Switching Protocols\r\n\r\n", StatusCode::kInvalidArgument, "protocol switch"},
      // Limits (small: 64-byte head and trailers, 16-byte body).
      {ok_head + "X: " + std::string(60, 'h') + "\r\n\r\n", StatusCode::kResourceExhausted, "header over the limit", true},
      {ok_head + "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\n\r\n",
       StatusCode::kResourceExhausted, "header over the limit of 64 bytes", true},
      {ok_head + "Content-Length: 17\r\n\r\n", StatusCode::kResourceExhausted, "body of 17 bytes", true},
      {ok_head + "\r\n" + std::string(17, 'b'), StatusCode::kResourceExhausted, "body over the limit", true},
      {te + "FFFFFFFF\r\n", StatusCode::kResourceExhausted, "body over the limit", true},
      {te + "0\r\nX: " + std::string(60, 't') + "\r\n\r\n", StatusCode::kResourceExhausted, "trailers over the limit", true},
      {te + "1;" + std::string(70, 'e') + "\r\n", StatusCode::kResourceExhausted, "chunk size line over the limit", true},
      // The stream ends inside a response (Finish).
      {"", StatusCode::kUnavailable, "before any response"},
      {"HTTP/1.1 200 OK\r\nContent-Len", StatusCode::kUnavailable, "inside the response header"},
      {"HTTP/1.1 100 Continue\r\n\r\n", StatusCode::kUnavailable, "inside the response header"},
      {ok_head + "Content-Length: 10\r\n\r\nabc", StatusCode::kUnavailable, "after 3 of 10 body bytes"},
      {te + "1", StatusCode::kUnavailable, "inside the response chunk size line"},
      {te + "a\r\nabc", StatusCode::kUnavailable, "inside a chunk"},
      {te + "1\r\na", StatusCode::kUnavailable, "inside a chunk"},
      {te + "0\r\nX: t\r\n", StatusCode::kUnavailable, "inside the response trailers"},
  };
  for (const Refusal& c : cases) {
    SCOPED_TRACE(c.input);
    const HttpResponseLimits limits = c.small ? small : HttpResponseLimits{};
    const Outcome o = Whole(c.input, limits);
    ASSERT_FALSE(o.ok);
    EXPECT_EQ(o.code, c.code) << o.message;
    EXPECT_NE(o.message.find(c.words), std::string::npos) << o.message;
    if (c.code == StatusCode::kInvalidArgument) {
      EXPECT_EQ(o.message.rfind("malformed HTTP response: ", 0), 0u) << o.message;
    }
    if (c.code == StatusCode::kUnavailable && !c.input.empty()) {
      EXPECT_NE(o.message.find("truncated response"), std::string::npos) << o.message;
    }
    ExpectSplitInvariant(c.input, limits);
  }
}

TEST(HttpResponseParser, IsSpentAfterAResponseOrAnError) {
  HttpResponseParser done;
  auto first = done.Feed(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ(done.Feed(std::string_view("x")).error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(done.Finish().error().code(), StatusCode::kFailedPrecondition);

  HttpResponseParser failed;
  auto bad = failed.Feed(std::string_view("HTTP/9"));
  ASSERT_TRUE(bad.ok());  // not enough to decide yet
  bad = failed.Feed(std::string_view(" 200\r\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(failed.Feed(std::string_view("HTTP/1.1 200 OK\r\n\r\n")).error().message(), bad.error().message());
  EXPECT_EQ(failed.Finish().error().message(), bad.error().message());
  EXPECT_EQ(failed.bytes_fed(), 12u);
}

}  // namespace
}  // namespace tkms::web::client
