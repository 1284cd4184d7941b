// tkms-ue call (see call.h).
#include "tools/ue_cli/call.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <random>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/base/secret_files.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tools/srtp/rtp_packet.h"
#include "tools/srtp/srtp_session.h"
#include "tools/ue/http_client.h"
#include "tools/ue/kms_client.h"
#include "tools/ue/sdp.h"
#include "tools/ue/transfer.h"

namespace tkms::ue_cli {
namespace {

using Clock = std::chrono::steady_clock;
using mikey::Bytes;

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

void Line(std::FILE* out, const std::string& who, const std::string& text) {
  std::fprintf(out, "%s: %s\n", who.c_str(), text.c_str());
  std::fflush(out);
}

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

uint32_t RandomU32() {
  std::random_device rd;
  return static_cast<uint32_t>(rd());
}

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

// ---- SDP frames over a socketpair: type byte, 4-byte big-endian length, body.

Status WriteAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Unavailable(Errno("send"));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status WriteFrame(int fd, char type, std::string_view body) {
  if (body.size() > ue::kMaxSdpBytes) return InvalidArgument("frame too long");
  const uint32_t n = static_cast<uint32_t>(body.size());
  const uint8_t head[5] = {static_cast<uint8_t>(type), static_cast<uint8_t>(n >> 24),
                           static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
                           static_cast<uint8_t>(n)};
  TKMS_RETURN_IF_ERROR(WriteAll(fd, head, sizeof head));
  return WriteAll(fd, reinterpret_cast<const uint8_t*>(body.data()), body.size());
}

Status ReadExact(int fd, uint8_t* p, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, RemainingMs(deadline));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Unavailable(Errno("poll"));
    }
    if (r == 0) return Unavailable("timed out waiting for the peer");
    ssize_t got = ::recv(fd, p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return Unavailable(Errno("recv"));
    }
    if (got == 0) return Unavailable("the peer closed the signalling channel");
    p += got;
    n -= static_cast<size_t>(got);
  }
  return Status::Ok();
}

struct Frame {
  char type = 0;
  std::string body;
};

Result<Frame> ReadFrame(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  uint8_t head[5];
  TKMS_RETURN_IF_ERROR(ReadExact(fd, head, sizeof head, deadline));
  const uint32_t n = (uint32_t{head[1]} << 24) | (uint32_t{head[2]} << 16) | (uint32_t{head[3]} << 8) | head[4];
  if (n > ue::kMaxSdpBytes) return InvalidArgument("signalling frame over the SDP size limit");
  Frame f;
  f.type = static_cast<char>(head[0]);
  f.body.resize(n);
  TKMS_RETURN_IF_ERROR(ReadExact(fd, reinterpret_cast<uint8_t*>(f.body.data()), n, deadline));
  return f;
}

// ---- UDP on 127.0.0.1 --------------------------------------------------------

class UdpSocket {
 public:
  UdpSocket() = default;
  ~UdpSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  Status Bind() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return Unavailable(Errno("socket"));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) return Unavailable(Errno("bind"));
    socklen_t len = sizeof a;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) return Unavailable(Errno("getsockname"));
    port_ = ntohs(a.sin_port);
    return Status::Ok();
  }

  Status SendTo(uint16_t port, ByteSpan data) const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    ssize_t w = ::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    if (w < 0 || static_cast<size_t>(w) != data.size()) return Unavailable(Errno("sendto"));
    return Status::Ok();
  }

  // One datagram, or kUnavailable at the deadline.
  Result<Bytes> Receive(Clock::time_point deadline) const {
    for (;;) {
      pollfd pfd{fd_, POLLIN, 0};
      int r = ::poll(&pfd, 1, RemainingMs(deadline));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Unavailable(Errno("poll"));
      if (r == 0) return Unavailable("timed out waiting for media");
      Bytes buf(srtp::kMaxRtpPacketBytes);
      ssize_t got = ::recv(fd_, buf.data(), buf.size(), 0);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return Unavailable(Errno("recv"));
      buf.resize(static_cast<size_t>(got));
      return buf;
    }
  }

  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// ---- keys and media ------------------------------------------------------------

std::string DescribeSession(const ue::TransferSession& s) {
  std::string text = "CSB ID " + std::to_string(s.csb_id) + ";";
  for (const auto& cs : s.crypto_sessions) {
    char ssrc[16] = "-";
    if (cs.session_data.size() >= 4) {
      const uint32_t v = (uint32_t{cs.session_data[0]} << 24) | (uint32_t{cs.session_data[1]} << 16) |
                         (uint32_t{cs.session_data[2]} << 8) | cs.session_data[3];
      std::snprintf(ssrc, sizeof ssrc, "0x%08x", v);
    }
    text += " CS " + std::to_string(cs.cs_id) + " SSRC " + ssrc + " SPI " +
            (cs.spi.empty() ? std::string("-") : HexEncode(cs.spi)) + ";";
  }
  return text;
}

