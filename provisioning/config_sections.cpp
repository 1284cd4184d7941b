// The configuration loader's section readers: see config_reader.h and
// docs/config.md (one table per section there).
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/base/user_identity.h"
#include "provisioning/config_reader.h"

namespace tkms::provisioning::internal {

namespace {

Status ReadEndpoint(const Json& object, const std::string& path, const char* key, std::string& out,
                    Endpoint& endpoint) {
  const Json* value = Member(object, key);
  const std::string field = KeyPath(path, key);
  if (value != nullptr) TKMS_RETURN_IF_ERROR(ParseString(*value, field, out));
  const auto parsed = ParseEndpoint(out);
  if (!parsed) {
    return Invalid(field, "expected \"ADDRESS:PORT\" with a dotted-quad IPv4 address and a port 0..65535, "
                          "no leading zeros (e.g. \"127.0.0.1:8080\"), got " + Quote(out));
  }
  endpoint = *parsed;
  return Status::Ok();
}

}  // namespace

Status ReadListen(const Json* value, ListenConfig& out) {
  const std::string path = "listen";
  if (value != nullptr) {
    TKMS_RETURN_IF_ERROR(
        CheckObject(*value, path, {"ua", "ua_tls", "admin", "zk", "plaintext_ua_on_non_loopback"}));
  }
  const Json empty = Json::object();
  const Json& object = value != nullptr ? *value : empty;
  struct Named {
    const char* key;
    std::string* text;
    bool optional;  // "" turns the listener off
    Endpoint endpoint;
  };
  Named listeners[] = {{"ua", &out.ua, true, {}},
                       {"ua_tls", &out.ua_tls, true, {}},
                       {"admin", &out.admin, false, {}},
                       {"zk", &out.zk, true, {}}};
  for (Named& l : listeners) {
    const Json* v = Member(object, l.key);
    if (v != nullptr) TKMS_RETURN_IF_ERROR(ParseString(*v, KeyPath(path, l.key), *l.text));
    if (l.optional && l.text->empty()) continue;
    TKMS_RETURN_IF_ERROR(ReadEndpoint(object, path, l.key, *l.text, l.endpoint));
  }
  TKMS_RETURN_IF_ERROR(ReadBool(object, path, "plaintext_ua_on_non_loopback", out.plaintext_ua_on_non_loopback));
  // No two sockets may bind the same port on overlapping addresses.
  for (size_t i = 0; i < std::size(listeners); ++i) {
    for (size_t j = i + 1; j < std::size(listeners); ++j) {
      const Named& a = listeners[i];
      const Named& b = listeners[j];
      if (a.text->empty() || b.text->empty()) continue;
      if (a.endpoint.port != 0 && a.endpoint.port == b.endpoint.port &&
          (a.endpoint.address == b.endpoint.address || a.endpoint.address == 0 || b.endpoint.address == 0)) {
        return Invalid(KeyPath(path, b.key), Quote(*b.text) + " conflicts with listen." + a.key + " " +
                                                 Quote(*a.text) + " (same port on overlapping addresses)");
      }
    }
  }
  if (out.ua.empty() && out.ua_tls.empty()) return Invalid("listen", "needs a Ua listener: ua or ua_tls");
  return Status::Ok();
}

namespace {
// 127.0.0.0/8, as ParseEndpoint reads addresses (host order).
bool IsLoopback(const std::string& listen) {
  const auto endpoint = ParseEndpoint(listen);
  return endpoint && (endpoint->address >> 24) == 127;
}
}  // namespace

Status CheckListenSecurity(const ListenConfig& listen, const TlsConfig& tls, bool allow_plaintext_ua) {
  if (!listen.ua.empty() && !IsLoopback(listen.ua) && !listen.plaintext_ua_on_non_loopback && !allow_plaintext_ua) {
    return Invalid("listen.ua", Quote(listen.ua) +
                                    " is plaintext HTTP off loopback: use listen.ua_tls, or set "
                                    "listen.plaintext_ua_on_non_loopback to true to accept it");
  }
  if (!listen.ua_tls.empty() && tls.certificate_chain_file.empty()) {
    return Invalid("tls.certificate_chain_file", "required field is missing (listen.ua_tls is set)");
  }
  if (!IsLoopback(listen.admin) && !tls.admin_requires_client_certificate()) {
    return Invalid("listen.admin", Quote(listen.admin) +
                                       " is off loopback: the admin listener then requires mutual TLS; set "
                                       "tls.admin_client_ca_file or tls.admin_client_certificate_files");
  }
  if (tls.admin_requires_client_certificate() && tls.certificate_chain_file.empty()) {
    return Invalid("tls.certificate_chain_file", "required field is missing (the admin listener uses mutual TLS)");
  }
  return Status::Ok();
}

Status ReadTls(const Json& value, TlsConfig& out) {
  const std::string path = "tls";
  TKMS_RETURN_IF_ERROR(CheckObject(
      value, path, {"key_label", "certificate_chain_file", "admin_client_ca_file", "admin_client_certificate_files"}));
  if (const Json* v = Member(value, "key_label"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ParseString(*v, "tls.key_label", out.key_label));
    if (out.key_label.empty() || out.key_label.size() > 64) return Invalid("tls.key_label", "must be 1..64 bytes");
    for (char c : out.key_label) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return Invalid("tls.key_label", "no spaces or control characters");
    }
  }
  for (auto [key, target] : {std::pair{"certificate_chain_file", &out.certificate_chain_file},
                             std::pair{"admin_client_ca_file", &out.admin_client_ca_file}}) {
    if (const Json* v = Member(value, key); v != nullptr) {
      TKMS_RETURN_IF_ERROR(ParseString(*v, KeyPath(path, key), *target));
      // "" is "not set" (what the canonical form writes for an absent file).
      if (!target->empty()) TKMS_RETURN_IF_ERROR(CheckFileName(*target, KeyPath(path, key), false));
    }
  }
  if (const Json* v = Member(value, "admin_client_certificate_files"); v != nullptr) {
    const std::string field = KeyPath(path, "admin_client_certificate_files");
    if (!v->is_array()) return Invalid(field, "must be an array of file names");
    if (v->size() > 64) return Invalid(field, "at most 64 files");
    out.admin_client_certificate_files.clear();
    for (size_t i = 0; i < v->size(); ++i) {
      const std::string item = field + "[" + std::to_string(i) + "]";
      std::string file;
      TKMS_RETURN_IF_ERROR(ParseString((*v)[i], item, file));
      TKMS_RETURN_IF_ERROR(CheckFileName(file, item, false));
      out.admin_client_certificate_files.push_back(std::move(file));
    }
  }
  return Status::Ok();
}

