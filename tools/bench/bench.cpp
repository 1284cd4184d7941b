#include "tools/bench/bench.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "tools/ue/kms_client.h"

namespace tkms::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Outcome {
  bool ok = false;
  std::string kind;    // error kind key, e.g. "http_503"
  std::string detail;  // error text
};

Outcome FromUeError(const ue::UeError& e) {
  Outcome o;
  switch (e.kind) {
    case ue::UeErrorKind::kHttpStatus: o.kind = "http_" + std::to_string(e.http_status); break;
    case ue::UeErrorKind::kMikeyError:
      o.kind = "mikey_error_" + (e.mikey_error() ? std::to_string(*e.mikey_error()) : std::string("?"));
      break;
    default: o.kind = std::string(ue::UeErrorKindName(e.kind)); break;
  }
  o.detail = e.ToString();
  return o;
}

// One connection's work: a function doing one request.
using Job = std::function<Outcome()>;

struct WorkerResult {
  std::vector<int64_t> latencies_ns;
  uint64_t ok = 0;
  uint64_t errors = 0;
  std::map<std::string, uint64_t> errors_by_kind;
  std::string first_error;
  int64_t max_lag_ns = 0;
  uint64_t connections_opened = 0;
};

struct Schedule {
  Clock::time_point start;          // first send (warm-up begins)
  Clock::time_point measure_from;   // end of warm-up
  Clock::time_point end;            // no request is scheduled at or after this
  std::optional<double> interval_s; // open loop: per-connection interval
  double offset_s = 0;              // open loop: this connection's phase
};

void RunWorker(const Job& job, const Schedule& s, WorkerResult& out) {
  std::this_thread::sleep_until(s.start);
  uint64_t k = 0;
  for (;; ++k) {
    Clock::time_point scheduled;
    if (s.interval_s) {
      const double at = s.offset_s + static_cast<double>(k) * *s.interval_s;
      scheduled = s.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at));
      if (scheduled >= s.end) break;
      std::this_thread::sleep_until(scheduled);
    } else {
      scheduled = Clock::now();
      if (scheduled >= s.end) break;
    }
    const auto sent = Clock::now();
    Outcome outcome = job();
    const auto done = Clock::now();
    if (scheduled < s.measure_from) continue;  // warm-up
    if (s.interval_s) {
      out.max_lag_ns = std::max<int64_t>(out.max_lag_ns, (sent - scheduled).count());
    }
    if (outcome.ok) {
      ++out.ok;
      out.latencies_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(done - scheduled).count());
    } else {
      ++out.errors;
      ++out.errors_by_kind[outcome.kind];
      if (out.first_error.empty()) out.first_error = outcome.detail;
    }
  }
}

ue::RequestInitParams RequestParams(const BenchConfig& c, bool reusable_ticket) {
  ue::RequestInitParams p;
  p.psk = c.initiator_psk;
  p.psk_id = c.initiator_psk_id;
  p.initiator.id = c.initiator;
  p.kms.id = c.kms_identity;
  p.policy.responders.push_back(ue::IdValue{c.responder});
  if (c.forking) p.policy.flags |= mikey::kFlagI;
  if (reusable_ticket) p.policy.flags |= mikey::kFlagJ;
  if (c.tgk_bytes > 0) {
    ue::RequestedKey k;
    k.length = c.tgk_bytes;
    p.policy.keys.push_back(k);
  }
  return p;
}

bool CrossDomain(const BenchConfig& c) { return !c.responder_kms_url.empty(); }

ue::ResolveInitParams ResolveParams(const BenchConfig& c, const mikey::TicketPayload& ticket) {
  ue::ResolveInitParams p;
  p.psk = c.responder_psk;
  p.psk_id = c.responder_psk_id;
  p.responder.id = c.responder;
  // RFC 6043 §4.2.3.1: IDRkms is the KMS the Responder talks to (KMS_R).
  p.kms.id = CrossDomain(c) ? c.responder_kms_identity : c.kms_identity;
  p.ticket = ticket;
  return p;
}