// The send and receive keys of one side: the Initiator sends on CS 1 (its
// stream in the TRANSFER_INIT), the Responder on CS 2 (added to the answer).
struct MediaKeys {
  uint32_t send_ssrc = 0;
  SecretBytes send_key, send_salt;
  uint32_t recv_ssrc = 0;
  SecretBytes recv_key, recv_salt;
};

Result<MediaKeys> PickKeys(const std::vector<ue::SrtpSessionKeys>& keys, bool initiator) {
  if (keys.size() != 2) return InvalidArgument("expected 2 crypto sessions, got " + std::to_string(keys.size()));
  for (const auto& k : keys) {
    if (!k.ssrc) return InvalidArgument("a crypto session has no SSRC");
  }
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

std::string PayloadText(const std::string& tag, uint16_t seq) { return "tkms-ue " + tag + " packet " + std::to_string(seq); }

Status SendMedia(const UdpSocket& udp, uint16_t port, const MediaKeys& keys, int packets, const std::string& tag) {
  auto send = srtp::SrtpSession::Create(srtp::Direction::kSend, keys.send_key, keys.send_salt, keys.send_ssrc);
  if (!send.ok()) return send.error();
  for (int i = 1; i <= packets; ++i) {
    srtp::RtpHeaderFields h;
    h.sequence_number = static_cast<uint16_t>(i);
    h.timestamp = static_cast<uint32_t>(i) * 160;
    h.ssrc = keys.send_ssrc;
    const std::string text = PayloadText(tag, h.sequence_number);
    auto rtp = srtp::BuildRtpPacket(h, B(text));
    if (!rtp.ok()) return rtp.error();
    auto protected_packet = (*send)->Protect(*rtp);
    if (!protected_packet.ok()) return protected_packet.error();
    TKMS_RETURN_IF_ERROR(udp.SendTo(port, *protected_packet));
  }
  return Status::Ok();
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

// One peer's inbound media: its expected SSRC, keys, the tag of its payloads.
struct Inbound {
  MediaKeys keys;
  std::string tag;
  std::unique_ptr<srtp::SrtpSession> session;
  std::vector<bool> seen;
  int received = 0;
  bool checked_wrong_key = false;
};

// Receives `packets` packets from every inbound peer (demultiplexed by SSRC).
// Each peer's first packet is first unprotected with a wrong key (must be
// auth_fail) and, with several peers, with the next peer's keys (must fail).
Status ReceiveMedia(const UdpSocket& udp, std::vector<Inbound>& peers, int packets,
                    std::chrono::milliseconds timeout, std::FILE* out, const std::string& who) {
  for (auto& p : peers) {
    auto s = ReceiveSession(p.keys, false);
    if (!s.ok()) return s.error();
    p.session = std::move(*s);
    p.seen.assign(static_cast<size_t>(packets) + 1, false);
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
    if (index == peers.size()) return InvalidArgument("received a packet with an unknown SSRC");
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
      Line(out, who, text);
      p.checked_wrong_key = true;
    }
    auto plain = p.session->Unprotect(*datagram);
    if (!plain.ok()) return PermissionDenied(p.tag + " media does not decrypt: " + plain.error().message());
    auto rtp = srtp::ParseRtpPacket(*plain);
    if (!rtp.ok()) return InvalidArgument("decrypted packet is not RTP: " + rtp.error().message());
    const uint16_t seq = rtp->header.sequence_number;
    const std::string expected = PayloadText(p.tag, seq);
    if (seq == 0 || seq > packets || p.seen[seq] ||
        std::string_view(reinterpret_cast<const char*>(rtp->payload.data()), rtp->payload.size()) != expected) {
      return InvalidArgument(p.tag + " packet " + std::to_string(seq) + " has an unexpected payload");
    }
    p.seen[seq] = true;
    ++p.received;
    ++done;
  }
  for (const auto& p : peers) {
    Line(out, who, "received and decrypted " + std::to_string(p.received) + " SRTP packets from " + p.tag);
  }
  return Status::Ok();
}

Result<ue::KmsClient> KmsAt(const std::string& url, std::chrono::milliseconds timeout) {
  ue::HttpClientOptions options;
  options.timeout = timeout;
  auto http = ue::HttpClient::FromUrl(url, options);
  if (!http.ok()) return http.error();
  return ue::KmsClient(std::move(*http));
}

Result<ue::KmsClient> Kms(const CallConfig& c) { return KmsAt(c.kms_url, c.timeout); }

const std::string& ResponderIdentity(const CallConfig& c) {
  return c.responder_identity.empty() ? c.responder : c.responder_identity;
}

// TRe = now + lifetime (NTP-UTC), if a lifetime is asked for.
void SetLifetime(ue::DesiredTicketPolicy& policy, uint32_t lifetime_s, uint64_t now) {
  if (lifetime_s == 0) return;
  policy.valid_to = ue::TsValue{static_cast<uint8_t>(mikey::TsType::kNtpUtc), now + (uint64_t{lifetime_s} << 32)};
}

// ---- Responder end-point (a child process) -------------------------------------

Status ResponderOnce(const CallConfig& c, int sock, const std::string& who, const std::string& tag,
                     std::FILE* out) {
  auto offer = ReadFrame(sock, c.timeout * 4);
  if (!offer.ok()) return offer.error();
  if (offer->type != 'O') return InvalidArgument("expected an SDP offer");
  auto mikey_bytes = ue::ExtractMikeyKeyMgmt(offer->body);
  if (!mikey_bytes.ok()) return mikey_bytes.error();
  auto initiator_port = ue::AudioRtpPort(offer->body);
  if (!initiator_port.ok()) return initiator_port.error();
  auto message = mikey::Decode(*mikey_bytes);
  if (!message.ok()) return InvalidArgument("TRANSFER_INIT does not decode: " + message.error().ToString());
  const mikey::TicketPayload* ticket = nullptr;
  for (const auto& p : message->payloads) {
    if (const auto* t = std::get_if<mikey::TicketPayload>(&p)) ticket = t;
  }
  if (ticket == nullptr) return InvalidArgument("the TRANSFER_INIT has no TICKET payload");
  Line(out, who, "TRANSFER_INIT extracted from the SDP offer (" + std::to_string(mikey_bytes->size()) + " bytes)");
  // Early check before contacting the KMS (RFC 6043 §4.2.2.2): the end-point
  // answers as its own identity or as the identity it was called as (a group).
  if (auto early = ue::CheckTransferInitEarly(*message, {B(ResponderIdentity(c)), B(c.responder)}, ue::NtpUtcNow());
      !early.ok()) {
    return PermissionDenied(early.error().ToString());
  }
  Line(out, who, "TRANSFER_INIT ticket policy accepted (O flag, validity, responder identity)");

  auto kms = KmsAt(c.responder_kms_url.empty() ? c.kms_url : c.responder_kms_url, c.timeout);
  if (!kms.ok()) return kms.error();
  mikey::crypto::TransientCryptoProvider provider;
  ue::ResolveInitParams rp;
  rp.psk = c.responder_psk;
  rp.responder.id = B(ResponderIdentity(c));
  rp.kms.id = B(c.responder_kms_identity.empty() ? c.kms_identity : c.responder_kms_identity);
  rp.ticket = *ticket;
  auto resolved = kms->ResolveTicket(rp);
  if (!resolved.ok()) return Unavailable("ticket resolve failed: " + resolved.error().ToString());
  Line(out, who, std::string("ticket resolved by the KMS") + (resolved->mpkr_forked ? " (forked keys)" : ""));

  auto verified = ue::VerifyTransferInit(provider, *mikey_bytes, *resolved);
  if (!verified.ok()) return PermissionDenied("TRANSFER_INIT does not verify: " + verified.error().ToString());
  Line(out, who, "TRANSFER_INIT verified");

  if ((ticket->policy.flags & mikey::kFlagF) == 0) {
    return InvalidArgument("the ticket's F flag is 0: no TRANSFER_RESP, so no separate responder stream");
  }
  UdpSocket udp;
  TKMS_RETURN_IF_ERROR(udp.Bind());
  ue::TransferRespParams tp;
  tp.responder.id = B(ResponderIdentity(c));
  uint32_t my_ssrc = RandomU32();
  tp.add_ssrcs = {my_ssrc};
  auto resp = ue::BuildTransferResp(provider, *mikey_bytes, *resolved, tp);
  if (!resp.ok()) return Internal("cannot build the TRANSFER_RESP: " + resp.error().ToString());
  ue::AudioSdpParams sp;
  sp.session_id = RandomU32();
  sp.rtp_port = udp.port();
  auto answer = ue::BuildAudioSdp(sp, resp->bytes);
  if (!answer.ok()) return answer.error();
  TKMS_RETURN_IF_ERROR(WriteFrame(sock, 'A', *answer));
  Line(out, who, "TRANSFER_RESP sent in the SDP answer (RTP port " + std::to_string(udp.port()) + ")");

  auto keys = ue::DeriveSrtpKeys(provider, resp->session);
  if (!keys.ok()) return Internal("DeriveSrtpKeys: " + keys.error().ToString());
  Line(out, who, "SRTP keys derived: " + DescribeSession(resp->session));
  auto media = PickKeys(*keys, false);
  if (!media.ok()) return media.error();

  TKMS_RETURN_IF_ERROR(SendMedia(udp, *initiator_port, *media, c.packets, tag));
  Line(out, who, "sent " + std::to_string(c.packets) + " SRTP packets");
  std::vector<Inbound> peers(1);
  peers[0].keys = std::move(*media);
  peers[0].tag = "initiator";
  return ReceiveMedia(udp, peers, c.packets, c.timeout, out, who);
}

// Every call of the Responder end-point (one TRANSFER_INIT each).
Status Responder(const CallConfig& c, int sock, const std::string& who, const std::string& tag, std::FILE* out) {
  for (int k = 1; k <= c.calls; ++k) {
    if (c.calls > 1) Line(out, who, "call " + std::to_string(k) + " of " + std::to_string(c.calls));
    TKMS_RETURN_IF_ERROR(ResponderOnce(c, sock, who, tag, out));
  }
  return Status::Ok();
}

// Kills and reaps the children still running when a call ends early.
struct Children {
  std::vector<pid_t> pids;
  std::vector<int> socks;
  ~Children() {
    for (int s : socks) {
      if (s >= 0) ::close(s);
    }
    for (pid_t p : pids) {
      if (p <= 0) continue;
      ::kill(p, SIGKILL);
      int st = 0;
      ::waitpid(p, &st, 0);
    }
  }
};

// One call with the ticket in `grant`: a fresh TRANSFER_INIT (new CSB ID, new
// RANDRi: RFC 6043 §5.3), the answers, media both ways.
Status InitiatorCall(const CallConfig& c, Children& children, ue::KmsClient& kms,
                     mikey::crypto::CryptoProvider& provider, const ue::TicketGrant& grant, std::FILE* out);

Status Initiator(const CallConfig& c, Children& children, std::FILE* out) {
  const std::string who = "initiator";
  const size_t m = children.socks.size();
  auto kms = Kms(c);
  if (!kms.ok()) return kms.error();
  mikey::crypto::TransientCryptoProvider provider;

  ue::RequestInitParams rp;
  rp.psk = c.initiator_psk;
  rp.initiator.id = B(c.initiator);
  rp.kms.id = B(c.kms_identity);
  rp.policy.responders.push_back(ue::IdValue{B(c.responder)});
  if (c.forking) rp.policy.flags |= mikey::kFlagI;
  if (c.calls > 1) rp.policy.flags |= mikey::kFlagJ;
  SetLifetime(rp.policy, c.ticket_lifetime_s, ue::NtpUtcNow());
  auto grant = kms->RequestTicket(rp);
  if (!grant.ok()) return Unavailable("ticket request failed: " + grant.error().ToString());
  Line(out, who, "ticket granted by the KMS for " + c.responder +
                     ((grant->policy.flags & mikey::kFlagI) != 0 ? " (forking: I flag)" : "") +
                     ((grant->policy.flags & mikey::kFlagJ) != 0 ? " (reusable: J flag)" : ""));
  if (c.forking && (grant->policy.flags & mikey::kFlagI) == 0) return PermissionDenied("the KMS refused the I flag");
  if (c.calls > 1 && (grant->policy.flags & mikey::kFlagJ) == 0) {
    return PermissionDenied("the KMS refused the J flag (reusable ticket) needed for --calls > 1");
  }
  for (int k = 1; k <= c.calls; ++k) {
    if (c.calls > 1) Line(out, who, "call " + std::to_string(k) + " of " + std::to_string(c.calls));
    TKMS_RETURN_IF_ERROR(InitiatorCall(c, children, *kms, provider, *grant, out));
  }

  for (size_t e = 0; e < m; ++e) {
    const std::string name = "responder " + std::to_string(e + 1);
    auto result = ReadFrame(children.socks[e], c.timeout * 2);
    if (!result.ok()) return Unavailable(name + ": no result: " + result.error().message());
    if (result->type != 'D') return Unavailable(name + " failed: " + result->body);
    int st = 0;
    pid_t pid = children.pids[e];
    children.pids[e] = -1;
    if (::waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      return Unavailable(name + " exited abnormally");
    }
  }
  return Status::Ok();
}

Status InitiatorCall(const CallConfig& c, Children& children, ue::KmsClient& kms,
                     mikey::crypto::CryptoProvider& provider, const ue::TicketGrant& grant, std::FILE* out) {
  const std::string who = "initiator";
  const size_t m = children.socks.size();
  UdpSocket udp;
  TKMS_RETURN_IF_ERROR(udp.Bind());
  ue::TransferInitParams tp;
  tp.initiator.id = B(c.initiator);
  tp.responder.id = B(c.responder);
  auto init = ue::BuildTransferInit(kms.provider(), grant, tp);
  if (!init.ok()) return Internal("cannot build the TRANSFER_INIT: " + init.error().ToString());
  ue::AudioSdpParams sp;
  sp.session_id = RandomU32();
  sp.rtp_port = udp.port();
  auto offer = ue::BuildAudioSdp(sp, init->bytes);
  if (!offer.ok()) return offer.error();
  for (int s : children.socks) TKMS_RETURN_IF_ERROR(WriteFrame(s, 'O', *offer));
  Line(out, who, "TRANSFER_INIT sent in the SDP offer (CSB ID " + std::to_string(init->csb_id) + ", RTP port " +
                     std::to_string(udp.port()) + ") to " +
                     std::to_string(m) + " end-point(s)");

  std::vector<MediaKeys> endpoint_keys;
  std::vector<uint16_t> ports;
  for (size_t e = 0; e < m; ++e) {
    const std::string name = "responder " + std::to_string(e + 1);
    // The Responder resolves with the KMS first: allow for that.
    auto answer = ReadFrame(children.socks[e], c.timeout * 4);
    if (!answer.ok()) return Unavailable(name + ": no SDP answer: " + answer.error().message());
    if (answer->type == 'F') return Unavailable(name + " failed: " + answer->body);
    if (answer->type != 'A') return InvalidArgument(name + ": expected an SDP answer");
    auto resp = ue::ExtractMikeyKeyMgmt(answer->body);
    if (!resp.ok()) return resp.error();
    auto port = ue::AudioRtpPort(answer->body);
    if (!port.ok()) return port.error();
    auto session = ue::ParseTransferResp(provider, *resp, grant, *init);
    if (!session.ok()) return PermissionDenied(name + ": TRANSFER_RESP does not verify: " + session.error().ToString());
    Line(out, who, "TRANSFER_RESP of " + name + " verified");
    auto keys = ue::DeriveSrtpKeys(provider, *session);
    if (!keys.ok()) return Internal("DeriveSrtpKeys: " + keys.error().ToString());
    Line(out, who, "SRTP keys with " + name + " derived: " + DescribeSession(*session));
    auto media = PickKeys(*keys, true);
    if (!media.ok()) return media.error();
    endpoint_keys.push_back(std::move(*media));
    ports.push_back(*port);
  }
  for (size_t e = 0; e < m; ++e) {
    TKMS_RETURN_IF_ERROR(SendMedia(udp, ports[e], endpoint_keys[e], c.packets, "initiator"));
    Line(out, who, "sent " + std::to_string(c.packets) + " SRTP packets to responder " + std::to_string(e + 1));
  }
  std::vector<Inbound> peers(m);
  for (size_t e = 0; e < m; ++e) {
    peers[e].keys = std::move(endpoint_keys[e]);
    peers[e].tag = "responder " + std::to_string(e + 1);
  }
  return ReceiveMedia(udp, peers, c.packets, c.timeout, out, who);
}


// ---- offer / answer / finish helpers ----------------------------------------------

constexpr size_t kMaxStateBytes = 256 * 1024;
constexpr const char* kStateMagic = "tkms-ue-state 1";

Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot open " + path);
  std::string text;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes) return InvalidArgument(path + " is too large");
  }
  return text;
}

Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return InvalidArgument("cannot create " + path);
  f << text;
  f.close();
  if (!f) return Unavailable("cannot write " + path);
  return Status::Ok();
}

