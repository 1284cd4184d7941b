#include "firmware/tkmsd/daemon.h"

#include <pthread.h>
#include <sys/resource.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "firmware/base/log.h"
#include "firmware/base/secret_memory.h"
#include "firmware/keystore/keystore.h"
#include "firmware/keystore/kms_keys.h"
#include "firmware/keystore/provisioning_store.h"
#include "firmware/kms/kms.h"
#include "firmware/tkmsd/listener_tls.h"
#include "firmware/tkmsd/privileges.h"
#include "firmware/tkmsd/reload.h"
#include "firmware/tkmsd/setup.h"
#include "firmware/tkmsd/token_monitor.h"
#include "firmware/tkmsd/zk_node.h"
#include "hal/clock.h"
#include "provisioning/bundle.h"
#include "provisioning/bundle_applier.h"
#include "provisioning/config.h"
#include "web/server.h"

namespace tkms::tkmsd {
namespace {

Status WriteReadyFile(const std::string& path, const web::WebServer& server) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Internal("creating " + tmp + ": " + std::strerror(errno) + " (as uid " + std::to_string(::geteuid()) + ")");
    out << nlohmann::json{{"ua_port", server.ua_port()},
                          {"ua_tls_port", server.ua_tls_port()},
                          {"admin_port", server.admin_port()},
                          {"zk_port", server.zk_port()},
                          {"pid", ::getpid()}}
               .dump()
        << "\n";
    out.close();  // the bytes reach the file here (a full disk fails here, not before)
    if (out.fail()) return Internal("writing " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Internal("renaming " + tmp + ": " + ec.message());
  return Status::Ok();
}

// SIGHUP: the token's users and keys, and the configuration file (not in
// bundle mode: there the bundle file is re-read first, see RunDaemon).
void Reload(const DaemonOptions& o, keystore::Keystore& keystore, kms::Kms& kms, ZkNode& zk) {
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
    fresh->tls = config.tls;
    fresh->zk = config.zk;
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
  // Trust relations, network functions and the Zk identity change with it,
  // or not at all.
  auto zk_commit = zk.Prepare(config);
  if (!zk_commit.ok()) {
    LogLine(LogLevel::kError, "reload_refused")
        .Add("error", zk_commit.error().message())
        .Add("effect", "the running configuration and users stay in force");
    return;
  }
  const size_t users = (*snap)->users->size();
  (*zk_commit)();
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

// Every connection is a descriptor: use the hard limit the service was
// given (the listeners' caps are what bounds connections, docs/http.md).
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) == 0) {
    LogLine(LogLevel::kDebug, "descriptor_limit").Add("before", uint64_t{before}).Add("now", uint64_t{limit.rlim_cur});
  }
}

