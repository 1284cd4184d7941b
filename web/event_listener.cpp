// The event-driven HTTP/1.1 listener (transport.h: StartListener), plain or
// TLS (tls_server.h), on Linux epoll.
//
// One I/O thread owns the listening socket and every connection: it accepts
// (caps per source address and in total), runs TLS handshakes, reads and
// parses heads strictly (http1_parser.h), frames and reads bodies
// (DecideBodyFraming, Content-Length or ChunkedDecoder) as the handler's plan
// says, and writes responses. A request is handed to a handler thread only
// when it is complete; the handler's answer comes back through a queue and
// an eventfd. Deadlines live in one ordered set; the loop's epoll_wait
// timeout is the nearest one.
//
// Connection phases:
//   kHandshake -> kHead -> [kBody] -> kHandling -> kWriting -> kIdle -> kHead ...
//                                                        \-> kLinger -> closed
// Epoll is edge-triggered; after every event (and after a response is
// written, for pipelined bytes already buffered) Advance() runs the phase
// machine until it would block.
//
// No exception crosses a thread boundary or the epoll loop: handlers are
// called inside try/catch (500, close), and the loop's own steps catch and
// close the one connection concerned.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "firmware/base/log.h"
#include "web/annex_a.h"
#include "web/http1_parser.h"
#include "web/http_framing.h"
#include "web/connection_stream.h"
#include "web/transport.h"

namespace tkms::web {
namespace {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;
using Millis = std::chrono::milliseconds;

constexpr size_t kReadChunk = 16384;
constexpr int kListenBacklog = 4096;  // the kernel caps it at net.core.somaxconn
constexpr uint64_t kListenerTag = 0;  // epoll data of the listening socket
constexpr uint64_t kWakeTag = 1;      // epoll data of the eventfd
constexpr uint64_t kFirstConnectionId = 2;

std::string ErrnoText(int err) { return std::strerror(err); }

// --- connections --------------------------------------------------------------

enum class Phase : uint8_t { kHandshake, kIdle, kHead, kBody, kHandling, kWriting, kLinger };

struct Connection {
  uint64_t id = 0;
  int fd = -1;
  std::string source;  // IP address, the key of the per-source cap
  std::string peer;    // "ip:port"
  std::unique_ptr<ConnectionStream> stream;
  Phase phase = Phase::kHandshake;
  TimePoint deadline{};
  std::string in;  // bytes read and not yet consumed
  size_t head_scan_from = 0;  // ScanForHeadEnd's resume point in `in`
  std::string out;
  size_t out_offset = 0;
  // The request being read.
  HttpRequest request;
  bool discard_body = false;   // kBody: dropping a Content-Length body (plan kDiscard)
  uint64_t body_remaining = 0; // kBody, Content-Length framing
  std::optional<ChunkedDecoder> chunked;
  bool body_consumed = false;  // the whole body was read: the connection may carry another request
  // After the current write.
  bool close_after_write = false;
  std::function<void(bool)> on_written;
  unsigned requests = 0;
};

struct Job {
  uint64_t connection_id;
  HttpRequest request;
  bool body_consumed;
};

struct Completion {
  uint64_t connection_id;
  std::string wire;
  bool keep_alive;
  std::function<void(bool)> on_written;
};

// Counts events that are logged at most once per second per kind (a flood
// must not become a log flood); the next line reports how many were folded.
class LogBudget {
 public:
  bool Allow(TimePoint now, uint64_t* suppressed) {
    if (now - window_ >= std::chrono::seconds(1)) {
      window_ = now;
      used_ = 0;
    }
    if (used_ < kPerSecond) {
      ++used_;
      *suppressed = suppressed_;
      suppressed_ = 0;
      return true;
    }
    ++suppressed_;
    return false;
  }
  // Lines left out whose window has ended and that no later line reported
  // (a burst that then stopped); 0 if none.
  uint64_t TakeUnreported(TimePoint now) {
    if (suppressed_ == 0 || now - window_ < std::chrono::seconds(1)) return 0;
    const uint64_t n = suppressed_;
    suppressed_ = 0;
    return n;
  }