Status ReadHttp(const Json& value, HttpConfig& out) {
  const std::string path = "http";
  TKMS_RETURN_IF_ERROR(CheckObject(
      value, path,
      {"max_body_bytes", "worker_threads", "request_timeout_ms", "keep_alive_timeout_ms", "max_connections",
       "max_connections_per_source", "max_pending_requests", "max_header_bytes", "max_header_fields",
       "drain_timeout_ms", "reuse_port"}));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_body_bytes", 256, 1048576, out.max_body_bytes));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "worker_threads", 1, 256, out.worker_threads));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "request_timeout_ms", 100, 600000, out.request_timeout_ms));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "keep_alive_timeout_ms", 0, 600000, out.keep_alive_timeout_ms));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_connections", 1, 1000000, out.max_connections));
  TKMS_RETURN_IF_ERROR(
      ReadUnsigned(value, path, "max_connections_per_source", 1, 1000000, out.max_connections_per_source));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_pending_requests", 1, 100000, out.max_pending_requests));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_header_bytes", 1024, 65536, out.max_header_bytes));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_header_fields", 8, 1000, out.max_header_fields));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "drain_timeout_ms", 0, 600000, out.drain_timeout_ms));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "reuse_port", out.reuse_port));
  return Status::Ok();
}

Status ReadToken(const Json* value, TokenConfig& out) {
  const std::string path = "token";
  if (value == nullptr) return Invalid("token.pin_file", "required field is missing");
  TKMS_RETURN_IF_ERROR(CheckObject(
      *value, path, {"module_path", "token", "pin_file", "softhsm2_conf", "sessions", "health_check_interval_ms"}));
  if (const Json* v = Member(*value, "module_path"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ParseString(*v, "token.module_path", out.module_path));
    TKMS_RETURN_IF_ERROR(CheckFileName(out.module_path, "token.module_path", true));
  }
  if (const Json* v = Member(*value, "token"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ParseString(*v, "token.token", out.token));
    TKMS_RETURN_IF_ERROR(CheckTokenSpec(out.token, "token.token"));
  }
  const Json* pin_file = Member(*value, "pin_file");
  if (pin_file == nullptr) return Invalid("token.pin_file", "required field is missing");
  TKMS_RETURN_IF_ERROR(ParseString(*pin_file, "token.pin_file", out.pin_file));
  TKMS_RETURN_IF_ERROR(CheckFileName(out.pin_file, "token.pin_file", false));
  if (const Json* v = Member(*value, "softhsm2_conf"); v != nullptr) {
    std::string conf;
    TKMS_RETURN_IF_ERROR(ParseString(*v, "token.softhsm2_conf", conf));
    TKMS_RETURN_IF_ERROR(CheckFileName(conf, "token.softhsm2_conf", false));
    out.softhsm2_conf = std::move(conf);
  }
  TKMS_RETURN_IF_ERROR(ReadUnsigned(*value, path, "sessions", 1, 64, out.sessions));
  TKMS_RETURN_IF_ERROR(
      ReadUnsigned(*value, path, "health_check_interval_ms", 100, 60000, out.health_check_interval_ms));
  return Status::Ok();
}

