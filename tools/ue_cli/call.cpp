// tkms-ue call: the end-to-end call on loopback (see call.h); the signalling
// frames that stand in for SIP between the Initiator and its fork()ed
// Responder end-points. offer / answer / finish are in offer_answer.cpp.
#include "tools/ue_cli/call.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <string_view>
#include <utility>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/byte_writer.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "web/client/http_client.h"
#include "tools/ue/sdp.h"
#include "tools/ue_cli/cli_common.h"

namespace tkms::ue_cli {
namespace {

using mikey::Bytes;

// ---- SDP frames over a socketpair: type byte, 4-byte big-endian length, body.

Status WriteAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Unavailable(ErrnoMessage("send"));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status WriteFrame(int fd, char type, std::string_view body) {
  if (body.size() > ue::kMaxSdpBytes) return InvalidArgument("frame too long");
  ByteWriter head;
  head.U8(static_cast<uint8_t>(type)).U32(static_cast<uint32_t>(body.size()));
  TKMS_RETURN_IF_ERROR(WriteAll(fd, head.bytes().data(), head.size()));
  return WriteAll(fd, reinterpret_cast<const uint8_t*>(body.data()), body.size());
}

Status ReadExact(int fd, uint8_t* p, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, RemainingMs(deadline));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Unavailable(ErrnoMessage("poll"));
    }
    if (r == 0) return Unavailable("timed out waiting for the peer");
    ssize_t got = ::recv(fd, p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return Unavailable(ErrnoMessage("recv"));
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
  std::array<uint8_t, 5> head{};
  TKMS_RETURN_IF_ERROR(ReadExact(fd, head.data(), head.size(), deadline));
  ByteReader r(head);
  uint8_t type = 0;
  uint32_t n = 0;
  if (!r.ReadU8(type) || !r.ReadU32(n)) return Internal("signalling frame header");
  if (n > ue::kMaxSdpBytes) return InvalidArgument("signalling frame over the SDP size limit");
  Frame f;
  f.type = static_cast<char>(type);
  f.body.resize(n);
  TKMS_RETURN_IF_ERROR(ReadExact(fd, reinterpret_cast<uint8_t*>(f.body.data()), n, deadline));
  return f;
}

// ---- call: Responder end-point (a child process) ------------------------------------

const std::string& ResponderIdentity(const CallConfig& c) {
  return c.responder_identity.empty() ? c.responder : c.responder_identity;
}

Status ResponderOnce(const CallConfig& c, int sock, const std::string& who, const std::string& tag,
                     std::FILE* out) {
  auto offer = ReadFrame(sock, c.timeout * 4);
  if (!offer.ok()) return offer.error();
  if (offer->type != 'O') return InvalidArgument("expected an SDP offer");
  auto mikey_bytes = ue::ExtractMikeyKeyMgmt(offer->body);
  if (!mikey_bytes.ok()) return mikey_bytes.error();
  auto initiator_media = MediaTargetOf(offer->body);
  if (!initiator_media.ok()) return initiator_media.error();
  PrintLine(out, who, "TRANSFER_INIT extracted from the SDP offer (" + std::to_string(mikey_bytes->size()) + " bytes)");
  // The end-point answers as its own identity or as the identity it was
  // called as (a group).
  auto message = AcceptTransferInit(*mikey_bytes, {B(ResponderIdentity(c)), B(c.responder)});
  if (!message.ok()) return message.error();
  PrintLine(out, who, "TRANSFER_INIT ticket policy accepted (O flag, validity, responder identity)");

  auto kms = KmsAt(c.responder_kms_url.empty() ? c.kms_url : c.responder_kms_url, c.timeout, c.tls);
  if (!kms.ok()) return kms.error();
  mikey::crypto::TransientCryptoProvider provider;
  ue::ResolveInitParams rp;
  rp.psk = c.responder_psk;
  rp.responder.id = B(ResponderIdentity(c));
  rp.kms.id = B(c.responder_kms_identity.empty() ? c.kms_identity : c.responder_kms_identity);
  rp.ticket = *TicketIn(*message);
  auto resolved = kms->ResolveTicket(rp);
  if (!resolved.ok()) return Unavailable("ticket resolve failed: " + resolved.error().ToString());
  PrintLine(out, who, std::string("ticket resolved by the KMS") + (resolved->mpkr_forked ? " (forked keys)" : ""));

  UdpSocket udp;
  TKMS_RETURN_IF_ERROR(udp.Bind());
  ue::TransferRespParams tp;
  tp.responder.id = B(ResponderIdentity(c));
  auto my_ssrc = RandomU32(provider);
  if (!my_ssrc.ok()) return my_ssrc.error();
  tp.add_ssrcs = {*my_ssrc};
  // Verifies the TRANSFER_INIT first (RFC 6043 §4.2.3.6).
  auto resp = ue::BuildTransferResp(provider, *mikey_bytes, *resolved, tp);
  if (!resp.ok()) return PermissionDenied("TRANSFER_INIT refused: " + resp.error().ToString());
  PrintLine(out, who, "TRANSFER_INIT verified");
  auto session_id = RandomU32(provider);
  if (!session_id.ok()) return session_id.error();
  ue::AudioSdpParams sp;
  sp.session_id = *session_id;
  sp.rtp_port = udp.port();
  auto answer = ue::BuildAudioSdp(sp, resp->bytes);
  if (!answer.ok()) return answer.error();
  TKMS_RETURN_IF_ERROR(WriteFrame(sock, 'A', *answer));
  PrintLine(out, who, "TRANSFER_RESP sent in the SDP answer (RTP port " + std::to_string(udp.port()) + ")");

  auto keys = ue::DeriveSrtpKeys(provider, resp->session);
  if (!keys.ok()) return Internal("DeriveSrtpKeys: " + keys.error().ToString());
  PrintLine(out, who, "SRTP keys derived: " + DescribeSession(resp->session));
  auto media = PickKeys(*keys, false);
  if (!media.ok()) return media.error();

  TKMS_RETURN_IF_ERROR(SendMedia(udp, *initiator_media, *media, c.packets, tag));
  PrintLine(out, who, "sent " + std::to_string(c.packets) + " SRTP packets");
  std::vector<Inbound> peers(1);
  peers[0].keys = std::move(*media);
  peers[0].tag = "initiator";
  return ReceiveMedia(udp, peers, c.packets, c.timeout, out, who);
}

// Every call of the Responder end-point (one TRANSFER_INIT each).
Status Responder(const CallConfig& c, int sock, const std::string& who, const std::string& tag, std::FILE* out) {
  for (int k = 1; k <= c.calls; ++k) {
    if (c.calls > 1) PrintLine(out, who, "call " + std::to_string(k) + " of " + std::to_string(c.calls));
    TKMS_RETURN_IF_ERROR(ResponderOnce(c, sock, who, tag, out));
  }
  return Status::Ok();
}

// Kills and reaps the children still running when a call ends early.
struct Children {
  std::vector<pid_t> pids;
  std::vector<int> socks;
  Children() = default;
  Children(const Children&) = delete;
  Children& operator=(const Children&) = delete;
  ~Children() {
    for (int s : socks) {
      if (s >= 0) ::close(s);
    }
    for (pid_t p : pids) {
      if (p <= 0) continue;
      ::kill(p, SIGKILL);
      int st = 0;
      while (::waitpid(p, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
};

// ---- call: Initiator ----------------------------------------------------------------

// One call with the ticket in `grant`: a fresh TRANSFER_INIT (new CSB ID, new
// RANDRi: RFC 6043 §5.3), the answers, media both ways.
Status InitiatorCall(const CallConfig& c, Children& children, mikey::crypto::CryptoProvider& provider,
                     const ue::TicketGrant& grant, std::FILE* out) {
  const std::string who = "initiator";
  const size_t m = children.socks.size();
  UdpSocket udp;
  TKMS_RETURN_IF_ERROR(udp.Bind());
  ue::TransferInitParams tp;
  tp.initiator.id = B(c.initiator);
  tp.responder.id = B(c.responder);
  auto init = ue::BuildTransferInit(provider, grant, tp);
  if (!init.ok()) return Internal("cannot build the TRANSFER_INIT: " + init.error().ToString());
  auto session_id = RandomU32(provider);
  if (!session_id.ok()) return session_id.error();
  ue::AudioSdpParams sp;
  sp.session_id = *session_id;
  sp.rtp_port = udp.port();
  auto offer = ue::BuildAudioSdp(sp, init->bytes);
  if (!offer.ok()) return offer.error();
  for (int s : children.socks) TKMS_RETURN_IF_ERROR(WriteFrame(s, 'O', *offer));
  PrintLine(out, who, "TRANSFER_INIT sent in the SDP offer (CSB ID " + std::to_string(init->csb_id) + ", RTP port " +
                          std::to_string(udp.port()) + ") to " + std::to_string(m) + " end-point(s)");

  std::vector<MediaKeys> endpoint_keys;
  std::vector<MediaTarget> targets;
  for (size_t e = 0; e < m; ++e) {
    const std::string name = "responder " + std::to_string(e + 1);
    // The Responder resolves with the KMS first: allow for that.
    auto answer = ReadFrame(children.socks[e], c.timeout * 4);
    if (!answer.ok()) return Unavailable(name + ": no SDP answer: " + answer.error().message());
    if (answer->type == 'F') return Unavailable(name + " failed: " + answer->body);
    if (answer->type != 'A') return InvalidArgument(name + ": expected an SDP answer");
    auto resp = ue::ExtractMikeyKeyMgmt(answer->body);
    if (!resp.ok()) return resp.error();
    auto target = MediaTargetOf(answer->body);
    if (!target.ok()) return target.error();
    auto session = ue::ParseTransferResp(provider, *resp, grant, *init);
    if (!session.ok()) return PermissionDenied(name + ": TRANSFER_RESP does not verify: " + session.error().ToString());
    PrintLine(out, who, "TRANSFER_RESP of " + name + " verified");
    auto keys = ue::DeriveSrtpKeys(provider, *session);
    if (!keys.ok()) return Internal("DeriveSrtpKeys: " + keys.error().ToString());
    PrintLine(out, who, "SRTP keys with " + name + " derived: " + DescribeSession(*session));
    auto media = PickKeys(*keys, true);
    if (!media.ok()) return media.error();
    endpoint_keys.push_back(std::move(*media));
    targets.push_back(std::move(*target));
  }
  for (size_t e = 0; e < m; ++e) {
    TKMS_RETURN_IF_ERROR(SendMedia(udp, targets[e], endpoint_keys[e], c.packets, "initiator"));
    PrintLine(out, who, "sent " + std::to_string(c.packets) + " SRTP packets to responder " + std::to_string(e + 1));
  }
  std::vector<Inbound> peers(m);
  for (size_t e = 0; e < m; ++e) {
    peers[e].keys = std::move(endpoint_keys[e]);
    peers[e].tag = "responder " + std::to_string(e + 1);
  }
  return ReceiveMedia(udp, peers, c.packets, c.timeout, out, who);
}

Status Initiator(const CallConfig& c, Children& children, std::FILE* out) {
  const std::string who = "initiator";
  const size_t m = children.socks.size();
  auto kms = KmsAt(c.kms_url, c.timeout, c.tls);
  if (!kms.ok()) return kms.error();
  mikey::crypto::TransientCryptoProvider provider;

  ue::RequestInitParams rp;
  rp.psk = c.initiator_psk;
  rp.initiator.id = B(c.initiator);
  rp.kms.id = B(c.kms_identity);
  rp.policy.responders.push_back(ue::IdValue{B(c.responder)});
  if (c.forking) rp.policy.flags |= mikey::kFlagI;
  if (c.calls > 1) rp.policy.flags |= mikey::kFlagJ;
  if (c.ticket_lifetime_s > 0) {
    rp.policy.valid_to = ue::TsValue{static_cast<uint8_t>(mikey::TsType::kNtpUtc),
                                     ue::NtpUtcNow() + (uint64_t{c.ticket_lifetime_s} << 32)};
  }
  auto grant = kms->RequestTicket(rp);
  if (!grant.ok()) return Unavailable("ticket request failed: " + grant.error().ToString());
  PrintLine(out, who, "ticket granted by the KMS for " + c.responder +
                          ((grant->policy.flags & mikey::kFlagI) != 0 ? " (forking: I flag)" : "") +
                          ((grant->policy.flags & mikey::kFlagJ) != 0 ? " (reusable: J flag)" : ""));
  if (c.forking && (grant->policy.flags & mikey::kFlagI) == 0) return PermissionDenied("the KMS refused the I flag");
  if (c.calls > 1 && (grant->policy.flags & mikey::kFlagJ) == 0) {
    return PermissionDenied("the KMS refused the J flag (reusable ticket) needed for --calls > 1");
  }
  for (int k = 1; k <= c.calls; ++k) {
    if (c.calls > 1) PrintLine(out, who, "call " + std::to_string(k) + " of " + std::to_string(c.calls));
    TKMS_RETURN_IF_ERROR(InitiatorCall(c, children, provider, *grant, out));
  }

  for (size_t e = 0; e < m; ++e) {
    const std::string name = "responder " + std::to_string(e + 1);
    auto result = ReadFrame(children.socks[e], c.timeout * 2);
    if (!result.ok()) return Unavailable(name + ": no result: " + result.error().message());
    if (result->type != 'D') return Unavailable(name + " failed: " + result->body);
    int st = 0;
    const pid_t pid = children.pids[e];
    children.pids[e] = -1;
    pid_t waited;
    while ((waited = ::waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
    }
    if (waited != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return Unavailable(name + " exited abnormally");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> DefaultKmsIdentity(const std::string& kms_url) {
  auto url = web::client::ParseHttpUrl(kms_url);
  if (!url.ok()) return url.error();
  if (url->host == "localhost" || url->host == "::1" || url->host.rfind("127.", 0) == 0) {
    return std::string("kms.example.org");
  }
  return url->host;
}

Status RunCall(const CallConfig& c, std::FILE* out) {
  if (c.packets < 1 || c.packets > kMaxMediaPackets) {
    return InvalidArgument("--packets must be 1-" + std::to_string(kMaxMediaPackets));
  }
  if (c.endpoints < 1 || c.endpoints > 16) return InvalidArgument("--fork must be 1-16");
  if (c.endpoints > 1 && !c.forking) return InvalidArgument("--fork M with M > 1 needs --forking (the I flag)");
  if (c.initiator_psk.empty() || c.responder_psk.empty()) return InvalidArgument("both PSKs are needed");
  if (c.calls < 1 || c.calls > 100) return InvalidArgument("--calls must be 1-100");
  if (c.timeout.count() <= 0) return InvalidArgument("the timeout must be positive");

  Children children;
  std::fflush(out);
  std::fflush(stderr);
  for (int e = 0; e < c.endpoints; ++e) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Unavailable(ErrnoMessage("socketpair"));
    pid_t pid = ::fork();
    if (pid < 0) {
      ::close(sv[0]);
      ::close(sv[1]);
      return Unavailable(ErrnoMessage("fork"));
    }
    if (pid == 0) {
      // The Responder end-point: only its own end of its own channel. It
      // leaves with _exit(), so the parent's Children is never destroyed here.
      ::close(sv[0]);
      for (int s : children.socks) ::close(s);
      children.socks.clear();
      children.pids.clear();
      const std::string who = "responder " + std::to_string(e + 1);
      Status st = Responder(c, sv[1], who, who, out);
      if (!st.ok()) PrintLine(out, who, "FAILED: " + st.message());
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
  PrintLine(out, "call", "keys agree and SRTP media flowed both ways with " + std::to_string(c.endpoints) +
                             " end-point(s)");
  return Status::Ok();
}

}  // namespace tkms::ue_cli
