// SRTP media for tkms-ue (see media.h).
#include "tools/ue_cli/media.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include "tools/srtp/rtp_packet.h"
#include "tools/ue/sdp.h"

namespace tkms::ue_cli {
namespace {

using mikey::Bytes;

std::string PayloadText(const std::string& tag, uint16_t seq) {
  return "tkms-ue " + tag + " packet " + std::to_string(seq);
}

// A receive session for `keys`' receive side, with one key bit flipped if asked.
Result<std::unique_ptr<srtp::SrtpSession>> ReceiveSession(const MediaKeys& keys, bool flip_bit) {
  SecretBytes key = keys.recv_key;
  if (flip_bit && !key.empty()) key[0] ^= 0x01;
  return srtp::SrtpSession::Create(srtp::Direction::kReceive, key, keys.recv_salt, std::nullopt);
}

Status ExpectAuthFail(srtp::SrtpSession& session, ByteSpan packet, const std::string& what) {
  auto r = session.Unprotect(packet);
  if (r.ok()) return PermissionDenied(what + ": the packet decrypted (it must not)");
  if (r.error().message().find("auth_fail") == std::string::npos) {
    return PermissionDenied(what + ": expected auth_fail, got " + r.error().message());
  }
  return Status::Ok();
}

}  // namespace

std::string ErrnoMessage(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

void PrintLine(std::FILE* out, const std::string& who, const std::string& text) {
  std::fprintf(out, "%s: %s\n", who.c_str(), text.c_str());
  std::fflush(out);
}

int RemainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left >= INT_MAX ? INT_MAX : static_cast<int>(left);
}

Result<MediaTarget> MediaTargetOf(std::string_view sdp) {
  auto port = ue::AudioRtpPort(sdp);
  if (!port.ok()) return port.error();
  auto address = ue::AudioConnectionAddress(sdp);
  if (!address.ok()) return address.error();
  in_addr a{};
  if (::inet_pton(AF_INET, address->c_str(), &a) != 1) return InvalidArgument("bad c= address " + *address);
  MediaTarget t;
  t.address = ntohl(a.s_addr);
  if ((t.address & 0xFF000000u) != 0x7F000000u) {  // 127.0.0.0/8
    return InvalidArgument("the media address " + *address + " is not in 127.0.0.0/8 (tkms-ue sends media on loopback only)");
  }
  t.port = *port;
  t.text = *address + ":" + std::to_string(*port);
  return t;
}

// ---- UdpSocket -------------------------------------------------------------------

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

Status UdpSocket::Bind(uint16_t port) {
  if (fd_ >= 0) return FailedPrecondition("the UDP socket is already bound");
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Unavailable(ErrnoMessage("socket"));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    return Unavailable(ErrnoMessage(("bind 127.0.0.1:" + std::to_string(port)).c_str()));
  }
  socklen_t len = sizeof a;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) return Unavailable(ErrnoMessage("getsockname"));
  port_ = ntohs(a.sin_port);
  return Status::Ok();
}

Status UdpSocket::SendTo(const MediaTarget& target, ByteSpan data) const {
  if (fd_ < 0) return FailedPrecondition("the UDP socket is not bound");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(target.address);
  a.sin_port = htons(target.port);
  for (;;) {
    const ssize_t w =
        ::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Unavailable(ErrnoMessage(("sendto " + target.text).c_str()));
    if (static_cast<size_t>(w) != data.size()) return Unavailable("sendto " + target.text + ": short write");
    return Status::Ok();
  }
}