Status ReadZk(const Json& value, ZkConfig& out) {
  const std::string path = "zk";
  TKMS_RETURN_IF_ERROR(CheckObject(
      value, path, {"connect_timeout_ms", "response_timeout_ms", "max_connections_per_peer", "retry_after_failure_ms"}));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "connect_timeout_ms", 100, 60000, out.connect_timeout_ms));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "response_timeout_ms", 100, 600000, out.response_timeout_ms));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_connections_per_peer", 1, 256, out.max_connections_per_peer));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "retry_after_failure_ms", 0, 600000, out.retry_after_failure_ms));
  return Status::Ok();
}

Status ReadMikey(const Json& value, MikeyConfig& out) {
  const std::string path = "mikey";
  TKMS_RETURN_IF_ERROR(
      CheckObject(value, path, {"timestamp_window_s", "replay_cache_entries", "kemac_iv_timestamp"}));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "timestamp_window_s", 1, 3600, out.timestamp_window_s));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "replay_cache_entries", 1, 10000000, out.replay_cache_entries));
  if (const Json* iv = Member(value, "kemac_iv_timestamp")) {
    const std::string iv_path = KeyPath(path, "kemac_iv_timestamp");
    std::string text;
    TKMS_RETURN_IF_ERROR(ParseString(*iv, iv_path, text));
    if (text == "response") {
      out.kemac_iv_timestamp = KemacIvTimestamp::kResponse;
    } else if (text == "request") {
      out.kemac_iv_timestamp = KemacIvTimestamp::kRequest;
    } else {
      return Invalid(iv_path, "must be \"response\" or \"request\"");
    }
  }
  return Status::Ok();
}

