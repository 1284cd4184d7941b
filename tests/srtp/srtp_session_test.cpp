// SrtpSession (tools/srtp/srtp_session.h) over the real libsrtp2.
//
// The check the end-to-end call relies on is KeyOrSaltBitFlipFailsAuth:
// every single-bit difference in the master key or the master salt makes the
// receiver refuse with exactly "srtp_unprotect: srtp_err_status_auth_fail".
#include "tools/srtp/srtp_session.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/base/secret_bytes.h"
#include "tools/srtp/rtp_packet.h"

namespace tkms::srtp {
namespace {

constexpr uint32_t kSsrcA = 0x414c4943;  // "ALIC"
constexpr uint32_t kSsrcB = 0x00b0b000;

constexpr std::string_view kAuthFail = "srtp_unprotect: srtp_err_status_auth_fail";
constexpr std::string_view kReplayFail = "srtp_unprotect: srtp_err_status_replay_fail";

Bytes Hex(std::string_view hex) {
  auto bytes = HexDecode(hex);
  EXPECT_TRUE(bytes.has_value()) << hex;
  return bytes.value_or(Bytes{});
}

// Fixed test keys (not from any standard).
const Bytes& KeyA() {
  static const Bytes k = Hex("000102030405060708090a0b0c0d0e0f");
  return k;
}
const Bytes& SaltA() {
  static const Bytes s = Hex("a0a1a2a3a4a5a6a7a8a9aaabacad");
  return s;
}
const Bytes& KeyB() {
  static const Bytes k = Hex("f0e1d2c3b4a5968778695a4b3c2d1e0f");
  return k;
}
const Bytes& SaltB() {
  static const Bytes s = Hex("5a5a5a5a5a5a5a5a5a5a5a5a5a5a");
  return s;
}

std::unique_ptr<SrtpSession> MustCreate(Direction direction, SrtpProfile profile,
                                        const Bytes& key, const Bytes& salt,
                                        std::optional<uint32_t> ssrc) {
  auto session = SrtpSession::Create(direction, profile, key, salt, ssrc);
  EXPECT_TRUE(session.ok()) << session.error().ToString();
  return session.ok() ? std::move(*session) : nullptr;
}

std::unique_ptr<SrtpSession> Sender(const Bytes& key, const Bytes& salt, uint32_t ssrc,
                                    SrtpProfile profile = SrtpProfile::kAesCm128HmacSha1_80) {
  return MustCreate(Direction::kSend, profile, key, salt, ssrc);
}

std::unique_ptr<SrtpSession> Receiver(const Bytes& key, const Bytes& salt,
                                      std::optional<uint32_t> ssrc = std::nullopt,
                                      SrtpProfile profile = SrtpProfile::kAesCm128HmacSha1_80) {
  return MustCreate(Direction::kReceive, profile, key, salt, ssrc);
}

Bytes Payload(size_t n, uint8_t seed) {
  Bytes p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(seed + 7 * i);
  return p;
}

Bytes Rtp(uint16_t seq, uint32_t ssrc, const Bytes& payload, uint8_t pt = 0) {
  RtpHeaderFields f;
  f.payload_type = pt;
  f.sequence_number = seq;
  f.timestamp = 160u * seq;
  f.ssrc = ssrc;
  auto packet = BuildRtpPacket(f, payload);
  EXPECT_TRUE(packet.ok());
  return packet.ok() ? *packet : Bytes{};
}

void ExpectError(const Result<Bytes>& r, StatusCode code, std::string_view message) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), code) << r.error().ToString();
  EXPECT_EQ(r.error().message(), message);
}

TEST(SrtpSession, ProfileNamesAndTags) {
  EXPECT_STREQ(SrtpProfileName(SrtpProfile::kAesCm128HmacSha1_80), "AES_CM_128_HMAC_SHA1_80");
  EXPECT_STREQ(SrtpProfileName(SrtpProfile::kAesCm128HmacSha1_32), "AES_CM_128_HMAC_SHA1_32");
  EXPECT_EQ(SrtpAuthTagBytes(SrtpProfile::kAesCm128HmacSha1_80), 10u);
  EXPECT_EQ(SrtpAuthTagBytes(SrtpProfile::kAesCm128HmacSha1_32), 4u);
}

TEST(SrtpSession, DefaultProfileIsSha1_80) {
  auto s = SrtpSession::Create(Direction::kSend, KeyA(), SaltA(), kSsrcA);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ((*s)->profile(), SrtpProfile::kAesCm128HmacSha1_80);
  EXPECT_EQ((*s)->direction(), Direction::kSend);
  EXPECT_EQ((*s)->ssrc(), kSsrcA);
}

