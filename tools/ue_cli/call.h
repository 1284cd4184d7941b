// tkms-ue call: one end-to-end MIKEY-TICKET call (RFC 6043 §4.2, TS 33.328)
// between an Initiator and one or more Responder end-points on loopback,
// proven by SRTP media (RFC 3711) in both directions.
//
// Process model: the Initiator runs in the calling process; every Responder
// end-point is a fork()ed child. They share nothing but a socketpair, over
// which the SDP offer (TRANSFER_INIT, RFC 4567 a=key-mgmt:mikey) and the SDP
// answer (TRANSFER_RESP) travel as length-prefixed frames (at most
// ue::kMaxSdpBytes, read with a timeout), standing in for SIP. Each side
// talks to the KMS over its own HTTP connection with its own PSK, derives its
// SRTP keys from its own view (ue::DeriveSrtpKeys) and binds its own UDP
// socket on 127.0.0.1:0, announced in its SDP.
//
// Steps, each printed as one line ("initiator: ..." / "responder N: ..."):
//   1. Initiator: Ticket Request (REQUEST_INIT_PSK) for the Responder (a
//      user or a group; with calls > 1 a reusable ticket, J flag; with a
//      lifetime, TRe = now + lifetime);
//   then, for each of the `calls` calls, steps 2-5 with the same ticket:
//   2. Initiator: TRANSFER_INIT in an SDP offer (one CS: the Initiator's
//      send stream; a new CSB ID and RANDRi per call, RFC 6043 §5.3), sent
//      to every end-point;
//   3. Responder: extracts it, checks its ticket policy before contacting a
//      KMS (RFC 6043 §4.2.2.2: O flag, TRs..TRe, one of its identities is an
//      IDRr, Initiator Data with the I flag; and the F flag, without which
//      there is no TRANSFER_RESP to carry its stream), resolves the ticket with its KMS
//      (responder_kms_url / responder_kms_identity) as responder_identity
//      (its own identity, a member when the ticket is for a group), verifies the
//      TRANSFER_INIT, builds the TRANSFER_RESP (F flag; adds its own send
//      stream as CS 2 with add_ssrcs) in an SDP answer;
//   4. Initiator: verifies each TRANSFER_RESP (ParseTransferResp: with the I
//      flag, each end-point gets its own forked keys);
//   5. media: N RTP packets each way per end-point, protected with the
//      sender's CS; every receiver unprotects them and checks the payload,
//      and first unprotects one packet with a wrong key (one key bit flipped)
//      and requires srtp auth_fail. With several end-points, the Initiator
//      also requires that end-point 1's packet fails with end-point 2's keys
//      (media.h). Media goes to the c= address / m= port of the peer's SDP.
// Keys are never printed: only CS IDs, SSRCs and SPIs.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "web/client/tls_client.h"

