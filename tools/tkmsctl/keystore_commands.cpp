// tkmsctl token / key / user administration: see keystore_commands.h.
#include "tools/tkmsctl/keystore_commands.h"

#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "firmware/base/big_endian.h"
#include "firmware/base/encoding.h"
#include "firmware/pki/csr.h"
#include "firmware/pki/pk.h"
#include "firmware/pki/x509.h"
#include "firmware/base/secret_files.h"
#include "firmware/keystore/keystore.h"
#include "firmware/keystore/provisioning_store.h"
#include "firmware/keystore/user_psk.h"
#include "pkcs11/softhsm_state.h"
#include "pkcs11/token.h"
#include "provisioning/bundle.h"

namespace tkms::tkmsctl {
namespace {

using keystore::KeyInfo;
using keystore::KeySelector;
using keystore::KeyType;
using keystore::KeyUsage;
using keystore::Keystore;

constexpr const char* kDefaultModule = "/usr/lib/softhsm/libsofthsm2.so";

CommandOutput Fail(const std::string& message, int code = kExitInvalid) {
  return CommandOutput{code, "", "tkmsctl: " + message + "\n"};
}

CommandOutput Ok(std::string out) { return CommandOutput{kExitOk, std::move(out), ""}; }

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// SoftHSM2 reads SOFTHSM2_CONF when the module is initialised: point it at
// the state directory's configuration before anything loads the module.
Status UseStateDir(const KeystoreCommandOptions& ks, bool must_exist) {
  if (!ks.state_dir) return Status::Ok();
  return pkcs11::UseSoftHsmStateDir(*ks.state_dir, must_exist);
}

std::string ModulePath(const KeystoreCommandOptions& ks) {
  return ks.module_path.empty() ? DefaultModulePath() : ks.module_path;
}

Result<std::unique_ptr<Keystore>> OpenKeystore(const KeystoreCommandOptions& ks) {
  TKMS_RETURN_IF_ERROR(UseStateDir(ks, /*must_exist=*/true));
  auto pin = ReadPin(ks.pin_file, kPinEnv, "PIN");
  if (!pin.ok()) return pin.error();
  keystore::KeystoreOptions options;
  options.module_path = ModulePath(ks);
  options.token = ks.token;
  options.pin = std::move(*pin);
  options.sessions = 1;
  auto keystore = Keystore::Open(options);
  if (!keystore.ok()) {
    const Status& e = keystore.error();
    return Status(e.code(), "cannot open token " + Quote(ks.token) + ": " + e.message());
  }
  return keystore;
}

Result<keystore::Bytes> ParseId(const std::string& hex) {
  if (hex.empty()) return keystore::Bytes{};
  auto id = HexDecode(hex);
  if (!id) return InvalidArgument("--id must be hex (e.g. 01a2), got " + Quote(hex));
  return *id;
}

Result<keystore::Bytes> RandomId(Keystore& keystore, size_t n) {
  keystore::Bytes id(n);
  TKMS_RETURN_IF_ERROR(keystore.GenerateRandom(id));
  return id;
}

Result<KeyType> ParseKeyType(const std::string& name) {
  if (name == "aes256") return KeyType::kAes256;
  if (name == "hmac-sha256") return KeyType::kHmacSha256;
  if (name == "ec-p256") return KeyType::kEcP256;
  return InvalidArgument("unknown key type " + Quote(name) + " (aes256, hmac-sha256, ec-p256)");
}

Result<KeySelector> ParseSelector(const std::string& key) {
  if (key.rfind("pkcs11:", 0) == 0) return keystore::KeySelectorFromUri(key);
  if (key.rfind("id:", 0) == 0) {
    auto id = HexDecode(key.substr(3));
    if (!id || id->empty()) return InvalidArgument("id:HEX expected, got " + Quote(key));
    return KeySelector::Id(*id);
  }
  if (key.empty()) return InvalidArgument("empty key name");
  return KeySelector::Label(key);
}

std::string Flags(const KeyInfo& k) {
  const auto& a = k.attributes;
  std::vector<std::string> flags;
  if (a.sensitive) flags.emplace_back("sensitive");
  if (a.never_extractable) flags.emplace_back("never-extractable");
  if (a.extractable) flags.emplace_back(a.wrap_with_trusted ? "wrap-with-trusted-only" : "EXTRACTABLE");
  if (!a.extractable && !a.never_extractable && k.key_class != keystore::KeyClass::kPublicKey) {
    flags.emplace_back("non-extractable");
  }
  if (a.trusted) flags.emplace_back("trusted");
  if (!a.is_private) flags.emplace_back("public-object");
  if (k.session_copy) flags.emplace_back("session-copy");
  std::string out;
  for (const auto& f : flags) out += (out.empty() ? "" : ",") + f;
  return out;
}

nlohmann::json KeyJson(const KeyInfo& k) {
  const auto& a = k.attributes;
  nlohmann::json j{{"label", k.label},
                   {"id", HexEncode(k.id)},
                   {"class", std::string(keystore::KeyClassName(k.key_class))},
                   {"ck_key_type", k.ck_key_type},
                   {"bits", k.bits},
                   {"sensitive", a.sensitive},
                   {"extractable", a.extractable},
                   {"always_sensitive", a.always_sensitive},
                   {"never_extractable", a.never_extractable},
                   {"wrap_with_trusted", a.wrap_with_trusted},
                   {"trusted", a.trusted},
                   {"private", a.is_private},
                   {"token", a.token}};
  j["type"] = k.type ? nlohmann::json(std::string(keystore::KeyTypeName(*k.type))) : nlohmann::json();
  j["usage"] = k.usage ? nlohmann::json(std::string(keystore::KeyUsageName(*k.usage))) : nlohmann::json();
  if (k.ticket_key_id) j["ticket_key_id"] = *k.ticket_key_id;
  return j;
}

std::string KeyLine(const KeyInfo& k) {
  std::ostringstream out;
  out << k.label << "  id=" << (k.id.empty() ? "-" : HexEncode(k.id)) << "  "
      << keystore::KeyClassName(k.key_class) << "  "
      << (k.type ? std::string(keystore::KeyTypeName(*k.type)) : k.ck_key_type) << "  "
      << (k.usage ? std::string(keystore::KeyUsageName(*k.usage)) : "-") << "  " << k.bits
      << " bits  " << Flags(k);
  return out.str();
}

// ---- users ----

}  // namespace

std::string DefaultModulePath() {
  const char* env = std::getenv("TKMS_PKCS11_MODULE");
  return (env != nullptr && *env != '\0') ? env : kDefaultModule;
}

std::string SoftHsmConfPath(const std::string& state_dir) { return pkcs11::SoftHsmConfPath(state_dir); }

// ---------------------------------------------------------------------------
// token

namespace {

// Pins the certificate in `path` as the token's provisioning anchor (the
// same certificate again is accepted; another one is refused). Returns a
// line describing it.
Result<std::string> PinAnchorFile(Keystore& keystore, const std::string& path) {
  auto der = pki::LoadCertificateFile(path);
  if (!der.ok()) return der.error();
  auto summary = pki::DescribeCertificate(*der);
  if (!summary.ok()) return Status(summary.error().code(), path + ": " + summary.error().message());
  if (!summary->is_ca) {
    return InvalidArgument(path + ": the provisioning anchor must be a CA certificate (basicConstraints CA:TRUE)");
  }
  auto pinned = keystore::ReadProvisioningAnchor(keystore);
  if (!pinned.ok()) return pinned.error();
  const std::string line = "provisioning anchor: " + summary->subject + " (serial " + summary->serial_hex +
                           ", valid until " + pki::FormatUtcTime(summary->not_after) + ")";
  if (pinned->has_value()) {
    if (**pinned == *der) return line + ", already pinned\n";
    return FailedPrecondition("the token already pins another provisioning anchor; an anchor is never replaced "
                              "implicitly (destroy the object '" + std::string(keystore::kAnchorLabel) +
                              "' with the token's own tools first)");
  }
  TKMS_RETURN_IF_ERROR(keystore::PinProvisioningAnchor(keystore, *der));
  return line + ", pinned\n";
}

}  // namespace

CommandOutput RunTokenInit(const KeystoreCommandOptions& ks, const TokenInitOptions& init) {
  if (!ks.state_dir) {
    // A vendor module: tokens are initialised with the vendor's tools; check
    // that ours is initialised and that we can log in.
    if (init.generate_pins) return Fail("--generate-pins needs --state-dir", kExitUsage);
    auto keystore = OpenKeystore(ks);
    if (!keystore.ok()) return Fail(keystore.error().message());
    std::string anchor;
    if (init.provisioning_anchor) {
      auto pinned = PinAnchorFile(**keystore, *init.provisioning_anchor);
      if (!pinned.ok()) return Fail(pinned.error().message());
      anchor = *pinned;
    }
    const auto& t = (*keystore)->token();
    return Ok("token " + Quote(t.label) + " (serial " + t.serial + ", " + t.manufacturer + " " +
              t.model + ") is initialised and usable; login succeeded\n" + anchor);
  }
  if (init.label.empty() || init.label.size() > 32) return Fail("--label must have 1 to 32 bytes", kExitUsage);
  const std::string& dir = *ks.state_dir;
  if (auto s = pkcs11::CreateSoftHsmStateDir(dir); !s.ok()) return Fail(s.message());
  SecretBytes so_pin, user_pin;
  std::string wrote;
  if (init.generate_pins) {
    auto so = pkcs11::GeneratePin();
    auto user = pkcs11::GeneratePin();
    if (!so.ok() || !user.ok()) return Fail("cannot generate PINs");
    so_pin = std::move(*so);
    user_pin = std::move(*user);
    if (auto s = WriteSecretFile(dir + "/so.pin", so_pin, "SO PIN"); !s.ok()) return Fail(s.message());
    if (auto s = WriteSecretFile(dir + "/token.pin", user_pin, "PIN"); !s.ok()) return Fail(s.message());
    wrote = "PINs written to " + dir + "/token.pin and " + dir + "/so.pin (mode 0600)\n";
  } else {
    auto so = ReadPin(init.so_pin_file, kSoPinEnv, "SO PIN");
    if (!so.ok()) return Fail(so.error().message());
    auto user = ReadPin(ks.pin_file, kPinEnv, "PIN");
    if (!user.ok()) return Fail(user.error().message());
    so_pin = std::move(*so);
    user_pin = std::move(*user);
  }
  if (auto s = UseStateDir(ks, /*must_exist=*/true); !s.ok()) return Fail(s.message());
  auto module = pkcs11::Module::Load(ModulePath(ks));
  if (!module.ok()) return Fail(module.error().message());
  if (auto s = pkcs11::InitToken(**module, init.label, so_pin, user_pin); !s.ok()) {
    return Fail("cannot initialise token " + Quote(init.label) + ": " + s.message());
  }
  keystore::KeystoreOptions options;
  options.token = init.label;
  options.pin = user_pin;
  options.sessions = 1;
  auto keystore = Keystore::Open(*module, options);
  if (!keystore.ok()) return Fail("token initialised but login failed: " + keystore.error().message());
  std::string anchor;
  if (init.provisioning_anchor) {
    auto pinned = PinAnchorFile(**keystore, *init.provisioning_anchor);
    if (!pinned.ok()) return Fail("token initialised, but " + pinned.error().message());
    anchor = *pinned;
  }
  const auto& t = (*keystore)->token();
  return Ok("initialised token " + Quote(t.label) + " (serial " + t.serial + ") in " + dir +
            "\nSOFTHSM2_CONF=" + SoftHsmConfPath(dir) + "\n" + wrote + anchor);
}

CommandOutput RunTokenAnchor(const KeystoreCommandOptions& ks, const std::optional<std::string>& pin_file) {
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  if (pin_file) {
    auto pinned = PinAnchorFile(**keystore, *pin_file);
    if (!pinned.ok()) return Fail(pinned.error().message());
    return Ok(*pinned);
  }
  auto der = keystore::ReadProvisioningAnchor(**keystore);
  if (!der.ok()) return Fail(der.error().message());
  if (!der->has_value()) {
    return Fail("the token pins no provisioning anchor (tkmsctl token anchor --pin FILE)");
  }
  auto summary = pki::DescribeCertificate(**der);
  if (!summary.ok()) return Fail("the pinned anchor does not parse: " + summary.error().message());
  return Ok("provisioning anchor: " + summary->subject + " (serial " + summary->serial_hex + ", valid " +
            pki::FormatUtcTime(summary->not_before) + " to " +
            pki::FormatUtcTime(summary->not_after) + ")\n");
}

CommandOutput RunTokenStatus(const KeystoreCommandOptions& ks) {
  if (auto s = UseStateDir(ks, /*must_exist=*/true); !s.ok()) return Fail(s.message());
  auto module = pkcs11::Module::Load(ModulePath(ks));
  if (!module.ok()) return Fail(module.error().message());
  auto tokens = pkcs11::ListTokens(**module);
  if (!tokens.ok()) return Fail(tokens.error().message());
  const auto& info = (*module)->info();
  nlohmann::json j{{"module", ModulePath(ks)},
                   {"manufacturer", info.manufacturer},
                   {"library", info.description},
                   {"tokens", nlohmann::json::array()}};
  std::ostringstream text;
  text << "module " << ModulePath(ks) << " (" << info.manufacturer << ", " << info.description << ")\n";
  for (const auto& t : *tokens) {
    if (!t.initialized) continue;
    j["tokens"].push_back({{"label", t.label},
                           {"serial", t.serial},
                           {"model", t.model},
                           {"user_pin_initialized", t.user_pin_initialized},
                           {"user_pin_locked", t.user_pin_locked},
                           {"so_pin_locked", t.so_pin_locked},
                           {"rng", t.has_rng}});
    text << "token " << Quote(t.label) << " serial " << t.serial << " model " << t.model
         << (t.user_pin_initialized ? "" : " (user PIN not set)")
         << (t.user_pin_locked ? " (user PIN LOCKED)" : "") << "\n";
  }
  // Log in to the selected token if a PIN is available.
  const bool have_pin = ks.pin_file.has_value() || std::getenv(kPinEnv) != nullptr;
  if (have_pin) {
    auto pin = ReadPin(ks.pin_file, kPinEnv, "PIN");
    if (!pin.ok()) return Fail(pin.error().message());
    keystore::KeystoreOptions options;
    options.token = ks.token;
    options.pin = std::move(*pin);
    options.sessions = 1;
    auto keystore = Keystore::Open(*module, options);
    if (!keystore.ok()) return Fail("cannot open token " + Quote(ks.token) + ": " + keystore.error().message());
    auto keys = (*keystore)->ListKeys();
    auto current = (*keystore)->CurrentTicketKeyId();
    const size_t n = keys.ok() ? keys->size() : 0;
    j["selected"] = {{"token", ks.token}, {"login", "ok"}, {"keys", n}};
    text << "token " << Quote(ks.token) << ": login ok, " << n << " key objects";
    if (current.ok()) {
      j["selected"]["current_ticket_key_id"] = *current;
      text << ", current ticket key id " << *current;
    }
    text << "\n";
  }
  if (ks.json) return Ok(j.dump(2) + "\n");
  return Ok(text.str());
}

// ---------------------------------------------------------------------------
// key

CommandOutput RunKeyGenerate(const KeystoreCommandOptions& ks, const KeyGenerateOptions& key) {
  auto type = ParseKeyType(key.type);
  if (!type.ok()) return Fail(type.error().message(), kExitUsage);
  KeyUsage usage = *type == KeyType::kEcP256 ? KeyUsage::kSigning : KeyUsage::kGeneric;
  if (key.usage == "wrapping") usage = KeyUsage::kWrapping;
  else if (key.usage == "signing") usage = KeyUsage::kSigning;
  else if (key.usage == "generic") usage = KeyUsage::kGeneric;
  else if (key.usage == "ticket") return Fail("ticket keys are created with: tkmsctl key rotate", kExitUsage);
  else if (!key.usage.empty()) return Fail("unknown usage " + Quote(key.usage), kExitUsage);
  auto id = ParseId(key.id_hex);
  if (!id.ok()) return Fail(id.error().message(), kExitUsage);
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  if (id->empty()) {
    auto random = RandomId(**keystore, 8);
    if (!random.ok()) return Fail(random.error().message());
    *id = *random;
  }
  auto info = (*keystore)->GenerateKey(*type, usage, key.label, *id);
  if (!info.ok()) return Fail("cannot generate key " + Quote(key.label) + ": " + info.error().message());
  return Ok("generated " + KeyLine(*info) + "\n");
}

CommandOutput RunKeyList(const KeystoreCommandOptions& ks) {
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  auto keys = (*keystore)->ListKeys();
  if (!keys.ok()) return Fail(keys.error().message());
  if (ks.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& k : *keys) j.push_back(KeyJson(k));
    return Ok(j.dump(2) + "\n");
  }
  std::string out;
  for (const auto& k : *keys) out += KeyLine(k) + "\n";
  if (keys->empty()) out = "no keys\n";
  return Ok(out);
}

