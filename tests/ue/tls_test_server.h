// The test PKI and the TLS test server (tests/ue/tls/) as a test sees them.
//
// Why: the UE's TLS client (web/client/tls_client.h) must be tested against a
// real, independent TLS stack on loopback -- the right and a wrong CA, a
// certificate for another name, a TLS 1.1-only or CBC-only server, a server
// that requires a client certificate -- before the KMS's own HTTPS listener
// exists. OpenSSL does that: make_test_pki.sh makes the certificates with
// the openssl command, and tls_test_server.py (Python's ssl module) serves
// them, each test with its own server process on a free port.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace tkms::ue::testing {

inline std::string TlsTestDir() { return std::string(TKMS_SOURCE_DIR) + "/tests/ue/tls"; }

// Runs argv to completion; its exit status (-1 if it could not run).
inline int RunToCompletion(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

// A fresh directory with the test PKI (see make_test_pki.sh), removed by the
// destructor.
class TlsTestPki {
 public:
  TlsTestPki() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/tkms-tls-XXXXXX";
    if (::mkdtemp(templ.data()) != nullptr) dir_ = templ;
    ok_ = !dir_.empty() && RunToCompletion({"/bin/sh", TlsTestDir() + "/make_test_pki.sh", dir_ + "/pki"}) == 0;
  }
  ~TlsTestPki() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  TlsTestPki(const TlsTestPki&) = delete;
  TlsTestPki& operator=(const TlsTestPki&) = delete;

  bool ok() const { return ok_; }
  const std::string& dir() const { return dir_; }
  // "ca.pem", "server.key", ... of the PKI.
  std::string File(const std::string& name) const { return dir_ + "/pki/" + name; }

 private:
  std::string dir_;
  bool ok_ = false;
};

// tls_test_server.py in its own process; SIGTERM and reaped by the
// destructor. Its stderr (handshake failures, close_notify) goes to a file.
class TlsTestServer {
 public:
  // `args`: the server's options (--cert, --key, --verify, ...).
  static std::unique_ptr<TlsTestServer> Start(const std::vector<std::string>& args, const std::string& log_file) {
    auto server = std::unique_ptr<TlsTestServer>(new TlsTestServer);
    server->log_file_ = log_file;
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return nullptr;
    std::vector<std::string> all{TKMS_PYTHON3, TlsTestDir() + "/tls_test_server.py"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (const auto& a : all) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int rc = ::posix_spawn(&server->pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (rc != 0) {
      ::close(out[0]);
      server->pid_ = -1;
      return nullptr;
    }
    // "PORT <n>\n" within 30 s (the interpreter starts slowly on a busy machine).
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[64];
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    ::close(out[0]);
    if (line.rfind("PORT ", 0) != 0) return nullptr;
    server->port_ = static_cast<uint16_t>(std::stoi(line.substr(5)));
    return server;
  }

  ~TlsTestServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  TlsTestServer(const TlsTestServer&) = delete;
  TlsTestServer& operator=(const TlsTestServer&) = delete;

  uint16_t port() const { return port_; }
  // The server's certificates are for "localhost" (see make_test_pki.sh).
  std::string url() const { return "https://localhost:" + std::to_string(port_); }
  std::string Log() const {
    std::ifstream in(log_file_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Waits up to `timeout` for `text` in the log.
  bool WaitForLog(const std::string& text, std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Log().find(text) != std::string::npos) return true;
      ::usleep(20000);
    }
    return false;
  }

 private:
  TlsTestServer() = default;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string log_file_;
};

}  // namespace tkms::ue::testing