 private:
  static constexpr unsigned kPerSecond = 20;
  TimePoint window_{};
  unsigned used_ = 0;
  uint64_t suppressed_ = 0;
};

class EventListener final : public HttpListener {
 public:
  EventListener(ListenerConfig config, HttpHandler& handler) : config_(std::move(config)), handler_(handler) {}
  ~EventListener() override {
    Stop();
    if (listen_fd_ >= 0) close(listen_fd_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    if (spare_fd_ >= 0) close(spare_fd_);
  }
  EventListener(const EventListener&) = delete;
  EventListener& operator=(const EventListener&) = delete;

  Status Start(const ListenAddress& address);
  uint16_t port() const override { return port_; }
  void Stop() override;
  bool Ready() const override { return ready_.load(std::memory_order_relaxed); }

 private:
  // I/O thread.
  void Loop();
  void BeginDrain(TimePoint now);
  void AcceptAll(TimePoint now);
  void RefuseAtAccept(int fd, const std::string& source, ConnectionEvent event, std::string_view reason,
                      TimePoint now);
  void OnEvent(uint64_t id, uint32_t events, TimePoint now);
  void Advance(Connection& c, TimePoint now);
  bool ReadMore(Connection& c, TimePoint now);  // false: stop advancing (blocked or closed)
  bool ParseHead(Connection& c, TimePoint now);
  void StartBody(Connection& c, TimePoint now);
  bool ConsumeBody(Connection& c, TimePoint now);
  void Dispatch(Connection& c, TimePoint now);
  void Refuse(Connection& c, int status, std::string_view label, std::string_view detail, TimePoint now);
  void QueueWrite(Connection& c, std::string wire, bool close_after, std::function<void(bool)> on_written);
  bool Flush(Connection& c, TimePoint now);  // false: closed or blocked
  void AfterWrite(Connection& c, TimePoint now);
  void BeginLinger(Connection& c, TimePoint now);
  void Linger(Connection& c, TimePoint now);
  void OnDeadline(Connection& c, TimePoint now);
  void SetDeadline(Connection& c, TimePoint deadline);
  void Close(Connection& c, std::string_view why);
  void DrainCompletions(TimePoint now);
  void UpdateReadiness();
  Connection* Find(uint64_t id);
  // `peer`: "ip:port", or the source address when there is no connection yet.
  void LogConnectionEvent(std::string_view event, std::string_view peer, std::string_view detail, TimePoint now);

  // Handler threads.
  void Work();

  ListenerConfig config_;
  HttpHandler& handler_;
  std::string address_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int spare_fd_ = -1;  // closed to accept-and-drop when the process is out of descriptors

  std::thread io_thread_;
  std::vector<std::thread> workers_;
  std::mutex stop_mu_;
  bool stopped_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> ready_{false};

  // I/O thread state.
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::unordered_map<std::string, size_t> per_source_;
  std::set<std::pair<TimePoint, uint64_t>> deadlines_;
  uint64_t next_id_ = kFirstConnectionId;
  size_t handling_ = 0;  // connections in kHandling
  bool draining_ = false;
  TimePoint drain_deadline_{};
  LogBudget log_budget_;

  // Between the I/O thread and the handler threads.
  std::mutex jobs_mu_;
  std::condition_variable jobs_cv_;
  std::deque<Job> jobs_;
  bool workers_exit_ = false;
  std::mutex done_mu_;
  std::vector<Completion> done_;
};

Status EventListener::Start(const ListenAddress& address) {
  const std::string prefix = config_.name + " " + config_.listen + ": ";
  std::shared_ptr<ListenSocket> socket = config_.socket;
  if (!socket) {
    auto bound = ListenSocket::Bind(config_.name, config_.listen, config_.reuse_port);
    if (!bound.ok()) return bound.error();
    socket = std::move(*bound);
  }
  listen_fd_ = socket->Take();
  if (listen_fd_ < 0) return FailedPrecondition(prefix + "the socket was given to another listener");
  port_ = socket->port();
  address_ = address.address;

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) return Internal(prefix + "epoll/eventfd: " + ErrnoText(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerTag;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) return Internal(prefix + "epoll_ctl: " + ErrnoText(errno));
  ev.data.u64 = kWakeTag;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) return Internal(prefix + "epoll_ctl: " + ErrnoText(errno));
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);

  for (unsigned i = 0; i < config_.threads; ++i) workers_.emplace_back([this] { Work(); });
  ready_.store(true);
  io_thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void EventListener::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  ready_.store(false);
  if (io_thread_.joinable()) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(wake_fd_, &one, sizeof one);
    io_thread_.join();
  }
  {
    std::lock_guard<std::mutex> jobs_lock(jobs_mu_);
    workers_exit_ = true;
  }
  jobs_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  // Requests a handler finished after the connection was closed: tell them.
  for (Completion& done : done_) {
    if (done.on_written) done.on_written(false);
  }
  done_.clear();
}

