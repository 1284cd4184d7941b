// Unit tests of the mbedTLS owners and certificate readers
// (firmware/pki): X509Chain (DER and PEM with caps, trailing bytes, order,
// moves, iteration), CertificateRef's facts, the certificate-file readers,
// PkContext (EC points, PEM/DER keys, verification, moves), Sha256, Mpi,
// CertificateWriter and CtrDrbg. Certificates and keys come from the
// in-memory test PKI (tests/provisioning/test_pki.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <utility>

#include "firmware/base/encoding.h"
#include "firmware/pki/contexts.h"
#include "firmware/pki/mbedtls_error.h"
#include "firmware/pki/pk.h"
#include "firmware/pki/x509.h"
#include "tests/provisioning/test_pki.h"

namespace tkms::pki {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using test_pki::TestPki;
using test_pki::Utc;

const TestPki& Pki() {
  static const TestPki pki("pki_test");
  return pki;
}

// ---- X509Chain --------------------------------------------------------------------

TEST(X509ChainTest, AddsDerCertificatesInOrder) {
  X509Chain chain;
  EXPECT_TRUE(chain.empty());
  EXPECT_EQ(chain.begin(), chain.end());
  ASSERT_TRUE(chain.AddDer(Pki().signer.der, "certificates[0]").ok());
  ASSERT_TRUE(chain.AddDer(Pki().root.der, "certificates[1]").ok());
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain.at(0).subject(), "CN=tkms test bundle signer, O=tkms tests");
  EXPECT_EQ(chain.at(1).subject(), "CN=tkms test provisioning CA, O=tkms tests");
  size_t seen = 0;
  for (const CertificateRef crt : chain) {
    EXPECT_EQ(crt.native().raw.p, chain.node(seen)->raw.p);
    ++seen;
  }
  EXPECT_EQ(seen, 2u);
  EXPECT_EQ(chain.native(), chain.node(0));
}

TEST(X509ChainTest, RefusesBadDerAndLeavesTheChainAlone) {
  X509Chain chain;
  ASSERT_TRUE(chain.AddDer(Pki().root.der, "anchor").ok());
  Bytes trailing = Pki().signer.der;
  trailing.push_back(0);
  EXPECT_EQ(chain.AddDer(trailing, "certificates[0]").message(), "certificates[0]: 1 bytes after the DER certificate");
  EXPECT_THAT(chain.AddDer(Bytes{0x30, 0x00}, "x").message(), StartsWith("x: not a DER X.509 certificate: mbedTLS -0x"));
  EXPECT_EQ(chain.AddDer(Bytes{}, "x").message(), "x: is empty");
  EXPECT_EQ(chain.AddDer(Pki().signer.der, "x", 10).message(),
            "x: holds " + std::to_string(Pki().signer.der.size()) + " bytes; at most 10");
  EXPECT_EQ(chain.size(), 1u);
  ASSERT_TRUE(chain.AddDer(Pki().signer.der, "certificates[0]").ok());
  EXPECT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain.at(1).serial_hex(), "01");
}

TEST(X509ChainTest, AddsPemWithCaps) {
  const std::string two = "text before\n" + Pki().root.pem + "between\n" + Pki().signer.pem;
  X509Chain chain;
  ASSERT_TRUE(chain.AddPem(two, "ca_file", 16384, 4).ok());
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_TRUE(chain.at(0).is_ca());
  EXPECT_FALSE(chain.at(1).is_ca());
  // Appended to a chain that holds certificates already.
  ASSERT_TRUE(chain.AddPem(Pki().root.pem, "more", 16384, 3).ok());
  EXPECT_EQ(chain.size(), 3u);
  EXPECT_THAT(chain.AddPem(Pki().root.pem, "more", 16384, 3).message(),
              StartsWith("more: would make 4 certificates; at most 3"));
  EXPECT_EQ(chain.size(), 3u);

  X509Chain fresh;
  EXPECT_EQ(fresh.AddPem(Pki().root.pem, "c", 10, 1).message(),
            "c: is " + std::to_string(Pki().root.pem.size()) + " bytes; at most 10");
  EXPECT_EQ(fresh.AddPem("", "c", 10, 1).message(), "c: is empty");
  std::string broken = Pki().root.pem;
  broken[40] = '*';
  EXPECT_THAT(fresh.AddPem(broken, "c", 16384, 1).message(), StartsWith("c: does not parse: "));
  EXPECT_THAT(fresh.AddPem("no certificate here", "c", 16384, 1).message(), StartsWith("c: does not parse: "));
  EXPECT_TRUE(fresh.empty());
}

