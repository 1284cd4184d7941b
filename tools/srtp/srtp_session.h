// SrtpSession: one direction of SRTP (RFC 3711) media protection over
// libsrtp2, keyed with the master key and master salt MIKEY produced
// (firmware/mikey/crypto/srtp_keys.h: TEK = SRTP master key, RFC 3830
// §4.1.3 / RFC 6043 §5.1.3).
//
// Why: the end-to-end proof that two UEs got matching keys from the KMS is
// real SRTP media: one side protects RTP with its keys, the other unprotects
// it with its own, and any difference in a single key or salt bit fails the
// HMAC check (RFC 3711 §3.4, §4.2) with srtp_err_status_auth_fail.
//
// Model:
//   - a session is one direction (kSend: srtp_protect only; kReceive:
//     srtp_unprotect only) of one crypto session. A call uses two per UE: its
//     own send keys and the peer's. The same master key must never protect
//     two directions with one SSRC (RFC 3711 §9.1: keystream reuse).
//   - profiles (RFC 4568 §6.2.1 names, RFC 3711 §8.2 parameters):
//       kAesCm128HmacSha1_80  AES-128 CM, HMAC-SHA1 80-bit tag (default)
//       kAesCm128HmacSha1_32  AES-128 CM, HMAC-SHA1 32-bit tag
//     Both take a 16-byte master key and a 14-byte (112-bit) master salt;
//     the key derivation rate is 0 and there is no MKI: the RFC 3711 §8.2
//     defaults, which a MIKEY SRTP policy falls back to for every parameter
//     it does not set (RFC 3830 §6.10.1). A policy with another KDR, MKI or
//     AES-256 master keys (RFC 6188) is not supported here.
//   - SSRC: a send session is bound to one specific SSRC (a packet with
//     another SSRC fails with srtp_err_status_no_ctx). A receive session is
//     bound to one SSRC if given, otherwise it accepts any inbound SSRC
//     (libsrtp ssrc_any_inbound), each SSRC with its own replay state.
//   - replay protection (RFC 3711 §3.3.2) stays on: a receive session keeps
//     a 128-packet window; a packet seen before fails with
//     srtp_err_status_replay_fail, one older than the window with
//     srtp_err_status_replay_old. A send session refuses to protect a
//     sequence number twice (srtp_err_status_replay_fail), since two
//     different payloads under one index would reuse keystream.
//   - errors: Status messages name the libsrtp call and its status
//     ("srtp_unprotect: srtp_err_status_auth_fail"), never key bytes.
//     auth_fail, replay_fail and replay_old map to kPermissionDenied,
//     malformed packets to kInvalidArgument.
//   - key custody: Create copies key||salt into a SecretBytes for
//     srtp_create and wipes it right after; libsrtp keeps only the derived
//     session keys, which srtp_dealloc clears and frees in the destructor.
//     This library never logs, and installs no libsrtp log or debug handler.
//   - threads: a session is NOT thread-safe (libsrtp updates the rollover
//     counter and replay window on every packet): use one session from one
//     thread at a time. libsrtp's global state is written only by srtp_init,
//     so distinct sessions should be usable from different threads; only
//     single-threaded use is tested.
//   - libsrtp is initialised once per process (srtp_init under
//     std::call_once) on the first Create and never shut down.
// SRTCP is not covered yet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"

struct srtp_ctx_t_;  // libsrtp2's session (srtp_t)

namespace tkms::srtp {

using Bytes = std::vector<uint8_t>;

enum class Direction { kSend, kReceive };

enum class SrtpProfile {
  kAesCm128HmacSha1_80,  // RFC 4568 AES_CM_128_HMAC_SHA1_80
  kAesCm128HmacSha1_32,  // RFC 4568 AES_CM_128_HMAC_SHA1_32
};

inline constexpr size_t kSrtpMasterKeyBytes = 16;
inline constexpr size_t kSrtpMasterSaltBytes = 14;
inline constexpr size_t kSrtpReplayWindowPackets = 128;

// "AES_CM_128_HMAC_SHA1_80" / "AES_CM_128_HMAC_SHA1_32".
const char* SrtpProfileName(SrtpProfile profile);
// Bytes the authentication tag adds to each SRTP packet (10 or 4).
size_t SrtpAuthTagBytes(SrtpProfile profile);
const char* DirectionName(Direction direction);

class SrtpSession {
 public:
  // master_key must be kSrtpMasterKeyBytes and master_salt
  // kSrtpMasterSaltBytes long; a kSend session needs its ssrc.
  // kInvalidArgument for those; kInternal if libsrtp fails to initialise or
  // to create the session (the message names the srtp_err_status).
  static Result<std::unique_ptr<SrtpSession>> Create(Direction direction, SrtpProfile profile,
                                                     ByteSpan master_key, ByteSpan master_salt,
                                                     std::optional<uint32_t> ssrc);
  // The same with the default profile, AES_CM_128_HMAC_SHA1_80.
  static Result<std::unique_ptr<SrtpSession>> Create(Direction direction, ByteSpan master_key,
                                                     ByteSpan master_salt,
                                                     std::optional<uint32_t> ssrc);

  ~SrtpSession();
  SrtpSession(const SrtpSession&) = delete;
  SrtpSession& operator=(const SrtpSession&) = delete;

  // RTP -> SRTP: encrypts the payload and appends the tag. The packet must
  // parse as an RTP header (rtp_packet.h) and be at most kMaxRtpPacketBytes.
  // kFailedPrecondition on a receive session.
  Result<Bytes> Protect(ByteSpan rtp_packet);
  // SRTP -> RTP: checks the tag and the replay window, then decrypts.
  // Untrusted bytes: the header is parsed with ByteReader before libsrtp sees
  // them. kFailedPrecondition on a send session.
  Result<Bytes> Unprotect(ByteSpan srtp_packet);

  Direction direction() const { return direction_; }
  SrtpProfile profile() const { return profile_; }
  std::optional<uint32_t> ssrc() const { return ssrc_; }

 private:
  SrtpSession(Direction direction, SrtpProfile profile, std::optional<uint32_t> ssrc,
              srtp_ctx_t_* ctx)
      : direction_(direction), profile_(profile), ssrc_(ssrc), ctx_(ctx) {}

  Direction direction_;
  SrtpProfile profile_;
  std::optional<uint32_t> ssrc_;
  srtp_ctx_t_* ctx_;  // owned; srtp_dealloc in the destructor
};

}  // namespace tkms::srtp