// --- the loop -------------------------------------------------------------------

void EventListener::Loop() {
  std::vector<epoll_event> events(256);
  while (true) {
    TimePoint now = SteadyClock::now();
    if (stopping_.load() && !draining_) BeginDrain(now);
    if (draining_ && (connections_.empty() || now >= drain_deadline_)) break;

    int timeout_ms = 1000;
    if (!deadlines_.empty()) {
      const auto wait = std::chrono::ceil<Millis>(deadlines_.begin()->first - now).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(wait, 0, 1000));
    }
    if (draining_) {
      const auto wait = std::chrono::ceil<Millis>(drain_deadline_ - now).count();
      timeout_ms = std::min(timeout_ms, static_cast<int>(std::clamp<int64_t>(wait, 0, 1000)));
    }
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      LogLine(LogLevel::kError, "listener_failed").Add("listener", config_.log_name).Add("detail", ErrnoText(errno));
      break;
    }
    now = SteadyClock::now();
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[static_cast<size_t>(i)].data.u64;
      if (tag == kListenerTag) {
        if (!draining_) AcceptAll(now);
      } else if (tag == kWakeTag) {
        uint64_t count = 0;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &count, sizeof count);
      } else {
        OnEvent(tag, events[static_cast<size_t>(i)].events, now);
      }
    }
    DrainCompletions(now);
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      const uint64_t id = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      if (Connection* c = Find(id)) {
        c->deadline = TimePoint{};
        OnDeadline(*c, now);
      }
    }
    if (const uint64_t left_out = log_budget_.TakeUnreported(now); left_out > 0) {
      LogLine(LogLevel::kInfo, "log_suppressed").Add("listener", config_.log_name).Add("lines", left_out);
    }
    UpdateReadiness();
  }
  // Drain time is over: requests still queued are dropped unhandled (their
  // connections close now: no ticket is issued for a client that is gone),
  // whatever is left is closed; handlers still running get
  // on_written(false) when they finish (Stop()).
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    jobs_.clear();
  }
  std::vector<uint64_t> rest;
  for (auto& [id, c] : connections_) rest.push_back(id);
  for (uint64_t id : rest) {
    if (Connection* c = Find(id)) Close(*c, "drain timeout");
  }
}

// Stop(): no new connections (the kernel refuses them, so a load balancer
// or another process on the port takes them); idle connections and those
// that have not finished a request head go at once; requests being read,
// handled or written get until drain_deadline_.
void EventListener::BeginDrain(TimePoint now) {
  draining_ = true;
  drain_deadline_ = now + Millis(config_.drain_timeout_ms);
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
  close(listen_fd_);
  listen_fd_ = -1;
  std::vector<uint64_t> idle;
  for (auto& [id, c] : connections_) {
    if (c->phase == Phase::kIdle || c->phase == Phase::kHandshake || (c->phase == Phase::kHead && c->in.empty())) {
      idle.push_back(id);
    }
  }
  for (uint64_t id : idle) {
    if (Connection* c = Find(id)) Close(*c, "draining");
  }
}

void EventListener::UpdateReadiness() {
  size_t pending = 0;
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    pending = jobs_.size();
  }
  ready_.store(!stopping_.load() && connections_.size() < config_.max_connections &&
                   pending < config_.max_pending_requests,
               std::memory_order_relaxed);
}

Connection* EventListener::Find(uint64_t id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second.get();
}

void EventListener::LogConnectionEvent(std::string_view event, std::string_view peer, std::string_view detail,
                                       TimePoint now) {
  uint64_t suppressed = 0;
  if (!log_budget_.Allow(now, &suppressed)) return;
  LogLine line(LogLevel::kInfo, event);
  line.Add("listener", config_.log_name);
  if (!peer.empty()) line.Add("peer", peer);
  line.Add("detail", detail);
  if (suppressed > 0) line.Add("suppressed", suppressed);
}

