// ProvisioningStore: the provisioning state the appliance keeps inside its
// token — the pinned provisioning trust anchor and the bundle version
// counter (issue 6, docs/bundles.md).
//
// Why: a signed bundle is only as good as the anchor it is checked against
// and the rule that versions only go up. Both live in the token, not in host
// files:
//   - the anchor is an X.509 CKO_CERTIFICATE labelled kAnchorLabel, public and
//     CKA_MODIFIABLE = FALSE, written once by `tkmsctl token init
//     --provisioning-anchor` (replacing it means destroying it on purpose);
//   - the counter (hal::MonotonicCounter) is kept in two private CKO_DATA
//     objects (SoftHSM2 encrypts private objects at rest), kCounterLabel
//     + ".a" and + ".b", each holding "TKC1" || value (8 bytes, big-endian)
//     || tag (32) || MAC (32), where MAC = HMAC-SHA-256 under the token key
//     kCounterKeyLabel (key_info.h: a KeyUsage::kProvisioningCounter key,
//     generated in the token on first use, never extractable) over
//     "tkms monotonic counter v1" || 0x00 || slot label || 0x00 || the
//     first 44 bytes. The counter is the higher of the two.
//     SoftHSM2 keeps a data object's value read-only, so Advance destroys
//     and re-creates the OLDER slot: a crash in between leaves the newer
//     slot, never a lower value. A slot that does not authenticate is
//     refused (kInternal), so a forged object cannot lower the version.
// What it cannot do: restoring an older copy of the whole token (its object
// files) also restores an older, authentic counter. Only an HSM with a
// hardware monotonic counter closes that; see docs/bundles.md.
#pragma once

#include <optional>
#include <string>

#include "firmware/base/status.h"
#include "firmware/keystore/keystore.h"
#include "hal/monotonic_counter.h"

namespace tkms::keystore {

inline constexpr const char* kAnchorLabel = "tkms-provisioning-anchor";
inline constexpr const char* kCounterLabel = "tkms-bundle-version";

// The anchor certificate (DER), nullopt if the token has none.
Result<std::optional<Bytes>> ReadProvisioningAnchor(Keystore& keystore);
// Pins `der` as the anchor. kFailedPrecondition if an anchor is pinned.
Status PinProvisioningAnchor(Keystore& keystore, ByteSpan der);

// The bundle version counter in `keystore`'s token. Thread-safe (the
// Keystore is); one writer at a time is the caller's business (tkmsd applies
// bundles under one mutex).
class TokenCounter final : public hal::MonotonicCounter {
 public:
  explicit TokenCounter(Keystore& keystore, std::string label = kCounterLabel)
      : keystore_(keystore), label_(std::move(label)) {}
  Result<hal::CounterState> Read() override;
  Status Advance(uint64_t value, std::span<const uint8_t, 32> tag) override;

 private:
  std::string SlotLabel(int slot) const;
  Result<std::optional<hal::CounterState>> ReadSlot(int slot);

  Keystore& keystore_;
  std::string label_;
};

}  // namespace tkms::keystore