CommandOutput RunKeyDestroy(const KeystoreCommandOptions& ks, const std::string& key) {
  auto selector = ParseSelector(key);
  if (!selector.ok()) return Fail(selector.error().message(), kExitUsage);
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  if (auto s = (*keystore)->DestroyKey(*selector); !s.ok()) {
    return Fail("cannot destroy " + selector->ToString() + ": " + s.message());
  }
  return Ok("destroyed " + selector->ToString() + "\n");
}

CommandOutput RunKeyRotate(const KeystoreCommandOptions& ks, const std::string& type_name) {
  auto type = ParseKeyType(type_name);
  if (!type.ok() || *type == KeyType::kEcP256) {
    return Fail("ticket keys are aes256 or hmac-sha256", kExitUsage);
  }
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  auto info = (*keystore)->RotateTicketKey(*type);
  if (!info.ok()) return Fail("cannot rotate the ticket key: " + info.error().message());
  return Ok("ticket key " + std::to_string(info->ticket_key_id.value_or(0)) +
            " is now current: " + KeyLine(*info) + "\n");
}

CommandOutput RunKeyExportWrapped(const KeystoreCommandOptions& ks, const std::string& key,
                                  const std::string& wrapping_key, const std::string& out_file) {
  auto selector = ParseSelector(key);
  auto wrapping = ParseSelector(wrapping_key);
  if (!selector.ok() || !wrapping.ok()) return Fail("bad key name", kExitUsage);
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  auto wrapped = (*keystore)->ExportWrapped(*selector, *wrapping);
  if (!wrapped.ok()) return Fail("cannot export " + selector->ToString() + ": " + wrapped.error().message());
  if (auto s = WriteHexSecretFile(out_file, ToSecret(*wrapped), "wrapped key"); !s.ok()) return Fail(s.message());
  return Ok("wrote " + selector->ToString() + " wrapped under " + wrapping->ToString() + " to " + out_file + "\n");
}

