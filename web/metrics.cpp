#include "web/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

#include "firmware/base/log.h"

namespace tkms::web {
namespace {

constexpr std::array<kms::RequestType, 2> kAllTypes = {kms::RequestType::kTicketRequest,
                                                       kms::RequestType::kTicketResolve};
constexpr std::array<kms::Outcome, 5> kAllOutcomes = {
    kms::Outcome::kOk, kms::Outcome::kMikeyError, kms::Outcome::kBadRequest,
    kms::Outcome::kUnavailable, kms::Outcome::kInternal};
// The bucket bounds as Prometheus sees them (exact text, no float formatting).
constexpr std::array<std::string_view, 11> kBoundLabels = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1"};

static_assert(static_cast<size_t>(kms::Refusal::kInternal) == 21,
              "Refusal grew: update Metrics::kRefusals");
static_assert(static_cast<size_t>(kms::Outcome::kInternal) == 4,
              "Outcome grew: update Metrics::kOutcomes");

// Gauge names may not start with these (that also covers the histogram's
// _bucket / _sum / _count series).
constexpr std::array<std::string_view, 13> kBuiltinNames = {"tkms_requests_total",
                                                           "tkms_audit_write_failures_total",
                                                           "tkms_log_write_failures_total",
                                                           "tkms_zk_requests_total",
                                                           "tkms_zk_peer_",
                                                           "tkms_connection_events_total",
                                                           "tkms_http_rejections_total",
                                                           "tkms_http_protocol_errors_total",
                                                           "tkms_request_duration_seconds",
                                                           "tkms_mikey_errors_total",
                                                           "tkms_refusals_total",
                                                           "tkms_replay_rejections_total",
                                                           "tkms_token_errors_total"};

bool ValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

// HELP text escaping of the 0.0.4 format: backslash and newline.
std::string EscapeHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Shortest text that reads back as the same double.
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, result.ptr);
}

void Header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void Sample(std::string& out, std::string_view name, std::string_view labels, uint64_t value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

uint64_t Load(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }
void Bump(std::atomic<uint64_t>& a, uint64_t n = 1) { a.fetch_add(n, std::memory_order_relaxed); }

}  // namespace

Metrics::Metrics() = default;

void Metrics::RecordRequest(kms::RequestType type, kms::Outcome outcome,
                            std::chrono::nanoseconds latency) {
  const auto t = static_cast<size_t>(type);
  const auto o = static_cast<size_t>(outcome);
  if (t >= kTypes || o >= kOutcomes) return;
  Bump(requests_[t][o]);
  const auto ns = static_cast<uint64_t>(std::max<int64_t>(0, latency.count()));
  const double seconds = static_cast<double>(ns) / 1e9;
  size_t bucket = kDurationBounds.size();  // +Inf
  for (size_t i = 0; i < kDurationBounds.size(); ++i) {
    if (seconds <= kDurationBounds[i]) {
      bucket = i;
      break;
    }
  }
  Histogram& h = durations_[t];
  Bump(h.buckets[bucket]);
  Bump(h.sum_ns, ns);
  Bump(h.count);
}

void Metrics::RecordRefusal(kms::Refusal refusal) {
  const auto r = static_cast<size_t>(refusal);
  if (refusal == kms::Refusal::kNone || r >= kRefusals) return;
  Bump(refusals_[r]);
}

void Metrics::RecordMikeyError(uint8_t error_no) { Bump(mikey_errors_[error_no]); }

void Metrics::RecordRejection(int status) {
  for (size_t i = 0; i < kRejectionStatuses.size(); ++i) {
    if (kRejectionStatuses[i] == status) Bump(rejections_[i]);
  }
}

void Metrics::RecordProtocolError(int status) {
  if (status < kFirstErrorStatus ||
      status >= kFirstErrorStatus + static_cast<int>(kErrorStatuses)) {
    return;
  }
  Bump(protocol_errors_[static_cast<size_t>(status - kFirstErrorStatus)]);
}

void Metrics::RecordConnectionEvent(ListenerKind listener, ConnectionEvent event) {
  const auto l = static_cast<size_t>(listener);
  const auto e = static_cast<size_t>(event);
  if (l < connection_events_.size() && e < kConnectionEvents) Bump(connection_events_[l][e]);
}

