// Known answers for SRTP: an independent implementation of the RFC 3711
// transforms (on mbedTLS AES and HMAC-SHA1, not libsrtp's NSS-based crypto)
// is first checked against the RFC 3711 Appendix B vectors, then used to
// compute SRTP packets byte for byte and compare them with what SrtpSession
// (libsrtp2) produces and accepts.
//
//   §4.3.1/§4.3.3  key derivation, kdr = 0: x = label<<48 XOR master salt,
//                  session key material = AES-CM(master key, x * 2^16)
//                  -> B.3 vectors (cipher key, cipher salt, auth key)
//   §4.1.1         AES-CM: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)
//                  -> B.2 keystream vectors
//   §3.3, §4.2     i = 2^16 * ROC + SEQ; tag = first 80 (or 32) bits of
//                  HMAC-SHA1(k_a, header || encrypted payload || ROC)
#include <gtest/gtest.h>
#include <mbedtls/aes.h>
#include <mbedtls/md.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/big_endian.h"
#include "firmware/base/byte_reader.h"
#include "firmware/base/encoding.h"
#include "tools/srtp/rtp_packet.h"
#include "tools/srtp/srtp_session.h"

namespace tkms::srtp {
namespace {

using Block = std::array<uint8_t, 16>;

Bytes Hex(std::string_view hex) {
  auto bytes = HexDecode(hex);
  EXPECT_TRUE(bytes.has_value()) << hex;
  return bytes.value_or(Bytes{});
}

// AES-128 in counter mode from a 16-byte initial counter block; the counter
// is the whole block as a big-endian integer (RFC 3711 §4.1.1), n bytes.
Bytes AesCmKeystream(const Bytes& key, const Block& iv, size_t n) {
  mbedtls_aes_context aes;
  mbedtls_aes_init(&aes);
  EXPECT_EQ(mbedtls_aes_setkey_enc(&aes, key.data(), 128), 0);
  Bytes out;
  Block counter = iv;
  while (out.size() < n) {
    Block block{};
    EXPECT_EQ(mbedtls_aes_crypt_ecb(&aes, MBEDTLS_AES_ENCRYPT, counter.data(), block.data()), 0);
    out.insert(out.end(), block.begin(), block.end());
    for (size_t i = counter.size(); i-- > 0;) {
      if (++counter[i] != 0) break;
    }
  }
  mbedtls_aes_free(&aes);
  out.resize(n);
  return out;
}

// RFC 3711 §4.3.1 with kdr = 0 (r = 0): key_id = label || 0^48, x = key_id
// XOR master salt (right-aligned, so the label lands on salt byte 7),
// input block x * 2^16.
Bytes DeriveSessionKey(const Bytes& master_key, const Bytes& master_salt, uint8_t label,
                       size_t n) {
  Block iv{};
  std::copy(master_salt.begin(), master_salt.end(), iv.begin());
  iv[7] ^= label;
  return AesCmKeystream(master_key, iv, n);
}

struct SessionKeys {
  Bytes cipher_key;  // label 0x00, 16 bytes
  Bytes auth_key;    // label 0x01, 20 bytes for HMAC-SHA1 (§8.2)
  Bytes cipher_salt; // label 0x02, 14 bytes
};

SessionKeys Derive(const Bytes& master_key, const Bytes& master_salt) {
  return {DeriveSessionKey(master_key, master_salt, 0x00, 16),
          DeriveSessionKey(master_key, master_salt, 0x01, 20),
          DeriveSessionKey(master_key, master_salt, 0x02, 14)};
}

// RFC 3711 §4.1.1: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16).
Bytes PacketKeystream(const SessionKeys& keys, uint32_t ssrc, uint64_t index, size_t n) {
  Block iv{};
  const std::span<uint8_t, 16> fields(iv);
  StoreBe32(ssrc, fields.subspan<4, 4>());    // SSRC * 2^64
  StoreBeUint(index, fields.subspan<8, 6>());  // i * 2^16 (48-bit index)
  for (size_t b = 0; b < keys.cipher_salt.size(); ++b) iv[b] ^= keys.cipher_salt[b];  // k_s * 2^16
  return AesCmKeystream(keys.cipher_key, iv, n);
}

Bytes HmacSha1(const Bytes& key, const Bytes& message) {
  Bytes mac(20);
  EXPECT_EQ(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA1), key.data(), key.size(),
                            message.data(), message.size(), mac.data()),
            0);
  return mac;
}