namespace {

// "auto" | "aes-cm-128" | "aes-cm-256" (docs/kms.md "KEMAC encryption algorithm").
Status ReadKemacEncryption(const Json& value, const std::string& path, KemacEncryption& out) {
  const Json* member = Member(value, "kemac_encryption");
  if (member == nullptr) return Status::Ok();
  const std::string member_path = KeyPath(path, "kemac_encryption");
  std::string text;
  TKMS_RETURN_IF_ERROR(ParseString(*member, member_path, text));
  if (text == "auto") {
    out = KemacEncryption::kAuto;
  } else if (text == "aes-cm-128") {
    out = KemacEncryption::kAesCm128;
  } else if (text == "aes-cm-256") {
    out = KemacEncryption::kAesCm256;
  } else {
    return Invalid(member_path, "must be \"auto\", \"aes-cm-128\" or \"aes-cm-256\"");
  }
  return Status::Ok();
}

Status ReadPolicyClass(const Json& value, const std::string& path, PolicyClass& out) {
  TKMS_RETURN_IF_ERROR(CheckObject(value, path,
                                   {"default_lifetime_s", "max_lifetime_s", "allow_reuse", "allow_forking",
                                    "allow_initiator_keys", "allow_responder_keys", "max_responders", "max_keys",
                                    "allow_request", "allow_resolve", "kemac_encryption"}));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "default_lifetime_s", 1, kMaxLifetimeS, out.default_lifetime_s));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_lifetime_s", 1, kMaxLifetimeS, out.max_lifetime_s));
  if (out.default_lifetime_s > out.max_lifetime_s) {
    const bool given = Member(value, "default_lifetime_s") != nullptr;
    return Invalid(KeyPath(path, "default_lifetime_s"),
                   std::to_string(out.default_lifetime_s) + (given ? "" : " (the default)") +
                       " is more than max_lifetime_s (" + std::to_string(out.max_lifetime_s) + ")");
  }
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_reuse", out.allow_reuse));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_forking", out.allow_forking));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_initiator_keys", out.allow_initiator_keys));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_responder_keys", out.allow_responder_keys));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_responders", 1, 256, out.max_responders));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_keys", 1, 16, out.max_keys));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_request", out.allow_request));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_resolve", out.allow_resolve));
  TKMS_RETURN_IF_ERROR(ReadKemacEncryption(value, path, out.kemac_encryption));
  return Status::Ok();
}

}  // namespace

Status ReadPolicyClasses(const Json* value, std::map<std::string, PolicyClass>& out) {
  const std::string path = "policy_classes";
  if (value == nullptr) {
    out.emplace("default", PolicyClass{});
    return Status::Ok();
  }
  if (!value->is_object()) return WrongType(path, "an object", *value);
  for (const auto& [name, body] : value->get_ref<const Json::object_t&>()) {
    const std::string class_path = KeyPath(path, name);
    TKMS_RETURN_IF_ERROR(CheckPolicyName(name, class_path));
    PolicyClass policy;
    TKMS_RETURN_IF_ERROR(ReadPolicyClass(body, class_path, policy));
    out.emplace(name, policy);
  }
  return Status::Ok();
}

Status ReadKrrPolicy(const Json& value, KrrPolicyConfig& out) {
  const std::string path = "krr_policy";
  TKMS_RETURN_IF_ERROR(CheckObject(value, path,
                                   {"allow_krr", "report_krr", "require_signed_krr",
                                    "request_unknown_kms_certificates", "hold_until_kms_acceptance"}));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_krr", out.allow_krr));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "report_krr", out.report_krr));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "require_signed_krr", out.require_signed_krr));
  TKMS_RETURN_IF_ERROR(
      ReadBool(value, path, "request_unknown_kms_certificates", out.request_unknown_kms_certificates));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "hold_until_kms_acceptance", out.hold_until_kms_acceptance));
  return Status::Ok();
}

namespace {

// The required "kms_uri" of trust_relations[i] or external_kms[i] (`path`):
// an identity, not kms_identity, and no other entry's.
Status ReadKmsUri(const Json& entry, const std::string& path, const KmsConfig& config, IdentityIndex& identities,
                  std::string& out) {
  const std::string uri_path = KeyPath(path, "kms_uri");
  const Json* uri = Member(entry, "kms_uri");
  if (uri == nullptr) return Invalid(uri_path, "required field is missing");
  TKMS_RETURN_IF_ERROR(ParseString(*uri, uri_path, out));
  TKMS_RETURN_IF_ERROR(CheckIdentity(out, uri_path));
  if (SameUserIdentity(out, config.kms_identity)) return Invalid(uri_path, Quote(out) + " is kms_identity");
  const auto [it, inserted] = identities.kms_of.emplace(CanonicalUserIdentity(out), path);
  if (!inserted) return Invalid(uri_path, Quote(out) + " is already the kms_uri of " + it->second);
  return Status::Ok();
}

}  // namespace

