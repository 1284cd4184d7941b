// Tests of the strict HTTP/1.1 request parser (web/http1_parser.h, RFC 9112):
// head scanning, the request line and its target forms, header fields, Host,
// body framing on the complete header list (through DecideBodyFraming), and
// the incremental chunked decoder, each rule with accepted and refused cases.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "web/http1_parser.h"
#include "web/http_framing.h"

namespace tkms::web {
namespace {

using namespace std::string_literals;

// ---- helpers --------------------------------------------------------------------

struct Parsed {
  bool ok = false;
  HttpRequest request;
  HeadError error;
  RequestTargetInfo info;
};

Parsed Parse(std::string_view head, const HeadLimits& limits = {}) {
  Parsed p;
  p.ok = ParseRequestHead(head, limits, p.request, p.error, &p.info);
  return p;
}

// A head with the request line and the given field lines.
std::string Head(std::string_view request_line, const std::vector<std::string>& fields) {
  std::string head(request_line);
  head += "\r\n";
  for (const std::string& f : fields) head += f + "\r\n";
  return head + "\r\n";
}

std::string Get(std::string_view target, const std::vector<std::string>& more = {}) {
  std::vector<std::string> fields = {"Host: kms.example.org"};
  fields.insert(fields.end(), more.begin(), more.end());
  return Head("GET " + std::string(target) + " HTTP/1.1", fields);
}

// Expects a refusal with this status and label, and a one-line printable detail.
void ExpectRefused(std::string_view head, int status, std::string_view label,
                   const HeadLimits& limits = {}) {
  const Parsed p = Parse(head, limits);
  ASSERT_FALSE(p.ok) << testing::PrintToString(std::string(head));
  EXPECT_EQ(p.error.status, status) << testing::PrintToString(std::string(head));
  EXPECT_EQ(p.error.label, label) << testing::PrintToString(std::string(head)) << " -> " << p.error.detail;
  EXPECT_FALSE(p.error.detail.empty());
  for (const char c : p.error.detail) {
    EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "detail not printable ASCII: " << p.error.detail;
  }
}

void ExpectAccepted(std::string_view head, const HeadLimits& limits = {}) {
  const Parsed p = Parse(head, limits);
  EXPECT_TRUE(p.ok) << testing::PrintToString(std::string(head)) << " -> " << p.error.label << ": "
                    << p.error.detail;
}

// ---- ScanForHeadEnd -------------------------------------------------------------

TEST(Http1Scan, FindsTheEmptyLineAndLeavesPipelinedBytes) {
  const std::string head = Get("/");
  size_t length = 0;
  EXPECT_EQ(ScanForHeadEnd(head, 8192, &length), HeadScan::kComplete);
  EXPECT_EQ(length, head.size());
  EXPECT_EQ(ScanForHeadEnd(head + "POST / HTTP/1.1\r\n", 8192, &length), HeadScan::kComplete);
  EXPECT_EQ(length, head.size());
  for (size_t n = 0; n < head.size(); ++n) {
    EXPECT_EQ(ScanForHeadEnd(std::string_view(head).substr(0, n), 8192, &length), HeadScan::kIncomplete)
        << n;
  }
}

TEST(Http1Scan, TooLargeOnlyOnceMaxBytesAreBufferedWithoutAnEnd) {
  const std::string head = Get("/");
  size_t length = 0;
  EXPECT_EQ(ScanForHeadEnd(head, head.size(), &length), HeadScan::kComplete);  // exactly the max
  EXPECT_EQ(length, head.size());
  EXPECT_EQ(ScanForHeadEnd(head, head.size() - 1, &length), HeadScan::kTooLarge);
  EXPECT_EQ(ScanForHeadEnd(std::string_view(head).substr(0, 10), 11, &length), HeadScan::kIncomplete);
  EXPECT_EQ(ScanForHeadEnd(std::string_view(head).substr(0, 11), 11, &length), HeadScan::kTooLarge);
  EXPECT_EQ(ScanForHeadEnd(std::string(20000, 'a'), 8192, &length), HeadScan::kTooLarge);
}

TEST(Http1Scan, SkipsAndCountsAFewLeadingEmptyLines) {
  const std::string head = Get("/");
  size_t length = 0;
  for (size_t n = 1; n <= kMaxLeadingEmptyLines; ++n) {
    std::string lead;
    for (size_t i = 0; i < n; ++i) lead += "\r\n";
    ASSERT_EQ(ScanForHeadEnd(lead + head, 8192, &length), HeadScan::kComplete) << n;
    EXPECT_EQ(length, lead.size() + head.size());
    const Parsed p = Parse(lead + head);
    EXPECT_TRUE(p.ok) << n;
    EXPECT_EQ(p.request.target, "/");
  }
  // Only leading empty lines so far: more may come.
  EXPECT_EQ(ScanForHeadEnd("\r\n\r\n", 8192, &length), HeadScan::kIncomplete);
  // One too many: the request line is empty, refused.
  std::string lead;
  for (size_t i = 0; i <= kMaxLeadingEmptyLines; ++i) lead += "\r\n";
  ASSERT_EQ(ScanForHeadEnd(lead + "\r\n" + head, 8192, &length), HeadScan::kComplete);
  ExpectRefused(std::string_view(lead + "\r\n" + head).substr(0, length), 400, "bad_request_line");
}

TEST(Http1Scan, BareLfEndsTheScanSoItIsRefusedAtOnce) {
  size_t length = 0;
  const std::string bare = "GET / HTTP/1.1\nHost: x\n";
  ASSERT_EQ(ScanForHeadEnd(bare, 8192, &length), HeadScan::kComplete);
  EXPECT_EQ(length, 15u);
  ExpectRefused(std::string_view(bare).substr(0, length), 400, "bare_lf");
  ASSERT_EQ(ScanForHeadEnd("\n", 8192, &length), HeadScan::kComplete);
  ExpectRefused("\n", 400, "bare_lf");
  ASSERT_EQ(ScanForHeadEnd("GET / HTTP/1.1\r\nHost: x\r\n\n", 8192, &length), HeadScan::kComplete);
  ExpectRefused("GET / HTTP/1.1\r\nHost: x\r\n\n", 400, "bare_lf");
}

TEST(Http1Scan, ResumeHintGivesTheSameAnswerByteByByte) {
  const std::vector<std::string> inputs = {Get("/a?b"), "\r\n\r\n" + Get("/"), "GET / HTTP/1.1\r\nA: b\nC",
                                           std::string(300, 'x'), "\r\n\r\n\r\n\r\n\r\n\r\n"};
  for (const std::string& in : inputs) {
    for (const size_t max : {size_t{16}, size_t{8192}}) {
      size_t want_length = 0;
      const HeadScan want = ScanForHeadEnd(in, max, &want_length);
      size_t hint = 0;
      HeadScan got = HeadScan::kIncomplete;
      size_t got_length = 0;
      for (size_t n = 0; n <= in.size() && got == HeadScan::kIncomplete; ++n) {
        got = ScanForHeadEnd(std::string_view(in).substr(0, n), max, &got_length, &hint);
      }
      EXPECT_EQ(got, want) << in;
      if (want == HeadScan::kComplete) {
        EXPECT_EQ(got_length, want_length) << in;
      }
    }
  }
}

// ---- the request line -----------------------------------------------------------

TEST(Http1RequestLine, RfcExamplesParse) {
  // RFC 9112 §3.2.1 (origin-form).
  Parsed p = Parse("GET /where?q=now HTTP/1.1\r\nHost: www.example.org\r\n\r\n");
  ASSERT_TRUE(p.ok) << p.error.detail;
  EXPECT_EQ(p.request.method, "GET");
  EXPECT_EQ(p.request.target, "/where?q=now");
  EXPECT_EQ(p.request.version, "1.1");
  EXPECT_EQ(p.request.path(), "/where");
  EXPECT_EQ(p.request.query(), "q=now");
  ASSERT_EQ(p.request.headers.size(), 1u);
  EXPECT_EQ(p.request.headers[0].name, "Host");
  EXPECT_EQ(p.request.headers[0].value, "www.example.org");
  EXPECT_EQ(p.info.form, TargetForm::kOrigin);

  // RFC 9112 §3.2.2 (absolute-form).
  p = Parse("GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1\r\nHost: www.example.org\r\n\r\n");
  ASSERT_TRUE(p.ok) << p.error.detail;
  EXPECT_EQ(p.request.target, "/pub/WWW/TheProject.html");
  EXPECT_EQ(p.info.form, TargetForm::kAbsolute);
  EXPECT_EQ(p.info.scheme, "http");
  EXPECT_EQ(p.info.authority, "www.example.org");

  // RFC 9112 §3.2.4 (asterisk-form).
  p = Parse("OPTIONS * HTTP/1.1\r\nHost: www.example.org:8001\r\n\r\n");
  ASSERT_TRUE(p.ok) << p.error.detail;
  EXPECT_EQ(p.request.target, "*");
  EXPECT_EQ(p.info.form, TargetForm::kAsterisk);

  // RFC 9112 §3.2.3 (authority-form): tkms does not implement CONNECT.
  ExpectRefused("CONNECT www.example.com:80 HTTP/1.1\r\nHost: www.example.com\r\n\r\n", 501, "connect");
}

TEST(Http1RequestLine, MethodIsACaseSensitiveToken) {
  for (const char* method : {"GET", "POST", "get", "M-SEARCH", "X!#$%&'*+-.^_`|~9"}) {
    const Parsed p = Parse(Head(std::string(method) + " / HTTP/1.1", {"Host: a"}));
    ASSERT_TRUE(p.ok) << method;
    EXPECT_EQ(p.request.method, method);
  }
  for (const char* method : {"GE(T", "G\"ET", "GET:", "G@T", "G/T", "GÉT"}) {
    ExpectRefused(Head(std::string(method) + " / HTTP/1.1", {"Host: a"}), 400, "bad_request_line");
  }
  ExpectRefused(Head(" / HTTP/1.1", {"Host: a"}), 400, "bad_request_line");
}

TEST(Http1RequestLine, ExactlyOneSpaceBetweenParts) {
  ExpectAccepted(Head("GET / HTTP/1.1", {"Host: a"}));
  for (const char* line : {"GET  / HTTP/1.1", "GET /  HTTP/1.1", "GET / HTTP/1.1 ", " GET / HTTP/1.1",
                           "GET\t/ HTTP/1.1", "GET /\tHTTP/1.1", "GET / x HTTP/1.1", "GET /", "GET",
                           "GET / HTTP/1.1\r", "GET\r / HTTP/1.1", "GET / HTTP/1.1\x01"}) {
    ExpectRefused(Head(line, {"Host: a"}), 400, "bad_request_line");
  }
  ExpectRefused(Head("GET /\x01 HTTP/1.1", {"Host: a"}), 400, "bad_target");
  ExpectRefused(Head("GET /\r HTTP/1.1", {"Host: a"}), 400, "bad_target");
}

TEST(Http1RequestLine, VersionIsExactly11Or10) {
  Parsed p = Parse(Head("GET / HTTP/1.0", {}));
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.request.version, "1.0");
  p = Parse(Head("GET / HTTP/1.1", {"Host: a"}));
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.request.version, "1.1");
  for (const char* v : {"HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/9.9"}) {
    ExpectRefused(Head(std::string("GET / ") + v, {"Host: a"}), 505, "bad_version");
  }
  for (const char* v : {"http/1.1", "HTTP/1.1x", "HTTP/11", "HTTP/1", "HTTP/2", "HTTP/1.", "HTTP/a.1",
                        "HTTP 1.1", "HTTPS/1.1", ""}) {
    ExpectRefused(Head(std::string("GET / ") + v, {"Host: a"}), 400, "bad_request_line");
  }
}