// "cs <id> ssrc 0x<ssrc> spi <hex>" per crypto session.
void PrintCryptoSessions(std::FILE* out, const std::string& who, const ue::TransferSession& s) {
  for (const auto& cs : s.crypto_sessions) {
    char ssrc[16] = "-";
    if (cs.session_data.size() >= 4) {
      const uint32_t v = (uint32_t{cs.session_data[0]} << 24) | (uint32_t{cs.session_data[1]} << 16) |
                         (uint32_t{cs.session_data[2]} << 8) | cs.session_data[3];
      std::snprintf(ssrc, sizeof ssrc, "0x%08x", v);
    }
    Line(out, who, "cs " + std::to_string(cs.cs_id) + " ssrc " + ssrc + " spi " +
                       (cs.spi.empty() ? std::string("-") : HexEncode(cs.spi)));
  }
}

ue::RequestInitParams OfferRequestParams(const std::string& initiator, const std::string& kms_identity,
                                         const std::string& responder, bool forking, uint64_t valid_to) {
  ue::RequestInitParams rp;
  rp.initiator.id = B(initiator);
  rp.kms.id = B(kms_identity);
  rp.policy.responders.push_back(ue::IdValue{B(responder)});
  if (forking) rp.policy.flags |= mikey::kFlagI;
  if (valid_to != 0) rp.policy.valid_to = ue::TsValue{static_cast<uint8_t>(mikey::TsType::kNtpUtc), valid_to};
  return rp;
}

