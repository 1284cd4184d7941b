#include "firmware/keystore/user_psk.h"

#include <algorithm>

#include "firmware/base/encoding.h"

namespace tkms::keystore {

Status CheckUserIdentity(std::string_view id) {
  if (id.empty() || id.size() > 255) return InvalidArgument("an identity must have 1 to 255 bytes");
  for (unsigned char c : id) {
    if (c <= 0x20 || c == 0x7F) {
      return InvalidArgument("identity '" + std::string(id) + "' contains a space or control character");
    }
  }
  return Status::Ok();
}

std::string UserPskLabel(const std::vector<std::string>& identities) {
  std::string label(kUserLabelPrefix);
  for (size_t i = 0; i < identities.size(); ++i) {
    if (i != 0) label += ' ';
    label += identities[i];
  }
  return label;
}

std::vector<std::string> IdentitiesFromUserLabel(std::string_view label) {
  std::vector<std::string> out;
  if (label.substr(0, kUserLabelPrefix.size()) != kUserLabelPrefix) return out;
  label.remove_prefix(kUserLabelPrefix.size());
  while (!label.empty()) {
    const size_t space = label.find(' ');
    std::string_view id = label.substr(0, space);
    if (!id.empty()) out.emplace_back(id);
    if (space == std::string_view::npos) break;
    label.remove_prefix(space + 1);
  }
  return out;
}

Result<std::vector<UserPskEntry>> ListUserPsks(Keystore& keystore) {
  auto keys = keystore.ListKeys();
  if (!keys.ok()) return keys.error();
  std::vector<UserPskEntry> users;
  for (const auto& k : *keys) {
    if (k.key_class != KeyClass::kSecretKey || k.label.rfind(kUserLabelPrefix, 0) != 0) continue;
    users.push_back(UserPskEntry{k.id, IdentitiesFromUserLabel(k.label), k.label});
  }
  return users;
}

Result<UserPskEntry> AddUserPsk(Keystore& keystore, const std::vector<std::string>& identities,
                                const SecretBytes& psk) {
  if (identities.empty()) return InvalidArgument("a user needs at least one identity");
  for (const auto& id : identities) TKMS_RETURN_IF_ERROR(CheckUserIdentity(id));
  if (psk.size() < kUserPskBytes) {
    return InvalidArgument("a PSK must have at least 32 bytes (HMAC-SHA-256 keys of the MIKEY PRF); got " +
                           std::to_string(psk.size()));
  }
  auto users = ListUserPsks(keystore);
  if (!users.ok()) return users.error();
  for (const auto& existing : *users) {
    for (const auto& id : identities) {
      if (std::find(existing.identities.begin(), existing.identities.end(), id) !=
          existing.identities.end()) {
        return FailedPrecondition("identity '" + id + "' already belongs to user psk:" +
                                  HexEncode(existing.psk_id));
      }
    }
  }
  Bytes psk_id(kUserPskIdBytes);
  TKMS_RETURN_IF_ERROR(keystore.GenerateRandom(psk_id));
  std::string label = UserPskLabel(identities);
  auto info = keystore.ImportSecret(KeyUsage::kUserPsk, label, psk_id, psk, KeyType::kHmacSha256);
  if (!info.ok()) return info.error();
  return UserPskEntry{psk_id, identities, label};
}

}  // namespace tkms::keystore