LogLevel ParseLevel(const std::string& s) {
  if (s == "debug") return LogLevel::kDebug;
  if (s == "warn") return LogLevel::kWarn;
  if (s == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::string HostPort(const std::string& listen, uint16_t port) {
  return listen.substr(0, listen.rfind(':')) + ":" + std::to_string(port);
}

// The running daemon's parts, made in this order by Start() and taken down
// in the reverse order (members are destroyed bottom-up).
class Daemon {
 public:
  explicit Daemon(const DaemonOptions& o) : o_(o) {}
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  Status Start();
  // Until SIGTERM / SIGINT; SIGHUP reloads.
  void Serve(const sigset_t& signals);

 private:
  Status BindSockets();     // every listening socket, before privileges are dropped
  Status LoadBundleMode();  // the signed bundle decides the snapshot
  Status LoadPlainMode();   // --dev or --config decide it
  Status StartService();    // KMS, token monitor, web server, metrics
  void AddBundleRoute(web::WebServerOptions& options);
  void AddGauges();
  void LogStarted(size_t users) const;
  void RotateTls();  // SIGHUP: certificate files and the TLS key again (listener_tls.h, zk_node.h)

  const DaemonOptions& o_;
  hal::SystemClock clock_;
  Setup setup_;
  std::unique_ptr<keystore::TokenCounter> counter_;
  std::unique_ptr<provisioning::BundleApplier> applier_;
  std::shared_ptr<const kms::KmsSnapshot> initial_;
  std::unique_ptr<keystore::KeystoreKeys> keys_;
  std::unique_ptr<kms::Kms> kms_;
  std::unique_ptr<TokenMonitor> monitor_;
  ListenerTls tls_;
  std::unique_ptr<ZkNode> zk_;
  web::WebServerOptions::BoundSockets sockets_;
  std::unique_ptr<web::WebServer> server_;
};

Daemon::~Daemon() {
  if (keys_) keys_->SetFailureListener(nullptr);
  if (server_) server_->Stop();
  if (monitor_) monitor_->Stop();
}

Status Daemon::Start() {
  // What may need root comes first: the configuration, the PIN file, the
  // --dev state directory and the listening sockets (privileges.h).
  auto setup = o_.dev ? LoadDevStep(o_) : LoadConfigStep(o_);
  if (!setup.ok()) return setup.error();
  setup_ = std::move(*setup);
  auto& config = setup_.config;
  if (o_.kms_identity) config.kms_identity = *o_.kms_identity;
  if (o_.listen) config.listen.ua = *o_.listen;
  if (o_.admin_listen) config.listen.admin = *o_.admin_listen;
  if (o_.tls_listen) config.listen.ua_tls = *o_.tls_listen;
  if (o_.zk_listen) config.listen.zk = *o_.zk_listen;
  if (o_.dev && !o_.tls_listen) config.listen.ua_tls = "127.0.0.1:8443";
  auto run_as = ResolveRunAs(o_.user ? *o_.user : config.user, o_.allow_root || o_.dev);
  if (!run_as.ok()) return run_as.error();
  if (o_.dev && *run_as) TKMS_RETURN_IF_ERROR(GiveDirectoryTo(*o_.state_dir, **run_as, /*recursive=*/true));
  TKMS_RETURN_IF_ERROR(BindSockets());
  TKMS_RETURN_IF_ERROR(DropPrivileges(*run_as));
  if (::geteuid() == 0) {
    LogLine(LogLevel::kWarn, "running_as_root")
        .Add("reason", o_.dev ? "--dev" : "--allow-root")
        .Add("hint", "give --user NAME (docs/tkmsd.md, \"Privileges and memory\")");
  }

  TKMS_RETURN_IF_ERROR(o_.dev ? OpenDevToken(o_, setup_) : OpenToken(setup_));
  if (o_.dev) TKMS_RETURN_IF_ERROR(PrepareDevTls(*setup_.keystore, *o_.state_dir, config));
  // Again after the command line's overrides (--dev allows plaintext Ua anywhere).
  TKMS_RETURN_IF_ERROR(provisioning::CheckListenSecurity(config, /*allow_plaintext_ua=*/o_.dev));
  TKMS_RETURN_IF_ERROR(o_.bundle_file ? LoadBundleMode() : LoadPlainMode());
  const size_t users = initial_->users->size();
  TKMS_RETURN_IF_ERROR(StartService());
  LogStarted(users);
  if (o_.ready_file) TKMS_RETURN_IF_ERROR(WriteReadyFile(*o_.ready_file, *server_));
  return Status::Ok();
}

// Every configured listener's socket, while tkmsd may still be root (ports
// below 1024) and has one thread.
Status Daemon::BindSockets() {
  const provisioning::ListenConfig& listen = setup_.config.listen;
  const bool reuse_port = setup_.config.http.reuse_port;
  struct Want {
    const std::string& address;
    const char* name;
    std::shared_ptr<web::ListenSocket>& socket;
  };
  for (const Want& want : {Want{listen.ua, "Ua listener", sockets_.ua},
                           Want{listen.ua_tls, "Ua TLS listener", sockets_.ua_tls},
                           Want{listen.zk, "Zk listener", sockets_.zk},
                           Want{listen.admin, "admin listener", sockets_.admin}}) {
    if (want.address.empty()) continue;
    auto bound = web::ListenSocket::Bind(want.name, want.address, reuse_port && &want.socket != &sockets_.admin);
    if (!bound.ok()) return bound.error();
    want.socket = std::move(*bound);
  }
  return Status::Ok();
}

// The provisioned sections come from the signed bundle, which must verify
// against the token's anchor before anything is served.
Status Daemon::LoadBundleMode() {
  if (o_.kms_identity) return InvalidArgument("--kms-identity: the bundle names the KMS");
  keystore::Keystore& keystore = *setup_.keystore;
  auto anchor = keystore::ReadProvisioningAnchor(keystore);
  if (!anchor.ok()) return Status(anchor.error().code(), "reading the provisioning anchor: " + anchor.error().message());
  if (!anchor->has_value()) {
    return FailedPrecondition("the token pins no provisioning anchor (tkmsctl token init --provisioning-anchor FILE)");
  }
  counter_ = std::make_unique<keystore::TokenCounter>(keystore);
  provisioning::BundleApplier::Prepare prepare = [this, local = setup_.config](const provisioning::KmsConfig& bundle)
      -> Result<provisioning::BundleApplier::Commit> {
    std::shared_ptr<const kms::KmsSnapshot> running = kms_ ? kms_->snapshot() : nullptr;
    const provisioning::KmsConfig combined = provisioning::CombineConfig(local, bundle);
    auto snap = PrepareSnapshot(combined, *setup_.keystore, running.get());
    if (!snap.ok()) return snap.error();
    std::shared_ptr<const kms::KmsSnapshot> ready = std::move(*snap);
    // At start-up the ZkNode is made from the first snapshot (StartService);
    // afterwards a bundle whose Zk part does not build is refused.
    ZkNode::Commit zk_commit;
    if (zk_) {
      auto prepared = zk_->Prepare(combined);
      if (!prepared.ok()) return prepared.error();
      zk_commit = std::move(*prepared);
    }
    return provisioning::BundleApplier::Commit([this, ready, zk_commit] {
      if (zk_commit) zk_commit();
      if (kms_) {
        kms_->SetSnapshot(ready);
      } else {
        initial_ = ready;
      }
    });
  };
  provisioning::BundleApplier::Options bo;
  bo.bundle_path = *o_.bundle_file;
  bo.audit_log_path = o_.audit_log ? *o_.audit_log
                                   : (std::filesystem::path(*o_.bundle_file).parent_path() / "bundle-audit.log").string();
  bo.anchor_der = std::move(**anchor);
  auto made = provisioning::BundleApplier::Create(std::move(bo), *counter_, clock_, std::move(prepare));
  if (!made.ok()) return made.error();
  applier_ = std::move(*made);
  const provisioning::BundleOutcome outcome = applier_->ApplyFile(provisioning::BundleSource::kStartup);
  if (!outcome.accepted() || initial_ == nullptr) {
    return Status(outcome.status.code(), "bundle " + *o_.bundle_file + ": " + outcome.status.message());
  }
  return Status::Ok();
}

Status Daemon::LoadPlainMode() {
  if (setup_.config.kms_identity.empty()) return InvalidArgument("the KMS identity is empty");
  auto snapshot = PrepareSnapshot(setup_.config, *setup_.keystore, nullptr);
  if (!snapshot.ok()) return snapshot.error();
  initial_ = std::move(*snapshot);
  return Status::Ok();
}

Status Daemon::StartService() {
  const provisioning::KmsConfig& config = setup_.config;
  keystore::Keystore& keystore = *setup_.keystore;
  keys_ = std::make_unique<keystore::KeystoreKeys>(keystore);
  kms_ = std::make_unique<kms::Kms>(*keys_, clock_, std::move(initial_));
  kms::Kms& kms = *kms_;
  keystore::KeystoreKeys& keys = *keys_;
  monitor_ = std::make_unique<TokenMonitor>([&keystore] { return ProbeToken(keystore); },
                                            [&keystore, &kms] { return RecoverFromTokenOutage(keystore, kms); },
                                            [&keys](const Status& health) { keys.ReportHealth(health); },
                                            std::chrono::milliseconds(config.token.health_check_interval_ms));
  TokenMonitor& monitor = *monitor_;
  keys_->SetFailureListener([&monitor](const Status& failure) { monitor.Report(failure); });
  monitor_->Start();

  auto tls = PrepareListenerTls(config, keystore, [&monitor](const Status& failure) { monitor.Report(failure); });
  if (!tls.ok()) return tls.error();
  tls_ = std::move(*tls);
  // The provisioned part (trust relations, the Zk chain) is the snapshot's.
  provisioning::KmsConfig zk_config = kms.snapshot()->config;
  zk_config.listen = config.listen;
  zk_config.tls = config.tls;
  zk_config.zk = config.zk;
  auto zk = ZkNode::Create(zk_config, keystore, [&monitor](const Status& failure) { monitor.Report(failure); });
  if (!zk.ok()) return zk.error();
  zk_ = std::move(*zk);
  kms.SetPeerClient(&zk_->client());

  web::WebServerOptions web_options;
  web_options.ua_listen = config.listen.ua;
  web_options.ua_tls_listen = config.listen.ua_tls;
  web_options.ua_tls = tls_.ua;
  web_options.admin_listen = config.listen.admin;
  web_options.admin_tls = tls_.admin;
  web_options.max_body_bytes = config.http.max_body_bytes;
  web_options.worker_threads = config.http.worker_threads;
  web_options.request_timeout_ms = config.http.request_timeout_ms;
  web_options.keep_alive_timeout_ms = config.http.keep_alive_timeout_ms;
  web_options.max_connections = config.http.max_connections;
  web_options.max_connections_per_source = config.http.max_connections_per_source;
  web_options.max_pending_requests = config.http.max_pending_requests;
  web_options.max_header_bytes = config.http.max_header_bytes;
  web_options.max_header_fields = config.http.max_header_fields;
  web_options.drain_timeout_ms = config.http.drain_timeout_ms;
  web_options.reuse_port = config.http.reuse_port;
  web_options.zk_listen = config.listen.zk;
  web_options.zk_tls = zk_->listener_tls();
  web_options.zk_authorizer = zk_->authorizer();
  web_options.sockets = sockets_;
  AddBundleRoute(web_options);
  auto server = web::WebServer::Start(web_options, kms);
  if (!server.ok()) return server.error();
  server_ = std::move(*server);
  AddGauges();
  return Status::Ok();
}

void Daemon::AddBundleRoute(web::WebServerOptions& options) {
  if (!applier_) return;
  web::AdminPostRoute route;
  route.path = "/admin/bundle";
  route.max_body_bytes = provisioning::kMaxBundleBytes;
  provisioning::BundleApplier* a = applier_.get();
  route.handler = [a](std::string_view body, const web::Peer& peer) {
    provisioning::BundleApplier::PostedBy by;
    by.address = peer.address;
    if (peer.tls_identity) {
      by.certificate_subject = peer.tls_identity->subject;
      by.certificate_sha256 = HexEncode(ByteSpan(peer.tls_identity->certificate_sha256.data(),
                                                 peer.tls_identity->certificate_sha256.size()));
    }
    return BundleReply(a->ApplyPosted(body, by));
  };
  options.admin_post_routes.push_back(std::move(route));
}

void Daemon::AddGauges() {
  web::Metrics& metrics = server_->metrics();
  kms::Kms& kms = *kms_;
  (void)metrics.SetGauge("tkms_replay_cache_entries", "Entries in the replay cache",
                         [&kms] { return static_cast<double>(kms.replay_cache_size()); });
  (void)metrics.SetGauge("tkms_users", "Users the KMS serves",
                         [&kms] { return static_cast<double>(kms.snapshot()->users->size()); });
  (void)metrics.SetGauge("tkms_secret_memory_locked",
                         "1 if the region holding transient keys and the PIN is locked in RAM (mlock)",
                         [] { return GetSecretMemoryStats().locked ? 1.0 : 0.0; });
  (void)metrics.SetGauge("tkms_secret_memory_in_use_bytes", "Bytes of the secret region in use",
                         [] { return static_cast<double>(GetSecretMemoryStats().in_use_bytes); });
  (void)metrics.SetCounter("tkms_secret_memory_fallbacks_total",
                           "Secret buffers served from the ordinary heap (region full or buffer too large)",
                           [] { return static_cast<double>(GetSecretMemoryStats().fallback_allocations); });
  const ZkNode* zk = zk_.get();
  metrics.SetTextSource("zk_peers", [zk] { return zk->MetricsText(); });
  if (!applier_) return;
  provisioning::BundleApplier* a = applier_.get();
  (void)metrics.SetCounter("tkms_bundles_accepted_total", "Configuration bundles accepted",
                           [a] { return static_cast<double>(a->accepted_count()); });
  (void)metrics.SetCounter("tkms_bundles_refused_total", "Configuration bundles refused",
                           [a] { return static_cast<double>(a->refused_count()); });
  (void)metrics.SetGauge("tkms_bundle_version", "Version of the configuration bundle in force",
                         [a] { return static_cast<double>(a->current_version()); });
}

void Daemon::RotateTls() {
  // The Zk identity may come from tls.certificate_chain_file too.
  if (auto zk_commit = zk_->Prepare(kms_->snapshot()->config); zk_commit.ok()) {
    (*zk_commit)();
  } else {
    LogLine(LogLevel::kWarn, "zk_tls_reload_refused").Add("error", zk_commit.error().message()).Add("kept", "the running Zk credentials");
  }
  if (!tls_.ua && !tls_.admin) return;
  TokenMonitor* monitor = monitor_.get();
  const Status st = RefreshListenerTls(setup_.config, *setup_.keystore,
                                       [monitor](const Status& failure) { monitor->Report(failure); }, tls_);
  if (st.ok()) {
    LogLine(LogLevel::kInfo, "tls_reloaded").Add("chain_file", setup_.config.tls.certificate_chain_file);
  } else {
    LogLine(LogLevel::kWarn, "tls_reload_refused").Add("error", st.message()).Add("kept", "the running certificate");
  }
}

void Daemon::LogStarted(size_t users) const {
  const auto& config = setup_.config;
  auto ticket_key = setup_.keystore->CurrentTicketKeyId();
  LogLine(LogLevel::kInfo, "started")
      .Add("mode", o_.dev ? "dev" : "config")
      .Add("bundle_version", applier_ ? applier_->current_version() : uint64_t{0})
      .Add("kms_identity", kms_->snapshot()->config.kms_identity)
      .Add("ua", config.listen.ua.empty() ? std::string("-") : HostPort(config.listen.ua, server_->ua_port()))
      .Add("ua_tls", config.listen.ua_tls.empty() ? std::string("-")
                                                   : HostPort(config.listen.ua_tls, server_->ua_tls_port()))
      .Add("admin_tls", tls_.admin != nullptr)
      .Add("admin", HostPort(config.listen.admin, server_->admin_port()))
      .Add("zk", config.listen.zk.empty() ? std::string("-") : HostPort(config.listen.zk, server_->zk_port()))
      .Add("trust_relations", static_cast<uint64_t>(kms_->snapshot()->config.trust_relations.size()))
      .Add("token", setup_.keystore->token().label)
      .Add("users", static_cast<uint64_t>(users))
      .Add("ticket_key", ticket_key.ok() ? std::to_string(*ticket_key) : std::string("none"));
  const SecretMemoryStats secret = GetSecretMemoryStats();
  LogLine(secret.locked ? LogLevel::kInfo : LogLevel::kWarn, "privileges")
      .Add("process", DescribePrivileges())
      .Add("secret_memory_bytes", static_cast<uint64_t>(secret.region_bytes))
      .Add("secret_memory_locked", secret.locked)
      .Add("secret_memory_dontdump", secret.dontdump);
}

void Daemon::Serve(const sigset_t& signals) {
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      // A new bundle file brings its own snapshot (users re-read too); an
      // unchanged or refused one leaves the configuration as it is, and the
      // token's users and keys are re-read as without bundles.
      if (!applier_ || applier_->ApplyFile(provisioning::BundleSource::kSighup).verdict !=
                           provisioning::BundleVerdict::kAccepted) {
        Reload(o_, *setup_.keystore, *kms_, *zk_);
      }
      RotateTls();
      continue;
    }
    LogLine(LogLevel::kInfo, "stopping").Add("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return;
  }
}

}  // namespace

int RunDaemon(const DaemonOptions& o) {
  SetLogLevel(ParseLevel(o.log_level));
  // Before any secret is read (privileges.h).
  if (Status s = ForbidCoreDumps(); !s.ok()) {
    LogLine(LogLevel::kError, "start_failed").Add("error", s.message());
    return 1;
  }
  // Signals are taken synchronously by the main thread (sigwait); every
  // thread started from here on inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  RaiseDescriptorLimit();
  {
    Daemon daemon(o);
    if (Status s = daemon.Start(); !s.ok()) {
      LogLine(LogLevel::kError, "start_failed").Add("error", s.message());
      return 1;
    }
    daemon.Serve(signals);
  }  // stops the web server (requests in flight finish), then the token monitor
  LogLine(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace tkms::tkmsd