Status ReadTrustRelations(const Json* value, KmsConfig& config, IdentityIndex& identities) {
  if (value == nullptr) return Status::Ok();
  if (!value->is_array()) return WrongType("trust_relations", "an array", *value);
  if (value->size() > kMaxTrustRelations) {
    return Invalid("trust_relations", std::to_string(value->size()) + " entries; at most " +
                                          std::to_string(kMaxTrustRelations) + " (kMaxTrustRelations)");
  }
  config.trust_relations.reserve(value->size());
  for (size_t i = 0; i < value->size(); ++i) {
    const Json& entry = (*value)[i];
    const std::string path = IndexPath("trust_relations", i);
    TKMS_RETURN_IF_ERROR(CheckObject(entry, path, {"kms_uri", "endpoint", "certificate", "ca"}));
    TrustRelationConfig out;
    TKMS_RETURN_IF_ERROR(ReadKmsUri(entry, path, config, identities, out.kms_uri));
    const std::string endpoint_path = KeyPath(path, "endpoint");
    const Json* endpoint = Member(entry, "endpoint");
    if (endpoint == nullptr) return Invalid(endpoint_path, "required field is missing");
    TKMS_RETURN_IF_ERROR(ParseString(*endpoint, endpoint_path, out.endpoint));
    if (!IsZkEndpoint(out.endpoint)) {
      return Invalid(endpoint_path, "expected \"HOST:PORT\" with a DNS name or a dotted-quad IPv4 address and a "
                                    "port 1..65535, no leading zeros (e.g. \"kms.example.net:8443\"), got " +
                                        Quote(out.endpoint));
    }
    const Json* certificate = Member(entry, "certificate");
    const Json* ca = Member(entry, "ca");
    if (certificate != nullptr && ca != nullptr) {
      return Invalid(KeyPath(path, "ca"), "give either certificate (the peer's) or ca (its issuer's), not both");
    }
    if (certificate == nullptr && ca == nullptr) {
      return Invalid(KeyPath(path, "certificate"),
                     "required field is missing (give certificate, the peer's, or ca, its issuer's)");
    }
    if (certificate != nullptr) {
      TKMS_RETURN_IF_ERROR(ReadCertificate(*certificate, KeyPath(path, "certificate"), false, out.certificate));
    } else {
      TKMS_RETURN_IF_ERROR(ReadCertificate(*ca, KeyPath(path, "ca"), true, out.ca));
    }
    config.trust_relations.push_back(std::move(out));
  }
  return Status::Ok();
}

Status ReadExternalKms(const Json* value, KmsConfig& config, IdentityIndex& identities) {
  if (value == nullptr) return Status::Ok();
  if (!value->is_array()) return WrongType("external_kms", "an array", *value);
  if (value->size() > kMaxExternalKms) {
    return Invalid("external_kms", std::to_string(value->size()) + " entries; at most " +
                                       std::to_string(kMaxExternalKms) + " (kMaxExternalKms)");
  }
  config.external_kms.reserve(value->size());
  for (size_t i = 0; i < value->size(); ++i) {
    const Json& entry = (*value)[i];
    const std::string path = IndexPath("external_kms", i);
    TKMS_RETURN_IF_ERROR(CheckObject(entry, path, {"kms_uri", "certificate"}));
    ExternalKmsConfig out;
    TKMS_RETURN_IF_ERROR(ReadKmsUri(entry, path, config, identities, out.kms_uri));
    const std::string certificate_path = KeyPath(path, "certificate");
    const Json* certificate = Member(entry, "certificate");
    if (certificate == nullptr) return Invalid(certificate_path, "required field is missing");
    TKMS_RETURN_IF_ERROR(ReadCertificate(*certificate, certificate_path, false, out.certificate));
    config.external_kms.push_back(std::move(out));
  }
  return Status::Ok();
}