// The SRTP packet for rtp (header of header_bytes, then payload) with
// rollover counter roc, computed without libsrtp.
Bytes IndependentSrtp(const SessionKeys& keys, const Bytes& rtp, size_t header_bytes,
                      uint32_t roc, size_t tag_bytes) {
  ByteReader header(rtp);
  uint16_t seq = 0;
  uint32_t ssrc = 0;
  EXPECT_TRUE(header.Skip(2) && header.ReadU16(seq) && header.Skip(4) && header.ReadU32(ssrc));
  const uint64_t index = (uint64_t{roc} << 16) | seq;  // RFC 3711 §3.3.1: i = 2^16 * ROC + SEQ
  Bytes out = rtp;
  const Bytes ks = PacketKeystream(keys, ssrc, index, rtp.size() - header_bytes);
  for (size_t i = header_bytes; i < out.size(); ++i) out[i] ^= ks[i - header_bytes];
  Bytes authenticated = out;
  const auto roc_bytes = Be32Bytes(roc);  // RFC 3711 §4.2: M = packet || ROC
  authenticated.insert(authenticated.end(), roc_bytes.begin(), roc_bytes.end());
  const Bytes mac = HmacSha1(keys.auth_key, authenticated);
  out.insert(out.end(), mac.begin(), mac.begin() + static_cast<std::ptrdiff_t>(tag_bytes));
  return out;
}

// RFC 3711 B.3.
const Bytes& B3MasterKey() {
  static const Bytes k = Hex("E1F97A0D3E018BE0D64FA32C06DE4139");
  return k;
}
const Bytes& B3MasterSalt() {
  static const Bytes s = Hex("0EC675AD498AFEEBB6960B3AABE6");
  return s;
}

TEST(SrtpKat, Rfc3711B3KeyDerivation) {
  EXPECT_EQ(HexEncode(DeriveSessionKey(B3MasterKey(), B3MasterSalt(), 0x00, 16)),
            "c61e7a93744f39ee10734afe3ff7a087");
  EXPECT_EQ(HexEncode(DeriveSessionKey(B3MasterKey(), B3MasterSalt(), 0x02, 14)),
            "30cbbc08863d8c85d49db34a9ae1");
  // The 94-octet auth key of the appendix; HMAC-SHA1 uses its first 20.
  EXPECT_EQ(HexEncode(DeriveSessionKey(B3MasterKey(), B3MasterSalt(), 0x01, 94)),
            "cebe321f6ff7716b6fd4ab49af256a15"
            "6d38baa48f0a0acf3c34e2359e6cdbce"
            "e049646c43d9327ad175578ef7227098"
            "6371c10c9a369ac2f94a8c5fbcdddc25"
            "6d6e919a48b610ef17c2041e47403576"
            "6b68642c59bbfc2f34db60dbdfb2");
}

TEST(SrtpKat, Rfc3711B2AesCmKeystream) {
  SessionKeys keys;
  keys.cipher_key = Hex("2B7E151628AED2A6ABF7158809CF4F3C");
  keys.cipher_salt = Hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD");
  const size_t blocks = 65282;
  const Bytes ks = PacketKeystream(keys, /*ssrc=*/0, /*index=*/0, blocks * 16);
  auto block = [&](size_t i) {
    return HexEncode(ByteSpan(ks).subspan(i * 16, 16));
  };
  EXPECT_EQ(block(0), "e03ead0935c95e80e166b16dd92b4eb4");
  EXPECT_EQ(block(1), "d23513162b02d0f72a43a2fe4a5f97ab");
  EXPECT_EQ(block(2), "41e95b3bb0a2e8dd477901e4fca894c0");
  EXPECT_EQ(block(0xfeff), "ec8cdf7398607cb0f2d21675ea9ea1e4");
  EXPECT_EQ(block(0xff00), "362b7c3c6773516318a077d7fc5073ae");
  EXPECT_EQ(block(0xff01), "6a2cc3787889374fbeb4c81b17ba6c44");
}

Bytes SamplePayload(size_t n) {
  Bytes p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(0x30 + i);
  return p;
}

