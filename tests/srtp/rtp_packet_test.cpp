// RTP packet builder and parser (tools/srtp/rtp_packet.h, RFC 3550 §5.1,
// §5.3.1): exact bytes of built packets, every header field read back, and
// every length that points past the end refused.
#include "tools/srtp/rtp_packet.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/encoding.h"

namespace tkms::srtp {
namespace {

Bytes Hex(std::string_view hex) {
  auto bytes = HexDecode(hex);
  EXPECT_TRUE(bytes.has_value()) << hex;
  return bytes.value_or(Bytes{});
}

void ExpectRefused(const Bytes& packet, const std::string& fragment) {
  auto header = ParseRtpHeader(packet);
  auto parsed = ParseRtpPacket(packet);
  ASSERT_FALSE(parsed.ok()) << HexEncode(packet);
  EXPECT_EQ(parsed.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.error().message().find(fragment), std::string::npos)
      << parsed.error().message();
  if (!header.ok()) {
    EXPECT_EQ(header.error().message(), parsed.error().message());
  }
}

TEST(RtpPacket, BuildsTheFixedHeader) {
  RtpHeaderFields f;
  f.payload_type = 96;
  f.marker = true;
  f.sequence_number = 0x1234;
  f.timestamp = 0x89abcdef;
  f.ssrc = 0xdeadbeef;
  auto packet = BuildRtpPacket(f, Hex("0102"));
  ASSERT_TRUE(packet.ok()) << packet.error().ToString();
  EXPECT_EQ(HexEncode(*packet), "80e0123489abcdefdeadbeef0102");

  auto empty = BuildRtpPacket(RtpHeaderFields{}, {});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(HexEncode(*empty), "800000000000000000000000");
}

TEST(RtpPacket, BuildRefusesPayloadTypeAndSize) {
  RtpHeaderFields f;
  f.payload_type = 128;
  EXPECT_FALSE(BuildRtpPacket(f, {}).ok());
  f.payload_type = 127;
  EXPECT_TRUE(BuildRtpPacket(f, {}).ok());

  const Bytes largest(kMaxRtpPacketBytes - kRtpFixedHeaderBytes, 0xab);
  EXPECT_TRUE(BuildRtpPacket(f, largest).ok());
  const Bytes too_large(kMaxRtpPacketBytes - kRtpFixedHeaderBytes + 1, 0xab);
  EXPECT_FALSE(BuildRtpPacket(f, too_large).ok());
}

TEST(RtpPacket, BuildThenParseRoundTrips) {
  RtpHeaderFields f;
  f.payload_type = 8;
  f.sequence_number = 65535;
  f.timestamp = 160;
  f.ssrc = 0x01020304;
  const Bytes payload(160, 0xd5);
  auto packet = BuildRtpPacket(f, payload);
  ASSERT_TRUE(packet.ok());
  auto parsed = ParseRtpPacket(*packet);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->header.version, 2);
  EXPECT_FALSE(parsed->header.padding);
  EXPECT_FALSE(parsed->header.extension);
  EXPECT_FALSE(parsed->header.marker);
  EXPECT_EQ(parsed->header.payload_type, 8);
  EXPECT_EQ(parsed->header.sequence_number, 65535);
  EXPECT_EQ(parsed->header.timestamp, 160u);
  EXPECT_EQ(parsed->header.ssrc, 0x01020304u);
  EXPECT_TRUE(parsed->header.csrcs.empty());
  EXPECT_EQ(parsed->header.header_bytes, kRtpFixedHeaderBytes);
  EXPECT_EQ(Bytes(parsed->payload.begin(), parsed->payload.end()), payload);
  EXPECT_EQ(parsed->padding_bytes, 0u);
}

TEST(RtpPacket, ParsesCsrcsExtensionAndPadding) {
  // V=2 P=1 X=1 CC=2, M=1 PT=111; two CSRCs; extension 0xBEDE with 1 word;
  // payload "abc"; 5 padding bytes with count 05.
  const Bytes packet = Hex(
      "b2ef0001"
      "00000002"
      "11223344"
      "aaaaaaaa"
      "bbbbbbbb"
      "bede0001"
      "10ff0000"
      "616263"
      "0000000005");
  auto parsed = ParseRtpPacket(packet);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  const RtpHeader& h = parsed->header;
  EXPECT_TRUE(h.padding);
  EXPECT_TRUE(h.extension);
  EXPECT_TRUE(h.marker);
  EXPECT_EQ(h.payload_type, 111);
  EXPECT_EQ(h.sequence_number, 1);
  EXPECT_EQ(h.timestamp, 2u);
  EXPECT_EQ(h.ssrc, 0x11223344u);
  EXPECT_EQ(h.csrcs, (std::vector<uint32_t>{0xaaaaaaaa, 0xbbbbbbbb}));
  EXPECT_EQ(h.extension_profile, 0xbede);
  EXPECT_EQ(HexEncode(h.extension_data), "10ff0000");
  EXPECT_EQ(h.header_bytes, 28u);
  EXPECT_EQ(std::string(parsed->payload.begin(), parsed->payload.end()), "abc");
  EXPECT_EQ(parsed->padding_bytes, 5u);

  // The header parser does not look at the (possibly encrypted) padding.
  auto header_only = ParseRtpHeader(packet);
  ASSERT_TRUE(header_only.ok());
  EXPECT_EQ(header_only->header_bytes, 28u);
}

TEST(RtpPacket, PaddingThatIsAllOfTheBodyIsAccepted) {
  auto parsed = ParseRtpPacket(Hex("a00000000000000000000000" "000003"));
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_TRUE(parsed->payload.empty());
  EXPECT_EQ(parsed->padding_bytes, 3u);
}

TEST(RtpPacket, RefusesTruncatedFixedHeader) {
  ExpectRefused({}, "fixed header truncated");
  ExpectRefused(Hex("80"), "fixed header truncated");
  ExpectRefused(Hex("8000000000000000000000"), "fixed header truncated (11 of 12 bytes)");
}

TEST(RtpPacket, RefusesOtherVersions) {
  for (const char* b0 : {"00", "40", "c0"}) {
    ExpectRefused(Hex(std::string(b0) + "0000000000000000000000"), "is not 2");
  }
}

TEST(RtpPacket, RefusesCsrcListPastTheEnd) {
  // CC=1 with no CSRC; CC=15 with 14 CSRCs.
  ExpectRefused(Hex("810000000000000000000000"), "CC=1 CSRC list runs past the end");
  ExpectRefused(Hex("8f0000000000000000000000" + std::string(14 * 8, '0')),
                "CC=15 CSRC list runs past the end");
  auto fifteen = ParseRtpHeader(Hex("8f0000000000000000000000" + std::string(15 * 8, '0')));
  ASSERT_TRUE(fifteen.ok());
  EXPECT_EQ(fifteen->csrcs.size(), 15u);
  EXPECT_EQ(fifteen->header_bytes, 72u);
}

TEST(RtpPacket, RefusesExtensionPastTheEnd) {
  // X=1 without the extension header, with half of it, with a length that
  // counts one word more than present, and with the largest length (0xffff
  // words) on a short packet.
  ExpectRefused(Hex("900000000000000000000000"), "header extension truncated");
  ExpectRefused(Hex("900000000000000000000000bede"), "header extension truncated");
  ExpectRefused(Hex("900000000000000000000000bede000211111111"),
                "header extension length 2 words runs past the end at offset 14");
  ExpectRefused(Hex("900000000000000000000000bedeffff"),
                "header extension length 65535 words runs past the end");
  // CSRCs before the extension shift its offset.
  ExpectRefused(Hex("910000000000000000000000aaaaaaaabede0001"),
                "header extension length 1 words runs past the end at offset 18");
  // Length 0: an empty extension is well formed.
  auto empty_ext = ParseRtpHeader(Hex("900000000000000000000000bede0000"));
  ASSERT_TRUE(empty_ext.ok());
  EXPECT_EQ(empty_ext->header_bytes, 16u);
  EXPECT_TRUE(empty_ext->extension_data.empty());
}

TEST(RtpPacket, RefusesBadPaddingCount) {
  // P=1 with nothing after the header, count 0, count larger than the body.
  const std::string header = "a00000000000000000000000";
  EXPECT_TRUE(ParseRtpHeader(Hex(header)).ok());
  ExpectRefused(Hex(header), "no padding count octet");
  ExpectRefused(Hex(header + "616200"), "padding count 0");
  ExpectRefused(Hex(header + "616204"), "padding count 4 is not within the 3 bytes");
}

TEST(RtpPacket, RefusesOversizedInput) {
  Bytes packet(kMaxRtpPacketBytes + 1, 0);
  packet[0] = 0x80;
  ExpectRefused(packet, "exceeds the limit");
  packet.pop_back();
  EXPECT_TRUE(ParseRtpPacket(packet).ok());
}

TEST(RtpPacket, ErrorsDoNotEchoPayload) {
  // A refused packet's message names the field and offset only.
  const Bytes packet = Hex("a0000000000000000000000073656372657400");
  auto parsed = ParseRtpPacket(packet);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message().find("secret"), std::string::npos);
  EXPECT_EQ(parsed.error().message().find("736563726574"), std::string::npos);
}

}  // namespace
}  // namespace tkms::srtp
