// HttpListener: one listening socket, an event loop that owns every
// connection on it, and a pool of handler threads, feeding an HttpHandler
// (http_handler.h) with HttpRequest values and writing the HttpResponse
// values it returns; plain HTTP/1.1 or HTTPS (TLS terminated in
// tls_server.h) with the same code path after the handshake.
//
// Why an event loop (docs/architecture.md, "The network edge"): a
// thread-per-connection server (CivetWeb) is held by whoever holds a
// connection, so 8 idle or slow clients silenced it. Here a connection costs
// a small struct until it has sent a complete request; only complete
// requests reach the handler threads. Every connection is bounded:
//   - request_timeout_ms: a total deadline for one request, from its first
//     byte (from accept, TLS handshake included, for the first) until the
//     body is complete; then 408 and close;
//   - keep_alive_timeout_ms: the idle time allowed between requests;
//   - max_connections and max_connections_per_source: beyond them a new
//     connection is answered 503 (plaintext) or closed (TLS) at once;
//   - max_pending_requests: complete requests waiting for a handler thread;
//     beyond it 503 at once, and Ready() turns false;
//   - the head (max_header_bytes, max_header_fields: 431) and the body (the
//     handler's plan: 413) as before.
// A refusal is written, the sending side shut down, and the connection read
// and dropped for up to linger_ms before it is closed (RFC 9112 §9.6), so
// the client sees the answer rather than a reset.
//
// Thread-safety: Start/Stop/port belong to the owning thread; Stop is
// idempotent and must not be called from a handler. Ready() is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "firmware/base/status.h"
#include "web/http_handler.h"

namespace tkms::web {

class TlsServer;

// A listening TCP socket made before its listener starts. tkmsd binds every
// port while it may still be root and single-threaded, then drops its
// privileges (firmware/tkmsd/privileges.h) and starts the listeners on
// these sockets. Errors are StartListener's.
class ListenSocket {
 public:
  // name and listen as in ListenerConfig; reuse_port sets SO_REUSEPORT.
  static Result<std::shared_ptr<ListenSocket>> Bind(const std::string& name, const std::string& listen,
                                                    bool reuse_port);
  ~ListenSocket();  // closes the socket unless a listener took it
  ListenSocket(const ListenSocket&) = delete;
  ListenSocket& operator=(const ListenSocket&) = delete;

  uint16_t port() const { return port_; }  // the real one when listen said port 0
  const std::string& address() const { return address_; }
  // The descriptor, now the caller's; -1 once taken.
  int Take();

 private:
  ListenSocket(int fd, std::string address, uint16_t port) : fd_(fd), address_(std::move(address)), port_(port) {}
  int fd_;
  std::string address_;
  uint16_t port_;
};

struct ListenerConfig {
  std::string name;      // "Ua listener": prefixes every Start error
  std::string log_name;  // "ua": the listener= field of log lines
  std::string listen;    // "ADDR:PORT" (see ParseListenAddress)
  unsigned threads = 8;  // handler threads
  unsigned request_timeout_ms = 10000;     // total deadline per request (head and body)
  unsigned keep_alive_timeout_ms = 30000;  // idle between requests; 0: no keep-alive
  size_t max_header_bytes = 8192;          // request line plus header fields
  size_t max_header_fields = 100;
  size_t max_connections = 4096;           // open connections on this listener
  size_t max_connections_per_source = 256; // open connections from one IP address
  size_t max_pending_requests = 256;       // complete requests waiting for a handler thread
  unsigned drain_timeout_ms = 5000;        // Stop(): time given to requests in progress
  unsigned linger_ms = 2000;               // reading after a refusal before closing
  bool reuse_port = false;                 // SO_REUSEPORT: several processes share the port
  // Set: HTTPS with these credentials (rotated through TlsServer::Replace).
  std::shared_ptr<TlsServer> tls;
  // Set: listen on this socket (bound to `listen` earlier) instead of
  // binding now; the listener takes it.
  std::shared_ptr<ListenSocket> socket;
};

class HttpListener {
 public:
  virtual ~HttpListener() = default;
  // The bound port (the real one when the configuration said port 0).
  virtual uint16_t port() const = 0;
  // Stops accepting, closes idle connections, gives the requests in
  // progress up to drain_timeout_ms to be answered (with Connection:
  // close), then closes the rest and joins the threads. Idempotent.
  virtual void Stop() = 0;
  // False while a new request could not be taken at once: the connection
  // cap is reached, the handler queue is full, or the listener is stopping.
  virtual bool Ready() const = 0;
};

// Starts an HTTP/1.1 listener (HTTPS when config.tls is set). `handler`
// must outlive it. Errors name the listener and address: "Ua listener
// 127.0.0.1:8080: cannot bind to 127.0.0.1:8080: Address already in use"
// (kFailedPrecondition), or kInvalidArgument for a bad address or
// configuration.
Result<std::unique_ptr<HttpListener>> StartListener(const ListenerConfig& config, HttpHandler& handler);

}  // namespace tkms::web
