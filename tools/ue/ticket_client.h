// The UE side of MIKEY-TICKET: building the Initiator's and Responder's
// messages of the Ticket Request, Ticket Transfer and Ticket Resolve exchanges
// and checking the KMS's answers (RFC 6043 §4.2, §5.1, §5.4, §5.5, §6.10;
// carried over HTTP per TS 33.328 Annex A by kms_client.h).
//
// Why: tkms needs a client that speaks the exchanges exactly as RFC 6043
// writes them, to test its own KMS (tkmsd) and KMSs written by others, and to
// load it (tkms-bench). Everything here is built from the codec
// (firmware/mikey/codec.h), the MAC coverage (coverage.h) and the crypto
// building blocks (firmware/mikey/crypto), with the UE's PSK held as plain
// bytes in SecretBytes and used through a CryptoProvider (normally the
// TransientCryptoProvider). Keys are SecretBytes and never printed; error
// texts name fields, never key bytes.
//
// Readings of the RFC (also in the report of the change that added this file):
//  1. Identities appended to initial-message MACs (RFC 6043 §5.5 "the
//     identities (not whole payloads)"): the ID Data field of the IDR payload,
//     nothing of its header (no role, type or length). When an IDR payload is
//     omitted from a message, the identity the parties know by other means is
//     still appended (PeerIdentity::send = false keeps it in the MAC); an
//     unknown identity is appended as zero bytes.
//  2. Which RANDs enter the message-key labels (RFC 6043 §5.1.2: "RANDRi SHALL
//     be included ... [for] the Ticket Request and Ticket Transfer exchanges.
//     RANDRr SHALL be included ... [for] the Ticket Resolve exchange"):
//       REQUEST_INIT (0x01) / REQUEST_RESP (0x02): L8(RANDRi) || RANDRi || 0x00
//       TRANSFER_INIT (0x01):                      L8(RANDRi) || RANDRi || 0x00
//       RESOLVE_INIT (0x01) / RESOLVE_RESP (0x02): 0x00 || L8(RANDRr) || RANDRr
//     i.e. in the Resolve exchange RANDRr stays in the RANDRr slot of the label
//     (it is not moved into the RANDRi slot because the Responder initiates
//     that exchange), and no RANDRi enters (the RESOLVE_INIT carries none).
//     The direction byte is 0x01 for the *_INIT and 0x02 for the *_RESP
//     message; the PRF is the HDR PRF func; the inkey is the PSK of the party
//     talking to the KMS.
//  3. The T in the KEMAC IV (RFC 3830 §4.2.3 "the timestamp sent by the
//     Initiator"): in RFC 3830 the KEMAC travels in the Initiator's message,
//     i.e. T is the timestamp of the message that carries the KEMAC. MIKEY-
//     TICKET KMSs send a fresh T in REQUEST_RESP / RESOLVE_RESP (§4.2.1.5,
//     §4.2.3.5), so the IV uses the response's CSB ID and the response's T
//     payload widened by crypto::TimestampForIv. ResponseChecks::iv_timestamp
//     can select the request's T instead, for interoperability experiments.
//  4. RAND lengths (RFC 6043 §12.1: "the sum of the lengths of RANDRi and
//     RANDRr MUST at least be equal to the size of the longest pre-shared
//     key/envelope key/MPK/TGK/GTGK"). Read per exchange, with the keys each
//     RAND enters a derivation with: in the Ticket Request only RANDRi exists
//     and keys the REQUEST_INIT / REQUEST_RESP from the PSK (§5.1.2), so
//     |RANDRi| >= |PSK|; in the Ticket Resolve likewise |RANDRr| >= |PSK|; in
//     the Ticket Transfer RANDRi and RANDRr (iff G) enter the message keys from
//     MPKi / MPKr' and the TEK derivation from TGK / TGK' / GTGK (§5.1.3), so
//     |RANDRi| + |RANDRr| >= the longest of MPKi, MPKr (MPKr') and the
//     session keys (transfer.h reading 18 has the checks of received RANDs).
//     The UE's own RANDs must be long enough on their own: a RAND the caller
//     gives that is shorter than the longest key it is used with is
//     kInvalidArgument, and a fresh RAND has RandLengthFor(longest) =
//     max(16, longest) bytes (RFC 3830 §6.11: at least 128 bits), where a
//     REQUEST_INIT also counts the keys it asks for (a UE asking for 256-bit
//     keys sends a 32-byte RANDRi even with a 128-bit PSK). RANDRkms ("MUST
//     at least be as long as the longest MPKr/TGK") is the KMS's duty; the UE
//     does not check it.
//  5. Ticket policy flags of a request (§6.10): D is always 1 (a KMS ticket),
//     K always 0 ("SHALL be set to '0' by the Initiator"); with
//     complete_flags the dependencies are closed by adding the implied flags:
//     I => E, G => F, M => F, (not G and not H) => H, and I with a TGK in the
//     ticket (a requested TGK, or no requested keys: the KMS default is one
//     TGK) => F.
//  6. The KEMAC of REQUEST_RESP / RESOLVE_RESP must use the NULL MAC (§4.2.1.5,
//     §4.2.3.5); NULL encryption is refused unless allowed (RFC 3830 §4.2.3:
//     only when the transport guarantees security). Key data order:
//     MPKi, [MPKr] (REQUEST_RESP) or MPKi, [MPKr'] (RESOLVE_RESP) -- the second
//     MPK present iff the ticket policy's I flag is set -- then {TEK|TGK|GTGK}
//     (with or without salt); MPK is key type 6. Each key must carry an SPI/MKI
//     (KV type SPI, non-empty; §6.2.1 "An SPI (or MKI) MUST be specified for
//     each key") unless ResponseChecks::require_key_spi is false.
//  7. Response header: version, PRF func, CSB ID, #CS and CS ID map type must
//     equal the request's (§4.2.1.5, §4.2.3.5); the V flag is ignored; the V
//     payload may use any non-NULL MAC algorithm (the key is derived for it).
//     The KMS's timestamp is not checked against the UE's clock (§4.2.1.5: it
//     "may be used for clock synchronization"); freshness comes from the MAC
//     covering the complete fresh request.
//  8. Error messages (§5.4: HDR, T, (ERR), [V|SIGN]): a V payload is verified
//     with "the same auth_key as in the message where the error occurred",
//     i.e. the auth_key of our REQUEST_INIT / RESOLVE_INIT, over the Error
//     message alone. Without V (or with SIGN) the error is an unauthenticated
//     hint (RFC 3830 §5.1.2). The CSB ID of an unauthenticated error is not
//     required to match: a KMS that could not parse the request cannot copy it.
//  9. TRANSFER_INIT (built only so that a Responder has a real ticket to
//     resolve): GENERIC-ID map with one crypto session (CS ID 1, SRTP, #P = 0
//     "responder chooses", Session Data = a random SSRC, no SPI), no SP
//     payloads, V flag = the ticket's F flag. Vi is the V payload of the
//     TRANSFER_INIT (same MAC; encoded with next payload = V as the codec
//     does); Vr's key comes from the unforked MPKr with the Ticket Policy's
//     PRF (crypto::DeriveInitiatorDataAuthKey).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/provider.h"
#include "firmware/mikey/message.h"