// The Initiator's TransferInit rebuilt from the bytes it sent.
Result<ue::TransferInit> TransferInitFromBytes(const Bytes& bytes) {
  auto message = mikey::Decode(bytes);
  if (!message.ok()) return InvalidArgument("saved TRANSFER_INIT does not decode: " + message.error().ToString());
  ue::TransferInit init;
  init.bytes = bytes;
  init.csb_id = message->header.csb_id;
  bool have_ticket = false, have_rand = false;
  for (const auto& p : message->payloads) {
    if (const auto* t = std::get_if<mikey::TicketPayload>(&p)) {
      init.ticket = *t;
      have_ticket = true;
    }
    if (const auto* r = std::get_if<mikey::RandrPayload>(&p);
        r != nullptr && !have_rand && r->role == static_cast<uint8_t>(mikey::RandRole::kInitiator)) {
      init.randri = r->rand;
      have_rand = true;
    }
  }
  if (!have_ticket || !have_rand) return InvalidArgument("saved TRANSFER_INIT lacks its TICKET or RANDRi");
  init.message = std::move(*message);
  return init;
}

Result<mikey::TicketPayload> TicketOf(const Bytes& transfer_init) {
  auto message = mikey::Decode(transfer_init);
  if (!message.ok()) return InvalidArgument("TRANSFER_INIT does not decode: " + message.error().ToString());
  for (const auto& p : message->payloads) {
    if (const auto* t = std::get_if<mikey::TicketPayload>(&p)) return *t;
  }
  return InvalidArgument("the TRANSFER_INIT has no TICKET payload");
}

}  // namespace

