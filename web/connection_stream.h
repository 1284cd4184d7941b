// ConnectionStream: the byte stream of one accepted connection, plain TCP or
// TLS, behind the same non-blocking calls, so the listener's phase machine
// (event_listener.cpp) is written once for both.
//
// Why: the listener must not care whether a request arrived in clear or
// inside TLS, except for one thing it must never get wrong: the peer's
// verified identity. It comes from identity(), which a PlainStream never
// has and a TlsStream takes from its own mbedTLS session (tls_server.h), so
// nothing a client sends can produce one.
//
// Thread-safety: one stream belongs to the listener's I/O thread.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "web/http_message.h"
#include "web/tls_server.h"

namespace tkms::web {

class ConnectionStream {
 public:
  virtual ~ConnectionStream() = default;
  // kDone once application data can flow (at once for plain TCP).
  virtual IoResult Handshake() = 0;
  // Up to `cap` bytes into `buf`; *n set on kDone. kEof: the peer closed.
  virtual IoResult Read(char* buf, size_t cap, size_t* n) = 0;
  // From `buf`; *n set on kDone (may be less than len). After kWantWrite,
  // call again with the same bytes (TLS requires it).
  virtual IoResult Write(const char* buf, size_t len, size_t* n) = 0;
  // TLS close_notify (best effort); nothing for plain TCP.
  virtual void CloseNotify() = 0;
  // The peer's verified client certificate (TLS with client auth only).
  virtual std::optional<PeerIdentity> identity() const = 0;
  // Why the last step failed, for logs.
  virtual std::string error() const = 0;
};

// Plain TCP on a non-blocking socket (send with MSG_NOSIGNAL).
std::unique_ptr<ConnectionStream> MakePlainStream(int fd);
// The server side of TLS on a non-blocking socket, with `credentials` kept
// for the connection's lifetime (rotation never affects it).
std::unique_ptr<ConnectionStream> MakeTlsStream(int fd, std::shared_ptr<const TlsCredentials> credentials);

}  // namespace tkms::web