// A client of `url`, or of the KMS that resolves (the Responder's own).
Result<web::client::HttpClient> Client(const BenchConfig& c, const std::string& url) {
  web::client::HttpClientOptions options;
  options.timeout = c.timeout;
  options.tls = c.tls;
  return web::client::HttpClient::FromUrl(url, options);
}
Result<web::client::HttpClient> Client(const BenchConfig& c) { return Client(c, c.url); }
const std::string& ResolveUrl(const BenchConfig& c) { return CrossDomain(c) ? c.responder_kms_url : c.url; }

// Resolve mode: one ticket for the whole run (J flag: reusable), with
// Initiator Data from a real TRANSFER_INIT when forking.
Result<mikey::TicketPayload> ObtainTicket(const BenchConfig& c) {
  auto http = Client(c);
  if (!http.ok()) return http.error();
  ue::KmsClient client(std::move(*http));
  auto grant = client.RequestTicket(RequestParams(c, /*reusable_ticket=*/true));
  if (!grant.ok()) return Unavailable("cannot obtain a ticket to resolve: " + grant.error().ToString());
  if (!c.forking) return grant->ticket;
  ue::TransferInitParams tp;
  tp.initiator.id = c.initiator;
  tp.responder.id = c.responder;
  auto transfer = ue::BuildTransferInit(client.provider(), *grant, tp);
  if (!transfer.ok()) return Internal("cannot build a TRANSFER_INIT: " + transfer.error().ToString());
  return transfer->ticket;
}

Status CheckConfig(const BenchConfig& c) {
  if (c.connections < 1 || c.connections > 4096) return InvalidArgument("--connections must be 1-4096");
  if (!(c.duration_s > 0)) return InvalidArgument("--duration must be positive");
  if (c.warmup_s < 0) return InvalidArgument("--warmup must not be negative");
  if (c.rate && !(*c.rate > 0)) return InvalidArgument("--rate must be positive");
  if (c.mode == BenchMode::kEcho) return Status::Ok();
  if (c.kms_identity.empty()) return InvalidArgument("--kms-identity is needed in request and resolve modes");
  if (c.initiator.empty() || c.initiator_psk.empty()) {
    return InvalidArgument("--initiator and --initiator-psk are needed in request and resolve modes");
  }
  if (c.responder.empty()) return InvalidArgument("--responder is needed in request and resolve modes");
  if (c.mode == BenchMode::kResolve && c.responder_psk.empty()) {
    return InvalidArgument("--responder-psk is needed in resolve mode");
  }
  if (CrossDomain(c) || !c.responder_kms_identity.empty()) {
    if (c.mode != BenchMode::kResolve) {
      return InvalidArgument("--responder-kms and --responder-kms-identity are for resolve mode only");
    }
    if (!CrossDomain(c) || c.responder_kms_identity.empty()) {
      return InvalidArgument("--responder-kms and --responder-kms-identity go together (the Responder's own KMS)");
    }
    if (auto url = web::client::ParseHttpUrl(c.responder_kms_url); !url.ok()) {
      return InvalidArgument("--responder-kms: " + url.error().message());
    }
  }
  return Status::Ok();
}

double Ms(double ns) { return ns / 1e6; }

}  // namespace

const char* ReportModeName(const BenchConfig& config) {
  if (config.mode == BenchMode::kResolve && CrossDomain(config)) return "resolve-cross-domain";
  return BenchModeName(config.mode);
}

const char* BenchModeName(BenchMode mode) {
  switch (mode) {
    case BenchMode::kRequest: return "request";
    case BenchMode::kResolve: return "resolve";
    case BenchMode::kEcho: return "echo";
  }
  return "?";
}

LatencySummary Summarize(std::vector<int64_t>& ns) {
  LatencySummary s;
  s.count = ns.size();
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  auto rank = [&](double p) {
    // Nearest rank: the smallest value with at least p% of the values <= it.
    const auto r = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(ns.size())));
    return static_cast<double>(ns[std::clamp<size_t>(r, 1, ns.size()) - 1]);
  };
  double sum = 0;
  for (int64_t v : ns) sum += static_cast<double>(v);
  s.mean_ms = Ms(sum / static_cast<double>(ns.size()));
  s.p50_ms = Ms(rank(50));
  s.p95_ms = Ms(rank(95));
  s.p99_ms = Ms(rank(99));
  s.max_ms = Ms(static_cast<double>(ns.back()));
  return s;
}

