// tkms-echo: the bare HTTP ceiling of `make bench` (docs/benchmarks.md).
//
// Serves POST /keymanagement with the request body echoed back, through the
// same listener as tkmsd's Ua listeners (web/echo.h: handler threads,
// TCP_NODELAY, keep-alive, caps, one-write responses) but with no Annex A
// checks and no KMS behind it: what the HTTP layer alone can do on this
// machine. With --tls-cert/--tls-key it serves HTTPS (the TLS ceiling); its
// key is a software key from a file, which only costs a difference in the
// one handshake per kept-alive connection. Runs until SIGTERM/SIGINT; prints
// {"port":N} once listening.
#include <signal.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <mbedtls/pk.h>

#include "firmware/pki/x509.h"
#include "web/echo.h"
#include "web/tls_server.h"

namespace {

tkms::Result<std::shared_ptr<tkms::web::TlsServer>> LoadTls(const std::string& cert_file, const std::string& key_file) {
  tkms::web::TlsServerSettings settings;
  auto cert = tkms::pki::LoadCertificateFile(cert_file);
  if (!cert.ok()) return cert.error();
  settings.chain_der.push_back(*cert);
  if (int rc = mbedtls_pk_parse_keyfile(settings.key.native(), key_file.c_str(), nullptr); rc != 0) {
    return tkms::InvalidArgument("--tls-key " + key_file + ": cannot parse the private key");
  }
  auto creds = tkms::web::TlsCredentials::Build(std::move(settings));
  if (!creds.ok()) return creds.error();
  return std::make_shared<tkms::web::TlsServer>(std::move(*creds));
}

}  // namespace

int main(int argc, char** argv) {
  tkms::web::WebServerOptions options;
  options.ua_listen = "127.0.0.1:0";
  std::string cert_file;
  std::string key_file;
  CLI::App app{"tkms-echo: bare echo server on tkmsd's listener (benchmark ceiling)"};
  app.add_option("--listen", options.ua_listen, "ADDR:PORT (port 0 = any free port)");
  app.add_option("--threads", options.worker_threads, "handler threads (as tkmsd's Ua listener)");
  app.add_option("--tls-cert", cert_file, "serve HTTPS with this certificate (PEM)");
  app.add_option("--tls-key", key_file, "the certificate's private key (PEM file)");
  CLI11_PARSE(app, argc, argv);
  if (cert_file.empty() != key_file.empty()) {
    std::fprintf(stderr, "tkms-echo: --tls-cert and --tls-key go together\n");
    return 2;
  }
  if (!cert_file.empty()) {
    auto tls = LoadTls(cert_file, key_file);
    if (!tls.ok()) {
      std::fprintf(stderr, "tkms-echo: %s\n", tls.error().ToString().c_str());
      return 1;
    }
    options.ua_tls = std::move(*tls);
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  auto server = tkms::web::StartEchoServer(options);
  if (!server.ok()) {
    std::fprintf(stderr, "tkms-echo: %s\n", server.error().ToString().c_str());
    return 1;
  }
  std::printf("{\"port\":%u}\n", static_cast<unsigned>((*server)->port()));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  (*server)->Stop();
  return 0;
}
