#include "tests/keystore/keystore_fixture.h"

#include <string>

namespace tkms::keystore::test {

KeystoreOptions KeystoreOptionsFor(const SoftHsmToken& token, std::string_view label) {
  KeystoreOptions options;
  options.module_path = token.module_path();
  options.token = label.empty() ? token.label() : std::string(label);
  options.pin = SoftHsmToken::UserPin();
  return options;
}

Result<std::unique_ptr<Keystore>> OpenKeystore(const SoftHsmToken& token, std::string_view label) {
  return Keystore::Open(token.module(), KeystoreOptionsFor(token, label));
}

}  // namespace tkms::keystore::test