TEST(X509ChainTest, MovesKeepTheNativeAddress) {
  X509Chain chain;
  ASSERT_TRUE(chain.AddDer(Pki().root.der, "anchor").ok());
  mbedtls_x509_crt* native = chain.native();
  X509Chain moved(std::move(chain));
  EXPECT_EQ(moved.native(), native);
  EXPECT_EQ(moved.size(), 1u);
  EXPECT_TRUE(chain.empty());  // NOLINT(bugprone-use-after-move): a moved-from chain is empty
  X509Chain assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.native(), native);
  // A moved-from chain can take certificates again.
  ASSERT_TRUE(chain.AddDer(Pki().signer.der, "x").ok());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(chain.size(), 1u);
}

TEST(CertificateRefTest, Facts) {
  X509Chain chain;
  ASSERT_TRUE(chain.AddDer(Pki().root.der, "root").ok());
  ASSERT_TRUE(chain.AddDer(Pki().signer.der, "signer").ok());
  const CertificateRef root = chain.at(0);
  EXPECT_EQ(root.version(), 3);
  EXPECT_EQ(root.issuer(), root.subject());
  EXPECT_TRUE(root.is_ca());
  EXPECT_TRUE(root.has_key_usage(MBEDTLS_X509_KU_KEY_CERT_SIGN));
  EXPECT_FALSE(root.has_key_usage(MBEDTLS_X509_KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(root.key_usage_text(), "keyCertSign,cRLSign");
  EXPECT_EQ(root.not_before(), Utc(2024, 1, 1));
  EXPECT_EQ(root.not_after(), Utc(2049, 12, 31, 23, 59, 59));
  EXPECT_EQ(root.der().size(), Pki().root.der.size());
  const CertificateRef signer = chain.at(1);
  EXPECT_TRUE(signer.has_ec_p256_key());
  EXPECT_EQ(signer.key_description(), "EC P-256");
  EXPECT_TRUE(std::equal(signer.issuer_raw().begin(), signer.issuer_raw().end(), root.subject_raw().begin(),
                         root.subject_raw().end()));
  test_pki::CertSpec bare = test_pki::SignerSpec("CN=no key usage");
  bare.key_usage.reset();
  const test_pki::Key p384 = test_pki::Key::FromSeed("pki_test/p384", test_pki::Curve::kP384);
  X509Chain other;
  ASSERT_TRUE(other.AddDer(test_pki::SelfSignedCert(bare, p384).der, "x").ok());
  EXPECT_EQ(other.front().key_usage_text(), "(none)");
  EXPECT_FALSE(other.front().has_key_usage_extension());
  EXPECT_EQ(other.front().key_description(), "EC P-384");
  EXPECT_FALSE(other.front().has_ec_p256_key());
}

TEST(TimeTest, ConvertsAndFormatsUtc) {
  mbedtls_x509_time t{};
  t.year = 2026;
  t.mon = 1;
  t.day = 31;
  EXPECT_EQ(ToTimeT(t), Utc(2026, 1, 31));
  t.year = 2000;
  t.mon = 2;
  t.day = 29;
  t.hour = 23;
  t.min = 59;
  t.sec = 58;
  EXPECT_EQ(FormatUtcTime(ToTimeT(t)), "2000-02-29T23:59:58Z");
  EXPECT_EQ(FormatUtcTime(0), "1970-01-01T00:00:00Z");
}

// ---- summaries and files -------------------------------------------------------------

TEST(CertificateFileTest, ReadPemOrDerCertificate) {
  auto der = ReadPemOrDerCertificate(std::string(Pki().root.pem));
  ASSERT_TRUE(der.ok()) << der.error().ToString();
  EXPECT_EQ(*der, Pki().root.der);
  der = ReadPemOrDerCertificate("Certificate:\n  (openssl text output)\n" + Pki().root.pem + "\ntrailing words\n");
  ASSERT_TRUE(der.ok()) << der.error().ToString();
  EXPECT_EQ(*der, Pki().root.der);
  const std::string raw(Pki().root.der.begin(), Pki().root.der.end());
  der = ReadPemOrDerCertificate(raw);
  ASSERT_TRUE(der.ok()) << der.error().ToString();
  EXPECT_EQ(*der, Pki().root.der);

  EXPECT_THAT(ReadPemOrDerCertificate(Pki().root.pem + Pki().signer.pem).error().message(),
              HasSubstr("more than one PEM certificate"));
  EXPECT_THAT(ReadPemOrDerCertificate("hello").error().message(), HasSubstr("neither a PEM certificate"));
  EXPECT_THAT(ReadPemOrDerCertificate("").error().message(), HasSubstr("empty"));
  EXPECT_THAT(ReadPemOrDerCertificate(raw + "x").error().message(), HasSubstr("1 bytes after the DER certificate"));
  EXPECT_THAT(ReadPemOrDerCertificate(std::string(kMaxCertificateFileBytes + 1, '0')).error().message(),
              HasSubstr("at most 262144"));
  std::string broken = Pki().root.pem;
  broken[40] = '*';
  EXPECT_THAT(ReadPemOrDerCertificate(broken).error().message(), HasSubstr("not a usable PEM certificate"));
  EXPECT_THAT(ReadPemOrDerCertificate(Pki().signer_key.PublicKeyPem()).error().message(),
              HasSubstr("neither a PEM certificate"));
  EXPECT_EQ(LoadCertificateFile("/nonexistent/ca.pem").error().code(), StatusCode::kNotFound);
}

TEST(CertificateFileTest, DescribeCertificate) {
  auto root = DescribeCertificate(Pki().root.der);
  ASSERT_TRUE(root.ok()) << root.error().ToString();
  EXPECT_EQ(root->subject, "CN=tkms test provisioning CA, O=tkms tests");
  EXPECT_EQ(root->issuer, root->subject);
  EXPECT_TRUE(root->is_ca);
  EXPECT_EQ(root->key, "EC P-256");
  EXPECT_EQ(root->key_usage, "keyCertSign,cRLSign");
  EXPECT_EQ(root->not_before, Utc(2024, 1, 1));
  EXPECT_EQ(FormatUtcTime(root->not_after), "2049-12-31T23:59:59Z");
  auto signer = DescribeCertificate(Pki().signer.der);
  ASSERT_TRUE(signer.ok());
  EXPECT_FALSE(signer->is_ca);
  EXPECT_EQ(signer->key_usage, "digitalSignature");
  EXPECT_EQ(signer->serial_hex, "01");
  EXPECT_FALSE(DescribeCertificate(Bytes{0x30, 0x00}).ok());
}

// ---- keys ------------------------------------------------------------------------------

TEST(PkContextTest, EcP256PublicKeyFromAPoint) {
  auto key = PkContext::EcP256PublicKey(Pki().signer_key.PublicPoint());
  ASSERT_TRUE(key.ok()) << key.error().ToString();
  EXPECT_EQ(key->description(), "EC P-256");
  auto pem = key->PublicKeyPem();
  ASSERT_TRUE(pem.ok());
  EXPECT_EQ(*pem, Pki().signer_key.PublicKeyPem());
  EXPECT_THAT(*pem, StartsWith("-----BEGIN PUBLIC KEY-----\n"));
  Bytes off_curve = Pki().signer_key.PublicPoint();
  off_curve[64] ^= 1;
  EXPECT_EQ(PkContext::EcP256PublicKey(off_curve).error().message(), "the point is not on the P-256 curve");
  EXPECT_THAT(PkContext::EcP256PublicKey(Bytes(33, 2)).error().message(), HasSubstr("65 bytes starting with 04"));
}

TEST(PkContextTest, ParsesKeysAndVerifies) {
  Sha256 sha;
  sha.Update(std::string_view("message"));
  const std::array<uint8_t, 32> digest = sha.Finish();
  const Bytes signature = Pki().signer_key.SignDigestDer(digest);

  auto public_key = PkContext::ParsePublicKey(Pki().signer_key.PublicKeyPem());
  ASSERT_TRUE(public_key.ok()) << public_key.error().ToString();
  EXPECT_TRUE(public_key->Verify(MBEDTLS_MD_SHA256, digest, signature));
  Bytes flipped = signature;
  flipped[10] ^= 1;
  EXPECT_FALSE(public_key->Verify(MBEDTLS_MD_SHA256, digest, flipped));

  auto private_key = test_pki::ParsePrivateKey(Pki().signer_key.PrivateKeyPem());
  ASSERT_TRUE(private_key.ok()) << private_key.error().ToString();
  EXPECT_TRUE(private_key->Verify(MBEDTLS_MD_SHA256, digest, signature));
  EXPECT_EQ(*test_pki::PrivateKeyPemOf(*private_key), Pki().signer_key.PrivateKeyPem());

  EXPECT_THAT(PkContext::ParsePublicKey("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").error().message(),
              StartsWith("not a public key: mbedTLS -0x"));
  EXPECT_THAT(test_pki::ParsePrivateKey(Pki().signer_key.PublicKeyPem()).error().message(),
              StartsWith("not an unencrypted private key"));
  EXPECT_EQ(PkContext::ParsePublicKey("").error().message(), "the key is empty");
  EXPECT_THAT(PkContext::ParsePublicKey(std::string(kMaxKeyBytes + 1, 'k')).error().message(), HasSubstr("at most 16384"));

  PkContext empty;
  EXPECT_FALSE(empty.has_key());
  EXPECT_FALSE(empty.Verify(MBEDTLS_MD_SHA256, digest, signature));
  EXPECT_EQ(empty.PublicKeyPem().error().code(), StatusCode::kFailedPrecondition);
}

TEST(PkContextTest, MovesKeepTheNativeAddress) {
  auto key = PkContext::EcP256PublicKey(Pki().root_key.PublicPoint());
  ASSERT_TRUE(key.ok());
  mbedtls_pk_context* native = key->native();
  PkContext moved = std::move(*key);
  EXPECT_EQ(moved.native(), native);
  EXPECT_TRUE(moved.has_key());
  EXPECT_FALSE(key->has_key());  // NOLINT(bugprone-use-after-move)
}

// ---- other contexts ---------------------------------------------------------------------

TEST(Sha256Test, KnownAnswer) {
  Sha256 sha;  // FIPS 180-2 example: "abc" in two pieces
  sha.Update(std::string_view("a"));
  sha.Update(ByteSpan(reinterpret_cast<const uint8_t*>("bc"), 2));
  EXPECT_EQ(HexEncode(sha.Finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(MpiTest, HoldsABigNumber) {
  Mpi a;
  ASSERT_EQ(mbedtls_mpi_lset(a.native(), 4096), 0);
  EXPECT_EQ(mbedtls_mpi_bitlen(a.native()), 13u);
  Mpi b = std::move(a);
  EXPECT_EQ(mbedtls_mpi_bitlen(b.native()), 13u);
  EXPECT_EQ(a.native(), nullptr);  // NOLINT(bugprone-use-after-move)
}

TEST(CtrDrbgTest, FillsAndServesMbedtls) {
  auto drbg = CtrDrbg::Create("tkms pki_test");
  ASSERT_TRUE(drbg.ok()) << drbg.error().ToString();
  std::array<uint8_t, 32> a{};
  std::array<uint8_t, 32> b{};
  ASSERT_TRUE(drbg->Fill(a).ok());
  ASSERT_EQ(CtrDrbg::Random(drbg->native(), b.data(), b.size()), 0);
  EXPECT_NE(a, b);
  EXPECT_NE(a, (std::array<uint8_t, 32>{}));
  // A key made with it, as the TLS code will.
  auto key = test_pki::GenerateEcKey(MBEDTLS_ECP_DP_SECP256R1, CtrDrbg::Random, drbg->native());
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->description(), "EC P-256");
  CtrDrbg moved = std::move(*drbg);
  EXPECT_TRUE(moved.Fill(a).ok());
  EXPECT_EQ(drbg->Fill(a).code(), StatusCode::kFailedPrecondition);  // NOLINT(bugprone-use-after-move)
}

TEST(MbedtlsErrorTest, Text) {
  EXPECT_THAT(MbedtlsError(MBEDTLS_ERR_X509_INVALID_FORMAT), StartsWith("mbedTLS -0x2180 (X509 - "));
  EXPECT_FALSE(MbedtlsErrorText(-0x7fff).empty());
}

}  // namespace
}  // namespace tkms::pki