Status RunOffer(const OfferConfig& c, std::FILE* out) {
  const std::string who = "offer";
  if (c.sdp_out.empty() || c.state_out.empty()) return InvalidArgument("--sdp-out and --state-out are needed");
  if (c.initiator_psk.empty()) return InvalidArgument("the Initiator's PSK is needed");
  CallConfig kc;
  kc.kms_url = c.kms_url;
  kc.timeout = c.timeout;
  auto kms = Kms(kc);
  if (!kms.ok()) return kms.error();

  const uint64_t ts = ue::NtpUtcNow();
  const uint64_t valid_to = c.ticket_lifetime_s == 0 ? 0 : ts + (uint64_t{c.ticket_lifetime_s} << 32);
  ue::RequestInitParams rp = OfferRequestParams(c.initiator, c.kms_identity, c.responder, c.forking, valid_to);
  rp.psk = c.initiator_psk;
  // Fixed here (not drawn inside the library) so that finish can rebuild the
  // identical REQUEST_INIT from the state file and the PSK.
  Bytes randri(std::max<size_t>(16, c.initiator_psk.size()));
  TKMS_RETURN_IF_ERROR(kms->provider().Random(randri));
  Bytes csb(4);
  TKMS_RETURN_IF_ERROR(kms->provider().Random(csb));
  const uint32_t csb_id = (uint32_t{csb[0]} << 24) | (uint32_t{csb[1]} << 16) | (uint32_t{csb[2]} << 8) | csb[3];
  rp.csb_id = csb_id;
  rp.randri = randri;
  rp.timestamp.value = ts;
  auto grant = kms->RequestTicket(rp);
  if (!grant.ok()) return Unavailable("ticket request failed: " + grant.error().ToString());
  Line(out, who, "ticket granted by the KMS for " + c.responder);

  ue::TransferInitParams tp;
  tp.initiator.id = B(c.initiator);
  tp.responder.id = B(c.responder);
  auto init = ue::BuildTransferInit(kms->provider(), *grant, tp);
  if (!init.ok()) return Internal("cannot build the TRANSFER_INIT: " + init.error().ToString());
  ue::AudioSdpParams sp;
  sp.session_id = RandomU32();
  sp.rtp_port = c.rtp_port;
  auto offer = ue::BuildAudioSdp(sp, init->bytes);
  if (!offer.ok()) return offer.error();

  std::string state = std::string(kStateMagic) + "\n";
  state += "initiator " + c.initiator + "\n";
  state += "responder " + c.responder + "\n";
  state += "kms_identity " + c.kms_identity + "\n";
  state += std::string("forking ") + (c.forking ? "1" : "0") + "\n";
  state += "csb_id " + std::to_string(csb_id) + "\n";
  state += "randri " + HexEncode(randri) + "\n";
  state += "timestamp " + std::to_string(ts) + "\n";
  state += "valid_to " + std::to_string(valid_to) + "\n";
  state += "request_resp " + HexEncode(grant->response) + "\n";
  state += "transfer_init " + HexEncode(init->bytes) + "\n";
  SecretBytes state_bytes(state.begin(), state.end());
  TKMS_RETURN_IF_ERROR(WriteSecretFile(c.state_out, state_bytes, "state file"));
  TKMS_RETURN_IF_ERROR(WriteTextFile(c.sdp_out, *offer));
  Line(out, who, "TRANSFER_INIT written in the SDP offer " + c.sdp_out + "; state in " + c.state_out + " (mode 0600)");
  return Status::Ok();
}