Status ReadNetworkFunctions(const Json* value, KmsConfig& config) {
  const std::string path = "network_functions";
  if (value == nullptr) return Status::Ok();
  if (!value->is_array()) return WrongType(path, "an array", *value);
  if (value->size() > kMaxNetworkFunctions) {
    return Invalid(path, std::to_string(value->size()) + " entries; at most " + std::to_string(kMaxNetworkFunctions) +
                             " (kMaxNetworkFunctions)");
  }
  // A pinned certificate maps to exactly one client: no two functions, and
  // no function and trust relation, share one.
  std::unordered_map<std::string, std::string> owner_of;  // certificate PEM (trimmed) -> path
  const auto trimmed = [](std::string_view pem) {
    while (!pem.empty() && (pem.front() == ' ' || pem.front() == '\n' || pem.front() == '\r' || pem.front() == '\t')) {
      pem.remove_prefix(1);
    }
    while (!pem.empty() && (pem.back() == ' ' || pem.back() == '\n' || pem.back() == '\r' || pem.back() == '\t')) {
      pem.remove_suffix(1);
    }
    return std::string(pem);
  };
  for (size_t i = 0; i < config.trust_relations.size(); ++i) {
    if (!config.trust_relations[i].certificate.empty()) {
      owner_of.emplace(trimmed(config.trust_relations[i].certificate), IndexPath("trust_relations", i));
    }
  }
  std::unordered_map<std::string, std::string> name_of;
  config.network_functions.reserve(value->size());
  for (size_t i = 0; i < value->size(); ++i) {
    const Json& entry = (*value)[i];
    const std::string item = IndexPath(path, i);
    TKMS_RETURN_IF_ERROR(CheckObject(entry, item, {"name", "certificate", "roles"}));
    NetworkFunctionConfig out;
    const Json* name = Member(entry, "name");
    if (name == nullptr) return Invalid(KeyPath(item, "name"), "required field is missing");
    TKMS_RETURN_IF_ERROR(ParseString(*name, KeyPath(item, "name"), out.name));
    if (out.name.empty() || out.name.size() > 64) return Invalid(KeyPath(item, "name"), "must be 1..64 bytes");
    for (char c : out.name) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '-' || c == '_';
      if (!ok) return Invalid(KeyPath(item, "name"), "letters, digits, '.', '-' and '_' only, got " + Quote(out.name));
    }
    if (const auto [it, inserted] = name_of.emplace(out.name, item); !inserted) {
      return Invalid(KeyPath(item, "name"), Quote(out.name) + " is already the name of " + it->second);
    }
    const Json* certificate = Member(entry, "certificate");
    if (certificate == nullptr) return Invalid(KeyPath(item, "certificate"), "required field is missing");
    TKMS_RETURN_IF_ERROR(ReadCertificate(*certificate, KeyPath(item, "certificate"), false, out.certificate));
    if (const auto [it, inserted] = owner_of.emplace(trimmed(out.certificate), item); !inserted) {
      return Invalid(KeyPath(item, "certificate"), "is also the certificate of " + it->second);
    }
    const std::string roles_path = KeyPath(item, "roles");
    const Json* roles = Member(entry, "roles");
    if (roles == nullptr) return Invalid(roles_path, "required field is missing (e.g. [\"resolve\"], or [] for none)");
    if (!roles->is_array()) return WrongType(roles_path, "an array", *roles);
    if (roles->size() > 8) return Invalid(roles_path, "at most 8 entries");
    for (size_t r = 0; r < roles->size(); ++r) {
      std::string role;
      TKMS_RETURN_IF_ERROR(ParseString((*roles)[r], IndexPath(roles_path, r), role));
      if (role != "resolve") return Invalid(IndexPath(roles_path, r), "unknown role " + Quote(role) + " (known: resolve)");
      for (const auto& seen : out.roles) {
        if (seen == role) return Invalid(IndexPath(roles_path, r), Quote(role) + " is listed twice");
      }
      out.roles.push_back(std::move(role));
    }
    config.network_functions.push_back(std::move(out));
  }
  return Status::Ok();
}

