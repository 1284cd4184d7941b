// libtkms_fault_io.so: a TEST-ONLY LD_PRELOAD shim that makes the file
// system fail under a running tkmsd (issue 14, docs/reliability.md "Disk
// faults"), deterministically and reversibly, without root or a tmpfs.
//
// While the file named by $TKMS_FAULT_IO_TRIGGER exists, it is read on every
// intercepted call; its lines say what fails:
//   errno=ENOSPC      the error (ENOSPC, EROFS, EIO, EDQUOT; default ENOSPC)
//   fd=2              a descriptor whose writes fail (the log: stderr)
//   path=/abs/prefix  files at or under this path: writes and fsyncs on
//                     descriptors open on them, creating files (open with
//                     O_CREAT of a file that is not there, fopen "w"/"a"
//                     likewise), mkdir, rename, and the stdio calls SoftHSM2
//                     uses (fwrite, fflush on such files). With EROFS also
//                     what a read-only mount refuses besides: opening
//                     existing files for writing, unlink, ftruncate. (A full
//                     disk still lets a process open, truncate and unlink.)
// (several fd= and path= lines may be given). With no trigger file every
// call goes straight to the C library. Reads never fail: the point is a
// full or read-only disk, not a missing one.
//
// Never installed, built only with the tests; does not mix with
// AddressSanitizer (ASan must be the first DSO): its tests run in the debug
// and release presets only (tests/integration/CMakeLists.txt).
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>

namespace {

constexpr int kMaxEntries = 8;
constexpr size_t kMaxPath = 512;

struct Faults {
  bool active = false;
  int error = ENOSPC;
  int fds[kMaxEntries];
  int nfds = 0;
  char paths[kMaxEntries][kMaxPath];
  int npaths = 0;
};

// Raw system calls only in here: the shim must not call what it intercepts.
bool ReadFaults(Faults& f) {
  const char* trigger = std::getenv("TKMS_FAULT_IO_TRIGGER");
  if (trigger == nullptr || *trigger == '\0') return false;
  const int saved = errno;
  const long fd = syscall(SYS_openat, AT_FDCWD, trigger, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    errno = saved;
    return false;
  }
  char buf[4096];
  size_t len = 0;
  for (;;) {
    const long n = syscall(SYS_read, fd, buf + len, sizeof buf - 1 - len);
    if (n <= 0) break;
    len += static_cast<size_t>(n);
    if (len >= sizeof buf - 1) break;
  }
  syscall(SYS_close, fd);
  errno = saved;
  buf[len] = '\0';
  f.active = true;
  for (char* line = buf; line != nullptr && *line != '\0';) {
    char* end = strchr(line, '\n');
    if (end != nullptr) *end = '\0';
    if (strncmp(line, "errno=", 6) == 0) {
      const char* e = line + 6;
      if (strcmp(e, "EROFS") == 0) f.error = EROFS;
      if (strcmp(e, "EIO") == 0) f.error = EIO;
      if (strcmp(e, "EDQUOT") == 0) f.error = EDQUOT;
      if (strcmp(e, "ENOSPC") == 0) f.error = ENOSPC;
    } else if (strncmp(line, "fd=", 3) == 0 && f.nfds < kMaxEntries) {
      f.fds[f.nfds++] = atoi(line + 3);
    } else if (strncmp(line, "path=", 5) == 0 && f.npaths < kMaxEntries && strlen(line + 5) < kMaxPath) {
      strcpy(f.paths[f.npaths++], line + 5);
    }
    line = end != nullptr ? end + 1 : nullptr;
  }
  return true;
}

bool UnderPrefix(const Faults& f, const char* path) {
  if (path == nullptr) return false;
  for (int i = 0; i < f.npaths; ++i) {
    const size_t n = strlen(f.paths[i]);
    if (n == 0) continue;
    if (strncmp(path, f.paths[i], n) == 0 && (path[n] == '\0' || path[n] == '/' || f.paths[i][n - 1] == '/')) {
      return true;
    }
  }
  return false;
}

// The absolute path of `path` (relative to the working directory).
bool Absolute(const char* path, char* out, size_t size) {
  if (path == nullptr) return false;
  if (path[0] == '/') {
    if (strlen(path) >= size) return false;
    strcpy(out, path);
    return true;
  }
  const long n = syscall(SYS_getcwd, out, size);
  if (n <= 0) return false;
  const size_t used = strlen(out);
  if (used + 1 + strlen(path) >= size) return false;
  out[used] = '/';
  strcpy(out + used + 1, path);
  return true;
}

// Does the fault apply to `path`? Sets errno when it does. `read_only_only`:
// only if the error is EROFS (what a full disk still allows).
bool PathFails(const char* path, bool read_only_only = false) {
  Faults f;
  if (!ReadFaults(f) || f.npaths == 0) return false;
  if (read_only_only && f.error != EROFS) return false;
  char abs[4096];
  if (!Absolute(path, abs, sizeof abs) || !UnderPrefix(f, abs)) return false;
  errno = f.error;
  return true;
}

// Does the fault apply to descriptor `fd` (listed, or open on a path under a
// prefix)? Sets errno when it does.
bool FdFails(int fd) {
  Faults f;
  if (!ReadFaults(f)) return false;
  for (int i = 0; i < f.nfds; ++i) {
    if (f.fds[i] == fd) {
      errno = f.error;
      return true;
    }
  }
  if (f.npaths == 0 || fd < 0) return false;
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char target[4096];
  const int saved = errno;
  const long n = syscall(SYS_readlinkat, AT_FDCWD, link, target, sizeof target - 1);
  errno = saved;
  if (n <= 0) return false;
  target[n] = '\0';
  if (!UnderPrefix(f, target)) return false;
  errno = f.error;
  return true;
}

// Paths the shim can judge: absolute, or relative to the working directory.
bool Resolvable(int dirfd, const char* path) { return dirfd == AT_FDCWD || (path != nullptr && path[0] == '/'); }

bool WritesOrCreates(int flags) { return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0; }


template <typename F>
F Next(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" {

ssize_t write(int fd, const void* buf, size_t n) {
  if (FdFails(fd)) return -1;
  return syscall(SYS_write, fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  if (FdFails(fd)) return -1;
  return syscall(SYS_pwrite64, fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) { return pwrite(fd, buf, n, off); }

ssize_t writev(int fd, const struct iovec* iov, int count) {
  if (FdFails(fd)) return -1;
  return syscall(SYS_writev, fd, iov, count);
}

int fsync(int fd) {
  if (FdFails(fd)) return -1;
  return static_cast<int>(syscall(SYS_fsync, fd));
}

int fdatasync(int fd) {
  if (FdFails(fd)) return -1;
  return static_cast<int>(syscall(SYS_fdatasync, fd));
}

int ftruncate(int fd, off_t length) {
  Faults f;
  if (ReadFaults(f) && f.error == EROFS && FdFails(fd)) return -1;
  return static_cast<int>(syscall(SYS_ftruncate, fd, length));
}
int ftruncate64(int fd, off_t length) { return ftruncate(fd, length); }

int openat(int dirfd, const char* path, int flags, ...) {
  mode_t mode = 0;
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, int));
    va_end(ap);
  }
  if (WritesOrCreates(flags) && Resolvable(dirfd, path)) {
    struct stat st;
    const int saved = errno;
    const bool exists = syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0) == 0;
    errno = saved;
    // Creating a file needs space; opening one that is there for writing
    // only fails on a read-only file system.
    if (PathFails(path, /*read_only_only=*/exists)) return -1;
  }
  return static_cast<int>(syscall(SYS_openat, dirfd, path, flags, mode));
}