uint64_t Metrics::connection_events(ListenerKind listener, ConnectionEvent event) const {
  const auto l = static_cast<size_t>(listener);
  const auto e = static_cast<size_t>(event);
  return (l < connection_events_.size() && e < kConnectionEvents) ? Load(connection_events_[l][e]) : 0;
}

void Metrics::RenderConnectionEvents(std::string& out) const {
  Header(out, "tkms_connection_events_total", "counter",
         "Connections a listener refused or dropped by itself (caps, TLS handshake failures, timeouts), by "
         "listener and event.");
  constexpr std::array<std::string_view, 3> kListeners = {"ua", "admin", "zk"};
  for (size_t l = 0; l < kListeners.size(); ++l) {
    for (size_t e = 0; e < kConnectionEvents; ++e) {
      Sample(out, "tkms_connection_events_total",
             "listener=\"" + std::string(kListeners[l]) + "\",event=\"" +
                 std::string(ConnectionEventName(static_cast<ConnectionEvent>(e))) + "\"",
             Load(connection_events_[l][e]));
    }
  }
}

uint64_t Metrics::requests(kms::RequestType type, kms::Outcome outcome) const {
  const auto t = static_cast<size_t>(type);
  const auto o = static_cast<size_t>(outcome);
  return (t < kTypes && o < kOutcomes) ? Load(requests_[t][o]) : 0;
}

uint64_t Metrics::rejections(int status) const {
  for (size_t i = 0; i < kRejectionStatuses.size(); ++i) {
    if (kRejectionStatuses[i] == status) return Load(rejections_[i]);
  }
  return 0;
}

uint64_t Metrics::protocol_errors(int status) const {
  if (status < kFirstErrorStatus ||
      status >= kFirstErrorStatus + static_cast<int>(kErrorStatuses)) {
    return 0;
  }
  return Load(protocol_errors_[static_cast<size_t>(status - kFirstErrorStatus)]);
}

uint64_t Metrics::mikey_errors(uint8_t error_no) const { return Load(mikey_errors_[error_no]); }

uint64_t Metrics::refusals(kms::Refusal refusal) const {
  const auto r = static_cast<size_t>(refusal);
  return r < kRefusals ? Load(refusals_[r]) : 0;
}

uint64_t Metrics::duration_count(kms::RequestType type) const {
  const auto t = static_cast<size_t>(type);
  return t < kTypes ? Load(durations_[t].count) : 0;
}

Status Metrics::SetGauge(std::string name, std::string help, std::function<double()> read) {
  return Register(std::move(name), std::move(help), std::move(read), "gauge");
}

Status Metrics::SetCounter(std::string name, std::string help, std::function<double()> read) {
  return Register(std::move(name), std::move(help), std::move(read), "counter");
}

Status Metrics::Register(std::string name, std::string help, std::function<double()> read, const char* type) {
  if (!ValidMetricName(name)) return InvalidArgument("invalid metric name \"" + name + "\"");
  for (std::string_view builtin : kBuiltinNames) {
    if (std::string_view(name).substr(0, builtin.size()) == builtin) {
      return InvalidArgument("metric name \"" + name + "\" collides with " + std::string(builtin));
    }
  }
  if (!read) return InvalidArgument("gauge \"" + name + "\" has no read function");
  auto gauge =
      std::make_shared<const Gauge>(Gauge{std::move(name), std::move(help), std::move(read), type});
  std::lock_guard<std::mutex> lock(gauges_mu_);
  auto it = std::lower_bound(gauges_.begin(), gauges_.end(), gauge->name,
                             [](const auto& g, const std::string& n) { return g->name < n; });
  if (it != gauges_.end() && (*it)->name == gauge->name) {
    *it = std::move(gauge);
  } else {
    gauges_.insert(it, std::move(gauge));
  }
  return Status::Ok();
}

void Metrics::RemoveGauge(std::string_view name) {
  std::lock_guard<std::mutex> lock(gauges_mu_);
  gauges_.erase(std::remove_if(gauges_.begin(), gauges_.end(),
                               [&](const auto& g) { return g->name == name; }),
                gauges_.end());
}

