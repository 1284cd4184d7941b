// The TLS profile every tkms endpoint uses, server (web/ listeners) and
// client (tools/ue, tkms-bench, the coming Zk client) alike.
//
// Why: one place decides what tkms speaks, so a server and its clients can
// never drift apart. mbedTLS 2.28 (Debian 12) has no TLS 1.3, so:
//   - TLS 1.2 only (RFC 5246); 1.0/1.1 are compiled into Debian's mbedTLS
//     and must be switched off per configuration (RFC 8996 deprecates them);
//   - AEAD cipher suites only, all with ephemeral ECDH (forward secrecy):
//     AES-GCM (RFC 5289) and ChaCha20-Poly1305 (RFC 7905), for ECDSA and RSA
//     certificates; no CBC, no static RSA key exchange, no PSK suites;
//   - no renegotiation (RFC 5746 issues; a client that asks is refused),
//     no compression (CRIME; Debian's mbedTLS has no zlib either);
//   - signatures over SHA-256/384/512 only; ECDHE groups x25519, P-256, P-384.
// Thread-safety: pure functions; ApplyTlsPolicy mutates only the config it
// is given.
#pragma once

#include <mbedtls/ssl.h>

#include <span>

namespace tkms::pki {

// The cipher suites, in preference order, zero-terminated for
// mbedtls_ssl_conf_ciphersuites (the array is static).
const int* TlsCipherSuites();
// The same list without the terminating 0, e.g. for tests and docs.
std::span<const int> TlsCipherSuiteList();

// Sets version bounds (1.2..1.2), cipher suites, signature hashes, curves,
// renegotiation off and the safe-renegotiation check on `conf` (server or
// client). Call after mbedtls_ssl_config_defaults.
void ApplyTlsPolicy(mbedtls_ssl_config& conf);

}  // namespace tkms::pki
