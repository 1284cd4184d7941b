// Fuzz target: the RTP parser (tools/srtp/rtp_packet.h) and SrtpSession's
// handling of whatever it accepts.
//
// Properties:
//   * ParseRtpHeader accepted => V=2, at most 15 CSRCs, and header_bytes is
//     exactly 12 + 4*CC (+ 4 + extension data with X=1), within the input;
//     the extension data lies inside the input, right before header_bytes;
//   * ParseRtpPacket accepted => ParseRtpHeader accepted with the same
//     header, and header || payload || padding tile the input, with
//     padding_bytes = last octet iff P=1 (0 otherwise);
//   * ParseRtpHeader accepted and ParseRtpPacket refused => P=1 (only the
//     padding count can make the difference);
//   * an accepted packet with CC=0, X=0, P=0 is rebuilt byte for byte by
//     BuildRtpPacket from its fields and payload;
//   * refusals are kInvalidArgument with a message of at most 200 bytes;
//   * every header-accepted input (as plaintext RTP) is protected by a fresh
//     send session for its SSRC, grows by exactly the 10-byte tag with the
//     header unchanged, and a fresh receive session unprotects it back to the
//     input; the raw input itself is refused by a receive session (it carries
//     no valid tag for the fixed key).
// Sessions are created per input with a fixed key, so runs are deterministic.
#include <algorithm>
#include <string>

#include "tests/fuzz/fuzz_target.h"
#include "tools/srtp/rtp_packet.h"
#include "tools/srtp/srtp_session.h"

namespace {

constexpr const char* kTarget = "rtp_parse_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

constexpr uint8_t kKey[16] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
                              0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
constexpr uint8_t kSalt[14] = {0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26,
                               0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d};

bool SameHeader(const tkms::srtp::RtpHeader& a, const tkms::srtp::RtpHeader& b) {
  return a.version == b.version && a.padding == b.padding && a.extension == b.extension &&
         a.marker == b.marker && a.payload_type == b.payload_type &&
         a.sequence_number == b.sequence_number && a.timestamp == b.timestamp &&
         a.ssrc == b.ssrc && a.csrcs == b.csrcs && a.extension_profile == b.extension_profile &&
         a.extension_data.data() == b.extension_data.data() &&
         a.extension_data.size() == b.extension_data.size() && a.header_bytes == b.header_bytes;
}

void CheckRefusal(const tkms::Status& error) {
  Check(error.code() == tkms::StatusCode::kInvalidArgument, "refusals are kInvalidArgument");
  Check(error.message().size() <= 200, "refusal messages stay short");
}

void CheckSrtp(tkms::ByteSpan input, const tkms::srtp::RtpHeader& header) {
  using tkms::srtp::Direction;
  using tkms::srtp::SrtpSession;
  auto tx = SrtpSession::Create(Direction::kSend, kKey, kSalt, header.ssrc);
  auto rx = SrtpSession::Create(Direction::kReceive, kKey, kSalt, std::nullopt);
  Check(tx.ok() && rx.ok(), "sessions are created");
  if (!tx.ok() || !rx.ok()) return;

  auto raw = (*rx)->Unprotect(input);
  Check(!raw.ok(), "plaintext input is not accepted as SRTP");

  if (input.size() > tkms::srtp::kMaxRtpPacketBytes - 10) return;
  auto srtp = (*tx)->Protect(input);
  Check(srtp.ok(), "every parsed header is protected");
  if (!srtp.ok()) return;
  Check(srtp->size() == input.size() + 10, "protect adds the 10-byte tag");
  Check(std::equal(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(header.header_bytes),
                   srtp->begin()),
        "the header stays in clear");
  auto rx2 = SrtpSession::Create(Direction::kReceive, kKey, kSalt, header.ssrc);
  Check(rx2.ok(), "receive session is created");
  if (!rx2.ok()) return;
  auto back = (*rx2)->Unprotect(*srtp);
  Check(back.ok(), "unprotect(protect(p)) succeeds");
  if (back.ok()) {
    Check(back->size() == input.size() && std::equal(input.begin(), input.end(), back->begin()),
          "unprotect(protect(p)) == p");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tkms::srtp;  // NOLINT: test-only brevity
  const tkms::ByteSpan input(data, size);

  auto header = ParseRtpHeader(input);
  auto packet = ParseRtpPacket(input);

  if (!header.ok()) {
    CheckRefusal(header.error());
    Check(!packet.ok(), "a packet parses only if its header does");
    if (!packet.ok()) {
      Check(packet.error().message() == header.error().message(), "same refusal for both");
    }
    return 0;
  }

  const RtpHeader& h = *header;
  Check(h.version == kRtpVersion, "version 2");
  Check(h.csrcs.size() <= kRtpMaxCsrcCount, "at most 15 CSRCs");
  Check(h.csrcs.size() == (data[0] & 0x0fu), "CC CSRCs");
  const size_t ext = h.extension ? 4 + h.extension_data.size() : 0;
  Check(h.extension || h.extension_data.empty(), "no extension data without X");
  Check(h.extension_data.size() % 4 == 0, "extension data is whole words");
  Check(h.header_bytes == kRtpFixedHeaderBytes + 4 * h.csrcs.size() + ext,
        "header_bytes = 12 + 4*CC + extension");
  Check(h.header_bytes <= size, "header within the input");
  if (h.extension) {
    Check(h.extension_data.data() + h.extension_data.size() == data + h.header_bytes,
          "extension data ends the header");
  }
  Check(h.padding == ((data[0] & 0x20) != 0) && h.marker == ((data[1] & 0x80) != 0) &&
            h.payload_type == (data[1] & 0x7f),
        "flag bits read back");

  if (packet.ok()) {
    Check(SameHeader(packet->header, h), "ParseRtpPacket has ParseRtpHeader's header");
    Check(packet->payload.data() == data + h.header_bytes, "payload follows the header");
    Check(h.header_bytes + packet->payload.size() + packet->padding_bytes == size,
          "header || payload || padding tile the input");
    Check(h.padding ? packet->padding_bytes == data[size - 1] && packet->padding_bytes >= 1
                    : packet->padding_bytes == 0,
          "padding_bytes is the count octet iff P=1");
    if (h.csrcs.empty() && !h.extension && !h.padding) {
      RtpHeaderFields f;
      f.payload_type = h.payload_type;
      f.marker = h.marker;
      f.sequence_number = h.sequence_number;
      f.timestamp = h.timestamp;
      f.ssrc = h.ssrc;
      auto rebuilt = BuildRtpPacket(f, packet->payload);
      Check(rebuilt.ok() && rebuilt->size() == size &&
                std::equal(rebuilt->begin(), rebuilt->end(), data),
            "BuildRtpPacket rebuilds a minimal packet");
    }
  } else {
    CheckRefusal(packet.error());
    Check(h.padding, "only the padding count refuses a packet whose header parses");
  }

  CheckSrtp(input, h);
  return 0;
}
