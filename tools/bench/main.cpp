// tkms-bench: command line of the KMS load generator (see bench.h).
//
//   tkms-bench --url http://127.0.0.1:8080 --mode request
//       --kms-identity kms.example.org
//       --initiator sip:alice@example.org --initiator-psk alice.psk
//       --responder sip:bob@example.org [--responder-psk bob.psk]
//       --connections 4 --duration 10 --warmup 2 [--rate 2000] [--json]
//
// PSK files are the hex files `tkmsctl user add --psk-out` writes (mode 0600).
// An https://host:port URL runs every mode over TLS 1.2 (web/client/tls_client.h):
//       --cacert ca.pem [--cert ue.pem --key ue.key]
// (--cacert required; the host must be a DNS name in the KMS certificate;
// the key file unencrypted, mode 0600).
// Resolve across two KMS domains (TS 33.328 B.2.2.3): the ticket from --url
// (KMS_I), every resolve at the Responder's own KMS, which asks KMS_I over Zk
// (reported as mode resolve-cross-domain):
//       --mode resolve --responder-kms URL --responder-kms-identity ID --responder-psk FILE
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "firmware/base/secret_files.h"
#include "tools/bench/bench.h"

namespace {

tkms::mikey::Bytes AsBytes(const std::string& s) { return tkms::mikey::Bytes(s.begin(), s.end()); }

int Fail(const std::string& message) {
  std::fprintf(stderr, "tkms-bench: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tkms-bench: load generator for a MIKEY-TICKET KMS over TS 33.328 Annex A HTTP"};
  tkms::bench::BenchConfig config;
  std::string mode = "request";
  std::string kms_identity = "kms.example.org";
  std::string initiator, initiator_psk_file, initiator_psk_id;
  std::string responder, responder_psk_file, responder_psk_id, responder_kms_identity;
  double rate = 0;
  int timeout_ms = 5000;
  bool json = false;
  app.add_option("--url", config.url, "KMS base URL, http://host:port[/base] or https://host:port[/base]")
      ->capture_default_str();
  app.add_option("--cacert", config.tls.ca_file,
                 "https: PEM file of the CA certificates that issued the KMS certificate (required)");
  CLI::Option* key = app.add_option("--key", config.tls.key_file,
                                    "https: the client certificate's private key, PEM, unencrypted, mode 0600");
  app.add_option("--cert", config.tls.cert_file, "https: PEM client certificate (mutual TLS)")->needs(key);
  app.add_option("--mode", mode, "request | resolve | echo")
      ->check(CLI::IsMember({"request", "resolve", "echo"}))
      ->capture_default_str();
  app.add_option("--connections", config.connections, "parallel keep-alive connections (one thread each)")
      ->capture_default_str();
  app.add_option("--duration", config.duration_s, "measured seconds")->capture_default_str();
  app.add_option("--warmup", config.warmup_s, "seconds before the measurement starts")->capture_default_str();
  app.add_option("--rate", rate, "open loop: total requests per second (default: closed loop)");
  app.add_option("--timeout-ms", timeout_ms, "per-request timeout")->capture_default_str();
  app.add_option("--kms-identity", kms_identity, "the KMS identity (IDRkms ID Data; tkmsd --dev uses the default)")
      ->capture_default_str();
  app.add_option("--initiator", initiator, "the Initiator's URI (IDRi)");
  app.add_option("--initiator-psk", initiator_psk_file, "hex PSK file of the Initiator");
  app.add_option("--initiator-psk-id", initiator_psk_id, "IDRpsk of the Initiator's PSK (byte string)");
  app.add_option("--responder", responder, "the Responder's URI (IDRr)");
  app.add_option("--responder-psk", responder_psk_file, "hex PSK file of the Responder (resolve mode)");
  app.add_option("--responder-psk-id", responder_psk_id, "IDRpsk of the Responder's PSK (byte string)");
  CLI::Option* rkms = app.add_option("--responder-kms", config.responder_kms_url,
                                     "resolve mode across domains: the Responder's own KMS (KMS_R), which resolves "
                                     "the ticket requested at --url over Zk; TLS files as for --url");
  app.add_option("--responder-kms-identity", responder_kms_identity, "the identity of --responder-kms (IDRkms)")
      ->needs(rkms);
  app.add_flag("--forking", config.forking, "request key forking (I flag); resolve tickets carry Initiator Data");
  app.add_option("--tgk-bytes", config.tgk_bytes, "requested TGK length (0: no TP KEMAC, the KMS's default)")
      ->capture_default_str();
  app.add_option("--echo-path", config.echo_path, "echo mode: the path and query to POST to")->capture_default_str();
  app.add_flag("--json", json, "print one JSON object");
  CLI11_PARSE(app, argc, argv);

  config.mode = mode == "resolve" ? tkms::bench::BenchMode::kResolve
                : mode == "echo"  ? tkms::bench::BenchMode::kEcho
                                  : tkms::bench::BenchMode::kRequest;
  if (rate > 0) config.rate = rate;
  if (timeout_ms <= 0) return Fail("--timeout-ms must be positive");
  config.timeout = std::chrono::milliseconds(timeout_ms);
  config.kms_identity = AsBytes(kms_identity);
  config.initiator = AsBytes(initiator);
  config.responder = AsBytes(responder);
  config.responder_kms_identity = AsBytes(responder_kms_identity);
  if (!initiator_psk_id.empty()) config.initiator_psk_id = AsBytes(initiator_psk_id);
  if (!responder_psk_id.empty()) config.responder_psk_id = AsBytes(responder_psk_id);
  if (!initiator_psk_file.empty()) {
    auto psk = tkms::ReadHexSecretFile(initiator_psk_file, "initiator PSK");
    if (!psk.ok()) return Fail(psk.error().ToString());
    config.initiator_psk = std::move(*psk);
  }
  if (!responder_psk_file.empty()) {
    auto psk = tkms::ReadHexSecretFile(responder_psk_file, "responder PSK");
    if (!psk.ok()) return Fail(psk.error().ToString());
    config.responder_psk = std::move(*psk);
  }

  auto report = tkms::bench::RunBench(config);
  if (!report.ok()) return Fail(report.error().ToString());
  const std::string text = json ? tkms::bench::FormatJson(*report) + "\n" : tkms::bench::FormatText(*report);
  std::fputs(text.c_str(), stdout);
  return 0;
}
