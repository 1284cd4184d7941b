#include "firmware/tkmsd/daemon.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "firmware/base/log.h"
#include "firmware/base/secret_files.h"
#include "firmware/keystore/keystore.h"
#include "firmware/keystore/kms_keys.h"
#include "firmware/keystore/provisioning_store.h"
#include "firmware/keystore/user_psk.h"
#include "firmware/kms/kms.h"
#include "hal/clock.h"
#include "firmware/tkmsd/reload.h"
#include "firmware/tkmsd/token_monitor.h"
#include "pkcs11/softhsm_state.h"
#include "pkcs11/token.h"
#include "provisioning/bundle.h"
#include "provisioning/bundle_applier.h"
#include "provisioning/config.h"
#include "web/server.h"

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

// What start-up produces: the configuration and an open keystore.
struct Setup {
  provisioning::KmsConfig config;
  std::unique_ptr<keystore::Keystore> keystore;
};

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

// --dev: a SoftHSM2 token in DIR, a ticket key, demo users alice and bob.
Result<Setup> PrepareDev(const DaemonOptions& o) {
  const std::string dir = *o.state_dir;
  TKMS_RETURN_IF_ERROR(pkcs11::CreateSoftHsmStateDir(dir));
  TKMS_RETURN_IF_ERROR(pkcs11::UseSoftHsmStateDir(dir, /*must_exist=*/true));
  const std::string module_path = ModuleFromEnvironment();
  auto module = pkcs11::Module::Load(module_path);
  if (!module.ok()) return Fail("PKCS#11 module " + module_path, module.error());

  const std::string pin_file = dir + "/token.pin";
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
  ks.pin = pin;
  auto keystore = keystore::Keystore::Open(*module, ks);
  if (!keystore.ok()) return Fail("opening the development token", keystore.error());
  TKMS_RETURN_IF_ERROR(EnsureTicketKey(**keystore, /*create=*/true));
  if (o.provisioning_anchor) TKMS_RETURN_IF_ERROR(PinDevAnchor(**keystore, *o.provisioning_anchor));

  auto users = keystore::ListUserPsks(**keystore);
  if (!users.ok()) return Fail("listing users", users.error());
  const std::string ue_dir = dir + "/ue";
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
    TKMS_RETURN_IF_ERROR((*keystore)->GenerateRandom(psk));
    auto added = keystore::AddUserPsk(**keystore, {demo.identity}, psk);
    if (!added.ok()) return Fail(std::string("adding demo user ") + demo.name, added.error());
    if (auto s = WriteHexSecretFile(psk_file, psk, "PSK"); !s.ok()) {
      (void)(*keystore)->DestroyKey(keystore::KeySelector{added->label, added->psk_id});
      return s;
    }
    LogLine(LogLevel::kInfo, "dev_user_added").Add("user", demo.name).Add("identity", demo.identity).Add("psk_file", psk_file);
  }

  Setup setup;
  setup.config.kms_identity = kDevKmsIdentity;
  setup.config.token.module_path = module_path;
  setup.config.token.token = kDevTokenLabel;
  setup.config.token.pin_file = pin_file;
  setup.config.token.softhsm2_conf = pkcs11::SoftHsmConfPath(dir);
  setup.config.policy_classes[setup.config.default_policy_class] = provisioning::PolicyClass{};
  setup.config.token_users = true;
  setup.keystore = std::move(*keystore);
  return setup;
}

// --config FILE.
Result<Setup> PrepareConfig(const DaemonOptions& o) {
  auto config = provisioning::LoadConfigFile(
      *o.config_file, o.bundle_file ? provisioning::ConfigRole::kLocal : provisioning::ConfigRole::kComplete);
  if (!config.ok()) return config.error();
  if (config->token.softhsm2_conf) {
    if (::setenv("SOFTHSM2_CONF", config->token.softhsm2_conf->c_str(), 1) != 0) {
      return Internal("setenv SOFTHSM2_CONF failed");
    }
  }
  auto pin = ReadPin(config->token.pin_file, kPinEnv, "PIN");
  if (!pin.ok()) return pin.error();
  keystore::KeystoreOptions ks;
  ks.module_path = config->token.module_path;
  ks.token = config->token.token;
  ks.pin = std::move(*pin);
  ks.sessions = config->token.sessions;
  auto keystore = keystore::Keystore::Open(ks);
  if (!keystore.ok()) return Fail("opening token '" + config->token.token + "'", keystore.error());
  TKMS_RETURN_IF_ERROR(EnsureTicketKey(**keystore, /*create=*/false));
  Setup setup;
  setup.config = std::move(*config);
  setup.keystore = std::move(*keystore);
  return setup;
}

