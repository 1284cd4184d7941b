// tkms-bench: the load generator for a MIKEY-TICKET KMS over TS 33.328 Annex A
// HTTP (Ticket Request and Ticket Resolve, RFC 6043 §4.2.1 / §4.2.3).
//
// Why: the KMS's capacity claims ("requests per second", "p99 at half the
// saturating rate") must be measured with a client that does the real work
// of a UE -- a fresh REQUEST_INIT_PSK / RESOLVE_INIT_PSK for every request
// (new CSB ID, RAND and timestamp: the KMS keeps a replay cache) -- and that
// counts a request as successful only if the answer verifies (tools/ue). The
// echo mode measures the HTTP front end's ceiling with a fixed body.
//
// Method:
//   - N connections, each a thread with its own keep-alive HttpClient and
//     crypto provider; with an https:// URL each connection is one TLS
//     session (one handshake, before the clock starts unless the server
//     closes it), its own TLS configuration and DRBG (web/client/tls_client.h);
//   - closed loop by default (each connection sends its next request when the
//     previous one completed; latency = completion - send);
//   - open loop with a total rate R: connection i sends request k at
//     start + (i + k*N) / R; if it is late it sends at once, and the latency
//     is measured from the *scheduled* time, so a stalled server is not hidden
//     by the client waiting for it (no coordinated omission);
//   - a warm-up period whose requests are not counted, then the measured
//     window; a request belongs to the window if it was scheduled (open loop)
//     or sent (closed loop) inside it;
//   - latency percentiles (nearest rank) over the requests that succeeded;
//     failures are counted by kind (transport, http_<status>,
//     mikey_error_<no>, verification, bad_response, ...).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "firmware/mikey/message.h"
#include "web/client/tls_client.h"

namespace tkms::bench {

enum class BenchMode : uint8_t { kRequest, kResolve, kEcho };
const char* BenchModeName(BenchMode mode);

struct BenchConfig {
  std::string url = "http://127.0.0.1:8080";  // or https://host:port
  web::client::TlsClientOptions tls;                  // https: --cacert [--cert --key]
  BenchMode mode = BenchMode::kRequest;
  int connections = 1;
  double duration_s = 10;
  double warmup_s = 2;
  std::optional<double> rate;  // total requests per second (open loop)
  std::chrono::milliseconds timeout{5000};
  // MIKEY identities and keys (request / resolve modes).
  mikey::Bytes kms_identity;
  mikey::Bytes initiator;
  SecretBytes initiator_psk;
  std::optional<mikey::Bytes> initiator_psk_id;  // IDRpsk
  mikey::Bytes responder;
  SecretBytes responder_psk;
  std::optional<mikey::Bytes> responder_psk_id;
  // Cross-domain resolve (resolve mode; TS 33.328 B.2.2.3, RFC 6043 §10):
  // the ticket is requested at `url` (KMS_I, kms_identity) and resolved at
  // responder_kms_url (KMS_R, the Responder's own KMS, responder_kms_identity
  // in IDRkms), which forwards each resolve to KMS_I over Zk. The TLS options
  // apply to both. Empty: resolve at `url`. Reported as
  // "resolve-cross-domain".
  std::string responder_kms_url;
  mikey::Bytes responder_kms_identity;
  bool forking = false;   // request the I flag; resolve tickets carry Initiator Data
  size_t tgk_bytes = 16;  // requested TGK length; 0: no TP KEMAC (the KMS's default keys)
  // Echo mode.
  std::string echo_path = "/keymanagement?requesttype=ticketrequest";
  size_t echo_body_bytes = 200;  // base64 characters
};

// The name a run is reported under: BenchModeName, or "resolve-cross-domain"
// for a resolve at another KMS than the one that issued the ticket.
const char* ReportModeName(const BenchConfig& config);

struct LatencySummary {
  uint64_t count = 0;
  double mean_ms = 0;
  double p50_ms = 0;
  double p95_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};
// Nearest-rank percentiles of latencies in nanoseconds (sorts `ns`).
LatencySummary Summarize(std::vector<int64_t>& ns);

struct BenchReport {
  BenchConfig config;  // keys cleared
  double measured_s = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
  std::map<std::string, uint64_t> errors_by_kind;
  std::string first_error;  // one example error text (no key material)
  double ok_per_s = 0;
  double attempts_per_s = 0;
  LatencySummary latency;
  double max_send_lag_ms = 0;  // open loop: the latest a send started after its schedule
  uint64_t connections_opened = 0;  // https: TLS handshakes
  std::string tls;                  // https: "TLSv1.2 <cipher suite>" of a connection; "" for http
};

// Runs the benchmark. Fails before the measurement if the configuration is
// incomplete or inconsistent (kInvalidArgument) or (resolve mode) no ticket
// can be obtained.
Result<BenchReport> RunBench(const BenchConfig& config);

std::string FormatText(const BenchReport& report);
std::string FormatJson(const BenchReport& report);

}  // namespace tkms::bench
