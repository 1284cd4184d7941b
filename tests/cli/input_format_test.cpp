// Unit tests of the tkmsctl input-format detector (tools/tkmsctl/input_format.h):
// the detection order, every accepted encoding, and one refusal per framing
// rule, each asserting the offset and the reason.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "firmware/base/encoding.h"
#include "tests/support/mikey_samples.h"
#include "tools/tkmsctl/input_format.h"

namespace tkms::tkmsctl {
namespace {

using Bytes = std::vector<uint8_t>;

ByteSpan Span(const std::string& s) { return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }

const Bytes& Message() {
  static const Bytes bytes = *Base64Decode(mikey::samples::kRfc4567PskInitB64);
  return bytes;
}
const std::string kB64 = mikey::samples::kRfc4567PskInitB64;

// Extracts and expects success in `want` format with the RFC 4567 message.
void ExpectMessage(const std::string& input, InputFormat want, InputFormat forced = InputFormat::kAuto) {
  auto r = ExtractMikeyMessage(Span(input), forced);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->format, want);
  EXPECT_EQ(r->bytes, Message());
}

// Extracts and expects failure; returns the error.
InputError ExpectError(const std::string& input, InputFormat forced = InputFormat::kAuto) {
  auto r = ExtractMikeyMessage(Span(input), forced);
  EXPECT_FALSE(r.ok()) << "accepted: " << input.substr(0, 80);
  return r.ok() ? InputError{} : r.error();
}

std::string HttpRequest(const std::string& body, const std::string& eol = "\r\n",
                        const std::string& extra_headers = "") {
  return "POST /keymanagement?requesttype=ticketrequest HTTP/1.1" + eol + "Host: kms.example.org" + eol +
         "Content-Type: application/mikey" + eol + extra_headers + "Content-Length: " +
         std::to_string(body.size()) + eol + eol + body;
}

// ---- detection order -------------------------------------------------------------

TEST(tkmsctl_InputFormat, NamesRoundTrip) {
  for (auto f : {InputFormat::kAuto, InputFormat::kHttp, InputFormat::kSdp, InputFormat::kHex,
                 InputFormat::kBase64, InputFormat::kRaw}) {
    EXPECT_EQ(InputFormatFromName(InputFormatName(f)), f);
  }
  EXPECT_FALSE(InputFormatFromName("json").has_value());
}

TEST(tkmsctl_InputFormat, DetectionOrder) {
  EXPECT_EQ(DetectInputFormat(Span(HttpRequest(kB64))), InputFormat::kHttp);
  EXPECT_EQ(DetectInputFormat(Span("HTTP/1.1 200 OK\r\n\r\nAQAF")), InputFormat::kHttp);
  EXPECT_EQ(DetectInputFormat(Span("v=0\r\na=key-mgmt:mikey " + kB64 + "\r\n")), InputFormat::kSdp);
  EXPECT_EQ(DetectInputFormat(Span("01 02\n0a0B")), InputFormat::kHex);
  EXPECT_EQ(DetectInputFormat(Span(kB64 + "\n")), InputFormat::kBase64);
  EXPECT_EQ(DetectInputFormat(Message()), InputFormat::kRaw);
  // All hex digits and valid base64 at once: hex comes first.
  EXPECT_EQ(DetectInputFormat(Span("0123abcd")), InputFormat::kHex);
  // Odd number of hex digits is not hex; not base64 either: raw.
  EXPECT_EQ(DetectInputFormat(Span("abc")), InputFormat::kRaw);
  // An HTTP message whose body mentions a=key-mgmt is still HTTP.
  EXPECT_EQ(DetectInputFormat(Span(HttpRequest("a=key-mgmt:mikey " + kB64))), InputFormat::kHttp);
  // SDP needs text: a binary message containing the marker stays raw.
  Bytes binary = Message();
  const std::string marker = "\na=key-mgmt:mikey AQAF\n";
  binary.insert(binary.end(), marker.begin(), marker.end());
  EXPECT_EQ(DetectInputFormat(binary), InputFormat::kRaw);
  EXPECT_EQ(DetectInputFormat({}), InputFormat::kRaw);
}

// ---- hex, base64, raw ---------------------------------------------------------------

TEST(tkmsctl_InputFormat, Base64WithWhitespace) {
  ExpectMessage(kB64, InputFormat::kBase64);
  ExpectMessage(kB64 + "\n", InputFormat::kBase64);
  std::string wrapped;
  for (size_t i = 0; i < kB64.size(); i += 64) wrapped += kB64.substr(i, 64) + "\r\n";
  ExpectMessage("  " + wrapped, InputFormat::kBase64);
}

TEST(tkmsctl_InputFormat, HexWithWhitespace) {
  const std::string hex = HexEncode(Message());
  ExpectMessage(hex, InputFormat::kHex);
  std::string spaced;
  for (size_t i = 0; i < hex.size(); i += 2) spaced += hex.substr(i, 2) + (i % 32 == 30 ? "\n" : " ");
  ExpectMessage(spaced, InputFormat::kHex);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ExpectMessage(upper, InputFormat::kHex);
}

TEST(tkmsctl_InputFormat, Raw) {
  auto r = ExtractMikeyMessage(Message());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->format, InputFormat::kRaw);
  EXPECT_EQ(r->bytes, Message());
}

