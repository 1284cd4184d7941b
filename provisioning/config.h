// KmsConfig: the configuration of one tkmsd (docs/config.md), and its strict
// JSON loader.
//
// Why: an appliance must refuse a configuration it does not fully understand
// before it serves a single request. ParseConfig validates the whole document
// (unknown keys, types, ranges, cross-references such as every user's policy
// class) and reports the first problem with the JSON path of the offending
// field ("users[2].policy_class: no policy class named 'gold'"). The signed
// bundles of provisioning (issue 6) wrap this same schema. The loader reads
// untrusted text: size and nesting depth are bounded, nothing recurses on
// input, and no secret is ever part of a configuration (PINs come from
// files, keys stay in the token).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/status.h"

namespace tkms::provisioning {

// Largest configuration document accepted, and deepest JSON nesting.
inline constexpr size_t kMaxConfigBytes = 1 << 20;
inline constexpr size_t kMaxConfigDepth = 16;
// Most entries in "users" and in "groups".
inline constexpr size_t kMaxUsers = 100000;
inline constexpr size_t kMaxGroups = 10000;

struct ListenConfig {
  std::string ua = "127.0.0.1:8080";     // "ADDR:PORT"; port 0 = any free port
  std::string admin = "127.0.0.1:8081";  // health, readiness, metrics
  bool operator==(const ListenConfig&) const = default;
};

struct HttpConfig {
  size_t max_body_bytes = 16384;           // larger bodies get 413
  unsigned worker_threads = 8;             // CivetWeb worker threads (1..256)
  unsigned request_timeout_ms = 10000;     // 100..600000
  unsigned keep_alive_timeout_ms = 30000;  // 0 disables keep-alive; max 600000
  bool operator==(const HttpConfig&) const = default;
};

struct TokenConfig {
  std::string module_path = "/usr/lib/softhsm/libsofthsm2.so";
  std::string token = "tkms";  // label, "serial:XYZ", or a pkcs11: URI
  std::string pin_file;        // required: mode-0600 file holding the user PIN
  // Sets SOFTHSM2_CONF before the module is loaded (SoftHSM2 only).
  std::optional<std::string> softhsm2_conf;
  unsigned sessions = 4;  // pooled PKCS#11 sessions (1..64)
  bool operator==(const TokenConfig&) const = default;
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
struct PolicyClass {
  unsigned default_lifetime_s = 3600;  // when the request has no TRe (1..max)
  unsigned max_lifetime_s = 86400;     // granted TRe - now never exceeds this
  bool allow_reuse = true;             // J flag
  bool allow_forking = true;           // I flag
  bool allow_initiator_keys = false;   // L flag
  bool allow_responder_keys = false;   // M flag
  unsigned max_responders = 16;        // IDRr entries in the TP (1..256)
  unsigned max_keys = 4;               // TGK/TEK/GTGK requested in the TP KEMAC (1..16)
  bool operator==(const PolicyClass&) const = default;
};

struct UserConfig {
  std::vector<std::string> identities;  // URIs, at least one, unique across users
  // The PSK object's CKA_ID (hex in JSON). Absent: the token's "user:" object
  // whose label lists the first identity.
  std::optional<std::vector<uint8_t>> psk_id;
  std::string policy_class;  // empty = default_policy_class
  bool operator==(const UserConfig&) const = default;
};

// A group identity a ticket may name in IDRr; members may resolve it.
struct GroupConfig {
  std::string identity;
  std::vector<std::string> members;  // user identities
  bool operator==(const GroupConfig&) const = default;
};

struct KmsConfig {
  std::string kms_identity;  // IDRkms; required, e.g. "kms.example.org"
  ListenConfig listen;
  HttpConfig http;
  TokenConfig token;
  MikeyConfig mikey;
  std::map<std::string, PolicyClass> policy_classes;  // always has default_policy_class
  std::string default_policy_class = "default";
  // Also serve every "user:" PSK object on the token (tkmsctl user add) that
  // no entry of `users` names, with the default policy class.
  bool token_users = true;
  std::vector<UserConfig> users;
  std::vector<GroupConfig> groups;
  // Field-by-field equality (every struct here has one): the round-trip
  // property ParseConfig(ConfigToJson(c)) == c.
  bool operator==(const KmsConfig&) const = default;
};

// Parses and validates a configuration document. Errors are
// kInvalidArgument with "<json path>: <problem>" (the path of the document
// itself is "$"; a syntax error names its byte offset). Messages are
// printable ASCII: text taken from the input is quoted, escaped and
// shortened.
Result<KmsConfig> ParseConfig(std::string_view json_text);
// Reads `path` (at most kMaxConfigBytes) and parses it; the path is part of
// every error message ("<path>: <json path>: <problem>"). kNotFound if the
// file does not exist, kPermissionDenied if it may not be opened,
// kInvalidArgument if it is not a regular file, is too large or does not
// parse.
Result<KmsConfig> LoadConfigFile(const std::string& path);
// The canonical JSON text of a configuration: every field (optional ones
// only when set), psk_id in lowercase hex, one line, keys sorted (RFC 8785
// form), no trailing newline. ParseConfig accepts it and returns an equal
// configuration for every configuration ParseConfig returned (ParseConfig
// refuses a document whose canonical form would exceed kMaxConfigBytes).
// Used by `tkmsd --print-config` and the tests. Never throws.
std::string ConfigToJson(const KmsConfig& config);

}  // namespace tkms::provisioning
