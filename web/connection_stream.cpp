#include "web/connection_stream.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace tkms::web {
namespace {

class PlainStream final : public ConnectionStream {
 public:
  explicit PlainStream(int fd) : fd_(fd) {}
  IoResult Handshake() override { return IoResult::kDone; }
  IoResult Read(char* buf, size_t cap, size_t* n) override {
    while (true) {
      const ssize_t r = recv(fd_, buf, cap, 0);
      if (r > 0) {
        *n = static_cast<size_t>(r);
        return IoResult::kDone;
      }
      if (r == 0) return IoResult::kEof;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult::kWantRead;
      error_ = std::string("read: ") + std::strerror(errno);
      return IoResult::kError;
    }
  }
  IoResult Write(const char* buf, size_t len, size_t* n) override {
    while (true) {
      const ssize_t r = send(fd_, buf, len, MSG_NOSIGNAL);
      if (r >= 0) {
        *n = static_cast<size_t>(r);
        return IoResult::kDone;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult::kWantWrite;
      error_ = std::string("write: ") + std::strerror(errno);
      return IoResult::kError;
    }
  }
  void CloseNotify() override {}
  std::optional<PeerIdentity> identity() const override { return std::nullopt; }
  std::string error() const override { return error_; }

 private:
  int fd_;
  std::string error_;
};

class TlsStream final : public ConnectionStream {
 public:
  TlsStream(int fd, std::shared_ptr<const TlsCredentials> credentials) : tls_(fd, std::move(credentials)) {}
  IoResult Handshake() override { return tls_.Handshake(); }
  IoResult Read(char* buf, size_t cap, size_t* n) override { return tls_.Read(buf, cap, n); }
  IoResult Write(const char* buf, size_t len, size_t* n) override { return tls_.Write(buf, len, n); }
  void CloseNotify() override { tls_.CloseNotify(); }
  std::optional<PeerIdentity> identity() const override { return tls_.identity(); }
  std::string error() const override { return tls_.error(); }

 private:
  TlsConnection tls_;
};

}  // namespace

std::unique_ptr<ConnectionStream> MakePlainStream(int fd) { return std::make_unique<PlainStream>(fd); }

std::unique_ptr<ConnectionStream> MakeTlsStream(int fd, std::shared_ptr<const TlsCredentials> credentials) {
  return std::make_unique<TlsStream>(fd, std::move(credentials));
}

}  // namespace tkms::web
