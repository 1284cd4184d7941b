#include "firmware/keystore/key_info.h"

#include "firmware/base/big_endian.h"

namespace tkms::keystore {

std::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kAes256: return "aes-256";
    case KeyType::kHmacSha256: return "hmac-sha256";
    case KeyType::kHmacSha1: return "hmac-sha1";
    case KeyType::kEcP256: return "ec-p256";
    case KeyType::kRsa2048: return "rsa-2048";
  }
  return "unknown";
}

std::string_view KeyUsageName(KeyUsage usage) {
  switch (usage) {
    case KeyUsage::kTicket: return "ticket";
    case KeyUsage::kUserPsk: return "user-psk";
    case KeyUsage::kWrapping: return "wrapping";
    case KeyUsage::kSigning: return "signing";
    case KeyUsage::kGeneric: return "generic";
    case KeyUsage::kProvisioningCounter: return "provisioning-counter";
    case KeyUsage::kTlsServer: return "tls-server";
  }
  return "unknown";
}

std::string_view KeyClassName(KeyClass key_class) {
  switch (key_class) {
    case KeyClass::kSecretKey: return "secret-key";
    case KeyClass::kPrivateKey: return "private-key";
    case KeyClass::kPublicKey: return "public-key";
  }
  return "unknown";
}

std::string TicketKeyLabel(uint32_t key_id) {
  return std::string(kTicketKeyLabelPrefix) + std::to_string(key_id);
}

Bytes TicketKeyId(uint32_t key_id) {
  const auto be = Be32Bytes(key_id);
  return Bytes(be.begin(), be.end());
}

KeySelector TicketKeySelector(uint32_t key_id) {
  return KeySelector{TicketKeyLabel(key_id), TicketKeyId(key_id)};
}

std::optional<uint32_t> ParseTicketKeyLabel(std::string_view label) {
  if (label.substr(0, kTicketKeyLabelPrefix.size()) != kTicketKeyLabelPrefix) return std::nullopt;
  const std::string_view digits = label.substr(kTicketKeyLabelPrefix.size());
  if (digits.empty() || digits.size() > 10 || (digits.size() > 1 && digits[0] == '0')) {
    return std::nullopt;
  }
  uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(value);
}

bool IsTlsKeyLabel(std::string_view label) {
  return label.size() > kTlsKeyLabelPrefix.size() && label.size() <= 128 &&
         label.substr(0, kTlsKeyLabelPrefix.size()) == kTlsKeyLabelPrefix;
}

}  // namespace tkms::keystore
