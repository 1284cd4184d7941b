// The strict JSON loader of KmsConfig (docs/config.md): the document, its
// roles, files, and the public functions of config.h.
//
// Two steps. The bounded JSON reader (firmware/json/bounded_json.h) builds
// the tree within the configuration's limits (size, nesting depth, number
// of values, string length) and refuses duplicate keys, invalid UTF-8 and
// trailing data, so a hostile document is refused before it is built. Then
// the tree is read section by section into a KmsConfig (config_reader.h:
// config_fields.cpp, config_sections.cpp); every reader knows the JSON path
// of what it reads, and the first problem found is returned. Nothing here
// recurses on input, and every message is printable ASCII.
//
// A document's role (ConfigRole) decides which top-level sections it may
// hold; it is checked before any section is read. Certificates are checked
// for their PEM shape and parsed with mbedTLS (tkms_pki); their dates are
// checked only by CheckCertificateDates, so that parsing never depends on
// the clock.
#include "provisioning/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "firmware/json/bounded_json.h"
#include "provisioning/config_reader.h"

namespace tkms::provisioning {
namespace {

using namespace internal;  // NOLINT: the loader's pieces, in this file only

// Room kept in a bundle's canonical form for the local sections that
// CombineConfig puts in: their canonical JSON is at most about 27 KiB (four
// strings of at most 4095 or 1024 bytes without control characters, each
// byte written as at most 2, plus small fixed-size fields).
constexpr size_t kLocalSectionsReserveBytes = 32768;

constexpr json::Limits kConfigJsonLimits{kMaxConfigBytes, kMaxConfigDepth, kMaxConfigValues, kMaxConfigStringBytes};

struct Section {
  const char* key;
  bool local;
};
constexpr Section kSections[] = {
    {"kms_identity", false},
    {"version", false},
    {"listen", true},
    {"http", true},
    {"tls", true},
    {"token", true},
    {"mikey", true},
    {"zk", true},
    {"user", true},
    {"policy_classes", false},
    {"default_policy_class", false},
    {"token_users", false},
    {"users", false},
    {"groups", false},
    {"trust_relations", false},
    {"external_kms", false},
    {"kms_certificate_chain", false},
    {"network_functions", false},
    {"krr_policy", false},
};

bool AllowedIn(const Section& section, ConfigRole role) {
  return role == ConfigRole::kComplete || section.local == (role == ConfigRole::kLocal);
}

// The document is an object whose keys are sections the role allows.
Status CheckSections(const Json& root, ConfigRole role) {
  if (!root.is_object()) return WrongType("", "an object", root);
  for (const auto& member : root.get_ref<const Json::object_t&>()) {
    const Section* section = nullptr;
    for (const Section& candidate : kSections) {
      if (member.first == candidate.key) section = &candidate;
    }
    if (section == nullptr) {
      std::string expected;
      for (const Section& candidate : kSections) {
        if (AllowedIn(candidate, role)) expected += std::string(expected.empty() ? "" : ", ") + candidate.key;
      }
      return Invalid(KeyPath("", member.first), "unknown key (expected one of: " + expected + ")");
    }
    if (!AllowedIn(*section, role)) {
      return Invalid(section->key, role == ConfigRole::kBundle
                                       ? "an appliance-local setting; it belongs in the local configuration "
                                         "(--config), not in a bundle"
                                       : "comes from the signed bundle; remove it from the local configuration");
    }
  }
  return Status::Ok();
}

// Sections a role does not allow were refused by CheckSections, so reading
// them finds nothing and keeps the defaults.
Result<KmsConfig> ReadConfig(const Json& root, ConfigRole role) {
  TKMS_RETURN_IF_ERROR(CheckSections(root, role));
  KmsConfig config;
  if (role != ConfigRole::kLocal) {
    const Json* kms_identity = Member(root, "kms_identity");
    if (kms_identity == nullptr) return Invalid("kms_identity", "required field is missing");
    TKMS_RETURN_IF_ERROR(ParseString(*kms_identity, "kms_identity", config.kms_identity));
    TKMS_RETURN_IF_ERROR(CheckIdentity(config.kms_identity, "kms_identity"));
  }
  if (const Json* v = Member(root, "version"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ParseUnsigned(*v, "version", 1, kMaxConfigVersion, config.version));
  } else if (role == ConfigRole::kBundle) {
    return Invalid("version", "required field is missing (every bundle has a version)");
  }

  TKMS_RETURN_IF_ERROR(ReadListen(Member(root, "listen"), config.listen));
  if (const Json* v = Member(root, "http"); v != nullptr) TKMS_RETURN_IF_ERROR(ReadHttp(*v, config.http));
  if (const Json* v = Member(root, "tls"); v != nullptr) TKMS_RETURN_IF_ERROR(ReadTls(*v, config.tls));
  TKMS_RETURN_IF_ERROR(internal::CheckListenSecurity(config.listen, config.tls, false));
  if (role != ConfigRole::kBundle) TKMS_RETURN_IF_ERROR(ReadToken(Member(root, "token"), config.token));
  if (const Json* v = Member(root, "mikey"); v != nullptr) TKMS_RETURN_IF_ERROR(ReadMikey(*v, config.mikey));
  if (const Json* v = Member(root, "zk"); v != nullptr) TKMS_RETURN_IF_ERROR(ReadZk(*v, config.zk));
  if (const Json* v = Member(root, "user"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ParseString(*v, "user", config.user));
    TKMS_RETURN_IF_ERROR(CheckUserName(config.user, "user"));
  }

  const Json* classes = Member(root, "policy_classes");
  TKMS_RETURN_IF_ERROR(ReadPolicyClasses(classes, config.policy_classes));
  if (const Json* v = Member(root, "default_policy_class"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ParseString(*v, "default_policy_class", config.default_policy_class));
  }
  if (config.policy_classes.count(config.default_policy_class) == 0) {
    return Invalid("default_policy_class",
                   "no policy class named " + Quote(config.default_policy_class) +
                       (classes == nullptr ? " (without policy_classes the only class is 'default')" : ""));
  }
  TKMS_RETURN_IF_ERROR(ReadBool(root, "", "token_users", config.token_users));

  // KMSs before users: users' KMS lists name them.
  IdentityIndex identities;
  TKMS_RETURN_IF_ERROR(ReadTrustRelations(Member(root, "trust_relations"), config, identities));
  TKMS_RETURN_IF_ERROR(ReadExternalKms(Member(root, "external_kms"), config, identities));
  if (const Json* v = Member(root, "kms_certificate_chain"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ReadCertificateChain(*v, "kms_certificate_chain", config.kms_certificate_chain));
  }
  TKMS_RETURN_IF_ERROR(ReadNetworkFunctions(Member(root, "network_functions"), config));
  if (const Json* v = Member(root, "krr_policy"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ReadKrrPolicy(*v, config.krr_policy));
  }
  TKMS_RETURN_IF_ERROR(ReadUsers(Member(root, "users"), config, identities));
  TKMS_RETURN_IF_ERROR(ReadGroups(Member(root, "groups"), config, identities));
  return config;
}

// ---- files -----------------------------------------------------------------------

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

const char* FileTypeName(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

std::string TooLarge(const std::string& shown, const std::string& size) {
  return shown + ": the file is " + size + " bytes; at most " + std::to_string(kMaxConfigBytes) +
         " (kMaxConfigBytes)";
}

// Defaults are written out in the canonical form; it must parse again. A
// bundle's must leave room for the local sections CombineConfig adds.
Result<KmsConfig> CheckCanonicalSize(KmsConfig config, ConfigRole role) {
  const size_t canonical = ConfigToJson(config).size();
  if (role == ConfigRole::kBundle && canonical > kMaxConfigBytes - kLocalSectionsReserveBytes) {
    return Invalid("", "the canonical form of this bundle (ConfigToJson, every default written out) would be " +
                           std::to_string(canonical) + " bytes; at most " +
                           std::to_string(kMaxConfigBytes - kLocalSectionsReserveBytes) +
                           " (kMaxConfigBytes less 32768 kept for the local sections)");
  }
  if (canonical > kMaxConfigBytes) {
    return Invalid("", "the canonical form of this configuration (ConfigToJson, every default written out) "
                       "would be " + std::to_string(canonical) + " bytes; at most " +
                       std::to_string(kMaxConfigBytes) + " (kMaxConfigBytes)");
  }
  return config;
}

}  // namespace

Result<KmsConfig> ParseConfig(std::string_view json_text, ConfigRole role) {
  if (role != ConfigRole::kComplete && role != ConfigRole::kLocal && role != ConfigRole::kBundle) {
    return InvalidArgument("$: unknown configuration role " + std::to_string(static_cast<unsigned>(role)));
  }
  if (json_text.size() > kMaxConfigBytes) {
    return Invalid("", "the document is " + std::to_string(json_text.size()) + " bytes; at most " +
                           std::to_string(kMaxConfigBytes) + " (kMaxConfigBytes)");
  }
  try {
    auto root = json::Parse(json_text, kConfigJsonLimits);
    if (!root.ok()) {
      const json::ParseError& e = root.error();
      if (e.kind == json::ErrorKind::kOutOfMemory) return ResourceExhausted("$: out of memory while reading the configuration");
      return InvalidArgument(e.ToString());
    }
    auto config = ReadConfig(*root, role);
    if (!config.ok()) return config;
    return CheckCanonicalSize(std::move(*config), role);
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("$: out of memory while reading the configuration");
  }
}

Result<KmsConfig> LoadConfigFile(const std::string& path, ConfigRole role) {
  std::string shown;
  AppendEscaped(shown, path, '\0');
  if (path.empty() || path.find('\0') != std::string::npos) {
    return InvalidArgument(shown + ": not a usable file name");
  }
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    const int error = errno;
    std::string message = shown + ": cannot open: " + std::strerror(error);
    if (error == ENOENT || error == ENOTDIR) return NotFound(std::move(message));
    if (error == EACCES || error == EPERM) return PermissionDenied(std::move(message));
    if (error == ELOOP || error == ENAMETOOLONG || error == ENXIO) return InvalidArgument(std::move(message));
    return Unavailable(std::move(message));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Unavailable(shown + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgument(shown + ": is " + FileTypeName(st.st_mode) + ", not a regular file");
  }
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > kMaxConfigBytes) {
    return InvalidArgument(TooLarge(shown, std::to_string(st.st_size)));
  }
  // Up to one byte more than allowed, in case the file grew since fstat.
  std::string text(kMaxConfigBytes + 1, '\0');
  size_t used = 0;
  while (used < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unavailable(shown + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > kMaxConfigBytes) return InvalidArgument(TooLarge(shown, "more than " + std::to_string(kMaxConfigBytes)));
  text.resize(used);
  auto config = ParseConfig(text, role);
  if (!config.ok()) return Status(config.error().code(), shown + ": " + config.error().message());
  return config;
}

bool NetworkFunctionConfig::may_resolve() const {
  for (const auto& role : roles) {
    if (role == "resolve") return true;
  }
  return false;
}

Status CheckListenSecurity(const KmsConfig& config, bool allow_plaintext_ua) {
  return internal::CheckListenSecurity(config.listen, config.tls, allow_plaintext_ua);
}

KmsConfig CombineConfig(const KmsConfig& local, const KmsConfig& bundle) {
  KmsConfig combined = bundle;
  combined.listen = local.listen;
  combined.http = local.http;
  combined.tls = local.tls;
  combined.token = local.token;
  combined.mikey = local.mikey;
  combined.zk = local.zk;
  combined.user = local.user;
  return combined;
}

Status CheckCertificateDates(const KmsConfig& config, std::time_t now) {
  for (size_t i = 0; i < config.trust_relations.size(); ++i) {
    const TrustRelationConfig& trust = config.trust_relations[i];
    const std::string path = IndexPath("trust_relations", i);
    if (!trust.certificate.empty()) {
      TKMS_RETURN_IF_ERROR(CheckCertificateDate(trust.certificate, KeyPath(path, "certificate"), now));
    }
    if (!trust.ca.empty()) TKMS_RETURN_IF_ERROR(CheckCertificateDate(trust.ca, KeyPath(path, "ca"), now));
  }
  for (size_t i = 0; i < config.external_kms.size(); ++i) {
    TKMS_RETURN_IF_ERROR(CheckCertificateDate(config.external_kms[i].certificate,
                                              KeyPath(IndexPath("external_kms", i), "certificate"), now));
  }
  for (size_t i = 0; i < config.network_functions.size(); ++i) {
    TKMS_RETURN_IF_ERROR(CheckCertificateDate(config.network_functions[i].certificate,
                                              KeyPath(IndexPath("network_functions", i), "certificate"), now));
  }
  // The leaf of the KMS's own chain (its intermediates expire with it or later).
  if (!config.kms_certificate_chain.empty()) {
    TKMS_RETURN_IF_ERROR(CheckCertificateChainDate(config.kms_certificate_chain, "kms_certificate_chain", now));
  }
  return Status::Ok();
}

}  // namespace tkms::provisioning