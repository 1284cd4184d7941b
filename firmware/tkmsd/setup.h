// Start-up of tkmsd: what the daemon needs before it can serve, the
// configuration and an open keystore.
//
// Why: the two ways to start differ only here. --dev makes (or reuses) a
// throw-away SoftHSM2 token in the state directory with a ticket key and the
// demo users alice and bob, whose UE copies of their PSKs are written next to
// it (mode 0600); --config opens the token the configuration names with the
// PIN from its file (or TKMS_PIN), and refuses to create keys.
#pragma once

#include <memory>

#include "firmware/base/status.h"
#include "firmware/keystore/keystore.h"
#include "firmware/tkmsd/daemon.h"
#include "provisioning/config.h"

namespace tkms::tkmsd {

struct Setup {
  provisioning::KmsConfig config;
  std::unique_ptr<keystore::Keystore> keystore;
};

Result<Setup> PrepareDev(const DaemonOptions& options);
Result<Setup> PrepareConfig(const DaemonOptions& options);

}  // namespace tkms::tkmsd
