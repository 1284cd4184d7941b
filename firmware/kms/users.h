// UserDirectory: who may use this KMS, with which security association and
// which ticket policy (RFC 6043 §4.2.1.4 "check the Initiator's
// authorization"; TS 33.328 B.2.2.2 step 5, per-user policy).
//
// Why: the KMS authenticates a Ticket Request / Resolve with the user's
// pre-shared key and then checks that every identity the message claims
// (IDRi / IDRr) belongs to that user. The directory maps identities and PSK
// ids to users, and group identities to their members. It is an immutable
// snapshot built from the configuration (provisioning/config.h) and the user
// PSK objects on the token (read by the caller, given as TokenUser); a reload
// builds a new one.
// The security association is behind SecurityAssociation so GBA (the KMS as
// NAF, TS 33.220) can be added next to operator-provisioned PSKs.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/kms/keys.h"
#include "provisioning/config.h"

namespace tkms::kms {

// How the KMS shares a key with the user. Only PSKs exist today.
enum class SecurityAssociation : uint8_t { kPreSharedKey };

struct UserRecord {
  std::string name;  // "psk:<hex id>": log-safe, stable
  std::vector<std::string> identities;
  SecurityAssociation association = SecurityAssociation::kPreSharedKey;
  std::vector<uint8_t> psk_id;  // CKA_ID of the PSK object
  std::string policy_class;
  provisioning::PolicyClass policy;

  // Identities are compared in the KMS user identity format
  // (firmware/base/user_identity.h), here and in every lookup below.
  bool Owns(std::string_view identity) const;
};

class UserDirectory {
 public:
  // Users named by the configuration, then (if config.token_users) the other
  // user PSK objects on the token. Problems that concern one user only (a
  // configured user without a PSK on the token, an identity claimed twice)
  // skip that user and are reported in `warnings`.
  static std::shared_ptr<const UserDirectory> Build(const provisioning::KmsConfig& config,
                                                    const std::vector<TokenUser>& token_users,
                                                    std::vector<std::string>& warnings);

  const UserRecord* FindByIdentity(std::string_view identity) const;
  const UserRecord* FindByPskId(ByteSpan psk_id) const;
  // True if `identity` is a configured group identity.
  bool IsGroup(std::string_view identity) const;
  // True if `member` is listed in the group `group`.
  bool IsGroupMember(std::string_view group, std::string_view member) const;
  size_t size() const { return users_.size(); }
  const std::vector<UserRecord>& users() const { return users_; }

 private:
  std::vector<UserRecord> users_;
  std::unordered_map<std::string, size_t> by_identity_;
  std::unordered_map<std::string, size_t> by_psk_id_;  // key: raw bytes
  std::unordered_map<std::string, std::unordered_set<std::string>> groups_;
};

}  // namespace tkms::kms
