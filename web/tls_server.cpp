#include "web/tls_server.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <mbedtls/asn1.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/x509.h>

#include "firmware/base/secret_bytes.h"
#include "firmware/pki/contexts.h"
#include "firmware/pki/mbedtls_error.h"
#include "firmware/pki/tls_policy.h"
#include "hal/entropy.h"

namespace tkms::web {
namespace {

constexpr size_t kMaxChainCertificates = 8;

// Handshake randomness from the kernel (hal::OsEntropy: getrandom(2),
// stateless), so credentials shared by several listener threads need no
// DRBG lock.
hal::OsEntropy g_entropy;

// mbedTLS BIO callbacks over a non-blocking socket. MSG_NOSIGNAL: a peer that
// went away must not raise SIGPIPE.
int SendCallback(void* ctx, const unsigned char* buf, size_t len) {
  const int fd = *static_cast<int*>(ctx);
  while (true) {
    const ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return MBEDTLS_ERR_SSL_WANT_WRITE;
    return MBEDTLS_ERR_NET_SEND_FAILED;
  }
}

int RecvCallback(void* ctx, unsigned char* buf, size_t len) {
  const int fd = *static_cast<int*>(ctx);
  while (true) {
    const ssize_t n = recv(fd, buf, len, 0);
    if (n >= 0) return static_cast<int>(n);  // 0: EOF, which mbedTLS reports as CONN_EOF
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return MBEDTLS_ERR_SSL_WANT_READ;
    return MBEDTLS_ERR_NET_RECV_FAILED;
  }
}

}  // namespace

CertificateFingerprint FingerprintOf(ByteSpan der) {
  pki::Sha256 sha;
  sha.Update(der);
  return sha.Finish();
}

PeerIdentity IdentityOf(const mbedtls_x509_crt& certificate) {
  PeerIdentity identity;
  char dn[1024];
  const int n = mbedtls_x509_dn_gets(dn, sizeof dn, &certificate.subject);
  identity.subject = n > 0 ? std::string(dn, static_cast<size_t>(n)) : std::string();
  for (const mbedtls_x509_sequence* san = &certificate.subject_alt_names; san != nullptr && san->buf.p != nullptr;
       san = san->next) {
    if (san->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME)) {
      identity.subject_alt_names.push_back(
          "DNS:" + std::string(reinterpret_cast<const char*>(san->buf.p), san->buf.len));
    }
  }
  identity.certificate_sha256 = FingerprintOf(ByteSpan(certificate.raw.p, certificate.raw.len));
  identity.certificate_der.assign(certificate.raw.p, certificate.raw.p + certificate.raw.len);
  return identity;
}

