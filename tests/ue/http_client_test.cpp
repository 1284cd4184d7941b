// HttpClient (web/client/http_client.h) against a scripted in-test server:
// keep-alive reuse, transparent reconnect after the server closed an idle
// connection, and the bounded parsing of untrusted responses (oversized,
// truncated, malformed, chunked, close-delimited, timeouts).
#include "web/client/http_client.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/ue/test_http_server.h"

namespace tkms::web::client {
namespace {

using ue::testing::HttpOk;
using ue::testing::ServerReply;
using ue::testing::ServerRequest;
using ue::testing::TestHttpServer;

HttpClient ClientFor(const TestHttpServer& server, std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
  HttpClientOptions options;
  options.timeout = timeout;
  auto client = HttpClient::FromUrl(server.url(), options);
  EXPECT_TRUE(client.ok());
  return std::move(*client);
}

TEST(HttpUrl, ParsesHostPortAndBase) {
  auto u = ParseHttpUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->base_path, "");
  u = ParseHttpUrl("http://kms.example.org/base/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "kms.example.org");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->base_path, "/base");
  u = ParseHttpUrl("HTTP://[::1]:9000/x");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9000);
  EXPECT_EQ(u->base_path, "/x");
  for (const char* bad : {"ftp://a:1", "127.0.0.1:80", "http://", "http://a:0", "http://a:65536",
                          "http://a:x", "http://u@a:1", "http://a:1/p?q", "http://[::1", "http://a:"}) {
    EXPECT_FALSE(ParseHttpUrl(bad).ok()) << bad;
  }
}

TEST(HttpClient, SendsHostContentTypeAndLengthAndReusesTheConnection) {
  TestHttpServer server([](const ServerRequest& req) {
    return ServerReply{HttpOk("echo:" + req.body, "application/mikey", "X-Mixed-Case: yes\r\n")};
  });
  HttpClient client = ClientFor(server);
  for (int i = 0; i < 3; ++i) {
    auto resp = client.Post("/keymanagement?requesttype=ticketrequest", "application/mikey",
                            "body" + std::to_string(i));
    ASSERT_TRUE(resp.ok()) << resp.error().ToString();
    EXPECT_EQ(resp->status, 200);
    EXPECT_EQ(resp->body, "echo:body" + std::to_string(i));
    ASSERT_TRUE(resp->Header("content-type").has_value());
    EXPECT_EQ(*resp->Header("CONTENT-TYPE"), "application/mikey");
    EXPECT_EQ(*resp->Header("x-mixed-case"), "yes");
    EXPECT_FALSE(resp->Header("X-Missing").has_value());
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(server.connections(), 1);
  const auto received = server.received();
  ASSERT_EQ(received.size(), 3u);
  EXPECT_EQ(received[0].method, "POST");
  EXPECT_EQ(received[0].target, "/keymanagement?requesttype=ticketrequest");
  EXPECT_EQ(received[0].Header("Host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(received[0].Header("Content-Type"), "application/mikey");
  EXPECT_EQ(received[0].Header("Content-Length"), "5");
  EXPECT_EQ(received[2].connection, 0);
  EXPECT_EQ(received[2].index, 2);
}

TEST(HttpClient, BasePathIsPrefixed) {
  TestHttpServer server([](const ServerRequest&) { return ServerReply{HttpOk("ok")}; });
  auto client = HttpClient::FromUrl(server.url() + "/kms/");
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client->Get("/healthz").ok());
  EXPECT_EQ(server.received().at(0).target, "/kms/healthz");
  EXPECT_EQ(server.received().at(0).method, "GET");
}

TEST(HttpClient, ReconnectsWhenTheServerClosedAnIdleConnection) {
  TestHttpServer server([](const ServerRequest& req) {
    // Every answer keeps the connection "alive" by HTTP's rules, but the
    // server closes it right after (an idle-timeout close).
    std::string body = "n";
    body += std::to_string(req.connection);  // (g++ 12 -Wrestrict false positive with "n" + ...)
    return ServerReply{HttpOk(body), /*close_after=*/true};
  });
  HttpClient client = ClientFor(server);
  auto first = client.Get("/a");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->body, "n0");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the FIN arrive
  auto second = client.Get("/b");
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  EXPECT_EQ(second->body, "n1");
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST(HttpClient, RetriesOnceWhenAReusedConnectionClosesBeforeAnswering) {
  TestHttpServer server([](const ServerRequest& req) {
    if (req.connection == 0 && req.index == 1) return ServerReply{"", /*close_after=*/true};
    std::string body = "c";
    body += std::to_string(req.connection);
    body += "r";
    body += std::to_string(req.index);
    return ServerReply{HttpOk(body)};
  });
  HttpClient client = ClientFor(server);
  ASSERT_TRUE(client.Get("/1").ok());
  auto resp = client.Get("/2");
  ASSERT_TRUE(resp.ok()) << resp.error().ToString();
  EXPECT_EQ(resp->body, "c1r0");
  EXPECT_EQ(client.connections_opened(), 2u);
  EXPECT_EQ(server.requests(), 3);
}

TEST(HttpClient, DoesNotRetryAFreshConnection) {
  TestHttpServer server([](const ServerRequest&) { return ServerReply{"", /*close_after=*/true}; });
  HttpClient client = ClientFor(server);
  auto resp = client.Get("/");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code(), StatusCode::kUnavailable);
  EXPECT_EQ(server.requests(), 1);
}

TEST(HttpClient, ConnectionCloseHeaderIsHonoured) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{HttpOk("x", "text/plain", "Connection: close\r\n"), /*close_after=*/true};
  });
  HttpClient client = ClientFor(server);
  ASSERT_TRUE(client.Get("/").ok());
  EXPECT_FALSE(client.connected());
  ASSERT_TRUE(client.Get("/").ok());
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST(HttpClient, RefusesAnOversizedBody) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n" + std::string(1000, 'a'),
                       /*close_after=*/true};
  });
  HttpClient client = ClientFor(server);
  auto resp = client.Get("/");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code(), StatusCode::kResourceExhausted) << resp.error().ToString();
  EXPECT_FALSE(client.connected());
}