TEST(Http1RequestLine, Http2PrefaceIs505) {
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  size_t length = 0;
  ASSERT_EQ(ScanForHeadEnd(preface, 8192, &length), HeadScan::kComplete);
  EXPECT_EQ(length, 18u);
  ExpectRefused(std::string_view(preface).substr(0, length), 505, "bad_version");
}

// ---- request-target -------------------------------------------------------------

TEST(Http1Target, OriginFormFollowsRfc3986) {
  for (const char* t : {"/", "/keymanagement?requesttype=ticketrequest", "/a/b/../c", "//x", "/%41%7e",
                        "/a:b@c!$&'()*+,;=-._~", "/?", "/p?q/?:@", "/?a=b&c=d%20e"}) {
    const Parsed p = Parse(Get(t));
    ASSERT_TRUE(p.ok) << t << " " << p.error.detail;
    EXPECT_EQ(p.request.target, t);
  }
  for (const char* t : {"/a b", "/a#frag", "/%zz", "/%4", "/%", "/\"", "/<>", "/{x}", "/a|b", "/a\\b",
                        "/^", "/`", "/[", "/\x7f", "/\xc3\xa9", "a/b", "?q", "//x#"}) {
    ExpectRefused(Get(t), 400, t == std::string("/a b") ? "bad_request_line" : "bad_target");
  }
}