namespace tkms::ue_cli {

struct CallConfig {
  std::string kms_url;       // http://host:port or https://host:port
  // https: CA file, optional client certificate and key, for every KMS of
  // the call (the Responder's too).
  web::client::TlsClientOptions tls;
  std::string kms_identity;  // IDRkms ID Data
  std::string initiator;
  SecretBytes initiator_psk;
  std::string responder;      // IDRr of the ticket and TRANSFER_INIT (may be a group)
  SecretBytes responder_psk;
  // The end-point's own identity (IDRr of its RESOLVE_INIT, owner of
  // responder_psk); empty: `responder`.
  std::string responder_identity;
  // The Responder's KMS (URL, IDRkms of its RESOLVE_INIT); empty: kms_url /
  // kms_identity.
  std::string responder_kms_url;
  std::string responder_kms_identity;
  int calls = 1;             // calls made with one ticket (> 1: reusable ticket, J flag)
  uint32_t ticket_lifetime_s = 0;  // > 0: request TRe = now + this; 0: the KMS default
  int packets = 10;          // RTP packets each way per end-point
  bool forking = false;      // request the I flag
  int endpoints = 1;         // Responder end-points (--fork M; M > 1 needs forking)
  std::chrono::milliseconds timeout{5000};  // per SDP frame / media wait
};

// The default KMS identity for a KMS URL: the URL's host, except
// kms.example.org (tkmsd --dev) for loopback hosts.
Result<std::string> DefaultKmsIdentity(const std::string& kms_url);

// Runs the call; progress lines go to `out`. It fork()s one child per
// end-point (which runs the Responder and _exit()s), so call it from a
// single-threaded process (the tkms-ue command line). Ok only if every end-point's
// keys agreed (its media decrypted) and media flowed both ways; otherwise the
// reason.
Status RunCall(const CallConfig& config, std::FILE* out);

// ---- The same call in three steps over files (offer / answer / finish) ----------
//
// For use with a real SIP stack, which carries the SDP files:
// offer (Initiator): Ticket Request (I flag with `forking`, J flag with
//   `reusable`; refused if the KMS does not grant a flag asked for), the
//   TRANSFER_INIT in an SDP offer written to sdp_out, and a state file for
//   finish. With `reuse_state` there is NO Ticket Request: the ticket saved
//   in that earlier state file is re-verified with the PSK exactly as finish
//   does, refused unless its policy has the J flag and now is within its
//   TRs..TRe, and a new TRANSFER_INIT (new CSB ID, RANDRi and timestamp: RFC
//   6043 §5.3) goes into the new offer and a new state file; the identities,
//   flags and KMS identity then all come from the earlier state.
//   The state file holds NO keys: the REQUEST_INIT's public inputs (CSB ID,
//   RANDRi, T, identities, flags, requested TRe), the REQUEST_RESP, the
//   TRANSFER_INIT and the RTP port the offer announced; finish (and reuse)
//   rebuild the identical REQUEST_INIT from them and the Initiator's PSK
//   (read again) and verify the saved REQUEST_RESP to recover the grant. It
//   is still created exclusively with mode 0600 (it holds a ticket), and
//   never overwritten. rtp_port 0: a free port is picked (bound and released)
//   and recorded.
// answer (Responder): reads the offer, checks the ticket policy early (its
//   own identity `responder` or `called_as` must be an IDRr; RFC 6043
//   §4.2.2.2), resolves the ticket with its KMS as `responder`, verifies the
//   TRANSFER_INIT, writes the TRANSFER_RESP (with its own send stream added
//   as CS 2) in an SDP answer (atomically: a temporary file in the same
//   directory, renamed). With media > 0 it binds 127.0.0.1:rtp_port (0: a
//   free port) BEFORE writing the answer, announces that port, prints
//   "answer: waiting for N SRTP packets ...", receives N packets from the
//   Initiator's SSRC (one-bit-wrong-key auth_fail check first) and then sends
//   N packets to the c= address / m= port of the offer.
// finish (Initiator): reads the state and the answer, verifies the
//   TRANSFER_RESP and derives the SRTP keys. With media > 0 it binds the RTP
//   port the offer announced, sends N packets to the answer's c= / m=, and
//   receives and checks N packets from the Responder.
// answer and finish print each crypto session's CS ID, SSRC and SPI (never key
// bytes) as "cs <id> ssrc 0x<ssrc> spi <hex>" lines, which match when both
// sides agree. Media is on 127.0.0.0/8 only.
struct OfferConfig {
  // A new ticket (all of these; none of them with reuse_state):
  std::string kms_url;
  web::client::TlsClientOptions tls;  // https only
  std::string kms_identity;
  std::string initiator;
  std::string responder;
  bool forking = false;            // request the I flag
  bool reusable = false;           // request the J flag
  uint32_t ticket_lifetime_s = 0;  // > 0: request TRe = now + this (saved in the state)
  // Or the ticket of an earlier offer's state file (no Ticket Request).
  std::string reuse_state;
  SecretBytes initiator_psk;
  uint16_t rtp_port = 49170;       // announced in the offer; 0: pick a free one
  std::string sdp_out;
  std::string state_out;
  std::chrono::milliseconds timeout{5000};  // the KMS exchange
};
Status RunOffer(const OfferConfig& config, std::FILE* out);

struct AnswerConfig {
  std::string kms_url;
  web::client::TlsClientOptions tls;  // https only
  std::string kms_identity;
  std::string responder;           // the end-point's own identity (owner of responder_psk)
  std::string called_as;           // also accepted as the ticket's IDRr (e.g. a group); may be empty
  SecretBytes responder_psk;
  uint16_t rtp_port = 49172;       // announced in the answer; 0: pick a free one
  int media = 0;                   // SRTP packets each way; 0: none
  std::string sdp_in;
  std::string sdp_out;
  std::chrono::milliseconds timeout{5000};  // the KMS exchange; the wait for media
};
Status RunAnswer(const AnswerConfig& config, std::FILE* out);

struct FinishConfig {
  std::string state_in;
  SecretBytes initiator_psk;
  std::string sdp_in;
  int media = 0;                   // SRTP packets each way; 0: none
  std::chrono::milliseconds timeout{5000};  // the wait for media
};
Status RunFinish(const FinishConfig& config, std::FILE* out);

}  // namespace tkms::ue_cli