void EventListener::AcceptAll(TimePoint now) {
  while (true) {
    sockaddr_in from{};
    socklen_t len = sizeof from;
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&from), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && spare_fd_ >= 0) {
        // Out of descriptors: accept with the spare one and drop the
        // connection, so the backlog does not keep the socket readable.
        close(spare_fd_);
        const int dropped = accept(listen_fd_, nullptr, nullptr);
        if (dropped >= 0) close(dropped);
        spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        handler_.OnConnectionEvent(ConnectionEvent::kRefusedNoDescriptors);
        LogConnectionEvent("connection_refused", "", "out of file descriptors", now);
        continue;
      }
      return;  // EAGAIN, or an error the next readiness event retries
    }
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
    std::string source(ip);
    if (connections_.size() >= config_.max_connections) {
      RefuseAtAccept(fd, source, ConnectionEvent::kRefusedListenerLimit, "connection limit of the listener reached", now);
      continue;
    }
    if (auto it = per_source_.find(source); it != per_source_.end() && it->second >= config_.max_connections_per_source) {
      RefuseAtAccept(fd, source, ConnectionEvent::kRefusedSourceLimit, "connection limit per source address reached", now);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // the Nagle trap, docs/http.md

    auto conn = std::make_unique<Connection>();
    Connection& c = *conn;
    c.id = next_id_++;
    c.fd = fd;
    c.source = source;
    c.peer = source + ":" + std::to_string(ntohs(from.sin_port));
    if (config_.tls) {
      c.stream = MakeTlsStream(fd, config_.tls->Current());
      c.phase = Phase::kHandshake;
    } else {
      c.stream = MakePlainStream(fd);
      c.phase = Phase::kHead;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = c.id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      continue;
    }
    ++per_source_[source];
    connections_.emplace(c.id, std::move(conn));
    SetDeadline(c, now + Millis(config_.request_timeout_ms));
    Advance(c, now);
  }
}