TEST(Http1Target, AbsoluteFormIsReducedToOriginForm) {
  struct Case {
    const char* raw;
    const char* target;
    const char* scheme;
    const char* authority;
  };
  for (const Case c : {Case{"http://kms.example.org/keymanagement?x=1", "/keymanagement?x=1", "http",
                            "kms.example.org"},
                       Case{"HTTPS://kms.example.org:8443", "/", "https", "kms.example.org:8443"},
                       Case{"http://192.0.2.1?q", "/?q", "http", "192.0.2.1"},
                       Case{"http://[2001:db8::1]:80/a", "/a", "http", "[2001:db8::1]:80"},
                       Case{"http://h/", "/", "http", "h"}}) {
    const Parsed p = Parse(Get(c.raw));
    ASSERT_TRUE(p.ok) << c.raw << " " << p.error.detail;
    EXPECT_EQ(p.request.target, c.target);
    EXPECT_EQ(p.info.form, TargetForm::kAbsolute);
    EXPECT_EQ(p.info.scheme, c.scheme);
    EXPECT_EQ(p.info.authority, c.authority);
  }
  for (const char* raw : {"http://", "http:///a", "http://user@h/", "http://u:p@h/", "ftp://h/",
                          "http:/h/", "http//h/", "http://h:99999/", "http://h:8o/", "http://[::1/",
                          "http://h/#f", "http://h/a b", "http://h/%g0", "mailto:a@b", "h:80"}) {
    const Parsed p = Parse(Get(raw));
    EXPECT_FALSE(p.ok) << raw;
    EXPECT_EQ(p.error.status, 400) << raw;
  }
}