CommandOutput RunKeyImportWrapped(const KeystoreCommandOptions& ks, const KeyImportWrappedOptions& in) {
  auto type = ParseKeyType(in.type.empty() ? "hmac-sha256" : in.type);
  if (!type.ok() || *type == KeyType::kEcP256) return Fail("wrapped keys are aes256 or hmac-sha256", kExitUsage);
  const KeyUsage usage = in.usage == "generic" ? KeyUsage::kGeneric : KeyUsage::kTicket;
  if (!in.usage.empty() && in.usage != "generic" && in.usage != "ticket") {
    return Fail("--usage is ticket or generic", kExitUsage);
  }
  auto wrapping = ParseSelector(in.wrapping_key);
  if (!wrapping.ok()) return Fail(wrapping.error().message(), kExitUsage);
  auto id = ParseId(in.id_hex);
  if (!id.ok()) return Fail(id.error().message(), kExitUsage);
  auto blob = ReadHexSecretFile(in.in_file, "wrapped key");
  if (!blob.ok()) return Fail(blob.error().message());
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  std::string label = in.label;
  if (usage == KeyUsage::kTicket && id->size() == 4) {
    // A ticket key keeps its key id: the label follows from it.
    const uint32_t key_id = LoadBe32(std::span<const uint8_t>(*id).first<4>());
    if (label.empty()) label = keystore::TicketKeyLabel(key_id);
  }
  auto info = (*keystore)->ImportWrapped(*blob, *wrapping, *type, usage, label, *id);
  if (!info.ok()) return Fail("cannot import the wrapped key: " + info.error().message());
  return Ok("imported " + KeyLine(*info) + "\n");
}