Status RunAnswer(const AnswerConfig& c, std::FILE* out) {
  const std::string who = "answer";
  if (c.sdp_in.empty() || c.sdp_out.empty()) return InvalidArgument("--sdp-in and --sdp-out are needed");
  auto offer = ReadSmallFile(c.sdp_in, ue::kMaxSdpBytes);
  if (!offer.ok()) return offer.error();
  auto mikey_bytes = ue::ExtractMikeyKeyMgmt(*offer);
  if (!mikey_bytes.ok()) return mikey_bytes.error();
  auto ticket = TicketOf(*mikey_bytes);
  if (!ticket.ok()) return ticket.error();
  Line(out, who, "TRANSFER_INIT extracted from the SDP offer");
  {
    auto message = mikey::Decode(*mikey_bytes);
    if (!message.ok()) return InvalidArgument("TRANSFER_INIT does not decode: " + message.error().ToString());
    if (auto early = ue::CheckTransferInitEarly(*message, {B(c.responder)}, ue::NtpUtcNow()); !early.ok()) {
      return PermissionDenied(early.error().ToString());
    }
    Line(out, who, "TRANSFER_INIT ticket policy accepted (O flag, validity, responder identity)");
  }

  CallConfig kc;
  kc.kms_url = c.kms_url;
  kc.timeout = c.timeout;
  auto kms = Kms(kc);
  if (!kms.ok()) return kms.error();
  mikey::crypto::TransientCryptoProvider provider;
  ue::ResolveInitParams rp;
  rp.psk = c.responder_psk;
  rp.responder.id = B(c.responder);
  rp.kms.id = B(c.kms_identity);
  rp.ticket = *ticket;
  auto resolved = kms->ResolveTicket(rp);
  if (!resolved.ok()) return Unavailable("ticket resolve failed: " + resolved.error().ToString());
  Line(out, who, std::string("ticket resolved by the KMS") + (resolved->mpkr_forked ? " (forked keys)" : ""));
  if ((ticket->policy.flags & mikey::kFlagF) == 0) return InvalidArgument("the ticket's F flag is 0: no TRANSFER_RESP");

  ue::TransferRespParams tp;
  tp.responder.id = B(c.responder);
  tp.add_ssrcs = {RandomU32()};
  auto resp = ue::BuildTransferResp(provider, *mikey_bytes, *resolved, tp);
  if (!resp.ok()) return PermissionDenied("TRANSFER_INIT refused: " + resp.error().ToString());
  Line(out, who, "TRANSFER_INIT verified");
  auto keys = ue::DeriveSrtpKeys(provider, resp->session);
  if (!keys.ok()) return Internal("DeriveSrtpKeys: " + keys.error().ToString());
  ue::AudioSdpParams sp;
  sp.session_id = RandomU32();
  sp.rtp_port = c.rtp_port;
  auto answer = ue::BuildAudioSdp(sp, resp->bytes);
  if (!answer.ok()) return answer.error();
  TKMS_RETURN_IF_ERROR(WriteTextFile(c.sdp_out, *answer));
  Line(out, who, "TRANSFER_RESP written in the SDP answer " + c.sdp_out + "; SRTP keys derived for " +
                     std::to_string(keys->size()) + " crypto sessions");
  PrintCryptoSessions(out, who, resp->session);
  return Status::Ok();
}

