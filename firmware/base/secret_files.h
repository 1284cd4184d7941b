// PINs and pre-shared keys that tkmsctl and tkmsd read from or writes to files.
//
// Why: the appliance's rule is that a PIN never appears in argv or a log, and
// that the only secret ever written outside the token is a UE's own copy of
// its pre-shared key, created mode 0600 for out-of-band provisioning. These
// helpers are the one place that does it: PINs come from a file that only its
// owner can read, or from an environment variable; secret files are created
// exclusively (never overwriting, never following a symlink) with mode 0600;
// every host copy lives in SecretBytes and is wiped.
#pragma once

#include <optional>
#include <string>

#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"

namespace tkms {

// Environment variables that may carry PINs (never command-line arguments).
inline constexpr const char* kPinEnv = "TKMS_PIN";
inline constexpr const char* kSoPinEnv = "TKMS_SO_PIN";

// Reads a PIN from `file` if given, else from the environment variable
// `env_var`. A file must be a regular file not readable or writable by group
// or others; one trailing newline is removed. `what` ("PIN", "SO PIN") names
// it in errors, which never contain the PIN.
Result<SecretBytes> ReadPin(const std::optional<std::string>& file, const char* env_var,
                            const char* what);

// Reads a hex-encoded secret (e.g. a PSK) from `file`, with the same
// permission rule as ReadPin. Whitespace is ignored.
Result<SecretBytes> ReadHexSecretFile(const std::string& file, const char* what);

// Creates `file` (which must not exist) with mode 0600 and writes `secret`
// hex-encoded plus a newline. The hex text is wiped after writing.
Status WriteHexSecretFile(const std::string& file, const SecretBytes& secret, const char* what);

// Creates `file` (which must not exist) with mode 0600 and writes `secret`
// as it is (e.g. a generated PIN).
Status WriteSecretFile(const std::string& file, const SecretBytes& secret, const char* what);

}  // namespace tkms