CommandOutput RunKeyImportWrappingKey(const KeystoreCommandOptions& ks, const WrappingKeyImportOptions& in) {
  auto id = ParseId(in.id_hex);
  if (!id.ok()) return Fail(id.error().message(), kExitUsage);
  auto value = ReadHexSecretFile(in.value_file, "wrapping key");
  if (!value.ok()) return Fail(value.error().message());
  if (value->size() != 32) return Fail("a wrapping key is 32 bytes (AES-256), the file holds " +
                                       std::to_string(value->size()));
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  Result<KeyInfo> info = InvalidArgument("unset");
  if (in.trusted) {
    auto so_pin = ReadPin(in.so_pin_file, kSoPinEnv, "SO PIN");
    if (!so_pin.ok()) return Fail(so_pin.error().message());
    info = (*keystore)->ImportTrustedWrappingKey(in.label, *id, *value, *so_pin);
  } else {
    info = (*keystore)->ImportSecret(KeyUsage::kWrapping, in.label, *id, *value, KeyType::kAes256);
  }
  if (!info.ok()) return Fail("cannot import wrapping key " + Quote(in.label) + ": " + info.error().message());
  return Ok("imported " + KeyLine(*info) + "\n");
}

// ---------------------------------------------------------------------------
// user

CommandOutput RunUserAdd(const KeystoreCommandOptions& ks, const UserAddOptions& user) {
  if (user.ids.empty()) return Fail("give at least one --id URI", kExitUsage);
  if (user.psk_out.has_value() == user.psk_file.has_value()) {
    return Fail("give exactly one of --psk-out FILE (generate) or --psk-file FILE (import)", kExitUsage);
  }
  for (const auto& id : user.ids) {
    if (auto s = keystore::CheckUserIdentity(id); !s.ok()) return Fail(s.message(), kExitUsage);
  }
  if (user.psk_out && std::filesystem::symlink_status(*user.psk_out).type() !=
                          std::filesystem::file_type::not_found) {
    return Fail("PSK file " + *user.psk_out + " already exists; refusing to overwrite it");
  }
  SecretBytes psk;
  if (user.psk_file) {
    auto read = ReadHexSecretFile(*user.psk_file, "PSK");
    if (!read.ok()) return Fail(read.error().message());
    psk = std::move(*read);
    if (psk.size() < kPskBytes) {
      return Fail("a PSK must have at least 32 bytes (HMAC-SHA-256 keys of the MIKEY PRF); the file holds " +
                  std::to_string(psk.size()));
    }
  }
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  if (user.psk_out) {
    psk.assign(kPskBytes, 0);
    if (auto s = (*keystore)->GenerateRandom(psk); !s.ok()) return Fail("token RNG: " + s.message());
  }
  auto added = keystore::AddUserPsk(**keystore, user.ids, psk);
  if (!added.ok()) {
    const bool clash = added.error().message().find("already belongs") != std::string::npos;
    return Fail(clash ? added.error().message() : "cannot store the PSK: " + added.error().message());
  }
  const keystore::Bytes* psk_id = &added->psk_id;
  const std::string& label = added->label;
  std::string out = "added user psk:" + HexEncode(*psk_id) + " with identities";
  for (const auto& id : user.ids) out += " " + id;
  out += "\n";
  if (user.psk_out) {
    if (auto s = WriteHexSecretFile(*user.psk_out, psk, "PSK"); !s.ok()) {
      (void)(*keystore)->DestroyKey(KeySelector{label, *psk_id});
      return Fail(s.message() + "; the user was not added");
    }
    out += "the UE's copy of the PSK is in " + *user.psk_out + " (hex, mode 0600): provision it out of band\n";
  }
  return Ok(out);
}