Status RunFinish(const FinishConfig& c, std::FILE* out) {
  const std::string who = "finish";
  auto text = ReadSmallFile(c.state_in, kMaxStateBytes);
  if (!text.ok()) return text.error();
  std::istringstream in(*text);
  std::string magic;
  std::getline(in, magic);
  if (magic != kStateMagic) return InvalidArgument(c.state_in + " is not a tkms-ue state file");
  std::map<std::string, std::string> fields;
  for (std::string line; std::getline(in, line);) {
    const size_t sp = line.find(' ');
    if (sp == std::string::npos) return InvalidArgument("malformed state line");
    fields[line.substr(0, sp)] = line.substr(sp + 1);
  }
  for (const char* k : {"initiator", "responder", "kms_identity", "forking", "csb_id", "randri", "timestamp",
                        "request_resp", "transfer_init"}) {
    if (!fields.contains(k)) return InvalidArgument(std::string("state file lacks ") + k);
  }
  auto randri = HexDecode(fields["randri"]);
  auto request_resp = HexDecode(fields["request_resp"]);
  auto transfer_init = HexDecode(fields["transfer_init"]);
  if (!randri || !request_resp || !transfer_init) return InvalidArgument("state file: bad hex");
  uint32_t csb_id = 0;
  uint64_t ts = 0, valid_to = 0;
  try {
    csb_id = static_cast<uint32_t>(std::stoul(fields["csb_id"]));
    ts = std::stoull(fields["timestamp"]);
    if (fields.contains("valid_to")) valid_to = std::stoull(fields["valid_to"]);
  } catch (const std::exception&) {
    return InvalidArgument("state file: bad number");
  }

  mikey::crypto::TransientCryptoProvider provider;
  ue::RequestInitParams rp =
      OfferRequestParams(fields["initiator"], fields["kms_identity"], fields["responder"], fields["forking"] == "1", valid_to);
  rp.psk = c.initiator_psk;
  rp.csb_id = csb_id;
  rp.randri = *randri;
  rp.timestamp.value = ts;
  auto request = ue::BuildRequestInitPsk(provider, rp);
  if (!request.ok()) return Internal("cannot rebuild the REQUEST_INIT: " + request.error().ToString());
  auto grant = ue::ParseRequestResp(provider, *request_resp, *request);
  if (!grant.ok()) return PermissionDenied("the saved REQUEST_RESP does not verify with this PSK: " + grant.error().ToString());
  auto init = TransferInitFromBytes(*transfer_init);
  if (!init.ok()) return init.error();

  auto answer = ReadSmallFile(c.sdp_in, ue::kMaxSdpBytes);
  if (!answer.ok()) return answer.error();
  auto resp = ue::ExtractMikeyKeyMgmt(*answer);
  if (!resp.ok()) return resp.error();
  auto session = ue::ParseTransferResp(provider, *resp, *grant, *init);
  if (!session.ok()) return PermissionDenied("TRANSFER_RESP does not verify: " + session.error().ToString());
  Line(out, who, "TRANSFER_RESP verified");
  auto keys = ue::DeriveSrtpKeys(provider, *session);
  if (!keys.ok()) return Internal("DeriveSrtpKeys: " + keys.error().ToString());
  Line(out, who, "SRTP keys derived for " + std::to_string(keys->size()) + " crypto sessions");
  PrintCryptoSessions(out, who, *session);
  return Status::Ok();
}

