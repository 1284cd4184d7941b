#include "tools/srtp/srtp_session.h"

#include <srtp2/srtp.h>

#include <algorithm>
#include <mutex>
#include <string>

#include "firmware/base/secret_bytes.h"
#include "tools/srtp/rtp_packet.h"

namespace tkms::srtp {

namespace {

const char* SrtpErrName(srtp_err_status_t status) {
  switch (status) {
    case srtp_err_status_ok: return "srtp_err_status_ok";
    case srtp_err_status_fail: return "srtp_err_status_fail";
    case srtp_err_status_bad_param: return "srtp_err_status_bad_param";
    case srtp_err_status_alloc_fail: return "srtp_err_status_alloc_fail";
    case srtp_err_status_dealloc_fail: return "srtp_err_status_dealloc_fail";
    case srtp_err_status_init_fail: return "srtp_err_status_init_fail";
    case srtp_err_status_terminus: return "srtp_err_status_terminus";
    case srtp_err_status_auth_fail: return "srtp_err_status_auth_fail";
    case srtp_err_status_cipher_fail: return "srtp_err_status_cipher_fail";
    case srtp_err_status_replay_fail: return "srtp_err_status_replay_fail";
    case srtp_err_status_replay_old: return "srtp_err_status_replay_old";
    case srtp_err_status_algo_fail: return "srtp_err_status_algo_fail";
    case srtp_err_status_no_such_op: return "srtp_err_status_no_such_op";
    case srtp_err_status_no_ctx: return "srtp_err_status_no_ctx";
    case srtp_err_status_cant_check: return "srtp_err_status_cant_check";
    case srtp_err_status_key_expired: return "srtp_err_status_key_expired";
    case srtp_err_status_socket_err: return "srtp_err_status_socket_err";
    case srtp_err_status_signal_err: return "srtp_err_status_signal_err";
    case srtp_err_status_nonce_bad: return "srtp_err_status_nonce_bad";
    case srtp_err_status_read_fail: return "srtp_err_status_read_fail";
    case srtp_err_status_write_fail: return "srtp_err_status_write_fail";
    case srtp_err_status_parse_err: return "srtp_err_status_parse_err";
    case srtp_err_status_encode_err: return "srtp_err_status_encode_err";
    case srtp_err_status_semaphore_err: return "srtp_err_status_semaphore_err";
    case srtp_err_status_pfkey_err: return "srtp_err_status_pfkey_err";
    case srtp_err_status_bad_mki: return "srtp_err_status_bad_mki";
    case srtp_err_status_pkt_idx_old: return "srtp_err_status_pkt_idx_old";
    case srtp_err_status_pkt_idx_adv: return "srtp_err_status_pkt_idx_adv";
  }
  return "srtp_err_status_(unknown)";
}

// "<call>: <srtp_err_status name>", with a code the callers can act on:
// a packet that fails authentication or the replay check is refused, not a
// malformed argument.
Status SrtpError(const char* call, srtp_err_status_t status) {
  std::string message = std::string(call) + ": " + SrtpErrName(status);
  switch (status) {
    case srtp_err_status_auth_fail:
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
      return PermissionDenied(std::move(message));
    case srtp_err_status_bad_param:
    case srtp_err_status_parse_err:
      return InvalidArgument(std::move(message));
    case srtp_err_status_no_ctx:
    case srtp_err_status_key_expired:
      return FailedPrecondition(std::move(message));
    case srtp_err_status_alloc_fail:
      return ResourceExhausted(std::move(message));
    default:
      return Internal(std::move(message));
  }
}

// srtp_init is not re-entrant and must run before any other libsrtp call:
// once per process, and its result is remembered. srtp_shutdown is never
// called, so no live session can outlive the library's global state.
srtp_err_status_t EnsureLibsrtpInitialised() {
  static std::once_flag once;
  static srtp_err_status_t status = srtp_err_status_init_fail;
  std::call_once(once, [] { status = srtp_init(); });
  return status;
}

}  // namespace

const char* SrtpProfileName(SrtpProfile profile) {
  switch (profile) {
    case SrtpProfile::kAesCm128HmacSha1_80: return "AES_CM_128_HMAC_SHA1_80";
    case SrtpProfile::kAesCm128HmacSha1_32: return "AES_CM_128_HMAC_SHA1_32";
  }
  return "unknown SRTP profile";
}

size_t SrtpAuthTagBytes(SrtpProfile profile) {
  switch (profile) {
    case SrtpProfile::kAesCm128HmacSha1_80: return 10;
    case SrtpProfile::kAesCm128HmacSha1_32: return 4;
  }
  return 0;
}

const char* DirectionName(Direction direction) {
  return direction == Direction::kSend ? "send" : "receive";
}

Result<std::unique_ptr<SrtpSession>> SrtpSession::Create(Direction direction,
                                                         ByteSpan master_key,
                                                         ByteSpan master_salt,
                                                         std::optional<uint32_t> ssrc) {
  return Create(direction, SrtpProfile::kAesCm128HmacSha1_80, master_key, master_salt, ssrc);
}

Result<std::unique_ptr<SrtpSession>> SrtpSession::Create(Direction direction,
                                                         SrtpProfile profile,
                                                         ByteSpan master_key,
                                                         ByteSpan master_salt,
                                                         std::optional<uint32_t> ssrc) {
  if (master_key.size() != kSrtpMasterKeyBytes) {
    return InvalidArgument("SRTP master key must be " + std::to_string(kSrtpMasterKeyBytes) +
                           " bytes for " + SrtpProfileName(profile) + ", got " +
                           std::to_string(master_key.size()));
  }
  if (master_salt.size() != kSrtpMasterSaltBytes) {
    return InvalidArgument("SRTP master salt must be " + std::to_string(kSrtpMasterSaltBytes) +
                           " bytes, got " + std::to_string(master_salt.size()));
  }
  if (direction == Direction::kSend && !ssrc.has_value()) {
    return InvalidArgument("an SRTP send session needs its SSRC");
  }
  if (const srtp_err_status_t init = EnsureLibsrtpInitialised(); init != srtp_err_status_ok) {
    return Internal(std::string("srtp_init: ") + SrtpErrName(init));
  }

  srtp_policy_t policy{};
  switch (profile) {
    case SrtpProfile::kAesCm128HmacSha1_80:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
      break;
    case SrtpProfile::kAesCm128HmacSha1_32:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
      break;
  }
  // SRTCP is not used yet; libsrtp still needs a valid policy for it. The
  // 80-bit tag is the one RFC 4568 prescribes for SRTCP with both profiles.
  srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
  if (ssrc.has_value()) {
    policy.ssrc.type = ssrc_specific;
    policy.ssrc.value = *ssrc;
  } else {
    policy.ssrc.type = ssrc_any_inbound;
    policy.ssrc.value = 0;
  }
  policy.window_size = kSrtpReplayWindowPackets;
  policy.allow_repeat_tx = 0;
  policy.next = nullptr;

  // libsrtp reads the master key as key || salt (30 bytes).
  SecretBytes key_and_salt;
  key_and_salt.reserve(kSrtpMasterKeyBytes + kSrtpMasterSaltBytes);
  key_and_salt.insert(key_and_salt.end(), master_key.begin(), master_key.end());
  key_and_salt.insert(key_and_salt.end(), master_salt.begin(), master_salt.end());
  policy.key = key_and_salt.data();

  srtp_t ctx = nullptr;
  const srtp_err_status_t created = srtp_create(&ctx, &policy);
  // libsrtp derived its session keys; the master key copy goes now, not at
  // the end of the scope.
  SecureWipe(key_and_salt.data(), key_and_salt.size());
  policy.key = nullptr;
  if (created != srtp_err_status_ok) {
    // srtp_create frees what it allocated on failure.
    return SrtpError("srtp_create", created);
  }
  return std::unique_ptr<SrtpSession>(new SrtpSession(direction, profile, ssrc, ctx));
}

SrtpSession::~SrtpSession() {
  if (ctx_ != nullptr) {
    // Zeroes and frees the session keys. A failure here cannot be reported
    // from a destructor, and it only concerns memory being released.
    (void)srtp_dealloc(ctx_);
  }
}

Result<Bytes> SrtpSession::Protect(ByteSpan rtp_packet) {
  if (direction_ != Direction::kSend) {
    return FailedPrecondition("srtp_protect: this is an SRTP receive session");
  }
  auto header = ParseRtpHeader(rtp_packet);
  if (!header.ok()) {
    return InvalidArgument("srtp_protect: " + header.error().message());
  }
  // srtp_protect works in place and appends up to SRTP_MAX_TRAILER_LEN bytes
  // (tag, MKI). The vector's storage is suitably aligned for libsrtp's 32-bit
  // header access (operator new alignment).
  Bytes buffer(rtp_packet.size() + SRTP_MAX_TRAILER_LEN);
  std::copy(rtp_packet.begin(), rtp_packet.end(), buffer.begin());
  int length = static_cast<int>(rtp_packet.size());  // <= kMaxRtpPacketBytes
  const srtp_err_status_t status = srtp_protect(ctx_, buffer.data(), &length);
  if (status != srtp_err_status_ok) {
    return SrtpError("srtp_protect", status);
  }
  if (length < static_cast<int>(rtp_packet.size()) ||
      static_cast<size_t>(length) > buffer.size()) {
    return Internal("srtp_protect: output length " + std::to_string(length) + " out of range");
  }
  buffer.resize(static_cast<size_t>(length));
  return buffer;
}

Result<Bytes> SrtpSession::Unprotect(ByteSpan srtp_packet) {
  if (direction_ != Direction::kReceive) {
    return FailedPrecondition("srtp_unprotect: this is an SRTP send session");
  }
  // The header travels in clear (RFC 3711 §3.1): check it, and that the tag
  // fits after it, with the project's bounded reader before libsrtp does.
  auto header = ParseRtpHeader(srtp_packet);
  if (!header.ok()) {
    return InvalidArgument("srtp_unprotect: " + header.error().message());
  }
  const size_t tag = SrtpAuthTagBytes(profile_);
  if (srtp_packet.size() - header->header_bytes < tag) {
    return InvalidArgument("srtp_unprotect: " + std::to_string(srtp_packet.size()) +
                           " bytes leave no room for the " + std::to_string(tag) +
                           "-byte authentication tag after the " +
                           std::to_string(header->header_bytes) + "-byte header");
  }
  // srtp_unprotect works in place and only shortens the packet.
  Bytes buffer(srtp_packet.begin(), srtp_packet.end());
  int length = static_cast<int>(buffer.size());  // <= kMaxRtpPacketBytes
  const srtp_err_status_t status = srtp_unprotect(ctx_, buffer.data(), &length);
  if (status != srtp_err_status_ok) {
    return SrtpError("srtp_unprotect", status);
  }
  if (length < 0 || static_cast<size_t>(length) > buffer.size()) {
    return Internal("srtp_unprotect: output length " + std::to_string(length) +
                    " out of range");
  }
  buffer.resize(static_cast<size_t>(length));
  return buffer;
}

}  // namespace tkms::srtp