int open(const char* path, int flags, ...) {
  mode_t mode = 0;
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, int));
    va_end(ap);
  }
  return openat(AT_FDCWD, path, flags, mode);
}
int open64(const char* path, int flags, ...) {
  mode_t mode = 0;
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, int));
    va_end(ap);
  }
  return openat(AT_FDCWD, path, flags, mode);
}
int openat64(int dirfd, const char* path, int flags, ...) {
  mode_t mode = 0;
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, int));
    va_end(ap);
  }
  return openat(dirfd, path, flags, mode);
}

int rename(const char* from, const char* to) {
  if (PathFails(from) || PathFails(to)) return -1;
  return static_cast<int>(syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to));
}

int unlink(const char* path) {
  if (PathFails(path, /*read_only_only=*/true)) return -1;
  return static_cast<int>(syscall(SYS_unlinkat, AT_FDCWD, path, 0));
}

int unlinkat(int dirfd, const char* path, int flags) {
  if (Resolvable(dirfd, path) && PathFails(path, /*read_only_only=*/true)) return -1;
  return static_cast<int>(syscall(SYS_unlinkat, dirfd, path, flags));
}

int renameat(int from_dir, const char* from, int to_dir, const char* to) {
  if ((Resolvable(from_dir, from) && PathFails(from)) || (Resolvable(to_dir, to) && PathFails(to))) {
    return -1;
  }
  return static_cast<int>(syscall(SYS_renameat, from_dir, from, to_dir, to));
}

int mkdirat(int dirfd, const char* path, mode_t mode) {
  if (Resolvable(dirfd, path) && PathFails(path)) return -1;
  return static_cast<int>(syscall(SYS_mkdirat, dirfd, path, mode));
}

int remove(const char* path) {
  if (PathFails(path, /*read_only_only=*/true)) return -1;
  static auto real = Next<int (*)(const char*)>("remove");
  return real(path);
}

int mkdir(const char* path, mode_t mode) {
  if (PathFails(path)) return -1;
  return static_cast<int>(syscall(SYS_mkdirat, AT_FDCWD, path, mode));
}

FILE* fopen(const char* path, const char* mode) {
  if (mode != nullptr && strpbrk(mode, "wa+") != nullptr) {
    struct stat st;
    const int saved = errno;
    const bool exists = syscall(SYS_newfstatat, AT_FDCWD, path, &st, 0) == 0;
    errno = saved;
    if (PathFails(path, /*read_only_only=*/exists)) return nullptr;
  }
  static auto real = Next<FILE* (*)(const char*, const char*)>("fopen");
  return real(path, mode);
}
FILE* fopen64(const char* path, const char* mode) { return fopen(path, mode); }

size_t fwrite(const void* buf, size_t size, size_t count, FILE* stream) {
  if (FdFails(fileno(stream))) return 0;
  static auto real = Next<size_t (*)(const void*, size_t, size_t, FILE*)>("fwrite");
  return real(buf, size, count, stream);
}

int fflush(FILE* stream) {
  if (stream != nullptr && FdFails(fileno(stream))) return EOF;
  static auto real = Next<int (*)(FILE*)>("fflush");
  return real(stream);
}

}  // extern "C"