TEST(tkmsctl_InputFormat, ForcedFormats) {
  ExpectMessage(kB64, InputFormat::kBase64, InputFormat::kBase64);
  ExpectMessage(HexEncode(Message()), InputFormat::kHex, InputFormat::kHex);
  // "0123abcd" detects as hex; forced base64 reads it as base64.
  auto r = ExtractMikeyMessage(Span("0123abcd"), InputFormat::kBase64);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes, *Base64Decode("0123abcd"));
  // Forced raw takes text as bytes.
  auto raw = ExtractMikeyMessage(Span(kB64), InputFormat::kRaw);
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(Str(raw->bytes), kB64);
  // Forced hex refuses base64 text and names the offending character.
  const InputError e = ExpectError("AQAFgM0X", InputFormat::kHex);
  EXPECT_EQ(e.format, InputFormat::kHex);
  EXPECT_EQ(e.offset, 1u);
  EXPECT_NE(e.detail.find("'Q'"), std::string::npos) << e.ToString();
  EXPECT_NE(ExpectError(kB64, InputFormat::kSdp).detail.find("no a=key-mgmt line"), std::string::npos);
  EXPECT_NE(ExpectError(kB64, InputFormat::kHttp).detail.find("neither an HTTP/1.x request line"),
            std::string::npos);
}

TEST(tkmsctl_InputFormat, TextThatIsNoEncodingIsExplained) {
  InputError e = ExpectError("0102030");
  EXPECT_NE(e.detail.find("odd number of hex digits (7)"), std::string::npos) << e.ToString();
  e = ExpectError("AQAFgM0XflA");  // 11 characters: not padded
  EXPECT_NE(e.detail.find("looks like base64"), std::string::npos) << e.ToString();
  e = ExpectError("AQAF gM0X\nhello, world");
  EXPECT_EQ(e.offset, 15u) << e.ToString();
  EXPECT_NE(e.detail.find("unexpected character ','"), std::string::npos) << e.ToString();
  e = ExpectError(" \r\n\t");
  EXPECT_NE(e.detail.find("only whitespace"), std::string::npos);
  EXPECT_EQ(e.ToString().rfind("input offset 0: ", 0), 0u) << e.ToString();
}

TEST(tkmsctl_InputFormat, EmptyAndOversizedInputs) {
  EXPECT_NE(ExpectError("").detail.find("empty input"), std::string::npos);
  const Bytes big(kMaxInputBytes + 1, 'A');
  auto r = ExtractMikeyMessage(big);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().detail.find("exceeds the limit of 1048576 bytes"), std::string::npos);
  // Exactly at the limit is read (and then found not to be a message).
  const Bytes at_limit(kMaxInputBytes, 0x01);
  auto ok = ExtractMikeyMessage(at_limit);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->bytes.size(), kMaxInputBytes);
}

// ---- SDP (RFC 4567) ---------------------------------------------------------------------

TEST(tkmsctl_InputFormat, SdpLineForms) {
  ExpectMessage("a=key-mgmt:mikey " + kB64, InputFormat::kSdp);
  ExpectMessage("a=key-mgmt: mikey " + kB64 + "\r\n", InputFormat::kSdp);  // one optional space
  ExpectMessage("a=key-mgmt:mikey " + kB64 + " \t\n", InputFormat::kSdp);  // trailing blanks
  ExpectMessage("   a=key-mgmt:mikey " + kB64 + "\n", InputFormat::kSdp);  // indented, as in RFC text
}

TEST(tkmsctl_InputFormat, WholeSdpDescription) {
  const std::string sdp =
      "v=0\r\n"
      "o=alice 2891092738 2891092738 IN IP4 host.example.org\r\n"
      "s=-\r\n"
      "t=0 0\r\n"
      "c=IN IP4 host.example.org\r\n"
      "a=key-mgmt:keyp1 AAAA\r\n"
      "a=key-mgmt:mikey " + kB64 + "\r\n"
      "m=audio 49000 RTP/SAVP 98\r\n"
      "a=rtpmap:98 AMR/8000\r\n";
  ExpectMessage(sdp, InputFormat::kSdp);
}

