// Start-up: the configuration and an open keystore, for --dev (a throw-away
// SoftHSM2 token with a ticket key and demo users) and for --config.
#include "firmware/tkmsd/setup.h"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "firmware/base/log.h"
#include "firmware/base/secret_files.h"
#include "firmware/keystore/provisioning_store.h"
#include "firmware/keystore/user_psk.h"
#include "pkcs11/softhsm_state.h"
#include "pkcs11/token.h"
#include "provisioning/bundle.h"

namespace tkms::tkmsd {
namespace {

constexpr const char* kDefaultModule = "/usr/lib/softhsm/libsofthsm2.so";
constexpr const char* kDevTokenLabel = "tkms";
constexpr const char* kDevKmsIdentity = "kms.example.org";

struct DemoUser {
  const char* name;
  const char* identity;
};
constexpr DemoUser kDemoUsers[] = {{"alice", "sip:alice@example.org"}, {"bob", "sip:bob@example.org"}};

Status Fail(const std::string& what, const Status& s) { return Status(s.code(), what + ": " + s.message()); }

std::string ModuleFromEnvironment() {
  const char* env = std::getenv("TKMS_PKCS11_MODULE");
  return (env != nullptr && *env != '\0') ? env : kDefaultModule;
}

Status EnsureTicketKey(keystore::Keystore& keystore, bool create) {
  auto current = keystore.CurrentTicketKeyId();
  if (current.ok()) return Status::Ok();
  if (current.error().code() != StatusCode::kNotFound) return Fail("ticket key", current.error());
  if (!create) {
    LogLine(LogLevel::kWarn, "no_ticket_key")
        .Add("hint", "create one with: tkmsctl key rotate --type hmac-sha256")
        .Add("effect", "ticket requests fail and /readyz reports not ready");
    return Status::Ok();
  }
  auto key = keystore.RotateTicketKey(keystore::KeyType::kHmacSha256);
  if (!key.ok()) return Fail("generating the ticket key", key.error());
  LogLine(LogLevel::kInfo, "ticket_key_generated").Add("label", key->label);
  return Status::Ok();
}

// --dev --provisioning-anchor FILE: pins FILE unless the token pins an
// anchor already (then it must be the same certificate).
Status PinDevAnchor(keystore::Keystore& keystore, const std::string& path) {
  auto der = provisioning::LoadCertificateFile(path);
  if (!der.ok()) return Fail("provisioning anchor", der.error());
  auto pinned = keystore::ReadProvisioningAnchor(keystore);
  if (!pinned.ok()) return Fail("reading the pinned provisioning anchor", pinned.error());
  if (pinned->has_value()) {
    if (**pinned != *der) {
      return FailedPrecondition("the development token already pins another provisioning anchor; "
                                "remove the state directory to start afresh");
    }
    return Status::Ok();
  }
  TKMS_RETURN_IF_ERROR(keystore::PinProvisioningAnchor(keystore, *der));
  LogLine(LogLevel::kInfo, "provisioning_anchor_pinned").Add("file", path);
  return Status::Ok();
}

// The demo users alice and bob, each with a PSK in the token and the UE's
// copy in UE_DIR/<name>.psk (mode 0600), unless the token has them already.
Status AddDemoUsers(keystore::Keystore& keystore, const std::string& ue_dir) {
  auto users = keystore::ListUserPsks(keystore);
  if (!users.ok()) return Fail("listing users", users.error());
  std::error_code ec;
  std::filesystem::create_directories(ue_dir, ec);
  ::chmod(ue_dir.c_str(), 0700);
  for (const auto& demo : kDemoUsers) {
    bool present = false;
    for (const auto& u : *users) {
      for (const auto& id : u.identities) present = present || id == demo.identity;
    }
    if (present) continue;
    const std::string psk_file = ue_dir + "/" + demo.name + ".psk";
    if (std::filesystem::exists(psk_file)) {
      return FailedPrecondition(psk_file + " exists but the token has no user " + demo.identity +
                                "; remove the state directory to start afresh");
    }
    SecretBytes psk(keystore::kUserPskBytes);
    TKMS_RETURN_IF_ERROR(keystore.GenerateRandom(psk));
    auto added = keystore::AddUserPsk(keystore, {demo.identity}, psk);
    if (!added.ok()) return Fail(std::string("adding demo user ") + demo.name, added.error());
    if (auto s = WriteHexSecretFile(psk_file, psk, "PSK"); !s.ok()) {
      (void)keystore.DestroyKey(keystore::KeySelector{added->label, added->psk_id});
      return s;
    }
    LogLine(LogLevel::kInfo, "dev_user_added").Add("user", demo.name).Add("identity", demo.identity).Add("psk_file", psk_file);
  }

  return Status::Ok();
}

// TKMS_PIN has been read: its bytes are wiped where the environment keeps
// them and the variable removed, so the PIN is not kept in the process's
// memory beyond the keystore's locked copy.
void ScrubPinFromEnvironment() {
  if (char* value = std::getenv(kPinEnv); value != nullptr) {
    SecureWipe(value, std::strlen(value));
    ::unsetenv(kPinEnv);
  }
}

}  // namespace

Result<Setup> LoadDevStep(const DaemonOptions& o) {
  const std::string dir = *o.state_dir;
  TKMS_RETURN_IF_ERROR(pkcs11::CreateSoftHsmStateDir(dir));
  Setup setup;
  setup.config.kms_identity = kDevKmsIdentity;
  setup.config.token.module_path = ModuleFromEnvironment();
  setup.config.token.token = kDevTokenLabel;
  setup.config.token.pin_file = dir + "/token.pin";
  setup.config.token.softhsm2_conf = pkcs11::SoftHsmConfPath(dir);
  setup.config.policy_classes[setup.config.default_policy_class] = provisioning::PolicyClass{};
  setup.config.token_users = true;
  return setup;
}

// --dev: a SoftHSM2 token in DIR, a ticket key, demo users alice and bob.
Status OpenDevToken(const DaemonOptions& o, Setup& setup) {
  const std::string dir = *o.state_dir;
  TKMS_RETURN_IF_ERROR(pkcs11::UseSoftHsmStateDir(dir, /*must_exist=*/true));
  const std::string& module_path = setup.config.token.module_path;
  auto module = pkcs11::Module::Load(module_path);
  if (!module.ok()) return Fail("PKCS#11 module " + module_path, module.error());

  const std::string pin_file = setup.config.token.pin_file;
  SecretBytes pin;
  if (!std::filesystem::exists(pin_file)) {
    auto so = pkcs11::GeneratePin();
    auto user = pkcs11::GeneratePin();
    if (!so.ok()) return so.error();
    if (!user.ok()) return user.error();
    TKMS_RETURN_IF_ERROR(WriteSecretFile(dir + "/so.pin", *so, "SO PIN"));
    TKMS_RETURN_IF_ERROR(WriteSecretFile(pin_file, *user, "PIN"));
    if (auto s = pkcs11::InitToken(**module, kDevTokenLabel, *so, *user); !s.ok()) {
      return Fail("initialising the development token", s);
    }
    pin = std::move(*user);
    LogLine(LogLevel::kInfo, "dev_token_created").Add("state_dir", dir).Add("label", kDevTokenLabel);
  } else {
    auto read = ReadPin(pin_file, nullptr, "PIN");
    if (!read.ok()) return read.error();
    pin = std::move(*read);
    LogLine(LogLevel::kInfo, "dev_token_reused").Add("state_dir", dir).Add("label", kDevTokenLabel);
  }
  keystore::KeystoreOptions ks;
  ks.token = kDevTokenLabel;
  ks.pin = std::move(pin);
  auto keystore = keystore::Keystore::Open(*module, ks);
  if (!keystore.ok()) return Fail("opening the development token", keystore.error());
  TKMS_RETURN_IF_ERROR(EnsureTicketKey(**keystore, /*create=*/true));
  if (o.provisioning_anchor) TKMS_RETURN_IF_ERROR(PinDevAnchor(**keystore, *o.provisioning_anchor));
  TKMS_RETURN_IF_ERROR(AddDemoUsers(**keystore, dir + "/ue"));
  setup.keystore = std::move(*keystore);
  return Status::Ok();
}

// --config FILE.
Result<Setup> LoadConfigStep(const DaemonOptions& o) {
  auto config = provisioning::LoadConfigFile(
      *o.config_file, o.bundle_file ? provisioning::ConfigRole::kLocal : provisioning::ConfigRole::kComplete);
  if (!config.ok()) return config.error();
  auto pin = ReadPin(config->token.pin_file, kPinEnv, "PIN");
  ScrubPinFromEnvironment();
  if (!pin.ok()) return pin.error();
  Setup setup;
  setup.config = std::move(*config);
  setup.pin = std::move(*pin);
  return setup;
}

Status OpenToken(Setup& setup) {
  const provisioning::KmsConfig& config = setup.config;
  if (config.token.softhsm2_conf) {
    if (::setenv("SOFTHSM2_CONF", config.token.softhsm2_conf->c_str(), 1) != 0) {
      return Internal("setenv SOFTHSM2_CONF failed");
    }
  }
  keystore::KeystoreOptions ks;
  ks.module_path = config.token.module_path;
  ks.token = config.token.token;
  ks.pin = std::move(setup.pin);
  ks.sessions = config.token.sessions;
  setup.pin = SecretBytes();
  auto keystore = keystore::Keystore::Open(ks);
  if (!keystore.ok()) return Fail("opening token '" + config.token.token + "'", keystore.error());
  TKMS_RETURN_IF_ERROR(EnsureTicketKey(**keystore, /*create=*/false));
  setup.keystore = std::move(*keystore);
  return Status::Ok();
}

}  // namespace tkms::tkmsd
