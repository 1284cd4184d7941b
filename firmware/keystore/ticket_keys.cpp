// Ticket-protection keys and their rotation: every ticket carries the id of
// the key that protected it (RFC 6043 Appendix A lets the Ticket Data name
// the key; TS 33.328 key rotation), so ids only go up and old keys keep
// resolving until they are retired. Key naming is in key_info.h.
#include "firmware/keystore/catalog.h"
#include "firmware/keystore/guarded.h"
#include "firmware/keystore/keystore.h"

namespace tkms::keystore {

Result<uint32_t> Keystore::CurrentTicketKeyId() {
  return Guarded("Keystore::CurrentTicketKeyId", [&]() -> Result<uint32_t> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    return catalog_->CurrentTicketKeyId();
  });
}

Result<uint32_t> Keystore::CurrentSealingTicketKeyId() {
  return Guarded("Keystore::CurrentSealingTicketKeyId", [&]() -> Result<uint32_t> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    auto id = catalog_->CurrentTicketKeyId(KeyType::kHmacSha256);
    if (!id.ok() && id.error().code() == StatusCode::kNotFound) {
      return NotFound("there is no hmac-sha256 ticket key (tkmsctl key rotate --type hmac-sha256)");
    }
    return id;
  });
}

Result<KeyInfo> Keystore::RotateTicketKey(KeyType type) {
  return Guarded("Keystore::RotateTicketKey", [&]() -> Result<KeyInfo> {
    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    uint32_t next = 1;
    Result<uint32_t> current = catalog_->CurrentTicketKeyId();
    if (current.ok()) {
      if (*current == UINT32_MAX) return ResourceExhausted("ticket key ids are exhausted");
      next = *current + 1;
    } else if (current.error().code() != StatusCode::kNotFound) {
      return current.error();
    }
    return GenerateLocked(type, KeyUsage::kTicket, TicketKeyLabel(next), TicketKeyId(next));
  });
}

}  // namespace tkms::keystore