Result<std::shared_ptr<const TlsCredentials>> TlsCredentials::Build(TlsServerSettings settings) {
  if (settings.chain_der.empty()) return InvalidArgument("TLS: no server certificate");
  if (!settings.key.has_key()) return InvalidArgument("TLS: no server key");
  std::shared_ptr<TlsCredentials> creds(new TlsCredentials());
  for (size_t i = 0; i < settings.chain_der.size() && i < kMaxChainCertificates + 1; ++i) {
    if (i == kMaxChainCertificates) return InvalidArgument("TLS: certificate chain longer than 8");
    TKMS_RETURN_IF_ERROR(creds->chain_.AddDer(settings.chain_der[i], "TLS certificate chain"));
  }
  // The leaf must carry the public half of the key: sign a test digest with
  // the key (in the token, for an RSA-alt key) and verify it with the leaf.
  // (mbedtls_pk_check_pair cannot check RSA-alt keys: it signs with MD_NONE.)
  mbedtls_x509_crt* leaf = creds->chain_.native();
  std::array<uint8_t, 32> digest{};
  TKMS_RETURN_IF_ERROR(g_entropy.Random(digest));
  std::vector<unsigned char> signature(MBEDTLS_PK_SIGNATURE_MAX_SIZE);
  size_t signature_length = 0;
  int check_rc = mbedtls_pk_sign(settings.key.native(), MBEDTLS_MD_SHA256, digest.data(), digest.size(), signature.data(),
                           &signature_length, pki::EntropyRandom, &g_entropy);
  if (check_rc == 0) {
    check_rc = mbedtls_pk_verify(&leaf->pk, MBEDTLS_MD_SHA256, digest.data(), digest.size(), signature.data(),
                           signature_length);
  }
  if (check_rc != 0) {
    return InvalidArgument("TLS: the server key does not match the certificate " +
                           pki::CertificateRef(*leaf).subject() + " (" + pki::MbedtlsError(check_rc) + ")");
  }
  creds->subject_ = pki::CertificateRef(*leaf).subject();
  creds->client_auth_ = settings.client_auth;
  if (settings.client_auth.required && settings.client_auth.trust_anchors_der.empty() &&
      settings.client_auth.pinned.empty()) {
    return InvalidArgument("TLS: client certificates required but no CA and no pinned certificate configured");
  }
  for (const pki::Bytes& anchor : settings.client_auth.trust_anchors_der) {
    TKMS_RETURN_IF_ERROR(creds->anchors_.AddDer(anchor, "TLS client CA"));
  }
  creds->key_ = std::move(settings.key);

  mbedtls_ssl_config* conf = &creds->conf_;
  mbedtls_ssl_config_init(conf);
  creds->conf_initialised_ = true;
  if (int rc = mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT);
      rc != 0) {
    return Internal("TLS: " + pki::MbedtlsError(rc));
  }
  pki::ApplyTlsPolicy(*conf);
  mbedtls_ssl_conf_rng(conf, pki::EntropyRandom, &g_entropy);
  if (int rc = mbedtls_ssl_conf_own_cert(conf, creds->chain_.native(), creds->key_.native()); rc != 0) {
    return Internal("TLS: " + pki::MbedtlsError(rc));
  }
  if (creds->client_auth_.required) {
    // OPTIONAL: mbedTLS records its verdict; the connection's verify
    // callback decides during the handshake (TlsConnection::Decide), and
    // AcceptClientCertificate again after it.
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
    mbedtls_ssl_conf_ca_chain(conf, creds->anchors_.empty() ? nullptr : creds->anchors_.native(), nullptr);
  } else {
    mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_NONE);
  }
  return std::shared_ptr<const TlsCredentials>(std::move(creds));
}

TlsCredentials::~TlsCredentials() {
  if (conf_initialised_) mbedtls_ssl_config_free(&conf_);
}

std::shared_ptr<const TlsCredentials> TlsServer::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void TlsServer::Replace(std::shared_ptr<const TlsCredentials> credentials) {
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(credentials);
}

TlsConnection::TlsConnection(int fd, std::shared_ptr<const TlsCredentials> credentials)
    : fd_(fd), credentials_(std::move(credentials)) {
  mbedtls_ssl_init(&ssl_);
  const int rc = mbedtls_ssl_setup(&ssl_, credentials_->config());
  if (rc != 0) {
    error_ = "TLS setup: " + pki::MbedtlsError(rc);
    return;
  }
  mbedtls_ssl_set_bio(&ssl_, &fd_, SendCallback, RecvCallback, nullptr);
  if (credentials_->client_auth().required) mbedtls_ssl_set_verify(&ssl_, VerifyCallback, this);
  setup_ok_ = true;
}

// Called by mbedTLS for each certificate of the client's chain, the root end
// first and the client's own certificate (depth 0) last, while it processes
// the client's Certificate message. The decision is made at depth 0 with the
// flags of the whole chain: a refused certificate aborts the handshake here,
// before the server's Finished, so the client sees a failed handshake (a
// bad_certificate alert), not a session that is closed afterwards.
int TlsConnection::VerifyCallback(void* ctx, mbedtls_x509_crt* crt, int depth, uint32_t* flags) {
  auto* self = static_cast<TlsConnection*>(ctx);
  self->chain_flags_ |= *flags;
  if (depth != 0) return 0;
  const uint32_t all = self->chain_flags_;
  self->chain_flags_ = 0;
  std::string why;
  if (self->Decide(*crt, all, &why)) return 0;
  self->error_ = why;
  return MBEDTLS_ERR_X509_FATAL_ERROR;
}

