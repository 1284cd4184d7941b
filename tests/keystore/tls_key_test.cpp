// The TLS server key (Keystore::CreateTlsKey / TlsKeyPublic / TlsSigner,
// docs/tls.md) on a real SoftHSM2 token: the key pair's attributes as the
// token reports them, RSASSA-PKCS1-v1_5 signatures (SHA-256/384/512) that
// mbedTLS verifies with the public key, mbedTLS signing through
// pki::PkContext::RsaAlt (mbedtls_pk_sign, a self-signed certificate, a
// PKCS#10 request), and the refusals: reserved labels, keys that are not
// protected by the token, wrong digests, destroyed keys.
#include <gtest/gtest.h>
#include <mbedtls/md.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include <array>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "firmware/pki/contexts.h"
#include "firmware/pki/csr.h"
#include "firmware/pki/pk.h"
#include "firmware/pki/x509.h"
#include "tests/keystore/keystore_test_base.h"

namespace tkms::keystore {
namespace {

using test::KeystoreTestBase;

constexpr const char* kLabel = "tkms-tls-server";

class keystore_TlsKey : public KeystoreTestBase {
 protected:
  pki::PkContext PublicKey(const std::string& label = kLabel) {
    auto pub = ks().TlsKeyPublic(label);
    EXPECT_TRUE(pub.ok()) << pub.error().ToString();
    if (!pub.ok()) return pki::PkContext();
    auto pk = pki::PkContext::RsaPublicKey(pub->modulus, pub->exponent);
    EXPECT_TRUE(pk.ok()) << pk.error().ToString();
    return pk.ok() ? std::move(*pk) : pki::PkContext();
  }

  pki::PkContext RsaAlt(const std::string& label = kLabel) {
    auto signer = ks().TlsSigner(label);
    EXPECT_TRUE(signer.ok()) << signer.error().ToString();
    if (!signer.ok()) return pki::PkContext();
    auto pk = pki::PkContext::RsaAlt(*signer);
    EXPECT_TRUE(pk.ok()) << pk.error().ToString();
    return pk.ok() ? std::move(*pk) : pki::PkContext();
  }

  static std::vector<uint8_t> Digest(mbedtls_md_type_t md, const std::string& message) {
    const mbedtls_md_info_t* info = mbedtls_md_info_from_type(md);
    std::vector<uint8_t> digest(mbedtls_md_get_size(info));
    EXPECT_EQ(mbedtls_md(info, reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                         digest.data()),
              0);
    return digest;
  }

