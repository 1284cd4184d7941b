// Fuzz target: ZkTrust::Authorize (firmware/zk/zk_trust.h), the Zk
// listener's mapping of a client certificate to a peer KMS or a network
// function, fed arbitrary DER against the fixed trust set of
// zk_test_world.h (peer B by its CA, peer C and network function li-1
// pinned) at 2030-01-01T00:00:00Z; also CertificateNamesKms and KmsHost.
// Seeds: tests/zk/corpus/zk_identity_fuzz, written by the test
// ZkIdentitySeeds.Write (valid certificates that map and that must not).
//
// Properties:
//   - Authorize is deterministic and maps to nothing outside the trust set;
//   - peer C or li-1 only for their exact pinned DER;
//   - peer B only for a certificate that parses, names B and is not C's or
//     li-1's DER;
//   - KmsHost of the input (as text) is lowercase and without "/@?#;",
//     never longer than the input.
#include <string_view>

#include "firmware/pki/x509.h"
#include "firmware/zk/zk_trust.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/zk/zk_test_world.h"

namespace {

using tkms::fuzz::Violation;
using tkms::zk::testing::kFunction;
using tkms::zk::testing::kPeerB;
using tkms::zk::testing::kPeerC;

constexpr const char* kTarget = "zk_identity_fuzz";

struct World {
  tkms::zk::testing::ZkTestWorld certs;
  std::shared_ptr<const tkms::zk::ZkTrust> trust;
  World() {
    auto built = tkms::zk::ZkTrust::Build(certs.Config());
    if (!built.ok()) Violation(kTarget, "the fixed trust set builds");
    trust = *built;
  }
};

const World& TheWorld() {
  static const World world;
  return world;
}

bool Same(tkms::ByteSpan a, const std::vector<uint8_t>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const World& world = TheWorld();
  const tkms::ByteSpan der(data, size);
  const std::time_t now = tkms::test_pki::Utc(2030, 1, 1);
  const auto who = world.trust->Authorize(der, now);
  if (who != world.trust->Authorize(der, now)) Violation(kTarget, "Authorize is deterministic");
  if (who) {
    const bool pinned_c = Same(der, world.certs.c.der);
    const bool pinned_nf = Same(der, world.certs.nf.der);
    if (who->kind == tkms::zk::ZkClientKind::kNetworkFunction) {
      if (who->name != kFunction || !pinned_nf || !who->may_resolve) Violation(kTarget, "li-1 only by its pin");
    } else if (who->name == kPeerC) {
      if (!pinned_c) Violation(kTarget, "peer C only by its pin");
    } else if (who->name == kPeerB) {
      tkms::pki::X509Chain parsed;
      if (pinned_c || pinned_nf || !parsed.AddDer(der, "input").ok() ||
          !tkms::zk::CertificateNamesKms(*parsed.native(), kPeerB)) {
        Violation(kTarget, "peer B only by a parsed certificate naming B");
      }
    } else {
      Violation(kTarget, "a name outside the trust set");
    }
  }
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string host = tkms::zk::KmsHost(text);
  if (host.size() > size) Violation(kTarget, "KmsHost is not longer than its input");
  for (char c : host) {
    if ((c >= 'A' && c <= 'Z') || std::string_view("/@?#;").find(c) != std::string_view::npos) {
      Violation(kTarget, "KmsHost is lowercase without delimiters");
    }
  }
  return 0;
}
