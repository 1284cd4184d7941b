// tkms-ue: the UE command line. `tkms-ue call` runs one end-to-end
// MIKEY-TICKET call on loopback, proven by SRTP media both ways (see call.h):
//   tkms-ue call --kms http://127.0.0.1:8080
//       --initiator sip:alice@example.org --initiator-psk build/run/ue/alice.psk
//       --responder sip:bob@example.org --responder-psk build/run/ue/bob.psk
//       [--packets 10] [--kms-identity kms.example.org] [--forking [--fork 2]]
//       [--calls K] [--ticket-lifetime S] [--responder-identity URI]
//       [--responder-kms URL] [--responder-kms-identity ID] [--timeout-ms 5000]
//       [--cacert FILE [--cert FILE --key FILE]]
// and the same call in three steps over SDP files, for a real SIP stack:
//   tkms-ue offer  --kms URL --initiator URI --initiator-psk FILE --responder URI
//                  [--kms-identity ID] [--forking] [--reusable] [--ticket-lifetime S]
//                  [--rtp-port 49170] [--timeout-ms 5000]
//                  --sdp-out offer.sdp --state-out call.state
//   tkms-ue offer  --reuse-state call.state --initiator-psk FILE [--rtp-port P]
//                  --sdp-out offer2.sdp --state-out call2.state     (no Ticket Request)
//   tkms-ue answer --kms URL --responder URI --responder-psk FILE [--kms-identity ID]
//                  [--called-as URI] [--rtp-port 49172] [--media N] [--timeout-ms 5000]
//                  --sdp-in offer.sdp --sdp-out answer.sdp
//   tkms-ue finish --state call.state --initiator-psk FILE --sdp-in answer.sdp
//                  [--media N] [--timeout-ms 5000]
// and an authorised network function's resolve at the issuing KMS's Zk
// listener (TR 33.828 step 5; function_resolve.h):
//   tkms-ue function-resolve --kms https://HOST:ZKPORT [--kms-identity ID]
//                  --cacert CA --cert NF.pem --key NF.key --offer offer.sdp
//                  [--keys-out keys.json] [--timeout-ms 5000]
// A KMS URL is http://host:port or https://host:port (RFC 2818; TLS 1.2 with
// the tkms profile, web/client/tls_client.h): https needs --cacert (the CA
// certificates, PEM, that issued the KMS certificate; the URL's host must be
// a DNS name in that certificate) and takes --cert / --key (PEM client
// certificate and its unencrypted key, mode 0600) when the KMS asks for
// mutual TLS. call, offer and answer take them; finish does not contact a KMS.
// answer and finish print each crypto session's CS ID, SSRC and SPI, never
// key bytes. The state file holds no keys (see call.h) and is created 0600.
// --rtp-port 0 picks a free port. With --media N, answer and finish exchange N
// SRTP packets each way (answer waits for the Initiator's first).
// Exit 0 only if every step asked for held (call: the keys agreed and SRTP
// media flowed both ways; answer / finish: the peer's message verified and,
// with --media, the media decrypted both ways); otherwise 1 with the reason
// on stderr (command-line usage errors: CLI11's non-zero status and message).
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "firmware/base/secret_files.h"
#include "tools/ue_cli/call.h"
#include "tools/ue_cli/function_resolve.h"

