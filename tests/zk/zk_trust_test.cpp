// ZkTrust (firmware/zk/zk_trust.h): KmsHost, CertificateNamesKms, Authorize,
// ListenerClientAuth and the per-relation server verification, on the fixed
// test world (zk_test_world.h). ZkIdentitySeeds.Write regenerates the
// committed corpus of zk_identity_fuzz when TKMS_WRITE_ZK_SEEDS names a
// directory.
#include <gtest/gtest.h>
#include <mbedtls/x509.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "firmware/pki/x509.h"
#include "firmware/zk/zk_trust.h"
#include "tests/zk/zk_test_world.h"
#include "web/tls_server.h"

namespace tkms::zk {
namespace {

using testing::kFunction;
using testing::kPeerB;
using testing::kPeerC;
using testing::ZkTestWorld;

const std::time_t kNow = test_pki::Utc(2030, 1, 1);

const ZkTestWorld& World() {
  static const ZkTestWorld world;
  return world;
}

std::shared_ptr<const ZkTrust> Trust() {
  auto trust = ZkTrust::Build(World().Config());
  EXPECT_TRUE(trust.ok()) << trust.error().ToString();
  return trust.ok() ? *trust : nullptr;
}

pki::X509Chain Parse(const test_pki::Cert& cert) {
  pki::X509Chain chain;
  EXPECT_TRUE(chain.AddDer(cert.der, "test").ok());
  return chain;
}

TEST(KmsHost, StripsSchemeUserPortPathAndLowercases) {
  EXPECT_EQ(KmsHost("kms.b.example.org"), "kms.b.example.org");
  EXPECT_EQ(KmsHost("sip:kms@b.example.org"), "b.example.org");
  EXPECT_EQ(KmsHost("sips:KMS@B.Example.Org;transport=tls"), "b.example.org");
  EXPECT_EQ(KmsHost("https://kms.example.org:8443/zk?x=1#f"), "kms.example.org");
  EXPECT_EQ(KmsHost("//user@Kms.Example.org:1/path"), "kms.example.org");
  EXPECT_EQ(KmsHost("kms.example.org:8443"), "kms.example.org");
  EXPECT_EQ(KmsHost("http://[2001:DB8::1]:80/"), "2001:db8::1");
  EXPECT_EQ(KmsHost(""), "");
  EXPECT_EQ(KmsHost("sip:"), "");
  EXPECT_EQ(KmsHost("http://[unterminated"), "");
  EXPECT_EQ(KmsHost(std::string(kMaxKmsUriBytes + 1, 'a')), "");
  EXPECT_EQ(KmsHost(std::string(kMaxKmsUriBytes, 'a')), std::string(kMaxKmsUriBytes, 'a'));
}

TEST(CertificateNamesKms, DnsNamesThenCommonName) {
  const ZkTestWorld& w = World();
  pki::X509Chain b = Parse(w.b);
  EXPECT_TRUE(CertificateNamesKms(*b.native(), kPeerB));  // B.Example.ORG among two SANs
  EXPECT_TRUE(CertificateNamesKms(*b.native(), "b.example.org"));
  EXPECT_TRUE(CertificateNamesKms(*b.native(), "https://www.example.org:443"));
  EXPECT_FALSE(CertificateNamesKms(*b.native(), "sip:kms@c.example.org"));
  EXPECT_FALSE(CertificateNamesKms(*b.native(), "example.org"));
  EXPECT_FALSE(CertificateNamesKms(*b.native(), ""));
  // A dNSName SAN present: the CN does not count.
  pki::X509Chain wrong = Parse(w.b_wrong_name);
  EXPECT_FALSE(CertificateNamesKms(*wrong.native(), kPeerB));
  EXPECT_TRUE(CertificateNamesKms(*wrong.native(), "x.example.org"));
  // No dNSName SAN: the CN.
  pki::X509Chain by_cn = Parse(w.b_by_cn);
  EXPECT_TRUE(CertificateNamesKms(*by_cn.native(), kPeerB));
  EXPECT_FALSE(CertificateNamesKms(*by_cn.native(), "sip:kms@b.example.org.evil"));
}

TEST(ZkTrustAuthorize, PeersAndFunctionsByTheContractsRule) {
  const ZkTestWorld& w = World();
  auto trust = Trust();
  ASSERT_NE(trust, nullptr);
  // B: CA-verified and named.
  EXPECT_EQ(trust->Authorize(w.b.der, kNow), (ZkClient{ZkClientKind::kPeerKms, kPeerB, true}));
  EXPECT_EQ(trust->Authorize(w.b_by_cn.der, kNow), (ZkClient{ZkClientKind::kPeerKms, kPeerB, true}));
  // C: pinned, exact DER.
  EXPECT_EQ(trust->Authorize(w.c.der, kNow), (ZkClient{ZkClientKind::kPeerKms, kPeerC, true}));
  // The network function.
  EXPECT_EQ(trust->Authorize(w.nf.der, kNow), (ZkClient{ZkClientKind::kNetworkFunction, kFunction, true}));
  // Nobody: another CA naming B, the right CA naming someone else, expired,
  // this KMS's own certificate (the CA's, but no relation is named
  // a.example.org), the CA itself, garbage, empty, oversized.
  EXPECT_FALSE(trust->Authorize(w.b_other_ca.der, kNow).has_value());
  EXPECT_FALSE(trust->Authorize(w.b_wrong_name.der, kNow).has_value());
  EXPECT_FALSE(trust->Authorize(w.b_expired.der, kNow).has_value());
  EXPECT_FALSE(trust->Authorize(w.a.der, kNow).has_value());
  EXPECT_FALSE(trust->Authorize(w.ca.der, kNow).has_value());
  EXPECT_FALSE(trust->Authorize(ByteSpan(), kNow).has_value());
  const std::vector<uint8_t> junk(100, 0x30);
  EXPECT_FALSE(trust->Authorize(junk, kNow).has_value());
  std::vector<uint8_t> big = w.c.der;
  big.resize(pki::kMaxCertificateDerBytes + 1);
  EXPECT_FALSE(trust->Authorize(big, kNow).has_value());
  // A pinned certificate outside its validity: nobody.
  EXPECT_FALSE(trust->Authorize(w.c.der, test_pki::Utc(2060, 1, 1)).has_value());
  // A truncated or extended pinned DER is not the pin.
  std::vector<uint8_t> longer = w.c.der;
  longer.push_back(0);
  EXPECT_FALSE(trust->Authorize(longer, kNow).has_value());
}

TEST(ZkTrustAuthorize, RolesAndAmbiguity) {
  const ZkTestWorld& w = World();
  provisioning::KmsConfig config = w.Config();
  config.network_functions[0].roles.clear();
  auto trust = ZkTrust::Build(config);
  ASSERT_TRUE(trust.ok());
  EXPECT_EQ((*trust)->Authorize(w.nf.der, kNow), (ZkClient{ZkClientKind::kNetworkFunction, kFunction, false}));
  // The same certificate as a relation's pin and a function's: ambiguous.
  config.network_functions.push_back({"copy of c", w.c.pem, {"resolve"}});
  trust = ZkTrust::Build(config);
  ASSERT_TRUE(trust.ok());
  EXPECT_FALSE((*trust)->Authorize(w.c.der, kNow).has_value());
}

TEST(ZkTrustBuild, RefusesBadEntries) {
  const ZkTestWorld& w = World();
  provisioning::KmsConfig config = w.Config();
  config.trust_relations[0].endpoint = "no-port";
  auto trust = ZkTrust::Build(config);
  ASSERT_FALSE(trust.ok());
  EXPECT_NE(trust.error().message().find("trust_relations[0].endpoint"), std::string::npos);
  config = w.Config();
  config.trust_relations[1].certificate = "not pem";
  EXPECT_FALSE(ZkTrust::Build(config).ok());
  config = w.Config();
  config.trust_relations[0].ca = w.b.pem;  // not a CA
  EXPECT_FALSE(ZkTrust::Build(config).ok());
  config = w.Config();
  config.trust_relations[1].kms_uri = kPeerB;  // repeated
  EXPECT_FALSE(ZkTrust::Build(config).ok());
  config = w.Config("[::1]:8443", "kms.c.example.org:443");
  trust = ZkTrust::Build(config);
  ASSERT_TRUE(trust.ok()) << trust.error().ToString();
  EXPECT_EQ((*trust)->FindRelation(kPeerB)->host, "::1");
  EXPECT_EQ((*trust)->FindRelation(kPeerC)->port, 443);
}

TEST(ZkTrust, ListenerClientAuthHasAnchorsAndPins) {
  const ZkTestWorld& w = World();
  auto trust = Trust();
  ASSERT_NE(trust, nullptr);
  const web::ClientAuth auth = trust->ListenerClientAuth();
  EXPECT_TRUE(auth.required);
  ASSERT_EQ(auth.trust_anchors_der.size(), 1u);
  EXPECT_EQ(auth.trust_anchors_der[0], w.ca.der);
  ASSERT_EQ(auth.pinned.size(), 2u);
  EXPECT_EQ(auth.pinned[0], web::FingerprintOf(w.c.der));
  EXPECT_EQ(auth.pinned[1], web::FingerprintOf(w.nf.der));
}

TEST(ZkTrust, ServerVerifierPerRelation) {
  const ZkTestWorld& w = World();
  auto trust = Trust();
  ASSERT_NE(trust, nullptr);
  EXPECT_EQ(trust->ServerVerifierFor("sip:unknown@example.org"), nullptr);
  auto b = trust->ServerVerifierFor(kPeerB);
  auto c = trust->ServerVerifierFor(kPeerC);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  const uint32_t untrusted = MBEDTLS_X509_BADCERT_NOT_TRUSTED;
  EXPECT_TRUE(b->Verify(*Parse(w.b).native(), untrusted).ok());
  EXPECT_FALSE(b->Verify(*Parse(w.b_other_ca).native(), untrusted).ok());
  EXPECT_FALSE(b->Verify(*Parse(w.b_wrong_name).native(), untrusted).ok());
  EXPECT_FALSE(b->Verify(*Parse(w.b).native(), untrusted | MBEDTLS_X509_BADCERT_EXPIRED).ok());
  EXPECT_FALSE(b->Verify(*Parse(w.c).native(), untrusted).ok());
  EXPECT_TRUE(c->Verify(*Parse(w.c).native(), untrusted).ok());
  EXPECT_FALSE(c->Verify(*Parse(w.b).native(), untrusted).ok());
  EXPECT_FALSE(c->Verify(*Parse(w.c).native(), untrusted | MBEDTLS_X509_BADCERT_EXPIRED).ok());
  const Status refused = b->Verify(*Parse(w.b_wrong_name).native(), untrusted);
  EXPECT_NE(refused.message().find("does not name"), std::string::npos) << refused.message();
}

// Writes the seed corpus of zk_identity_fuzz (tests/zk/corpus/zk_identity_fuzz):
//   TKMS_WRITE_ZK_SEEDS=tests/zk/corpus/zk_identity_fuzz ./zk_trust_test --gtest_filter='ZkIdentitySeeds.*'
TEST(ZkIdentitySeeds, Write) {
  const char* dir = std::getenv("TKMS_WRITE_ZK_SEEDS");
  if (dir == nullptr) GTEST_SKIP() << "TKMS_WRITE_ZK_SEEDS not set";
  const ZkTestWorld& w = World();
  const std::pair<const char*, const test_pki::Cert*> seeds[] = {
      {"peer_b_ca", &w.b},         {"peer_b_cn", &w.b_by_cn},      {"peer_c_pinned", &w.c},
      {"network_function", &w.nf}, {"b_other_ca", &w.b_other_ca}, {"b_wrong_name", &w.b_wrong_name},
      {"b_expired", &w.b_expired}, {"kms_a", &w.a},                {"ca", &w.ca}};
  std::filesystem::create_directories(dir);
  for (const auto& [name, cert] : seeds) {
    std::ofstream out(std::string(dir) + "/" + name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(cert->der.data()), static_cast<std::streamsize>(cert->der.size()));
  }
}

}  // namespace
}  // namespace tkms::zk
