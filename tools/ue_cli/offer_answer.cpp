// tkms-ue offer / answer / finish: the call of call.h in three steps over
// SDP files and a state file (RFC 6043 §4.2.1-§4.2.3, RFC 4567), for a real
// SIP stack that carries the files. The state file's format and reader are
// in state_file.h.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "firmware/base/secret_files.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tools/ue/sdp.h"
#include "tools/ue_cli/call.h"
#include "tools/ue_cli/cli_common.h"
#include "tools/ue_cli/state_file.h"

namespace tkms::ue_cli {
namespace {

using mikey::Bytes;

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

Result<OfferState> LoadState(const std::string& path) {
  auto text = ReadSmallFile(path, kMaxStateBytes);
  if (!text.ok()) return text.error();
  return ParseState(*text, path);
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
  auto kms = KmsAt(c.kms_url, c.timeout, c.tls);
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
  {
    // As long as the PSK and any key asked for (RFC 6043 §12.1, ticket_client.h reading 4).
    ue::RequestInitParams sizing = OfferRequestParams(state);
    sizing.psk = c.initiator_psk;
    state.randri.resize(ue::RequestRandLength(sizing));
  }
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

  auto kms = KmsAt(c.kms_url, c.timeout, c.tls);
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

}  // namespace tkms::ue_cli
