// TLS termination for tkms's listeners, in tkms's own code on mbedTLS 2.28
// (the event listener, event_listener.cpp, drives it on non-blocking sockets).
//
// Why here and not in the HTTP library: CivetWeb's TLS is unusable on Debian
// 12 and cannot verify client certificates (docs/architecture.md, "The
// network edge"). Terminating TLS in the same process and the same
// connection object as the HTTP parser binds the peer's verified certificate
// to the bytes it sent: PeerIdentity is filled from the TLS session alone,
// never from anything a client writes, so no plaintext path can produce one.
//
// Profile: firmware/pki/tls_policy.h (TLS 1.2 only, ECDHE with AEAD suites,
// no renegotiation, no compression). The server's private key is a
// pki::PkContext, in production an RSA-alt context whose signatures are made
// inside the token (pki::RsaSigner); nothing here sees key bytes.
//
// Client certificates (RFC 5246 §7.4.4, §7.4.6): when ClientAuth::required,
// the server asks for a certificate and accepts the connection only if
//   - it chains to one of `trust_anchors` with no verification flag at all
//     (expiry, key usage, extended key usage clientAuth, signature), or
//   - its DER is exactly one of `pinned` (SHA-256 of the certificate) and
//     its only flag is "not trusted" (mbedTLS 2.28 will not accept a pinned
//     end-entity certificate that is not self-signed by itself, so the check
//     is ours; expiry and usage flags still refuse it).
// mbedTLS is run with authmode OPTIONAL so that this one decision is the
// only one; it is made in the verify callback while the client's
// Certificate is processed, so a refused client sees the handshake fail
// (bad_certificate) before the server's Finished, and once more after the
// handshake. mbedTLS's CertificateVerify check (the client proves it holds
// the key) is unconditional.
//
// Rotation: TlsCredentials is immutable; a TlsServer hands the current one to
// each new connection, which keeps it (shared_ptr) for its lifetime, so a new
// certificate or key applies to new handshakes without dropping connections.
//
// Thread-safety: TlsServer is thread-safe; a TlsConnection belongs to one
// thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <mbedtls/ssl.h>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/pki/pk.h"
#include "firmware/pki/x509.h"
#include "web/http_message.h"

namespace tkms::web {

using CertificateFingerprint = std::array<uint8_t, 32>;  // SHA-256 of the DER certificate

struct ClientAuth {
  bool required = false;
  // CA certificates a client certificate may chain to.
  std::vector<pki::Bytes> trust_anchors_der;
  // Exact client certificates accepted without a CA.
  std::vector<CertificateFingerprint> pinned;
};

struct TlsServerSettings {
  std::vector<pki::Bytes> chain_der;  // the server's certificate first, then intermediates
  pki::PkContext key;            // the private key of chain_der[0] (token-backed in tkmsd)
  ClientAuth client_auth;
};

// One configuration of the server side: certificate chain, key, client
// authentication, and the mbedTLS configuration built from them.
class TlsCredentials {
 public:
  // kInvalidArgument when the chain is empty or does not parse, the key does
  // not match the leaf's public key, or client auth is required with neither
  // anchors nor pins.
  static Result<std::shared_ptr<const TlsCredentials>> Build(TlsServerSettings settings);
  ~TlsCredentials();
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;

  const mbedtls_ssl_config* config() const { return &conf_; }
  const ClientAuth& client_auth() const { return client_auth_; }
  // "CN=kms.example.org, O=Example" of the server certificate, for logs.
  const std::string& subject() const { return subject_; }

 private:
  TlsCredentials() = default;
  mbedtls_ssl_config conf_{};
  bool conf_initialised_ = false;
  pki::X509Chain chain_;
  pki::X509Chain anchors_;
  pki::PkContext key_;
  ClientAuth client_auth_;
  std::string subject_;
};

// The rotation point a listener holds: the credentials new handshakes use.
class TlsServer {
 public:
  explicit TlsServer(std::shared_ptr<const TlsCredentials> credentials)
      : current_(std::move(credentials)) {}
  std::shared_ptr<const TlsCredentials> Current() const;
  void Replace(std::shared_ptr<const TlsCredentials> credentials);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const TlsCredentials> current_;
};

// What a non-blocking TLS (or plain) step did.
enum class IoResult : uint8_t { kDone, kWantRead, kWantWrite, kEof, kError };

// The server side of one TLS connection over a non-blocking socket.
class TlsConnection {
 public:
  TlsConnection(int fd, std::shared_ptr<const TlsCredentials> credentials);
  ~TlsConnection();
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  // Progresses the handshake; kDone once established and, if required, the
  // client's certificate accepted (identity() then set). kError: see error().
  IoResult Handshake();
  // Up to `cap` bytes of application data into `buf`; *n set on kDone.
  IoResult Read(char* buf, size_t cap, size_t* n);
  // Writes from `buf` (after kWantWrite, call again with the same bytes); *n on kDone.
  IoResult Write(const char* buf, size_t len, size_t* n);
  // Sends close_notify (best effort, once).
  void CloseNotify();

  const std::optional<PeerIdentity>& identity() const { return identity_; }
  // Why the handshake or a record failed: "client certificate not trusted
  // (flags 0x8: ...)", "peer sent alert", mbedTLS's reason.
  const std::string& error() const { return error_; }
  // The negotiated protocol version and cipher suite ("TLSv1.2", "TLS-ECDHE-RSA-...").
  std::string Describe() const;

 private:
  IoResult Map(int ret, std::string_view what);
  bool AcceptClientCertificate();
  static int VerifyCallback(void* ctx, mbedtls_x509_crt* crt, int depth, uint32_t* flags);
  // The client-certificate rule above; `why` set when refused.
  bool Decide(const mbedtls_x509_crt& certificate, uint32_t flags, std::string* why) const;

  int fd_;
  std::shared_ptr<const TlsCredentials> credentials_;
  mbedtls_ssl_context ssl_{};
  bool setup_ok_ = false;
  bool close_notify_sent_ = false;
  std::optional<PeerIdentity> identity_;
  std::string error_;
  uint32_t chain_flags_ = 0;  // the flags of the chain verified so far (VerifyCallback)
};

// The PeerIdentity of a certificate: subject DN, dNSName subject alternative
// names ("DNS:..."; mbedTLS 2.28 lists no other SAN types), SHA-256 of the DER.
PeerIdentity IdentityOf(const mbedtls_x509_crt& certificate);
CertificateFingerprint FingerprintOf(ByteSpan der);

}  // namespace tkms::web
