// PRF labels: the exact byte layouts of every MIKEY / MIKEY-TICKET key
// derivation label, and the constants (digits of e) that select the key type.
//
// Why: the label is the only thing that separates one derived key from
// another; one wrong byte gives an interoperability failure that no test
// against ourselves would catch. Each builder below implements one RFC clause:
//   Rfc3830TgkLabel      RFC 3830 §4.1.3   const || CS ID || CSB ID || RAND
//   Rfc3830MessageLabel  RFC 3830 §4.1.4   const || 0xFF || CSB ID || RAND
//   TicketMessageLabel   RFC 6043 §5.1.2   const || 0xFF || CSB ID || 0x01/0x02 ||
//                                          L8 || [RANDRi] || L8 || [RANDRr]
//   TicketTgkLabel       RFC 6043 §5.1.3   const || CS ID || 0xFFFFFFFF || 0x03 ||
//                                          L8 || [RANDRi] || L8 || [RANDRr]
//   ForkingLabel         RFC 6043 §5.1.1   const || 0xFF || 0xFFFFFFFF || 0x00 ||
//                                          L16 || ID Data || L8 || RANDRkms
//   InitiatorDataLabel   RFC 6043 §6.10    const || 0xFF || 0xFFFFFFFF || 0x04
//   TpkLabel             RFC 6043 §A.2.1   const || 0xFF || 0xFFFFFFFF || 0x05 || L8 || RAND
//   MpkLabel             RFC 6043 §A.2.2   const || 0xFF || 0xFFFFFFFF || 0x06 || L8 || RAND
// Constants and integers are big-endian; L8/L16 are byte lengths as 8/16-bit
// unsigned integers. RANDs enter as the RAND value only (RFC 6043 §5.1 and
// §A.2: never the whole RANDR/RAND payload). A length that does not fit its
// field is refused with kInvalidArgument.
//
// Reading of ambiguous text: in RFC 6043 §5.1.2/§5.1.3 an absent RAND and a
// present zero-length RAND give the same bytes (length 0, no value); the RFC
// requires at least one of RANDRi/RANDRr to be used, so a label in which both
// are absent or empty is refused.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"

namespace tkms::mikey::crypto {

// Keys derived from a TGK / TGK' / GTGK (RFC 3830 Table 4.1.3).
enum class TgkKeyType : uint8_t { kTek, kAuth, kEncr, kSalt };
// Keys derived from a PSK, envelope key, MPKi, MPKr', MPKr or TPK
// (RFC 3830 Table 4.1.4).
enum class MessageKeyType : uint8_t { kEncr, kAuth, kSalt };
// Forked keys (RFC 6043 Table 5.1).
enum class ForkedKeyType : uint8_t { kMpkr, kTgk };
// Keys derived from the base ticket's MPK (RFC 6043 Table A.1).
enum class MpkKeyType : uint8_t { kMpki, kMpkr };
// Which message of an RFC 6043 exchange the keys protect (§5.1.2): the byte
// that follows the CSB ID in the label.
enum class Direction : uint8_t { kInitial = 0x01, kResponse = 0x02 };

uint32_t LabelConstant(TgkKeyType type);      // 0x2AD01C64 0x1B5C7973 0x15798CEF 0x39A2C14B
uint32_t LabelConstant(MessageKeyType type);  // 0x150533E1 0x2D22AC75 0x29B88916
uint32_t LabelConstant(ForkedKeyType type);   // 0x2B288856 0x1512B54A
uint32_t LabelConstant(MpkKeyType type);      // 0x220E99A2 0x1F4D675B

// The crypto session a TEK (or TGK-derived key) is for, RFC 3830 form: CS ID
// (with an SRTP-ID map, the 1-based position in the map), the HDR CSB ID and
// the RAND payload's value. Spans are borrowed: they must outlive the use.
struct Rfc3830TekContext {
  uint8_t cs_id = 0;
  uint32_t csb_id = 0;
  ByteSpan rand;
};

// RFC 6043 form: CS ID from the GENERIC-ID map, RANDRi if the Ticket Policy
// H flag is set, RANDRr if its G flag is set.
struct TicketTekContext {
  uint8_t cs_id = 0;
  std::optional<ByteSpan> randri;
  std::optional<ByteSpan> randrr;
};

// Builds a TicketTekContext from the Ticket Policy flags (RFC 6043 §5.1.3):
// RANDRi is used iff h_flag, RANDRr iff g_flag. A flag that is set with an
// empty RAND, or neither flag set, is refused with kInvalidArgument.
Result<TicketTekContext> TicketTekContextFromFlags(uint8_t cs_id, bool h_flag, bool g_flag,
                                                   ByteSpan randri, ByteSpan randrr);

std::vector<uint8_t> Rfc3830TgkLabel(TgkKeyType type, const Rfc3830TekContext& context);
std::vector<uint8_t> Rfc3830MessageLabel(MessageKeyType type, uint32_t csb_id, ByteSpan rand);
Result<std::vector<uint8_t>> TicketMessageLabel(MessageKeyType type, Direction direction,
                                                uint32_t csb_id, std::optional<ByteSpan> randri,
                                                std::optional<ByteSpan> randrr);
Result<std::vector<uint8_t>> TicketTgkLabel(TgkKeyType type, const TicketTekContext& context);
Result<std::vector<uint8_t>> ForkingLabel(ForkedKeyType type, ByteSpan id_data,
                                          ByteSpan randrkms);
std::vector<uint8_t> InitiatorDataLabel(MessageKeyType type);
Result<std::vector<uint8_t>> TpkLabel(MessageKeyType type, ByteSpan rand);
Result<std::vector<uint8_t>> MpkLabel(MpkKeyType type, ByteSpan rand);

}  // namespace tkms::mikey::crypto