TEST(tkmsctl_InputFormat, SdpDataWrappedAsPrintedInRfc4567) {
  std::string sdp = "v=0\na=key-mgmt:mikey " + kB64.substr(0, 52) + "\n";
  for (size_t i = 52; i < kB64.size(); i += 69) sdp += "   " + kB64.substr(i, 69) + "\n";
  sdp += "m=audio 49000 RTP/SAVP 98\n";
  ExpectMessage(sdp, InputFormat::kSdp);
}

TEST(tkmsctl_InputFormat, SdpFirstMikeyLineWins) {
  const std::string other = mikey::samples::kRfc4567PskRespB64;
  ExpectMessage("a=key-mgmt:mikey " + kB64 + "\nm=audio 1 RTP/SAVP 0\na=key-mgmt:mikey " + other + "\n",
                InputFormat::kSdp);
}

TEST(tkmsctl_InputFormat, SdpRefusals) {
  const std::string prefix = "v=0\r\n";
  InputError e = ExpectError(prefix + "a=key-mgmt:MIKEY " + kB64 + "\r\n");
  EXPECT_EQ(e.format, InputFormat::kSdp);
  EXPECT_EQ(e.offset, prefix.size() + 11);
  EXPECT_NE(e.detail.find("case-sensitive"), std::string::npos) << e.ToString();

  e = ExpectError(prefix + "a=key-mgmt:keyp1 AAAA\r\n");
  EXPECT_NE(e.detail.find("no a=key-mgmt line carries the protocol identifier \"mikey\""), std::string::npos);

  e = ExpectError("a=key-mgmt:mikey\n");
  EXPECT_NE(e.detail.find("followed by one space"), std::string::npos) << e.ToString();

  e = ExpectError("a=key-mgmt: " + kB64);  // no protocol identifier: "AQAF..." is taken as it
  EXPECT_EQ(e.format, InputFormat::kSdp);

  e = ExpectError("a=key-mgmt:  mikey " + kB64);  // two spaces
  EXPECT_NE(e.detail.find("missing protocol identifier"), std::string::npos) << e.ToString();

  e = ExpectError("a=key-mgmt:mikey " + kB64.substr(0, 20) + "*" + kB64.substr(20));
  EXPECT_EQ(e.offset, 17u + 20u) << e.ToString();
  EXPECT_NE(e.detail.find("'*'"), std::string::npos);

  e = ExpectError("a=key-mgmt:mikey " + kB64.substr(0, kB64.size() - 1));  // bad padding
  EXPECT_NE(e.detail.find("not valid base64"), std::string::npos) << e.ToString();

  e = ExpectError("v=0\r\n\x02\r\na=key-mgmt:mikey " + kB64, InputFormat::kSdp);
  EXPECT_EQ(e.offset, 5u);
  EXPECT_NE(e.detail.find("must be text"), std::string::npos);
}

// ---- HTTP (TS 33.328 Annex A) ------------------------------------------------------------

TEST(tkmsctl_InputFormat, HttpRequestWithBase64Body) {
  ExpectMessage(HttpRequest(kB64), InputFormat::kHttp);
  ExpectMessage(HttpRequest(kB64 + "\r\n"), InputFormat::kHttp);
  ExpectMessage(HttpRequest(kB64, "\n"), InputFormat::kHttp);  // LF line ends
  ExpectMessage(HttpRequest(kB64) + "\r\n", InputFormat::kHttp);  // whitespace after the body
  // Without Content-Length the body runs to the end of the input.
  ExpectMessage("POST /keymanagement?requesttype=ticketresolve HTTP/1.1\r\nHost: k\r\n\r\n" + kB64 + "\n",
                InputFormat::kHttp);
}

TEST(tkmsctl_InputFormat, HttpResponseWithBinaryBody) {
  const std::string body = Str(Message());
  ExpectMessage("HTTP/1.1 200 OK\r\nContent-Type: Application/MIKEY; version=1\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body,
                InputFormat::kHttp);
  ExpectMessage("HTTP/1.0 200\r\n\r\n" + body, InputFormat::kHttp);  // no reason phrase
}

