// tkms's TLS client: see tls_client.h.
#include "web/client/tls_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "firmware/base/printable.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/pki/contexts.h"
#include "firmware/pki/mbedtls_error.h"
#include "firmware/pki/pk.h"
#include "firmware/pki/tls_policy.h"
#include "firmware/pki/x509.h"
#include "hal/entropy.h"

namespace tkms::web::client {
namespace {

// Random numbers of in-memory configurations: getrandom(2), stateless, so
// one configuration serves sessions on every thread.
hal::OsEntropy g_entropy;

using SslConfig = pki::MbedtlsOwner<mbedtls_ssl_config, mbedtls_ssl_config_init, mbedtls_ssl_config_free>;
using SslContext = pki::MbedtlsOwner<mbedtls_ssl_context, mbedtls_ssl_init, mbedtls_ssl_free>;

std::string Errno(int err) { return std::strerror(err); }

int RemainingMs(TlsSession::Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - TlsSession::Clock::now()).count();
  if (left <= 0) return 0;
  return left > 0x7FFFFFFF ? 0x7FFFFFFF : static_cast<int>(left);
}

// A regular file of at most max_bytes, read whole; errors name `what` and
// the path. With owner_only, group or other permissions are refused (the
// rule of firmware/base/secret_files.h) and the bytes go to SecretBytes.
Result<SecretBytes> ReadBoundedFile(const std::string& path, const char* what, size_t max_bytes, bool owner_only) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (owner_only ? O_NOFOLLOW : 0));
  if (fd < 0) {
    const int err = errno;
    return NotFound(std::string(what) + " " + path + ": " + Errno(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(std::string(what) + " " + path + " is not a regular file");
  }
  if (owner_only && (st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied(std::string(what) + " " + path + " is accessible by group or others (mode " + mode +
                            "); a private key file must be mode 0600: chmod 600 " + path);
  }
  SecretBytes content(max_bytes + 1);
  size_t used = 0;
  while (used < content.size()) {
    const ssize_t n = ::read(fd, content.data() + used, content.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Unavailable(std::string("reading ") + what + " " + path + ": " + Errno(err));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  ::close(fd);
  if (used > max_bytes) {
    return InvalidArgument(std::string(what) + " " + path + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  content.resize(used);
  return content;
}

Result<pki::X509Chain> LoadPemCertificates(const std::string& path, const char* what, size_t max_certificates) {
  auto bytes = ReadBoundedFile(path, what, pki::kMaxCertificateFileBytes, /*owner_only=*/false);
  if (!bytes.ok()) return bytes.error();
  pki::X509Chain chain;
  const std::string_view text(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  TKMS_RETURN_IF_ERROR(chain.AddPem(text, std::string(what) + " " + path, pki::kMaxCertificateFileBytes,
                                    max_certificates));
  return chain;
}

// The UE's own private key: owner-only file, PEM (NUL added, as mbedTLS
// wants) or DER, unencrypted. Every copy of the bytes is SecretBytes.
Result<pki::PkContext> LoadPrivateKey(const std::string& path) {
  auto bytes = ReadBoundedFile(path, "TLS client key file", pki::kMaxKeyBytes, /*owner_only=*/true);
  if (!bytes.ok()) return bytes.error();
  static constexpr std::string_view kPemBegin = "-----BEGIN";
  const std::string_view text(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  if (text.find(kPemBegin) != std::string_view::npos) bytes->push_back(0);
  pki::PkContext key;
  const int ret = mbedtls_pk_parse_key(key.native(), bytes->data(), bytes->size(), nullptr, 0);
  if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
    return InvalidArgument("TLS client key file " + path + " is encrypted; an unencrypted key (mode 0600) is needed");
  }
  if (ret != 0) return InvalidArgument("TLS client key file " + path + " does not parse: " + pki::MbedtlsError(ret));
  return key;
}

// The RFC 5246 §7.2 alert description, for messages.
const char* AlertName(unsigned description) {
  switch (description) {
    case MBEDTLS_SSL_ALERT_MSG_CLOSE_NOTIFY: return "close_notify";
    case MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE: return "unexpected_message";
    case MBEDTLS_SSL_ALERT_MSG_BAD_RECORD_MAC: return "bad_record_mac";
    case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE: return "handshake_failure";
    case MBEDTLS_SSL_ALERT_MSG_BAD_CERT: return "bad_certificate";
    case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT: return "unsupported_certificate";
    case MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED: return "certificate_revoked";
    case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED: return "certificate_expired";
    case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN: return "certificate_unknown";
    case MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER: return "illegal_parameter";
    case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA: return "unknown_ca";
    case MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED: return "access_denied";
    case MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR: return "decode_error";
    case MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR: return "decrypt_error";
    case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION: return "protocol_version";
    case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY: return "insufficient_security";
    case MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR: return "internal_error";
    case MBEDTLS_SSL_ALERT_MSG_NO_RENEGOTIATION: return "no_renegotiation";
    case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_EXT: return "unsupported_extension";
    case MBEDTLS_SSL_ALERT_MSG_UNRECOGNIZED_NAME: return "unrecognized_name";
    case 116: return "certificate_required";
    default: return "alert";
  }
}

}  // namespace

// ---- TlsClientConfig ---------------------------------------------------------------

// mbedTLS keeps pointers to the CA chain, the own certificate and key and the
// DRBG in the ssl config: all of them live (on the heap) as long as it does.
struct TlsClientConfig::State {
  TlsClientOptions options;
  bool in_memory = false;  // Create(): sessions need a ServerVerifier
  pki::X509Chain ca;
  pki::X509Chain own_chain;
  pki::PkContext own_key;
  std::optional<pki::CtrDrbg> drbg;
  SslConfig conf;
};

TlsClientConfig::TlsClientConfig(std::unique_ptr<State> state) : state_(std::move(state)) {}
TlsClientConfig::~TlsClientConfig() = default;

bool TlsClientConfig::has_client_certificate() const { return !state_->own_chain.empty(); }
const TlsClientOptions& TlsClientConfig::options() const { return state_->options; }
bool TlsClientConfig::verifier_required() const { return state_->in_memory; }

namespace {

// mbedtls_ssl_config_defaults for a client, then the tkms profile and no
// session tickets.
Status ClientDefaults(mbedtls_ssl_config* conf) {
  const int ret = mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                              MBEDTLS_SSL_PRESET_DEFAULT);
  if (ret != 0) return Internal("TLS client configuration: " + pki::MbedtlsError(ret));
  pki::ApplyTlsPolicy(*conf);
  mbedtls_ssl_conf_session_tickets(conf, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
  return Status::Ok();
}

// The key is the leaf's: it signs a test digest (in the token, for an
// RSA-alt key; mbedtls_pk_check_pair cannot check those) that the leaf's
// public key verifies.
Status CheckLeafKey(mbedtls_x509_crt& leaf, pki::PkContext& key) {
  std::array<unsigned char, 4096> der{};
  const int written = mbedtls_pk_write_pubkey_der(&leaf.pk, der.data(), der.size());
  if (written <= 0) return InvalidArgument("TLS client certificate: its public key cannot be written");
  const auto n = static_cast<size_t>(written);
  auto public_key = pki::PkContext::ParsePublicKey(
      std::string_view(reinterpret_cast<const char*>(der.data() + der.size() - n), n));
  if (!public_key.ok()) return public_key.error();
  Status pair = pki::CheckKeyPair(key, *public_key);
  if (pair.code() == StatusCode::kFailedPrecondition) {
    return InvalidArgument("TLS client key is not the key of the certificate " + pki::CertificateRef(leaf).subject());
  }
  return pair;
}

}  // namespace

Result<std::shared_ptr<TlsClientConfig>> TlsClientConfig::Create(TlsClientSettings settings) {
  auto state = std::make_unique<State>();
  state->in_memory = true;
  if (settings.chain_der.size() > kMaxTlsClientChain) {
    return InvalidArgument("TLS client certificate chain longer than " + std::to_string(kMaxTlsClientChain));
  }
  for (const auto& der : settings.chain_der) {
    TKMS_RETURN_IF_ERROR(state->own_chain.AddDer(der, "TLS client certificate chain"));
  }
  if (!state->own_chain.empty()) {
    if (!settings.key.has_key()) return InvalidArgument("TLS client certificate chain without its key");
    TKMS_RETURN_IF_ERROR(CheckLeafKey(*state->own_chain.native(), settings.key));
    state->own_key = std::move(settings.key);
  }
  mbedtls_ssl_config* conf = state->conf.native();
  TKMS_RETURN_IF_ERROR(ClientDefaults(conf));
  // OPTIONAL without a CA: mbedTLS records its flags, the session's
  // ServerVerifier decides after the handshake.
  mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
  mbedtls_ssl_conf_rng(conf, pki::EntropyRandom, &g_entropy);
  if (!state->own_chain.empty()) {
    const int own = mbedtls_ssl_conf_own_cert(conf, state->own_chain.native(), state->own_key.native());
    if (own != 0) return Internal("TLS client certificate: " + pki::MbedtlsError(own));
  }
  return std::shared_ptr<TlsClientConfig>(new TlsClientConfig(std::move(state)));
}

Result<std::shared_ptr<TlsClientConfig>> TlsClientConfig::Load(const TlsClientOptions& options) {
  if (options.ca_file.empty()) {
    return InvalidArgument("https needs the CA certificates that issued the KMS certificate (--cacert FILE)");
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return InvalidArgument("a TLS client certificate needs its key and the other way round (--cert FILE --key FILE)");
  }
  auto state = std::make_unique<State>();
  state->options = options;
  auto ca = LoadPemCertificates(options.ca_file, "CA file", kMaxTlsCaCertificates);
  if (!ca.ok()) return ca.error();
  state->ca = std::move(*ca);
  if (!options.cert_file.empty()) {
    auto chain = LoadPemCertificates(options.cert_file, "TLS client certificate file", kMaxTlsClientChain);
    if (!chain.ok()) return chain.error();
    state->own_chain = std::move(*chain);
    auto key = LoadPrivateKey(options.key_file);
    if (!key.ok()) return key.error();
    state->own_key = std::move(*key);
    if (mbedtls_pk_check_pair(&state->own_chain.native()->pk, state->own_key.native()) != 0) {
      return InvalidArgument("TLS client key file " + options.key_file + " is not the key of the certificate in " +
                             options.cert_file);
    }
  }
  auto drbg = pki::CtrDrbg::Create("tkms ue tls client");
  if (!drbg.ok()) return drbg.error();
  state->drbg.emplace(std::move(*drbg));

  mbedtls_ssl_config* conf = state->conf.native();
  TKMS_RETURN_IF_ERROR(ClientDefaults(conf));
  mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED);
  mbedtls_ssl_conf_ca_chain(conf, state->ca.native(), nullptr);
  mbedtls_ssl_conf_rng(conf, pki::CtrDrbg::Random, state->drbg->native());
  if (!state->own_chain.empty()) {
    const int own = mbedtls_ssl_conf_own_cert(conf, state->own_chain.native(), state->own_key.native());
    if (own != 0) return Internal("TLS client certificate: " + pki::MbedtlsError(own));
  }
  return std::shared_ptr<TlsClientConfig>(new TlsClientConfig(std::move(state)));
}

// ---- TlsSession --------------------------------------------------------------------

// The bio callbacks get this State: the fd and the errno of the last failed
// send/recv, for messages.
struct TlsSession::State {
  std::shared_ptr<TlsClientConfig> config;
  int fd = -1;
  int last_errno = 0;
  bool healthy = false;  // handshake done, no error since: close_notify may be sent
  std::string peer;         // "localhost:8443", for messages
  std::string server_name;  // the name the certificate must carry
  SslContext ssl;

  static int Send(void* ctx, const unsigned char* buf, size_t len) {
    auto* s = static_cast<State*>(ctx);
    for (;;) {
      const ssize_t n = ::send(s->fd, buf, len, MSG_NOSIGNAL);
      if (n >= 0) return static_cast<int>(n);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return MBEDTLS_ERR_SSL_WANT_WRITE;
      s->last_errno = errno;
      return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_SEND_FAILED;
    }
  }
  static int Recv(void* ctx, unsigned char* buf, size_t len) {
    auto* s = static_cast<State*>(ctx);
    for (;;) {
      const ssize_t n = ::recv(s->fd, buf, len, 0);
      if (n >= 0) return static_cast<int>(n);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return MBEDTLS_ERR_SSL_WANT_READ;
      s->last_errno = errno;
      return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
    }
  }

  // Waits for the socket as mbedTLS asked (WANT_READ / WANT_WRITE); false on
  // timeout.
  bool Wait(int want, Clock::time_point deadline) const {
    pollfd p{fd, static_cast<short>(want == MBEDTLS_ERR_SSL_WANT_WRITE ? POLLOUT : POLLIN), 0};
    for (;;) {
      const int ms = RemainingMs(deadline);
      if (ms == 0) return false;
      const int r = ::poll(&p, 1, ms);
      if (r > 0) return true;
      if (r == 0) return false;
      if (errno != EINTR) return true;  // let the next mbedTLS call report the socket's error
    }
  }

  // mbedTLS's reason, with the socket error behind a NET_* code.
  std::string Reason(int ret) const {
    std::string text = pki::MbedtlsError(ret);
    if ((ret == MBEDTLS_ERR_NET_SEND_FAILED || ret == MBEDTLS_ERR_NET_RECV_FAILED ||
         ret == MBEDTLS_ERR_NET_CONN_RESET) &&
        last_errno != 0) {
      text += ": " + Errno(last_errno);
    }
    return text;
  }

  // The alert the server sent, if the last record was one.
  std::optional<unsigned> ReceivedAlert() const {
    const mbedtls_ssl_context* s = ssl.native();
    if (s->in_msgtype != MBEDTLS_SSL_MSG_ALERT || s->in_msg == nullptr || s->in_msglen < 2) return std::nullopt;
    return s->in_msg[1];
  }

  // The ServerVerifier's decision on the server's chain; a refusal sends
  // a bad_certificate alert (RFC 5246 §7.2.2).
  Status AskVerifier(const ServerVerifier& verifier) {
    const mbedtls_x509_crt* chain = mbedtls_ssl_get_peer_cert(ssl.native());
    Status verdict = PermissionDenied("the server sent no certificate");
    if (chain != nullptr) {
      try {
        verdict = verifier.Verify(*chain, mbedtls_ssl_get_verify_result(ssl.native()));
      } catch (...) {
        verdict = Internal("the certificate check failed");
      }
    }
    if (verdict.ok()) return verdict;
    (void)mbedtls_ssl_send_alert_message(ssl.native(), MBEDTLS_SSL_ALERT_LEVEL_FATAL, MBEDTLS_SSL_ALERT_MSG_BAD_CERT);
    return PermissionDenied("TLS handshake with " + peer + " failed: server certificate refused: " + verdict.message());
  }

  Status HandshakeError(int ret) {
    const std::string prefix = "TLS handshake with " + peer + " failed: ";
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
      const uint32_t flags = mbedtls_ssl_get_verify_result(ssl.native());
      std::string causes;
      const auto add = [&causes](const std::string& cause) { causes += (causes.empty() ? "" : "; ") + cause; };
      if ((flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) != 0) {
        add("certificate not trusted (it does not chain to a CA of " + config->options().ca_file + ")");
      }
      if ((flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) != 0) {
        add("host name mismatch (the certificate is not for \"" + EscapedDetail(server_name) + "\")");
      }
      if ((flags & MBEDTLS_X509_BADCERT_EXPIRED) != 0) add("certificate expired");
      if ((flags & MBEDTLS_X509_BADCERT_FUTURE) != 0) add("certificate not yet valid");
      if (causes.empty()) causes = "certificate refused";
      return PermissionDenied(prefix + "server " + causes + " [mbedTLS: " + EscapedDetail(pki::VerifyFlagsText(flags)) +
                              "]");
    }
    // The server sent a CertificateRequest (RFC 5246 §7.4.4) and this client
    // has no certificate to give: whatever the server does next (an alert,
    // or closing the connection), that is the cause.
    const bool certificate_missing = ssl.native()->client_auth != 0 && !config->has_client_certificate();
    const std::string missing_text =
        "the server requires a client certificate (it sent a CertificateRequest) and none is configured "
        "(--cert FILE --key FILE)";
    if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
      std::string text = prefix + "the server aborted it";
      if (auto alert = ReceivedAlert()) {
        text += " with alert " + std::to_string(*alert) + " (" + AlertName(*alert) + ")";
        if (certificate_missing) {
          text += ": " + missing_text;
        } else if (*alert == MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE ||
                   *alert == MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION ||
                   *alert == MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY) {
          text += ": no common protocol version and cipher suite within the tkms TLS profile (TLS 1.2, ECDHE, AEAD)";
          if (ssl.native()->client_auth != 0) text += ", or the server refused the client certificate";
        } else if (*alert == MBEDTLS_SSL_ALERT_MSG_BAD_CERT || *alert == 116 ||
                   *alert == MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA || *alert == MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED ||
                   *alert == MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT || *alert == MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN) {
          text += ": the server refused the client certificate";
        }
      }
      return Unavailable(text + " [" + pki::MbedtlsError(ret) + "]");
    }
    if (certificate_missing) return Unavailable(prefix + missing_text + " [" + Reason(ret) + "]");
    if (ret == MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION) {
      return Unavailable(prefix + "the server does not speak TLS 1.2, the only version tkms accepts [" +
                         pki::MbedtlsError(ret) + "]");
    }
    if (ret == MBEDTLS_ERR_SSL_BAD_HS_SERVER_HELLO) {
      return Unavailable(prefix + "the server chose parameters outside the tkms TLS profile (TLS 1.2, ECDHE, AEAD) [" +
                         pki::MbedtlsError(ret) + "]");
    }
    if (ret == MBEDTLS_ERR_SSL_CONN_EOF || ret == MBEDTLS_ERR_NET_CONN_RESET) {
      return Unavailable(prefix + "the server closed the connection (is it speaking TLS?) [" + Reason(ret) + "]");
    }
    return Unavailable(prefix + Reason(ret));
  }
};

TlsSession::TlsSession(std::unique_ptr<State> state) : state_(std::move(state)) {}
TlsSession::~TlsSession() = default;
TlsSession::TlsSession(TlsSession&& other) noexcept = default;
TlsSession& TlsSession::operator=(TlsSession&& other) noexcept = default;

Result<TlsSession> TlsSession::Handshake(std::shared_ptr<TlsClientConfig> config, int fd,
                                         const std::string& server_name, const std::string& peer,
                                         Clock::time_point deadline,
                                         std::shared_ptr<const ServerVerifier> verifier) {
  if (!config) return InvalidArgument("TLS session without a configuration");
  if (config->verifier_required() != (verifier != nullptr)) {
    return InvalidArgument(verifier ? "a ServerVerifier needs an in-memory TLS configuration"
                                    : "an in-memory TLS configuration needs a ServerVerifier");
  }
  auto state = std::make_unique<State>();
  state->config = std::move(config);
  state->fd = fd;
  state->peer = peer;
  state->server_name = server_name;
  mbedtls_ssl_context* ssl = state->ssl.native();
  int ret = mbedtls_ssl_setup(ssl, state->config->state_->conf.native());
  if (ret != 0) return Internal("TLS session: " + pki::MbedtlsError(ret));
  if (!verifier) {
    // The name checked against the certificate and sent as SNI (RFC 6066 §3).
    ret = mbedtls_ssl_set_hostname(ssl, server_name.c_str());
    if (ret != 0) {
      return InvalidArgument("TLS server name \"" + EscapedDetail(server_name) + "\": " + pki::MbedtlsError(ret));
    }
  }
  mbedtls_ssl_set_bio(ssl, state.get(), &State::Send, &State::Recv, nullptr);
  for (;;) {
    ret = mbedtls_ssl_handshake(ssl);
    if (ret == 0) break;
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
      if (!state->Wait(ret, deadline)) return Unavailable("timed out during the TLS handshake with " + peer);
      continue;
    }
    return state->HandshakeError(ret);
  }
  if (verifier) TKMS_RETURN_IF_ERROR(state->AskVerifier(*verifier));
  state->healthy = true;
  return TlsSession(std::move(state));
}

Status TlsSession::Write(std::string_view data, Clock::time_point deadline) {
  if (!state_) return FailedPrecondition("TLS session was moved from");
  size_t done = 0;
  while (done < data.size()) {
    const int ret = mbedtls_ssl_write(state_->ssl.native(), reinterpret_cast<const unsigned char*>(data.data()) + done,
                                      data.size() - done);
    if (ret > 0) {
      done += static_cast<size_t>(ret);
      continue;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
      if (!state_->Wait(ret, deadline)) {
        state_->healthy = false;
        return Unavailable("timed out sending the request");
      }
      continue;
    }
    state_->healthy = false;
    return Unavailable("sending the request over TLS: " + state_->Reason(ret));
  }
  return Status::Ok();
}

Result<size_t> TlsSession::Read(std::span<uint8_t> into, Clock::time_point deadline) {
  if (!state_) return FailedPrecondition("TLS session was moved from");
  for (;;) {
    const int ret = mbedtls_ssl_read(state_->ssl.native(), into.data(), into.size());
    if (ret > 0) return static_cast<size_t>(ret);
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      state_->healthy = false;  // mbedTLS answers close_notify itself
      return size_t{0};
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
      if (!state_->Wait(ret, deadline)) {
        state_->healthy = false;
        return Unavailable("timed out waiting for the response");
      }
      continue;
    }
    state_->healthy = false;
    if (ret == MBEDTLS_ERR_SSL_CONN_EOF) {
      return Unavailable("the server closed the TLS connection without close_notify (possible truncation)");
    }
    if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
      std::string text = "receiving the response: the server sent a fatal TLS alert";
      if (auto alert = state_->ReceivedAlert()) {
        // (append, not +: g++ 12 -O3 reports a false -Wrestrict for the chain)
        text.append(" ").append(std::to_string(*alert)).append(" (").append(AlertName(*alert)).append(")");
      }
      return Unavailable(text);
    }
    return Unavailable("receiving the response over TLS: " + state_->Reason(ret));
  }
}

size_t TlsSession::buffered() const { return state_ ? mbedtls_ssl_get_bytes_avail(state_->ssl.native()) : 0; }

void TlsSession::CloseNotify() {
  if (!state_ || !state_->healthy) return;
  state_->healthy = false;
  // One attempt: the alert is a few bytes on a socket with an empty send
  // buffer (the connection is idle or the response was read).
  (void)mbedtls_ssl_close_notify(state_->ssl.native());
}

std::string TlsSession::version() const {
  const char* name = state_ ? mbedtls_ssl_get_version(state_->ssl.native()) : nullptr;
  return name != nullptr ? name : "";
}

std::string TlsSession::cipher_suite() const {
  const char* name = state_ ? mbedtls_ssl_get_ciphersuite(state_->ssl.native()) : nullptr;
  return name != nullptr ? name : "";
}

}  // namespace tkms::web::client