TEST(HttpClient, RefusesAnOversizedCloseDelimitedBody) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{"HTTP/1.1 200 OK\r\n\r\n" + std::string(1024 * 1024 + 10, 'b'), /*close_after=*/true};
  });
  HttpClient client = ClientFor(server);
  auto resp = client.Get("/");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code(), StatusCode::kResourceExhausted);
}

TEST(HttpClient, RefusesAnOversizedHeader) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{"HTTP/1.1 200 OK\r\nX-Big: " + std::string(17 * 1024, 'h') +
                           "\r\nContent-Length: 0\r\n\r\n",
                       /*close_after=*/true};
  });
  HttpClient client = ClientFor(server);
  auto resp = client.Get("/");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code(), StatusCode::kResourceExhausted);
}

TEST(HttpClient, RefusesATruncatedBody) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(50, 'x'),
                       /*close_after=*/true};
  });
  HttpClient client = ClientFor(server);
  auto resp = client.Get("/");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code(), StatusCode::kUnavailable);
  EXPECT_NE(resp.error().message().find("truncated"), std::string::npos) << resp.error().ToString();
}

TEST(HttpClient, RefusesATruncatedHeader) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{"HTTP/1.1 200 OK\r\nContent-Len", /*close_after=*/true};
  });
  HttpClient client = ClientFor(server);
  auto resp = client.Get("/");
  ASSERT_FALSE(resp.ok());
  EXPECT_NE(resp.error().message().find("truncated"), std::string::npos) << resp.error().ToString();
}

TEST(HttpClient, RefusesATruncatedChunkedBody) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", /*close_after=*/true};
  });
  HttpClient client = ClientFor(server);
  auto resp = client.Get("/");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code(), StatusCode::kUnavailable);
}

TEST(HttpClient, ReadsABoundedChunkedBody) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n"
        "X-Trailer: t\r\n\r\n"};
  });
  HttpClient client = ClientFor(server);
  auto resp = client.Get("/");
  ASSERT_TRUE(resp.ok()) << resp.error().ToString();
  EXPECT_EQ(resp->body, "hello world");
  ASSERT_TRUE(client.Get("/").ok());  // the connection stayed usable
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST(HttpClient, RefusesAnOversizedChunk) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFF\r\nabc", /*close_after=*/true};
  });
  HttpClient client = ClientFor(server);
  auto resp = client.Get("/");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code(), StatusCode::kResourceExhausted);
}

TEST(HttpClient, ReadsACloseDelimitedBody) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", /*close_after=*/true};
  });
  HttpClient client = ClientFor(server);
  auto resp = client.Get("/");
  ASSERT_TRUE(resp.ok()) << resp.error().ToString();
  EXPECT_EQ(resp->body, "until close");
  EXPECT_FALSE(client.connected());
}

TEST(HttpClient, SkipsInterimResponses) {
  TestHttpServer server([](const ServerRequest&) {
    return ServerReply{"HTTP/1.1 100 Continue\r\n\r\n" + HttpOk("final")};
  });
  HttpClient client = ClientFor(server);
  auto resp = client.Get("/");
  ASSERT_TRUE(resp.ok()) << resp.error().ToString();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "final");
}

TEST(HttpClient, RefusesMalformedResponses) {
  const std::string cases[] = {
      "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nBad Name: a\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\n\r\n",
  };
  for (const std::string& raw : cases) {
    TestHttpServer server([&](const ServerRequest&) { return ServerReply{raw, /*close_after=*/true}; });
    HttpClient client = ClientFor(server);
    auto resp = client.Get("/");
    EXPECT_FALSE(resp.ok()) << raw;
    if (!resp.ok()) {
      EXPECT_EQ(resp.error().code(), StatusCode::kInvalidArgument) << resp.error().ToString();
    }
  }
}

TEST(HttpClient, TimesOut) {
  TestHttpServer server([](const ServerRequest&) { return ServerReply{HttpOk("late"), false, 600}; });
  HttpClient client = ClientFor(server, std::chrono::milliseconds(150));
  const auto start = std::chrono::steady_clock::now();
  auto resp = client.Get("/");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code(), StatusCode::kUnavailable);
  EXPECT_LT(took, std::chrono::milliseconds(550));
}

TEST(HttpClient, ConnectFailureIsUnavailable) {
  uint16_t port = 0;
  {
    TestHttpServer server([](const ServerRequest&) { return ServerReply{HttpOk("")}; });
    port = server.port();
  }
  HttpClient client("127.0.0.1", port);
  auto resp = client.Get("/");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.error().code(), StatusCode::kUnavailable);
}

TEST(HttpClient, RefusesInvalidRequestTargets) {
  HttpClient client("127.0.0.1", 1);
  EXPECT_EQ(client.Get("no-slash").error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client.Get("/a b").error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client.Post("/a", "text/plain\r\nX: y", "").error().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tkms::web::client
