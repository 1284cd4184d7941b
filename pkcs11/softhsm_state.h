// SoftHSM2 state directories: a self-contained token store for development,
// demos and tests (tkmsctl token init --state-dir, tkmsd --dev).
//
// Why: SoftHSM2 2.6.1 finds its tokens through the file named by the
// SOFTHSM2_CONF environment variable, read when the module is initialised. A
// state directory DIR holds DIR/softhsm2.conf (tokendir = DIR/tokens, file
// object store) so that one directory is one throw-away HSM that pkcs11-tool
// can inspect too. The directory and its tokens are mode 0700. Production
// appliances use their vendor module and never call this.
//
// Why here: it configures where one PKCS#11 module (SoftHSM2) keeps its
// tokens, and makes PINs for tokens that do not exist yet: module set-up, not
// a rule about keys, so it belongs to the plumbing, next to InitToken.
#pragma once

#include <string>

#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"

namespace tkms::pkcs11 {

// DIR/softhsm2.conf.
std::string SoftHsmConfPath(const std::string& state_dir);

// Creates DIR and DIR/tokens (mode 0700) and DIR/softhsm2.conf if missing.
Status CreateSoftHsmStateDir(const std::string& state_dir);

// Points SOFTHSM2_CONF at DIR/softhsm2.conf (before any module is loaded).
// kNotFound (with the command that creates it) if must_exist and it is missing.
Status UseSoftHsmStateDir(const std::string& state_dir, bool must_exist);

// A 24-character PIN from the OS entropy source, for tokens that do not
// exist yet (alphabet without look-alike characters, no modulo bias).
Result<SecretBytes> GeneratePin();


}  // namespace tkms::pkcs11
