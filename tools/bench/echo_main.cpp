// tkms-echo: the bare CivetWeb ceiling of `make bench` (docs/benchmarks.md).
//
// Serves POST /keymanagement with the request body echoed back, through the
// same CivetWeb configuration as tkmsd's Ua listener (web/echo.h: thread
// count, tcp_nodelay, keep-alive, one-write responses) but with no Annex A
// checks and no KMS behind it: what the HTTP layer alone can do on this
// machine. Runs until SIGTERM/SIGINT; prints {"port":N} once listening.
#include <signal.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "web/echo.h"

int main(int argc, char** argv) {
  tkms::web::WebServerOptions options;
  options.ua_listen = "127.0.0.1:0";
  CLI::App app{"tkms-echo: bare CivetWeb echo server (benchmark ceiling)"};
  app.add_option("--listen", options.ua_listen, "ADDR:PORT (port 0 = any free port)");
  app.add_option("--threads", options.worker_threads, "CivetWeb worker threads (as tkmsd's Ua listener)");
  CLI11_PARSE(app, argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
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
