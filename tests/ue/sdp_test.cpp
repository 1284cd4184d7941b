// tools/ue/sdp.h: a=key-mgmt:mikey (RFC 4567 §3.1) in and out of SDP bodies.
#include <gtest/gtest.h>

#include <string>

#include "tools/ue/sdp.h"

namespace tkms::ue {
namespace {

using mikey::Bytes;

const Bytes kMessage = {0x01, 0x0E, 0x05, 0x02, 0x12, 0x34, 0x56, 0x78, 0x01, 0x02, 0xFF};

TEST(SdpTest, AudioOfferRoundTrips) {
  AudioSdpParams p;
  p.session_id = 42;
  p.rtp_port = 40000;
  auto sdp = BuildAudioSdp(p, kMessage);
  ASSERT_TRUE(sdp.ok()) << sdp.error().ToString();
  EXPECT_EQ(*sdp,
            "v=0\r\no=- 42 42 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "a=key-mgmt:mikey AQ4FAhI0VngBAv8=\r\nm=audio 40000 RTP/SAVP 0\r\n");
  auto back = ExtractMikeyKeyMgmt(*sdp);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(*back, kMessage);
  auto port = AudioRtpPort(*sdp);
  ASSERT_TRUE(port.ok());
  EXPECT_EQ(*port, 40000);
}

TEST(SdpTest, BuilderRefusesBadParameters) {
  AudioSdpParams p;
  p.rtp_port = 5004;
  EXPECT_FALSE(BuildAudioSdp(p, Bytes{}).ok());
  p.address = "127.0.0.1\r\na=x";
  EXPECT_FALSE(BuildAudioSdp(p, kMessage).ok());
  p.address = "256.0.0.1";
  EXPECT_FALSE(BuildAudioSdp(p, kMessage).ok());
  p.address = "127.0.0.1";
  p.rtp_port = 0;
  EXPECT_FALSE(BuildAudioSdp(p, kMessage).ok());
  p.rtp_port = 1;
  EXPECT_FALSE(BuildAudioSdp(p, Bytes(kMaxMikeyBytes + 1, 1)).ok());
  EXPECT_TRUE(BuildAudioSdp(p, Bytes(kMaxMikeyBytes, 1)).ok());
}

TEST(SdpTest, AddInsertsAtSessionLevel) {
  const std::string plain = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
  auto with = AddMikeyKeyMgmt(plain, kMessage);
  ASSERT_TRUE(with.ok());
  EXPECT_NE(with->find("t=0 0\r\na=key-mgmt:mikey AQ4FAhI0VngBAv8=\r\nm=audio"), std::string::npos);
  EXPECT_EQ(*ExtractMikeyKeyMgmt(*with), kMessage);
  EXPECT_FALSE(AddMikeyKeyMgmt(*with, kMessage).ok());  // already there
  auto no_media = AddMikeyKeyMgmt("v=0\ns=-", kMessage);  // LF, unterminated
  ASSERT_TRUE(no_media.ok());
  EXPECT_EQ(*no_media, "v=0\ns=-\r\na=key-mgmt:mikey AQ4FAhI0VngBAv8=\r\n");
}

TEST(SdpTest, ExtractionIsStrict) {
  const std::string line = "a=key-mgmt:mikey AQ4FAhI0VngBAv8=";
  // Other protocols are skipped, one optional SP after the colon, LF accepted.
  EXPECT_EQ(*ExtractMikeyKeyMgmt("v=0\na=key-mgmt:keyp1 Zm9v\na=key-mgmt: mikey AQ4FAhI0VngBAv8=\n"), kMessage);
  EXPECT_EQ(*ExtractMikeyKeyMgmt("a=key-mgmt:mikeyX AAAA\r\n" + line + "\r\n"), kMessage);
  EXPECT_EQ(*ExtractMikeyKeyMgmt(line), kMessage);
  // Refused: none, two, case, two spaces, bad base64, whitespace, no data.
  EXPECT_FALSE(ExtractMikeyKeyMgmt("v=0\r\ns=-\r\n").ok());
  EXPECT_FALSE(ExtractMikeyKeyMgmt(line + "\r\n" + line + "\r\n").ok());
  EXPECT_FALSE(ExtractMikeyKeyMgmt("v=0\r\n" + line + "\r\nm=audio 1 RTP/SAVP 0\r\n" + line + "\r\n").ok());
  EXPECT_FALSE(ExtractMikeyKeyMgmt("a=key-mgmt:MIKEY AQ4FAhI0VngBAv8=").ok());
  EXPECT_FALSE(ExtractMikeyKeyMgmt("a=key-mgmt:  mikey AQ4FAhI0VngBAv8=").ok());
  EXPECT_FALSE(ExtractMikeyKeyMgmt("a=key-mgmt:mikey  AQ4FAhI0VngBAv8=").ok());
  EXPECT_FALSE(ExtractMikeyKeyMgmt("a=key-mgmt:mikey AQ4FAhI0VngBAv8").ok());
  EXPECT_FALSE(ExtractMikeyKeyMgmt("a=key-mgmt:mikey AQ4FAhI0VngBAv8= ").ok());
  EXPECT_FALSE(ExtractMikeyKeyMgmt("a=key-mgmt:mikey AQ4FAhI0 VngBAv8=").ok());
  EXPECT_FALSE(ExtractMikeyKeyMgmt("a=key-mgmt:mikey").ok());
  EXPECT_FALSE(ExtractMikeyKeyMgmt("a=key-mgmt:mikey ").ok());
  // Bounded.
  EXPECT_FALSE(ExtractMikeyKeyMgmt(std::string(kMaxSdpBytes + 1, 'x')).ok());
  EXPECT_FALSE(ExtractMikeyKeyMgmt("a=key-mgmt:mikey " + std::string((kMaxMikeyBytes / 3 + 2) * 4, 'A')).ok());
}

TEST(SdpTest, AudioPort) {
  EXPECT_EQ(*AudioRtpPort("m=video 1 RTP/AVP 0\nm=audio 65535 RTP/SAVP 0\n"), 65535);
  EXPECT_FALSE(AudioRtpPort("m=audio 65536 RTP/SAVP 0").ok());
  EXPECT_FALSE(AudioRtpPort("m=audio 0 RTP/SAVP 0").ok());
  EXPECT_FALSE(AudioRtpPort("m=audio x RTP/SAVP 0").ok());
  EXPECT_FALSE(AudioRtpPort("m=audio 5004").ok());
  EXPECT_FALSE(AudioRtpPort("v=0").ok());
}

TEST(SdpTest, AudioConnectionAddress) {
  AudioSdpParams p;
  p.rtp_port = 5004;
  p.address = "127.0.0.2";
  EXPECT_EQ(*AudioConnectionAddress(*BuildAudioSdp(p, kMessage)), "127.0.0.2");
  // Media level wins over session level; another stream's c= does not count.
  EXPECT_EQ(*AudioConnectionAddress("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 5004 RTP/SAVP 0\r\nc=IN IP4 10.0.0.2\r\n"),
            "10.0.0.2");
  EXPECT_EQ(*AudioConnectionAddress("c=IN IP4 10.0.0.1\nm=video 1 RTP/AVP 0\nc=IN IP4 10.9.9.9\nm=audio 2 RTP/AVP 0\n"),
            "10.0.0.1");
  EXPECT_EQ(*AudioConnectionAddress("c=IN IP4 10.0.0.1\nm=audio 2 RTP/AVP 0\nm=video 1 RTP/AVP 0\nc=IN IP4 10.9.9.9\n"),
            "10.0.0.1");
  // Refused: no m=audio, no c=, two c= at one level, IP6, multicast TTL, not a literal, lower case.
  EXPECT_FALSE(AudioConnectionAddress("c=IN IP4 10.0.0.1\r\n").ok());
  EXPECT_FALSE(AudioConnectionAddress("v=0\r\nm=audio 5004 RTP/SAVP 0\r\n").ok());
  EXPECT_FALSE(AudioConnectionAddress("c=IN IP4 10.0.0.1\nc=IN IP4 10.0.0.2\nm=audio 2 RTP/AVP 0\n").ok());
  EXPECT_FALSE(AudioConnectionAddress("m=audio 2 RTP/AVP 0\nc=IN IP4 10.0.0.1\nc=IN IP4 10.0.0.2\n").ok());
  EXPECT_FALSE(AudioConnectionAddress("c=IN IP6 ::1\nm=audio 2 RTP/AVP 0\n").ok());
  EXPECT_FALSE(AudioConnectionAddress("c=IN IP4 224.2.1.1/127\nm=audio 2 RTP/AVP 0\n").ok());
  EXPECT_FALSE(AudioConnectionAddress("c=IN IP4 host.example\nm=audio 2 RTP/AVP 0\n").ok());
  EXPECT_FALSE(AudioConnectionAddress("c=in ip4 10.0.0.1\nm=audio 2 RTP/AVP 0\n").ok());
  EXPECT_FALSE(AudioConnectionAddress(std::string(kMaxSdpBytes + 1, 'x')).ok());
}

}  // namespace
}  // namespace tkms::ue