namespace {

// --timeout-ms bounds: positive, at most an hour.
constexpr int kMaxTimeoutMs = 3600 * 1000;

int Fail(const std::string& message) {
  std::fprintf(stderr, "tkms-ue: %s\n", message.c_str());
  return 1;
}

void AddTimeout(CLI::App* app, int& timeout_ms, const char* what) {
  app->add_option("--timeout-ms", timeout_ms, what)->check(CLI::Range(1, kMaxTimeoutMs))->capture_default_str();
}

// --cacert, --cert, --key (https KMS URLs). Returns the options, so that
// callers can make them exclusive with others.
std::vector<CLI::Option*> AddTls(CLI::App* app, tkms::web::client::TlsClientOptions& tls) {
  CLI::Option* ca = app->add_option("--cacert", tls.ca_file,
                                    "https: PEM file of the CA certificates that issued the KMS certificate (required)");
  CLI::Option* key = app->add_option("--key", tls.key_file,
                                     "https: the client certificate's private key, PEM, unencrypted, mode 0600");
  CLI::Option* cert = app->add_option("--cert", tls.cert_file, "https: PEM client certificate (mutual TLS)");
  cert->needs(key);
  key->needs(cert);
  return {ca, cert, key};
}

// Fills an empty KMS identity with the default for the URL.
tkms::Status DefaultIdentity(const std::string& url, std::string& identity) {
  if (!identity.empty()) return tkms::Status::Ok();
  auto id = tkms::ue_cli::DefaultKmsIdentity(url);
  if (!id.ok()) return id.error();
  identity = std::move(*id);
  return tkms::Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tkms-ue: MIKEY-TICKET UE (RFC 6043, TS 33.328)"};
  app.require_subcommand(1);

  CLI::App* call = app.add_subcommand("call", "one end-to-end call on loopback with SRTP media both ways");
  tkms::ue_cli::CallConfig config;
  std::string initiator_psk_file, responder_psk_file;
  int timeout_ms = 5000;
  call->add_option("--kms", config.kms_url, "KMS base URL, http://host:port or https://host:port")->required();
  call->add_option("--kms-identity", config.kms_identity,
                   "the KMS identity (default: the URL's host; kms.example.org for loopback)");
  call->add_option("--initiator", config.initiator, "the Initiator's URI")->required();
  call->add_option("--initiator-psk", initiator_psk_file, "hex PSK file of the Initiator")->required();
  call->add_option("--responder", config.responder, "the Responder's URI (may be a group)")->required();
  call->add_option("--responder-psk", responder_psk_file, "hex PSK file of the Responder")->required();
  call->add_option("--responder-identity", config.responder_identity,
                   "the answering end-point's own identity (IDRr of its RESOLVE_INIT, owner of "
                   "--responder-psk); default: --responder. Use it when --responder is a group");
  call->add_option("--responder-kms", config.responder_kms_url, "the Responder's KMS URL (default: --kms)");
  call->add_option("--responder-kms-identity", config.responder_kms_identity,
                   "the Responder's KMS identity (default: the Initiator's KMS identity)");
  call->add_option("--calls", config.calls, "calls made with one reusable ticket (J flag if > 1)")
      ->capture_default_str();
  call->add_option("--ticket-lifetime", config.ticket_lifetime_s,
                   "request TRe = now + SECONDS (default: the KMS's)");
  call->add_option("--packets", config.packets, "RTP packets each way per end-point")->capture_default_str();
  call->add_flag("--forking", config.forking, "request key forking (I flag)");
  call->add_option("--fork", config.endpoints, "Responder end-points (> 1 needs --forking)")->capture_default_str();
  AddTimeout(call, timeout_ms, "timeout of each wait (KMS, SDP, media)");
  AddTls(call, config.tls);

  CLI::App* offer = app.add_subcommand(
      "offer", "Initiator: request a ticket (or reuse a saved one), write the SDP offer and a state file");
  tkms::ue_cli::OfferConfig oc;
  std::string o_psk;
  int o_timeout_ms = 5000;
  CLI::Option* o_kms = offer->add_option("--kms", oc.kms_url, "KMS base URL, http://host:port or https://host:port");
  CLI::Option* o_kms_id = offer->add_option("--kms-identity", oc.kms_identity, "the KMS identity (default as for call)");
  CLI::Option* o_initiator = offer->add_option("--initiator", oc.initiator, "the Initiator's URI");
  offer->add_option("--initiator-psk", o_psk, "hex PSK file of the Initiator")->required();
  CLI::Option* o_responder = offer->add_option("--responder", oc.responder, "the Responder's URI (may be a group)");
  CLI::Option* o_forking = offer->add_flag("--forking", oc.forking, "request key forking (I flag)");
  CLI::Option* o_reusable = offer->add_flag("--reusable", oc.reusable, "request a reusable ticket (J flag)");
  CLI::Option* o_lifetime = offer->add_option("--ticket-lifetime", oc.ticket_lifetime_s,
                                              "request TRe = now + SECONDS (default: the KMS's)");
  const std::vector<CLI::Option*> o_tls = AddTls(offer, oc.tls);
  offer->add_option("--reuse-state", oc.reuse_state,
                    "reuse the ticket of this earlier offer's state file (J flag, not expired): no Ticket Request; "
                    "identities, flags and KMS identity come from it")
      ->excludes(o_kms)
      ->excludes(o_kms_id)
      ->excludes(o_initiator)
      ->excludes(o_responder)
      ->excludes(o_forking)
      ->excludes(o_reusable)
      ->excludes(o_lifetime)
      ->excludes(o_tls[0])
      ->excludes(o_tls[1])
      ->excludes(o_tls[2]);
  offer->add_option("--rtp-port", oc.rtp_port, "RTP port announced in the offer (0: a free port)")
      ->capture_default_str();
  offer->add_option("--sdp-out", oc.sdp_out, "where to write the SDP offer")->required();
  offer->add_option("--state-out", oc.state_out, "new state file for finish (created 0600)")->required();
  AddTimeout(offer, o_timeout_ms, "timeout of the Ticket Request");

  CLI::App* answer = app.add_subcommand("answer", "Responder: resolve the offer's ticket, write the SDP answer");
  tkms::ue_cli::AnswerConfig ac;
  std::string a_psk;
  int a_timeout_ms = 5000;
  answer->add_option("--kms", ac.kms_url, "the Responder's KMS base URL, http://host:port or https://host:port")
      ->required();
  answer->add_option("--kms-identity", ac.kms_identity, "the KMS identity (default as for call)");
  answer->add_option("--responder", ac.responder, "the end-point's own URI (owner of --responder-psk)")->required();
  answer->add_option("--called-as", ac.called_as,
                     "the identity the end-point was called as (e.g. a group), accepted as the ticket's IDRr");
  answer->add_option("--responder-psk", a_psk, "hex PSK file of the Responder")->required();
  answer->add_option("--rtp-port", ac.rtp_port, "RTP port announced in the answer (0: a free port)")
      ->capture_default_str();
  answer->add_option("--media", ac.media,
                     "SRTP packets each way: receive N from the Initiator, then send N (0: no media)")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  answer->add_option("--sdp-in", ac.sdp_in, "the SDP offer")->required();
  answer->add_option("--sdp-out", ac.sdp_out, "where to write the SDP answer (atomically)")->required();
  AddTimeout(answer, a_timeout_ms, "timeout of the Ticket Resolve and of the wait for media");
  AddTls(answer, ac.tls);

  CLI::App* finish = app.add_subcommand("finish", "Initiator: verify the SDP answer and derive the SRTP keys");
  tkms::ue_cli::FinishConfig fc;
  std::string f_psk;
  int f_timeout_ms = 5000;
  finish->add_option("--state", fc.state_in, "the state file written by offer")->required();
  finish->add_option("--initiator-psk", f_psk, "hex PSK file of the Initiator")->required();
  finish->add_option("--sdp-in", fc.sdp_in, "the SDP answer")->required();
  finish->add_option("--media", fc.media,
                     "SRTP packets each way: send N to the Responder, then receive N (0: no media)")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  AddTimeout(finish, f_timeout_ms, "timeout of the wait for media");

  CLI::App* fresolve = app.add_subcommand(
      "function-resolve",
      "network function (TR 33.828 step 5): have the issuing KMS open the offer's ticket over Zk (mutual TLS)");
  tkms::ue_cli::FunctionResolveConfig rc;
  int r_timeout_ms = 5000;
  fresolve->add_option("--kms", rc.kms_url, "the issuing KMS's Zk listener, https://host:port")->required();
  fresolve->add_option("--kms-identity", rc.kms_identity,
                       "the issuing KMS's identity, IDRkms (default as for call)");
  const std::vector<CLI::Option*> r_tls = AddTls(fresolve, rc.tls);
  for (CLI::Option* o : r_tls) o->required();
  fresolve->add_option("--offer,--sdp-in", rc.offer, "the SDP offer with the TRANSFER_INIT (a=key-mgmt:mikey)")
      ->required();
  fresolve->add_option("--keys-out", rc.keys_out,
                       "write the keys (hex, JSON) to this new file, mode 0600 (never overwritten)");
  AddTimeout(fresolve, r_timeout_ms, "timeout of the KMS exchange");
  CLI11_PARSE(app, argc, argv);

  if (*fresolve) {
    rc.timeout = std::chrono::milliseconds(r_timeout_ms);
    if (auto st = DefaultIdentity(rc.kms_url, rc.kms_identity); !st.ok()) return Fail(st.ToString());
    tkms::Status st = tkms::ue_cli::RunFunctionResolve(rc, stdout);
    return st.ok() ? 0 : Fail(st.message());
  }

  if (*offer) {
    oc.timeout = std::chrono::milliseconds(o_timeout_ms);
    if (oc.reuse_state.empty()) {
      if (oc.kms_url.empty() || oc.initiator.empty() || oc.responder.empty()) {
        return Fail("offer needs --kms, --initiator and --responder (or --reuse-state)");
      }
      if (auto st = DefaultIdentity(oc.kms_url, oc.kms_identity); !st.ok()) return Fail(st.ToString());
    }
    auto psk = tkms::ReadHexSecretFile(o_psk, "initiator PSK");
    if (!psk.ok()) return Fail(psk.error().ToString());
    oc.initiator_psk = std::move(*psk);
    tkms::Status st = tkms::ue_cli::RunOffer(oc, stdout);
    return st.ok() ? 0 : Fail("offer failed: " + st.ToString());
  }
  if (*answer) {
    ac.timeout = std::chrono::milliseconds(a_timeout_ms);
    if (auto st = DefaultIdentity(ac.kms_url, ac.kms_identity); !st.ok()) return Fail(st.ToString());
    auto psk = tkms::ReadHexSecretFile(a_psk, "responder PSK");
    if (!psk.ok()) return Fail(psk.error().ToString());
    ac.responder_psk = std::move(*psk);
    tkms::Status st = tkms::ue_cli::RunAnswer(ac, stdout);
    return st.ok() ? 0 : Fail("answer failed: " + st.ToString());
  }
  if (*finish) {
    fc.timeout = std::chrono::milliseconds(f_timeout_ms);
    auto psk = tkms::ReadHexSecretFile(f_psk, "initiator PSK");
    if (!psk.ok()) return Fail(psk.error().ToString());
    fc.initiator_psk = std::move(*psk);
    tkms::Status st = tkms::ue_cli::RunFinish(fc, stdout);
    return st.ok() ? 0 : Fail("finish failed: " + st.ToString());
  }

  config.timeout = std::chrono::milliseconds(timeout_ms);
  if (auto st = DefaultIdentity(config.kms_url, config.kms_identity); !st.ok()) return Fail(st.ToString());
  auto ipsk = tkms::ReadHexSecretFile(initiator_psk_file, "initiator PSK");
  if (!ipsk.ok()) return Fail(ipsk.error().ToString());
  config.initiator_psk = std::move(*ipsk);
  auto rpsk = tkms::ReadHexSecretFile(responder_psk_file, "responder PSK");
  if (!rpsk.ok()) return Fail(rpsk.error().ToString());
  config.responder_psk = std::move(*rpsk);

  tkms::Status st = tkms::ue_cli::RunCall(config, stdout);
  if (!st.ok()) return Fail("call failed: " + st.ToString());
  return 0;
}
