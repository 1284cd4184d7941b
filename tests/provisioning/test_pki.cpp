// The test-only PKI: see test_pki.h.
#include "tests/provisioning/test_pki.h"

#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>
#include <sys/random.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <utility>

#include "firmware/base/big_endian.h"
#include "firmware/pki/contexts.h"
#include "firmware/pki/pk.h"
#include "provisioning/bundle.h"

namespace tkms::test_pki {
namespace {

[[noreturn]] void Die(const char* what, int code) {
  std::fprintf(stderr, "test_pki: %s failed (mbedTLS -0x%04x)\n", what, static_cast<unsigned>(-code));
  std::abort();
}

void Check(int code, const char* what) {
  if (code != 0) Die(what, code);
}

// A deterministic generator: SHA-256(seed || counter) blocks. Random keys
// take their seed from getrandom(2); seeded keys from the seed text. Good
// enough for tests, and only for tests.
class TestRng {
 public:
  explicit TestRng(std::array<uint8_t, 32> seed) : seed_(seed) {}

  static int Fill(void* self, unsigned char* out, size_t length) {
    auto* rng = static_cast<TestRng*>(self);
    while (length > 0) {
      std::array<uint8_t, 40> input{};
      std::memcpy(input.data(), rng->seed_.data(), 32);
      StoreBe64(rng->counter_, std::span<uint8_t, 40>(input).subspan<32, 8>());
      ++rng->counter_;
      std::array<uint8_t, 32> block{};
      if (mbedtls_sha256_ret(input.data(), input.size(), block.data(), 0) != 0) return -1;
      const size_t n = length < block.size() ? length : block.size();
      std::memcpy(out, block.data(), n);
      out += n;
      length -= n;
    }
    return 0;
  }

 private:
  std::array<uint8_t, 32> seed_;
  uint64_t counter_ = 0;
};

std::array<uint8_t, 32> SeedFromText(std::string_view text, Curve curve) {
  std::string input = "tkms test_pki key v1|";
  input += curve == Curve::kP256 ? "P-256|" : "P-384|";
  input += text;
  std::array<uint8_t, 32> seed{};
  Check(mbedtls_sha256_ret(reinterpret_cast<const unsigned char*>(input.data()), input.size(), seed.data(), 0),
        "sha256");
  return seed;
}

std::array<uint8_t, 32> RandomSeed() {
  std::array<uint8_t, 32> seed{};
  size_t got = 0;
  while (got < seed.size()) {
    const ssize_t n = ::getrandom(seed.data() + got, seed.size() - got, 0);
    if (n <= 0) Die("getrandom", -1);
    got += static_cast<size_t>(n);
  }
  return seed;
}

std::string DerToPem(const Bytes& der) {
  std::vector<unsigned char> buffer(der.size() * 2 + 128);
  size_t written = 0;
  Check(mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n", der.data(),
                                 der.size(), buffer.data(), buffer.size(), &written),
        "pem_write_buffer");
  // `written` counts the terminating NUL.
  return std::string(reinterpret_cast<const char*>(buffer.data()));
}

}  // namespace

