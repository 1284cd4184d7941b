#include "firmware/tkmsd/listener_tls.h"

#include <array>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <utility>
#include <vector>

#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>

#include "firmware/base/file_reader.h"
#include "firmware/base/log.h"
#include "firmware/pki/contexts.h"
#include "firmware/pki/mbedtls_error.h"
#include "firmware/pki/pk.h"
#include "firmware/pki/x509.h"
#include "hal/entropy.h"

namespace tkms::tkmsd {
namespace {

constexpr size_t kMaxPemFileBytes = 256 * 1024;
constexpr size_t kMaxChainCertificates = 8;
constexpr size_t kMaxCaCertificates = 64;
constexpr const char* kDevCaKeyLabel = "tkms-tls-dev-ca";

Result<std::vector<pki::Bytes>> ReadCertificates(const std::string& path, const std::string& field,
                                                 size_t max_certificates) {
  auto text = ReadRegularFile(path, kMaxPemFileBytes, field + " " + path);
  if (!text.ok()) return text.error();
  pki::X509Chain chain;
  TKMS_RETURN_IF_ERROR(chain.AddPem(*text, field + " " + path, kMaxPemFileBytes, max_certificates));
  if (chain.empty()) return InvalidArgument(field + " " + path + ": no CERTIFICATE block");
  std::vector<pki::Bytes> der;
  for (pki::CertificateRef cert : chain) der.emplace_back(cert.der().begin(), cert.der().end());
  return der;
}

Result<std::shared_ptr<const web::TlsCredentials>> Build(const provisioning::KmsConfig& config,
                                                         keystore::Keystore& keystore, bool admin,
                                                         TokenFailureListener on_token_failure) {
  const provisioning::TlsConfig& tls = config.tls;
  web::TlsServerSettings settings;
  auto chain = ReadCertificates(tls.certificate_chain_file, "tls.certificate_chain_file", kMaxChainCertificates);
  if (!chain.ok()) return chain.error();
  settings.chain_der = std::move(*chain);
  auto key = TokenTlsKey(tls, keystore, std::move(on_token_failure));
  if (!key.ok()) return key.error();
  settings.key = std::move(*key);
  if (admin) {
    settings.client_auth.required = true;
    if (!tls.admin_client_ca_file.empty()) {
      auto cas = ReadCertificates(tls.admin_client_ca_file, "tls.admin_client_ca_file", kMaxCaCertificates);
      if (!cas.ok()) return cas.error();
      settings.client_auth.trust_anchors_der = std::move(*cas);
    }
    for (const std::string& file : tls.admin_client_certificate_files) {
      auto pinned = ReadCertificates(file, "tls.admin_client_certificate_files", 1);
      if (!pinned.ok()) return pinned.error();
      settings.client_auth.pinned.push_back(web::FingerprintOf(pinned->front()));
    }
  }
  auto built = web::TlsCredentials::Build(std::move(settings));
  if (!built.ok()) {
    return Status(built.error().code(), "tls.certificate_chain_file " + tls.certificate_chain_file + " with TLS key '" +
                                            tls.key_label + "': " + built.error().message());
  }
  return built;
}

// --- the development CA ---------------------------------------------------------

std::string UtcTime(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
  return buf;
}

// subjectAltName (RFC 5280 §4.2.1.6): dNSName "localhost", iPAddress 127.0.0.1.
pki::Bytes LocalhostSubjectAltName() {
  const std::string_view dns = "localhost";
  pki::Bytes names;
  names.push_back(0x82);  // [2] dNSName
  names.push_back(static_cast<uint8_t>(dns.size()));
  names.insert(names.end(), dns.begin(), dns.end());
  const uint8_t ip[] = {0x87, 0x04, 127, 0, 0, 1};  // [7] iPAddress
  names.insert(names.end(), std::begin(ip), std::end(ip));
  pki::Bytes seq = {0x30, static_cast<uint8_t>(names.size())};
  seq.insert(seq.end(), names.begin(), names.end());
  return seq;
}

hal::OsEntropy g_entropy;  // serial numbers and certificate signatures (stateless)

struct Issue {
  std::string subject;
  pki::PkContext* subject_key;  // public
  std::string issuer;
  pki::PkContext* issuer_key;   // signs (RSA-alt, in the token)
  bool ca;
  std::time_t days;
};

Result<std::string> IssueCertificate(const Issue& issue) {
  pki::CertificateWriter writer;
  mbedtls_x509write_cert* crt = writer.native();
  mbedtls_x509write_crt_set_version(crt, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(crt, MBEDTLS_MD_SHA256);
  std::array<unsigned char, 16> serial_bytes{};
  TKMS_RETURN_IF_ERROR(g_entropy.Random(serial_bytes));
  serial_bytes[0] &= 0x7f;
  pki::Mpi serial;
  int rc = mbedtls_mpi_read_binary(serial.native(), serial_bytes.data(), serial_bytes.size());
  if (rc == 0) rc = mbedtls_x509write_crt_set_serial(crt, serial.native());
  const std::time_t now = std::time(nullptr);
  if (rc == 0) {
    rc = mbedtls_x509write_crt_set_validity(crt, UtcTime(now - 3600).c_str(), UtcTime(now + issue.days * 86400).c_str());
  }
  if (rc == 0) rc = mbedtls_x509write_crt_set_subject_name(crt, issue.subject.c_str());
  if (rc == 0) rc = mbedtls_x509write_crt_set_issuer_name(crt, issue.issuer.c_str());
  mbedtls_x509write_crt_set_subject_key(crt, issue.subject_key->native());
  mbedtls_x509write_crt_set_issuer_key(crt, issue.issuer_key->native());
  if (rc == 0) rc = mbedtls_x509write_crt_set_basic_constraints(crt, issue.ca ? 1 : 0, issue.ca ? 0 : -1);
  if (rc == 0) {
    rc = mbedtls_x509write_crt_set_key_usage(
        crt, issue.ca ? (MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN) : MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
  }
  if (rc == 0 && !issue.ca) {
    const pki::Bytes san = LocalhostSubjectAltName();
    rc = mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                             MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, san.data(), san.size());
  }
  if (rc != 0) return Internal("development certificate: " + pki::MbedtlsError(rc));
  std::vector<unsigned char> pem(8192);
  rc = mbedtls_x509write_crt_pem(crt, pem.data(), pem.size(), pki::EntropyRandom, &g_entropy);
  if (rc != 0) return Internal("development certificate: " + pki::MbedtlsError(rc));
  return std::string(reinterpret_cast<const char*>(pem.data()));
}

Result<pki::PkContext> PublicKeyOf(keystore::Keystore& keystore, const std::string& label) {
  auto pub = keystore.TlsKeyPublic(label);
  if (!pub.ok()) return pub.error();
  return pki::PkContext::RsaPublicKey(pub->modulus, pub->exponent);
}

Status EnsureTlsKey(keystore::Keystore& keystore, const std::string& label) {
  if (keystore.TlsKeyPublic(label).ok()) return Status::Ok();
  auto created = keystore.CreateTlsKey(label);
  if (!created.ok()) return Status(created.error().code(), "creating TLS key " + label + ": " + created.error().message());
  LogLine(LogLevel::kInfo, "dev_tls_key_created").Add("label", label);
  return Status::Ok();
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return FailedPrecondition("cannot write " + path);
  return Status::Ok();
}

}  // namespace

Result<pki::PkContext> TokenTlsKey(const provisioning::TlsConfig& tls, keystore::Keystore& keystore,
                                   TokenFailureListener on_token_failure) {
  auto signer = keystore.TlsSigner(tls.key_label, std::move(on_token_failure));
  if (!signer.ok()) {
    return Status(signer.error().code(), "TLS key '" + tls.key_label + "': " + signer.error().message() +
                                             " (create it with tkmsctl tls key create, docs/tls.md)");
  }
  return pki::PkContext::RsaAlt(std::move(*signer));
}

Result<std::vector<pki::Bytes>> ZkCertificateChain(const provisioning::KmsConfig& config) {
  if (!config.kms_certificate_chain.empty()) {
    pki::X509Chain chain;
    TKMS_RETURN_IF_ERROR(chain.AddPem(config.kms_certificate_chain, "kms_certificate_chain",
                                      provisioning::kMaxCertificatePemBytes * provisioning::kMaxKmsCertificateChain,
                                      provisioning::kMaxKmsCertificateChain));
    std::vector<pki::Bytes> der;
    for (pki::CertificateRef cert : chain) der.emplace_back(cert.der().begin(), cert.der().end());
    return der;
  }
  if (config.tls.certificate_chain_file.empty()) return std::vector<pki::Bytes>{};
  return ReadCertificates(config.tls.certificate_chain_file, "tls.certificate_chain_file", kMaxChainCertificates);
}

Result<ListenerTls> PrepareListenerTls(const provisioning::KmsConfig& config, keystore::Keystore& keystore,
                                       TokenFailureListener on_token_failure) {
  ListenerTls tls;
  if (!config.listen.ua_tls.empty()) {
    auto creds = Build(config, keystore, /*admin=*/false, on_token_failure);
    if (!creds.ok()) return creds.error();
    tls.ua = std::make_shared<web::TlsServer>(std::move(*creds));
  }
  if (config.tls.admin_requires_client_certificate()) {
    auto creds = Build(config, keystore, /*admin=*/true, on_token_failure);
    if (!creds.ok()) return creds.error();
    tls.admin = std::make_shared<web::TlsServer>(std::move(*creds));
  }
  return tls;
}

Status RefreshListenerTls(const provisioning::KmsConfig& config, keystore::Keystore& keystore,
                          TokenFailureListener on_token_failure, ListenerTls& tls) {
  std::shared_ptr<const web::TlsCredentials> ua;
  std::shared_ptr<const web::TlsCredentials> admin;
  if (tls.ua) {
    auto creds = Build(config, keystore, false, on_token_failure);
    if (!creds.ok()) return creds.error();
    ua = std::move(*creds);
  }
  if (tls.admin) {
    auto creds = Build(config, keystore, true, on_token_failure);
    if (!creds.ok()) return creds.error();
    admin = std::move(*creds);
  }
  // Both built: swap together.
  if (ua) tls.ua->Replace(std::move(ua));
  if (admin) tls.admin->Replace(std::move(admin));
  return Status::Ok();
}

Status PrepareDevTls(keystore::Keystore& keystore, const std::string& state_dir, provisioning::KmsConfig& config) {
  const std::string server_label = config.tls.key_label;
  TKMS_RETURN_IF_ERROR(EnsureTlsKey(keystore, server_label));
  const std::string ca_file = state_dir + "/dev-ca.pem";
  const std::string chain_file = state_dir + "/tls-chain.pem";
  const std::string ca_subject = "CN=tkms development CA,O=tkms --dev";

  const bool ca_key_existed = keystore.TlsKeyPublic(kDevCaKeyLabel).ok();
  TKMS_RETURN_IF_ERROR(EnsureTlsKey(keystore, kDevCaKeyLabel));
  auto ca_signer = keystore.TlsSigner(kDevCaKeyLabel);
  if (!ca_signer.ok()) return ca_signer.error();
  auto ca_key = pki::PkContext::RsaAlt(std::move(*ca_signer));
  if (!ca_key.ok()) return ca_key.error();
  auto ca_public = PublicKeyOf(keystore, kDevCaKeyLabel);
  if (!ca_public.ok()) return ca_public.error();

  std::string ca_pem;
  if (ca_key_existed && std::filesystem::exists(ca_file)) {
    auto text = ReadRegularFile(ca_file, kMaxPemFileBytes, "development CA " + ca_file);
    if (!text.ok()) return text.error();
    ca_pem = std::move(*text);
  } else {
    auto issued = IssueCertificate(Issue{ca_subject, &*ca_public, ca_subject, &*ca_key, true, 3650});
    if (!issued.ok()) return issued.error();
    ca_pem = std::move(*issued);
    TKMS_RETURN_IF_ERROR(WriteText(ca_file, ca_pem));
  }
  auto server_public = PublicKeyOf(keystore, server_label);
  if (!server_public.ok()) return server_public.error();
  auto server_pem =
      IssueCertificate(Issue{"CN=localhost,O=tkms --dev", &*server_public, ca_subject, &*ca_key, false, 30});
  if (!server_pem.ok()) return server_pem.error();
  TKMS_RETURN_IF_ERROR(WriteText(chain_file, *server_pem + ca_pem));
  config.tls.certificate_chain_file = chain_file;
  LogLine(LogLevel::kInfo, "dev_tls_ready").Add("ca_file", ca_file).Add("chain_file", chain_file);
  return Status::Ok();
}

}  // namespace tkms::tkmsd