Status WriteReadyFile(const std::string& path, uint16_t ua_port, uint16_t admin_port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"ua_port", ua_port}, {"admin_port", admin_port}, {"pid", ::getpid()}}.dump() << "\n";
    if (!out) return Internal("writing " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Internal("renaming " + tmp + ": " + ec.message());
  return Status::Ok();
}

// SIGHUP: the token's users and keys, and the configuration file (not in
// bundle mode: there the bundle file is re-read first, see RunDaemon).
void Reload(const DaemonOptions& o, keystore::Keystore& keystore, kms::Kms& kms) {
  provisioning::KmsConfig config = kms.snapshot()->config;
  if (o.config_file && !o.bundle_file) {
    auto fresh = provisioning::LoadConfigFile(*o.config_file);
    if (!fresh.ok()) {
      LogLine(LogLevel::kError, "reload_refused").Add("error", fresh.error().message());
      return;
    }
    // Listeners, token and limits are fixed at start-up; policy, users,
    // groups and the KMS identity change on reload.
    fresh->listen = config.listen;
    fresh->http = config.http;
    fresh->token = config.token;
    fresh->mikey = config.mikey;
    if (o.kms_identity) fresh->kms_identity = *o.kms_identity;
    config = std::move(*fresh);
  }
  auto snap = PrepareSnapshot(config, keystore, kms.snapshot().get());
  if (!snap.ok()) {
    LogLine(LogLevel::kError, "reload_refused")
        .Add("error", snap.error().message())
        .Add("effect", "the running configuration and users stay in force");
    return;
  }
  const size_t users = (*snap)->users->size();
  kms.SetSnapshot(std::move(*snap));
  LogLine(LogLevel::kInfo, "reloaded").Add("users", static_cast<uint64_t>(users));
}

// The token is readable again after an outage: its keys and users are
// re-read under the same rules as a reload.
Status RecoverFromTokenOutage(keystore::Keystore& keystore, kms::Kms& kms) {
  TKMS_RETURN_IF_ERROR(keystore.Reconnect());
  const auto running = kms.snapshot();
  auto snap = PrepareSnapshot(running->config, keystore, running.get());
  if (!snap.ok()) return snap.error();
  const size_t users = (*snap)->users->size();
  kms.SetSnapshot(std::move(*snap));
  LogLine(LogLevel::kInfo, "reloaded").Add("reason", "token_recovered").Add("users", static_cast<uint64_t>(users));
  return Status::Ok();
}

// POST /admin/bundle's answer: 200 accepted; 400 envelope or schema; 403
// signature or certificates; 409 not newer; 503 token or disk trouble.
web::AdminPostReply BundleReply(const provisioning::BundleOutcome& out) {
  int status = 200;
  if (!out.accepted()) {
    switch (out.status.code()) {
      case StatusCode::kInvalidArgument: status = 400; break;
      case StatusCode::kPermissionDenied: status = 403; break;
      case StatusCode::kFailedPrecondition: status = 409; break;
      case StatusCode::kUnavailable: status = 503; break;
      default: status = 500; break;
    }
  }
  return {status, provisioning::BundleAnswerJson(out)};
}