namespace {

// A user's primary_home_kms, secondary_home_kms or external_kms list: KMS
// URIs this configuration knows, each once.
Status ReadUserKmsList(const Json& user, const std::string& path, const char* key, const KmsConfig& config,
                       const IdentityIndex& identities, std::vector<std::string>& out) {
  const Json* list = Member(user, key);
  if (list == nullptr) return Status::Ok();
  const std::string list_path = KeyPath(path, key);
  if (!list->is_array()) return WrongType(list_path, "an array", *list);
  if (list->size() > kMaxUserKmsListEntries) {
    return Invalid(list_path, std::to_string(list->size()) + " entries; at most " +
                                  std::to_string(kMaxUserKmsListEntries) + " (kMaxUserKmsListEntries)");
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string uri_path = IndexPath(list_path, i);
    std::string uri;
    TKMS_RETURN_IF_ERROR(ParseString((*list)[i], uri_path, uri));
    TKMS_RETURN_IF_ERROR(CheckIdentity(uri, uri_path));
    if (!SameUserIdentity(uri, config.kms_identity) && identities.kms_of.count(CanonicalUserIdentity(uri)) == 0) {
      return Invalid(uri_path, Quote(uri) + " is not a known KMS (kms_identity, or the kms_uri of an entry of "
                                            "trust_relations or external_kms)");
    }
    for (size_t j = 0; j < out.size(); ++j) {
      if (SameUserIdentity(out[j], uri)) {
        return Invalid(uri_path, Quote(uri) + " is listed twice (also " + IndexPath(list_path, j) + ")");
      }
    }
    out.push_back(std::move(uri));
  }
  return Status::Ok();
}

Status ReadUser(const Json& value, const std::string& path, size_t index, const KmsConfig& config,
                IdentityIndex& identities, std::unordered_map<std::string, size_t>& psk_owner, UserConfig& out) {
  TKMS_RETURN_IF_ERROR(CheckObject(
      value, path,
      {"identities", "psk_id", "policy_class", "primary_home_kms", "secondary_home_kms", "external_kms"}));
  const std::string ids_path = KeyPath(path, "identities");
  const Json* ids = Member(value, "identities");
  if (ids == nullptr) return Invalid(ids_path, "required field is missing");
  if (!ids->is_array()) return WrongType(ids_path, "an array", *ids);
  if (ids->empty()) return Invalid(ids_path, "must list at least one identity");
  for (size_t i = 0; i < ids->size(); ++i) {
    const std::string id_path = IndexPath(ids_path, i);
    std::string identity;
    TKMS_RETURN_IF_ERROR(ParseString((*ids)[i], id_path, identity));
    TKMS_RETURN_IF_ERROR(CheckIdentity(identity, id_path));
    if (SameUserIdentity(identity, config.kms_identity)) return Invalid(id_path, Quote(identity) + " is kms_identity");
    const auto [it, inserted] = identities.user_of.emplace(CanonicalUserIdentity(identity), index);
    if (!inserted) {
      return Invalid(id_path, it->second == index
                                  ? Quote(identity) + " is listed twice"
                                  : Quote(identity) + " already belongs to " + IndexPath("users", it->second));
    }
    out.identities.push_back(std::move(identity));
  }
  if (const Json* psk = Member(value, "psk_id"); psk != nullptr) {
    const std::string psk_path = KeyPath(path, "psk_id");
    std::string hex;
    TKMS_RETURN_IF_ERROR(ParseString(*psk, psk_path, hex));
    auto bytes = HexDecode(hex);
    if (!bytes || bytes->empty() || bytes->size() > kMaxPskIdBytes) {
      return Invalid(psk_path, "expected the CKA_ID as 1..64 bytes of hex (2..128 hex digits), got " + Quote(hex));
    }
    // Keyed by the canonical (lowercase) hex.
    const auto [it, inserted] = psk_owner.emplace(HexEncode(*bytes), index);
    if (!inserted) return Invalid(psk_path, "names the same PSK object as " + IndexPath("users", it->second));
    out.psk_id = std::move(*bytes);
  }
  if (const Json* policy = Member(value, "policy_class"); policy != nullptr) {
    const std::string policy_path = KeyPath(path, "policy_class");
    TKMS_RETURN_IF_ERROR(ParseString(*policy, policy_path, out.policy_class));
    if (out.policy_class.empty()) {
      return Invalid(policy_path, "must not be empty (omit it to use default_policy_class)");
    }
    if (config.policy_classes.count(out.policy_class) == 0) {
      return Invalid(policy_path, "no policy class named " + Quote(out.policy_class));
    }
  }
  TKMS_RETURN_IF_ERROR(ReadUserKmsList(value, path, "primary_home_kms", config, identities, out.primary_home_kms));
  TKMS_RETURN_IF_ERROR(
      ReadUserKmsList(value, path, "secondary_home_kms", config, identities, out.secondary_home_kms));
  TKMS_RETURN_IF_ERROR(ReadUserKmsList(value, path, "external_kms", config, identities, out.external_kms));
  return Status::Ok();
}

}  // namespace