TEST(SrtpSession, RoundTripBothProfiles) {
  for (SrtpProfile profile :
       {SrtpProfile::kAesCm128HmacSha1_80, SrtpProfile::kAesCm128HmacSha1_32}) {
    SCOPED_TRACE(SrtpProfileName(profile));
    auto tx = Sender(KeyA(), SaltA(), kSsrcA, profile);
    auto rx = Receiver(KeyA(), SaltA(), std::nullopt, profile);
    ASSERT_TRUE(tx && rx);
    const Bytes rtp = Rtp(1000, kSsrcA, Payload(160, 0x11));
    auto srtp = tx->Protect(rtp);
    ASSERT_TRUE(srtp.ok()) << srtp.error().ToString();
    ASSERT_EQ(srtp->size(), rtp.size() + SrtpAuthTagBytes(profile));
    // The header is in clear, the payload is not (RFC 3711 §3.1).
    EXPECT_TRUE(std::equal(rtp.begin(), rtp.begin() + 12, srtp->begin()));
    EXPECT_FALSE(std::equal(rtp.begin() + 12, rtp.end(), srtp->begin() + 12));
    auto back = rx->Unprotect(*srtp);
    ASSERT_TRUE(back.ok()) << back.error().ToString();
    EXPECT_EQ(*back, rtp);
  }
}

TEST(SrtpSession, RoundTripOfEmptyPayloadAndComplexHeader) {
  auto tx = Sender(KeyA(), SaltA(), kSsrcA);
  auto rx = Receiver(KeyA(), SaltA(), kSsrcA);
  ASSERT_TRUE(tx && rx);
  const Bytes empty = Rtp(7, kSsrcA, {});
  // CC=1, X=1 (one word), P=1: the header (with CSRC and extension) stays in
  // clear, the payload and padding are encrypted.
  const Bytes complex = Hex("b1600008000000a0414c4943" "01020304" "bede0001" "11223344"
                            "cafe" "0002");
  for (const Bytes& rtp : {empty, complex}) {
    auto srtp = tx->Protect(rtp);
    ASSERT_TRUE(srtp.ok()) << srtp.error().ToString();
    auto back = rx->Unprotect(*srtp);
    ASSERT_TRUE(back.ok()) << back.error().ToString();
    EXPECT_EQ(*back, rtp);
  }
}

