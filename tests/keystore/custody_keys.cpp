// keystore_custody_keys: creates one key of every kind tkms makes, on a fresh
// token, for pkcs11_tool_custody.py to inspect with OpenSC's pkcs11-tool.
//
// Usage: SOFTHSM2_CONF=<conf> keystore_custody_keys --label <token label>
//   The module is $TKMS_PKCS11_MODULE (default SoftHSM2). The SO PIN and the
//   user PIN are read from stdin, one per line, so that no PIN appears in
//   argv. The token is initialised with pkcs11::InitToken. One line per key
//   is printed on stdout:
//     key <label> <CKA_ID hex> <expectation>
//   expectation: "generated" (never extractable), "imported" (not
//   extractable, but its value once existed outside the token), "ticket"
//   (extractable only wrapped by a trusted key), "trusted" (the SO's
//   wrap-only key).
#include <cstdio>
#include <iostream>
#include <string>

#include "firmware/base/encoding.h"
#include "firmware/keystore/keystore.h"
#include "pkcs11/token.h"
#include "tests/pkcs11/softhsm_fixture.h"

namespace {

using tkms::Result;
using tkms::SecretBytes;
using tkms::Status;
using namespace tkms::keystore;
using tkms::pkcs11::InitToken;
using tkms::pkcs11::Module;

int Fail(const std::string& what, const Status& status) {
  std::fprintf(stderr, "keystore_custody_keys: %s: %s\n", what.c_str(), status.ToString().c_str());
  return 1;
}

bool ReadPin(SecretBytes& pin) {
  std::string line;
  if (!std::getline(std::cin, line) || line.empty()) return false;
  pin.assign(line.begin(), line.end());
  tkms::SecureWipe(line.data(), line.size());
  return true;
}

void Print(const KeyInfo& key, const char* expectation) {
  std::printf("key %s %s %s\n", key.label.c_str(), tkms::HexEncode(key.id).c_str(), expectation);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "--label") {
    std::fprintf(stderr, "usage: %s --label <token label>  (SO PIN, user PIN on stdin)\n", argv[0]);
    return 2;
  }
  const std::string label = argv[2];
  SecretBytes so_pin;
  SecretBytes user_pin;
  if (!ReadPin(so_pin) || !ReadPin(user_pin)) {
    std::fprintf(stderr, "keystore_custody_keys: expected the SO PIN and the user PIN on stdin\n");
    return 2;
  }

  Result<std::shared_ptr<Module>> module = Module::Load(tkms::pkcs11::test::ModulePathFromEnv());
  if (!module.ok()) return Fail("loading the module", module.error());
  if (Status s = InitToken(**module, label, so_pin, user_pin); !s.ok()) return Fail("InitToken", s);
  KeystoreOptions options;
  options.token = label;
  options.pin = user_pin;
  Result<std::unique_ptr<Keystore>> opened = Keystore::Open(*module, options);
  if (!opened.ok()) return Fail("Keystore::Open", opened.error());
  Keystore& ks = **opened;

  SecretBytes kek(32);
  SecretBytes psk(32);
  if (Status s = ks.GenerateRandom(kek); !s.ok()) return Fail("GenerateRandom", s);
  if (Status s = ks.GenerateRandom(psk); !s.ok()) return Fail("GenerateRandom", s);

  struct Made {
    Result<KeyInfo> key;
    const char* expectation;
  };
  Made made[] = {
      {ks.RotateTicketKey(KeyType::kAes256), "ticket"},
      {ks.RotateTicketKey(KeyType::kHmacSha256), "ticket"},
      {ks.GenerateKey(KeyType::kHmacSha256, KeyUsage::kUserPsk, "psk-gen", {0x10}), "generated"},
      {ks.ImportSecret(KeyUsage::kUserPsk, "psk-imp", {0x11}, psk), "imported"},
      {ks.ImportSecret(KeyUsage::kWrapping, "kek", {0x20}, kek), "imported"},
      {ks.ImportTrustedWrappingKey("kek-trusted", {0x21}, kek, so_pin), "trusted"},
      {ks.GenerateKey(KeyType::kEcP256, KeyUsage::kSigning, "sig", {0x30}), "generated"},
      {ks.GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "gen", {0x40}), "generated"},
  };
  for (const Made& m : made) {
    if (!m.key.ok()) return Fail("creating a key", m.key.error());
    Print(*m.key, m.expectation);
  }
  return 0;
}
