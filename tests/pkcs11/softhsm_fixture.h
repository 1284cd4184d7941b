// SoftHsmToken: a throw-away PKCS#11 token for tests and benchmarks.
//
// Why: the PKCS#11 plumbing and the keystore must be tested against a real
// module, never a mock, and each test wants a clean token. SoftHsmToken creates a fresh temporary
// directory with its own softhsm2.conf (directories.tokendir = <dir>/tokens,
// objectstore.backend = file, log.level = ERROR), points SOFTHSM2_CONF at it
// BEFORE the module is loaded (SoftHSM2 reads it in C_Initialize), loads the
// module named by $TKMS_PKCS11_MODULE (default
// /usr/lib/softhsm/libsofthsm2.so) so the same suite can run against another
// module, and initialises a token with pkcs11::InitToken (no PIN on any
// command line). The destructor releases its Module reference (finalising
// the library once the last user is gone) and removes the directory. A
// Keystore on it: tests/keystore/keystore_fixture.h.
//
// One SoftHsmToken at a time per process (one Module per library per
// process): tests in one binary run sequentially, each with its own.
// AddToken() puts more tokens in the same directory (SoftHSM2 keeps any
// number of tokens in one tokendir).
//
// WARNING: with $TKMS_PKCS11_MODULE set to a real HSM, Create() initialises
// the first uninitialised token of that module.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "pkcs11/module.h"

namespace tkms::pkcs11::test {

// $TKMS_PKCS11_MODULE, or /usr/lib/softhsm/libsofthsm2.so.
std::string ModulePathFromEnv();

class SoftHsmToken final {
 public:
  static constexpr std::string_view kDefaultLabel = "tkms-test";
  static constexpr std::string_view kUserPin = "tkms-user-pin-4711";
  static constexpr std::string_view kSoPin = "tkms-so-pin-0815";

  static Result<std::unique_ptr<SoftHsmToken>> Create(std::string label = std::string(kDefaultLabel));

  ~SoftHsmToken();
  SoftHsmToken(const SoftHsmToken&) = delete;
  SoftHsmToken& operator=(const SoftHsmToken&) = delete;

  // Another token (same PINs) in the same token directory.
  Status AddToken(std::string_view label);

  const std::shared_ptr<Module>& module() const { return module_; }
  const std::string& label() const { return label_; }
  const std::string& dir() const { return dir_; }
  const std::string& conf_path() const { return conf_path_; }
  const std::string& module_path() const { return module_path_; }
  static SecretBytes UserPin();
  static SecretBytes SoPin();

 private:
  SoftHsmToken() = default;

  std::string dir_;
  std::string conf_path_;
  std::string module_path_;
  std::string label_;
  std::shared_ptr<Module> module_;
};

}  // namespace tkms::pkcs11::test
