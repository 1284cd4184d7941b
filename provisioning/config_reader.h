// The pieces of the configuration loader (config.h, docs/config.md),
// internal to provisioning/: typed readers of fields in the JSON tree, the
// string rules of the schema (identities, file names, endpoints,
// certificates), and one reader per section.
//
// Why a header of its own: the loader is split along these seams
// (config_fields.cpp: fields and rules; config_sections.cpp: sections;
// config.cpp: the document, its roles and the public functions;
// config_canonical.cpp: ConfigToJson). Every reader knows the JSON path of
// what it reads and returns the first problem as kInvalidArgument
// "<path>: <problem>"; messages are printable ASCII (text from the document
// is quoted, escaped and shortened by Quote()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "firmware/base/printable.h"
#include "firmware/base/status.h"
#include "firmware/json/json_path.h"
#include "provisioning/config.h"

namespace tkms::provisioning::internal {

using Json = nlohmann::json;
using json::IndexPath;
using json::KeyPath;

// ---- typed fields (config_fields.cpp) ------------------------------------------

// kInvalidArgument "<path or $>: <problem>".
Status Invalid(std::string_view path, std::string_view problem);
// "expected <expected>, got <the JSON type of value>".
Status WrongType(const std::string& path, const char* expected, const Json& value);
// The member `key` of the object `object`, or nullptr.
const Json* Member(const Json& object, const char* key);
// `value` must be an object whose keys are all in `known`.
Status CheckObject(const Json& value, const std::string& path, std::initializer_list<const char*> known);
// An integer in min..max (JSON numbers written without fraction or exponent).
Status ParseUnsignedValue(const Json& value, const std::string& path, uint64_t min, uint64_t max, uint64_t& out);
Status ReadBool(const Json& object, const std::string& path, const char* key, bool& out);
Status ParseString(const Json& value, const std::string& path, std::string& out);

template <typename T>
Status ParseUnsigned(const Json& value, const std::string& path, uint64_t min, uint64_t max, T& out) {
  static_assert(std::is_unsigned_v<T>);
  uint64_t number = 0;
  TKMS_RETURN_IF_ERROR(ParseUnsignedValue(value, path, min, max, number));
  out = static_cast<T>(number);
  return Status::Ok();
}

// Optional integer member: absent keeps `out`.
template <typename T>
Status ReadUnsigned(const Json& object, const std::string& path, const char* key, uint64_t min, uint64_t max,
                    T& out) {
  const Json* value = Member(object, key);
  if (value == nullptr) return Status::Ok();
  return ParseUnsigned(*value, KeyPath(path, key), min, max, out);
}

// ---- string rules (config_fields.cpp) ------------------------------------------

inline constexpr size_t kMaxPskIdBytes = 64;
inline constexpr uint64_t kMaxLifetimeS = 31536000;  // 365 days

// Identities: 1..255 bytes without space or control character.
Status CheckIdentity(std::string_view text, const std::string& path);
// File names: 1..4095 bytes without control characters; `absolute` wants a
// leading '/'.
Status CheckFileName(std::string_view text, const std::string& path, bool absolute);
Status CheckUserName(std::string_view text, const std::string& path);
Status CheckTokenSpec(std::string_view text, const std::string& path);
Status CheckPolicyName(std::string_view name, const std::string& path);

// "A.B.C.D:PORT" of a listener: dotted-quad IPv4, port 0..65535.
struct Endpoint {
  uint32_t address = 0;
  uint32_t port = 0;
};
std::optional<Endpoint> ParseEndpoint(std::string_view text);
// "HOST:PORT" of a Zk peer: a DNS name or dotted-quad IPv4, port 1..65535.
bool IsZkEndpoint(std::string_view text);

// ---- certificates (config_fields.cpp) ------------------------------------------

// The certificate `value` at `path`: PEM text of one CERTIFICATE block that
// mbedTLS parses; with `must_be_ca`, a CA certificate. Sets `out` to the text.
Status ReadCertificate(const Json& value, const std::string& path, bool must_be_ca, std::string& out);
// The certificate `pem` (as ReadCertificate accepts it) is valid at `now`.
Status CheckCertificateDate(std::string_view pem, const std::string& path, std::time_t now);
// A certificate chain: PEM text of 1..kMaxKmsCertificateChain CERTIFICATE
// blocks (leaf first) that mbedTLS parses. Sets `out` to the text.
Status ReadCertificateChain(const Json& value, const std::string& path, std::string& out);
// The chain's leaf is valid at `now`.
Status CheckCertificateChainDate(std::string_view pem, const std::string& path, std::time_t now);

// ---- sections (config_sections.cpp) --------------------------------------------

// Where each identity is used, for the cross-checks of users, groups and
// KMS URIs. Keys are in the KMS user identity format
// (firmware/base/user_identity.h), so "sip:a@X.org" and "sip:a@x.org" are one.
struct IdentityIndex {
  std::unordered_map<std::string, size_t> user_of;      // identity -> users[i]
  std::unordered_map<std::string, size_t> group_of;     // identity -> groups[i]
  std::unordered_map<std::string, std::string> kms_of;  // kms_uri -> "trust_relations[i]" or "external_kms[i]"
};

// Each reads its top-level section (nullptr: absent) into `out`/`config`.
Status ReadTls(const Json& value, TlsConfig& out);
// Plaintext off loopback, TLS without a chain, admin off loopback without client certificates.
Status CheckListenSecurity(const ListenConfig& listen, const TlsConfig& tls, bool allow_plaintext_ua);
Status ReadListen(const Json* value, ListenConfig& out);
Status ReadHttp(const Json& value, HttpConfig& out);
Status ReadToken(const Json* value, TokenConfig& out);
Status ReadMikey(const Json& value, MikeyConfig& out);
Status ReadZk(const Json& value, ZkConfig& out);
Status ReadNetworkFunctions(const Json* value, KmsConfig& config);
Status ReadPolicyClasses(const Json* value, std::map<std::string, PolicyClass>& out);
Status ReadKrrPolicy(const Json& value, KrrPolicyConfig& out);
// KMSs before users: users' KMS lists name them (config.cpp keeps the order).
Status ReadTrustRelations(const Json* value, KmsConfig& config, IdentityIndex& identities);
Status ReadExternalKms(const Json* value, KmsConfig& config, IdentityIndex& identities);
Status ReadUsers(const Json* value, KmsConfig& config, IdentityIndex& identities);
Status ReadGroups(const Json* value, KmsConfig& config, IdentityIndex& identities);

}  // namespace tkms::provisioning::internal
