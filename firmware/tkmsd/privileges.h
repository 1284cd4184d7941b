// Least privilege for tkmsd: no core dumps, no root, no capabilities, no
// way back (docs/tkmsd.md, "Privileges and memory").
//
// Why: the process holds a logged-in session to the token that keeps every
// long-term key, and SoftHSM2 (or an HSM's module) keeps the token's own
// secrets in this address space. A core file plus the token's files would
// give every key away, and a KMS running as root turns any memory-safety bug
// into the whole machine. So, in RunDaemon's order:
//   1. ForbidCoreDumps() before anything secret is read: not dumpable
//      (PR_SET_DUMPABLE 0: no core file, no ptrace or /proc/PID/mem by the
//      same user) and RLIMIT_CORE 0.
//   2. ResolveRunAs(): as root, --user or the configuration's "user" names
//      the account to run as; as root without one tkmsd refuses to start
//      unless --allow-root (or --dev, a throw-away development token) says
//      so. Started as another user, it runs as that user.
//   3. The listening sockets are bound (ports below 1024 need root) while
//      tkmsd is still one thread.
//   4. DropPrivileges(): the capability bounding set emptied, the groups,
//      gid and uid set (real, effective and saved), then every capability
//      cleared and PR_SET_NO_NEW_PRIVS set; it fails unless the process is
//      single-threaded (capabilities are per thread) and checks that root
//      cannot be regained. Only then are the PIN and the token opened.
// The system call filter is systemd's (SystemCallFilter= in the unit).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "firmware/base/status.h"

namespace tkms::tkmsd {

// PR_SET_DUMPABLE 0 and RLIMIT_CORE 0 (soft and hard).
Status ForbidCoreDumps();

struct RunAs {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
};

// Whom to run as. `user` is --user or else the configuration's "user"
// (empty: none). Root without a user: refused unless allow_root (the
// caller logs that it keeps running as root). Not root: a user must be
// this process's own (there is nothing to drop to).
Result<std::optional<RunAs>> ResolveRunAs(const std::string& user, bool allow_root);

// Gives `directory` (and, with `recursive`, everything in it) to run_as, as
// --dev does for its state directory when started as root.
Status GiveDirectoryTo(const std::string& directory, const RunAs& run_as, bool recursive);

// Steps 4 above. run_as empty: keeps the user, still clears capabilities
// and sets no_new_privs. Must be called while the process has one thread.
Status DropPrivileges(const std::optional<RunAs>& run_as);

// For the start-up log and tests: "uid=999 gid=999 caps=0 no_new_privs=1".
std::string DescribePrivileges();

}  // namespace tkms::tkmsd