  // An RSA key pair made past the keystore, with a TLS label and the given
  // private-key protections.
  void RawRsaKeyPair(const std::string& label, bool sensitive, bool extractable, bool decrypt) {
    Session session = RawSession();
    AttributeTemplate pub;
    pub.Ulong(CKA_CLASS, CKO_PUBLIC_KEY).Ulong(CKA_KEY_TYPE, CKK_RSA).Bool(CKA_TOKEN, true)
        .Bool(CKA_VERIFY, true).Ulong(CKA_MODULUS_BITS, 2048)
        .Bytes(CKA_PUBLIC_EXPONENT, std::vector<uint8_t>{1, 0, 1}).Text(CKA_LABEL, label)
        .Bytes(CKA_ID, std::vector<uint8_t>{0xee});
    AttributeTemplate priv;
    priv.Ulong(CKA_CLASS, CKO_PRIVATE_KEY).Ulong(CKA_KEY_TYPE, CKK_RSA).Bool(CKA_TOKEN, true)
        .Bool(CKA_PRIVATE, true).Bool(CKA_SENSITIVE, sensitive).Bool(CKA_EXTRACTABLE, extractable)
        .Bool(CKA_SIGN, true).Bool(CKA_DECRYPT, decrypt).Text(CKA_LABEL, label)
        .Bytes(CKA_ID, std::vector<uint8_t>{0xee});
    CK_MECHANISM mechanism{CKM_RSA_PKCS_KEY_PAIR_GEN, nullptr, 0};
    CK_OBJECT_HANDLE h1 = kInvalidHandle, h2 = kInvalidHandle;
    ASSERT_EQ(session.fns().C_GenerateKeyPair(session.handle(), &mechanism, pub.data(), pub.size(), priv.data(),
                                              priv.size(), &h1, &h2),
              CKR_OK);
    ASSERT_TRUE(ks().Refresh().ok());
  }
};

TEST_F(keystore_TlsKey, CreatesAnRsa2048PairThatNeverLeavesTheToken) {
  auto info = ks().CreateTlsKey(kLabel);
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  EXPECT_EQ(info->key_class, KeyClass::kPrivateKey);
  EXPECT_EQ(info->type, KeyType::kRsa2048);
  EXPECT_EQ(info->usage, KeyUsage::kTlsServer);
  EXPECT_EQ(info->bits, 2048u);
  EXPECT_EQ(info->id.size(), 8u);

  auto keys = ks().ListKeys();
  ASSERT_TRUE(keys.ok());
  int halves = 0;
  for (const KeyInfo& k : *keys) {
    if (k.label != kLabel) continue;
    ++halves;
    EXPECT_EQ(k.id, info->id) << "both halves share one CKA_ID";
    EXPECT_EQ(k.usage, KeyUsage::kTlsServer);
    EXPECT_EQ(k.type, KeyType::kRsa2048);
  }
  EXPECT_EQ(halves, 2);

  // The token's own view of the private key.
  Session session = RawSession();
  AttributeTemplate find;
  find.Ulong(CKA_CLASS, CKO_PRIVATE_KEY).Text(CKA_LABEL, kLabel);
  auto handles = FindObjects(session, find);
  ASSERT_TRUE(handles.ok());
  ASSERT_EQ(handles->size(), 1u);
  auto raw = ReadKeyAttributes(session, handles->front());
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->key_type, CKK_RSA);
  EXPECT_EQ(raw->token, true);
  EXPECT_EQ(raw->is_private, true);
  EXPECT_EQ(raw->sensitive, true);
  EXPECT_EQ(raw->extractable, false);
  EXPECT_EQ(raw->always_sensitive, true);
  EXPECT_EQ(raw->never_extractable, true);
  EXPECT_EQ(raw->sign, true);
  EXPECT_EQ(raw->decrypt, false);
  EXPECT_EQ(raw->unwrap, false);
  EXPECT_EQ(raw->derive, false);
  EXPECT_EQ(raw->modifiable, false);
  // The private exponent cannot be read.
  uint8_t buffer[600];
  CK_ATTRIBUTE d{CKA_PRIVATE_EXPONENT, buffer, sizeof(buffer)};
  EXPECT_EQ(session.fns().C_GetAttributeValue(session.handle(), handles->front(), &d, 1), CKR_ATTRIBUTE_SENSITIVE);
  // Nor can the key be wrapped out.
  EXPECT_TRUE(ks().ExportWrapped(KeySelector::Label(kLabel), KeySelector::Label(kLabel)).error().code() !=
              StatusCode::kOk);
}

TEST_F(keystore_TlsKey, SignaturesVerifyWithThePublicKeyForEveryHash) {
  ASSERT_TRUE(ks().CreateTlsKey(kLabel).ok());
  pki::PkContext pub = PublicKey();
  ASSERT_TRUE(pub.has_key());
  EXPECT_EQ(pub.description(), "RSA 2048");
  auto signer = ks().TlsSigner(kLabel);
  ASSERT_TRUE(signer.ok()) << signer.error().ToString();
  EXPECT_EQ((*signer)->ModulusBytes(), 256u);
  for (mbedtls_md_type_t md : {MBEDTLS_MD_SHA256, MBEDTLS_MD_SHA384, MBEDTLS_MD_SHA512}) {
    const std::vector<uint8_t> digest = Digest(md, "ServerKeyExchange params");
    auto signature = (*signer)->SignPkcs1v15(md, digest);
    ASSERT_TRUE(signature.ok()) << signature.error().ToString();
    ASSERT_EQ(signature->size(), 256u);
    EXPECT_TRUE(pub.Verify(md, digest, *signature)) << "md " << md;
    // The same signature does not verify another message, or under another hash's DigestInfo.
    EXPECT_FALSE(pub.Verify(md, Digest(md, "something else"), *signature));
    (*signature)[100] ^= 1;
    EXPECT_FALSE(pub.Verify(md, digest, *signature));
  }
  EXPECT_FALSE(pub.Verify(MBEDTLS_MD_SHA384, Digest(MBEDTLS_MD_SHA384, "x"),
                          *(*signer)->SignPkcs1v15(MBEDTLS_MD_SHA512, Digest(MBEDTLS_MD_SHA512, "x"))));
}

TEST_F(keystore_TlsKey, RsaAltContextSignsThroughTheToken) {
  ASSERT_TRUE(ks().CreateTlsKey(kLabel).ok());
  pki::PkContext pub = PublicKey();
  pki::PkContext alt = RsaAlt();
  ASSERT_TRUE(alt.has_key());
  EXPECT_EQ(mbedtls_pk_get_type(alt.native()), MBEDTLS_PK_RSA_ALT);
  EXPECT_TRUE(mbedtls_pk_can_do(alt.native(), MBEDTLS_PK_RSA));
  EXPECT_EQ(mbedtls_pk_get_bitlen(alt.native()), 2048u);
  for (mbedtls_md_type_t md : {MBEDTLS_MD_SHA256, MBEDTLS_MD_SHA384, MBEDTLS_MD_SHA512}) {
    const std::vector<uint8_t> digest = Digest(md, "handshake");
    std::array<unsigned char, MBEDTLS_PK_SIGNATURE_MAX_SIZE> sig{};
    size_t length = 0;
    ASSERT_EQ(mbedtls_pk_sign(alt.native(), md, digest.data(), digest.size(), sig.data(), &length, nullptr, nullptr),
              0);
    EXPECT_EQ(length, 256u);
    EXPECT_EQ(mbedtls_pk_verify(pub.native(), md, digest.data(), digest.size(), sig.data(), length), 0);
  }
  // SHA-1 and MD_NONE (what mbedtls_pk_check_pair signs with) are refused;
  // CheckKeyPair is the check that works.
  const std::vector<uint8_t> sha1 = Digest(MBEDTLS_MD_SHA1, "handshake");
  std::array<unsigned char, MBEDTLS_PK_SIGNATURE_MAX_SIZE> sig{};
  size_t length = 0;
  EXPECT_EQ(mbedtls_pk_sign(alt.native(), MBEDTLS_MD_SHA1, sha1.data(), sha1.size(), sig.data(), &length, nullptr,
                            nullptr),
            MBEDTLS_ERR_RSA_BAD_INPUT_DATA);
  EXPECT_NE(mbedtls_pk_check_pair(pub.native(), alt.native()), 0);
  EXPECT_TRUE(pki::CheckKeyPair(alt, pub).ok());
  // Decryption (static RSA key exchange) is refused.
  std::array<unsigned char, 256> in{}, out{};
  size_t olen = 1;
  EXPECT_EQ(mbedtls_pk_decrypt(alt.native(), in.data(), in.size(), out.data(), &olen, out.size(), nullptr, nullptr),
            MBEDTLS_ERR_RSA_UNSUPPORTED_OPERATION);
  // A moved context keeps its signer (and its native address).
  mbedtls_pk_context* native = alt.native();
  pki::PkContext moved = std::move(alt);
  EXPECT_EQ(moved.native(), native);
  EXPECT_TRUE(pki::CheckKeyPair(moved, pub).ok());
}

TEST_F(keystore_TlsKey, KeyPairCheckAndCertificateMatchTellKeysApart) {
  ASSERT_TRUE(ks().CreateTlsKey(kLabel).ok());
  ASSERT_TRUE(ks().CreateTlsKey("tkms-tls-other").ok());
  pki::PkContext pub = PublicKey();
  pki::PkContext other_pub = PublicKey("tkms-tls-other");
  pki::PkContext alt = RsaAlt();
  const Status mismatch = pki::CheckKeyPair(alt, other_pub);
  EXPECT_EQ(mismatch.code(), StatusCode::kFailedPrecondition) << mismatch.ToString();

  // A certificate for the token key, self-signed by the token through rsa_alt.
  pki::CertificateWriter writer;
  mbedtls_x509write_cert* crt = writer.native();
  mbedtls_x509write_crt_set_version(crt, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(crt, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(crt, pub.native());
  mbedtls_x509write_crt_set_issuer_key(crt, alt.native());
  ASSERT_EQ(mbedtls_x509write_crt_set_subject_name(crt, "CN=kms.example.org"), 0);
  ASSERT_EQ(mbedtls_x509write_crt_set_issuer_name(crt, "CN=kms.example.org"), 0);
  ASSERT_EQ(mbedtls_x509write_crt_set_validity(crt, "20250101000000", "20350101000000"), 0);
  pki::Mpi serial;
  ASSERT_EQ(mbedtls_mpi_lset(serial.native(), 7), 0);
  ASSERT_EQ(mbedtls_x509write_crt_set_serial(crt, serial.native()), 0);
  std::array<unsigned char, 4096> der{};
  const int n = mbedtls_x509write_crt_der(crt, der.data(), der.size(), nullptr, nullptr);
  ASSERT_GT(n, 0);
  pki::X509Chain chain;
  ASSERT_TRUE(chain.AddDer(ByteSpan(der.end() - n, der.end()), "certificate").ok());
  EXPECT_EQ(chain.front().key_description(), "RSA 2048");
  // It verifies under its own key: the token's signature.
  uint32_t flags = 0;
  EXPECT_EQ(mbedtls_x509_crt_verify(chain.native(), chain.native(), nullptr, nullptr, &flags, nullptr, nullptr), 0);
  auto same = pki::CertificateMatchesKey(chain.front(), pub);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(*same);
  auto different = pki::CertificateMatchesKey(chain.front(), other_pub);
  ASSERT_TRUE(different.ok());
  EXPECT_FALSE(*different);
}

TEST_F(keystore_TlsKey, CsrSignedByTheTokenParsesAndVerifies) {
  ASSERT_TRUE(ks().CreateTlsKey(kLabel).ok());
  pki::PkContext pub = PublicKey();
  pki::PkContext alt = RsaAlt();
  const std::vector<std::string> names = {"kms.example.org", "kms-2.example.org"};
  auto pem = pki::WriteCsrPem(alt, pub, "CN=kms.example.org,O=Example", names);
  ASSERT_TRUE(pem.ok()) << pem.error().ToString();
  ASSERT_EQ(pem->rfind("-----BEGIN CERTIFICATE REQUEST-----\n", 0), 0u);
  mbedtls_x509_csr csr;
  mbedtls_x509_csr_init(&csr);
  ASSERT_EQ(mbedtls_x509_csr_parse(&csr, reinterpret_cast<const unsigned char*>(pem->c_str()), pem->size() + 1), 0);
  char subject[256];
  ASSERT_GT(mbedtls_x509_dn_gets(subject, sizeof(subject), &csr.subject), 0);
  EXPECT_STREQ(subject, "CN=kms.example.org, O=Example");
  EXPECT_EQ(csr.sig_md, MBEDTLS_MD_SHA256);
  EXPECT_EQ(csr.sig_pk, MBEDTLS_PK_RSA);
  // Its signature, over the CertificationRequestInfo, with the CSR's own key.
  std::array<unsigned char, 32> digest{};
  ASSERT_EQ(mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), csr.cri.p, csr.cri.len, digest.data()), 0);
  EXPECT_EQ(mbedtls_pk_verify(&csr.pk, MBEDTLS_MD_SHA256, digest.data(), digest.size(), csr.sig.p, csr.sig.len), 0);
  // The key in the CSR is the token's.
  std::array<unsigned char, 1024> a{}, b{};
  const int la = mbedtls_pk_write_pubkey_der(&csr.pk, a.data(), a.size());
  const int lb = mbedtls_pk_write_pubkey_der(pub.native(), b.data(), b.size());
  ASSERT_GT(la, 0);
  EXPECT_EQ(std::vector<unsigned char>(a.end() - la, a.end()), std::vector<unsigned char>(b.end() - lb, b.end()));
  // The dNSNames are in the request (as the IA5String bytes of the extension).
  const std::string raw(reinterpret_cast<const char*>(csr.raw.p), csr.raw.len);
  EXPECT_NE(raw.find("\x82\x0fkms.example.org"), std::string::npos);
  EXPECT_NE(raw.find("\x82\x11kms-2.example.org"), std::string::npos);
  mbedtls_x509_csr_free(&csr);

  // Bad input.
  EXPECT_EQ(pki::WriteCsrPem(alt, pub, "", {}).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pki::WriteCsrPem(alt, pub, "CN", {}).error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(pki::WriteCsrPem(alt, pub, "XX=y", {}).error().code(), StatusCode::kInvalidArgument);
  const std::vector<std::string> bad_names = {"*.example.org"};
  EXPECT_EQ(pki::WriteCsrPem(alt, pub, "CN=a", bad_names).error().code(), StatusCode::kInvalidArgument);
  // A public key that is not the signer's.
  ASSERT_TRUE(ks().CreateTlsKey("tkms-tls-other").ok());
  pki::PkContext other = PublicKey("tkms-tls-other");
  EXPECT_EQ(pki::WriteCsrPem(alt, other, "CN=a", {}).error().code(), StatusCode::kFailedPrecondition);
}

TEST_F(keystore_TlsKey, ReservedLabelsAndDuplicates) {
  ASSERT_TRUE(ks().CreateTlsKey(kLabel).ok());
  EXPECT_EQ(ks().CreateTlsKey(kLabel).error().code(), StatusCode::kFailedPrecondition);  // exists
  EXPECT_EQ(ks().CreateTlsKey("server").error().code(), StatusCode::kInvalidArgument);   // no prefix
  EXPECT_EQ(ks().CreateTlsKey("tkms-tls-").error().code(), StatusCode::kInvalidArgument);
  // The prefix is reserved for TLS keys, and TLS keys are RSA-2048 pairs.
  EXPECT_EQ(ks().GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "tkms-tls-x", {1}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().GenerateKey(KeyType::kEcP256, KeyUsage::kSigning, "tkms-tls-x", {1}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().GenerateKey(KeyType::kRsa2048, KeyUsage::kSigning, "tkms-tls-x", {1}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().GenerateKey(KeyType::kRsa2048, KeyUsage::kTlsServer, "tkms-tls-x", {}).error().code(),
            StatusCode::kInvalidArgument);  // no id
  EXPECT_EQ(ks().ImportSecret(KeyUsage::kTlsServer, "tkms-tls-x", {1}, Secret(32, 1)).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ks().TlsSigner("tkms-tls-missing").error().code(), StatusCode::kNotFound);
  EXPECT_EQ(ks().TlsKeyPublic("tkms-tls-missing").error().code(), StatusCode::kNotFound);
  EXPECT_EQ(ks().TlsSigner("server").error().code(), StatusCode::kInvalidArgument);
}

TEST_F(keystore_TlsKey, RefusesRsaKeysTheTokenDoesNotProtect) {
  struct Case {
    const char* label;
    bool sensitive, extractable, decrypt;
  };
  for (const Case& c : {Case{"tkms-tls-extractable", true, true, false},
                        Case{"tkms-tls-not-sensitive", false, false, false},
                        Case{"tkms-tls-decrypts", true, false, true}}) {
    SCOPED_TRACE(c.label);
    RawRsaKeyPair(c.label, c.sensitive, c.extractable, c.decrypt);
    auto signer = ks().TlsSigner(c.label);
    ASSERT_FALSE(signer.ok());
    EXPECT_EQ(signer.error().code(), StatusCode::kFailedPrecondition) << signer.error().ToString();
    EXPECT_EQ(ks().TlsKeyPublic(c.label).error().code(), StatusCode::kFailedPrecondition);
  }
}

TEST_F(keystore_TlsKey, WrongDigestsAndDestroyedKeys) {
  ASSERT_TRUE(ks().CreateTlsKey(kLabel).ok());
  auto signer = ks().TlsSigner(kLabel);
  ASSERT_TRUE(signer.ok());
  EXPECT_EQ((*signer)->SignPkcs1v15(MBEDTLS_MD_SHA1, Digest(MBEDTLS_MD_SHA1, "x")).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*signer)->SignPkcs1v15(MBEDTLS_MD_SHA256, Digest(MBEDTLS_MD_SHA384, "x")).error().code(),
            StatusCode::kInvalidArgument);
  auto alt = pki::PkContext::RsaAlt(*signer);
  ASSERT_TRUE(alt.ok());
  ASSERT_TRUE(ks().DestroyKey(KeySelector::Label(kLabel)).ok());
  EXPECT_EQ((*signer)->SignPkcs1v15(MBEDTLS_MD_SHA256, Digest(MBEDTLS_MD_SHA256, "x")).error().code(),
            StatusCode::kNotFound);
  // A new key with the same label is not the old signer's key.
  ASSERT_TRUE(ks().CreateTlsKey(kLabel).ok());
  EXPECT_EQ((*signer)->SignPkcs1v15(MBEDTLS_MD_SHA256, Digest(MBEDTLS_MD_SHA256, "x")).error().code(),
            StatusCode::kNotFound);
  const std::vector<uint8_t> digest = Digest(MBEDTLS_MD_SHA256, "x");
  std::array<unsigned char, MBEDTLS_PK_SIGNATURE_MAX_SIZE> sig{};
  size_t length = 0;
  EXPECT_EQ(mbedtls_pk_sign(alt->native(), MBEDTLS_MD_SHA256, digest.data(), digest.size(), sig.data(), &length,
                            nullptr, nullptr),
            MBEDTLS_ERR_RSA_PRIVATE_FAILED);
}

TEST_F(keystore_TlsKey, SignsFromSeveralThreads) {
  ASSERT_TRUE(ks().CreateTlsKey(kLabel).ok());
  pki::PkContext pub = PublicKey();
  pki::PkContext alt = RsaAlt();
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        const std::vector<uint8_t> digest = Digest(MBEDTLS_MD_SHA256, std::to_string(t * 100 + i));
        std::array<unsigned char, MBEDTLS_PK_SIGNATURE_MAX_SIZE> sig{};
        size_t length = 0;
        if (mbedtls_pk_sign(alt.native(), MBEDTLS_MD_SHA256, digest.data(), digest.size(), sig.data(), &length,
                            nullptr, nullptr) == 0 &&
            pub.Verify(MBEDTLS_MD_SHA256, digest, ByteSpan(sig.data(), length))) {
          ++good;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good.load(), 15);
}

}  // namespace
}  // namespace tkms::keystore
