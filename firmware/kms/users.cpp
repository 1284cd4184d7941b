#include "firmware/kms/users.h"

#include <algorithm>

#include "firmware/base/encoding.h"
#include "firmware/base/user_identity.h"

namespace tkms::kms {
namespace {

std::string Key(ByteSpan bytes) { return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()); }

}  // namespace

bool UserRecord::Owns(std::string_view identity) const {
  const std::string wanted = CanonicalUserIdentity(identity);
  return std::any_of(identities.begin(), identities.end(),
                     [&](const std::string& id) { return CanonicalUserIdentity(id) == wanted; });
}

std::shared_ptr<const UserDirectory> UserDirectory::Build(
    const provisioning::KmsConfig& config, const std::vector<TokenUser>& token_users,
    std::vector<std::string>& warnings) {
  auto dir = std::make_shared<UserDirectory>();
  auto policy_of = [&](const std::string& name) {
    const std::string& cls = name.empty() ? config.default_policy_class : name;
    auto it = config.policy_classes.find(cls);
    return std::make_pair(cls, it != config.policy_classes.end() ? it->second : provisioning::PolicyClass{});
  };
  std::unordered_set<std::string> used_psk_ids;
  auto add = [&](UserRecord record, const std::string& where) {
    for (const auto& id : record.identities) {
      const auto it = dir->by_identity_.find(CanonicalUserIdentity(id));
      if (it != dir->by_identity_.end()) {
        warnings.push_back(where + ": identity '" + id + "' already belongs to " + dir->users_[it->second].name +
                           "; user skipped");
        return;
      }
    }
    const size_t index = dir->users_.size();
    for (const auto& id : record.identities) dir->by_identity_[CanonicalUserIdentity(id)] = index;
    dir->by_psk_id_[Key(record.psk_id)] = index;
    used_psk_ids.insert(Key(record.psk_id));
    dir->users_.push_back(std::move(record));
  };

  for (size_t i = 0; i < config.users.size(); ++i) {
    const auto& u = config.users[i];
    const std::string where = "users[" + std::to_string(i) + "]";
    const TokenUser* psk = nullptr;
    for (const auto& t : token_users) {
      const bool match = u.psk_id ? t.psk_id == *u.psk_id
                                  : (!u.identities.empty() &&
                                     std::any_of(t.identities.begin(), t.identities.end(), [&](const std::string& id) {
                                       return SameUserIdentity(id, u.identities[0]);
                                     }));
      if (match) {
        psk = &t;
        break;
      }
    }
    if (psk == nullptr) {
      warnings.push_back(where + ": no user PSK object on the token for " +
                         (u.psk_id ? "psk:" + HexEncode(*u.psk_id) : "identity '" + u.identities.at(0) + "'") +
                         "; user skipped");
      continue;
    }
    auto [cls, policy] = policy_of(u.policy_class);
    add(UserRecord{"psk:" + HexEncode(psk->psk_id), u.identities, SecurityAssociation::kPreSharedKey,
                   psk->psk_id, cls, policy},
        where);
  }
  if (config.token_users) {
    for (const auto& t : token_users) {
      if (used_psk_ids.contains(Key(t.psk_id)) || t.identities.empty() || t.psk_id.empty()) continue;
      auto [cls, policy] = policy_of("");
      add(UserRecord{"psk:" + HexEncode(t.psk_id), t.identities, SecurityAssociation::kPreSharedKey, t.psk_id,
                     cls, policy},
          "token user psk:" + HexEncode(t.psk_id));
    }
  }
  for (const auto& g : config.groups) {
    auto& members = dir->groups_[CanonicalUserIdentity(g.identity)];
    for (const auto& m : g.members) members.insert(CanonicalUserIdentity(m));
  }
  return dir;
}

const UserRecord* UserDirectory::FindByIdentity(std::string_view identity) const {
  auto it = by_identity_.find(CanonicalUserIdentity(identity));
  return it == by_identity_.end() ? nullptr : &users_[it->second];
}

const UserRecord* UserDirectory::FindByPskId(ByteSpan psk_id) const {
  auto it = by_psk_id_.find(Key(psk_id));
  return it == by_psk_id_.end() ? nullptr : &users_[it->second];
}

bool UserDirectory::IsGroup(std::string_view identity) const {
  return groups_.contains(CanonicalUserIdentity(identity));
}

bool UserDirectory::IsGroupMember(std::string_view group, std::string_view member) const {
  auto it = groups_.find(CanonicalUserIdentity(group));
  return it != groups_.end() && it->second.contains(CanonicalUserIdentity(member));
}

}  // namespace tkms::kms