void EventListener::RefuseAtAccept(int fd, const std::string& source, ConnectionEvent event, std::string_view reason,
                                   TimePoint now) {
  handler_.OnConnectionEvent(event);
  if (!config_.tls) {
    // Best effort, one non-blocking send: a plain HTTP client learns why.
    // No lingering here: a cap exists so that no more is spent on this
    // connection (a client that already sent its request may see a reset).
    static const std::string kBusy = SerializeResponse(TextResponse(503, "busy"), "-", false);
    [[maybe_unused]] ssize_t w = send(fd, kBusy.data(), kBusy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
  }
  close(fd);
  LogConnectionEvent("connection_refused", source, reason, now);
}

void EventListener::OnEvent(uint64_t id, uint32_t /*events*/, TimePoint now) {
  Connection* c = Find(id);
  if (c == nullptr) return;
  Advance(*c, now);
}

void EventListener::SetDeadline(Connection& c, TimePoint deadline) {
  if (c.deadline != TimePoint{}) deadlines_.erase({c.deadline, c.id});
  c.deadline = deadline;
  if (deadline != TimePoint{}) deadlines_.insert({deadline, c.id});
}

void EventListener::Close(Connection& c, std::string_view /*why*/) {
  SetDeadline(c, TimePoint{});
  if (c.phase == Phase::kHandling && handling_ > 0) --handling_;
  if (c.on_written) {
    auto callback = std::move(c.on_written);
    callback(false);
  }
  auto it = per_source_.find(c.source);
  if (it != per_source_.end() && --it->second == 0) per_source_.erase(it);
  const uint64_t id = c.id;
  const int fd = c.fd;
  c.stream.reset();  // before the descriptor closes (TLS state refers to it)
  close(fd);         // also removes it from the epoll set
  connections_.erase(id);  // c is gone now
}

// The phase machine: runs until the connection would block, waits for a
// handler, or is closed.
void EventListener::Advance(Connection& c, TimePoint now) {
  const uint64_t id = c.id;
  try {
    while (Find(id) != nullptr) {
      switch (c.phase) {
        case Phase::kHandshake: {
          const IoResult r = c.stream->Handshake();
          if (r == IoResult::kWantRead || r == IoResult::kWantWrite) return;
          if (r != IoResult::kDone) {
            handler_.OnConnectionEvent(ConnectionEvent::kTlsHandshakeFailed);
            LogConnectionEvent("tls_refused", c.peer, c.stream->error(), now);
            Close(c, "handshake failed");
            return;
          }
          c.phase = Phase::kHead;
          break;
        }
        case Phase::kIdle:
        case Phase::kHead:
          if (!c.in.empty()) {
            if (c.phase == Phase::kIdle) {
              c.phase = Phase::kHead;
              SetDeadline(c, now + Millis(config_.request_timeout_ms));
            }
            if (ParseHead(c, now)) break;  // a head was complete: go on in the new phase
          }
          if (Find(id) == nullptr || (c.phase != Phase::kHead && c.phase != Phase::kIdle)) break;
          if (!ReadMore(c, now)) return;
          break;
        case Phase::kBody:
          if (c.out_offset < c.out.size()) {  // "100 Continue" not written yet
            Flush(c, now);
            if (Find(id) == nullptr) return;
          }
          if (!c.in.empty() && ConsumeBody(c, now)) break;
          if (Find(id) == nullptr || c.phase != Phase::kBody) break;
          if (!ReadMore(c, now)) return;
          break;
        case Phase::kHandling:
          return;
        case Phase::kWriting:
          if (!Flush(c, now)) return;
          AfterWrite(c, now);
          break;
        case Phase::kLinger:
          Linger(c, now);
          return;
      }
    }
  } catch (const std::exception& e) {
    if (Connection* alive = Find(id)) {
      LogLine(LogLevel::kError, "listener_exception").Add("listener", config_.log_name).Add("detail", e.what());
      Close(*alive, "exception");
    }
  } catch (...) {
    if (Connection* alive = Find(id)) Close(*alive, "exception");
  }
}

// Reads what the socket has into c.in (bounded by what the phase may hold).
// True when bytes arrived; false when it would block or the connection ended.
bool EventListener::ReadMore(Connection& c, TimePoint now) {
  // Never buffer more than a head can be (plus one read), nor read ahead
  // while a body is framed by Content-Length beyond what it needs.
  if (c.in.size() > config_.max_header_bytes + kReadChunk) {
    // Unreachable by construction (a head is refused at max_header_bytes,
    // bodies are consumed as they arrive); if it ever happens, refuse
    // rather than stop reading an edge-triggered socket.
    Refuse(c, 431, "buffer_limit", "request larger than the listener buffers", now);
    return true;
  }
  char buf[kReadChunk];
  size_t n = 0;
  const IoResult r = c.stream->Read(buf, sizeof buf, &n);
  if (r == IoResult::kDone) {
    c.in.append(buf, n);
    return true;
  }
  if (r == IoResult::kWantRead || r == IoResult::kWantWrite) return false;
  // EOF or error.
  if (c.phase == Phase::kBody && !c.discard_body && r == IoResult::kEof) {
    // The client stopped sending before the body was complete: the handler
    // words the answer (kIncomplete), then the connection closes.
    c.request.body_state = c.chunked ? BodyState::kBadChunked : BodyState::kIncomplete;
    c.body_consumed = false;
    Dispatch(c, now);
    return false;
  }
  if (c.phase == Phase::kHead && !c.in.empty()) {
    LogConnectionEvent("http_incomplete", c.peer, "the client closed the connection inside a request head", now);
  }
  Close(c, "peer closed");
  return false;
}

bool EventListener::ParseHead(Connection& c, TimePoint now) {
  size_t head_length = 0;
  switch (ScanForHeadEnd(c.in, config_.max_header_bytes, &head_length, &c.head_scan_from)) {
    case HeadScan::kIncomplete: return false;
    case HeadScan::kTooLarge:
      Refuse(c, 431, "header_too_large",
             "request head larger than " + std::to_string(config_.max_header_bytes) + " bytes", now);
      return true;
    case HeadScan::kComplete: break;
  }
  HttpRequest request;
  HeadError error;
  HeadLimits limits;
  limits.max_header_bytes = config_.max_header_bytes;
  limits.max_header_fields = config_.max_header_fields;
  if (!ParseRequestHead(std::string_view(c.in).substr(0, head_length), limits, request, error)) {
    Refuse(c, error.status, error.label, error.detail, now);
    return true;
  }
  c.in.erase(0, head_length);
  c.head_scan_from = 0;
  request.id = NewRequestId();
  request.received = SteadyClock::now();
  request.peer.address = c.peer;
  request.peer.tls_identity = c.stream->identity();
  request.framing = DecideBodyFraming(request.headers);
  request.body_state = BodyState::kNotRead;
  c.request = std::move(request);
  ++c.requests;
  StartBody(c, now);
  return true;
}

// Step 3 of the exchange (http_handler.h): read, drop or skip the body as
// the handler plans.
void EventListener::StartBody(Connection& c, TimePoint now) {
  HttpRequest& request = c.request;
  const BodyFraming& framing = request.framing;
  c.discard_body = false;
  c.body_remaining = 0;
  c.chunked.reset();
  c.body_consumed = false;
  if (framing.error != FramingError::kNone) {  // never read past a framing error
    Dispatch(c, now);
    return;
  }
  const bool length_framed = framing.kind == BodyFraming::Kind::kContentLength;
  if (framing.kind == BodyFraming::Kind::kNone || (length_framed && framing.content_length == 0)) {
    request.body_state = BodyState::kEmpty;
    c.body_consumed = true;
    Dispatch(c, now);
    return;
  }
  BodyPlan plan = BodyPlan::Skip();
  try {
    plan = handler_.PlanBody(request);
  } catch (...) {
    plan = BodyPlan::Skip();
  }
  switch (plan.action) {
    case BodyPlan::Action::kSkip:
      Dispatch(c, now);
      return;
    case BodyPlan::Action::kDiscard:
      if (!length_framed || framing.content_length > plan.max_body_bytes || request.FindHeader("Expect") != nullptr) {
        Dispatch(c, now);
        return;
      }
      c.discard_body = true;
      c.body_remaining = framing.content_length;
      c.phase = Phase::kBody;
      return;
    case BodyPlan::Action::kRead: break;
  }
  if (length_framed && framing.content_length > plan.max_body_bytes) {
    request.body_state = BodyState::kTooLarge;
    Dispatch(c, now);
    return;
  }
  if (ExpectsContinue(request)) QueueWrite(c, "HTTP/1.1 100 Continue\r\n\r\n", false, nullptr);
  request.body.clear();
  if (length_framed) {
    c.body_remaining = framing.content_length;
    request.body.reserve(static_cast<size_t>(framing.content_length));
  } else {
    c.chunked.emplace(plan.max_body_bytes);
  }
  c.phase = Phase::kBody;
}

// Moves body bytes from c.in; true when the body is complete (dispatched).
bool EventListener::ConsumeBody(Connection& c, TimePoint now) {
  HttpRequest& request = c.request;
  if (c.chunked) {
    const ChunkedDecoder::Step step = c.chunked->Feed(c.in, request.body);
    c.in.erase(0, step.consumed);
    switch (step.state) {
      case ChunkedDecoder::State::kNeedMore: return false;
      case ChunkedDecoder::State::kDone:
        request.body_state = BodyState::kComplete;
        c.body_consumed = true;
        break;
      case ChunkedDecoder::State::kTooLarge:
        request.body.clear();
        request.body_state = BodyState::kTooLarge;
        break;
      case ChunkedDecoder::State::kError:
        request.body.clear();
        request.body_state = BodyState::kBadChunked;
        break;
    }
    Dispatch(c, now);
    return true;
  }
  const size_t take = static_cast<size_t>(std::min<uint64_t>(c.body_remaining, c.in.size()));
  if (!c.discard_body) request.body.append(c.in, 0, take);
  c.in.erase(0, take);
  c.body_remaining -= take;
  if (c.body_remaining > 0) return false;
  c.body_consumed = true;
  if (!c.discard_body) request.body_state = BodyState::kComplete;
  Dispatch(c, now);
  return true;
}

void EventListener::Dispatch(Connection& c, TimePoint now) {
  SetDeadline(c, TimePoint{});  // the handler bounds itself
  size_t pending = 0;
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    pending = jobs_.size();
    if (pending < config_.max_pending_requests) {
      jobs_.push_back(Job{c.id, std::move(c.request), c.body_consumed});
      c.phase = Phase::kHandling;
      ++handling_;
    }
  }
  if (c.phase == Phase::kHandling) {
    jobs_cv_.notify_one();
    return;
  }
  ready_.store(false, std::memory_order_relaxed);
  Refuse(c, 503, "overloaded", "every handler thread is busy; try again", now);
}

