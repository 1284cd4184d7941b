// HttpListener: one listening socket plus its worker threads, feeding an
// HttpHandler (http_handler.h) with HttpRequest values and writing the
// HttpResponse values it returns.
//
// Why: the HTTP library is an implementation detail of one file per
// transport. StartPlaintextListener (civet_transport.cpp, the only file that
// knows the HTTP library behind it) serves plain HTTP/1.1 (RFC 7230) on an
// IPv4 ADDR:PORT; the next transport terminates TLS in tkms's own code and
// fills Peer::tls_identity. Both follow the exchange of http_handler.h,
// enforce the same caps (header section, body per the handler's plan,
// request_timeout_ms for every socket read and write), answer
// "Expect: 100-continue", write each response in one write with TCP_NODELAY
// (the Nagle trap, docs/http.md) and decide keep-alive the same way.
//
// Thread-safety: Start/Stop/port belong to the owning thread; Stop is
// idempotent and must not be called from a handler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "firmware/base/status.h"
#include "web/http_handler.h"

namespace tkms::web {

struct ListenerConfig {
  std::string name;      // "Ua listener": prefixes every Start error
  std::string log_name;  // "ua": the listener= field of log lines
  std::string listen;    // "ADDR:PORT" (see ParseListenAddress)
  unsigned threads = 8;
  unsigned request_timeout_ms = 10000;     // every socket read/write of a request
  unsigned keep_alive_timeout_ms = 30000;  // 0: no keep-alive
  size_t max_header_bytes = 8192;          // request line plus header fields
};

class HttpListener {
 public:
  virtual ~HttpListener() = default;
  // The bound port (the real one when the configuration said port 0).
  virtual uint16_t port() const = 0;
  // Waits until the requests inside the handler have written their
  // responses, then stops accepting and joins the workers. Idempotent.
  virtual void Stop() = 0;
};

// Starts a plaintext HTTP/1.1 listener. `handler` must outlive it. Errors
// name the listener and address: "Ua listener 127.0.0.1:8080: cannot bind
// to 127.0.0.1:8080: 98 (Address already in use)" (kFailedPrecondition), or
// kInvalidArgument for a bad address or configuration.
Result<std::unique_ptr<HttpListener>> StartPlaintextListener(const ListenerConfig& config,
                                                             HttpHandler& handler);

}  // namespace tkms::web