// The check the end-to-end test relies on: a receiver whose key or salt
// differs from the sender's in any single bit refuses the packet with
// auth_fail, and nothing else.
TEST(SrtpSession, KeyOrSaltBitFlipFailsAuth) {
  for (SrtpProfile profile :
       {SrtpProfile::kAesCm128HmacSha1_80, SrtpProfile::kAesCm128HmacSha1_32}) {
    SCOPED_TRACE(SrtpProfileName(profile));
    auto tx = Sender(KeyA(), SaltA(), kSsrcA, profile);
    ASSERT_TRUE(tx);
    const Bytes rtp = Rtp(42, kSsrcA, Payload(160, 0x42));
    auto srtp = tx->Protect(rtp);
    ASSERT_TRUE(srtp.ok());
    for (int which = 0; which < 2; ++which) {
      const Bytes& original = which == 0 ? KeyA() : SaltA();
      for (size_t bit = 0; bit < original.size() * 8; ++bit) {
        SCOPED_TRACE((which == 0 ? "key bit " : "salt bit ") + std::to_string(bit));
        Bytes flipped = original;
        flipped[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
        auto rx = which == 0 ? Receiver(flipped, SaltA(), std::nullopt, profile)
                             : Receiver(KeyA(), flipped, std::nullopt, profile);
        ASSERT_TRUE(rx);
        ExpectError(rx->Unprotect(*srtp), StatusCode::kPermissionDenied, kAuthFail);
      }
    }
    // And the right keys accept the same bytes.
    auto rx = Receiver(KeyA(), SaltA(), std::nullopt, profile);
    ASSERT_TRUE(rx);
    auto back = rx->Unprotect(*srtp);
    ASSERT_TRUE(back.ok()) << back.error().ToString();
    EXPECT_EQ(*back, rtp);
  }
}

TEST(SrtpSession, OtherKeysEntirelyFailAuth) {
  auto tx = Sender(KeyA(), SaltA(), kSsrcA);
  auto rx = Receiver(KeyB(), SaltB());
  ASSERT_TRUE(tx && rx);
  auto srtp = tx->Protect(Rtp(1, kSsrcA, Payload(20, 1)));
  ASSERT_TRUE(srtp.ok());
  ExpectError(rx->Unprotect(*srtp), StatusCode::kPermissionDenied, kAuthFail);
}

TEST(SrtpSession, ProfileMismatchFailsAuth) {
  auto tx = Sender(KeyA(), SaltA(), kSsrcA, SrtpProfile::kAesCm128HmacSha1_80);
  auto rx = Receiver(KeyA(), SaltA(), std::nullopt, SrtpProfile::kAesCm128HmacSha1_32);
  ASSERT_TRUE(tx && rx);
  auto srtp = tx->Protect(Rtp(1, kSsrcA, Payload(20, 1)));
  ASSERT_TRUE(srtp.ok());
  ExpectError(rx->Unprotect(*srtp), StatusCode::kPermissionDenied, kAuthFail);
}

TEST(SrtpSession, TamperedPacketFailsAuthAndLeavesTheWindowAlone) {
  auto tx = Sender(KeyA(), SaltA(), kSsrcA);
  auto rx = Receiver(KeyA(), SaltA());
  ASSERT_TRUE(tx && rx);
  auto srtp = tx->Protect(Rtp(5, kSsrcA, Payload(64, 5)));
  ASSERT_TRUE(srtp.ok());
  // One bit in: the encrypted payload, the header (timestamp, marker,
  // sequence number), the tag; and the tag cut short.
  for (size_t at : {size_t{12}, size_t{40}, srtp->size() - 11, size_t{4}, size_t{1}, size_t{3},
                    srtp->size() - 10, srtp->size() - 1}) {
    SCOPED_TRACE("flipped byte " + std::to_string(at));
    Bytes tampered = *srtp;
    tampered[at] ^= 0x01;
    ExpectError(rx->Unprotect(tampered), StatusCode::kPermissionDenied, kAuthFail);
  }
  Bytes shortened(srtp->begin(), srtp->end() - 1);
  ExpectError(rx->Unprotect(shortened), StatusCode::kPermissionDenied, kAuthFail);
  Bytes lengthened = *srtp;
  lengthened.push_back(0);
  ExpectError(rx->Unprotect(lengthened), StatusCode::kPermissionDenied, kAuthFail);
  // Refused packets did not enter the replay window.
  EXPECT_TRUE(rx->Unprotect(*srtp).ok());
}

TEST(SrtpSession, ReplayIsRefused) {
  auto tx = Sender(KeyA(), SaltA(), kSsrcA);
  auto rx = Receiver(KeyA(), SaltA());
  ASSERT_TRUE(tx && rx);
  std::vector<Bytes> sent;
  for (uint16_t seq = 1; seq <= 200; ++seq) {
    auto srtp = tx->Protect(Rtp(seq, kSsrcA, Payload(20, static_cast<uint8_t>(seq))));
    ASSERT_TRUE(srtp.ok());
    sent.push_back(*srtp);
  }
  ASSERT_TRUE(rx->Unprotect(sent[0]).ok());
  ExpectError(rx->Unprotect(sent[0]), StatusCode::kPermissionDenied, kReplayFail);
  for (size_t i = 1; i < sent.size(); ++i) ASSERT_TRUE(rx->Unprotect(sent[i]).ok()) << i;
  // Within the window (128 packets): seen before. Older: outside the window.
  ExpectError(rx->Unprotect(sent[199]), StatusCode::kPermissionDenied, kReplayFail);
  ExpectError(rx->Unprotect(sent[100]), StatusCode::kPermissionDenied, kReplayFail);
  ExpectError(rx->Unprotect(sent[10]), StatusCode::kPermissionDenied,
              "srtp_unprotect: srtp_err_status_replay_old");
}

TEST(SrtpSession, ReorderingWithinTheWindowIsAccepted) {
  auto tx = Sender(KeyA(), SaltA(), kSsrcA);
  auto rx = Receiver(KeyA(), SaltA());
  ASSERT_TRUE(tx && rx);
  std::vector<Bytes> sent;
  for (uint16_t seq = 0; seq < 10; ++seq) {
    auto srtp = tx->Protect(Rtp(seq, kSsrcA, Payload(20, static_cast<uint8_t>(seq))));
    ASSERT_TRUE(srtp.ok());
    sent.push_back(*srtp);
  }
  for (size_t i : {0, 2, 1, 5, 3, 4, 9, 6, 8, 7}) {
    ASSERT_TRUE(rx->Unprotect(sent[i]).ok()) << i;
  }
}

TEST(SrtpSession, SenderRefusesToReuseASequenceNumber) {
  auto tx = Sender(KeyA(), SaltA(), kSsrcA);
  ASSERT_TRUE(tx);
  ASSERT_TRUE(tx->Protect(Rtp(9, kSsrcA, Payload(20, 1))).ok());
  ExpectError(tx->Protect(Rtp(9, kSsrcA, Payload(20, 2))), StatusCode::kPermissionDenied,
              "srtp_protect: srtp_err_status_replay_fail");
}

TEST(SrtpSession, SsrcBinding) {
  auto tx = Sender(KeyA(), SaltA(), kSsrcA);
  ASSERT_TRUE(tx);
  ExpectError(tx->Protect(Rtp(1, kSsrcB, Payload(20, 1))), StatusCode::kFailedPrecondition,
              "srtp_protect: srtp_err_status_no_ctx");

  // A receiver bound to SSRC B does not know SSRC A's stream.
  auto srtp = tx->Protect(Rtp(1, kSsrcA, Payload(20, 1)));
  ASSERT_TRUE(srtp.ok());
  auto rx_b = Receiver(KeyA(), SaltA(), kSsrcB);
  ASSERT_TRUE(rx_b);
  ExpectError(rx_b->Unprotect(*srtp), StatusCode::kFailedPrecondition,
              "srtp_unprotect: srtp_err_status_no_ctx");
  auto rx_a = Receiver(KeyA(), SaltA(), kSsrcA);
  ASSERT_TRUE(rx_a);
  EXPECT_TRUE(rx_a->Unprotect(*srtp).ok());
}

TEST(SrtpSession, DirectionIsEnforced) {
  auto tx = Sender(KeyA(), SaltA(), kSsrcA);
  auto rx = Receiver(KeyA(), SaltA());
  ASSERT_TRUE(tx && rx);
  const Bytes rtp = Rtp(1, kSsrcA, Payload(20, 1));
  auto srtp = tx->Protect(rtp);
  ASSERT_TRUE(srtp.ok());
  ExpectError(tx->Unprotect(*srtp), StatusCode::kFailedPrecondition,
              "srtp_unprotect: this is an SRTP send session");
  ExpectError(rx->Protect(rtp), StatusCode::kFailedPrecondition,
              "srtp_protect: this is an SRTP receive session");
}

TEST(SrtpSession, CreateRefusesBadParameters) {
  const std::string key_hex = HexEncode(KeyA());
  auto check = [&](const Result<std::unique_ptr<SrtpSession>>& r, std::string_view fragment) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find(fragment), std::string::npos) << r.error().message();
    EXPECT_EQ(r.error().message().find(key_hex.substr(0, 8)), std::string::npos);
  };
  const Bytes long_key = Hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  check(SrtpSession::Create(Direction::kSend, long_key, SaltA(), kSsrcA),
        "master key must be 16 bytes for AES_CM_128_HMAC_SHA1_80, got 32");
  check(SrtpSession::Create(Direction::kSend, Bytes(15), SaltA(), kSsrcA),
        "master key must be 16 bytes");
  check(SrtpSession::Create(Direction::kSend, KeyA(), Bytes(13), kSsrcA),
        "master salt must be 14 bytes, got 13");
  check(SrtpSession::Create(Direction::kSend, KeyA(), Bytes(16), kSsrcA),
        "master salt must be 14 bytes, got 16");
  check(SrtpSession::Create(Direction::kSend, KeyA(), SaltA(), std::nullopt),
        "an SRTP send session needs its SSRC");
}

