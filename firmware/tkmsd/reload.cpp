#include "firmware/tkmsd/reload.h"

#include <string>
#include <vector>

#include "firmware/base/log.h"
#include "firmware/keystore/kms_keys.h"

namespace tkms::tkmsd {

Status ProbeToken(keystore::Keystore& keystore) {
  uint8_t probe[1];
  if (Status s = keystore.GenerateRandom(probe); !s.ok()) return Unavailable("token RNG: " + s.message());
  auto current = keystore.CurrentTicketKeyId();
  if (!current.ok()) return Status::Ok();  // no ticket key yet: /readyz says so, not a token fault
  auto held = keystore.TokenHoldsSecretKey(keystore::TicketKeyLabel(*current));
  if (!held.ok()) return Unavailable("searching the token: " + held.error().message());
  if (*held) return Status::Ok();
  return Unavailable("the token no longer holds ticket key " + std::to_string(*current));
}

Result<std::shared_ptr<const kms::KmsSnapshot>> BuildSnapshot(const provisioning::KmsConfig& config,
                                                              keystore::Keystore& keystore) {
  auto token_users = keystore::ListTokenUsers(keystore);
  if (!token_users.ok()) return Status(token_users.error().code(), "listing users: " + token_users.error().message());
  std::vector<std::string> warnings;
  auto users = kms::UserDirectory::Build(config, *token_users, warnings);
  for (const auto& w : warnings) LogLine(LogLevel::kWarn, "user_skipped").Add("reason", w);
  auto snap = std::make_shared<kms::KmsSnapshot>();
  snap->config = config;
  snap->users = std::move(users);
  return std::shared_ptr<const kms::KmsSnapshot>(std::move(snap));
}

namespace {

// Users the configuration names that the new directory does not serve.
std::vector<std::string> UnservedUsers(const provisioning::KmsConfig& config, const kms::UserDirectory& users) {
  std::vector<std::string> missing;
  for (const auto& u : config.users) {
    if (!u.identities.empty() && users.FindByIdentity(u.identities.front()) == nullptr) {
      missing.push_back(u.identities.front());
    }
  }
  return missing;
}

}  // namespace

Result<std::shared_ptr<const kms::KmsSnapshot>> PrepareSnapshot(const provisioning::KmsConfig& config,
                                                                keystore::Keystore& keystore,
                                                                const kms::KmsSnapshot* running) {
  // Probe first: a refresh of an unreadable token would empty the keystore.
  TKMS_RETURN_IF_ERROR(ProbeToken(keystore));
  if (Status s = keystore.Refresh(); !s.ok()) return Unavailable("re-reading the token: " + s.message());
  if (running != nullptr) {
    if (auto key = keystore.CurrentTicketKeyId(); !key.ok()) {
      return FailedPrecondition("the token has no ticket key any more (" + key.error().message() + ")");
    }
  }
  // The newest ticket key must be able to seal tickets (an hmac-sha256 key);
  // otherwise tickets stay sealed with the newest one that can.
  if (auto newest = keystore.CurrentTicketKeyId(); newest.ok()) {
    auto sealing = keystore.CurrentSealingTicketKeyId();
    if (!sealing.ok() || *sealing != *newest) {
      return FailedPrecondition(
          "ticket key " + std::to_string(*newest) + " is not an hmac-sha256 key and cannot seal tickets (" +
          (sealing.ok() ? "ticket key " + std::to_string(*sealing) + " keeps sealing them"
                        : std::string("no ticket key can")) +
          "); rotate again with: tkmsctl key rotate --type hmac-sha256, then destroy key " + std::to_string(*newest));
    }
  }
  auto snap = BuildSnapshot(config, keystore);
  if (!snap.ok()) return snap.error();
  const auto missing = running != nullptr ? UnservedUsers(config, *(*snap)->users) : std::vector<std::string>{};
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return FailedPrecondition("the token holds no PSK for " + std::to_string(missing.size()) +
                              " configured user(s): " + list + " (tkmsctl user add on this token, or name the "
                              "psk_id it holds)");
  }
  if (running != nullptr && running->users->size() > 0 && (*snap)->users->size() == 0) {
    return FailedPrecondition("the new configuration would leave the KMS without any of its " +
                              std::to_string(running->users->size()) + " users");
  }
  return snap;
}

}  // namespace tkms::tkmsd