namespace {
}  // namespace

Result<std::string> DefaultKmsIdentity(const std::string& kms_url) {
  auto url = ue::ParseHttpUrl(kms_url);
  if (!url.ok()) return url.error();
  if (url->host == "localhost" || url->host == "::1" || url->host.rfind("127.", 0) == 0) {
    return std::string("kms.example.org");
  }
  return url->host;
}

Status RunCall(const CallConfig& c, std::FILE* out) {
  if (c.packets < 1 || c.packets > 10000) return InvalidArgument("--packets must be 1-10000");
  if (c.endpoints < 1 || c.endpoints > 16) return InvalidArgument("--fork must be 1-16");
  if (c.endpoints > 1 && !c.forking) return InvalidArgument("--fork M with M > 1 needs --forking (the I flag)");
  if (c.initiator_psk.empty() || c.responder_psk.empty()) return InvalidArgument("both PSKs are needed");
  if (c.calls < 1 || c.calls > 100) return InvalidArgument("--calls must be 1-100");

  Children children;
  std::fflush(out);
  std::fflush(stderr);
  for (int e = 0; e < c.endpoints; ++e) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Unavailable(Errno("socketpair"));
    pid_t pid = ::fork();
    if (pid < 0) {
      ::close(sv[0]);
      ::close(sv[1]);
      return Unavailable(Errno("fork"));
    }
    if (pid == 0) {
      // The Responder end-point: only its own end of its own channel.
      ::close(sv[0]);
      for (int s : children.socks) ::close(s);
      children.socks.clear();
      children.pids.clear();
      const std::string who = "responder " + std::to_string(e + 1);
      Status st = Responder(c, sv[1], who, who, out);
      if (!st.ok()) Line(out, who, "FAILED: " + st.message());
      (void)WriteFrame(sv[1], st.ok() ? 'D' : 'F', st.ok() ? std::string_view() : std::string_view(st.message()));
      std::fflush(out);
      ::_exit(st.ok() ? 0 : 1);
    }
    ::close(sv[1]);
    children.pids.push_back(pid);
    children.socks.push_back(sv[0]);
  }
  Status st = Initiator(c, children, out);
  if (!st.ok()) return st;
  Line(out, "call", "keys agree and SRTP media flowed both ways with " + std::to_string(c.endpoints) +
                        " end-point(s)");
  return Status::Ok();
}

}  // namespace tkms::ue_cli
