// ConfigToJson, the canonical form of a configuration (docs/config.md,
// "Canonical form"): compact, keys sorted, every default written out.
#include <map>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "provisioning/config.h"

namespace tkms::provisioning {

using Json = nlohmann::json;

namespace {

// The local sections: listen, http, tls, token, mikey, zk, user.
void PutLocalSections(const KmsConfig& config, Json& root) {
  if (!config.user.empty()) root["user"] = config.user;
  Json& listen = root["listen"] = Json::object();
  listen["ua"] = config.listen.ua;
  listen["ua_tls"] = config.listen.ua_tls;
  listen["admin"] = config.listen.admin;
  listen["zk"] = config.listen.zk;
  listen["plaintext_ua_on_non_loopback"] = config.listen.plaintext_ua_on_non_loopback;

  Json& http = root["http"] = Json::object();
  http["max_body_bytes"] = config.http.max_body_bytes;
  http["worker_threads"] = config.http.worker_threads;
  http["request_timeout_ms"] = config.http.request_timeout_ms;
  http["keep_alive_timeout_ms"] = config.http.keep_alive_timeout_ms;
  http["max_connections"] = config.http.max_connections;
  http["max_connections_per_source"] = config.http.max_connections_per_source;
  http["max_pending_requests"] = config.http.max_pending_requests;
  http["max_header_bytes"] = config.http.max_header_bytes;
  http["max_header_fields"] = config.http.max_header_fields;
  http["drain_timeout_ms"] = config.http.drain_timeout_ms;
  http["reuse_port"] = config.http.reuse_port;

  Json& tls = root["tls"] = Json::object();
  tls["key_label"] = config.tls.key_label;
  tls["certificate_chain_file"] = config.tls.certificate_chain_file;
  tls["admin_client_ca_file"] = config.tls.admin_client_ca_file;
  tls["admin_client_certificate_files"] = config.tls.admin_client_certificate_files;

  Json& token = root["token"] = Json::object();
  token["module_path"] = config.token.module_path;
  token["token"] = config.token.token;
  token["pin_file"] = config.token.pin_file;
  if (config.token.softhsm2_conf) token["softhsm2_conf"] = *config.token.softhsm2_conf;
  token["sessions"] = config.token.sessions;
  token["health_check_interval_ms"] = config.token.health_check_interval_ms;

  Json& mikey = root["mikey"] = Json::object();
  mikey["timestamp_window_s"] = config.mikey.timestamp_window_s;
  mikey["replay_cache_entries"] = config.mikey.replay_cache_entries;
  mikey["kemac_iv_timestamp"] =
      config.mikey.kemac_iv_timestamp == KemacIvTimestamp::kRequest ? "request" : "response";

  Json& zk = root["zk"] = Json::object();
  zk["connect_timeout_ms"] = config.zk.connect_timeout_ms;
  zk["response_timeout_ms"] = config.zk.response_timeout_ms;
  zk["max_connections_per_peer"] = config.zk.max_connections_per_peer;
  zk["retry_after_failure_ms"] = config.zk.retry_after_failure_ms;
}

Json PolicyClassesJson(const std::map<std::string, PolicyClass>& policy_classes) {
  Json classes = Json::object();
  for (const auto& [name, policy] : policy_classes) {
    Json entry = Json::object();
    entry["default_lifetime_s"] = policy.default_lifetime_s;
    entry["max_lifetime_s"] = policy.max_lifetime_s;
    entry["allow_reuse"] = policy.allow_reuse;
    entry["allow_forking"] = policy.allow_forking;
    entry["allow_initiator_keys"] = policy.allow_initiator_keys;
    entry["allow_responder_keys"] = policy.allow_responder_keys;
    entry["max_responders"] = policy.max_responders;
    entry["max_keys"] = policy.max_keys;
    entry["allow_request"] = policy.allow_request;
    entry["allow_resolve"] = policy.allow_resolve;
    entry["kemac_encryption"] = policy.kemac_encryption == KemacEncryption::kAesCm256   ? "aes-cm-256"
                                : policy.kemac_encryption == KemacEncryption::kAesCm128 ? "aes-cm-128"
                                                                                        : "auto";
    classes[name] = std::move(entry);
  }
  return classes;
}

// users and groups.
void PutUsersAndGroups(const KmsConfig& config, Json& root) {
  Json& users = root["users"] = Json::array();
  for (const UserConfig& user : config.users) {
    Json entry = Json::object();
    entry["identities"] = user.identities;
    if (user.psk_id) entry["psk_id"] = HexEncode(*user.psk_id);
    if (!user.policy_class.empty()) entry["policy_class"] = user.policy_class;
    if (!user.primary_home_kms.empty()) entry["primary_home_kms"] = user.primary_home_kms;
    if (!user.secondary_home_kms.empty()) entry["secondary_home_kms"] = user.secondary_home_kms;
    if (!user.external_kms.empty()) entry["external_kms"] = user.external_kms;
    users.push_back(std::move(entry));
  }
  Json& groups = root["groups"] = Json::array();
  for (const GroupConfig& group : config.groups) {
    Json entry = Json::object();
    entry["identity"] = group.identity;
    entry["members"] = group.members;
    groups.push_back(std::move(entry));
  }
}

// trust_relations, external_kms, kms_certificate_chain, network_functions, krr_policy.
void PutOtherKmss(const KmsConfig& config, Json& root) {
  Json& trust_relations = root["trust_relations"] = Json::array();
  for (const TrustRelationConfig& trust : config.trust_relations) {
    Json entry = Json::object();
    entry["kms_uri"] = trust.kms_uri;
    entry["endpoint"] = trust.endpoint;
    if (!trust.certificate.empty()) entry["certificate"] = trust.certificate;
    if (!trust.ca.empty()) entry["ca"] = trust.ca;
    trust_relations.push_back(std::move(entry));
  }
  Json& external_kms = root["external_kms"] = Json::array();
  for (const ExternalKmsConfig& external : config.external_kms) {
    Json entry = Json::object();
    entry["kms_uri"] = external.kms_uri;
    entry["certificate"] = external.certificate;
    external_kms.push_back(std::move(entry));
  }
  root["kms_certificate_chain"] = config.kms_certificate_chain;
  Json& functions = root["network_functions"] = Json::array();
  for (const NetworkFunctionConfig& function : config.network_functions) {
    Json entry = Json::object();
    entry["name"] = function.name;
    entry["certificate"] = function.certificate;
    entry["roles"] = function.roles;
    functions.push_back(std::move(entry));
  }
  Json& krr = root["krr_policy"] = Json::object();
  krr["allow_krr"] = config.krr_policy.allow_krr;
  krr["report_krr"] = config.krr_policy.report_krr;
  krr["require_signed_krr"] = config.krr_policy.require_signed_krr;
  krr["request_unknown_kms_certificates"] = config.krr_policy.request_unknown_kms_certificates;
  krr["hold_until_kms_acceptance"] = config.krr_policy.hold_until_kms_acceptance;
}

}  // namespace

std::string ConfigToJson(const KmsConfig& config) {
  // Compact, keys sorted (nlohmann::json objects are std::maps): for these
  // documents (integers only, ASCII keys) this is the RFC 8785 (JCS) form.
  Json root = Json::object();
  if (config.version != 0) root["version"] = config.version;
  root["kms_identity"] = config.kms_identity;
  PutLocalSections(config, root);
  root["policy_classes"] = PolicyClassesJson(config.policy_classes);
  root["default_policy_class"] = config.default_policy_class;
  root["token_users"] = config.token_users;
  PutUsersAndGroups(config, root);
  PutOtherKmss(config, root);
  // `replace`: a hand-made configuration with invalid UTF-8 must not throw.
  return root.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace tkms::provisioning
