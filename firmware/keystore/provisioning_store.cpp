#include "firmware/keystore/provisioning_store.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>
#include <vector>

#include "firmware/base/big_endian.h"

namespace tkms::keystore {
namespace {

constexpr std::array<uint8_t, 4> kCounterMagic = {'T', 'K', 'C', '1'};
constexpr std::string_view kCounterMacContext = "tkms monotonic counter v1";
constexpr size_t kCounterBodyBytes = 4 + 8 + 32;
constexpr size_t kCounterBytes = kCounterBodyBytes + 32;

Result<std::array<uint8_t, 32>> CounterMac(Keystore& keystore, const mikey::crypto::SecretKey& key,
                                           const std::string& label, ByteSpan body) {
  const uint8_t zero = 0;
  const ByteSpan parts[] = {
      ByteSpan(reinterpret_cast<const uint8_t*>(kCounterMacContext.data()), kCounterMacContext.size()),
      ByteSpan(&zero, 1),
      ByteSpan(reinterpret_cast<const uint8_t*>(label.data()), label.size()),
      ByteSpan(&zero, 1),
      body};
  std::array<uint8_t, 32> mac{};
  TKMS_RETURN_IF_ERROR(keystore.provider().Hmac(mikey::crypto::HashAlg::kSha256, key, parts, mac));
  return mac;
}

}  // namespace

Result<std::optional<Bytes>> ReadProvisioningAnchor(Keystore& keystore) {
  return keystore.ReadObjectValue(TokenObjectKind::kCertificate, kAnchorLabel);
}

Status PinProvisioningAnchor(Keystore& keystore, ByteSpan der) {
  auto existing = ReadProvisioningAnchor(keystore);
  if (!existing.ok()) return existing.error();
  if (existing->has_value()) {
    return FailedPrecondition("the token already pins a provisioning anchor ('" + std::string(kAnchorLabel) +
                              "'); it is never replaced implicitly");
  }
  return keystore.CreateObject(TokenObjectKind::kCertificate, kAnchorLabel, der);
}

std::string TokenCounter::SlotLabel(int slot) const { return label_ + (slot == 0 ? ".a" : ".b"); }

Result<std::optional<hal::CounterState>> TokenCounter::ReadSlot(int slot) {
  const std::string label = SlotLabel(slot);
  auto stored = keystore_.ReadObjectValue(TokenObjectKind::kPrivateData, label);
  if (!stored.ok()) return stored.error();
  if (!stored->has_value()) return std::optional<hal::CounterState>();
  const Bytes& v = **stored;
  const std::string what = "the token's counter '" + label + "'";
  if (v.size() != kCounterBytes || !std::equal(kCounterMagic.begin(), kCounterMagic.end(), v.begin())) {
    return Internal(what + " is malformed");
  }
  auto key = keystore_.FindSecretKey(KeySelector::Label(kCounterKeyLabel));
  if (!key.ok()) {
    if (key.error().code() == StatusCode::kNotFound) {
      return Internal(what + " exists but its key '" + std::string(kCounterKeyLabel) + "' does not");
    }
    return key.error();
  }
  auto mac = CounterMac(keystore_, **key, label, ByteSpan(v).first(kCounterBodyBytes));
  if (!mac.ok()) return mac.error();
  if (!ConstantTimeEquals(*mac, ByteSpan(v).subspan(kCounterBodyBytes))) {
    return Internal(what + " does not authenticate: refusing to trust it");
  }
  hal::CounterState state;
  state.value = LoadBe64(std::span<const uint8_t>(v).subspan<4, 8>());
  std::memcpy(state.tag.data(), v.data() + 12, 32);
  return std::optional<hal::CounterState>(state);
}

Result<hal::CounterState> TokenCounter::Read() {
  hal::CounterState best;
  for (int slot = 0; slot < 2; ++slot) {
    auto state = ReadSlot(slot);
    if (!state.ok()) return state.error();
    if (state->has_value() && (*state)->value > best.value) best = **state;
  }
  return best;
}

Status TokenCounter::Advance(uint64_t value, std::span<const uint8_t, 32> tag) {
  std::optional<hal::CounterState> slots[2];
  for (int slot = 0; slot < 2; ++slot) {
    auto state = ReadSlot(slot);
    if (!state.ok()) return state.error();
    slots[slot] = *state;
  }
  const uint64_t current = std::max(slots[0] ? slots[0]->value : 0, slots[1] ? slots[1]->value : 0);
  if (value <= current) {
    return FailedPrecondition("the counter is at " + std::to_string(current) + "; " + std::to_string(value) +
                              " does not advance it");
  }
  auto key = keystore_.FindSecretKey(KeySelector::Label(kCounterKeyLabel));
  if (!key.ok() && key.error().code() == StatusCode::kNotFound) {
    auto made = keystore_.GenerateKey(KeyType::kHmacSha256, KeyUsage::kProvisioningCounter, kCounterKeyLabel, Bytes{});
    if (!made.ok()) return made.error();
    key = keystore_.FindSecretKey(KeySelector::Label(kCounterKeyLabel));
  }
  if (!key.ok()) return key.error();
  // Overwrite the older slot (an absent one first): the newer one stays
  // intact until the new value is stored, so a crash in between leaves the
  // previous value readable, never a lower one.
  int target = 0;
  if (!slots[0]) {
    target = 0;
  } else if (!slots[1]) {
    target = 1;
  } else {
    target = slots[0]->value <= slots[1]->value ? 0 : 1;
  }
  const std::string label = SlotLabel(target);
  Bytes v(kCounterBytes);
  std::memcpy(v.data(), kCounterMagic.data(), 4);
  StoreBe64(value, std::span<uint8_t>(v).subspan<4, 8>());
  std::memcpy(v.data() + 12, tag.data(), 32);
  auto mac = CounterMac(keystore_, **key, label, ByteSpan(v).first(kCounterBodyBytes));
  if (!mac.ok()) return mac.error();
  std::memcpy(v.data() + kCounterBodyBytes, mac->data(), 32);
  if (slots[target]) TKMS_RETURN_IF_ERROR(keystore_.DestroyObject(TokenObjectKind::kPrivateData, label));
  return keystore_.CreateObject(TokenObjectKind::kPrivateData, label, v);
}

}  // namespace tkms::keystore