void EventListener::Refuse(Connection& c, int status, std::string_view label, std::string_view detail,
                           TimePoint now) {
  handler_.OnProtocolError(status);
  const std::string id = NewRequestId();
  uint64_t suppressed = 0;
  if (log_budget_.Allow(now, &suppressed)) {
    LogLine line(LogLevel::kInfo, "http_error");
    line.Add("listener", config_.log_name).Add("id", id).Add("peer", c.peer).Add("status", status);
    line.Add("refusal", label).Add("detail", detail);
    if (suppressed > 0) line.Add("suppressed", suppressed);
  }
  HttpResponse response = TextResponse(status, detail);
  if (status == 503) response.extra_headers.emplace_back("Retry-After", "1");
  c.in.clear();
  c.head_scan_from = 0;
  QueueWrite(c, SerializeResponse(response, id, false), true, nullptr);
  c.phase = Phase::kWriting;
  SetDeadline(c, now + Millis(config_.request_timeout_ms));
}

void EventListener::QueueWrite(Connection& c, std::string wire, bool close_after, std::function<void(bool)> on_written) {
  if (c.out_offset >= c.out.size()) {
    c.out = std::move(wire);
    c.out_offset = 0;
  } else {
    c.out.append(wire);
  }
  if (close_after) c.close_after_write = true;
  if (on_written) c.on_written = std::move(on_written);
}

