#include "firmware/base/file_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tkms {

Result<std::string> ReadRegularFile(const std::string& path, size_t max_bytes, const std::string& what) {
  const std::string name = what + " " + path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(name + " does not exist");
    if (errno == ELOOP) return InvalidArgument(name + " is a symbolic link");
    return Unavailable("opening " + name + ": " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Unavailable("stat " + name + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return InvalidArgument(name + " is not a regular file");
  if (st.st_size < 0 || static_cast<unsigned long long>(st.st_size) > max_bytes) {
    return InvalidArgument(name + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  std::string text(static_cast<size_t>(st.st_size) + 1, '\0');
  size_t got = 0;
  for (;;) {
    const ssize_t r = ::read(fd, text.data() + got, text.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Unavailable("reading " + name + ": " + std::strerror(errno));
    if (r == 0) break;
    got += static_cast<size_t>(r);
    if (got == text.size()) return InvalidArgument(name + " grew while being read");
  }
  text.resize(got);
  return text;
}

}  // namespace tkms
