#include "tests/integration/tkmsd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace tkms::test {
namespace {

using namespace std::chrono_literals;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// fork + execve with `env` added; stdout/stderr to the given fds (-1: keep).
pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& env,
            int out_fd, int err_fd) {
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
  for (const auto& kv : env) {
    const std::string prefix = kv.first + "=";
    std::erase_if(environment, [&prefix](const std::string& s) { return s.rfind(prefix, 0) == 0; });
    environment.push_back(prefix + kv.second);
  }
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (out_fd >= 0) ::dup2(out_fd, 1);
    if (err_fd >= 0) ::dup2(err_fd, 2);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/tkms-it-XXXXXX";
  if (::mkdtemp(templ.data()) != nullptr) path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

std::string TkmsdPath() { return TKMS_TKMSD_PATH; }
std::string TkmsctlPath() { return TKMS_TKMSCTL_PATH; }
std::string FaultModulePath() { return TKMS_FAULT_MODULE_PATH; }

Result<std::unique_ptr<TkmsdProcess>> TkmsdProcess::Start(const Options& options) {
  std::unique_ptr<TkmsdProcess> p(new TkmsdProcess());
  const std::string ready = options.work_dir + "/tkmsd.ready";
  std::filesystem::remove(ready);
  p->log_path_ = options.work_dir + "/tkmsd.log";
  const int log_fd = ::open(p->log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return Internal("cannot open " + p->log_path_);
  // The suite runs as root in CI; production drops privileges (--user).
  std::vector<std::string> argv{TkmsdPath(), "--allow-root"};
  argv.insert(argv.end(), options.args.begin(), options.args.end());
  for (std::string a : {"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--ready-file"}) argv.push_back(a);
  argv.push_back(ready);
  // --dev serves HTTPS too (default 127.0.0.1:8443): on a free port here, so
  // tests running in parallel never collide.
  if (std::find(options.args.begin(), options.args.end(), "--dev") != options.args.end()) {
    argv.push_back("--tls-listen");
    argv.push_back("127.0.0.1:0");
  }
  p->pid_ = Spawn(argv, options.env, log_fd, log_fd);
  ::close(log_fd);
  if (p->pid_ < 0) return Internal("fork failed");
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(p->pid_, &status, WNOHANG) == p->pid_) {
      p->pid_ = -1;
      return FailedPrecondition("tkmsd exited during start-up:\n" + ReadFile(p->log_path_));
    }
    if (std::filesystem::exists(ready)) {
      auto j = nlohmann::json::parse(ReadFile(ready), nullptr, false);
      if (!j.is_discarded() && j.contains("ua_port")) {
        p->ua_port_ = j["ua_port"].get<uint16_t>();
        p->admin_port_ = j["admin_port"].get<uint16_t>();
        return p;
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  return Unavailable("tkmsd did not become ready:\n" + ReadFile(p->log_path_));
}

TkmsdProcess::~TkmsdProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

std::string TkmsdProcess::ua_url() const { return "http://127.0.0.1:" + std::to_string(ua_port_); }

void TkmsdProcess::Signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

int TkmsdProcess::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(10ms);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

std::string TkmsdProcess::Log() const { return ReadFile(log_path_); }

std::pair<int, std::string> RunCommand(const std::vector<std::string>& argv,
                                       const std::vector<std::pair<std::string, std::string>>& env) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {-1, ""};
  const pid_t pid = Spawn(argv, env, fds[1], -1);
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace tkms::test
