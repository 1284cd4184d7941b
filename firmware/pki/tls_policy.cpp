#include "firmware/pki/tls_policy.h"

#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/ssl_ciphersuites.h>

namespace tkms::pki {
namespace {

constexpr int kSuites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

constexpr int kSignatureHashes[] = {MBEDTLS_MD_SHA512, MBEDTLS_MD_SHA384, MBEDTLS_MD_SHA256,
                                    MBEDTLS_MD_NONE};

constexpr mbedtls_ecp_group_id kCurves[] = {MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
                                            MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_NONE};

}  // namespace

const int* TlsCipherSuites() { return kSuites; }

std::span<const int> TlsCipherSuiteList() { return {kSuites, sizeof kSuites / sizeof kSuites[0] - 1}; }

void ApplyTlsPolicy(mbedtls_ssl_config& conf) {
  mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_max_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_ciphersuites(&conf, kSuites);
  mbedtls_ssl_conf_sig_hashes(&conf, kSignatureHashes);
  mbedtls_ssl_conf_curves(&conf, kCurves);
  mbedtls_ssl_conf_renegotiation(&conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
  mbedtls_ssl_conf_legacy_renegotiation(&conf, MBEDTLS_SSL_LEGACY_NO_RENEGOTIATION);
}

}  // namespace tkms::pki
