// KmsConfig: the configuration of one tkmsd (docs/config.md), and its strict
// JSON loader.
//
// Why: an appliance must refuse a configuration it does not fully understand
// before it serves a single request. ParseConfig validates the whole document
// (unknown keys, types, ranges, cross-references such as every user's policy
// class) and reports the first problem with the JSON path of the offending
// field ("users[2].policy_class: no policy class named 'gold'"). The signed
// configuration bundles of provisioning (issue 6) carry this same schema:
// a document has a role (ConfigRole) that says which of its sections it may
// hold, and CombineConfig joins an appliance's local configuration with the
// provisioned part of its bundle. The loader reads untrusted text: size and
// nesting depth are bounded, nothing recurses on input, and no secret is
// ever part of a configuration (PINs come from files, keys stay in the
// token; certificates are public). The loader is split along its seams:
// config.cpp (the document and roles), config_reader.h (fields, rules,
// sections: config_fields.cpp, config_sections.cpp), config_canonical.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/status.h"

namespace tkms::provisioning {

// Largest configuration document accepted, deepest JSON nesting, most JSON
// values (objects, arrays, strings, numbers, booleans; keys not counted) and
// longest string or key: the limits of the bounded JSON reader
// (firmware/json/bounded_json.h) for configurations. The schema's own
// limits below are tighter for every field.
inline constexpr size_t kMaxConfigBytes = 1 << 20;
inline constexpr size_t kMaxConfigDepth = 16;
inline constexpr size_t kMaxConfigValues = 1 << 18;
inline constexpr size_t kMaxConfigStringBytes = 1 << 16;
// Most entries in "users" and in "groups".
inline constexpr size_t kMaxUsers = 100000;
inline constexpr size_t kMaxGroups = 10000;
// Most entries in "trust_relations" and in "external_kms".
inline constexpr size_t kMaxTrustRelations = 1000;
inline constexpr size_t kMaxExternalKms = 1000;
// Most entries in each of a user's primary_home_kms, secondary_home_kms and
// external_kms lists.
inline constexpr size_t kMaxUserKmsListEntries = 16;
// Largest PEM text of one certificate.
inline constexpr size_t kMaxCertificatePemBytes = 16384;
// Largest "version" (2^53 - 1: exact in every JSON implementation).
inline constexpr uint64_t kMaxConfigVersion = 9007199254740991;

// What a configuration document is, which decides the sections it may hold.
// The local sections are the appliance's own settings: "listen", "http",
// "token", "mikey". The provisioned sections are what a signed bundle
// delivers: "version", "kms_identity", "policy_classes",
// "default_policy_class", "token_users", "users", "groups",
// "trust_relations", "external_kms", "kms_certificate_chain",
// "network_functions", "krr_policy". "zk" is local.
enum class ConfigRole : uint8_t {
  // Everything in one document (tkmsd --config without --bundle):
  // kms_identity and token.pin_file are required, version is optional.
  kComplete,
  // The --config file of a tkmsd that also gets a --bundle: local sections
  // only (a provisioned one is refused), token.pin_file required. The
  // provisioned fields of the result keep their defaults.
  kLocal,
  // A bundle's payload: provisioned sections only (a local one is refused),
  // version and kms_identity required. The local fields of the result keep
  // their defaults.
  kBundle,
};

struct ListenConfig {
  // Plain-HTTP Ua, "ADDR:PORT" (port 0 = any free port) or "" for none. A
  // non-loopback address needs plaintext_ua_on_non_loopback.
  std::string ua = "127.0.0.1:8080";
  std::string ua_tls;                    // HTTPS Ua, "ADDR:PORT" or "" (none)
  std::string admin = "127.0.0.1:8081";  // health, readiness, metrics, POST /admin/bundle
  // The Zk listener for peer KMSs and authorised network functions
  // (docs/zk.md), "ADDR:PORT" or "" (none). Always mutual TLS.
  std::string zk;
  // The operator's explicit consent to plaintext Ua off loopback.
  bool plaintext_ua_on_non_loopback = false;
  bool operator==(const ListenConfig&) const = default;
};

struct HttpConfig {
  size_t max_body_bytes = 16384;           // larger bodies get 413
  unsigned worker_threads = 8;             // handler threads of the Ua listeners (1..256)
  unsigned request_timeout_ms = 10000;     // total per request, head and body (100..600000)
  unsigned keep_alive_timeout_ms = 30000;  // idle between requests; 0 disables keep-alive; max 600000
  size_t max_connections = 4096;           // per listener (1..1000000)
  size_t max_connections_per_source = 256; // per listener and source IP address (1..1000000)
  size_t max_pending_requests = 256;       // complete requests waiting for a handler thread (1..100000)
  size_t max_header_bytes = 8192;          // request line + header section (1024..65536)
  size_t max_header_fields = 100;          // (8..1000)
  unsigned drain_timeout_ms = 5000;        // SIGTERM: time for requests in progress (0..600000)
  bool reuse_port = false;                 // SO_REUSEPORT: several tkmsd processes share the ports
  bool operator==(const HttpConfig&) const = default;
};

// TLS of the listeners (docs/tls.md): the server key in the token, its
// certificate chain from a file, and the operators' client certificates for
// the admin listener (mutual TLS, required when it is not on loopback).
struct TlsConfig {
  std::string key_label = "tkms-tls-server";  // token label of the RSA key (tkmsctl tls key create)
  std::string certificate_chain_file;  // PEM, server certificate first; "" = no TLS
  std::string admin_client_ca_file;    // PEM CA certificates of operators' client certificates
  std::vector<std::string> admin_client_certificate_files;  // exact (pinned) operator certificates
  bool admin_requires_client_certificate() const {
    return !admin_client_ca_file.empty() || !admin_client_certificate_files.empty();
  }
  bool operator==(const TlsConfig&) const = default;
};

struct TokenConfig {
  std::string module_path = "/usr/lib/softhsm/libsofthsm2.so";
  std::string token = "tkms";  // label, "serial:XYZ", or a pkcs11: URI
  std::string pin_file;        // required: mode-0600 file holding the user PIN
  // Sets SOFTHSM2_CONF before the module is loaded (SoftHSM2 only).
  std::optional<std::string> softhsm2_conf;
  unsigned sessions = 4;  // pooled PKCS#11 sessions (1..64)
  // How often tkmsd probes the token (a real token read) while it is healthy,
  // and how soon it notices that an unavailable token is back (100..60000).
  unsigned health_check_interval_ms = 1000;
  bool operator==(const TokenConfig&) const = default;
};

// The KMS's calls to peer KMSs over Zk (docs/zk.md): deadlines, pooling, and
// the pause after a failure, so a dead or slow peer costs the UE a bounded
// time and never holds a handler thread.
struct ZkConfig {
  unsigned connect_timeout_ms = 2000;      // TCP connect + TLS handshake (100..60000)
  unsigned response_timeout_ms = 5000;     // request written to response read (100..600000)
  // Pooled connections = requests in progress per peer (1..256); tkmsd uses
  // at most half of http.worker_threads, so a silent peer cannot hold every
  // Ua handler thread.
  unsigned max_connections_per_peer = 4;
  unsigned retry_after_failure_ms = 1000;  // after a connect/handshake failure: fail at once this long (0..600000)
  bool operator==(const ZkConfig&) const = default;
};

// Which timestamp enters the AES-CM IV of the KEMAC in REQUEST_RESP and
// RESOLVE_RESP (RFC 3830 §4.2.3 "T is the 64-bit timestamp sent by the
// Initiator" predates responders that send a fresh T, RFC 6043 §4.2.1.5):
// the response's own T (default, docs/kms.md) or the request's T, for UEs
// that read the RFC 3830 text literally.
enum class KemacIvTimestamp : uint8_t { kResponse, kRequest };

struct MikeyConfig {
  // A request's T must be within this many seconds of the KMS clock.
  unsigned timestamp_window_s = 60;  // 1..3600
  // Replay cache: an entry lives until its message's T leaves the window;
  // at most this many (1..10^7; about 80 bytes each). A full cache answers
  // 503, so size it for peak rate x (2 x window): 1,000,000 covers 8,000
  // requests/s with the default 60 s window.
  size_t replay_cache_entries = 1000000;
  KemacIvTimestamp kemac_iv_timestamp = KemacIvTimestamp::kResponse;  // "response" | "request"
  bool operator==(const MikeyConfig&) const = default;
};

// A ticket policy class (the per-user policy of RFC 6043 §4.2.1.4).
// The KEMAC encryption algorithm the KMS uses towards a user (docs/kms.md
// "KEMAC encryption algorithm"). kAuto: AES-CM-256 when the request uses a
// 256-bit algorithm (PRF-HMAC-SHA-256 or HMAC-SHA-256-256: by RFC 6043 §12.1
// such a UE supports AES-CM-256, and 256-bit algorithms SHALL NOT be mixed
// with 128-bit ones), else the mandatory AES-CM-128 (RFC 3830 §4.2.3), which
// every UE supports. The fixed values override that for the user.
enum class KemacEncryption : uint8_t { kAuto, kAesCm128, kAesCm256 };

struct PolicyClass {
  unsigned default_lifetime_s = 3600;  // when the request has no TRe (1..max)
  unsigned max_lifetime_s = 86400;     // granted TRe - now never exceeds this
  bool allow_reuse = true;             // J flag
  bool allow_forking = true;           // I flag
  bool allow_initiator_keys = false;   // L flag
  bool allow_responder_keys = false;   // M flag
  unsigned max_responders = 16;        // IDRr entries in the TP (1..256)
  unsigned max_keys = 4;               // TGK/TEK/GTGK requested in the TP KEMAC (1..16)
  bool allow_request = true;           // may request tickets (Ticket Request)
  bool allow_resolve = true;           // may resolve tickets (Ticket Resolve)
  // "auto" | "aes-cm-128" | "aes-cm-256": the KEMAC of this user's
  // REQUEST_RESP / RESOLVE_RESP (see KemacEncryption).
  KemacEncryption kemac_encryption = KemacEncryption::kAuto;
  bool operator==(const PolicyClass&) const = default;
};

struct UserConfig {
  std::vector<std::string> identities;  // URIs, at least one, unique across users
  // The security-association reference: the CKA_ID of the user's PSK object
  // (hex in JSON). Absent: the token's "user:" object whose label lists the
  // first identity.
  std::optional<std::vector<uint8_t>> psk_id;
  std::string policy_class;  // empty = default_policy_class
  // The user's Primary Home, Secondary Home and External KMS lists: KMS URIs,
  // each kms_identity or the kms_uri of an entry of trust_relations or
  // external_kms; at most kMaxUserKmsListEntries each, no repeats within a
  // list. (Default member initialisers: UserConfig{ids, psk_id, class}
  // stays free of -Wmissing-field-initializers.)
  std::vector<std::string> primary_home_kms = {};
  std::vector<std::string> secondary_home_kms = {};
  std::vector<std::string> external_kms = {};
  bool operator==(const UserConfig&) const = default;
};

// A group identity a ticket may name in IDRr; members may resolve it.
struct GroupConfig {
  std::string identity;
  std::vector<std::string> members;  // user identities
  bool operator==(const GroupConfig&) const = default;
};

// A peer KMS this KMS trusts for KMS-to-KMS resolution (Zk).
struct TrustRelationConfig {
  std::string kms_uri;   // the peer's IDRkms; unique, not kms_identity
  std::string endpoint;  // "HOST:PORT" of the peer's Zk interface
  // Exactly one of the two is set (non-empty): the peer's own certificate,
  // or a CA certificate (basicConstraints CA=true) that issues the peer's.
  // PEM text as given: one "CERTIFICATE" block of at most
  // kMaxCertificatePemBytes that mbedTLS parses.
  std::string certificate;
  std::string ca;
  bool operator==(const TrustRelationConfig&) const = default;
};

// A KMS outside this KMS's trust relations, known by its certificate.
struct ExternalKmsConfig {
  std::string kms_uri;      // unique across trust_relations and external_kms
  std::string certificate;  // PEM, as for TrustRelationConfig
  bool operator==(const ExternalKmsConfig&) const = default;
};

// A network function authorised to resolve any ticket of this KMS (TR 33.828
// step 5: lawful interception), known by its exact certificate.
struct NetworkFunctionConfig {
  std::string name;                // unique; in audit lines and metrics
  std::string certificate;         // PEM, one certificate (pinned: exact DER)
  std::vector<std::string> roles;  // subset of {"resolve"}; empty grants nothing
  bool may_resolve() const;
  bool operator==(const NetworkFunctionConfig&) const = default;
};
// Most entries in "network_functions"; most certificates in kms_certificate_chain.
inline constexpr size_t kMaxNetworkFunctions = 100;
inline constexpr size_t kMaxKmsCertificateChain = 8;

// The KMS Redirect Response (KRR) policy flags of 3GPP TR 33.880
// §7.2.1.3.5. Only carried and validated here; the KRR feature comes with a
// later issue. The defaults are the safe choice.
struct KrrPolicyConfig {
  bool allow_krr = false;                         // KRRs may be used at all
  bool report_krr = false;                        // report the KRRs seen
  bool require_signed_krr = true;                 // refuse unsigned KRRs
  bool request_unknown_kms_certificates = false;  // fetch certificates of unknown KMSs
  bool hold_until_kms_acceptance = true;          // no communication before the KMS is accepted
  bool operator==(const KrrPolicyConfig&) const = default;
};

struct KmsConfig {
  // The bundle version: 1..kMaxConfigVersion, 0 = none given (always given
  // in a bundle).
  uint64_t version = 0;
  std::string kms_identity;  // IDRkms; required, e.g. "kms.example.org"
  ListenConfig listen;
  HttpConfig http;
  TlsConfig tls;
  TokenConfig token;
  MikeyConfig mikey;
  ZkConfig zk;
  // Local: the account tkmsd runs as when started as root (it drops to it
  // once its listeners are bound; --user overrides). Empty: none.
  std::string user;
  std::map<std::string, PolicyClass> policy_classes;  // always has default_policy_class
  std::string default_policy_class = "default";
  // Also serve every "user:" PSK object on the token (tkmsctl user add) that
  // no entry of `users` names, with the default policy class.
  bool token_users = true;
  std::vector<UserConfig> users;
  std::vector<GroupConfig> groups;
  std::vector<TrustRelationConfig> trust_relations;  // at most kMaxTrustRelations
  std::vector<ExternalKmsConfig> external_kms;       // at most kMaxExternalKms
  // The KMS's own TLS identity on Zk (server and client side): PEM, leaf
  // first, at most kMaxKmsCertificateChain certificates; its key is the
  // token key tls.key_label. Empty: tls.certificate_chain_file.
  std::string kms_certificate_chain;
  std::vector<NetworkFunctionConfig> network_functions;  // at most kMaxNetworkFunctions
  KrrPolicyConfig krr_policy;
  // Field-by-field equality (every struct here has one): the round-trip
  // property ParseConfig(ConfigToJson(c)) == c.
  bool operator==(const KmsConfig&) const = default;
};

// Parses and validates a configuration document of the given role: schema,
// cross-references (policy classes, identities, KMS URIs) and limits, and
// every certificate must parse (but its dates are not checked: parsing does
// not depend on the clock, see CheckCertificateDates). Errors are
// kInvalidArgument with "<json path>: <problem>" (the path of the document
// itself is "$"; a syntax error names its byte offset). Messages are
// printable ASCII: text taken from the input is quoted, escaped and
// shortened.
Result<KmsConfig> ParseConfig(std::string_view json_text, ConfigRole role = ConfigRole::kComplete);
// Reads `path` (at most kMaxConfigBytes) and parses it; the path is part of
// every error message ("<path>: <json path>: <problem>"). kNotFound if the
// file does not exist, kPermissionDenied if it may not be opened,
// kInvalidArgument if it is not a regular file, is too large or does not
// parse.
Result<KmsConfig> LoadConfigFile(const std::string& path, ConfigRole role = ConfigRole::kComplete);
// The configuration of a tkmsd started with --config and --bundle: the
// local sections (listen, http, tls, token, mikey, zk) of `local` and every other
// field of `bundle` (a field added to KmsConfig later is provisioned unless
// it is added to the local sections here).
// The listener rules docs/config.md states: plaintext Ua only on loopback
// unless listen.plaintext_ua_on_non_loopback (or `allow_plaintext_ua`, for
// tkmsd --dev); HTTPS needs a certificate chain; an admin listener off
// loopback needs client certificates (mutual TLS). ParseConfig applies it;
// tkmsd again after its command-line overrides.
Status CheckListenSecurity(const KmsConfig& config, bool allow_plaintext_ua = false);

KmsConfig CombineConfig(const KmsConfig& local, const KmsConfig& bundle);
// Every certificate of the configuration must be valid at `now`:
// valid_from <= now <= valid_to, in UTC. kInvalidArgument naming the first
// that is not ("external_kms[1].certificate: expired on
// 2026-01-31T00:00:00Z", "trust_relations[0].ca: not valid before
// 2027-01-01T00:00:00Z"), or that does not parse (a configuration ParseConfig
// did not return).
Status CheckCertificateDates(const KmsConfig& config, std::time_t now);
// The canonical JSON text of a configuration: every field (optional ones
// only when set: version when not 0, a trust relation's certificate or ca,
// a user's KMS lists when not empty), psk_id in lowercase hex, one line,
// keys sorted (RFC 8785 form), no trailing newline. It holds local and
// provisioned sections, so it is a kComplete document: ParseConfig (role
// kComplete) accepts it and returns an equal configuration for every
// configuration ParseConfig returned with role kComplete, and for every
// CombineConfig of a kLocal and a kBundle result (ParseConfig refuses a
// document whose canonical form would exceed kMaxConfigBytes, and a bundle
// whose canonical form leaves less than 32 KiB for the local sections).
// Used by `tkmsd --print-config` and the tests. Never throws.
std::string ConfigToJson(const KmsConfig& config);

}  // namespace tkms::provisioning