Result<Bytes> UdpSocket::Receive(Clock::time_point deadline) const {
  if (fd_ < 0) return FailedPrecondition("the UDP socket is not bound");
  Bytes buf(srtp::kMaxRtpPacketBytes);
  for (;;) {
    pollfd pfd{fd_, POLLIN, 0};
    const int r = ::poll(&pfd, 1, RemainingMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Unavailable(ErrnoMessage("poll"));
    if (r == 0) return Unavailable("timed out waiting for media");
    const ssize_t got = ::recv(fd_, buf.data(), buf.size(), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Unavailable(ErrnoMessage("recv"));
    buf.resize(static_cast<size_t>(got));
    return buf;
  }
}

// ---- keys and media ----------------------------------------------------------------

Result<MediaKeys> PickKeys(const std::vector<ue::SrtpSessionKeys>& keys, bool initiator) {
  if (keys.size() != 2) return InvalidArgument("expected 2 crypto sessions, got " + std::to_string(keys.size()));
  for (const auto& k : keys) {
    if (!k.ssrc) return InvalidArgument("crypto session " + std::to_string(k.cs_id) + " has no SSRC");
  }
  if (*keys[0].ssrc == *keys[1].ssrc) return InvalidArgument("both crypto sessions have the same SSRC");
  const auto& mine = initiator ? keys[0] : keys[1];
  const auto& peer = initiator ? keys[1] : keys[0];
  MediaKeys m;
  m.send_ssrc = *mine.ssrc;
  m.send_key = mine.master_key;
  m.send_salt = mine.master_salt;
  m.recv_ssrc = *peer.ssrc;
  m.recv_key = peer.master_key;
  m.recv_salt = peer.master_salt;
  return m;
}

Status SendMedia(const UdpSocket& udp, const MediaTarget& target, const MediaKeys& keys, int packets,
                 const std::string& tag) {
  if (packets < 1 || packets > kMaxMediaPackets) return InvalidArgument("packet count out of range");
  auto send = srtp::SrtpSession::Create(srtp::Direction::kSend, keys.send_key, keys.send_salt, keys.send_ssrc);
  if (!send.ok()) return send.error();
  for (int i = 1; i <= packets; ++i) {
    srtp::RtpHeaderFields h;
    h.sequence_number = static_cast<uint16_t>(i);
    h.timestamp = static_cast<uint32_t>(i) * 160;
    h.ssrc = keys.send_ssrc;
    const std::string text = PayloadText(tag, h.sequence_number);
    auto rtp = srtp::BuildRtpPacket(h, ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    if (!rtp.ok()) return rtp.error();
    auto protected_packet = (*send)->Protect(*rtp);
    if (!protected_packet.ok()) return protected_packet.error();
    TKMS_RETURN_IF_ERROR(udp.SendTo(target, *protected_packet));
  }
  return Status::Ok();
}

Status ReceiveMedia(const UdpSocket& udp, std::vector<Inbound>& peers, int packets,
                    std::chrono::milliseconds timeout, std::FILE* out, const std::string& who) {
  if (packets < 1 || packets > kMaxMediaPackets) return InvalidArgument("packet count out of range");
  if (peers.empty()) return InvalidArgument("no peer to receive media from");
  for (auto& p : peers) {
    auto s = ReceiveSession(p.keys, false);
    if (!s.ok()) return s.error();
    p.session = std::move(*s);
    p.seen.assign(static_cast<size_t>(packets) + 1, false);
    p.received = 0;
    p.checked_wrong_key = false;
  }
  const auto deadline = Clock::now() + timeout;
  const int total = packets * static_cast<int>(peers.size());
  int done = 0;
  while (done < total) {
    auto datagram = udp.Receive(deadline);
    if (!datagram.ok()) {
      return Unavailable(datagram.error().message() + " (" + std::to_string(done) + " of " + std::to_string(total) +
                         " packets received)");
    }
    auto header = srtp::ParseRtpHeader(*datagram);
    if (!header.ok()) return InvalidArgument("received a non-RTP datagram: " + header.error().message());
    size_t index = peers.size();
    for (size_t i = 0; i < peers.size(); ++i) {
      if (peers[i].keys.recv_ssrc == header->ssrc) index = i;
    }
    if (index == peers.size()) {
      char ssrc[16];
      std::snprintf(ssrc, sizeof ssrc, "0x%08x", header->ssrc);
      return InvalidArgument(std::string("received a packet with an unexpected SSRC ") + ssrc);
    }
    Inbound& p = peers[index];
    if (!p.checked_wrong_key) {
      auto wrong = ReceiveSession(p.keys, true);
      if (!wrong.ok()) return wrong.error();
      TKMS_RETURN_IF_ERROR(ExpectAuthFail(**wrong, *datagram, p.tag + " with a wrong key"));
      std::string text = "wrong-key check: " + p.tag + " packet refused with auth_fail";
      if (peers.size() > 1) {
        const Inbound& other = peers[(index + 1) % peers.size()];
        auto cross = ReceiveSession(other.keys, false);
        if (!cross.ok()) return cross.error();
        TKMS_RETURN_IF_ERROR(ExpectAuthFail(**cross, *datagram, p.tag + " with " + other.tag + "'s keys"));
        text += "; refused with " + other.tag + "'s keys too";
      }
      PrintLine(out, who, text);
      p.checked_wrong_key = true;
    }
    auto plain = p.session->Unprotect(*datagram);
    if (!plain.ok()) return PermissionDenied(p.tag + " media does not decrypt: " + plain.error().message());
    auto rtp = srtp::ParseRtpPacket(*plain);
    if (!rtp.ok()) return InvalidArgument("decrypted packet is not RTP: " + rtp.error().message());
    const uint16_t seq = rtp->header.sequence_number;
    if (seq == 0 || seq > packets || p.seen[seq] ||
        std::string_view(reinterpret_cast<const char*>(rtp->payload.data()), rtp->payload.size()) !=
            PayloadText(p.tag, seq)) {
      return InvalidArgument(p.tag + " packet " + std::to_string(seq) + " has an unexpected payload");
    }
    p.seen[seq] = true;
    ++p.received;
    ++done;
  }
  for (const auto& p : peers) {
    PrintLine(out, who, "received and decrypted " + std::to_string(p.received) + " SRTP packets from " + p.tag);
  }
  return Status::Ok();
}

}  // namespace tkms::ue_cli