TEST(Http1Target, AsteriskOnlyForOptions) {
  ExpectAccepted(Head("OPTIONS * HTTP/1.1", {"Host: a"}));
  ExpectAccepted(Head("OPTIONS / HTTP/1.1", {"Host: a"}));
  for (const char* method : {"GET", "POST", "HEAD", "options"}) {
    ExpectRefused(Head(std::string(method) + " * HTTP/1.1", {"Host: a"}), 400, "bad_target");
  }
  ExpectRefused(Head("OPTIONS ** HTTP/1.1", {"Host: a"}), 400, "bad_target");
}

TEST(Http1Target, AuthorityFormOnlyForConnectWhichIs501) {
  ExpectRefused(Head("CONNECT kms.example.org:443 HTTP/1.1", {"Host: kms.example.org:443"}), 501, "connect");
  ExpectRefused(Head("CONNECT [::1]:443 HTTP/1.1", {"Host: a"}), 501, "connect");
  ExpectRefused(Head("CONNECT / HTTP/1.1", {"Host: a"}), 400, "bad_target");
  ExpectRefused(Head("CONNECT kms.example.org HTTP/1.1", {"Host: a"}), 400, "bad_target");
  ExpectRefused(Head("GET kms.example.org:443 HTTP/1.1", {"Host: a"}), 400, "bad_target");
  ExpectRefused(Head("POST kms.example.org:443 HTTP/1.1", {"Host: a"}), 400, "bad_target");
}

TEST(Http1Target, LongerThanTheLimitIs414) {
  HeadLimits limits;
  limits.max_target_bytes = 32;
  const std::string at_limit = "/" + std::string(31, 'a');
  ExpectAccepted(Get(at_limit), limits);
  ExpectRefused(Get(at_limit + "a"), 414, "target_too_long", limits);
  ExpectRefused(Get("http://h/" + std::string(30, 'a')), 414, "target_too_long", limits);
  ExpectRefused(Get("/" + std::string(5000, 'a')), 414, "target_too_long");
}

// ---- header fields --------------------------------------------------------------

TEST(Http1Fields, NamesAsSentValuesTrimmedOrderKept) {
  const Parsed p = Parse(Get("/", {"content-TYPE:application/mikey", "X-A: \t a  b \t ", "X-Empty:",
                                   "X-Ws: \t ", "X-Obs-Text: caf\xc3\xa9", "x-a: 2"}));
  ASSERT_TRUE(p.ok) << p.error.detail;
  ASSERT_EQ(p.request.headers.size(), 7u);
  EXPECT_EQ(p.request.headers[1].name, "content-TYPE");
  EXPECT_EQ(p.request.headers[1].value, "application/mikey");
  EXPECT_EQ(p.request.headers[2].value, "a  b");
  EXPECT_EQ(p.request.headers[3].value, "");
  EXPECT_EQ(p.request.headers[4].value, "");
  EXPECT_EQ(p.request.headers[5].value, "caf\xc3\xa9");
  EXPECT_EQ(p.request.headers[6].name, "x-a");
  EXPECT_EQ(p.request.CountHeaders("X-A"), 2u);
  ExpectAccepted(Get("/", {"X!#$%&'*+-.^_`|~0: v"}));
}

TEST(Http1Fields, WhitespaceBeforeColonIs400) {
  ExpectRefused(Get("/", {"Content-Length : 5"}), 400, "space_before_colon");
  ExpectRefused(Get("/", {"Content-Length\t: 5"}), 400, "space_before_colon");
  ExpectRefused(Head("GET / HTTP/1.1", {"Host : a"}), 400, "space_before_colon");
  ExpectAccepted(Get("/", {"Content-Length:5"}));
}

TEST(Http1Fields, ObsFoldIs400) {
  ExpectRefused(Get("/", {"X-A: a", " b"}), 400, "obs_fold");
  ExpectRefused(Get("/", {"X-A: a", "\tb"}), 400, "obs_fold");
  ExpectRefused(Head("GET / HTTP/1.1", {" Host: a"}), 400, "obs_fold");
}

TEST(Http1Fields, NameMustBeANonEmptyToken) {
  for (const std::string& line : {"X-A"s, ": v"s, "X(A): v"s, "X\"A\": v"s, "X/A: v"s, "X A: v"s,
                                  "X\x01: v"s, "X\xc3\xa9: v"s, "X\x7f: v"s, "[X]: v"s, "X{}: v"s,
                                  "\x00: v"s, "X\x00: v"s}) {
    ExpectRefused(Get("/", {line}), 400, "bad_header_name");
  }
  ExpectRefused(Get("/", {":"}), 400, "bad_header_name");
}

TEST(Http1Fields, ValueIsVcharObsTextSpHtabOnly) {
  for (const std::string& value : {"a\x00"s "b", "a\rb"s, "a\x01"s, "\x1f"s, "a\x7f"s, "\x0b"s, "\x0c"s}) {
    ExpectRefused(Get("/", {"X-A: " + value}), 400, "bad_header_value");
  }
  ExpectAccepted(Get("/", {"X-A: !~ \x80\xff\t\"()"}));
}

TEST(Http1Fields, BareLfAnywhereIs400) {
  ExpectRefused("GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", 400, "bare_lf");
  ExpectRefused("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare_lf");
  ExpectRefused("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare_lf");
  ExpectRefused("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare_lf");
  ExpectRefused("GET / HTTP/1.1\r\nHost: a\n\n", 400, "bare_lf");
}

