// Metrics: the KMS front end's counters, histograms and gauges, rendered in
// the Prometheus text exposition format 0.0.4 for GET /metrics on the admin
// listener.
//
// Why: an appliance is operated by its numbers. TS 33.328 Annex A separates
// UE errors (4xx), refused MIKEY messages (200 + MIKEY Error, RFC 3830 §6.12 /
// RFC 6043 §5.4, §6.9) and KMS faults (5xx); each has its own series so an
// operator can tell a misconfigured UE from a replay attack from a dead token.
// The label sets are fixed enumerations (kms::OutcomeName, kms::RefusalName,
// HTTP status codes), never values taken from a request, so a peer cannot
// grow the series.
//
// Thread-safety: every Record* and reader is lock-free (relaxed atomics: the
// counters are statistics, not synchronisation). Gauges are registered rarely
// and kept behind a mutex; their callbacks run outside it during rendering.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/status.h"
#include "firmware/kms/service.h"
#include "web/http_handler.h"

namespace tkms::web {

class Metrics {
 public:
  // Upper bounds (seconds) of tkms_request_duration_seconds; +Inf follows.
  static constexpr std::array<double, 11> kDurationBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};
  // Statuses the Annex A checks produce before the service (rejections).
  static constexpr std::array<int, 7> kRejectionStatuses = {400, 403, 404, 405, 411, 413, 415};

  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // A request that reached the service: its type, the (possibly corrected)
  // outcome and the time from the start of the HTTP exchange to the response
  // written. Feeds tkms_requests_total and tkms_request_duration_seconds.
  void RecordRequest(kms::RequestType type, kms::Outcome outcome, std::chrono::nanoseconds latency);
  // A KmsReply's refusal (kNone is ignored). Feeds tkms_refusals_total and,
  // for kReplay / kToken, tkms_replay_rejections_total / tkms_token_errors_total.
  void RecordRefusal(kms::Refusal refusal);
  // A reply carrying a MIKEY Error with this error number.
  void RecordMikeyError(uint8_t error_no);
  // An Annex A check refused the request with `status` (one of
  // kRejectionStatuses; other values are ignored).
  void RecordRejection(int status);
  // The transport's own HTTP parser refused the connection's request (malformed
  // request line, headers too large, unsupported version): 400..599.
  void RecordProtocolError(int status);
  // A listener refused or dropped a connection by itself (http_handler.h).
  // Feeds tkms_connection_events_total{listener,event}.
  enum class ListenerKind : uint8_t { kUa, kAdmin, kZk };
  void RecordConnectionEvent(ListenerKind listener, ConnectionEvent event);
  // A request on the Zk listener (docs/zk.md), by who sent it and what became
  // of it: tkms_zk_requests_total{client,result}. Zk requests are not in
  // tkms_requests_total (that counts the Ua service only).
  enum class ZkClient : uint8_t { kPeerKms, kNetworkFunction, kUnauthorised };
  enum class ZkResult : uint8_t { kOk, kMikeyError, kBadRequest, kUnavailable, kInternal, kForbidden, kRejected };
  void RecordZkRequest(ZkClient client, ZkResult result);
  // "peer_kms", "network_function", "unauthorised" (the client label).
  static std::string_view ZkClientName(ZkClient client);
  uint64_t zk_requests(ZkClient client, ZkResult result) const;

  // Readers (tests, tkmsd).
  uint64_t requests(kms::RequestType type, kms::Outcome outcome) const;
  uint64_t rejections(int status) const;
  uint64_t protocol_errors(int status) const;
  uint64_t connection_events(ListenerKind listener, ConnectionEvent event) const;
  uint64_t mikey_errors(uint8_t error_no) const;
  uint64_t refusals(kms::Refusal refusal) const;
  uint64_t replay_rejections() const { return refusals(kms::Refusal::kReplay); }
  uint64_t token_errors() const { return refusals(kms::Refusal::kToken); }
  // Observations in tkms_request_duration_seconds for `type`.
  uint64_t duration_count(kms::RequestType type) const;

  // Registers (or replaces) a gauge rendered as `name` with `help`. `read` is
  // called from the /metrics handler thread on every scrape, must be quick,
  // thread-safe and must not call SetGauge/RemoveGauge. Fails with
  // kInvalidArgument for a name outside [a-zA-Z_:][a-zA-Z0-9_:]*, or one that
  // collides with a built-in series (tkms_requests_total, ...).
  Status SetGauge(std::string name, std::string help, std::function<double()> read);
  // The same for a counter kept elsewhere (rendered with "# TYPE name
  // counter"; `read` must never decrease). Shares the gauges' name space.
  Status SetCounter(std::string name, std::string help, std::function<double()> read);
  void RemoveGauge(std::string_view name);
  // Appends the exposition text `render` returns (complete "# HELP/# TYPE"
  // blocks with labelled samples, e.g. the Zk client's per-peer series) to
  // every scrape. Same rules as `read` above; one source per `name`
  // (replaced when registered again).
  void SetTextSource(std::string name, std::function<std::string()> render);

  // The whole exposition (Content-Type: text/plain; version=0.0.4).
  std::string RenderPrometheus() const;

 private:
  void RenderRequestCounters(std::string& out) const;
  void RenderDurations(std::string& out) const;
  void RenderRefusals(std::string& out) const;
  void RenderConnectionEvents(std::string& out) const;
  void RenderGauges(std::string& out) const;
  void RenderZk(std::string& out) const;
  void RenderLogFailures(std::string& out) const;
  static constexpr size_t kZkClients = 3;
  static constexpr size_t kZkResults = 7;
  static constexpr size_t kTypes = 2;
  static constexpr size_t kOutcomes = 5;
  static constexpr size_t kRefusals = 22;
  static constexpr size_t kBuckets = kDurationBounds.size() + 1;  // + the +Inf bucket
  static constexpr int kFirstErrorStatus = 400;
  static constexpr size_t kErrorStatuses = 200;  // 400..599

  struct Histogram {
    std::array<std::atomic<uint64_t>, kBuckets> buckets{};  // not cumulative
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_ns{0};
  };
  struct Gauge {
    std::string name;
    std::string help;
    std::function<double()> read;
    const char* type = "gauge";  // or "counter"
  };
  Status Register(std::string name, std::string help, std::function<double()> read, const char* type);

  std::array<std::array<std::atomic<uint64_t>, kOutcomes>, kTypes> requests_{};
  std::array<std::atomic<uint64_t>, kRejectionStatuses.size()> rejections_{};
  std::array<std::atomic<uint64_t>, kErrorStatuses> protocol_errors_{};
  std::array<std::atomic<uint64_t>, 256> mikey_errors_{};
  std::array<std::atomic<uint64_t>, kRefusals> refusals_{};
  std::array<std::array<std::atomic<uint64_t>, kConnectionEvents>, 3> connection_events_{};
  std::array<std::array<std::atomic<uint64_t>, kZkResults>, kZkClients> zk_requests_{};
  std::array<Histogram, kTypes> durations_{};

  mutable std::mutex gauges_mu_;
  std::vector<std::shared_ptr<const Gauge>> gauges_;  // sorted by name
  std::vector<std::pair<std::string, std::shared_ptr<const std::function<std::string()>>>> text_sources_;
};

}  // namespace tkms::web