TEST(SrtpSession, MalformedPacketsAreRefusedBeforeLibsrtp) {
  auto tx = Sender(KeyA(), SaltA(), kSsrcA);
  auto rx = Receiver(KeyA(), SaltA());
  ASSERT_TRUE(tx && rx);
  for (const Bytes& bad : {Bytes{}, Hex("8000000000000000000000"),
                           Hex("000000000000000000000000"), Hex("82000000000000000000000011111111"),
                           Hex("9000000000000000414c4943bede0009")}) {
    SCOPED_TRACE(HexEncode(bad));
    auto p = tx->Protect(bad);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(p.error().message().rfind("srtp_protect: RTP: ", 0), 0u) << p.error().message();
    auto u = rx->Unprotect(bad);
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.error().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(u.error().message().rfind("srtp_unprotect: RTP: ", 0), 0u) << u.error().message();
  }
  // A header without room for the tag.
  const Bytes short_srtp = Hex("800000010000000000000000" "010203040506070809");
  ExpectError(rx->Unprotect(short_srtp), StatusCode::kInvalidArgument,
              "srtp_unprotect: 21 bytes leave no room for the 10-byte authentication tag "
              "after the 12-byte header");
  // Oversized input.
  Bytes huge(kMaxRtpPacketBytes + 1, 0);
  huge[0] = 0x80;
  EXPECT_FALSE(tx->Protect(huge).ok());
  EXPECT_FALSE(rx->Unprotect(huge).ok());
}

