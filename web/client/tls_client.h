// tkms's TLS client: the transport under HttpClient for https:// URLs (the
// UE tools) and for the KMS's own calls to peer KMSs over Zk (firmware/zk).
//
// Why: TS 33.328 Annex A carries the Ticket Request and Ticket Resolve
// exchanges over HTTP; the KMS's Ua listener also offers HTTP over TLS
// (RFC 2818), so that the UE authenticates the KMS before it sends anything
// and tickets are not visible on the wire. KMS-to-KMS resolution (TS 33.328
// B.2.2.3, RFC 6043 §10) runs over mutually authenticated TLS (RFC 5246
// §7.4.4, §7.4.6). Every tkms listener speaks the tkms TLS profile
// (firmware/pki/tls_policy.h: TLS 1.2 only, RFC 5246; ECDHE with AEAD
// suites; no renegotiation); this client applies the same profile to its
// configuration, so a server outside it (TLS 1.0/1.1, CBC or static-RSA
// suites) is refused during the handshake.
//
// Two forms of configuration:
//   - from files (TlsClientOptions, TlsClientConfig::Load; tkms-ue and
//     tkms-bench --cacert/--cert/--key): the server certificate must chain
//     to a CA of the --cacert file (PEM, one or more certificates; mbedTLS
//     verifies, MBEDTLS_SSL_VERIFY_REQUIRED) and carry the URL's host name
//     (mbedtls_ssl_set_hostname: a dNSName of subjectAltName, or the CN
//     without one; RFC 6125 §6.4). There is no "insecure" mode. mbedTLS 2.28
//     does not match iPAddress entries of subjectAltName, so an https URL
//     must name the KMS by a DNS name in its certificate
//     (https://localhost:PORT on loopback); HttpClient refuses IP literals
//     for https (http_client.h). Optionally a client certificate (PEM, leaf
//     first, chain allowed) and its private key (PEM or DER, unencrypted)
//     for mutual TLS. The UE's own key is the one private key a UE keeps in
//     a file: the file must be a regular file without group or other
//     permissions (mode 0600, as for the PSK files of
//     firmware/base/secret_files.h), and it must match the certificate; its
//     bytes are wiped after parsing. Random numbers from a CTR-DRBG seeded
//     from the OS (pki::CtrDrbg), one per TlsClientConfig;
//   - in memory (TlsClientSettings, TlsClientConfig::Create; tkmsd's Zk
//     client): the own certificate chain as DER and its private key as a
//     pki::PkContext (in tkmsd an RSA-alt context that signs in the token:
//     no key bytes here), checked to form a pair. The server is judged by a
//     ServerVerifier the caller gives per session (one configuration serves
//     every peer, each with its own trust): mbedTLS runs with authmode
//     OPTIONAL and no CA, records its flags, and the verifier decides after
//     the handshake (the server has then proved it holds the leaf's key);
//     no host name is checked or sent. Random numbers from hal::OsEntropy
//     (stateless): one configuration may serve sessions on many threads.
//
// Common behaviour:
//   - sockets stay non-blocking: every handshake, read and write waits with
//     poll(2) until the caller's deadline (HttpClient's deadlines);
//   - session tickets are off and sessions are not resumed across
//     connections: HttpClient keeps one connection (and so one TLS session)
//     alive across requests instead;
//   - Close sends close_notify (RFC 5246 §7.2.1) on a healthy session. A
//     server that closes without close_notify is reported as a truncation
//     (RFC 2818 §2.2.2) unless the response was already complete.
//
// Errors name the cause: kPermissionDenied for a server certificate that is
// not trusted, has the wrong host name or is expired, or that the verifier
// refused, and for a key file with group/other access; kUnavailable for
// timeouts, a handshake the server aborted (with its alert) or that failed
// locally (mbedTLS's reason, e.g. a protocol version outside TLS 1.2);
// kInvalidArgument / kNotFound for files or settings that do not parse or
// cannot be opened. No key bytes are ever in a message.
// Thread-safety: a file-based TlsClientConfig (its DRBG) and every
// TlsSession belong to one thread at a time; an in-memory TlsClientConfig
// may be shared by sessions on any number of threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <mbedtls/x509_crt.h>

#include "firmware/base/status.h"
#include "firmware/pki/pk.h"

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

// The in-memory form (the Zk client): the own identity without files.
struct TlsClientSettings {
  // The own certificate first, then intermediates (at most
  // kMaxTlsClientChain); empty: no client certificate.
  std::vector<std::vector<uint8_t>> chain_der;
  // The private key of chain_der[0] (token-backed RSA-alt in tkmsd).
  pki::PkContext key;
};

// Decides whether the server of one session is acceptable, instead of a CA
// file and a host name (in-memory configurations only).
class ServerVerifier {
 public:
  virtual ~ServerVerifier() = default;
  // Called once per handshake, after the server proved it holds the leaf's
  // key. `chain`: the server's certificates as sent, leaf first (parsed by
  // mbedTLS; at most 10); `flags`: mbedTLS's verification of that chain with
  // no trust anchor, so at least MBEDTLS_X509_BADCERT_NOT_TRUSTED, plus
  // every other flag (expiry, key usage, extended key usage serverAuth).
  // Ok accepts; an error refuses (its message, log-safe, becomes part of
  // the handshake's kPermissionDenied). Must not throw.
  virtual Status Verify(const mbedtls_x509_crt& chain, uint32_t flags) const = 0;
};

// The mbedTLS client configuration (tkms TLS profile, trust, own
// certificate and key, random numbers). Sessions keep it alive (shared_ptr):
// mbedTLS keeps pointers into it.
class TlsClientConfig {
 public:
  // From files. kInvalidArgument if ca_file is empty or cert_file / key_file
  // come alone.
  static Result<std::shared_ptr<TlsClientConfig>> Load(const TlsClientOptions& options);
  // In memory. kInvalidArgument if the chain does not parse, is longer than
  // kMaxTlsClientChain, or comes without a key, or if the key is not the
  // leaf's; kUnavailable if the key cannot sign (the token).
  static Result<std::shared_ptr<TlsClientConfig>> Create(TlsClientSettings settings);
  ~TlsClientConfig();
  TlsClientConfig(const TlsClientConfig&) = delete;
  TlsClientConfig& operator=(const TlsClientConfig&) = delete;

  bool has_client_certificate() const;
  const TlsClientOptions& options() const;  // empty for the in-memory form
  // True for the in-memory form: every session needs a ServerVerifier.
  bool verifier_required() const;

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

  // Runs the handshake until `deadline`. A file-based configuration
  // verifies the server certificate against its CA chain and `server_name`
  // (`verifier` must be null); an in-memory one needs `verifier`, which
  // decides alone (`server_name` is not used). `peer` ("localhost:8443")
  // only names the server in messages.
  static Result<TlsSession> Handshake(std::shared_ptr<TlsClientConfig> config, int fd,
                                      const std::string& server_name, const std::string& peer,
                                      Clock::time_point deadline,
                                      std::shared_ptr<const ServerVerifier> verifier = nullptr);
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
