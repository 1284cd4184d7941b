// Ticket formats: how the KMS seals the keys of a granted ticket into Ticket
// Data and opens them again at resolve time (RFC 6043 §6.10, §11).
//
// Why: RFC 6043 §11 lets new ticket types be added, and TS 33.328 defines its
// own (type 2, subtype 0, version 0: its text is not available to this
// project). The ticket service therefore never touches Ticket Data itself: it
// asks the registered TicketFormat whose Handles() accepts the policy. One
// format exists today, the MIKEY base ticket (Appendix A, base_ticket.h).
// Adding a format = implementing this interface and registering it in
// TicketFormats (docs/kms.md, "Adding a ticket format").
//
// Every format returns the keys the Ticket Transfer exchange needs: MPKi,
// MPKr (RFC 6043 §4.2.1.5, derived as the format defines; for the base ticket
// Appendix A.2.2) and the session keys (TEK/TGK/GTGK).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "firmware/kms/timestamps.h"
#include "firmware/mikey/message.h"

namespace tkms::kms {

struct TicketKeys {
  SecretBytes mpki;
  SecretBytes mpkr;  // always derived; sent only when the I flag is set
  // The SPI of the MPK (RFC 6043 §6.2.1: "An SPI (or MKI) MUST be specified
  // for each key"); MPKi and MPKr are sent with SPI mpk_spi || 0x01 / 0x02.
  mikey::Bytes mpk_spi;
  std::vector<mikey::KeyDataPayload> session_keys;  // with their SPIs
};

struct SealedTicket {
  mikey::Bytes ticket_data;
  TicketKeys keys;
};

// Why a ticket cannot be opened (all are MIKEY error 14, Invalid TICKET; the
// kind goes to logs and metrics).
enum class TicketErrorKind : uint8_t { kUnsupportedType, kMalformed, kUnknownKey, kBadMac };

struct TicketError {
  TicketErrorKind kind = TicketErrorKind::kMalformed;
  std::string detail;  // log-safe
  // Set when the token failed (the caller answers 503, not a MIKEY Error).
  std::optional<Status> token_failure;
};

class TicketFormat {
 public:
  virtual ~TicketFormat() = default;
  virtual std::string_view name() const = 0;
  // True if this format produces / opens tickets of the policy's type,
  // subtype and version.
  virtual bool Handles(const mikey::TicketPolicy& policy) const = 0;
  // Generates the MPK, protects it (with SPI `mpk_spi`) and `session_keys`
  // for `policy` (the granted policy, whose PRF func the format uses) and
  // returns the Ticket Data.
  virtual Result<SealedTicket> Seal(const mikey::TicketPolicy& policy, const mikey::Bytes& mpk_spi,
                                    std::vector<mikey::KeyDataPayload> session_keys, TimePoint now) = 0;
  // Verifies and opens the Ticket Data of `ticket`.
  virtual Result<TicketKeys, TicketError> Open(const mikey::TicketPayload& ticket) = 0;
};

// The registered formats, in order of preference.
class TicketFormats {
 public:
  void Add(std::unique_ptr<TicketFormat> format) { formats_.push_back(std::move(format)); }
  TicketFormat* For(const mikey::TicketPolicy& policy) const {
    for (const auto& f : formats_) {
      if (f->Handles(policy)) return f.get();
    }
    return nullptr;
  }

 private:
  std::vector<std::unique_ptr<TicketFormat>> formats_;
};

}  // namespace tkms::kms
