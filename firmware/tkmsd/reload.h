// Snapshots: the configuration and users the KMS serves, built from a
// configuration and the token, and the rule that a reload never makes
// things worse.
//
// Why: a reload (SIGHUP, a signed bundle, recovery after a token outage)
// replaces everything the KMS checks requests against. One that was built
// while the token could not be read, or that lost the current ticket key or
// users the configuration still names, would silently turn every request
// into "Auth failure"; such a reload is refused, the running snapshot stays
// in force, and the refusal is logged (docs/tkmsd.md "Reloads").
#pragma once

#include <memory>

#include "firmware/base/status.h"
#include "firmware/kms/exchange.h"
#include "firmware/keystore/keystore.h"
#include "provisioning/config.h"

namespace tkms::tkmsd {

// The token can be read and still holds the current ticket key as a token
// object: a real token read (C_GenerateRandom, C_FindObjects), not the
// keystore's host-side catalogue. kUnavailable with the reason otherwise.
Status ProbeToken(keystore::Keystore& keystore);

// The snapshot for `config` with the token's users as the keystore lists
// them now (no refresh).
Result<std::shared_ptr<const kms::KmsSnapshot>> BuildSnapshot(const provisioning::KmsConfig& config,
                                                              keystore::Keystore& keystore);

// Probes the token, re-reads its keys, builds the snapshot for `config`
// and refuses it if it is worse than `running` (nullptr at start-up):
//   token unreadable, or without its ticket key      kUnavailable
//   no current ticket key after the refresh          kFailedPrecondition
//   a user the configuration names is not served
//   (its PSK is not on the token)                    kFailedPrecondition
//   no user at all where `running` had some          kFailedPrecondition
// At start-up (`running` nullptr) only the token checks apply; users
// without a PSK are skipped with a user_skipped warning.
Result<std::shared_ptr<const kms::KmsSnapshot>> PrepareSnapshot(const provisioning::KmsConfig& config,
                                                                keystore::Keystore& keystore,
                                                                const kms::KmsSnapshot* running);

}  // namespace tkms::tkmsd
