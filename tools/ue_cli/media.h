// Internal to tkms-ue (call.cpp): SRTP media on 127.0.0.0/8 between the two
// sides of a call, the proof that both derived the same keys.
//
// Each side sends on its own crypto session and receives on the peer's: the
// Initiator on CS 1 (its stream in the TRANSFER_INIT), the Responder on CS 2
// (the stream it adds to the TRANSFER_RESP). SendMedia protects `packets` RTP
// packets (sequence numbers 1..N, payload "tkms-ue <tag> packet <seq>") and
// sends them; ReceiveMedia receives N packets from every expected peer
// (demultiplexed by SSRC), first unprotects each peer's first packet with its
// key with one bit flipped and requires srtp auth_fail (and, with several
// peers, with the next peer's keys), then decrypts every packet and checks its
// sequence number and payload. Progress lines never contain key bytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "tools/srtp/srtp_session.h"
#include "tools/ue/transfer.h"

namespace tkms::ue_cli {

using Clock = std::chrono::steady_clock;

// Limits of the command line's --packets / --media.
inline constexpr int kMaxMediaPackets = 10000;

// "who: text" on `out`, flushed (the progress lines of every tkms-ue step).
void PrintLine(std::FILE* out, const std::string& who, const std::string& text);

// "what: <strerror(errno)>".
std::string ErrnoMessage(const char* what);

// Milliseconds left until `deadline` for poll(): 0 when past, at most INT_MAX.
int RemainingMs(Clock::time_point deadline);

// Where a peer's media goes: a loopback IPv4 address (the sockets are bound
// to 127.0.0.1) and a UDP port.
struct MediaTarget {
  uint32_t address = 0;  // host byte order, in 127.0.0.0/8
  uint16_t port = 0;
  std::string text;      // "127.0.0.1:49170"
};

// The audio stream's c= address and m= port of an SDP body (the media
// target it announces); kInvalidArgument if either is missing or the address
// is not in 127.0.0.0/8 (tkms-ue sends media on loopback only).
Result<MediaTarget> MediaTargetOf(std::string_view sdp);

class UdpSocket {
 public:
  UdpSocket() = default;
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // Binds 127.0.0.1:port (0: a free port, see port()). Once only.
  Status Bind(uint16_t port = 0);
  Status SendTo(const MediaTarget& target, ByteSpan data) const;
  // One datagram, or kUnavailable at the deadline.
  Result<mikey::Bytes> Receive(Clock::time_point deadline) const;
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// The send and receive keys of one side.
struct MediaKeys {
  uint32_t send_ssrc = 0;
  SecretBytes send_key, send_salt;
  uint32_t recv_ssrc = 0;
  SecretBytes recv_key, recv_salt;
};

// From DeriveSrtpKeys' output for a two-CS bundle (CS 1: the Initiator's
// stream, CS 2: the Responder's): the Initiator sends on CS 1 and receives on
// CS 2, the Responder the other way round. kInvalidArgument unless there are
// exactly two crypto sessions, each with an SSRC.
Result<MediaKeys> PickKeys(const std::vector<ue::SrtpSessionKeys>& keys, bool initiator);

// Protects and sends `packets` RTP packets on keys.send_* to `target`.
Status SendMedia(const UdpSocket& udp, const MediaTarget& target, const MediaKeys& keys, int packets,
                 const std::string& tag);

// One peer whose media is expected: its keys (recv_*) and its payload tag.
struct Inbound {
  MediaKeys keys;
  std::string tag;
  // Filled by ReceiveMedia.
  std::unique_ptr<srtp::SrtpSession> session;
  std::vector<bool> seen;
  int received = 0;
  bool checked_wrong_key = false;
};

// Receives `packets` packets from every peer within `timeout` and checks
// them as described above; prints "who: wrong-key check: ..." once per peer
// and "who: received and decrypted N SRTP packets from <tag>" per peer. A
// datagram that is not RTP or carries an unexpected SSRC ends the wait with
// an error.
Status ReceiveMedia(const UdpSocket& udp, std::vector<Inbound>& peers, int packets,
                    std::chrono::milliseconds timeout, std::FILE* out, const std::string& who);

}  // namespace tkms::ue_cli