Result<BenchReport> RunBench(const BenchConfig& config) {
  TKMS_RETURN_IF_ERROR(CheckConfig(config));
  if (auto url = web::client::ParseHttpUrl(config.url); !url.ok()) return url.error();

  // Shared, read-only inputs of the jobs.
  std::optional<mikey::TicketPayload> ticket;
  if (config.mode == BenchMode::kResolve) {
    auto t = ObtainTicket(config);
    if (!t.ok()) return t.error();
    ticket = std::move(*t);
  }
  std::string echo_body;
  if (config.mode == BenchMode::kEcho) {
    mikey::Bytes raw(config.echo_body_bytes / 4 * 3);
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i * 37 + 11);
    echo_body = Base64Encode(raw);
  }

  const int n = config.connections;
  std::vector<WorkerResult> results(static_cast<size_t>(n));
  std::vector<std::unique_ptr<ue::KmsClient>> clients;
  std::vector<Job> jobs;
  for (int i = 0; i < n; ++i) {
    auto http = Client(config, config.mode == BenchMode::kResolve ? ResolveUrl(config) : config.url);
    if (!http.ok()) return http.error();
    clients.push_back(std::make_unique<ue::KmsClient>(std::move(*http)));
    ue::KmsClient* client = clients.back().get();
    switch (config.mode) {
      case BenchMode::kRequest: {
        auto params = std::make_shared<ue::RequestInitParams>(RequestParams(config, false));
        jobs.emplace_back([client, params] {
          auto r = client->RequestTicket(*params);
          return r.ok() ? Outcome{true, {}, {}} : FromUeError(r.error());
        });
        break;
      }
      case BenchMode::kResolve: {
        auto params = std::make_shared<ue::ResolveInitParams>(ResolveParams(config, *ticket));
        jobs.emplace_back([client, params] {
          auto r = client->ResolveTicket(*params);
          return r.ok() ? Outcome{true, {}, {}} : FromUeError(r.error());
        });
        break;
      }
      case BenchMode::kEcho: {
        const std::string path = config.echo_path;
        jobs.emplace_back([client, path, &echo_body] {
          auto r = client->http().Post(path, ue::kMikeyContentType, echo_body);
          if (!r.ok()) return Outcome{false, "transport", r.error().ToString()};
          if (r->status != 200) {
            return Outcome{false, "http_" + std::to_string(r->status), "HTTP " + std::to_string(r->status)};
          }
          return Outcome{true, {}, {}};
        });
        break;
      }
    }
  }

  // A trial request before the clock starts: a misconfigured run fails here
  // with the reason instead of producing a report full of errors.
  if (config.mode != BenchMode::kEcho) {
    Outcome trial = jobs.front()();
    if (!trial.ok) return Unavailable("trial " + std::string(ReportModeName(config)) + " failed: " + trial.detail);
  }

  const auto to_duration = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  Schedule base;
  base.start = Clock::now() + std::chrono::milliseconds(50);
  base.measure_from = base.start + to_duration(config.warmup_s);
  base.end = base.measure_from + to_duration(config.duration_s);
  if (config.rate) base.interval_s = static_cast<double>(n) / *config.rate;

  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Schedule s = base;
    if (config.rate) s.offset_s = static_cast<double>(i) / *config.rate;
    threads.emplace_back([&jobs, &results, i, s] {
      RunWorker(jobs[static_cast<size_t>(i)], s, results[static_cast<size_t>(i)]);
    });
  }
  for (auto& t : threads) t.join();

  BenchReport report;
  report.config = config;
  report.config.initiator_psk.clear();
  report.config.responder_psk.clear();
  report.measured_s = config.duration_s;
  std::vector<int64_t> all;
  int64_t max_lag = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    WorkerResult& r = results[i];
    report.ok += r.ok;
    report.errors += r.errors;
    for (const auto& [kind, count] : r.errors_by_kind) report.errors_by_kind[kind] += count;
    if (report.first_error.empty()) report.first_error = r.first_error;
    max_lag = std::max(max_lag, r.max_lag_ns);
    all.insert(all.end(), r.latencies_ns.begin(), r.latencies_ns.end());
    report.connections_opened += clients[i]->http().connections_opened();
    if (report.tls.empty() && !clients[i]->http().tls_version().empty()) {
      report.tls = clients[i]->http().tls_version() + " " + clients[i]->http().tls_cipher_suite();
    }
  }
  report.ok_per_s = static_cast<double>(report.ok) / report.measured_s;
  report.attempts_per_s = static_cast<double>(report.ok + report.errors) / report.measured_s;
  report.latency = Summarize(all);
  report.max_send_lag_ms = Ms(static_cast<double>(max_lag));
  return report;
}