// Writes c.out; true when everything is written.
bool EventListener::Flush(Connection& c, TimePoint now) {
  while (c.out_offset < c.out.size()) {
    size_t n = 0;
    const IoResult r = c.stream->Write(c.out.data() + c.out_offset, c.out.size() - c.out_offset, &n);
    if (r == IoResult::kDone) {
      c.out_offset += n;
      continue;
    }
    if (r == IoResult::kWantRead || r == IoResult::kWantWrite) return false;
    LogConnectionEvent("http_write_failed", c.peer, c.stream->error(), now);
    Close(c, "write failed");
    return false;
  }
  c.out.clear();
  c.out_offset = 0;
  return true;
}

void EventListener::AfterWrite(Connection& c, TimePoint now) {
  if (c.on_written) {
    auto callback = std::move(c.on_written);
    c.on_written = nullptr;
    callback(true);
  }
  if (c.close_after_write || draining_) {
    BeginLinger(c, now);
    return;
  }
  c.request = HttpRequest{};
  c.phase = Phase::kIdle;
  SetDeadline(c, now + Millis(config_.keep_alive_timeout_ms));
}

// RFC 9112 §9.6: close the sending side first, then read and drop what the
// client still sends for a bounded time, so it reads our answer instead of
// a reset.
void EventListener::BeginLinger(Connection& c, TimePoint now) {
  c.stream->CloseNotify();
  shutdown(c.fd, SHUT_WR);
  c.phase = Phase::kLinger;
  c.in.clear();
  SetDeadline(c, now + Millis(config_.linger_ms));
  Linger(c, now);
}

void EventListener::Linger(Connection& c, TimePoint /*now*/) {
  char buf[kReadChunk];
  while (true) {
    const ssize_t r = recv(c.fd, buf, sizeof buf, 0);
    if (r > 0) continue;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    Close(c, "linger done");  // EOF or error
    return;
  }
}

void EventListener::OnDeadline(Connection& c, TimePoint now) {
  switch (c.phase) {
    case Phase::kHandshake:
      handler_.OnConnectionEvent(ConnectionEvent::kTimedOut);
      LogConnectionEvent("tls_timeout", c.peer, "TLS handshake not complete within request_timeout_ms", now);
      Close(c, "handshake timeout");
      return;
    case Phase::kIdle:
      Close(c, "keep-alive timeout");
      return;
    case Phase::kHead:
      if (c.in.empty() && c.requests == 0) {
        handler_.OnConnectionEvent(ConnectionEvent::kTimedOut);
        LogConnectionEvent("http_timeout", c.peer, "no request within request_timeout_ms", now);
        Close(c, "no request");
        return;
      }
      [[fallthrough]];
    case Phase::kBody:
      Refuse(c, 408, "request_timeout",
             "request not complete within " + std::to_string(config_.request_timeout_ms) + " ms", now);
      Advance(c, now);
      return;
    case Phase::kWriting:
      handler_.OnConnectionEvent(ConnectionEvent::kTimedOut);
      LogConnectionEvent("http_write_timeout", c.peer, "the client did not read the response", now);
      Close(c, "write timeout");
      return;
    case Phase::kLinger:
      Close(c, "linger timeout");
      return;
    case Phase::kHandling:
      return;
  }
}

