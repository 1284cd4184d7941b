// Minimal RTP packets (RFC 3550 §5.1): what the SRTP tests and the tkms-ue
// end-to-end call put on the wire and read back.
//
// Why: proving that two UEs share SRTP keys needs real RTP packets around the
// media, and the receive side reads bytes from the network. The builder
// writes the fixed 12-byte header (V=2, no padding, no extension, CC=0); the
// parser reads any RFC 3550 packet through ByteReader and refuses every
// length that points past the end of its input:
//   - V must be 2 (RFC 3550 §5.1, and §A.1 validity check);
//   - CC CSRC identifiers (4 bytes each) must be present (§5.1);
//   - with X=1, the extension header's 16-bit length counts 32-bit words
//     after the 4-byte extension header, all of which must be present (§5.3.1);
//   - with P=1, the last octet counts the padding octets including itself,
//     so it must be >= 1 and no larger than what follows the header (§5.1,
//     §A.1: "less than the total packet length minus the header size").
// No RTP profile rules are applied (payload type, marker meaning): that is
// the application's business. SRTCP/RTCP packets are not parsed here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"

namespace tkms::srtp {

using Bytes = std::vector<uint8_t>;

inline constexpr uint8_t kRtpVersion = 2;
inline constexpr size_t kRtpFixedHeaderBytes = 12;
inline constexpr size_t kRtpMaxCsrcCount = 15;
inline constexpr uint8_t kRtpMaxPayloadType = 127;
// Upper bound on any RTP or SRTP packet tkms builds, parses, protects or
// unprotects. A UDP datagram (16-bit length field) never carries more, and it
// keeps every length well inside libsrtp's int arithmetic.
inline constexpr size_t kMaxRtpPacketBytes = 65535;

// The fields of the fixed header that the builder writes.
struct RtpHeaderFields {
  uint8_t payload_type = 0;  // 7 bits (0..127)
  bool marker = false;
  uint16_t sequence_number = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
};

// Builds V=2, P=0, X=0, CC=0 || fields || payload. kInvalidArgument if the
// payload type does not fit 7 bits or the packet would exceed
// kMaxRtpPacketBytes.
Result<Bytes> BuildRtpPacket(const RtpHeaderFields& fields, ByteSpan payload);

// A parsed RTP header. Spans point into the parsed input.
struct RtpHeader {
  uint8_t version = 0;
  bool padding = false;    // P bit
  bool extension = false;  // X bit
  bool marker = false;
  uint8_t payload_type = 0;
  uint16_t sequence_number = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  std::vector<uint32_t> csrcs;      // CC entries
  uint16_t extension_profile = 0;   // only if extension
  ByteSpan extension_data;          // 4 * length bytes, only if extension
  size_t header_bytes = 0;          // fixed header + CSRCs + extension
};

// A parsed RTP packet: header || payload || padding.
struct RtpPacket {
  RtpHeader header;
  ByteSpan payload;           // without padding
  size_t padding_bytes = 0;   // including the count octet; 0 when P=0
};

// Parses the header only: what is readable of an SRTP packet, whose payload,
// padding and count octet are encrypted (RFC 3711 §3.1). The bytes after the
// header are not looked at. kInvalidArgument on any refusal; messages name
// the field and offset, never echo payload bytes.
Result<RtpHeader> ParseRtpHeader(ByteSpan packet);

// Parses a whole plaintext RTP packet, including the padding count.
Result<RtpPacket> ParseRtpPacket(ByteSpan packet);

}  // namespace tkms::srtp