std::string FormatText(const BenchReport& r) {
  char line[512];
  std::string out;
  const std::string urls =
      r.config.url + (CrossDomain(r.config) ? " responder-kms=" + r.config.responder_kms_url : std::string());
  std::snprintf(line, sizeof line, "tkms-bench: mode=%s url=%s connections=%d warmup=%.1fs duration=%.1fs %s\n",
                ReportModeName(r.config), urls.c_str(), r.config.connections, r.config.warmup_s,
                r.config.duration_s,
                r.config.rate ? ("open loop at " + std::to_string(*r.config.rate) + " req/s").c_str()
                              : "closed loop");
  out += line;
  std::snprintf(line, sizeof line, "requests: %llu ok, %llu errors; %.1f ok/s (%.1f attempts/s)\n",
                static_cast<unsigned long long>(r.ok), static_cast<unsigned long long>(r.errors), r.ok_per_s,
                r.attempts_per_s);
  out += line;
  std::snprintf(line, sizeof line, "latency (ok, ms): p50 %.3f  p95 %.3f  p99 %.3f  max %.3f  mean %.3f\n",
                r.latency.p50_ms, r.latency.p95_ms, r.latency.p99_ms, r.latency.max_ms, r.latency.mean_ms);
  out += line;
  if (r.config.rate) {
    std::snprintf(line, sizeof line, "open loop: latest send %.3f ms after its schedule\n", r.max_send_lag_ms);
    out += line;
  }
  std::snprintf(line, sizeof line, "connections opened: %llu%s\n",
                static_cast<unsigned long long>(r.connections_opened),
                r.tls.empty() ? "" : (" (TLS handshakes; " + r.tls + ")").c_str());
  out += line;
  if (!r.errors_by_kind.empty()) {
    out += "errors:";
    for (const auto& [kind, count] : r.errors_by_kind) out += " " + kind + "=" + std::to_string(count);
    out += "\nfirst error: " + r.first_error + "\n";
  }
  return out;
}

std::string FormatJson(const BenchReport& r) {
  nlohmann::json j;
  j["mode"] = ReportModeName(r.config);
  j["url"] = r.config.url;
  j["responder_kms_url"] = CrossDomain(r.config) ? nlohmann::json(r.config.responder_kms_url) : nlohmann::json(nullptr);
  j["connections"] = r.config.connections;
  j["warmup_s"] = r.config.warmup_s;
  j["duration_s"] = r.config.duration_s;
  j["rate"] = r.config.rate ? nlohmann::json(*r.config.rate) : nlohmann::json(nullptr);
  j["forking"] = r.config.forking;
  j["ok"] = r.ok;
  j["errors"] = r.errors;
  j["requests_per_second"] = r.ok_per_s;
  j["attempts_per_second"] = r.attempts_per_s;
  j["latency_ms"] = {{"count", r.latency.count}, {"p50", r.latency.p50_ms}, {"p95", r.latency.p95_ms},
                     {"p99", r.latency.p99_ms},  {"max", r.latency.max_ms}, {"mean", r.latency.mean_ms}};
  j["errors_by_kind"] = r.errors_by_kind;
  j["first_error"] = r.first_error;
  j["max_send_lag_ms"] = r.max_send_lag_ms;
  j["connections_opened"] = r.connections_opened;
  j["tls"] = r.tls.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.tls);
  return j.dump();
}

}  // namespace tkms::bench