CommandOutput RunUserList(const KeystoreCommandOptions& ks) {
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  auto users = keystore::ListUserPsks(**keystore);
  if (!users.ok()) return Fail(users.error().message());
  if (ks.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& u : *users) j.push_back({{"psk_id", HexEncode(u.psk_id)}, {"identities", u.identities}});
    return Ok(j.dump(2) + "\n");
  }
  std::string out;
  for (const auto& u : *users) {
    out += "psk:" + HexEncode(u.psk_id);
    for (const auto& id : u.identities) out += "  " + id;
    out += "\n";
  }
  if (users->empty()) out = "no users\n";
  return Ok(out);
}

CommandOutput RunUserRemove(const KeystoreCommandOptions& ks, const std::string& who) {
  std::optional<keystore::Bytes> psk_id;
  if (who.rfind("psk:", 0) == 0) {
    auto id = HexDecode(who.substr(4));
    if (!id || id->empty()) return Fail("psk:HEX expected, got " + Quote(who), kExitUsage);
    psk_id = *id;
  }
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  auto users = keystore::ListUserPsks(**keystore);
  if (!users.ok()) return Fail(users.error().message());
  for (const auto& u : *users) {
    const bool match = psk_id ? u.psk_id == *psk_id
                              : std::find(u.identities.begin(), u.identities.end(), who) != u.identities.end();
    if (!match) continue;
    if (auto s = (*keystore)->DestroyKey(KeySelector{u.label, u.psk_id}); !s.ok()) {
      return Fail("cannot remove user psk:" + HexEncode(u.psk_id) + ": " + s.message());
    }
    return Ok("removed user psk:" + HexEncode(u.psk_id) + " and its PSK\n");
  }
  return Fail("no user " + Quote(who));
}