Status ReadUsers(const Json* value, KmsConfig& config, IdentityIndex& identities) {
  if (value == nullptr) return Status::Ok();
  if (!value->is_array()) return WrongType("users", "an array", *value);
  if (value->size() > kMaxUsers) {
    return Invalid("users", std::to_string(value->size()) + " entries; at most " + std::to_string(kMaxUsers));
  }
  std::unordered_map<std::string, size_t> psk_owner;
  config.users.reserve(value->size());
  for (size_t i = 0; i < value->size(); ++i) {
    UserConfig user;
    TKMS_RETURN_IF_ERROR(ReadUser((*value)[i], IndexPath("users", i), i, config, identities, psk_owner, user));
    config.users.push_back(std::move(user));
  }
  return Status::Ok();
}

// Two passes: every group identity is known before members are checked, so a
// member naming a later group is refused too.
Status ReadGroups(const Json* value, KmsConfig& config, IdentityIndex& identities) {
  if (value == nullptr) return Status::Ok();
  if (!value->is_array()) return WrongType("groups", "an array", *value);
  if (value->size() > kMaxGroups) {
    return Invalid("groups", std::to_string(value->size()) + " entries; at most " + std::to_string(kMaxGroups));
  }
  config.groups.resize(value->size());
  for (size_t g = 0; g < value->size(); ++g) {
    const Json& group = (*value)[g];
    const std::string path = IndexPath("groups", g);
    TKMS_RETURN_IF_ERROR(CheckObject(group, path, {"identity", "members"}));
    const std::string id_path = KeyPath(path, "identity");
    const Json* id = Member(group, "identity");
    if (id == nullptr) return Invalid(id_path, "required field is missing");
    std::string& identity = config.groups[g].identity;
    TKMS_RETURN_IF_ERROR(ParseString(*id, id_path, identity));
    TKMS_RETURN_IF_ERROR(CheckIdentity(identity, id_path));
    if (SameUserIdentity(identity, config.kms_identity)) return Invalid(id_path, Quote(identity) + " is kms_identity");
    if (const auto user = identities.user_of.find(CanonicalUserIdentity(identity)); user != identities.user_of.end()) {
      return Invalid(id_path, Quote(identity) + " is an identity of " + IndexPath("users", user->second));
    }
    const auto [it, inserted] = identities.group_of.emplace(CanonicalUserIdentity(identity), g);
    if (!inserted) {
      return Invalid(id_path, Quote(identity) + " is already the identity of " + IndexPath("groups", it->second));
    }
  }
  for (size_t g = 0; g < value->size(); ++g) {
    const Json& group = (*value)[g];
    const std::string members_path = KeyPath(IndexPath("groups", g), "members");
    const Json* members = Member(group, "members");
    if (members == nullptr) return Invalid(members_path, "required field is missing");
    if (!members->is_array()) return WrongType(members_path, "an array", *members);
    if (members->empty()) return Invalid(members_path, "must list at least one member");
    std::unordered_map<std::string, size_t> seen;
    std::vector<std::string>& out = config.groups[g].members;
    for (size_t m = 0; m < members->size(); ++m) {
      const std::string member_path = IndexPath(members_path, m);
      std::string member;
      TKMS_RETURN_IF_ERROR(ParseString((*members)[m], member_path, member));
      TKMS_RETURN_IF_ERROR(CheckIdentity(member, member_path));
      if (const auto [it, inserted] = seen.emplace(CanonicalUserIdentity(member), m); !inserted) {
        return Invalid(member_path,
                       Quote(member) + " is listed twice (also " + IndexPath(members_path, it->second) + ")");
      }
      if (SameUserIdentity(member, config.kms_identity)) return Invalid(member_path, Quote(member) + " is kms_identity");
      if (const auto other = identities.group_of.find(CanonicalUserIdentity(member)); other != identities.group_of.end()) {
        return Invalid(member_path, Quote(member) + " is the identity of " + IndexPath("groups", other->second) +
                                        "; groups cannot contain groups");
      }
      if (!config.token_users && identities.user_of.count(CanonicalUserIdentity(member)) == 0) {
        return Invalid(member_path,
                       Quote(member) + " is not an identity of any entry of users (and token_users is false)");
      }
      out.push_back(std::move(member));
    }
  }
  return Status::Ok();
}

// The top-level sections and whether each is local (appliance settings) or
// provisioned (what a bundle delivers), in the order "expected one of" names
// them.

}  // namespace tkms::provisioning::internal