std::string Metrics::RenderPrometheus() const {
  std::string out;
  out.reserve(8192);
  RenderRequestCounters(out);
  RenderDurations(out);
  RenderRefusals(out);
  RenderConnectionEvents(out);
  RenderZk(out);
  RenderLogFailures(out);
  RenderGauges(out);
  return out;
}

// Process-wide (firmware/base/log.h): the log and the audit records are the
// process's, not one listener's.
void Metrics::RenderLogFailures(std::string& out) const {
  out += "# HELP tkms_audit_write_failures_total Audit records that could not be written (the action was refused)\n";
  out += "# TYPE tkms_audit_write_failures_total counter\n";
  for (size_t r = 0; r < kAuditRecordKinds; ++r) {
    const auto record = static_cast<AuditRecord>(r);
    out += "tkms_audit_write_failures_total{record=\"";
    out += AuditRecordName(record);
    out += "\"} ";
    out += std::to_string(AuditWriteFailures(record));
    out += '\n';
  }
  out += "# HELP tkms_log_write_failures_total Ordinary log lines that could not be written (service went on)\n";
  out += "# TYPE tkms_log_write_failures_total counter\n";
  out += "tkms_log_write_failures_total " + std::to_string(LogWriteFailures()) + "\n";
}

void Metrics::RecordZkRequest(ZkClient client, ZkResult result) {
  const auto c = static_cast<size_t>(client);
  const auto r = static_cast<size_t>(result);
  if (c < kZkClients && r < kZkResults) Bump(zk_requests_[c][r]);
}

uint64_t Metrics::zk_requests(ZkClient client, ZkResult result) const {
  const auto c = static_cast<size_t>(client);
  const auto r = static_cast<size_t>(result);
  return (c < kZkClients && r < kZkResults) ? Load(zk_requests_[c][r]) : 0;
}

void Metrics::SetTextSource(std::string name, std::function<std::string()> render) {
  auto shared = std::make_shared<const std::function<std::string()>>(std::move(render));
  std::lock_guard<std::mutex> lock(gauges_mu_);
  for (auto& [existing, source] : text_sources_) {
    if (existing == name) {
      source = std::move(shared);
      return;
    }
  }
  text_sources_.emplace_back(std::move(name), std::move(shared));
}

namespace {
constexpr std::array<std::string_view, 3> kZkClientNames = {"peer_kms", "network_function", "unauthorised"};
}  // namespace

std::string_view Metrics::ZkClientName(ZkClient client) {
  const auto c = static_cast<size_t>(client);
  return c < kZkClientNames.size() ? kZkClientNames[c] : "unauthorised";
}

void Metrics::RenderZk(std::string& out) const {
  Header(out, "tkms_zk_requests_total", "counter",
         "Requests on the Zk listener, by client (peer KMS, unauthorised certificate) and result.");
  static_assert(kZkClientNames.size() == kZkClients);
  const auto& kClients = kZkClientNames;
  constexpr std::array<std::string_view, kZkResults> kResults = {
      "ok", "mikey_error", "bad_request", "unavailable", "internal", "forbidden", "rejected"};
  for (size_t c = 0; c < kClients.size(); ++c) {
    // A network function's resolves (lawful interception) are recorded in
    // the audit log only: the admin plane may be read by anyone on the box,
    // and interception must not be detectable from it (TS 33.126).
    if (static_cast<ZkClient>(c) == ZkClient::kNetworkFunction) continue;
    for (size_t r = 0; r < kResults.size(); ++r) {
      Sample(out, "tkms_zk_requests_total",
             "client=\"" + std::string(kClients[c]) + "\",result=\"" + std::string(kResults[r]) + "\"",
             Load(zk_requests_[c][r]));
    }
  }
  std::vector<std::shared_ptr<const std::function<std::string()>>> sources;
  {
    std::lock_guard<std::mutex> lock(gauges_mu_);
    for (const auto& entry : text_sources_) sources.push_back(entry.second);
  }
  for (const auto& source : sources) {
    try {
      out += (*source)();
    } catch (...) {
      // A failing source is left out; the scrape itself still succeeds.
    }
  }
}