// ---------------------------------------------------------------------------
// tls

namespace {

std::string TlsLabel(const std::string& label) {
  return label.empty() ? std::string(keystore::kDefaultTlsKeyLabel) : label;
}

Status CheckTlsLabel(const std::string& label) {
  if (!keystore::IsTlsKeyLabel(label)) {
    return InvalidArgument("--label " + Quote(label) + ": TLS key labels start with '" +
                           std::string(keystore::kTlsKeyLabelPrefix) + "' (default " +
                           Quote(keystore::kDefaultTlsKeyLabel) + ")");
  }
  return Status::Ok();
}

// The public key of the TLS key `label` as an mbedTLS context, with a
// message that says how to make the key when there is none.
Result<pki::PkContext> TlsPublicKey(Keystore& keystore, const std::string& label) {
  auto pub = keystore.TlsKeyPublic(label);
  if (!pub.ok()) {
    if (pub.error().code() == StatusCode::kNotFound) {
      return NotFound("the token has no TLS key " + Quote(label) + " (create it with: tkmsctl tls key create --label " +
                      label + ")");
    }
    return Status(pub.error().code(), "TLS key " + Quote(label) + ": " + pub.error().message());
  }
  return pki::PkContext::RsaPublicKey(pub->modulus, pub->exponent);
}

Result<std::string> TlsPublicKeyPem(Keystore& keystore, const std::string& label) {
  auto pk = TlsPublicKey(keystore, label);
  if (!pk.ok()) return pk.error();
  return pk->PublicKeyPem();
}

}  // namespace