LogLevel ParseLevel(const std::string& s) {
  if (s == "debug") return LogLevel::kDebug;
  if (s == "warn") return LogLevel::kWarn;
  if (s == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

}  // namespace

int RunDaemon(const DaemonOptions& o) {
  SetLogLevel(ParseLevel(o.log_level));
  // Signals are taken synchronously by the main thread (sigwait); every
  // thread started from here on inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto setup = o.dev ? PrepareDev(o) : PrepareConfig(o);
  if (!setup.ok()) {
    LogLine(LogLevel::kError, "start_failed").Add("error", setup.error().message());
    return 1;
  }
  auto& config = setup->config;
  if (o.kms_identity) config.kms_identity = *o.kms_identity;
  if (o.listen) config.listen.ua = *o.listen;
  if (o.admin_listen) config.listen.admin = *o.admin_listen;
  hal::SystemClock clock;

  // Bundle mode: the provisioned sections come from the signed bundle, which
  // must verify against the token's anchor before anything is served.
  std::unique_ptr<keystore::TokenCounter> counter;
  std::unique_ptr<provisioning::BundleApplier> applier;
  std::shared_ptr<const kms::KmsSnapshot> initial;
  kms::Kms* live = nullptr;
  if (o.bundle_file) {
    if (o.kms_identity) {
      LogLine(LogLevel::kError, "start_failed").Add("error", "--kms-identity: the bundle names the KMS");
      return 1;
    }
    auto anchor = keystore::ReadProvisioningAnchor(*setup->keystore);
    if (!anchor.ok() || !anchor->has_value()) {
      LogLine(LogLevel::kError, "start_failed")
          .Add("error", anchor.ok() ? std::string("the token pins no provisioning anchor (tkmsctl token init "
                                                  "--provisioning-anchor FILE)")
                                    : "reading the provisioning anchor: " + anchor.error().message());
      return 1;
    }
    counter = std::make_unique<keystore::TokenCounter>(*setup->keystore);
    const provisioning::KmsConfig local = config;
    keystore::Keystore& keystore = *setup->keystore;
    provisioning::BundleApplier::Prepare prepare =
        [local, &keystore, &initial, &live](const provisioning::KmsConfig& bundle)
        -> Result<provisioning::BundleApplier::Commit> {
      std::shared_ptr<const kms::KmsSnapshot> running = live != nullptr ? live->snapshot() : nullptr;
      auto snap = PrepareSnapshot(provisioning::CombineConfig(local, bundle), keystore, running.get());
      if (!snap.ok()) return snap.error();
      std::shared_ptr<const kms::KmsSnapshot> ready = std::move(*snap);
      return provisioning::BundleApplier::Commit([ready, &initial, &live] {
        if (live != nullptr) {
          live->SetSnapshot(ready);
        } else {
          initial = ready;
        }
      });
    };
    provisioning::BundleApplier::Options bo;
    bo.bundle_path = *o.bundle_file;
    bo.audit_log_path = o.audit_log ? *o.audit_log
                                    : (std::filesystem::path(*o.bundle_file).parent_path() / "bundle-audit.log").string();
    bo.anchor_der = std::move(**anchor);
    auto made = provisioning::BundleApplier::Create(std::move(bo), *counter, clock, std::move(prepare));
    if (!made.ok()) {
      LogLine(LogLevel::kError, "start_failed").Add("error", made.error().message());
      return 1;
    }
    applier = std::move(*made);
    const provisioning::BundleOutcome outcome = applier->ApplyFile(provisioning::BundleSource::kStartup);
    if (!outcome.accepted() || initial == nullptr) {
      LogLine(LogLevel::kError, "start_failed").Add("error", "bundle " + *o.bundle_file + ": " + outcome.status.message());
      return 1;
    }
  } else {
    if (config.kms_identity.empty()) {
      LogLine(LogLevel::kError, "start_failed").Add("error", "the KMS identity is empty");
      return 1;
    }
    auto snapshot = PrepareSnapshot(config, *setup->keystore, nullptr);
    if (!snapshot.ok()) {
      LogLine(LogLevel::kError, "start_failed").Add("error", snapshot.error().message());
      return 1;
    }
    initial = std::move(*snapshot);
  }
  const size_t user_count = initial->users->size();
  const std::string kms_identity = initial->config.kms_identity;
  keystore::KeystoreKeys keys(*setup->keystore);
  kms::Kms kms(keys, clock, std::move(initial));
  live = &kms;
  keystore::Keystore& keystore = *setup->keystore;
  TokenMonitor monitor([&keystore] { return ProbeToken(keystore); },
                       [&keystore, &kms] { return RecoverFromTokenOutage(keystore, kms); },
                       [&keys](const Status& health) { keys.ReportHealth(health); },
                       std::chrono::milliseconds(config.token.health_check_interval_ms));
  keys.SetFailureListener([&monitor](const Status& failure) { monitor.Report(failure); });
  monitor.Start();

  web::WebServerOptions web_options;
  web_options.ua_listen = config.listen.ua;
  web_options.admin_listen = config.listen.admin;
  web_options.max_body_bytes = config.http.max_body_bytes;
  web_options.worker_threads = config.http.worker_threads;
  web_options.request_timeout_ms = config.http.request_timeout_ms;
  web_options.keep_alive_timeout_ms = config.http.keep_alive_timeout_ms;
  if (applier) {
    web::AdminPostRoute route;
    route.path = "/admin/bundle";
    route.max_body_bytes = provisioning::kMaxBundleBytes;
    provisioning::BundleApplier* a = applier.get();
    route.handler = [a](std::string_view body) { return BundleReply(a->ApplyPosted(body)); };
    web_options.admin_post_routes.push_back(std::move(route));
  }
  auto server = web::WebServer::Start(web_options, kms);
  if (!server.ok()) {
    LogLine(LogLevel::kError, "start_failed").Add("error", server.error().message());
    return 1;
  }
  (void)(*server)->metrics().SetGauge("tkms_replay_cache_entries", "Entries in the replay cache",
                                      [&kms] { return static_cast<double>(kms.replay_cache_size()); });
  (void)(*server)->metrics().SetGauge("tkms_users", "Users the KMS serves", [&kms] {
    return static_cast<double>(kms.snapshot()->users->size());
  });

  if (applier) {
    provisioning::BundleApplier* a = applier.get();
    (void)(*server)->metrics().SetCounter("tkms_bundles_accepted_total", "Configuration bundles accepted",
                                          [a] { return static_cast<double>(a->accepted_count()); });
    (void)(*server)->metrics().SetCounter("tkms_bundles_refused_total", "Configuration bundles refused",
                                          [a] { return static_cast<double>(a->refused_count()); });
    (void)(*server)->metrics().SetGauge("tkms_bundle_version", "Version of the configuration bundle in force",
                                        [a] { return static_cast<double>(a->current_version()); });
  }

  auto ticket_key = setup->keystore->CurrentTicketKeyId();
  LogLine(LogLevel::kInfo, "started")
      .Add("mode", o.dev ? "dev" : "config")
      .Add("bundle_version", applier ? applier->current_version() : uint64_t{0})
      .Add("kms_identity", kms_identity)
      .Add("ua", config.listen.ua.substr(0, config.listen.ua.rfind(':')) + ":" + std::to_string((*server)->ua_port()))
      .Add("admin", config.listen.admin.substr(0, config.listen.admin.rfind(':')) + ":" +
                        std::to_string((*server)->admin_port()))
      .Add("token", setup->keystore->token().label)
      .Add("users", static_cast<uint64_t>(user_count))
      .Add("ticket_key", ticket_key.ok() ? std::to_string(*ticket_key) : std::string("none"));
  if (o.ready_file) {
    if (auto s = WriteReadyFile(*o.ready_file, (*server)->ua_port(), (*server)->admin_port()); !s.ok()) {
      LogLine(LogLevel::kError, "start_failed").Add("error", s.message());
      return 1;
    }
  }

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      // A new bundle file brings its own snapshot (users re-read too); an
      // unchanged or refused one leaves the configuration as it is, and the
      // token's users and keys are re-read as without bundles.
      if (!applier || applier->ApplyFile(provisioning::BundleSource::kSighup).verdict !=
                          provisioning::BundleVerdict::kAccepted) {
        Reload(o, *setup->keystore, kms);
      }
      continue;
    }
    LogLine(LogLevel::kInfo, "stopping").Add("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    (*server)->Stop();
    break;
  }
  keys.SetFailureListener(nullptr);
  monitor.Stop();
  server->reset();
  LogLine(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace tkms::tkmsd