TEST(Http1Fields, TooManyFieldsIs431NeverDropped) {
  HeadLimits limits;
  std::vector<std::string> fields = {"Host: a"};
  for (size_t i = 1; i < limits.max_header_fields; ++i) fields.push_back("X-" + std::to_string(i) + ": v");
  const Parsed p = Parse(Head("GET / HTTP/1.1", fields));
  ASSERT_TRUE(p.ok) << p.error.detail;
  EXPECT_EQ(p.request.headers.size(), limits.max_header_fields);
  fields.push_back("X-Last: v");
  ExpectRefused(Head("GET / HTTP/1.1", fields), 431, "too_many_headers");
  limits.max_header_fields = 2;
  ExpectAccepted(Get("/", {"A: 1"}), limits);
  ExpectRefused(Get("/", {"A: 1", "B: 2"}), 431, "too_many_headers", limits);
}

TEST(Http1Fields, HeadLargerThanTheLimitIs431) {
  const std::string head = Get("/", {"X-A: " + std::string(200, 'v')});
  HeadLimits limits;
  limits.max_header_bytes = head.size();
  ExpectAccepted(head, limits);
  limits.max_header_bytes = head.size() - 1;
  ExpectRefused(head, 431, "header_too_large", limits);
}

TEST(Http1Fields, TheHeadEndsAtExactlyOneEmptyLine) {
  ExpectRefused("GET / HTTP/1.1\r\nHost: a\r\n", 400, "bad_head");
  ExpectRefused("GET / HTTP/1.1\r\nHost: a", 400, "bad_head");
  ExpectRefused("GET / HTTP/1.1", 400, "bad_head");
  ExpectRefused("", 400, "bad_head");
  ExpectRefused(Get("/") + "X", 400, "bad_head");
  ExpectRefused(Get("/") + "\r\n", 400, "bad_head");
}

TEST(Http1Fields, RefusalsNeverEchoRawBytes) {
  const Parsed p = Parse(Get("/", {"X\x01\x1b[31m: v"}));
  ASSERT_FALSE(p.ok);
  EXPECT_EQ(p.error.detail.find('\x1b'), std::string::npos);
  EXPECT_NE(p.error.detail.find("\\x1b"), std::string::npos) << p.error.detail;
}

TEST(Http1Fields, RefusedRequestIsLeftUntouched) {
  HttpRequest request;
  request.method = "KEEP";
  HeadError error;
  EXPECT_FALSE(ParseRequestHead(Get("/", {"Bad Name: v"}), HeadLimits{}, request, error));
  EXPECT_EQ(request.method, "KEEP");
  EXPECT_TRUE(request.headers.empty());
}

// ---- Host -----------------------------------------------------------------------

TEST(Http1Host, RequiredOnceIn11AtMostOnceIn10) {
  ExpectRefused(Head("GET / HTTP/1.1", {}), 400, "missing_host");
  ExpectRefused(Head("GET / HTTP/1.1", {"X-Host: a"}), 400, "missing_host");
  ExpectAccepted(Head("GET / HTTP/1.0", {}));
  ExpectRefused(Head("GET / HTTP/1.1", {"Host: a", "host: a"}), 400, "repeated_host");
  ExpectRefused(Head("GET / HTTP/1.0", {"Host: a", "HOST: b"}), 400, "repeated_host");
  ExpectRefused(Head("GET http://a/ HTTP/1.1", {}), 400, "missing_host");
}

TEST(Http1Host, ValueIsUriHostAndOptionalPort) {
  for (const char* host : {"kms.example.org", "kms.example.org:8080", "192.0.2.1:80", "[2001:db8::1]",
                           "[2001:db8::1]:443", "[::1]", "[::]", "[::ffff:192.0.2.1]", "[1:2:3:4:5:6:7:8]",
                           "[v1.fe80::a+b]", "h:", "a%41b", "xn--bcher-kva.example", "h:65535"}) {
    ExpectAccepted(Get("/", {}).replace(22, 15, host));
  }
  for (const char* host : {"a b", "h:99999", "h:65536", "h:8o", "h:-1", "[::1", "::1", "[::1]x", "[1::2::3]",
                           "[1:2:3:4:5:6:7:8:9]", "[12345::]", "[::1.2.3.256]", "[::1.2.3.04]", "u@h", "a/b",
                           "h:80:80", ":80", "[]", "[v1]", "%zz", "h\"", "h?"}) {
    ExpectRefused(Get("/").replace(22, 15, host), 400, "bad_host");
  }
}

TEST(Http1Host, EmptyOnlyWhenTheTargetHasNoAuthority) {
  ExpectAccepted(Head("GET / HTTP/1.1", {"Host:"}));
  ExpectAccepted(Head("OPTIONS * HTTP/1.1", {"Host: "}));
  ExpectRefused(Head("GET http://kms.example.org/ HTTP/1.1", {"Host:"}), 400, "bad_host");
  // With absolute-form the target's authority counts; Host need only be valid.
  const Parsed p = Parse(Head("GET http://kms.example.org/ HTTP/1.1", {"Host: other.example"}));
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.info.authority, "kms.example.org");
}

