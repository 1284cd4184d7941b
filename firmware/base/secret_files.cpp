#include "firmware/base/secret_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace tkms {
namespace {

constexpr size_t kMaxSecretFileBytes = 4096;

std::string Errno() { return std::strerror(errno); }

// Reads a small owner-only file into SecretBytes.
Result<SecretBytes> ReadOwnerOnlyFile(const std::string& file, const char* what) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return NotFound(std::string(what) + " file " + file + ": " + Errno());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(std::string(what) + " file " + file + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied(std::string(what) + " file " + file + " is accessible by group or others (mode " +
                            mode + "); run: chmod 600 " + file);
  }
  SecretBytes content(kMaxSecretFileBytes + 1);
  size_t used = 0;
  while (used < content.size()) {
    const ssize_t n = ::read(fd, content.data() + used, content.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return Internal(std::string("reading ") + what + " file " + file + ": " + Errno());
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  ::close(fd);
  if (used > kMaxSecretFileBytes) {
    return InvalidArgument(std::string(what) + " file " + file + " is larger than 4096 bytes");
  }
  content.resize(used);
  return content;
}

Status WriteExclusive(const std::string& file, const uint8_t* data, size_t size, const char* what) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return FailedPrecondition(std::string(what) + " file " + file + " already exists; refusing to overwrite it");
    }
    return Internal(std::string("creating ") + what + " file " + file + ": " + Errno());
  }
  // The umask cannot widen 0600, but make the mode explicit anyway.
  (void)::fchmod(fd, 0600);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(file.c_str());
      return Internal(std::string("writing ") + what + " file " + file + ": " + Errno());
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(file.c_str());
    return Internal(std::string("writing ") + what + " file " + file + ": " + Errno());
  }
  return Status::Ok();
}

}  // namespace

Result<SecretBytes> ReadPin(const std::optional<std::string>& file, const char* env_var,
                            const char* what) {
  SecretBytes pin;
  if (file.has_value()) {
    auto content = ReadOwnerOnlyFile(*file, what);
    if (!content.ok()) return content.error();
    pin = std::move(*content);
    if (!pin.empty() && pin.back() == '\n') pin.pop_back();
    if (!pin.empty() && pin.back() == '\r') pin.pop_back();
  } else if (const char* value = std::getenv(env_var); value != nullptr) {
    pin.assign(value, value + std::strlen(value));
  } else {
    return InvalidArgument(std::string("no ") + what + ": give its file with the matching --*pin-file option or set " +
                           env_var + " (a PIN is never taken from the command line)");
  }
  if (pin.empty()) return InvalidArgument(std::string("the ") + what + " is empty");
  return pin;
}

Result<SecretBytes> ReadHexSecretFile(const std::string& file, const char* what) {
  auto content = ReadOwnerOnlyFile(file, what);
  if (!content.ok()) return content.error();
  SecretBytes out;
  out.reserve(content->size() / 2);
  int high = -1;
  for (uint8_t c : *content) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    if (v < 0) return InvalidArgument(std::string(what) + " file " + file + " is not hex");
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<uint8_t>((high << 4) | v));
      high = -1;
    }
  }
  if (high >= 0) return InvalidArgument(std::string(what) + " file " + file + " has an odd number of hex digits");
  if (out.empty()) return InvalidArgument(std::string(what) + " file " + file + " is empty");
  return out;
}

Status WriteHexSecretFile(const std::string& file, const SecretBytes& secret, const char* what) {
  static constexpr char kDigits[] = "0123456789abcdef";
  SecretBytes text;
  text.reserve(secret.size() * 2 + 1);
  for (uint8_t b : secret) {
    text.push_back(static_cast<uint8_t>(kDigits[b >> 4]));
    text.push_back(static_cast<uint8_t>(kDigits[b & 0x0F]));
  }
  text.push_back('\n');
  return WriteExclusive(file, text.data(), text.size(), what);
}

Status WriteSecretFile(const std::string& file, const SecretBytes& secret, const char* what) {
  return WriteExclusive(file, secret.data(), secret.size(), what);
}

}  // namespace tkms
