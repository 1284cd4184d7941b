// A fixed Zk test world (tests/zk): a CA with peer KMS B, a second CA, a
// pinned peer KMS C, a network function and the certificates the identity
// rules must refuse, all EC P-256 from test_pki keys made from seeds, so the
// same DER comes out on every run (the fuzz target zk_identity_fuzz checks
// its committed corpus against it).
#pragma once

#include <string>
#include <vector>

#include "provisioning/config.h"
#include "tests/provisioning/test_pki.h"

namespace tkms::zk::testing {

inline constexpr const char* kPeerB = "sip:kms@b.example.org";  // via the CA; host b.example.org
inline constexpr const char* kPeerC = "kms.c.example.org";      // pinned certificate
inline constexpr const char* kFunction = "li-1";                 // network function, role resolve
inline constexpr const char* kCaSubject = "CN=tkms zk test CA,O=tkms tests";
inline constexpr const char* kOtherCaSubject = "CN=other CA,O=elsewhere";

struct ZkTestWorld {
  test_pki::Key ca_key = test_pki::Key::FromSeed("zk ca");
  test_pki::Key other_ca_key = test_pki::Key::FromSeed("zk other ca");
  test_pki::Key a_key = test_pki::Key::FromSeed("zk kms a");
  test_pki::Key b_key = test_pki::Key::FromSeed("zk kms b");
  test_pki::Key c_key = test_pki::Key::FromSeed("zk kms c");
  test_pki::Key nf_key = test_pki::Key::FromSeed("zk nf");
  test_pki::Cert ca = test_pki::SelfSignedCert(test_pki::CaSpec(kCaSubject), ca_key);
  test_pki::Cert other_ca = test_pki::SelfSignedCert(test_pki::CaSpec(kOtherCaSubject), other_ca_key);
  // This KMS (A): the CA's, named a.example.org.
  test_pki::Cert a = Issue("CN=kms a,O=tkms tests", {"a.example.org"}, a_key, kCaSubject, ca_key, 10);
  // Peer B by the CA: dNSName b.example.org (upper case: names compare without case).
  test_pki::Cert b = Issue("CN=kms b,O=tkms tests", {"www.example.org", "B.Example.ORG"}, b_key, kCaSubject, ca_key, 11);
  // Peer B's name, but from the other CA.
  test_pki::Cert b_other_ca = Issue("CN=kms b,O=elsewhere", {"b.example.org"}, b_key, kOtherCaSubject, other_ca_key, 12);
  // The CA's, but for another name (its CN would match: a dNSName SAN wins).
  test_pki::Cert b_wrong_name = Issue("CN=b.example.org,O=tkms tests", {"x.example.org"}, b_key, kCaSubject, ca_key, 13);
  // The CA's, named by CN only.
  test_pki::Cert b_by_cn = Issue("CN=b.example.org,O=tkms tests", {}, b_key, kCaSubject, ca_key, 14);
  // The CA's for B, expired.
  test_pki::Cert b_expired = Issue("CN=kms b,O=tkms tests", {"b.example.org"}, b_key, kCaSubject, ca_key, 15,
                                   "20200101000000", "20210101000000");
  // Peer C, pinned (issued by the other CA; names kms.c.example.org by CN).
  test_pki::Cert c = Issue("CN=kms.c.example.org,O=elsewhere", {}, c_key, kOtherCaSubject, other_ca_key, 16);
  // The network function, pinned.
  test_pki::Cert nf = Issue("CN=li-1,O=elsewhere", {}, nf_key, kOtherCaSubject, other_ca_key, 17);

  // Trust relations B (ca) and C (certificate) at `endpoint`, and the network function.
  provisioning::KmsConfig Config(const std::string& endpoint_b = "127.0.0.1:1",
                                 const std::string& endpoint_c = "127.0.0.1:1") const {
    provisioning::KmsConfig config;
    config.kms_identity = "a.example.org";
    config.trust_relations.push_back({kPeerB, endpoint_b, "", ca.pem});
    config.trust_relations.push_back({kPeerC, endpoint_c, c.pem, ""});
    config.network_functions.push_back({kFunction, nf.pem, {"resolve"}});
    return config;
  }

  static test_pki::Cert Issue(const std::string& subject, std::vector<std::string> dns_names,
                              const test_pki::Key& key, const char* issuer, const test_pki::Key& issuer_key,
                              uint64_t serial, const char* not_before = "20240101000000",
                              const char* not_after = "20491231235959") {
    test_pki::CertSpec spec = test_pki::SignerSpec(subject);
    spec.dns_names = std::move(dns_names);
    spec.serial = serial;
    spec.not_before = not_before;
    spec.not_after = not_after;
    return test_pki::IssueCert(spec, key, issuer, issuer_key);
  }
};

}  // namespace tkms::zk::testing