// ---- body framing on the full header list ---------------------------------------

BodyFraming FrameOf(const std::string& head) {
  const Parsed p = Parse(head);
  EXPECT_TRUE(p.ok) << p.error.detail;
  return DecideBodyFraming(p.request.headers);
}

std::vector<std::string> Filler(size_t n) {
  std::vector<std::string> fields;
  for (size_t i = 0; i < n; ++i) fields.push_back("X-Filler-" + std::to_string(i) + ": v");
  return fields;
}

TEST(Http1Framing, MalformedContentLengthsAreRefused) {
  for (const char* cl : {"+228", "228, 228", "1e3", "-1", "0x10", "228 228", "228,"}) {
    const BodyFraming f = FrameOf(Get("/", {std::string("Content-Length: ") + cl}));
    EXPECT_EQ(f.error, FramingError::kBadContentLength) << cl;
    EXPECT_EQ(f.kind, BodyFraming::Kind::kNone) << cl;
  }
  const BodyFraming ok = FrameOf(Get("/", {"Content-Length: 228"}));
  EXPECT_EQ(ok.kind, BodyFraming::Kind::kContentLength);
  EXPECT_EQ(ok.content_length, 228u);
  EXPECT_EQ(FrameOf(Get("/", {"Content-Length: 228", "Content-Length: 228"})).error,
            FramingError::kRepeatedContentLength);
}

TEST(Http1Framing, FieldsAfterThe64thAreSeen) {
  std::vector<std::string> fields = Filler(70);
  fields.insert(fields.begin() + 5, "Content-Length: 8");
  fields.push_back("Transfer-Encoding: chunked");
  EXPECT_EQ(FrameOf(Get("/", fields)).error, FramingError::kContentLengthAndTransferEncoding);

  fields = Filler(70);
  fields.insert(fields.begin() + 5, "Content-Length: 8");
  fields.push_back("content-length: 8");
  EXPECT_EQ(FrameOf(Get("/", fields)).error, FramingError::kRepeatedContentLength);

  fields = Filler(70);
  fields.push_back("Transfer-Encoding: chunked");
  EXPECT_EQ(FrameOf(Get("/", fields)).kind, BodyFraming::Kind::kChunked);

  fields = Filler(70);
  fields.push_back("Content-Type: application/mikey");
  const Parsed p = Parse(Get("/", fields));
  ASSERT_TRUE(p.ok);
  ASSERT_NE(p.request.FindHeader("content-type"), nullptr);
  EXPECT_EQ(*p.request.FindHeader("content-type"), "application/mikey");
  EXPECT_EQ(p.request.headers.size(), 72u);

  fields = Filler(70);
  fields.push_back("Host: second");
  ExpectRefused(Get("/", fields), 400, "repeated_host");
}

// ---- chunked --------------------------------------------------------------------

struct Decoded {
  std::string out;
  size_t consumed = 0;
  ChunkedDecoder::State state = ChunkedDecoder::State::kNeedMore;
  std::string detail;
};

Decoded DecodeOnce(std::string_view in, size_t cap = 1024, size_t max_trailer = 8192) {
  ChunkedDecoder d(cap, max_trailer);
  Decoded r;
  const ChunkedDecoder::Step s = d.Feed(in, r.out);
  r.consumed = s.consumed;
  r.state = s.state;
  r.detail = std::string(d.error_detail());
  return r;
}

// Feeds `in` in pieces cut at `cuts` (ascending offsets).
Decoded DecodeSplit(std::string_view in, const std::vector<size_t>& cuts, size_t cap = 1024,
                    size_t max_trailer = 8192) {
  ChunkedDecoder d(cap, max_trailer);
  Decoded r;
  size_t at = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(in.size());
  for (const size_t end : ends) {
    const ChunkedDecoder::Step s = d.Feed(in.substr(at, end - at), r.out);
    r.consumed += s.consumed;
    r.state = s.state;
    if (s.state != ChunkedDecoder::State::kNeedMore) break;
    EXPECT_EQ(s.consumed, end - at);
    at = end;
  }
  r.detail = std::string(d.error_detail());
  return r;
}

using State = ChunkedDecoder::State;

TEST(Http1Chunked, KnownAnswer) {
  // The chunked example used across HTTP/1.1 texts: 4 + 5 + 14 bytes.
  const std::string body = "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
  const Decoded r = DecodeOnce(body + "GET / HTTP/1.1\r\n");
  EXPECT_EQ(r.state, State::kDone);
  EXPECT_EQ(r.out, "Wikipedia in\r\n\r\nchunks.");
  EXPECT_EQ(r.consumed, body.size());  // the pipelined request stays
  EXPECT_EQ(r.detail, "");
}