void EventListener::DrainCompletions(TimePoint now) {
  std::vector<Completion> done;
  {
    std::lock_guard<std::mutex> lock(done_mu_);
    done.swap(done_);
  }
  for (Completion& d : done) {
    Connection* c = Find(d.connection_id);
    if (c == nullptr) {
      if (d.on_written) d.on_written(false);
      continue;
    }
    if (handling_ > 0) --handling_;
    c->phase = Phase::kWriting;
    c->close_after_write = !d.keep_alive || draining_;
    c->on_written = std::move(d.on_written);
    if (c->out_offset >= c->out.size()) {
      c->out = std::move(d.wire);
      c->out_offset = 0;
    } else {
      c->out.append(d.wire);
    }
    SetDeadline(*c, now + Millis(config_.request_timeout_ms));
    Advance(*c, now);
  }
}

// --- handler threads -------------------------------------------------------------

void EventListener::Work() {
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(jobs_mu_);
      jobs_cv_.wait(lock, [this] { return workers_exit_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // workers_exit_
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Completion done{job.connection_id, {}, false, nullptr};
    try {
      HttpResponse response = handler_.Handle(job.request);
      done.keep_alive = config_.keep_alive_timeout_ms > 0 && response.keep_alive && job.body_consumed &&
                        RequestAllowsKeepAlive(job.request) && !stopping_.load();
      done.wire = SerializeResponse(response, job.request.id, done.keep_alive, job.request.method != "HEAD");
      done.on_written = std::move(response.on_written);
    } catch (const std::exception& e) {
      try {
        LogLine(LogLevel::kError, "handler_exception").Add("listener", config_.log_name).Add("detail", e.what());
      } catch (...) {
      }
      done.keep_alive = false;
      done.wire = SerializeResponse(TextResponse(500, "internal error"), job.request.id, false);
    } catch (...) {
      done.keep_alive = false;
      done.wire = SerializeResponse(TextResponse(500, "internal error"), job.request.id, false);
    }
    {
      std::lock_guard<std::mutex> lock(done_mu_);
      done_.push_back(std::move(done));
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(wake_fd_, &one, sizeof one);
  }
}

}  // namespace

Result<std::shared_ptr<ListenSocket>> ListenSocket::Bind(const std::string& name, const std::string& listen,
                                                         bool reuse_port) {
  const std::string prefix = name + " " + listen + ": ";
  auto address = ParseListenAddress(listen);
  if (!address.ok()) return Status(address.error().code(), prefix + address.error().message());
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(address->port);
  if (inet_pton(AF_INET, address->address.c_str(), &sa.sin_addr) != 1) {
    return InvalidArgument(prefix + "not an IPv4 address");
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return FailedPrecondition(prefix + "socket: " + ErrnoText(errno));
  std::shared_ptr<ListenSocket> made(new ListenSocket(fd, address->address, 0));
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return FailedPrecondition(prefix + "SO_REUSEPORT: " + ErrnoText(errno));
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    return FailedPrecondition(prefix + "cannot bind to " + address->ToString() + ": " + ErrnoText(errno));
  }
  if (::listen(fd, kListenBacklog) != 0) return FailedPrecondition(prefix + "listen: " + ErrnoText(errno));
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return Internal(prefix + "getsockname: " + ErrnoText(errno));
  }
  made->port_ = ntohs(bound.sin_port);
  return made;
}

ListenSocket::~ListenSocket() {
  if (fd_ >= 0) close(fd_);
}

int ListenSocket::Take() { return std::exchange(fd_, -1); }

Result<std::unique_ptr<HttpListener>> StartListener(const ListenerConfig& config, HttpHandler& handler) {
  const std::string prefix = config.name + " " + config.listen + ": ";
  auto address = ParseListenAddress(config.listen);
  if (!address.ok()) return Status(address.error().code(), prefix + address.error().message());
  if (config.threads == 0) return InvalidArgument(prefix + "needs at least one handler thread");
  if (config.request_timeout_ms == 0) return InvalidArgument(prefix + "request timeout must be > 0");
  if (config.max_connections == 0 || config.max_connections_per_source == 0) {
    return InvalidArgument(prefix + "connection limits must be > 0");
  }
  if (config.max_pending_requests == 0) return InvalidArgument(prefix + "max_pending_requests must be > 0");
  if (config.max_header_bytes < 64) return InvalidArgument(prefix + "max_header_bytes must be >= 64");
  auto listener = std::make_unique<EventListener>(config, handler);
  if (Status started = listener->Start(*address); !started.ok()) return started;
  return std::unique_ptr<HttpListener>(std::move(listener));
}

}  // namespace tkms::web
