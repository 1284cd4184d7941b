// Start-up of tkmsd: what the daemon needs before it can serve, the
// configuration and an open keystore, in two steps because tkmsd drops its
// privileges between them (privileges.h): the configuration (and the PIN of
// --config, whose file may be root's) is read first; the token is opened as
// the user tkmsd runs as.
//
// Why: the two ways to start differ only here. --dev makes (or reuses) a
// throw-away SoftHSM2 token in the state directory with a ticket key and the
// demo users alice and bob, whose UE copies of their PSKs are written next to
// it (mode 0600); --config opens the token the configuration names with the
// PIN from its file (or TKMS_PIN, which is then wiped from the environment),
// and refuses to create keys.
#pragma once

#include <memory>

#include "firmware/base/status.h"
#include "firmware/keystore/keystore.h"
#include "firmware/tkmsd/daemon.h"
#include "provisioning/config.h"

namespace tkms::tkmsd {

struct Setup {
  provisioning::KmsConfig config;
  SecretBytes pin;  // --config: read by LoadConfigStep, handed to the keystore by OpenToken
  std::unique_ptr<keystore::Keystore> keystore;
};

// Step 1, before privileges are dropped: the configuration; --dev also
// creates its state directory; --config reads the PIN.
Result<Setup> LoadDevStep(const DaemonOptions& options);
Result<Setup> LoadConfigStep(const DaemonOptions& options);
// Step 2, as the user tkmsd runs as: the keystore (for --dev, the token,
// its ticket key and the demo users are made when missing).
Status OpenDevToken(const DaemonOptions& options, Setup& setup);
Status OpenToken(Setup& setup);

}  // namespace tkms::tkmsd
