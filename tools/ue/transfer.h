// The Ticket Transfer exchange completed (RFC 6043 §4.2.2.3, §4.2.2.4) and
// the per-crypto-session SRTP keys of the resulting crypto session bundle
// (RFC 6043 §5.1.3, RFC 3830 §4.1.3, RFC 3711 §8.2).
//
// Why: an end-to-end call (tkms-ue) is proven by SRTP media, so the
// Initiator and the Responder must end up with the same master key and salt
// per crypto session, by construction: both sides describe what they agreed
// in one TransferSession (built from *their own* inputs: the Initiator from
// its TicketGrant, its TRANSFER_INIT and the TRANSFER_RESP; the Responder from
// its ResolvedTicket and the TRANSFER_INIT) and one function, DeriveSrtpKeys,
// turns it into keys. The UE will be tested against KMSs and UEs written by
// others, so the RFC is followed literally; the readings are listed here.
//
// Readings of RFC 6043 (numbered to continue those of ticket_client.h):
// 10. TRANSFER_RESP header (§4.2.2.3): version, PRF func and CSB ID copied
//     from the TRANSFER_INIT; V = 0 (ignored on receipt); #CS and the CS ID map
//     type are the completed map's (GENERIC-ID; an Empty map with #CS = 0
//     stays Empty when no session is added). The Initiator checks version, PRF
//     and CSB ID, and that every crypto session it offered is still present
//     with the same CS ID and Prot type.
// 11. Completing the map (§4.2.2.3, §6.1.1 "In response messages, #P SHALL
//     always be exactly 1"): a CS with #P >= 1 keeps its first policy number
//     (which refers to an SP payload of the TRANSFER_INIT; §6.1.1 allows it);
//     a CS with #P = 0 gets the policy number of one SP payload the Responder
//     adds (SRTP AES_CM_128_HMAC_SHA1_80, RFC 3830 §6.10.1 values; its number
//     is the lowest one no SP of the TRANSFER_INIT uses). Missing Session Data
//     gets a random SSRC (S = 0); a missing SPI gets the SPI of the first
//     session key. The Responder may add crypto sessions (its own send
//     streams, RFC 4567 §7.1 pairs) with TransferRespParams::add_ssrcs;
//     #CS is updated. Only SRTP (Prot type 0) sessions are handled.
// 12. TRANSFER_RESP payloads: HDR, T, [RANDRr], [IDRr], [RANDRkms], [SP], V.
//     T is fresh (NTP types; COUNTER: the TRANSFER_INIT's value unless set).
//     RANDRr iff the ticket policy's G flag, max(16, longest key) bytes (§12.1,
//     reading 18).
//     IDRr: the IDRr of the RESOLVE_RESP if there was one (§4.2.2.3 "the same
//     identity MUST be sent"), else the Responder's own identity (if `send`).
//     RANDRkms: the RESOLVE_RESP's, if it carried one. No KEMAC (responder-
//     supplied keys, M flag, are not implemented: a TRANSFER_RESP carrying a
//     KEMAC is refused rather than silently ignored, since its keys would
//     change what the Responder uses).
// 13. TRANSFER_RESP V (§4.2.2.3, §5.1.2, §5.5): the auth_key is derived from
//     MPKr' with key forking (I flag), else from MPKi; the HDR PRF; direction
//     0x02; label RANDs: RANDRi of the TRANSFER_INIT and RANDRr iff the G flag
//     (RFC 6043 §5.1.2 "if the Ticket Policy determines that it shall be
//     present"); the MAC covers TRANSFER_RESP (without its MAC) || the
//     complete TRANSFER_INIT as sent/received (Initiator Data included; the
//     exclusion of Initiator Data in §5.5 applies only to the TRANSFER_INIT's
//     own V). The MAC algorithm defaults to that of the TRANSFER_INIT's V.
// 14. The Initiator forks (§5.1.1) with the ticket policy's PRF: MPKr' from
//     MPKr and TGK' from every TGK / TGK+SALT of the grant, with the ID Data of
//     the TRANSFER_RESP's IDRr and its RANDRkms. TEKs, GTGKs and salts are
//     never forked. Refused: a wrong MAC, another CSB ID / version / PRF, a
//     missing RANDRr with G, a missing IDRr or RANDRkms with I, a CS with
//     #P != 1, without SRTP Session Data or SPI, or a policy that is not
//     SRTP AES_CM_128_HMAC_SHA1_80 (§4.2.2.4: "MUST check that any
//     Responder-generated security policies are acceptable").
// 15. F flag = 0: no TRANSFER_RESP is sent (§4.2.2.2 "If the F flag ... is
//     set, the Responder MUST send"); both sides use the TRANSFER_INIT's map
//     as is. Flag rules make G = 0 (G => F) and TGK forking impossible
//     (I with a TGK => F), so the keys need no Responder input. A
//     TRANSFER_RESP that arrives anyway for an F = 0 ticket is refused.
// 16. Per-CS keys (§5.1.3): PRF = HDR PRF func; label constant || CS ID (from
//     the GENERIC-ID map) || 0xFFFFFFFF || 0x03 || L8 RANDRi || RANDRi iff H ||
//     L8 RANDRr || RANDRr iff G (mikey::crypto::TicketTgkLabel); inkey TGK'
//     with forking, else TGK (GTGK: the GTGK). Master key 16 bytes (TEK
//     constant), master salt 14 bytes (salt constant) unless the Key data
//     sub-payload carries a salt (then used as is, §5.1.3). The key of a CS is
//     the session key whose SPI equals the CS's SPI; a CS without SPI (only
//     possible with F = 0) uses the first session key. A delivered TEK (TEK /
//     TEK+SALT) is used directly as the master key (RFC 3830 §4.1.3: TEKs are
//     derived only from TGKs; a transported TEK is the key) and must be 16
//     bytes; its salt must be carried (TEK+SALT), since nothing defines a salt
//     derivation from a TEK.
// 17. CS ID map types (RFC 6043 §6.1: "In the Ticket Transfer exchange the
//     new GENERIC-ID map type ... SHOULD be used. The map type SRTP-ID SHALL
//     NOT be used."). The tkms-ue issue speaks of keys for "SRTP-ID and
//     GENERIC-ID maps"; the RFC overrides it: a TRANSFER_INIT or TRANSFER_RESP
//     with the SRTP-ID map (type 0) is refused, and so is any map type that
//     RFC 3830 / RFC 6043 do not define. GENERIC-ID (2) is what tkms sends;
//     the Empty map (1, #CS = 0) stays acceptable (GENERIC-ID is a SHOULD).
//     Every entry point that receives either message (DecodeTransferInit,
//     CheckTransferInitEarly, VerifyTransferInit, BuildTransferResp,
//     ResponderSessionWithoutResponse, ParseTransferResp) checks the map type
//     first -- on the raw header byte (offset 9) before decoding, since the
//     codec cannot parse an unknown map and its composition rules would
//     report SRTP-ID only as an undecodable message -- and refuses with
//     kVerification naming RFC 6043 §6.1. A TRANSFER_INIT the caller itself
//     built (ParseTransferResp's `sent`) with such a map is kInvalidArgument.
// 18. RAND lengths in the Ticket Transfer (RFC 6043 §12.1: "the sum of the
//     lengths of RANDRi and RANDRr MUST at least be equal to the size of the
//     longest pre-shared key/envelope key/MPK/TGK/GTGK"; ticket_client.h
//     reading 4 for the other exchanges and for the UE's own RANDs). The keys
//     of this exchange are MPKi, MPKr / MPKr' and the TEK / TGK / GTGK
//     (LongestTransferKey); RANDRr counts only when the G flag is set, the only
//     case in which it enters a derivation (§5.1.2, §5.1.3). Checked with
//     CheckTransferRandLengths (kVerification, naming RFC 6043 §12.1):
//       - by the Responder, on the received TRANSFER_INIT's RANDRi together
//         with the RANDRr it sends (BuildTransferResp), or alone with F = 0
//         (ResponderSessionWithoutResponse), once the ticket is resolved and
//         the keys are known;
//       - by the Initiator, on the received TRANSFER_RESP's RANDRr together
//         with its own RANDRi (ParseTransferResp), before the MAC.
//     The UE's own RANDs are long enough on their own (reading 4): a fresh
//     RANDRi / RANDRr has RandLengthFor(LongestTransferKey) bytes (32 with
//     any 256-bit key), a caller's shorter one is kInvalidArgument, and a
//     TransferInit with a short RANDRi (e.g. rebuilt from a saved file) is
//     kInvalidArgument in InitiatorSessionWithoutResponse. RANDRkms is the
//     KMS's (§12.1: as long as the longest MPKr / TGK) and not checked here.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "firmware/base/secret_bytes.h"
#include "tools/ue/ticket_client.h"

