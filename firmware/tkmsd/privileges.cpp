// Least privilege for tkmsd: see privileges.h.
#include "firmware/tkmsd/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace tkms::tkmsd {
namespace {

std::string ErrnoText(int e) { return std::strerror(e); }

size_t ThreadCount() {
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

int LastCapability() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = CAP_LAST_CAP;
  if (!(in >> last) || last < 0 || last > 63) last = CAP_LAST_CAP;
  return last;
}

// Empties the bounding set: needs CAP_SETPCAP, so only root gets here.
// A container may have taken CAP_SETPCAP away; then the set stays (the
// empty permitted set and no_new_privs still keep every capability out).
void EmptyBoundingSet() {
  const int last = LastCapability();
  for (int cap = 0; cap <= last; ++cap) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) (void)::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  }
}

// True iff the permitted, effective, inheritable and ambient sets of this
// thread are empty (as /proc/self/status reports them).
bool HoldsNoCapabilities() {
  std::ifstream in("/proc/self/status");
  std::string line;
  int seen = 0;
  while (std::getline(in, line)) {
    for (const char* key : {"CapInh:", "CapPrm:", "CapEff:", "CapAmb:"}) {
      if (line.rfind(key, 0) != 0) continue;
      ++seen;
      if (line.find_first_not_of("0 \t", std::strlen(key)) != std::string::npos) return false;
    }
  }
  return seen == 4;
}

// Clears the permitted, effective and inheritable sets of this thread (the
// only one) and the ambient set. Nothing to clear (a service started
// unprivileged, where systemd's SystemCallFilter=~@privileged forbids
// capset): nothing is called.
Status ClearCapabilities() {
  if (HoldsNoCapabilities()) return Status::Ok();
  (void)::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capset, &header, data) != 0) return Internal("capset: " + ErrnoText(errno));
  return Status::Ok();
}

}  // namespace

Status ForbidCoreDumps() {
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Internal("prctl(PR_SET_DUMPABLE, 0): " + ErrnoText(errno));
  const rlimit none{0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0) {
    const int e = errno;
    // A system call filter may forbid setrlimit; a limit of 0 already
    // (systemd's LimitCORE=0) is what was wanted.
    rlimit now{};
    if (::getrlimit(RLIMIT_CORE, &now) == 0 && now.rlim_cur == 0 && now.rlim_max == 0) return Status::Ok();
    return Internal("setrlimit(RLIMIT_CORE, 0): " + ErrnoText(e));
  }
  return Status::Ok();
}

Result<std::optional<RunAs>> ResolveRunAs(const std::string& user, bool allow_root) {
  const bool root = ::geteuid() == 0;
  if (user.empty()) {
    if (root && !allow_root) {
      return FailedPrecondition(
          "tkmsd refuses to run as root: give --user NAME (or \"user\" in the configuration) to run as that "
          "account once the listeners are bound, or --allow-root to keep root (not for production; "
          "docs/tkmsd.md, \"Privileges and memory\")");
    }
    return std::optional<RunAs>();
  }
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  const int rc = ::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (rc != 0) return Internal("looking up user " + user + ": " + ErrnoText(rc));
  if (found == nullptr) return NotFound("--user / \"user\": no such user: " + user);
  RunAs run_as{user, found->pw_uid, found->pw_gid, found->pw_dir != nullptr ? found->pw_dir : ""};
  if (run_as.uid == 0) {
    if (!allow_root) {
      return FailedPrecondition("--user / \"user\": " + user + " is root (uid 0); name an unprivileged account, "
                                "or give --allow-root");
    }
    return std::optional<RunAs>();
  }
  if (!root) {
    if (run_as.uid != ::geteuid()) {
      return PermissionDenied("--user / \"user\": " + user + ": tkmsd runs as uid " + std::to_string(::geteuid()) +
                              ", and only root can switch to another user");
    }
    return std::optional<RunAs>();  // already that user
  }
  return std::optional<RunAs>(std::move(run_as));
}

Status GiveDirectoryTo(const std::string& directory, const RunAs& run_as, bool recursive) {
  if (::lchown(directory.c_str(), run_as.uid, run_as.gid) != 0) {
    return Internal("chown " + directory + " to " + run_as.name + ": " + ErrnoText(errno));
  }
  if (!recursive) return Status::Ok();
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(directory, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string path = it->path().string();
    if (::lchown(path.c_str(), run_as.uid, run_as.gid) != 0) {
      return Internal("chown " + path + " to " + run_as.name + ": " + ErrnoText(errno));
    }
  }
  if (ec) return Internal("walking " + directory + ": " + ec.message());
  return Status::Ok();
}

Status DropPrivileges(const std::optional<RunAs>& run_as) {
  if (const size_t threads = ThreadCount(); threads != 1) {
    return Internal("dropping privileges needs a single-threaded process; it has " + std::to_string(threads) +
                    " threads");
  }
  if (run_as) {
    EmptyBoundingSet();
    if (::initgroups(run_as->name.c_str(), run_as->gid) != 0) {
      return Internal("initgroups(" + run_as->name + "): " + ErrnoText(errno));
    }
    if (::setresgid(run_as->gid, run_as->gid, run_as->gid) != 0) {
      return Internal("setresgid(" + std::to_string(run_as->gid) + "): " + ErrnoText(errno));
    }
    if (::setresuid(run_as->uid, run_as->uid, run_as->uid) != 0) {
      return Internal("setresuid(" + std::to_string(run_as->uid) + "): " + ErrnoText(errno));
    }
    if (::setuid(0) == 0 || ::seteuid(0) == 0) return Internal("root could be regained after dropping privileges");
  }
  TKMS_RETURN_IF_ERROR(ClearCapabilities());
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Internal("prctl(PR_SET_NO_NEW_PRIVS): " + ErrnoText(errno));
  // Changing credentials resets the dumpable flag: set it again.
  return ForbidCoreDumps();
}

std::string DescribePrivileges() {
  std::ifstream in("/proc/self/status");
  std::string line;
  std::string out;
  while (std::getline(in, line)) {
    for (const char* key : {"Uid:", "Gid:", "CapPrm:", "CapEff:", "NoNewPrivs:"}) {
      if (line.rfind(key, 0) != 0) continue;
      std::string value = line.substr(std::strlen(key));
      const size_t start = value.find_first_not_of(" \t");
      value = start == std::string::npos ? "" : value.substr(start);
      const size_t tab = value.find('\t');  // Uid/Gid: real, effective, saved, fs: the effective one
      if (tab != std::string::npos && (key[0] == 'U' || key[0] == 'G')) {
        const size_t next = value.find('\t', tab + 1);
        value = value.substr(tab + 1, next == std::string::npos ? std::string::npos : next - tab - 1);
      }
      std::string name(key, std::strlen(key) - 1);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out += (out.empty() ? "" : " ") + name + "=" + value;
    }
  }
  out += std::string(" dumpable=") + std::to_string(::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
  return out;
}

}  // namespace tkms::tkmsd