TEST(Http1Chunked, SizesAreHexUpTo16DigitsBelow2To63) {
  EXPECT_EQ(DecodeOnce("a\r\n0123456789\r\n0\r\n\r\n").out, "0123456789");
  EXPECT_EQ(DecodeOnce("A\r\n0123456789\r\n0\r\n\r\n").out, "0123456789");
  EXPECT_EQ(DecodeOnce("000000000000000a\r\n0123456789\r\n0\r\n\r\n").out, "0123456789");
  EXPECT_EQ(DecodeOnce("0000000000000000\r\n\r\n").state, State::kDone);
  EXPECT_EQ(DecodeOnce("0\r\n\r\n").out, "");
  // 2^63 - 1 is a valid size (then too large for the cap).
  const Decoded max = DecodeOnce("7fffffffffffffff\r\nabcd", 2);
  EXPECT_EQ(max.state, State::kTooLarge);
  EXPECT_EQ(max.out, "abc");
  for (const char* bad : {"00000000000000000\r\n", "8000000000000000\r\n", "ffffffffffffffff\r\n",
                          "10000000000000000\r\n", "x\r\n", "\r\n", "-5\r\n", "+5\r\n", "0x5\r\n", " 5\r\n",
                          "5g\r\n"}) {
    const Decoded r = DecodeOnce(bad);
    EXPECT_EQ(r.state, State::kError) << bad;
    EXPECT_FALSE(r.detail.empty()) << bad;
  }
}

TEST(Http1Chunked, ExtensionsAreParsedAndIgnored) {
  for (const char* line : {"5;a", "5;a=b", "5;a=\"q \\\" x\"", "5 ;a=b", "5\t; a = b", "5;a;b=c",
                           "5; a=\"\";b", "5;a=\"\xc3\xa9\"", "5;!#$%&'*+-.^_`|~=tok"}) {
    const Decoded r = DecodeOnce(std::string(line) + "\r\nhello\r\n0;last=1\r\n\r\n");
    EXPECT_EQ(r.state, State::kDone) << line << " " << r.detail;
    EXPECT_EQ(r.out, "hello") << line;
  }
  for (const char* line : {"5 ", "5;a=b ", "5;a ", "5;", "5;=b", "5;a=", "5;a=\"x", "5;a=\"x\"y", "5;a=b=c",
                           "5;a=\"\x01\"", "5;a b", "5 a", "5;a=(b)", "5,a", "5;a=\"\\\x01\""}) {
    const Decoded r = DecodeOnce(std::string(line) + "\r\nhello\r\n0\r\n\r\n");
    EXPECT_EQ(r.state, State::kError) << line;
  }
}

TEST(Http1Chunked, ChunkLinesAreBounded) {
  const std::string ok = "5;a=" + std::string(ChunkedDecoder::kMaxChunkLineBytes - 6, 'x') + "\r\n";
  ASSERT_EQ(ok.size(), ChunkedDecoder::kMaxChunkLineBytes);
  EXPECT_EQ(DecodeOnce(ok + "hello\r\n0\r\n\r\n").state, State::kDone);
  const std::string long_line = "5;a=" + std::string(ChunkedDecoder::kMaxChunkLineBytes - 5, 'x') + "\r\n";
  const Decoded r = DecodeOnce(long_line + "hello\r\n0\r\n\r\n");
  EXPECT_EQ(r.state, State::kError);
  EXPECT_LE(r.consumed, ChunkedDecoder::kMaxChunkLineBytes + 1);
}

TEST(Http1Chunked, BareLfAnywhereIsAnError) {
  for (const char* body : {"5\nhello\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "5\r\nhello\r\n0\n\r\n",
                           "5\r\nhello\r\n0\r\n\n", "5\r\nhello\r\n0\r\nX: y\n\r\n", "5;a\nhello",
                           "5;a=\"\n\"\r\n"}) {
    EXPECT_EQ(DecodeOnce(body).state, State::kError) << body;
  }
  // A LF inside chunk data is data.
  EXPECT_EQ(DecodeOnce("3\r\na\nb\r\n0\r\n\r\n").out, "a\nb");
}

TEST(Http1Chunked, DataIsFollowedByExactlyCrlf) {
  for (const char* body : {"5\r\nhelloX\r\n0\r\n\r\n", "5\r\nhello\r0\r\n\r\n", "5\r\nhello \r\n0\r\n\r\n",
                           "5\r\nhell\r\n0\r\n\r\n", "5\r\nhello\r\r\n"}) {
    const Decoded r = DecodeOnce(body);
    EXPECT_EQ(r.state, State::kError) << body;
    EXPECT_EQ(r.detail.find('\n'), std::string::npos);
  }
}

