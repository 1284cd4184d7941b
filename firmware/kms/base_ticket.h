// The MIKEY base ticket (RFC 6043 Appendix A): ticket type 1, subtype 1,
// version 1, in mode 1 (only the KMS holds the ticket protection key).
//
//   Ticket Data = THDR, T, RAND, KEMAC, [IDRpsk], V
//
// Choices the RFC leaves to the implementation (docs/kms.md):
//   THDR data    "tkms" || 0x01 (format version); ignored when opening
//   T            NTP-UTC time of issue; it is the T of the KEMAC IV, with
//                CSB ID 0xFFFFFFFF (Appendix A.1)
//   RAND         32 bytes from the token RNG (>= the TPK and MPK lengths)
//   KEMAC        AES-CM-256, NULL MAC: MPK (key type 6, SPI) || session keys;
//                encr/salt keys from the TPK (Appendix A.2.1)
//   IDRpsk       role PSK, type byte string: the 4-byte big-endian id of the
//                ticket key (the TPK), so keys can rotate: old ids keep
//                resolving until the key is destroyed
//   V            HMAC-SHA-256-256 with the TPK-derived auth key over the
//                TICKET payload minus next payload, Initiator Data and MAC
//   MPK          32 bytes from the token RNG; MPKi/MPKr by Appendix A.2.2
// The TPK is a 32-byte HMAC-SHA-256 token key ("tkms-ticket-<id>"): the PRF
// that derives the ticket keys runs its HMACs inside the token.
#pragma once

#include "firmware/kms/keys.h"
#include "firmware/kms/ticket_format.h"

namespace tkms::kms {

inline constexpr size_t kBaseTicketRandBytes = 32;
inline constexpr size_t kBaseTicketMpkBytes = 32;

class BaseTicketFormat final : public TicketFormat {
 public:
  explicit BaseTicketFormat(KmsKeys& keys) : keys_(keys) {}
  std::string_view name() const override { return "mikey-base-ticket"; }
  bool Handles(const mikey::TicketPolicy& policy) const override;
  Result<SealedTicket> Seal(const mikey::TicketPolicy& policy, const mikey::Bytes& mpk_spi,
                            std::vector<mikey::KeyDataPayload> session_keys, TimePoint now) override;
  Result<TicketKeys, TicketError> Open(const mikey::TicketPayload& ticket) override;

 private:
  KmsKeys& keys_;
};

}  // namespace tkms::kms