TEST(SrtpSession, LargestPacketRoundTrips) {
  auto tx = Sender(KeyA(), SaltA(), kSsrcA);
  auto rx = Receiver(KeyA(), SaltA());
  ASSERT_TRUE(tx && rx);
  const Bytes rtp = Rtp(3, kSsrcA, Payload(kMaxRtpPacketBytes - 12 - 10, 3));
  auto srtp = tx->Protect(rtp);
  ASSERT_TRUE(srtp.ok()) << srtp.error().ToString();
  EXPECT_EQ(srtp->size(), kMaxRtpPacketBytes);
  auto back = rx->Unprotect(*srtp);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(*back, rtp);
}

// A call: alice sends with key A on SSRC A, bob with key B on SSRC B; each
// side has a send session with its own key and a receive session with the
// peer's. 100 packets each way, interleaved, with the sequence number
// wrapping (the rollover counter, RFC 3711 §3.3.1, goes from 0 to 1).
TEST(SrtpSession, CallWith100PacketsEachWay) {
  auto alice_tx = Sender(KeyA(), SaltA(), kSsrcA);
  auto alice_rx = Receiver(KeyB(), SaltB());
  auto bob_tx = Sender(KeyB(), SaltB(), kSsrcB, SrtpProfile::kAesCm128HmacSha1_80);
  auto bob_rx = Receiver(KeyA(), SaltA(), kSsrcA);
  ASSERT_TRUE(alice_tx && alice_rx && bob_tx && bob_rx);
  uint16_t seq_a = 65486;
  uint16_t seq_b = 12345;
  for (int i = 0; i < 100; ++i) {
    SCOPED_TRACE("packet " + std::to_string(i));
    const Bytes from_alice = Rtp(seq_a++, kSsrcA, Payload(160, static_cast<uint8_t>(i)), 0);
    const Bytes from_bob =
        Rtp(seq_b++, kSsrcB, Payload(20 + static_cast<size_t>(i), static_cast<uint8_t>(~i)), 8);
    auto a_wire = alice_tx->Protect(from_alice);
    auto b_wire = bob_tx->Protect(from_bob);
    ASSERT_TRUE(a_wire.ok() && b_wire.ok());
    auto at_bob = bob_rx->Unprotect(*a_wire);
    auto at_alice = alice_rx->Unprotect(*b_wire);
    ASSERT_TRUE(at_bob.ok()) << at_bob.error().ToString();
    ASSERT_TRUE(at_alice.ok()) << at_alice.error().ToString();
    EXPECT_EQ(*at_bob, from_alice);
    EXPECT_EQ(*at_alice, from_bob);
    // The keys of the two directions differ: alice cannot read her own
    // packets with the receive keys, nor bob his.
    if (i % 25 == 0) {
      ExpectError(alice_rx->Unprotect(*a_wire), StatusCode::kPermissionDenied, kAuthFail);
    }
  }
  EXPECT_EQ(seq_a, 50);  // wrapped
}

TEST(SrtpSession, AcceptsKeysHeldInSecretBytes) {
  const SecretBytes key = ToSecret(KeyA());
  const SecretBytes salt = ToSecret(SaltA());
  auto tx = SrtpSession::Create(Direction::kSend, key, salt, kSsrcA);
  auto rx = SrtpSession::Create(Direction::kReceive, SrtpProfile::kAesCm128HmacSha1_80,
                                ByteSpan(key), ByteSpan(salt), std::nullopt);
  ASSERT_TRUE(tx.ok() && rx.ok());
  auto srtp = (*tx)->Protect(Rtp(1, kSsrcA, Payload(10, 1)));
  ASSERT_TRUE(srtp.ok());
  EXPECT_TRUE((*rx)->Unprotect(*srtp).ok());
}

TEST(SrtpSession, NothingIsWrittenToStderr) {
  // libsrtp's own reporting stays silent (no log or debug handler), so no
  // key can reach a log: run a whole exchange, failures included.
  testing::internal::CaptureStderr();
  {
    auto tx = Sender(KeyA(), SaltA(), kSsrcA);
    auto rx = Receiver(KeyB(), SaltA());
    auto srtp = tx->Protect(Rtp(1, kSsrcA, Payload(10, 1)));
    ASSERT_TRUE(srtp.ok());
    EXPECT_FALSE(rx->Unprotect(*srtp).ok());
    EXPECT_FALSE(tx->Protect(Rtp(1, kSsrcA, Payload(10, 1))).ok());
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

}  // namespace
}  // namespace tkms::srtp
