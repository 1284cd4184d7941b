#include "pkcs11/softhsm_state.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "hal/entropy.h"

namespace tkms::pkcs11 {

std::string SoftHsmConfPath(const std::string& state_dir) { return state_dir + "/softhsm2.conf"; }

Result<SecretBytes> GeneratePin() {
  static constexpr char kAlphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  constexpr size_t kAlphabetSize = sizeof(kAlphabet) - 1;
  SecretBytes random(64);
  SecretBytes pin;
  while (pin.size() < 24) {
    TKMS_RETURN_IF_ERROR(hal::OsEntropy().Random(random));
    for (uint8_t b : random) {
      if (pin.size() == 24) break;
      if (b >= 256 - (256 % kAlphabetSize)) continue;  // no modulo bias
      pin.push_back(static_cast<uint8_t>(kAlphabet[b % kAlphabetSize]));
    }
  }
  return pin;
}

Status CreateSoftHsmStateDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir + "/tokens", ec);
  if (ec) return Internal("creating " + dir + "/tokens: " + ec.message());
  ::chmod(dir.c_str(), 0700);
  ::chmod((dir + "/tokens").c_str(), 0700);
  const std::string conf = SoftHsmConfPath(dir);
  if (!std::filesystem::exists(conf)) {
    std::ofstream out(conf);
    out << "# SoftHSM2 configuration of this tkms state directory\n"
        << "directories.tokendir = " << std::filesystem::absolute(dir).string() << "/tokens\n"
        << "objectstore.backend = file\n"
        << "log.level = ERROR\n"
        << "slots.removable = false\n";
    if (!out) return Internal("writing " + conf);
  }
  return Status::Ok();
}

Status UseSoftHsmStateDir(const std::string& dir, bool must_exist) {
  const std::string conf = SoftHsmConfPath(dir);
  if (must_exist && !std::filesystem::exists(conf)) {
    return NotFound("no SoftHSM2 state in " + dir + " (missing " + conf +
                    "); create it with: tkmsctl token init --state-dir " + dir);
  }
  if (::setenv("SOFTHSM2_CONF", conf.c_str(), 1) != 0) return Internal("setenv SOFTHSM2_CONF failed");
  return Status::Ok();
}

}  // namespace tkms::pkcs11