namespace tkms::ue {

using mikey::Bytes;

// ---- Errors -------------------------------------------------------------------

enum class UeErrorKind : uint8_t {
  kInvalidArgument,  // the caller's parameters cannot form the message
  kTransport,        // no HTTP response: connect/send/receive failure, timeout, malformed or oversized HTTP
  kHttpStatus,       // an HTTP response with a status other than 200 (http_status)
  kBadResponse,      // 200, but not application/mikey, not base64, or not a decodable MIKEY message
  kMikeyError,       // the KMS answered with a MIKEY Error message (mikey_errors)
  kVerification,     // the answer does not verify: MAC, KEMAC, header/identity binding, key data
  kInternal,         // a crypto provider failure
};
std::string_view UeErrorKindName(UeErrorKind kind);  // "http_status", "mikey_error", ...

struct UeError {
  UeErrorKind kind = UeErrorKind::kInternal;
  std::string detail;                 // names fields, never key bytes
  int http_status = 0;                // kHttpStatus
  std::vector<uint8_t> mikey_errors;  // error numbers of an Error message, in order
  bool error_authenticated = false;   // the Error message's V verified
  std::optional<mikey::Rule> codec_rule;  // kBadResponse from the codec: the rule violated

  // The first error number of an Error message, if one was received.
  std::optional<uint8_t> mikey_error() const {
    if (mikey_errors.empty()) return std::nullopt;
    return mikey_errors.front();
  }
  // "mikey_error: MIKEY error 0 (Auth failure), authenticated"
  std::string ToString() const;
};

template <typename T>
using UeResult = Result<T, UeError>;

// ---- Parameters shared by the builders -------------------------------------------

// An identity as sent in an IDR payload: its ID Data is what the MACs of
// initial messages append (reading 1 above).
struct PeerIdentity {
  Bytes id;                                                  // ID Data (e.g. "sip:alice@example.org")
  uint8_t id_type = static_cast<uint8_t>(mikey::IdType::kUri);
  bool send = true;  // false: omit the IDR payload; the MAC still appends `id`
};

// The T payload of an initial message.
struct TimestampSpec {
  uint8_t ts_type = static_cast<uint8_t>(mikey::TsType::kNtpUtc);
  // Unset: the current time (NTP-UTC / NTP: 64-bit, NTP-UTC-32: seconds).
  // COUNTER needs an explicit value. Tests set stale values here.
  std::optional<uint64_t> value;
};

// The NTP-UTC timestamp (RFC 5905 64-bit format: seconds since 1900 || 2^-32
// fractions) of the current time, and of a Unix time in nanoseconds.
uint64_t NtpUtcNow();
uint64_t NtpUtcFromUnixNanos(int64_t unix_ns);

// Which timestamp enters the KEMAC IV of a response (reading 3 above).
enum class IvTimestamp : uint8_t { kResponseT, kRequestT };

// How strictly the KMS's answer is checked (defaults follow RFC 6043).
struct ResponseChecks {
  bool allow_null_encryption = false;  // accept a KEMAC with NULL encryption
  bool require_key_spi = true;         // every key in the KEMAC carries an SPI/MKI
  IvTimestamp iv_timestamp = IvTimestamp::kResponseT;
};

// ---- RAND lengths (reading 4, RFC 6043 §12.1) ---------------------------------------

inline constexpr size_t kMinRandBytes = 16;   // RFC 3830 §6.11: at least 128 bits
inline constexpr size_t kMaxRandBytes = 255;  // the RAND length field is 8 bits

// The length of a RAND the UE draws for keys of at most `longest_key` bytes:
// max(16, longest_key), at most 255.
size_t RandLengthFor(size_t longest_key);

// ---- Ticket Request (RFC 6043 §4.2.1) ---------------------------------------------

// One requested key in the TP's KEMAC (key bytes sent as zeros, §6.10).
struct RequestedKey {
  uint8_t key_type = static_cast<uint8_t>(mikey::KeyType::kTgk);
  size_t length = 16;
  size_t salt_length = 14;  // only for the *+SALT key types
  mikey::KeyValidity kv;    // default KV NULL (the KMS assigns SPIs)
};

struct IdValue {
  Bytes data;
  uint8_t id_type = static_cast<uint8_t>(mikey::IdType::kUri);
};

struct TsValue {
  uint8_t ts_type = static_cast<uint8_t>(mikey::TsType::kNtpUtc);
  uint64_t value = 0;
};

// The desired Ticket Policy (TP payload, §6.10). Ticket type 1 / subtype 1 /
// version 1 (MIKEY base ticket) by default.
struct DesiredTicketPolicy {
  uint16_t ticket_type = static_cast<uint16_t>(mikey::TicketType::kMikeyBase);
  uint8_t subtype = mikey::kBaseTicketSubtype;
  uint8_t version = mikey::kBaseTicketVersion;
  uint8_t prf_func = static_cast<uint8_t>(mikey::PrfFunc::kHmacSha256);
  // E..O as wanted (mikey::TicketFlag bits); D is always set, K always cleared.
  uint16_t flags = mikey::kFlagE | mikey::kFlagF | mikey::kFlagG | mikey::kFlagH |
                   mikey::kFlagN | mikey::kFlagO;
  bool complete_flags = true;  // add the flags implied by §6.10 (reading 5)
  // TP Data, in the order [IDRkms], [IDRi], [TRs], [TRe], [TRr], [KEMAC], {IDRapp}, (IDRr).
  std::optional<IdValue> kms;
  std::optional<IdValue> initiator;
  std::optional<TsValue> valid_from;        // TRs
  std::optional<TsValue> valid_to;          // TRe
  std::optional<uint32_t> rekey_interval;   // TRr, NTP-UTC-32 seconds
  std::vector<RequestedKey> keys;           // TP KEMAC; empty: no KEMAC (KMS default)
  std::vector<IdValue> applications;        // IDRapp
  std::vector<IdValue> responders;          // IDRr, at least one
};

// The flags a desired policy will carry (D set, K cleared, completed if asked);
// kInvalidArgument if they violate §6.10.
Result<uint16_t> RequestFlags(const DesiredTicketPolicy& policy);
// The TP payload's policy for `desired`.
Result<mikey::TicketPolicy> BuildDesiredPolicy(const DesiredTicketPolicy& desired);

struct RequestInitParams {
  SecretBytes psk;                   // shared by the Initiator and the KMS
  std::optional<Bytes> psk_id;       // IDRpsk (role 4, ID type byte string)
  PeerIdentity initiator;            // IDRi (role 1)
  PeerIdentity kms;                  // IDRkms (role 3); an IDRkms in the answer must match (if non-empty)
  std::optional<uint32_t> csb_id;    // random if unset
  uint8_t prf_func = static_cast<uint8_t>(mikey::PrfFunc::kHmacSha256);
  uint8_t mac_alg = static_cast<uint8_t>(mikey::MacAlg::kHmacSha256_256);
  TimestampSpec timestamp;
  // Random if unset (RequestRandLength bytes); if given, at least |PSK| bytes (reading 4).
  std::optional<Bytes> randri;
  DesiredTicketPolicy policy;
  ResponseChecks checks;
};

// The length of the RANDRi BuildRequestInitPsk draws: RandLengthFor the
// longest of the PSK and the keys asked for in the ticket policy (reading 4).
size_t RequestRandLength(const RequestInitParams& params);

// A built REQUEST_INIT_PSK and what checking its answer needs.
struct RequestInit {
  Bytes bytes;               // the complete message, as sent
  mikey::Message message;
  SecretBytes psk;
  SecretBytes auth_key;      // the REQUEST_INIT's auth_key (verifies Error messages)
  uint8_t mac_alg = 0;
  uint8_t prf_func = 0;
  uint32_t csb_id = 0;
  Bytes randri;
  Bytes initiator_identity;  // Identity_i as appended to the MAC
  Bytes kms_identity;        // Identity_kms as appended to the MAC
  uint64_t ts64 = 0;         // the request's T, widened for an IV
  mikey::TicketPolicy requested_policy;
  ResponseChecks checks;
};

// What a verified REQUEST_RESP grants.
struct TicketGrant {
  mikey::TicketPayload ticket;   // as granted; Ticket Data opaque, no Initiator Data
  mikey::TicketPolicy policy;    // = ticket.policy
  SecretBytes mpki;
  std::optional<SecretBytes> mpkr;            // iff the granted policy's I flag
  std::vector<mikey::KeyDataPayload> session_keys;  // TEK / TGK / GTGK (+SALT), in order
  std::vector<mikey::KeyDataPayload> mpk_keys;      // the MPK sub-payloads (with their SPIs)
  bool policy_changed = false;   // K flag
  mikey::TPayload kms_timestamp;
  std::optional<Bytes> kms_identity;  // IDRkms of the response, if present
  Bytes response;                // the REQUEST_RESP as received
};

UeResult<RequestInit> BuildRequestInitPsk(mikey::crypto::CryptoProvider& provider,
                                          const RequestInitParams& params);
// Checks a REQUEST_RESP (or a MIKEY Error message) answering `request`.
UeResult<TicketGrant> ParseRequestResp(mikey::crypto::CryptoProvider& provider,
                                       ByteSpan response, const RequestInit& request);

// ---- Ticket Transfer (RFC 6043 §4.2.2.1), minimal ---------------------------------

struct TransferInitParams {
  PeerIdentity initiator;            // IDRi
  PeerIdentity responder;            // IDRr
  std::optional<uint32_t> csb_id;    // random if unset
  uint8_t prf_func = static_cast<uint8_t>(mikey::PrfFunc::kHmacSha256);
  uint8_t mac_alg = static_cast<uint8_t>(mikey::MacAlg::kHmacSha256_256);
  TimestampSpec timestamp;
  // Random if unset, RandLengthFor(LongestTransferKey(grant)) bytes; if given,
  // at least LongestTransferKey(grant) bytes (reading 4).
  std::optional<Bytes> randri;
  bool generic_id_map = true;        // one crypto session (reading 9); false: Empty map, #CS 0
};

struct TransferInit {
  Bytes bytes;                  // the complete TRANSFER_INIT
  mikey::Message message;
  mikey::TicketPayload ticket;  // exactly as inside (with Initiator Data iff the I flag)
  uint32_t csb_id = 0;
  Bytes randri;
};

UeResult<TransferInit> BuildTransferInit(mikey::crypto::CryptoProvider& provider,
                                         const TicketGrant& grant,
                                         const TransferInitParams& params);

// The longest key the Ticket Transfer's RANDs are used with (reading 4): MPKi,
// MPKr (the Initiator's grant) or MPKr' (the Responder's resolve), and every
// TEK / TGK / GTGK.
size_t LongestTransferKey(const TicketGrant& grant);

// ---- Ticket Resolve (RFC 6043 §4.2.3) ------------------------------------------------

struct ResolveInitParams {
  SecretBytes psk;                   // shared by the Responder and the KMS
  std::optional<Bytes> psk_id;       // IDRpsk
  PeerIdentity responder;            // IDRr (role 2)
  PeerIdentity kms;                  // IDRkms (role 3)
  mikey::TicketPayload ticket;       // as received in TRANSFER_INIT, Initiator Data included
  std::optional<uint32_t> csb_id;
  uint8_t prf_func = static_cast<uint8_t>(mikey::PrfFunc::kHmacSha256);
  uint8_t mac_alg = static_cast<uint8_t>(mikey::MacAlg::kHmacSha256_256);
  TimestampSpec timestamp;
  std::optional<Bytes> randrr;       // random if unset, RandLengthFor(|PSK|) bytes; if given, >= |PSK|
  ResponseChecks checks;
};

struct ResolveInit {
  Bytes bytes;
  mikey::Message message;
  SecretBytes psk;
  SecretBytes auth_key;
  uint8_t mac_alg = 0;
  uint8_t prf_func = 0;
  uint32_t csb_id = 0;
  Bytes randrr;
  Bytes responder_identity;
  Bytes kms_identity;
  uint64_t ts64 = 0;
  bool forking = false;              // the ticket's I flag
  ResponseChecks checks;
};

struct ResolvedTicket {
  SecretBytes mpki;
  std::optional<SecretBytes> mpkr_forked;           // MPKr', iff the I flag
  std::vector<mikey::KeyDataPayload> session_keys;  // TEK / TGK' / GTGK, in order
  std::vector<mikey::KeyDataPayload> mpk_keys;
  std::optional<mikey::IdrPayload> responder;       // IDRr of the answer (the identity that answered)
  std::optional<Bytes> randrkms;                    // RANDRkms
  mikey::TPayload kms_timestamp;
  std::optional<Bytes> kms_identity;
  Bytes response;
};

UeResult<ResolveInit> BuildResolveInitPsk(mikey::crypto::CryptoProvider& provider,
                                          const ResolveInitParams& params);
UeResult<ResolvedTicket> ParseResolveResp(mikey::crypto::CryptoProvider& provider,
                                          ByteSpan response, const ResolveInit& request);
size_t LongestTransferKey(const ResolvedTicket& resolved);

// After a resolve, the Responder checks the TRANSFER_INIT (§4.2.3.6): its V
// with MPKi, Identity_i || Identity_r appended (unset: the ID Data of the
// message's IDRi / IDRr, or nothing), and with the I flag that the V MAC
// equals Vi's MAC in the Initiator Data. A TRANSFER_INIT with the SRTP-ID or
// an undefined CS ID map is refused first (kVerification, transfer.h reading 17).
Result<void, UeError> VerifyTransferInit(mikey::crypto::CryptoProvider& provider,
                                         ByteSpan transfer_init, const ResolvedTicket& resolved,
                                         const std::optional<Bytes>& identity_i = std::nullopt,
                                         const std::optional<Bytes>& identity_r = std::nullopt);

// ---- Error messages (RFC 6043 §5.4) ----------------------------------------------------

struct ErrorAuthKey {
  const SecretBytes* auth_key = nullptr;  // the auth_key of the message in error
  uint8_t mac_alg = 0;                    // its MAC algorithm
};

struct MikeyErrorReport {
  std::vector<uint8_t> errors;  // ERR error numbers, in order
  uint32_t csb_id = 0;
  bool has_v = false;
  bool has_sign = false;
  bool v_checked = false;       // V present and a key given: verification attempted
  bool authenticated = false;   // V present and verified with the given key
};

// Decodes an Error message (data type 6) and verifies its V if present and a
// key is given. Fails (kBadResponse) only if the bytes are not an Error message.
UeResult<MikeyErrorReport> ParseErrorMessage(mikey::crypto::CryptoProvider& provider,
                                             ByteSpan bytes, const ErrorAuthKey& key = {});

// The UeError a Parse* function returns for an Error message: kMikeyError, or
// kVerification if its V does not verify.
UeError ErrorFromReport(const MikeyErrorReport& report);

}  // namespace tkms::ue