TEST(tkmsctl_InputFormat, HttpRefusals) {
  InputError e = ExpectError("POST / HTTP/1.1\r\nContent-Type: text/plain\r\n\r\n" + kB64);
  EXPECT_EQ(e.format, InputFormat::kHttp);
  EXPECT_EQ(e.offset, 17u);
  EXPECT_NE(e.detail.find("is not application/mikey"), std::string::npos) << e.ToString();

  e = ExpectError("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nAQAFg\r\n0\r\n\r\n");
  EXPECT_NE(e.detail.find("Transfer-Encoding"), std::string::npos);

  e = ExpectError("POST / HTTP/1.1\r\nContent-Encoding: gzip\r\n\r\n" + kB64);
  EXPECT_NE(e.detail.find("Content-Encoding"), std::string::npos);

  e = ExpectError("POST / HTTP/1.1\r\nHost: k\r\n" + kB64);
  EXPECT_NE(e.detail.find("no empty line"), std::string::npos) << e.ToString();

  e = ExpectError("POST / HTTP/1.1");
  EXPECT_NE(e.detail.find("inside the HTTP start line"), std::string::npos) << e.ToString();

  e = ExpectError("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  EXPECT_NE(e.detail.find("no body"), std::string::npos);

  e = ExpectError(HttpRequest(kB64).substr(0, HttpRequest(kB64).size() - 4));
  EXPECT_NE(e.detail.find("shorter than Content-Length"), std::string::npos) << e.ToString();

  const std::string extra = HttpRequest(kB64) + "GET";
  e = ExpectError(extra);
  EXPECT_EQ(e.offset, extra.size() - 3);
  EXPECT_NE(e.detail.find("after the Content-Length body"), std::string::npos);

  e = ExpectError("POST / HTTP/1.1\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n" + kB64);
  EXPECT_NE(e.detail.find("conflicting"), std::string::npos);

  e = ExpectError("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n" + kB64);
  EXPECT_NE(e.detail.find("invalid Content-Length"), std::string::npos);

  e = ExpectError("POST / HTTP/1.1\r\nHost k\r\n\r\n" + kB64);
  EXPECT_NE(e.detail.find("malformed header field line"), std::string::npos);

  e = ExpectError("POST / HTTP/1.1\r\nHost: k\r\n  folded\r\n\r\n" + kB64);
  EXPECT_NE(e.detail.find("folding"), std::string::npos);

  e = ExpectError("POST / HTTP/1.1\r\n\r\n" + kB64.substr(0, kB64.size() - 1));
  EXPECT_NE(e.detail.find("not valid base64"), std::string::npos) << e.ToString();

  std::string many = "POST / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "X-A: b\r\n";
  e = ExpectError(many + "\r\n" + kB64);
  EXPECT_NE(e.detail.find("more than 100 header fields"), std::string::npos);
}

TEST(tkmsctl_InputFormat, HttpStartLineVariants) {
  EXPECT_EQ(DetectInputFormat(Span("GET /x HTTP/1.1\n\n")), InputFormat::kHttp);
  EXPECT_EQ(DetectInputFormat(Span("HTTP/1.1 500 Internal Server Error\r\n")), InputFormat::kHttp);
  EXPECT_NE(DetectInputFormat(Span("POST / HTTP/2\r\n\r\n")), InputFormat::kHttp);
  EXPECT_NE(DetectInputFormat(Span("POST  / HTTP/1.1\r\n\r\n")), InputFormat::kHttp);
  EXPECT_NE(DetectInputFormat(Span("HTTP/1.1 20 OK\r\n")), InputFormat::kHttp);
}

// ---- robustness: every prefix and deterministic mutations never misbehave ------------------

TEST(tkmsctl_InputFormat, PrefixesAndMutationsAreHandled) {
  const std::vector<std::string> seeds = {
      HttpRequest(kB64),
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(Message().size()) + "\r\n\r\n" + Str(Message()),
      "v=0\r\na=key-mgmt: mikey " + kB64 + "\r\nm=audio 1 RTP/SAVP 0\r\n",
      HexEncode(Message()),
      kB64,
  };
  std::mt19937 rng(20240607);
  for (const auto& seed : seeds) {
    for (size_t n = 0; n <= seed.size(); ++n) {
      auto r = ExtractMikeyMessage(Span(seed.substr(0, n)));
      if (r.ok()) {
        EXPECT_LE(r->bytes.size(), n);
      }
    }
    for (int i = 0; i < 2000; ++i) {
      std::string m = seed;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits; ++k) m[rng() % m.size()] = static_cast<char>(rng() & 0xFF);
      auto r = ExtractMikeyMessage(Span(m));
      if (r.ok()) {
        EXPECT_LE(r->bytes.size(), m.size());
      } else {
        EXPECT_LE(r.error().offset, m.size());
      }
    }
  }
}

}  // namespace
}  // namespace tkms::tkmsctl