namespace tkms::ue {

// What one side knows about the crypto session bundle once the Ticket Transfer
// exchange is over: everything DeriveSrtpKeys needs, nothing else.
struct TransferSession {
  uint32_t csb_id = 0;
  uint8_t prf_func = 0;                          // HDR PRF func (§5.1.3)
  uint16_t ticket_flags = 0;                     // the ticket policy's flags (G, H, I)
  std::vector<mikey::GenericIdEntry> crypto_sessions;  // the final CS map
  std::vector<mikey::SpPayload> policies;        // SPs of TRANSFER_INIT then TRANSFER_RESP
  Bytes randri;
  std::optional<Bytes> randrr;                   // iff G
  std::vector<mikey::KeyDataPayload> session_keys;  // TEK / TGK (TGK' with I) / GTGK, with salts and SPIs
  std::optional<mikey::IdrPayload> responder;    // IDRr of the TRANSFER_RESP
  std::optional<Bytes> randrkms;
  // The MPK that protected the last message of the exchange (MPKr' or MPKi;
  // for later CSB updates, §5.2).
  SecretBytes last_message_key;
  bool response = false;                         // a TRANSFER_RESP was exchanged
};

// ---- Checks of received messages (readings 17, §4.2.2.2) ------------------------

// kVerification unless `map_type` is GENERIC-ID or Empty (reading 17); `what`
// names the message in the error ("TRANSFER_INIT").
Result<void, UeError> CheckTransferMapType(uint8_t map_type, std::string_view what);

// The same check on a message's raw bytes, before decoding: applies when the
// bytes are at least a common header long and carry data type `expected`
// (TRANSFER_INIT or TRANSFER_RESP); anything else is left to the decoder.
Result<void, UeError> CheckTransferMapTypeBytes(ByteSpan message, mikey::DataType expected);

// A received TRANSFER_INIT, decoded by the strict codec (composition rules
// on) after the map type check: kVerification if it is not a TRANSFER_INIT or
// its map type is refused, kBadResponse if it does not decode.
UeResult<mikey::Message> DecodeTransferInit(ByteSpan bytes);

// Reading 18: kVerification unless randri + randrr >= longest_key bytes;
// `what` names the message whose RAND is checked.
Result<void, UeError> CheckTransferRandLengths(size_t randri, size_t randrr, size_t longest_key,
                                               std::string_view what);

// now (NTP-UTC, 64 bits) within the ticket policy's TRs..TRe, where present.
// NTP-UTC-32 values are compared as seconds; TRs / TRe of other timestamp
// types (COUNTER) are not compared. kVerification: "the ticket is not valid
// yet (TRs)" / "the ticket has expired (TRe)".
Result<void, UeError> CheckTicketValidityPeriod(const mikey::TicketPolicy& policy, uint64_t now_ntp);

// ---- Responder ---------------------------------------------------------------

struct TransferRespParams {
  // Used for IDRr only if the RESOLVE_RESP carried none (reading 12).
  PeerIdentity responder;
  // Unset: the TRANSFER_INIT's timestamp type, a fresh value (COUNTER: copied).
  std::optional<TimestampSpec> timestamp;
  std::optional<Bytes> randrr;                   // used iff G; random if unset; >= the longest key (reading 18)
  std::optional<uint8_t> mac_alg;                // unset: the TRANSFER_INIT's V algorithm
  std::vector<uint32_t> add_ssrcs;               // one added SRTP crypto session per SSRC
  // Verify the TRANSFER_INIT first (VerifyTransferInit, §4.2.3.6) with these
  // identities (unset: the message's IDRi / IDRr). Only tests turn it off.
  bool verify_transfer_init = true;
  std::optional<Bytes> identity_i;
  std::optional<Bytes> identity_r;
  // Interop experiments only: overrides the G flag's decision to send RANDRr.
  std::optional<bool> send_randrr;
};

struct TransferResp {
  Bytes bytes;                 // the complete TRANSFER_RESP
  mikey::Message message;
  TransferSession session;     // the Responder's view (keys: the ResolvedTicket's)
};

// Builds the TRANSFER_RESP answering `transfer_init` (bytes as received) once
// the ticket is resolved. kInvalidArgument if the ticket's F flag is 0 (use
// ResponderSessionWithoutResponse), kVerification if the TRANSFER_INIT does
// not verify, uses a refused CS ID map type (reading 17) or its RANDRi with
// the RANDRr sent is too short for the keys (reading 18).
UeResult<TransferResp> BuildTransferResp(mikey::crypto::CryptoProvider& provider,
                                         ByteSpan transfer_init, const ResolvedTicket& resolved,
                                         const TransferRespParams& params);

// F = 0 (reading 15): the Responder's session from the TRANSFER_INIT alone
// (verified first unless verify is false; the map type is always checked).
UeResult<TransferSession> ResponderSessionWithoutResponse(
    mikey::crypto::CryptoProvider& provider, ByteSpan transfer_init, const ResolvedTicket& resolved,
    bool verify = true);

// ---- Initiator ---------------------------------------------------------------

// Checks a TRANSFER_RESP (or an Error message: kMikeyError, its V checked with
// the TRANSFER_INIT's auth_key) answering `sent`, built from `grant`.
// kVerification for a TRANSFER_RESP with a refused CS ID map type (reading 17)
// or a RANDRr too short for the keys together with our RANDRi (reading 18).
UeResult<TransferSession> ParseTransferResp(mikey::crypto::CryptoProvider& provider,
                                            ByteSpan response, const TicketGrant& grant,
                                            const TransferInit& sent);

// The Responder's early check of a received TRANSFER_INIT, before it asks a
// KMS to resolve the ticket (RFC 6043 §4.2.2.2: "the Responder SHOULD check
// the Ticket Policy ... otherwise reject without contacting the KMS"):
//   - the O flag is set (a plain RFC 6043 Responder can process the ticket);
//   - now (an NTP-UTC timestamp) is within the TP's TRs..TRe, if given;
//   - one of the TP's IDRr identities is in `acceptable` (the end-point's own
//     identity, and the identity it was called as, which may be a group);
//   - with the I flag, the TICKET carries Initiator Data;
//   - the CS ID map type is GENERIC-ID or Empty (reading 17).
// kVerification with the reason on failure.
Result<void, UeError> CheckTransferInitEarly(const mikey::Message& transfer_init,
                                             const std::vector<Bytes>& acceptable, uint64_t now_ntp);

// F = 0 (reading 15): the Initiator's session without a TRANSFER_RESP.
// kInvalidArgument if the ticket's F flag is set.

UeResult<TransferSession> InitiatorSessionWithoutResponse(const TicketGrant& grant,
                                                          const TransferInit& sent);

// ---- Per-crypto-session SRTP keys (reading 16) ------------------------------------

struct SrtpSessionKeys {
  uint8_t cs_id = 0;
  std::optional<uint32_t> ssrc;  // from the CS's Session Data, if present
  SecretBytes master_key;        // 16 bytes
  SecretBytes master_salt;       // 14 bytes
};

// SRTP AES_CM_128_HMAC_SHA1_80 (RFC 3711 §8.2 default transform).
inline constexpr size_t kSrtpMasterKeyBytes = 16;

// One entry per crypto session of session.crypto_sessions, in map order.
UeResult<std::vector<SrtpSessionKeys>> DeriveSrtpKeys(mikey::crypto::CryptoProvider& provider,
                                                      const TransferSession& session);

// The SP payload the Responder adds for AES_CM_128_HMAC_SHA1_80, and the check
// the Initiator applies to a policy (absent parameters take the RFC 3830
// §6.10.1 / RFC 3711 defaults, which are this profile).
mikey::SpPayload SrtpAesCm128HmacSha1_80Policy(uint8_t policy_no);
bool IsAcceptableSrtpPolicy(const mikey::SpPayload& policy);

}  // namespace tkms::ue