Result<pki::PkContext> GenerateEcKey(mbedtls_ecp_group_id curve, pki::RandomFunction random, void* context) {
  pki::PkContext key;
  int ret = mbedtls_pk_setup(key.native(), mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  if (ret == 0) ret = mbedtls_ecp_gen_key(curve, mbedtls_pk_ec(*key.native()), random, context);
  if (ret != 0) return Internal("cannot generate an EC key (mbedTLS " + std::to_string(ret) + ")");
  return key;
}

Result<pki::PkContext> ParsePrivateKey(std::string_view pem) {
  std::string buffer(pem);
  buffer.push_back('\0');  // mbedTLS wants PEM NUL-terminated, length included
  pki::PkContext key;
  const int ret = mbedtls_pk_parse_key(key.native(), reinterpret_cast<const unsigned char*>(buffer.data()),
                                       buffer.size(), nullptr, 0);
  mbedtls_platform_zeroize(buffer.data(), buffer.size());
  if (ret != 0) return InvalidArgument("not an unencrypted private key (mbedTLS " + std::to_string(ret) + ")");
  return key;
}

Result<std::string> PrivateKeyPemOf(pki::PkContext& key) {
  std::array<unsigned char, 8192> pem{};
  const int ret = mbedtls_pk_write_key_pem(key.native(), pem.data(), pem.size());
  if (ret != 0) return Internal("cannot write the private key as PEM (mbedTLS " + std::to_string(ret) + ")");
  std::string out(reinterpret_cast<const char*>(pem.data()));
  mbedtls_platform_zeroize(pem.data(), pem.size());
  return out;
}

struct Key::Impl {
  explicit Impl(std::array<uint8_t, 32> seed) : rng(seed) {}

  mbedtls_ecp_keypair& ec() { return *mbedtls_pk_ec(*pk.native()); }

  Curve curve = Curve::kP256;
  pki::PkContext pk;
  TestRng rng;
};

namespace {

std::unique_ptr<Key::Impl> MakeImpl(std::array<uint8_t, 32> seed, Curve curve) {
  auto impl = std::make_unique<Key::Impl>(seed);
  impl->curve = curve;
  const mbedtls_ecp_group_id group = curve == Curve::kP256 ? MBEDTLS_ECP_DP_SECP256R1 : MBEDTLS_ECP_DP_SECP384R1;
  auto key = GenerateEcKey(group, TestRng::Fill, &impl->rng);
  if (!key.ok()) Die(key.error().message().c_str(), -1);
  impl->pk = std::move(*key);
  return impl;
}

}  // namespace

Key::Key(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Key::~Key() = default;
Key::Key(Key&&) noexcept = default;
Key& Key::operator=(Key&&) noexcept = default;

Key Key::Generate(Curve curve) { return Key(MakeImpl(RandomSeed(), curve)); }

Key Key::FromSeed(std::string_view seed, Curve curve) { return Key(MakeImpl(SeedFromText(seed, curve), curve)); }

Curve Key::curve() const { return impl_->curve; }

Bytes Key::SignDigestRaw(ByteSpan digest) const {
  mbedtls_ecp_keypair& ec = impl_->ec();
  pki::Mpi r;
  pki::Mpi s;
  Check(mbedtls_ecdsa_sign(&ec.grp, r.native(), s.native(), &ec.d, digest.data(), digest.size(), TestRng::Fill,
                           &impl_->rng),
        "ecdsa_sign");
  const size_t n = (ec.grp.nbits + 7) / 8;
  Bytes out(2 * n);
  Check(mbedtls_mpi_write_binary(r.native(), out.data(), n), "mpi_write_binary r");
  Check(mbedtls_mpi_write_binary(s.native(), out.data() + n, n), "mpi_write_binary s");
  return out;
}

Bytes Key::SignDigestDer(ByteSpan digest) const {
  std::array<unsigned char, MBEDTLS_ECDSA_MAX_LEN> buffer{};
  size_t length = 0;
  Check(mbedtls_pk_sign(impl_->pk.native(), MBEDTLS_MD_SHA256, digest.data(), digest.size(), buffer.data(), &length,
                        TestRng::Fill, &impl_->rng),
        "pk_sign");
  return Bytes(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(length));
}

Bytes Key::PublicPoint() const {
  mbedtls_ecp_keypair& ec = impl_->ec();
  std::array<unsigned char, 200> buffer{};
  size_t length = 0;
  Check(mbedtls_ecp_point_write_binary(&ec.grp, &ec.Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &length, buffer.data(),
                                       buffer.size()),
        "ecp_point_write_binary");
  return Bytes(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(length));
}

std::string Key::PublicKeyPem() const {
  auto pem = impl_->pk.PublicKeyPem();
  if (!pem.ok()) Die(pem.error().message().c_str(), -1);
  return *pem;
}

std::string Key::PrivateKeyPem() const {
  auto pem = PrivateKeyPemOf(impl_->pk);
  if (!pem.ok()) Die(pem.error().message().c_str(), -1);
  return *pem;
}

CertSpec CaSpec(std::string subject) {
  CertSpec spec;
  spec.subject = std::move(subject);
  spec.ca = true;
  spec.key_usage = kKuKeyCertSign | kKuCrlSign;
  return spec;
}

CertSpec SignerSpec(std::string subject) {
  CertSpec spec;
  spec.subject = std::move(subject);
  return spec;
}

Cert IssueCert(const CertSpec& spec, const Key& subject_key, std::string_view issuer_subject, const Key& issuer_key) {
  pki::CertificateWriter writer;
  mbedtls_x509write_cert* crt = writer.native();
  const std::string issuer(issuer_subject);
  mbedtls_x509write_crt_set_version(crt, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(crt, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(crt, subject_key.impl_->pk.native());
  mbedtls_x509write_crt_set_issuer_key(crt, issuer_key.impl_->pk.native());
  Check(mbedtls_x509write_crt_set_subject_name(crt, spec.subject.c_str()), "set_subject_name");
  Check(mbedtls_x509write_crt_set_issuer_name(crt, issuer.c_str()), "set_issuer_name");
  pki::Mpi serial;
  Check(mbedtls_mpi_lset(serial.native(), static_cast<mbedtls_mpi_sint>(spec.serial & 0x7fffffffffffffffULL)),
        "mpi_lset");
  Check(mbedtls_x509write_crt_set_serial(crt, serial.native()), "set_serial");
  Check(mbedtls_x509write_crt_set_validity(crt, spec.not_before.c_str(), spec.not_after.c_str()), "set_validity");
  Check(mbedtls_x509write_crt_set_basic_constraints(crt, spec.ca ? 1 : 0, spec.ca ? spec.path_len : -1),
        "set_basic_constraints");
  if (spec.key_usage) Check(mbedtls_x509write_crt_set_key_usage(crt, *spec.key_usage), "set_key_usage");
  if (!spec.dns_names.empty()) {
    // GeneralNames (RFC 5280 §4.2.1.6): SEQUENCE OF [2] IA5String.
    Bytes names;
    for (const std::string& name : spec.dns_names) {
      if (name.size() >= 128) Die("dns name too long", 0);
      names.push_back(0x82);
      names.push_back(static_cast<uint8_t>(name.size()));
      names.insert(names.end(), name.begin(), name.end());
    }
    if (names.size() >= 128) Die("dns names too long", 0);
    names.insert(names.begin(), {0x30, static_cast<uint8_t>(names.size())});
    Check(mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                              MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, names.data(),
                                              names.size()),
          "set_extension subjectAltName");
  }
  Check(mbedtls_x509write_crt_set_subject_key_identifier(crt), "set_subject_key_identifier");
  Check(mbedtls_x509write_crt_set_authority_key_identifier(crt), "set_authority_key_identifier");
  std::vector<unsigned char> buffer(4096);
  const int length = mbedtls_x509write_crt_der(crt, buffer.data(), buffer.size(), TestRng::Fill,
                                               &issuer_key.impl_->rng);
  if (length <= 0) Die("x509write_crt_der", length);
  Cert cert;
  // mbedtls_x509write_crt_der writes at the end of the buffer.
  cert.der.assign(buffer.end() - length, buffer.end());
  cert.pem = DerToPem(cert.der);
  return cert;
}

Cert SelfSignedCert(const CertSpec& spec, const Key& key) { return IssueCert(spec, key, spec.subject, key); }

std::string MakeBundle(std::string payload, const Key& key, std::vector<Bytes> chain) {
  provisioning::Bundle bundle;
  bundle.signature = key.SignDigestDer(provisioning::BundleMessageDigest(payload));
  bundle.payload = std::move(payload);
  bundle.certificates = std::move(chain);
  return provisioning::SerializeBundle(bundle);
}

namespace {

Key MakeKey(std::string_view seed, std::string_view role) {
  if (seed.empty()) return Key::Generate();
  return Key::FromSeed(std::string(seed) + "/" + std::string(role));
}

}  // namespace

TestPki::TestPki(std::string_view seed)
    : root_key(MakeKey(seed, "root")),
      root(SelfSignedCert(CaSpec(kRootSubject), root_key)),
      signer_key(MakeKey(seed, "signer")),
      signer(IssueCert(SignerSpec(kSignerSubject), signer_key, kRootSubject, root_key)) {}

std::string TestPki::SignedBundle(std::string payload) const {
  return MakeBundle(std::move(payload), signer_key, {signer.der});
}

std::time_t Utc(int year, int month, int day, int hour, int minute, int second) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return ::timegm(&tm);
}

}  // namespace tkms::test_pki
