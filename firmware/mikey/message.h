// The in-memory model of a MIKEY message: the common header (RFC 3830 §6.1,
// RFC 6043 §6.1) and one struct per payload (RFC 3830 §6.2-6.15, RFC 6043
// §6.2-6.10 and Appendix A.3, RFC 6509 §4.2).
//
// Why: the codec turns untrusted bytes into these plain values and back.
// Next-payload bytes and length fields are not stored: they are derived from
// the payload sequence and the contents, so a model cannot disagree with its
// own encoding. Enumerated fields are kept as raw numbers (uint8_t) so that a
// model built from JSON can name a value the validator then refuses.
#pragma once

#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "firmware/base/secret_bytes.h"
#include "firmware/mikey/types.h"

namespace tkms::mikey {

using Bytes = std::vector<uint8_t>;

// ---- Common header ---------------------------------------------------------

// One SRTP-ID map entry (RFC 3830 §6.1.1); entry i is crypto session i.
struct SrtpIdEntry {
  uint8_t policy_no = 0;
  uint32_t ssrc = 0;
  uint32_t roc = 0;
  bool operator==(const SrtpIdEntry&) const = default;
};

// One GENERIC-ID map block (RFC 6043 §6.1.1).
struct GenericIdEntry {
  uint8_t cs_id = 0;
  uint8_t prot_type = 0;
  bool s_flag = false;
  std::vector<uint8_t> policies;  // #P policy numbers (#P <= 127)
  Bytes session_data;             // SRTP: empty, SSRC (S=0) or SSRC|ROC|SEQ (S=1)
  Bytes spi;
  bool operator==(const GenericIdEntry&) const = default;
};

struct CommonHeader {
  uint8_t version = kMikeyVersion;
  uint8_t data_type = 0;
  bool v = false;
  uint8_t prf_func = 0;
  uint32_t csb_id = 0;
  // #CS. For the SRTP-ID and GENERIC-ID maps it must equal the number of
  // entries; for the Empty map (RFC 4563) no entries follow.
  uint8_t cs_count = 0;
  uint8_t cs_id_map_type = static_cast<uint8_t>(CsIdMapType::kEmpty);
  std::vector<SrtpIdEntry> srtp_map;
  std::vector<GenericIdEntry> generic_map;
  bool operator==(const CommonHeader&) const = default;
};

// ---- Payloads ---------------------------------------------------------------

// Key validity data of a Key data sub-payload or DH payload (RFC 3830 §6.14).
struct KeyValidity {
  uint8_t kv_type = static_cast<uint8_t>(KvType::kNull);
  Bytes spi;          // kv_type SPI
  Bytes valid_from;   // kv_type Interval
  Bytes valid_to;     // kv_type Interval
  bool operator==(const KeyValidity&) const = default;
};

// KEMAC (RFC 3830 §6.2). encr_data is kept as sent: encrypted unless the
// algorithm is NULL; DecodeKeyDataChain() reads the plaintext sub-payloads.
struct KemacPayload {
  uint8_t encr_alg = 0;
  Bytes encr_data;
  uint8_t mac_alg = 0;
  Bytes mac;  // length implied by mac_alg
  bool operator==(const KemacPayload&) const = default;
};

// PKE (RFC 3830 §6.3).
struct PkePayload {
  uint8_t c = 0;  // cache indicator (2 bits)
  Bytes data;     // at most 0x3FFF bytes
  bool operator==(const PkePayload&) const = default;
};

// DH (RFC 3830 §6.4).
struct DhPayload {
  uint8_t group = 0;
  Bytes value;  // length implied by the group
  KeyValidity kv;
  bool operator==(const DhPayload&) const = default;
};

// SIGN (RFC 3830 §6.5): no next-payload field; always the last payload.
struct SignPayload {
  uint8_t s_type = 0;
  Bytes signature;  // at most 0xFFF bytes
  bool operator==(const SignPayload&) const = default;
};

// T (RFC 3830 §6.6). value holds the 8- or 4-byte timestamp right-aligned.
struct TPayload {
  uint8_t ts_type = 0;
  uint64_t value = 0;
  bool operator==(const TPayload&) const = default;
};

// ID (RFC 3830 §6.7).
struct IdPayload {
  uint8_t id_type = 0;
  Bytes data;
  bool operator==(const IdPayload&) const = default;
};

// CERT (RFC 3830 §6.7).
struct CertPayload {
  uint8_t cert_type = 0;
  Bytes data;
  bool operator==(const CertPayload&) const = default;
};

// CHASH (RFC 3830 §6.8).
struct ChashPayload {
  uint8_t hash_func = 0;
  Bytes hash;  // length implied by hash_func
  bool operator==(const ChashPayload&) const = default;
};

// V (RFC 3830 §6.9).
struct VPayload {
  uint8_t auth_alg = 0;
  Bytes mac;  // length implied by auth_alg
  bool operator==(const VPayload&) const = default;
};

// SP (RFC 3830 §6.10).
struct SpParam {
  uint8_t type = 0;
  Bytes value;
  bool operator==(const SpParam&) const = default;
};
struct SpPayload {
  uint8_t policy_no = 0;
  uint8_t prot_type = 0;
  std::vector<SpParam> params;
  bool operator==(const SpPayload&) const = default;
};

// RAND (RFC 3830 §6.11).
struct RandPayload {
  Bytes rand;  // 1..255 bytes
  bool operator==(const RandPayload&) const = default;
};

// ERR (RFC 3830 §6.12).
struct ErrPayload {
  uint8_t error_no = 0;
  bool operator==(const ErrPayload&) const = default;
};

// General Extension (RFC 3830 §6.15).
struct GeneralExtPayload {
  uint8_t ext_type = 0;
  Bytes data;
  bool operator==(const GeneralExtPayload&) const = default;
};

// TR: timestamp with role (RFC 6043 §6.4).
struct TrPayload {
  uint8_t role = 0;
  uint8_t ts_type = 0;
  uint64_t value = 0;
  bool operator==(const TrPayload&) const = default;
};

// IDR: identity with role (RFC 6043 §6.6, RFC 6509 §4.4).
struct IdrPayload {
  uint8_t role = 0;
  uint8_t id_type = 0;
  Bytes data;
  bool operator==(const IdrPayload&) const = default;
};

// RANDR: RAND with role (RFC 6043 §6.8).
struct RandrPayload {
  uint8_t role = 0;
  Bytes rand;  // 1..255 bytes
  bool operator==(const RandrPayload&) const = default;
};

// SAKKE (RFC 6509 §4.2), structural only.
struct SakkePayload {
  uint8_t params = 0;
  uint8_t id_scheme = 0;
  Bytes data;
  bool operator==(const SakkePayload&) const = default;
};

// Ticket policy flags (RFC 6043 §6.10), one bit each, D first.
enum TicketFlag : uint16_t {
  kFlagD = 1u << 11,  // ticket generated by the KMS
  kFlagE = 1u << 10,  // Ticket Resolve mandatory
  kFlagF = 1u << 9,   // TRANSFER_RESP shall be sent
  kFlagG = 1u << 8,   // Responder shall generate RANDRr
  kFlagH = 1u << 7,   // RANDRi used in TEK derivation
  kFlagI = 1u << 6,   // key forking
  kFlagJ = 1u << 5,   // ticket may be reused
  kFlagK = 1u << 4,   // KMS changed the desired policy
  kFlagL = 1u << 3,   // Initiator may supply session keys
  kFlagM = 1u << 2,   // Responder may supply session keys
  kFlagN = 1u << 1,   // plain RFC 6043 Initiator can use the ticket
  kFlagO = 1u << 0,   // plain RFC 6043 Responder can process the ticket
};
inline constexpr uint16_t kAllTicketFlags = 0x0FFF;
inline constexpr char kTicketFlagLetters[] = "DEFGHIJKLMNO";

// The payloads a TP Data field may carry (RFC 6043 §6.10).
using TpDataPayload = std::variant<IdrPayload, TrPayload, KemacPayload>;

// TP (RFC 6043 §6.10): the ticket policy.
struct TicketPolicy {
  uint16_t ticket_type = 0;
  uint8_t subtype = 0;
  uint8_t version = 0;
  uint8_t prf_func = 0;
  uint16_t flags = 0;  // TicketFlag bits
  std::vector<TpDataPayload> tp_data;
  bool operator==(const TicketPolicy&) const = default;
};

// Initiator Data of a TICKET (RFC 6043 §6.10): First Payload (= V), Vi, Vr.
struct InitiatorData {
  VPayload vi;
  VPayload vr;
  bool operator==(const InitiatorData&) const = default;
};

// TICKET (RFC 6043 §6.10). ticket_data is opaque to everyone but the party
// holding the ticket protection key; DecodeBaseTicketData() reads type 1.
struct TicketPayload {
  TicketPolicy policy;
  Bytes ticket_data;
  std::optional<InitiatorData> initiator_data;
  bool operator==(const TicketPayload&) const = default;
};

// Alternatives in payload-type order. TP and TICKET share TicketPolicy, so the
// TP payload is its own wrapper type.
struct TpPayload {
  TicketPolicy policy;
  bool operator==(const TpPayload&) const = default;
};

using Payload = std::variant<KemacPayload, PkePayload, DhPayload, SignPayload, TPayload,
                             IdPayload, CertPayload, ChashPayload, VPayload, SpPayload,
                             RandPayload, ErrPayload, TrPayload, IdrPayload, RandrPayload,
                             TpPayload, TicketPayload, GeneralExtPayload, SakkePayload>;

// The payload-type number of an alternative.
PayloadType TypeOf(const Payload& p);
PayloadType TypeOf(const TpDataPayload& p);

struct Message {
  CommonHeader header;
  std::vector<Payload> payloads;
  bool operator==(const Message&) const = default;
};

// ---- Contents of KEMAC and ticket data ---------------------------------------

// Key data sub-payload (RFC 3830 §6.13, RFC 6043 §6.2.1). Key and salt are
// secret; they only exist in plaintext after KEMAC decryption.
struct KeyDataPayload {
  uint8_t key_type = 0;
  SecretBytes key;
  std::optional<SecretBytes> salt;  // present iff the key type is *+SALT
  KeyValidity kv;
  bool operator==(const KeyDataPayload&) const = default;
};

// THDR (RFC 6043 Appendix A.3).
struct ThdrPayload {
  Bytes data;
  bool operator==(const ThdrPayload&) const = default;
};

// Ticket Data of the MIKEY base ticket (RFC 6043 Appendix A.1):
// THDR, T, RAND, KEMAC, [IDRpsk], V.
struct BaseTicketData {
  ThdrPayload thdr;
  TPayload t;
  RandPayload rand;
  KemacPayload kemac;
  std::optional<IdrPayload> idr_psk;
  VPayload v;
  bool operator==(const BaseTicketData&) const = default;
};

}  // namespace tkms::mikey
