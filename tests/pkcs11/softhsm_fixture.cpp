#include "tests/pkcs11/softhsm_fixture.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "pkcs11/token.h"

namespace tkms::pkcs11::test {
namespace {

constexpr const char* kDefaultModule = "/usr/lib/softhsm/libsofthsm2.so";

SecretBytes ToSecretText(std::string_view text) { return SecretBytes(text.begin(), text.end()); }

}  // namespace

std::string ModulePathFromEnv() {
  const char* env = std::getenv("TKMS_PKCS11_MODULE");
  return env != nullptr && env[0] != '\0' ? std::string(env) : std::string(kDefaultModule);
}

SecretBytes SoftHsmToken::UserPin() { return ToSecretText(kUserPin); }
SecretBytes SoftHsmToken::SoPin() { return ToSecretText(kSoPin); }

Result<std::unique_ptr<SoftHsmToken>> SoftHsmToken::Create(std::string label) {
  std::unique_ptr<SoftHsmToken> token(new SoftHsmToken());
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp") +
                        "/tkms-softhsm-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    return Internal("mkdtemp failed: " + std::string(std::strerror(errno)));
  }
  token->dir_ = pattern;  // from here on the destructor removes it
  const std::string tokens = token->dir_ + "/tokens";
  std::error_code ec;
  std::filesystem::create_directory(tokens, ec);
  if (ec) return Internal("cannot create " + tokens + ": " + ec.message());
  token->conf_path_ = token->dir_ + "/softhsm2.conf";
  {
    std::ofstream conf(token->conf_path_);
    conf << "directories.tokendir = " << tokens << "\n"
         << "objectstore.backend = file\n"
         << "log.level = ERROR\n";
    if (!conf) return Internal("cannot write " + token->conf_path_);
  }
  // SoftHSM2 reads SOFTHSM2_CONF in C_Initialize: set it before loading.
  if (setenv("SOFTHSM2_CONF", token->conf_path_.c_str(), 1) != 0) {
    return Internal("setenv SOFTHSM2_CONF failed");
  }
  token->module_path_ = ModulePathFromEnv();
  Result<std::shared_ptr<Module>> module = Module::Load(token->module_path_);
  if (!module.ok()) return module.error();
  token->module_ = std::move(*module);
  token->label_ = std::move(label);
  TKMS_RETURN_IF_ERROR(token->AddToken(token->label_));
  return token;
}

SoftHsmToken::~SoftHsmToken() {
  module_.reset();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

Status SoftHsmToken::AddToken(std::string_view label) {
  return InitToken(*module_, label, SoPin(), UserPin());
}

}  // namespace tkms::pkcs11::test
