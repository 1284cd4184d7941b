// tkms-ue call, offer, answer, finish (see call.h).
#include "tools/ue_cli/call.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/base/secret_files.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tools/ue/http_client.h"
#include "tools/ue/kms_client.h"
#include "tools/ue/sdp.h"
#include "tools/ue/transfer.h"
#include "tools/ue_cli/media.h"

namespace tkms::ue_cli {
namespace {

using mikey::Bytes;

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

Result<uint32_t> RandomU32(mikey::crypto::CryptoProvider& provider) {
  Bytes b(4);
  TKMS_RETURN_IF_ERROR(provider.Random(b));
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

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

// ---- shared by call and offer / answer / finish -----------------------------------

std::string SsrcText(const mikey::GenericIdEntry& cs) {
  if (cs.session_data.size() < 4) return "-";
  const uint32_t v = (uint32_t{cs.session_data[0]} << 24) | (uint32_t{cs.session_data[1]} << 16) |
                     (uint32_t{cs.session_data[2]} << 8) | cs.session_data[3];
  char ssrc[16];
  std::snprintf(ssrc, sizeof ssrc, "0x%08x", v);
  return ssrc;
}

std::string SpiText(const mikey::GenericIdEntry& cs) { return cs.spi.empty() ? "-" : HexEncode(cs.spi); }

std::string DescribeSession(const ue::TransferSession& s) {
  std::string text = "CSB ID " + std::to_string(s.csb_id) + ";";
  for (const auto& cs : s.crypto_sessions) {
    text += " CS " + std::to_string(cs.cs_id) + " SSRC " + SsrcText(cs) + " SPI " + SpiText(cs) + ";";
  }
  return text;
}

// "cs <id> ssrc 0x<ssrc> spi <hex>" per crypto session.
void PrintCryptoSessions(std::FILE* out, const std::string& who, const ue::TransferSession& s) {
  for (const auto& cs : s.crypto_sessions) {
    PrintLine(out, who, "cs " + std::to_string(cs.cs_id) + " ssrc " + SsrcText(cs) + " spi " + SpiText(cs));
  }
}

Result<ue::KmsClient> KmsAt(const std::string& url, std::chrono::milliseconds timeout) {
  ue::HttpClientOptions options;
  options.timeout = timeout;
  auto http = ue::HttpClient::FromUrl(url, options);
  if (!http.ok()) return http.error();
  return ue::KmsClient(std::move(*http));
}

// The TICKET payload of a decoded TRANSFER_INIT; nullptr if there is none
// (the codec's composition rules require one).
const mikey::TicketPayload* TicketIn(const mikey::Message& m) {
  for (const auto& p : m.payloads) {
    if (const auto* t = std::get_if<mikey::TicketPayload>(&p)) return t;
  }
  return nullptr;
}

// A received TRANSFER_INIT: decoded (map type checked, RFC 6043 §6.1) and its
// ticket policy checked before any KMS is contacted (§4.2.2.2), including the
// F flag this tool needs (the Responder's stream travels in the TRANSFER_RESP).
Result<mikey::Message> AcceptTransferInit(ByteSpan bytes, const std::vector<Bytes>& acceptable) {
  auto message = ue::DecodeTransferInit(bytes);
  if (!message.ok()) return PermissionDenied("TRANSFER_INIT refused: " + message.error().ToString());
  if (auto early = ue::CheckTransferInitEarly(*message, acceptable, ue::NtpUtcNow()); !early.ok()) {
    return PermissionDenied(early.error().ToString());
  }
  const mikey::TicketPayload* ticket = TicketIn(*message);
  if (ticket == nullptr) return PermissionDenied("the TRANSFER_INIT has no TICKET payload");
  if ((ticket->policy.flags & mikey::kFlagF) == 0) {
    return InvalidArgument("the ticket's F flag is 0: no TRANSFER_RESP, so no separate responder stream");
  }
  return std::move(*message);
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

  auto kms = KmsAt(c.responder_kms_url.empty() ? c.kms_url : c.responder_kms_url, c.timeout);
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
  auto kms = KmsAt(c.kms_url, c.timeout);
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

// ---- offer / answer / finish: files ----------------------------------------------------

constexpr size_t kMaxStateBytes = 256 * 1024;
constexpr std::string_view kStateMagic = "tkms-ue-state 2";

Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot open " + path);
  std::string text;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes) return InvalidArgument(path + " is too large");
  }
  if (in.bad()) return Unavailable("cannot read " + path);
  return text;
}

// The other side's SDP file (`what`: "offer" or "answer"): the MIKEY message
// of its a=key-mgmt line and, when media is wanted, its c= / m= target.
struct PeerSdp {
  Bytes mikey;
  std::optional<MediaTarget> media;
};

Result<PeerSdp> ReadPeerSdp(const std::string& path, bool want_media, const std::string& what) {
  auto text = ReadSmallFile(path, ue::kMaxSdpBytes);
  if (!text.ok()) return text.error();
  auto mikey_bytes = ue::ExtractMikeyKeyMgmt(*text);
  if (!mikey_bytes.ok()) return mikey_bytes.error();
  PeerSdp peer;
  peer.mikey = std::move(*mikey_bytes);
  if (want_media) {
    auto target = MediaTargetOf(*text);
    if (!target.ok()) return InvalidArgument("the SDP " + what + "'s media: " + target.error().message());
    peer.media = std::move(*target);
  }
  return peer;
}

// Writes `text` to a new temporary file in the same directory as `path` and
// renames it to `path`: whoever watches `path` sees no file or the whole file.
Status WriteFileAtomically(const std::string& path, std::string_view text) {
  if (path.empty() || path.back() == '/') return InvalidArgument("not a file name: " + path);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Unavailable(ErrnoMessage(("cannot create " + tmp).c_str()));
  Status st = Status::Ok();
  const char* p = text.data();
  size_t n = text.size();
  while (st.ok() && n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      st = Unavailable(ErrnoMessage(("cannot write " + tmp).c_str()));
      break;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  if (st.ok() && ::fsync(fd) != 0) st = Unavailable(ErrnoMessage(("fsync " + tmp).c_str()));
  if (::close(fd) != 0 && st.ok()) st = Unavailable(ErrnoMessage(("close " + tmp).c_str()));
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Unavailable(ErrnoMessage(("cannot rename " + tmp + " to " + path).c_str()));
  }
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

// A free UDP port on 127.0.0.1: bound and released at once (another process
// may take it before it is bound again; the caller's bind would then fail).
Result<uint16_t> PickFreeUdpPort() {
  UdpSocket probe;
  TKMS_RETURN_IF_ERROR(probe.Bind(0));
  return probe.port();
}

// Identities and the KMS identity go into the line-based state file.
Status CheckPrintable(const std::string& value, const std::string& what) {
  if (value.empty()) return InvalidArgument(what + " is empty");
  for (unsigned char ch : value) {
    if (ch < 0x20 || ch == 0x7F) return InvalidArgument(what + " contains a control character");
  }
  return Status::Ok();
}

template <typename T>
std::optional<T> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return std::nullopt;  // no sign, space or prefix
  }
  T value{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// What offer saves for finish (and for a reusing offer). No keys.
struct OfferState {
  std::string initiator, responder, kms_identity;
  bool forking = false, reusable = false;
  uint32_t csb_id = 0;     // the REQUEST_INIT's
  Bytes randri;            // the REQUEST_INIT's
  uint64_t timestamp = 0;  // the REQUEST_INIT's T (NTP-UTC)
  uint64_t valid_to = 0;   // the requested TRe; 0: none requested
  uint16_t rtp_port = 0;   // announced in the offer
  Bytes request_resp;
  Bytes transfer_init;
};

std::string SerializeState(const OfferState& s) {
  std::string text = std::string(kStateMagic) + "\n";
  text += "initiator " + s.initiator + "\n";
  text += "responder " + s.responder + "\n";
  text += "kms_identity " + s.kms_identity + "\n";
  text += std::string("forking ") + (s.forking ? "1" : "0") + "\n";
  text += std::string("reusable ") + (s.reusable ? "1" : "0") + "\n";
  text += "csb_id " + std::to_string(s.csb_id) + "\n";
  text += "randri " + HexEncode(s.randri) + "\n";
  text += "timestamp " + std::to_string(s.timestamp) + "\n";
  text += "valid_to " + std::to_string(s.valid_to) + "\n";
  text += "rtp_port " + std::to_string(s.rtp_port) + "\n";
  text += "request_resp " + HexEncode(s.request_resp) + "\n";
  text += "transfer_init " + HexEncode(s.transfer_init) + "\n";
  return text;
}

Result<OfferState> LoadState(const std::string& path) {
  auto text = ReadSmallFile(path, kMaxStateBytes);
  if (!text.ok()) return text.error();
  std::istringstream in(*text);
  std::string magic;
  std::getline(in, magic);
  if (magic == "tkms-ue-state 1") {
    return InvalidArgument(path + " was written by an earlier tkms-ue (state version 1): make a new offer");
  }
  if (magic != kStateMagic) return InvalidArgument(path + " is not a tkms-ue state file");
  static constexpr std::string_view kKeys[] = {"initiator", "responder", "kms_identity", "forking",
                                               "reusable",  "csb_id",    "randri",       "timestamp",
                                               "valid_to",  "rtp_port",  "request_resp", "transfer_init"};
  std::map<std::string, std::string, std::less<>> fields;
  for (std::string line; std::getline(in, line);) {
    const size_t sp = line.find(' ');
    if (sp == std::string::npos) return InvalidArgument(path + ": malformed state line");
    const std::string key = line.substr(0, sp);
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
      return InvalidArgument(path + ": unknown state field " + key);
    }
    if (!fields.emplace(key, line.substr(sp + 1)).second) return InvalidArgument(path + ": state field " + key + " twice");
  }
  for (std::string_view k : kKeys) {
    if (!fields.contains(k)) return InvalidArgument(path + ": the state file lacks " + std::string(k));
  }
  const auto field = [&](std::string_view k) -> const std::string& { return fields.find(k)->second; };
  OfferState s;
  s.initiator = field("initiator");
  s.responder = field("responder");
  s.kms_identity = field("kms_identity");
  TKMS_RETURN_IF_ERROR(CheckPrintable(s.initiator, path + ": initiator"));
  TKMS_RETURN_IF_ERROR(CheckPrintable(s.responder, path + ": responder"));
  TKMS_RETURN_IF_ERROR(CheckPrintable(s.kms_identity, path + ": kms_identity"));
  for (const char* flag : {"forking", "reusable"}) {
    if (field(flag) != "0" && field(flag) != "1") return InvalidArgument(path + ": " + flag + " must be 0 or 1");
  }
  s.forking = field("forking") == "1";
  s.reusable = field("reusable") == "1";
  const auto csb_id = ParseDecimal<uint32_t>(field("csb_id"));
  const auto timestamp = ParseDecimal<uint64_t>(field("timestamp"));
  const auto valid_to = ParseDecimal<uint64_t>(field("valid_to"));
  const auto rtp_port = ParseDecimal<uint16_t>(field("rtp_port"));
  if (!csb_id || !timestamp || !valid_to || !rtp_port) return InvalidArgument(path + ": bad number in the state file");
  s.csb_id = *csb_id;
  s.timestamp = *timestamp;
  s.valid_to = *valid_to;
  s.rtp_port = *rtp_port;
  auto randri = HexDecode(field("randri"));
  auto request_resp = HexDecode(field("request_resp"));
  auto transfer_init = HexDecode(field("transfer_init"));
  if (!randri || !request_resp || !transfer_init || randri->empty() || request_resp->empty() ||
      transfer_init->empty()) {
    return InvalidArgument(path + ": bad hex in the state file");
  }
  s.randri = std::move(*randri);
  s.request_resp = std::move(*request_resp);
  s.transfer_init = std::move(*transfer_init);
  return s;
}

// The REQUEST_INIT parameters of an offer, everything but the PSK and the
// values fixed by the caller (CSB ID, RANDRi, T).
ue::RequestInitParams OfferRequestParams(const OfferState& s) {
  ue::RequestInitParams rp;
  rp.initiator.id = B(s.initiator);
  rp.kms.id = B(s.kms_identity);
  rp.policy.responders.push_back(ue::IdValue{B(s.responder)});
  if (s.forking) rp.policy.flags |= mikey::kFlagI;
  if (s.reusable) rp.policy.flags |= mikey::kFlagJ;
  if (s.valid_to != 0) rp.policy.valid_to = ue::TsValue{static_cast<uint8_t>(mikey::TsType::kNtpUtc), s.valid_to};
  rp.csb_id = s.csb_id;
  rp.randri = s.randri;
  rp.timestamp.value = s.timestamp;
  return rp;
}

// The grant of a saved offer: its REQUEST_INIT rebuilt with `psk` and the
// saved REQUEST_RESP verified against it.
Result<ue::TicketGrant> RecoverGrant(mikey::crypto::CryptoProvider& provider, const OfferState& s,
                                     const SecretBytes& psk) {
  ue::RequestInitParams rp = OfferRequestParams(s);
  rp.psk = psk;
  auto request = ue::BuildRequestInitPsk(provider, rp);
  if (!request.ok()) return Internal("cannot rebuild the REQUEST_INIT: " + request.error().ToString());
  auto grant = ue::ParseRequestResp(provider, s.request_resp, *request);
  if (!grant.ok()) {
    return PermissionDenied("the saved REQUEST_RESP does not verify with this PSK: " + grant.error().ToString());
  }
  return std::move(*grant);
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

// The saved offer and the grant it proves, for finish and for reuse.
struct RecoveredOffer {
  OfferState state;
  ue::TicketGrant grant;
  ue::TransferInit init;
};

Result<RecoveredOffer> RecoverOffer(mikey::crypto::CryptoProvider& provider, const std::string& path,
                                    const SecretBytes& psk) {
  auto state = LoadState(path);
  if (!state.ok()) return state.error();
  auto grant = RecoverGrant(provider, *state, psk);
  if (!grant.ok()) return grant.error();
  auto init = TransferInitFromBytes(state->transfer_init);
  if (!init.ok()) return init.error();
  if (init->ticket.ticket_data != grant->ticket.ticket_data) {
    return InvalidArgument(path + ": the saved TRANSFER_INIT carries another ticket than the REQUEST_RESP granted");
  }
  return RecoveredOffer{std::move(*state), std::move(*grant), std::move(*init)};
}

// The RTP port to announce: `requested`, or a free one if 0.
Result<uint16_t> AnnouncedPort(uint16_t requested) {
  if (requested != 0) return requested;
  return PickFreeUdpPort();
}

// Writes the new state (exclusively, 0600) and then the SDP offer.
Status WriteOffer(const OfferConfig& c, const OfferState& state, const ue::TransferInit& init,
                  mikey::crypto::CryptoProvider& provider, std::FILE* out) {
  auto session_id = RandomU32(provider);
  if (!session_id.ok()) return session_id.error();
  ue::AudioSdpParams sp;
  sp.session_id = *session_id;
  sp.rtp_port = state.rtp_port;
  auto offer = ue::BuildAudioSdp(sp, init.bytes);
  if (!offer.ok()) return offer.error();
  const std::string text = SerializeState(state);
  TKMS_RETURN_IF_ERROR(WriteSecretFile(c.state_out, SecretBytes(text.begin(), text.end()), "state file"));
  if (Status written = WriteFileAtomically(c.sdp_out, *offer); !written.ok()) {
    ::unlink(c.state_out.c_str());  // created just now (exclusively): no state without its offer
    return written;
  }
  PrintLine(out, "offer", "TRANSFER_INIT (CSB ID " + std::to_string(init.csb_id) + ") written in the SDP offer " +
                              c.sdp_out + " (RTP port " + std::to_string(state.rtp_port) + "); state in " +
                              c.state_out + " (mode 0600)");
  return Status::Ok();
}

Status CheckMediaAndTimeout(int media, std::chrono::milliseconds timeout) {
  if (media < 0 || media > kMaxMediaPackets) {
    return InvalidArgument("--media must be 0-" + std::to_string(kMaxMediaPackets));
  }
  if (timeout.count() <= 0) return InvalidArgument("the timeout must be positive");
  return Status::Ok();
}

// offer --reuse-state: a new TRANSFER_INIT for the saved ticket, no Ticket Request.
Status RunReuseOffer(const OfferConfig& c, std::FILE* out) {
  const std::string who = "offer";
  if (!c.kms_url.empty() || !c.kms_identity.empty() || !c.initiator.empty() || !c.responder.empty() || c.forking ||
      c.reusable || c.ticket_lifetime_s != 0) {
    return InvalidArgument("with --reuse-state the KMS, identities and ticket options come from the saved state");
  }
  mikey::crypto::TransientCryptoProvider provider;
  auto old = RecoverOffer(provider, c.reuse_state, c.initiator_psk);
  if (!old.ok()) return old.error();
  PrintLine(out, who, "saved ticket in " + c.reuse_state + " verified with the PSK (no Ticket Request)");
  if ((old->grant.policy.flags & mikey::kFlagJ) == 0) {
    return PermissionDenied("the ticket in " + c.reuse_state +
                            " is not reusable: its ticket policy's J flag is 0 (RFC 6043 §5.3: it MUST NOT be reused)");
  }
  if (auto period = ue::CheckTicketValidityPeriod(old->grant.policy, ue::NtpUtcNow()); !period.ok()) {
    return PermissionDenied("the ticket in " + c.reuse_state + " cannot be reused: " + period.error().detail);
  }
  // RFC 6043 §5.3: a new CSB ID, timestamp and RANDRi.
  ue::TransferInitParams tp;
  tp.initiator.id = B(old->state.initiator);
  tp.responder.id = B(old->state.responder);
  uint32_t csb_id = old->init.csb_id;
  while (csb_id == old->init.csb_id) {
    auto r = RandomU32(provider);
    if (!r.ok()) return r.error();
    csb_id = *r;
  }
  tp.csb_id = csb_id;
  auto init = ue::BuildTransferInit(provider, old->grant, tp);
  if (!init.ok()) return Internal("cannot build the TRANSFER_INIT: " + init.error().ToString());
  if (init->randri == old->init.randri) return Internal("the new RANDRi equals the old one");
  PrintLine(out, who, "ticket reused for " + old->state.responder + " (reusable: J flag)");

  OfferState state = old->state;
  state.transfer_init = init->bytes;
  auto port = AnnouncedPort(c.rtp_port);
  if (!port.ok()) return port.error();
  state.rtp_port = *port;
  return WriteOffer(c, state, *init, provider, out);
}

}  // namespace

Status RunOffer(const OfferConfig& c, std::FILE* out) {
  const std::string who = "offer";
  if (c.sdp_out.empty() || c.state_out.empty()) return InvalidArgument("--sdp-out and --state-out are needed");
  if (c.initiator_psk.empty()) return InvalidArgument("the Initiator's PSK is needed");
  if (c.timeout.count() <= 0) return InvalidArgument("the timeout must be positive");
  if (!c.reuse_state.empty()) return RunReuseOffer(c, out);
  if (c.kms_url.empty()) return InvalidArgument("--kms is needed (or --reuse-state)");
  TKMS_RETURN_IF_ERROR(CheckPrintable(c.initiator, "--initiator"));
  TKMS_RETURN_IF_ERROR(CheckPrintable(c.responder, "--responder"));
  TKMS_RETURN_IF_ERROR(CheckPrintable(c.kms_identity, "the KMS identity"));
  auto kms = KmsAt(c.kms_url, c.timeout);
  if (!kms.ok()) return kms.error();
  auto port = AnnouncedPort(c.rtp_port);
  if (!port.ok()) return port.error();

  OfferState state;
  state.initiator = c.initiator;
  state.responder = c.responder;
  state.kms_identity = c.kms_identity;
  state.forking = c.forking;
  state.reusable = c.reusable;
  state.rtp_port = *port;
  state.timestamp = ue::NtpUtcNow();
  state.valid_to = c.ticket_lifetime_s == 0 ? 0 : state.timestamp + (uint64_t{c.ticket_lifetime_s} << 32);
  // Fixed here (not drawn inside the library) so that finish can rebuild the
  // identical REQUEST_INIT from the state file and the PSK.
  state.randri.resize(std::max<size_t>(16, c.initiator_psk.size()));
  TKMS_RETURN_IF_ERROR(kms->provider().Random(state.randri));
  auto csb_id = RandomU32(kms->provider());
  if (!csb_id.ok()) return csb_id.error();
  state.csb_id = *csb_id;
  ue::RequestInitParams rp = OfferRequestParams(state);
  rp.psk = c.initiator_psk;
  auto grant = kms->RequestTicket(rp);
  if (!grant.ok()) return Unavailable("ticket request failed: " + grant.error().ToString());
  PrintLine(out, who, "ticket granted by the KMS for " + c.responder +
                          ((grant->policy.flags & mikey::kFlagI) != 0 ? " (forking: I flag)" : "") +
                          ((grant->policy.flags & mikey::kFlagJ) != 0 ? " (reusable: J flag)" : ""));
  if (c.forking && (grant->policy.flags & mikey::kFlagI) == 0) return PermissionDenied("the KMS refused the I flag");
  if (c.reusable && (grant->policy.flags & mikey::kFlagJ) == 0) {
    return PermissionDenied("the KMS refused the J flag (reusable ticket) asked for with --reusable");
  }
  state.request_resp = grant->response;

  ue::TransferInitParams tp;
  tp.initiator.id = B(c.initiator);
  tp.responder.id = B(c.responder);
  auto init = ue::BuildTransferInit(kms->provider(), *grant, tp);
  if (!init.ok()) return Internal("cannot build the TRANSFER_INIT: " + init.error().ToString());
  state.transfer_init = init->bytes;
  return WriteOffer(c, state, *init, kms->provider(), out);
}

Status RunAnswer(const AnswerConfig& c, std::FILE* out) {
  const std::string who = "answer";
  if (c.sdp_in.empty() || c.sdp_out.empty()) return InvalidArgument("--sdp-in and --sdp-out are needed");
  if (c.responder_psk.empty()) return InvalidArgument("the Responder's PSK is needed");
  if (c.responder.empty()) return InvalidArgument("--responder is needed");
  TKMS_RETURN_IF_ERROR(CheckMediaAndTimeout(c.media, c.timeout));
  auto offer = ReadPeerSdp(c.sdp_in, c.media > 0, "offer");
  if (!offer.ok()) return offer.error();
  const Bytes* mikey_bytes = &offer->mikey;
  const std::optional<MediaTarget>& initiator_media = offer->media;
  PrintLine(out, who, "TRANSFER_INIT extracted from the SDP offer (" + std::to_string(mikey_bytes->size()) + " bytes)");
  std::vector<Bytes> acceptable{B(c.responder)};
  if (!c.called_as.empty()) acceptable.push_back(B(c.called_as));
  auto message = AcceptTransferInit(*mikey_bytes, acceptable);
  if (!message.ok()) return message.error();
  PrintLine(out, who, "TRANSFER_INIT ticket policy accepted (O flag, validity, responder identity)");

  auto kms = KmsAt(c.kms_url, c.timeout);
  if (!kms.ok()) return kms.error();
  mikey::crypto::TransientCryptoProvider provider;
  ue::ResolveInitParams rp;
  rp.psk = c.responder_psk;
  rp.responder.id = B(c.responder);
  rp.kms.id = B(c.kms_identity);
  rp.ticket = *TicketIn(*message);
  auto resolved = kms->ResolveTicket(rp);
  if (!resolved.ok()) return Unavailable("ticket resolve failed: " + resolved.error().ToString());
  PrintLine(out, who, std::string("ticket resolved by the KMS") + (resolved->mpkr_forked ? " (forked keys)" : ""));

  ue::TransferRespParams tp;
  tp.responder.id = B(c.responder);
  auto my_ssrc = RandomU32(provider);
  if (!my_ssrc.ok()) return my_ssrc.error();
  tp.add_ssrcs = {*my_ssrc};
  auto resp = ue::BuildTransferResp(provider, *mikey_bytes, *resolved, tp);
  if (!resp.ok()) return PermissionDenied("TRANSFER_INIT refused: " + resp.error().ToString());
  PrintLine(out, who, "TRANSFER_INIT verified");
  auto keys = ue::DeriveSrtpKeys(provider, resp->session);
  if (!keys.ok()) return Internal("DeriveSrtpKeys: " + keys.error().ToString());
  std::optional<MediaKeys> media_keys;
  if (c.media > 0) {
    auto picked = PickKeys(*keys, false);
    if (!picked.ok()) return picked.error();
    media_keys = std::move(*picked);
  }

  // With media the socket is bound before the answer announces its port; a
  // port of 0 is bound (and, without media, released) to pick a free one.
  UdpSocket udp;
  uint16_t port = c.rtp_port;
  if (c.media > 0 || port == 0) {
    TKMS_RETURN_IF_ERROR(udp.Bind(port));
    port = udp.port();
  }
  auto session_id = RandomU32(provider);
  if (!session_id.ok()) return session_id.error();
  ue::AudioSdpParams sp;
  sp.session_id = *session_id;
  sp.rtp_port = port;
  auto answer = ue::BuildAudioSdp(sp, resp->bytes);
  if (!answer.ok()) return answer.error();
  TKMS_RETURN_IF_ERROR(WriteFileAtomically(c.sdp_out, *answer));
  PrintLine(out, who, "TRANSFER_RESP written in the SDP answer " + c.sdp_out + " (RTP port " + std::to_string(port) +
                          "); SRTP keys derived for " + std::to_string(keys->size()) + " crypto sessions");
  PrintCryptoSessions(out, who, resp->session);
  if (c.media == 0) return Status::Ok();

  PrintLine(out, who, "waiting for " + std::to_string(c.media) + " SRTP packets from the initiator on 127.0.0.1:" +
                          std::to_string(port));
  std::vector<Inbound> peers(1);
  peers[0].keys = *media_keys;
  peers[0].tag = "initiator";
  TKMS_RETURN_IF_ERROR(ReceiveMedia(udp, peers, c.media, c.timeout, out, who));
  TKMS_RETURN_IF_ERROR(SendMedia(udp, *initiator_media, *media_keys, c.media, "responder"));
  PrintLine(out, who, "sent " + std::to_string(c.media) + " SRTP packets to the initiator at " + initiator_media->text);
  return Status::Ok();
}

Status RunFinish(const FinishConfig& c, std::FILE* out) {
  const std::string who = "finish";
  if (c.state_in.empty() || c.sdp_in.empty()) return InvalidArgument("--state and --sdp-in are needed");
  if (c.initiator_psk.empty()) return InvalidArgument("the Initiator's PSK is needed");
  TKMS_RETURN_IF_ERROR(CheckMediaAndTimeout(c.media, c.timeout));
  mikey::crypto::TransientCryptoProvider provider;
  auto saved = RecoverOffer(provider, c.state_in, c.initiator_psk);
  if (!saved.ok()) return saved.error();
  if (c.media > 0 && saved->state.rtp_port == 0) return InvalidArgument(c.state_in + " records no RTP port");

  auto answer = ReadPeerSdp(c.sdp_in, c.media > 0, "answer");
  if (!answer.ok()) return answer.error();
  const Bytes* resp = &answer->mikey;
  const std::optional<MediaTarget>& responder_media = answer->media;
  auto session = ue::ParseTransferResp(provider, *resp, saved->grant, saved->init);
  if (!session.ok()) return PermissionDenied("TRANSFER_RESP does not verify: " + session.error().ToString());
  PrintLine(out, who, "TRANSFER_RESP verified");
  auto keys = ue::DeriveSrtpKeys(provider, *session);
  if (!keys.ok()) return Internal("DeriveSrtpKeys: " + keys.error().ToString());
  PrintLine(out, who, "SRTP keys derived for " + std::to_string(keys->size()) + " crypto sessions");
  PrintCryptoSessions(out, who, *session);
  if (c.media == 0) return Status::Ok();

  auto media_keys = PickKeys(*keys, true);
  if (!media_keys.ok()) return media_keys.error();
  UdpSocket udp;
  TKMS_RETURN_IF_ERROR(udp.Bind(saved->state.rtp_port));
  TKMS_RETURN_IF_ERROR(SendMedia(udp, *responder_media, *media_keys, c.media, "initiator"));
  PrintLine(out, who, "sent " + std::to_string(c.media) + " SRTP packets to the responder at " + responder_media->text);
  std::vector<Inbound> peers(1);
  peers[0].keys = std::move(*media_keys);
  peers[0].tag = "responder";
  return ReceiveMedia(udp, peers, c.media, c.timeout, out, who);
}

Result<std::string> DefaultKmsIdentity(const std::string& kms_url) {
  auto url = ue::ParseHttpUrl(kms_url);
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
