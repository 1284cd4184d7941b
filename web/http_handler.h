// HttpHandler: what a transport calls for each request; BodyPlan: how much
// of the body the handler wants read before it answers.
//
// Why: the handlers (TS 33.328 Annex A on the Ua listener, the admin
// listener, the benchmark echo) decide; the transport (transport.h) only
// moves bytes. The body is the one part a handler must bound before it is
// read: PlanBody() sees the head (body_state kNotRead, body empty) and names
// a per-route cap, so a transport never buffers more than that (RFC 7230
// §3.3.3; 413 per RFC 7231 §6.5.11 is the handler's answer). The exchange,
// for every transport:
//   1. head complete: request.framing = DecideBodyFraming(headers)
//   2. plan = handler.PlanBody(request)
//   3. kRead: "100 Continue" if expected, then read the body (Content-Length
//      or chunked, decoded) up to plan.max_body_bytes -> request.body_state;
//      kDiscard: read and drop a small Content-Length body (<= cap, no
//      Expect) so the connection can be reused; kSkip: leave it (the
//      connection is closed after the response unless there is no body)
//   4. response = handler.Handle(request)
//   5. one write of SerializeResponse(...); response.on_written(ok)
// A framing error (request.framing.error) is never read past: the transport
// treats it like kSkip whatever the plan says.
//
// Thread-safety: a handler is called concurrently from the transport's
// worker threads. Exceptions are caught by the transport (500, connection
// closed) and never reach a C library.
#pragma once

#include <cstddef>

#include "web/http_message.h"

namespace tkms::web {

// What a listener did to a connection by itself, with no request reaching
// the handler (for metrics: tkms_connection_events_total).
enum class ConnectionEvent : uint8_t {
  kRefusedListenerLimit,  // max_connections reached: 503 or closed at accept
  kRefusedSourceLimit,    // max_connections_per_source reached
  kRefusedNoDescriptors,  // the process is out of file descriptors
  kTlsHandshakeFailed,    // bad handshake, protocol version, suite or client certificate
  kTimedOut,              // handshake or first request not within request_timeout_ms, or a client not reading
};
inline constexpr size_t kConnectionEvents = 5;
// "refused_listener_limit", "refused_source_limit", ... (metric label values).
std::string_view ConnectionEventName(ConnectionEvent event);

struct BodyPlan {
  enum class Action : uint8_t { kRead, kDiscard, kSkip };
  Action action = Action::kSkip;
  // kRead: the largest body (decoded) the handler accepts; kDiscard: the
  // largest Content-Length body worth reading to keep the connection.
  size_t max_body_bytes = 0;

  static BodyPlan Read(size_t max) { return {Action::kRead, max}; }
  static BodyPlan Discard(size_t max) { return {Action::kDiscard, max}; }
  static BodyPlan Skip() { return {Action::kSkip, 0}; }
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Step 2: the head has arrived (request.body empty, body_state kNotRead).
  virtual BodyPlan PlanBody(const HttpRequest& head) = 0;
  // Step 4: the body was handled as planned (see request.body_state).
  virtual HttpResponse Handle(const HttpRequest& request) = 0;
  // The transport's own HTTP parser refused a request (malformed request
  // line, header section too large, unsupported version ...) with `status`
  // and answered it itself; for metrics. Must not throw.
  virtual void OnProtocolError(int status) noexcept { (void)status; }
  // The listener refused or dropped a connection by itself; for metrics.
  virtual void OnConnectionEvent(ConnectionEvent event) noexcept { (void)event; }
};

}  // namespace tkms::web
