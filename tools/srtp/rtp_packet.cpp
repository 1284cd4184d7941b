#include "tools/srtp/rtp_packet.h"

#include <string>

#include "firmware/base/byte_writer.h"

namespace tkms::srtp {

namespace {

Status Refuse(const std::string& what, size_t offset) {
  return InvalidArgument("RTP: " + what + " at offset " + std::to_string(offset));
}

}  // namespace

Result<Bytes> BuildRtpPacket(const RtpHeaderFields& fields, ByteSpan payload) {
  if (fields.payload_type > kRtpMaxPayloadType) {
    return InvalidArgument("RTP: payload type " + std::to_string(fields.payload_type) +
                           " does not fit 7 bits");
  }
  if (payload.size() > kMaxRtpPacketBytes - kRtpFixedHeaderBytes) {
    return InvalidArgument("RTP: payload of " + std::to_string(payload.size()) +
                           " bytes exceeds the packet limit of " +
                           std::to_string(kMaxRtpPacketBytes) + " bytes");
  }
  ByteWriter w;
  w.U8(kRtpVersion << 6);  // V=2, P=0, X=0, CC=0
  w.U8(static_cast<uint8_t>((fields.marker ? 0x80 : 0x00) | fields.payload_type));
  w.U16(fields.sequence_number);
  w.U32(fields.timestamp);
  w.U32(fields.ssrc);
  w.Bytes(payload);
  return w.Take();
}

Result<RtpHeader> ParseRtpHeader(ByteSpan packet) {
  if (packet.size() > kMaxRtpPacketBytes) {
    return InvalidArgument("RTP: packet of " + std::to_string(packet.size()) +
                           " bytes exceeds the limit of " + std::to_string(kMaxRtpPacketBytes));
  }
  ByteReader r(packet);
  RtpHeader h;
  uint8_t b0 = 0;
  uint8_t b1 = 0;
  if (!r.ReadU8(b0) || !r.ReadU8(b1) || !r.ReadU16(h.sequence_number) ||
      !r.ReadU32(h.timestamp) || !r.ReadU32(h.ssrc)) {
    return Refuse("fixed header truncated (" + std::to_string(packet.size()) + " of " +
                      std::to_string(kRtpFixedHeaderBytes) + " bytes)",
                  r.offset());
  }
  h.version = static_cast<uint8_t>(b0 >> 6);
  h.padding = (b0 & 0x20) != 0;
  h.extension = (b0 & 0x10) != 0;
  const size_t csrc_count = b0 & 0x0f;
  h.marker = (b1 & 0x80) != 0;
  h.payload_type = static_cast<uint8_t>(b1 & 0x7f);
  if (h.version != kRtpVersion) {
    return Refuse("version " + std::to_string(h.version) + " is not 2", 0);
  }
  // Bounds first, then allocation: CC is at most 15, and the CSRC list must
  // be present in full before it is read.
  if (r.remaining() < csrc_count * 4) {
    return Refuse("CC=" + std::to_string(csrc_count) + " CSRC list runs past the end",
                  r.offset());
  }
  h.csrcs.reserve(csrc_count);
  for (size_t i = 0; i < csrc_count; ++i) {
    uint32_t csrc = 0;
    if (!r.ReadU32(csrc)) {
      return Refuse("CSRC truncated", r.offset());  // unreachable after the check above
    }
    h.csrcs.push_back(csrc);
  }
  if (h.extension) {
    const size_t ext_at = r.offset();
    uint16_t words = 0;
    if (!r.ReadU16(h.extension_profile) || !r.ReadU16(words)) {
      return Refuse("header extension truncated", ext_at);
    }
    const size_t ext_bytes = size_t{words} * 4;
    if (!r.ReadBytes(ext_bytes, h.extension_data)) {
      return Refuse("header extension length " + std::to_string(words) +
                        " words runs past the end",
                    ext_at + 2);
    }
  }
  h.header_bytes = r.offset();
  return h;
}

Result<RtpPacket> ParseRtpPacket(ByteSpan packet) {
  auto header = ParseRtpHeader(packet);
  if (!header.ok()) {
    return std::move(header).error();
  }
  RtpPacket p;
  p.header = std::move(*header);
  ByteSpan body = packet.subspan(p.header.header_bytes);
  if (p.header.padding) {
    if (body.empty()) {
      return Refuse("P=1 but there is no padding count octet", packet.size());
    }
    const size_t count = body.back();
    if (count == 0 || count > body.size()) {
      return Refuse("padding count " + std::to_string(count) + " is not within the " +
                        std::to_string(body.size()) + " bytes after the header",
                    packet.size() - 1);
    }
    p.padding_bytes = count;
    body = body.first(body.size() - count);
  }
  p.payload = body;
  return p;
}

}  // namespace tkms::srtp