void Metrics::RenderRequestCounters(std::string& out) const {
  Header(out, "tkms_requests_total", "counter",
         "Annex A requests that reached the KMS service, by requesttype and outcome.");
  for (kms::RequestType type : kAllTypes) {
    for (kms::Outcome outcome : kAllOutcomes) {
      Sample(out, "tkms_requests_total",
             "type=\"" + std::string(kms::RequestTypeName(type)) + "\",outcome=\"" +
                 std::string(kms::OutcomeName(outcome)) + "\"",
             requests(type, outcome));
    }
  }

  Header(out, "tkms_http_rejections_total", "counter",
         "Ua requests refused by the Annex A checks before the KMS service, by HTTP status.");
  for (int status : kRejectionStatuses) {
    Sample(out, "tkms_http_rejections_total", "status=\"" + std::to_string(status) + "\"",
           rejections(status));
  }

  Header(out, "tkms_http_protocol_errors_total", "counter",
         "Ua requests refused by the transport's HTTP parser (malformed HTTP), by HTTP status.");
  for (size_t i = 0; i < kErrorStatuses; ++i) {
    const uint64_t n = Load(protocol_errors_[i]);
    if (n == 0) continue;
    Sample(out, "tkms_http_protocol_errors_total",
           "status=\"" + std::to_string(kFirstErrorStatus + static_cast<int>(i)) + "\"", n);
  }
}

void Metrics::RenderDurations(std::string& out) const {
  Header(out, "tkms_request_duration_seconds", "histogram",
         "Time from request start to response written, for requests that reached the KMS "
         "service.");
  for (kms::RequestType type : kAllTypes) {
    const Histogram& h = durations_[static_cast<size_t>(type)];
    const std::string type_label = "type=\"" + std::string(kms::RequestTypeName(type)) + "\"";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      cumulative += Load(h.buckets[i]);
      const std::string_view le = i < kBoundLabels.size() ? kBoundLabels[i] : "+Inf";
      Sample(out, "tkms_request_duration_seconds_bucket",
             type_label + ",le=\"" + std::string(le) + "\"", cumulative);
    }
    out += "tkms_request_duration_seconds_sum{" + type_label + "} " +
           FormatValue(static_cast<double>(Load(h.sum_ns)) / 1e9) + "\n";
    // _count equals the +Inf bucket by definition; use the same number.
    Sample(out, "tkms_request_duration_seconds_count", type_label, cumulative);
  }
}

void Metrics::RenderRefusals(std::string& out) const {
  Header(out, "tkms_mikey_errors_total", "counter",
         "Replies carrying a MIKEY Error message, by error number (RFC 3830 6.12, RFC 6043).");
  for (size_t i = 0; i < mikey_errors_.size(); ++i) {
    const uint64_t n = Load(mikey_errors_[i]);
    if (n == 0) continue;
    Sample(out, "tkms_mikey_errors_total", "error_no=\"" + std::to_string(i) + "\"", n);
  }

  Header(out, "tkms_refusals_total", "counter", "KMS service refusals, by rejection class.");
  for (size_t r = 1; r < kRefusals; ++r) {
    const auto refusal = static_cast<kms::Refusal>(r);
    Sample(out, "tkms_refusals_total", "refusal=\"" + std::string(kms::RefusalName(refusal)) + "\"",
           Load(refusals_[r]));
  }

  Header(out, "tkms_replay_rejections_total", "counter",
         "Requests refused as replays (refusal=\"replay\").");
  Sample(out, "tkms_replay_rejections_total", "", replay_rejections());
  Header(out, "tkms_token_errors_total", "counter",
         "Requests that failed on the PKCS#11 token (refusal=\"token\").");
  Sample(out, "tkms_token_errors_total", "", token_errors());
}

void Metrics::RenderGauges(std::string& out) const {
  std::vector<std::shared_ptr<const Gauge>> gauges;
  {
    std::lock_guard<std::mutex> lock(gauges_mu_);
    gauges = gauges_;
  }
  for (const auto& gauge : gauges) {
    double value = std::nan("");
    try {
      value = gauge->read();
    } catch (...) {
      // A failing gauge reads NaN; the scrape itself still succeeds.
    }
    Header(out, gauge->name, gauge->type, EscapeHelp(gauge->help));
    out += gauge->name + " " + FormatValue(value) + "\n";
  }
}

}  // namespace tkms::web