CommandOutput RunTlsKeyCreate(const KeystoreCommandOptions& ks, const TlsKeyOptions& key) {
  const std::string label = TlsLabel(key.label);
  if (auto s = CheckTlsLabel(label); !s.ok()) return Fail(s.message(), kExitUsage);
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  auto info = (*keystore)->CreateTlsKey(label);
  if (!info.ok()) return Fail("cannot create TLS key " + Quote(label) + ": " + info.error().message());
  auto pem = TlsPublicKeyPem(**keystore, label);
  if (!pem.ok()) return Fail("created TLS key " + Quote(label) + ", but: " + pem.error().message());
  return CommandOutput{kExitOk, *pem, "tkmsctl: created " + KeyLine(*info) + "\n"};
}

CommandOutput RunTlsKeyShow(const KeystoreCommandOptions& ks, const TlsKeyOptions& key) {
  const std::string label = TlsLabel(key.label);
  if (auto s = CheckTlsLabel(label); !s.ok()) return Fail(s.message(), kExitUsage);
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  auto pem = TlsPublicKeyPem(**keystore, label);
  if (!pem.ok()) return Fail(pem.error().message());
  return Ok(*pem);
}

CommandOutput RunTlsCsr(const KeystoreCommandOptions& ks, const TlsCsrOptions& csr) {
  const std::string label = TlsLabel(csr.label);
  if (auto s = CheckTlsLabel(label); !s.ok()) return Fail(s.message(), kExitUsage);
  if (csr.subject.empty()) return Fail("--subject is empty (e.g. \"CN=kms.example.org,O=Example\")", kExitUsage);
  for (const std::string& name : csr.dns_names) {
    if (auto s = pki::CheckDnsName(name); !s.ok()) return Fail("--dns: " + s.message());
  }
  auto keystore = OpenKeystore(ks);
  if (!keystore.ok()) return Fail(keystore.error().message());
  auto pub = TlsPublicKey(**keystore, label);
  if (!pub.ok()) return Fail(pub.error().message());
  auto signer = (*keystore)->TlsSigner(label);
  if (!signer.ok()) return Fail("TLS key " + Quote(label) + ": " + signer.error().message());
  auto alt = pki::PkContext::RsaAlt(*signer);
  if (!alt.ok()) return Fail(alt.error().message());
  auto pem = pki::WriteCsrPem(*alt, *pub, csr.subject, csr.dns_names);
  if (!pem.ok()) return Fail("cannot make the request: " + pem.error().message());
  return Ok(*pem);
}

}  // namespace tkms::tkmsctl