bool TlsConnection::Decide(const mbedtls_x509_crt& certificate, uint32_t flags, std::string* why) const {
  if (flags == 0) return true;
  const CertificateFingerprint fingerprint = FingerprintOf(ByteSpan(certificate.raw.p, certificate.raw.len));
  bool is_pinned = false;
  for (const CertificateFingerprint& pin : credentials_->client_auth().pinned) {
    // Fingerprints are public; equality of hashes needs no constant time,
    // but costs nothing either.
    is_pinned |= ConstantTimeEquals(ByteSpan(pin.data(), pin.size()), ByteSpan(fingerprint.data(), fingerprint.size()));
  }
  if (is_pinned && (flags & ~static_cast<uint32_t>(MBEDTLS_X509_BADCERT_NOT_TRUSTED)) == 0) return true;
  char dn[512];
  const int n = mbedtls_x509_dn_gets(dn, sizeof dn, &certificate.subject);
  *why = "client certificate " + (n > 0 ? std::string(dn, static_cast<size_t>(n)) : std::string("?")) +
         " refused: " + (is_pinned ? "pinned but " : "") + pki::VerifyFlagsText(flags);
  return false;
}

TlsConnection::~TlsConnection() { mbedtls_ssl_free(&ssl_); }

IoResult TlsConnection::Map(int ret, std::string_view what) {
  if (ret == MBEDTLS_ERR_SSL_WANT_READ) return IoResult::kWantRead;
  if (ret == MBEDTLS_ERR_SSL_WANT_WRITE) return IoResult::kWantWrite;
  if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == MBEDTLS_ERR_SSL_CONN_EOF) return IoResult::kEof;
  error_ = std::string(what) + ": " + pki::MbedtlsError(ret);
  return IoResult::kError;
}

IoResult TlsConnection::Handshake() {
  if (!setup_ok_) return IoResult::kError;
  const int rc = mbedtls_ssl_handshake(&ssl_);
  if (rc != 0) {
    const IoResult r = Map(rc, "TLS handshake");
    if (r == IoResult::kEof) error_ = "TLS handshake: the client closed the connection";
    return r == IoResult::kEof ? IoResult::kError : r;
  }
  if (credentials_->client_auth().required && !AcceptClientCertificate()) {
    mbedtls_ssl_send_alert_message(&ssl_, MBEDTLS_SSL_ALERT_LEVEL_FATAL, MBEDTLS_SSL_ALERT_MSG_BAD_CERT);
    return IoResult::kError;
  }
  return IoResult::kDone;
}

bool TlsConnection::AcceptClientCertificate() {
  const mbedtls_x509_crt* peer = mbedtls_ssl_get_peer_cert(&ssl_);
  if (peer == nullptr) {
    error_ = "client certificate required, none sent";
    return false;
  }
  // The verify callback decided during the handshake; this is the same
  // decision on the session's final verdict, so no path skips it.
  const uint32_t flags = mbedtls_ssl_get_verify_result(&ssl_);
  if (!Decide(*peer, flags, &error_)) return false;
  identity_ = IdentityOf(*peer);
  return true;
}

IoResult TlsConnection::Read(char* buf, size_t cap, size_t* n) {
  const int rc = mbedtls_ssl_read(&ssl_, reinterpret_cast<unsigned char*>(buf), cap);
  if (rc > 0) {
    *n = static_cast<size_t>(rc);
    return IoResult::kDone;
  }
  if (rc == 0) return IoResult::kEof;
  return Map(rc, "TLS read");
}

IoResult TlsConnection::Write(const char* buf, size_t len, size_t* n) {
  const int rc = mbedtls_ssl_write(&ssl_, reinterpret_cast<const unsigned char*>(buf), len);
  if (rc >= 0) {
    *n = static_cast<size_t>(rc);
    return IoResult::kDone;
  }
  return Map(rc, "TLS write");
}

void TlsConnection::CloseNotify() {
  if (close_notify_sent_ || !setup_ok_) return;
  close_notify_sent_ = true;
  mbedtls_ssl_close_notify(&ssl_);  // best effort: a WANT_WRITE here is not retried
}

std::string TlsConnection::Describe() const {
  return std::string(mbedtls_ssl_get_version(&ssl_)) + " " + mbedtls_ssl_get_ciphersuite(&ssl_);
}

}  // namespace tkms::web
