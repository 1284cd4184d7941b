// A Keystore on a throw-away SoftHSM2 token (tests/pkcs11/softhsm_fixture.h),
// for the keystore's tests and benchmark and for other test folders that
// need a keystore (kms, ue, bench, fault_pkcs11).
#pragma once

#include <memory>
#include <string_view>

#include "firmware/base/status.h"
#include "firmware/keystore/keystore.h"
#include "tests/pkcs11/softhsm_fixture.h"

namespace tkms::keystore::test {

using pkcs11::test::SoftHsmToken;

// Options for Keystore::Open on `token`'s token `label` (default: its first
// token), with the fixture's user PIN.
KeystoreOptions KeystoreOptionsFor(const SoftHsmToken& token, std::string_view label = {});
// Keystore::Open(token.module(), KeystoreOptionsFor(token, label)).
Result<std::unique_ptr<Keystore>> OpenKeystore(const SoftHsmToken& token, std::string_view label = {});

}  // namespace tkms::keystore::test