// libsrtp's protect equals the independent computation, for both profiles,
// including across a sequence-number wrap (ROC 0 -> 1) and for a header with
// a CSRC and an extension (encryption starts after them).
TEST(SrtpKat, LibsrtpMatchesIndependentComputation) {
  const SessionKeys keys = Derive(B3MasterKey(), B3MasterSalt());
  const uint32_t ssrc = 0xcafebabe;
  for (SrtpProfile profile :
       {SrtpProfile::kAesCm128HmacSha1_80, SrtpProfile::kAesCm128HmacSha1_32}) {
    SCOPED_TRACE(SrtpProfileName(profile));
    const size_t tag = SrtpAuthTagBytes(profile);
    auto tx = SrtpSession::Create(Direction::kSend, profile, B3MasterKey(), B3MasterSalt(), ssrc);
    auto rx = SrtpSession::Create(Direction::kReceive, profile, B3MasterKey(), B3MasterSalt(),
                                  std::nullopt);
    ASSERT_TRUE(tx.ok() && rx.ok());

    struct Case {
      Bytes rtp;
      size_t header_bytes;
      uint32_t roc;
    };
    std::vector<Case> cases;
    for (uint16_t seq : {uint16_t{0xfffe}, uint16_t{0xffff}}) {
      RtpHeaderFields f;
      f.payload_type = 96;
      f.sequence_number = seq;
      f.timestamp = 0x01020304;
      f.ssrc = ssrc;
      cases.push_back({*BuildRtpPacket(f, SamplePayload(37)), 12, 0});
    }
    // seq 0 and 1 after the wrap: ROC = 1. The second carries CC=1, X=1.
    cases.push_back({Hex("80e00000" "01020304" "cafebabe" "00112233445566778899"), 12, 1});
    cases.push_back({Hex("91600001" "01020305" "cafebabe" "0a0b0c0d" "bede0001" "41424344"
                         "68656c6c6f2c20626f62"),
                     24, 1});

    for (const Case& c : cases) {
      SCOPED_TRACE(HexEncode(c.rtp));
      const Bytes expected = IndependentSrtp(keys, c.rtp, c.header_bytes, c.roc, tag);
      auto srtp = (*tx)->Protect(c.rtp);
      ASSERT_TRUE(srtp.ok()) << srtp.error().ToString();
      EXPECT_EQ(HexEncode(*srtp), HexEncode(expected));
      // And libsrtp accepts the independently computed packet.
      auto back = (*rx)->Unprotect(expected);
      ASSERT_TRUE(back.ok()) << back.error().ToString();
      EXPECT_EQ(*back, c.rtp);
    }
  }
}

// A fixed expected packet, computed a third way (the openssl command line:
// `openssl enc -aes-128-ctr` with the B.3 session key and the §4.1.1 IV, and
// `openssl dgst -sha1 -mac HMAC` over header || ciphertext || ROC=0), so a
// change in libsrtp or in the code above cannot go unnoticed by drifting
// together:
//   IV  = 30cbbc08 863d8c85 d49db34a 9ae10000 XOR SSRC cafebabe << 64
//         XOR index 0x1234 << 16 = 30cbbc08 4cc3363b d49db34a 88d50000
TEST(SrtpKat, FixedPacketWithB3Keys) {
  RtpHeaderFields f;
  f.payload_type = 0;
  f.sequence_number = 0x1234;
  f.timestamp = 0xdecafbad;
  f.ssrc = 0xcafebabe;
  const Bytes rtp = *BuildRtpPacket(f, Hex("000102030405060708090a0b0c0d0e0f"));
  auto tx = SrtpSession::Create(Direction::kSend, B3MasterKey(), B3MasterSalt(), 0xcafebabe);
  ASSERT_TRUE(tx.ok());
  auto srtp = (*tx)->Protect(rtp);
  ASSERT_TRUE(srtp.ok());
  EXPECT_EQ(HexEncode(*srtp),
            "80001234decafbadcafebabe"                  // header in clear
            "e5ff75e44837d5742f0673b5333b81a6"          // AES-CM ciphertext
            "72b0b7d5a0b76f17e01d");                    // HMAC-SHA1-80 tag
}

}  // namespace
}  // namespace tkms::srtp
