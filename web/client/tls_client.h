// The UE's TLS client: the transport under HttpClient for https:// KMS URLs.
//
// Why: TS 33.328 Annex A carries the Ticket Request and Ticket Resolve
// exchanges over HTTP; the KMS's Ua listener also offers HTTP over TLS
// (RFC 2818), so that the UE authenticates the KMS before it sends anything
// and tickets are not visible on the wire. That listener speaks the tkms
// TLS profile (firmware/pki/tls_policy.h: TLS 1.2 only, RFC 5246; ECDHE with
// AEAD suites; no renegotiation); this client applies the same profile to its
// configuration, so a server outside it (TLS 1.0/1.1, CBC or static-RSA
// suites) is refused during the handshake.
//
// Behaviour:
//   - the server certificate must chain to a CA of the --cacert file (PEM,
//     one or more certificates; mbedTLS verifies, MBEDTLS_SSL_VERIFY_REQUIRED)
//     and carry the URL's host name (mbedtls_ssl_set_hostname: a dNSName of
//     subjectAltName, or the CN without one; RFC 6125 §6.4). There is no
//     "insecure" mode. mbedTLS 2.28 does not match iPAddress entries of
//     subjectAltName, so an https URL must name the KMS by a DNS name in its
//     certificate (https://localhost:PORT on loopback); HttpClient refuses
//     IP literals for https (http_client.h);
//   - optionally a client certificate (PEM, leaf first, chain allowed) and
//     its private key (PEM or DER, unencrypted) for mutual TLS. The UE's own
//     key is the one private key a UE keeps in a file: the file must be a
//     regular file without group or other permissions (mode 0600, as for the
//     PSK files of firmware/base/secret_files.h), and it must match the
//     certificate; its bytes are wiped after parsing;
//   - random numbers from a CTR-DRBG seeded from the OS (pki::CtrDrbg),
//     one per TlsClientConfig;
//   - sockets stay non-blocking: every handshake, read and write waits with
//     poll(2) until the caller's deadline (HttpClient's per-request timeout);
//   - session tickets are off and sessions are not resumed across
//     connections: HttpClient keeps one connection (and so one TLS session)
//     alive across requests instead;
//   - Close sends close_notify (RFC 5246 §7.2.1) on a healthy session. A
//     server that closes without close_notify is reported as a truncation
//     (RFC 2818 §2.2.2) unless the response was already complete.
//
// Errors name the cause: kPermissionDenied for a server certificate that is
// not trusted, has the wrong host name or is expired, and for a key file
// with group/other access; kUnavailable for timeouts, a handshake the server
// aborted (with its alert) or that failed locally (mbedTLS's reason, e.g. a
// protocol version outside TLS 1.2); kInvalidArgument / kNotFound for files
// that do not parse or cannot be opened. No key bytes are ever in a message.
// Not thread-safe: one TlsClientConfig (and its sessions) per thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "firmware/base/status.h"

namespace tkms::web::client {

// Files of the UE's TLS trust and identity (tkms-ue / tkms-bench:
// --cacert, --cert, --key).
struct TlsClientOptions {
  std::string ca_file;    // PEM, one or more CA certificates; required for https
  std::string cert_file;  // PEM client certificate (leaf first); needs key_file
  std::string key_file;   // PEM or DER private key of cert_file, mode 0600, unencrypted

  bool empty() const { return ca_file.empty() && cert_file.empty() && key_file.empty(); }
};

// Largest --cacert / --cert file and how many certificates each may hold.
inline constexpr size_t kMaxTlsCaCertificates = 64;
inline constexpr size_t kMaxTlsClientChain = 8;

// The loaded files and the mbedTLS client configuration built from them
// (tkms TLS profile, CA chain, own certificate and key, DRBG). Sessions keep
// it alive (shared_ptr): mbedTLS keeps pointers into it.
class TlsClientConfig {
 public:
  // kInvalidArgument if ca_file is empty or cert_file / key_file come alone.
  static Result<std::shared_ptr<TlsClientConfig>> Load(const TlsClientOptions& options);
  ~TlsClientConfig();
  TlsClientConfig(const TlsClientConfig&) = delete;
  TlsClientConfig& operator=(const TlsClientConfig&) = delete;

  bool has_client_certificate() const;
  const TlsClientOptions& options() const;

 private:
  friend class TlsSession;
  struct State;
  explicit TlsClientConfig(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// One TLS connection over a connected, non-blocking stream socket that the
// caller owns (and closes after the session).
class TlsSession {
 public:
  using Clock = std::chrono::steady_clock;

  // Runs the handshake until `deadline`; the server certificate is verified
  // against the CA chain and `server_name`. `peer` ("localhost:8443") only
  // names the server in messages.
  static Result<TlsSession> Handshake(std::shared_ptr<TlsClientConfig> config, int fd,
                                      const std::string& server_name, const std::string& peer,
                                      Clock::time_point deadline);
  ~TlsSession();
  TlsSession(TlsSession&& other) noexcept;
  TlsSession& operator=(TlsSession&& other) noexcept;
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Writes all of `data` or fails.
  Status Write(std::string_view data, Clock::time_point deadline);
  // Reads at most into.size() bytes of application data; 0 once the server
  // sent close_notify. A close without close_notify is kUnavailable.
  Result<size_t> Read(std::span<uint8_t> into, Clock::time_point deadline);
  // Decrypted bytes received but not yet read (an idle connection with
  // some is not reusable).
  size_t buffered() const;
  // Sends close_notify if the session is healthy, without waiting.
  void CloseNotify();

  std::string version() const;       // "TLSv1.2"
  std::string cipher_suite() const;  // "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384"

 private:
  struct State;
  explicit TlsSession(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace tkms::web::client