TEST(Http1Chunked, TrailersAreValidatedBoundedAndDiscarded) {
  Decoded r = DecodeOnce("5\r\nhello\r\n0\r\nX-Trailer: v a\r\nY:\r\n\r\nNEXT");
  EXPECT_EQ(r.state, State::kDone);
  EXPECT_EQ(r.out, "hello");
  EXPECT_EQ(r.consumed, 35u);
  for (const char* trailer : {"X-T : v\r\n", " X: v\r\n", "\tX: v\r\n", ": v\r\n", "X(: v\r\n", "X: \x01\r\n",
                              "X: a\rb\r\n", "X\r\n", "X: \x7f\r\n"}) {
    r = DecodeOnce("0\r\n" + std::string(trailer) + "\r\n");
    EXPECT_EQ(r.state, State::kError) << trailer;
  }
  const std::string trailer = "X: " + std::string(20, 'v') + "\r\n\r\n";  // the whole section
  EXPECT_EQ(DecodeOnce("0\r\n" + trailer, 16, trailer.size()).state, State::kDone);
  EXPECT_EQ(DecodeOnce("0\r\n" + trailer, 16, trailer.size() - 1).state, State::kError);
  EXPECT_EQ(DecodeOnce("0\r\n\r\n", 16, 2).state, State::kDone);
}

TEST(Http1Chunked, CapStopsAtCapPlusOne) {
  Decoded r = DecodeOnce("5\r\nhello\r\n0\r\n\r\n", 5);
  EXPECT_EQ(r.state, State::kDone);
  r = DecodeOnce("5\r\nhello\r\n0\r\n\r\n", 4);
  EXPECT_EQ(r.state, State::kTooLarge);
  EXPECT_EQ(r.out, "hello");
  EXPECT_EQ(r.consumed, 8u);
  r = DecodeOnce("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 4);
  EXPECT_EQ(r.state, State::kTooLarge);
  EXPECT_EQ(r.out, "abcde");
  r = DecodeOnce("0\r\n\r\n", 0);
  EXPECT_EQ(r.state, State::kDone);
  r = DecodeOnce("1\r\na\r\n0\r\n\r\n", 0);
  EXPECT_EQ(r.state, State::kTooLarge);
  EXPECT_EQ(r.out, "a");
  r = DecodeOnce("1\r\na\r\n0\r\n\r\n", SIZE_MAX);
  EXPECT_EQ(r.state, State::kDone);
}

TEST(Http1Chunked, OutCapacityNeverPassesCapPlusOne) {
  const size_t cap = 1000;
  std::string body;
  for (int i = 0; i < 40; ++i) body += "20\r\n" + std::string(32, 'a') + "\r\n";
  ChunkedDecoder d(cap);
  std::string out;
  for (const char c : body) {
    if (d.Feed(std::string_view(&c, 1), out).state != State::kNeedMore) break;
    EXPECT_LE(out.capacity(), cap + 1);
    EXPECT_LE(out.size(), cap + 1);
  }
  EXPECT_EQ(d.state(), State::kTooLarge);
  EXPECT_EQ(out.size(), cap + 1);
  EXPECT_EQ(d.decoded_bytes(), cap + 1);
}

TEST(Http1Chunked, FinalStatesConsumeNothingMore) {
  ChunkedDecoder d(16);
  std::string out;
  EXPECT_EQ(d.Feed("0\r\n\r\n", out).state, State::kDone);
  const ChunkedDecoder::Step s = d.Feed("1\r\na\r\n", out);
  EXPECT_EQ(s.consumed, 0u);
  EXPECT_EQ(s.state, State::kDone);
  ChunkedDecoder e(16);
  EXPECT_EQ(e.Feed("z", out).state, State::kError);
  EXPECT_EQ(e.Feed("0\r\n\r\n", out).consumed, 0u);
  EXPECT_FALSE(e.error_detail().empty());
}

TEST(Http1Chunked, EverySplitGivesTheSameResultAsOneFeed) {
  const std::vector<std::string> bodies = {
      "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\nNEXT",
      "5;a=\"q\\\"x\" ; b\r\nhello\r\n0\r\nX: y\r\nZ:\r\n\r\n",
      "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",       // too large with cap 4
      "5\r\nhello\r\n0\r\nX : y\r\n\r\n",        // error in the trailer
      "5\r\nhelloX",                             // error after data
      "5\r\nhel",                                // incomplete
      "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
      "0000000000000001\r\nA\r\n0\r\n\r\n"};
  for (const std::string& body : bodies) {
    const Decoded once = DecodeOnce(body, 4 + (body.size() % 2) * 100);
    for (size_t cut = 0; cut <= body.size(); ++cut) {
      const Decoded split = DecodeSplit(body, {cut}, 4 + (body.size() % 2) * 100);
      EXPECT_EQ(split.out, once.out) << body << " cut " << cut;
      EXPECT_EQ(split.consumed, once.consumed) << body << " cut " << cut;
      EXPECT_EQ(split.state, once.state) << body << " cut " << cut;
      EXPECT_EQ(split.detail, once.detail) << body << " cut " << cut;
    }
    std::vector<size_t> every;
    for (size_t i = 1; i < body.size(); ++i) every.push_back(i);
    const Decoded bytewise = DecodeSplit(body, every, 4 + (body.size() % 2) * 100);
    EXPECT_EQ(bytewise.out, once.out) << body;
    EXPECT_EQ(bytewise.consumed, once.consumed) << body;
    EXPECT_EQ(bytewise.state, once.state) << body;
  }
}

}  // namespace
}  // namespace tkms::web
