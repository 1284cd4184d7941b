// TkmsdProcess: a real tkmsd started by a test on free loopback ports, and
// stopped by it.
//
// Why: the integration tests of TS 33.328 Annex A / RFC 6043 behaviour must
// run against the daemon users run, with a real SoftHSM2 token, over real
// HTTP. The process gets --listen/--admin-listen 127.0.0.1:0 and a
// --ready-file; Start() waits for that file and reads the ports. Its log
// (stderr) goes to a file in the test's own temporary directory, which the
// test can read (and must find free of secrets). Stop() sends SIGTERM and
// returns the exit status; the destructor kills whatever is left.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "firmware/base/status.h"

namespace tkms::test {

// A fresh directory under $TMPDIR (or /tmp), removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class TkmsdProcess {
 public:
  struct Options {
    std::vector<std::string> args;  // besides --listen/--admin-listen/--ready-file
    std::vector<std::pair<std::string, std::string>> env;  // added to the inherited environment
    std::string work_dir;           // ready file and log go here
  };
  static Result<std::unique_ptr<TkmsdProcess>> Start(const Options& options);
  ~TkmsdProcess();

  uint16_t ua_port() const { return ua_port_; }
  uint16_t admin_port() const { return admin_port_; }
  std::string ua_url() const;
  pid_t pid() const { return pid_; }

  void Signal(int sig) const;
  // SIGTERM, then waits (up to 20 s); the exit status, or -1 if it had to be
  // killed or died from a signal.
  int Stop();
  // The daemon's log so far.
  std::string Log() const;

 private:
  TkmsdProcess() = default;
  pid_t pid_ = -1;
  uint16_t ua_port_ = 0;
  uint16_t admin_port_ = 0;
  std::string log_path_;
};

// Paths of the binaries under test (compile definitions of the test target).
std::string TkmsdPath();
std::string TkmsctlPath();
std::string FaultModulePath();

// Runs a command (argv, no shell) with extra environment; returns exit code
// and stdout.
std::pair<int, std::string> RunCommand(const std::vector<std::string>& argv,
                                       const std::vector<std::pair<std::string, std::string>>& env = {});

}  // namespace tkms::test
