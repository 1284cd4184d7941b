// tkms-ue: the UE command line. `tkms-ue call` runs one end-to-end
// MIKEY-TICKET call on loopback (see call.h):
//   tkms-ue call --kms http://127.0.0.1:8080
//       --initiator sip:alice@example.org --initiator-psk build/run/ue/alice.psk
//       --responder sip:bob@example.org --responder-psk build/run/ue/bob.psk
//       [--packets 10] [--kms-identity kms.example.org] [--forking [--fork 2]]
//       [--calls K] [--ticket-lifetime S] [--responder-identity URI]
//       [--responder-kms URL] [--responder-kms-identity ID]
// and the same call in three steps over files (no media):
//   tkms-ue offer  --kms URL --initiator URI --initiator-psk FILE --responder URI
//                  [--forking] --sdp-out offer.sdp --state-out call.state
//   tkms-ue answer --kms URL --responder URI --responder-psk FILE
//                  --sdp-in offer.sdp --sdp-out answer.sdp
//   tkms-ue finish --state call.state --initiator-psk FILE --sdp-in answer.sdp
// answer and finish print each crypto session's CS ID, SSRC and SPI, never
// key bytes. The state file holds no keys (see call.h) and is created 0600.
// Exit 0 only if the keys agreed and SRTP media flowed both ways; otherwise 1
// with the reason on stderr.
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

#include <CLI/CLI.hpp>

#include "firmware/base/secret_files.h"
#include "tools/ue_cli/call.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "tkms-ue: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tkms-ue: MIKEY-TICKET UE (RFC 6043, TS 33.328)"};
  app.require_subcommand(1);

  CLI::App* call = app.add_subcommand("call", "one end-to-end call on loopback with SRTP media both ways");
  tkms::ue_cli::CallConfig config;
  std::string kms_identity, initiator_psk_file, responder_psk_file;
  int timeout_ms = 5000;
  call->add_option("--kms", config.kms_url, "KMS base URL, http://host:port")->required();
  call->add_option("--kms-identity", kms_identity,
                   "the KMS identity (default: the URL's host; kms.example.org for loopback)");
  call->add_option("--initiator", config.initiator, "the Initiator's URI")->required();
  call->add_option("--initiator-psk", initiator_psk_file, "hex PSK file of the Initiator")->required();
  call->add_option("--responder", config.responder, "the Responder's URI")->required();
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
  call->add_option("--timeout-ms", timeout_ms, "timeout of each wait (SDP, media)")->capture_default_str();

  CLI::App* offer = app.add_subcommand("offer", "Initiator: request a ticket, write the SDP offer and a state file");
  tkms::ue_cli::OfferConfig oc;
  std::string o_psk;
  offer->add_option("--kms", oc.kms_url, "KMS base URL, http://host:port")->required();
  offer->add_option("--kms-identity", oc.kms_identity, "the KMS identity (default as for call)");
  offer->add_option("--initiator", oc.initiator, "the Initiator's URI")->required();
  offer->add_option("--initiator-psk", o_psk, "hex PSK file of the Initiator")->required();
  offer->add_option("--responder", oc.responder, "the Responder's URI")->required();
  offer->add_flag("--forking", oc.forking, "request key forking (I flag)");
  offer->add_option("--ticket-lifetime", oc.ticket_lifetime_s, "request TRe = now + SECONDS (default: the KMS's)");
  offer->add_option("--rtp-port", oc.rtp_port, "RTP port announced in the offer")->capture_default_str();
  offer->add_option("--sdp-out", oc.sdp_out, "where to write the SDP offer")->required();
  offer->add_option("--state-out", oc.state_out, "new state file for finish (created 0600)")->required();

  CLI::App* answer = app.add_subcommand("answer", "Responder: resolve the offer's ticket, write the SDP answer");
  tkms::ue_cli::AnswerConfig ac;
  std::string a_psk;
  answer->add_option("--kms", ac.kms_url, "KMS base URL, http://host:port")->required();
  answer->add_option("--kms-identity", ac.kms_identity, "the KMS identity (default as for call)");
  answer->add_option("--responder", ac.responder, "the Responder's URI")->required();
  answer->add_option("--responder-psk", a_psk, "hex PSK file of the Responder")->required();
  answer->add_option("--rtp-port", ac.rtp_port, "RTP port announced in the answer")->capture_default_str();
  answer->add_option("--sdp-in", ac.sdp_in, "the SDP offer")->required();
  answer->add_option("--sdp-out", ac.sdp_out, "where to write the SDP answer")->required();

  CLI::App* finish = app.add_subcommand("finish", "Initiator: verify the SDP answer and derive the SRTP keys");
  tkms::ue_cli::FinishConfig fc;
  std::string f_psk;
  finish->add_option("--state", fc.state_in, "the state file written by offer")->required();
  finish->add_option("--initiator-psk", f_psk, "hex PSK file of the Initiator")->required();
  finish->add_option("--sdp-in", fc.sdp_in, "the SDP answer")->required();
  CLI11_PARSE(app, argc, argv);

  if (*offer || *answer) {
    std::string& url = *offer ? oc.kms_url : ac.kms_url;
    std::string& id = *offer ? oc.kms_identity : ac.kms_identity;
    if (id.empty()) {
      auto def = tkms::ue_cli::DefaultKmsIdentity(url);
      if (!def.ok()) return Fail(def.error().ToString());
      id = std::move(*def);
    }
  }
  if (*offer) {
    auto psk = tkms::ReadHexSecretFile(o_psk, "initiator PSK");
    if (!psk.ok()) return Fail(psk.error().ToString());
    oc.initiator_psk = std::move(*psk);
    tkms::Status st = tkms::ue_cli::RunOffer(oc, stdout);
    return st.ok() ? 0 : Fail("offer failed: " + st.ToString());
  }
  if (*answer) {
    auto psk = tkms::ReadHexSecretFile(a_psk, "responder PSK");
    if (!psk.ok()) return Fail(psk.error().ToString());
    ac.responder_psk = std::move(*psk);
    tkms::Status st = tkms::ue_cli::RunAnswer(ac, stdout);
    return st.ok() ? 0 : Fail("answer failed: " + st.ToString());
  }
  if (*finish) {
    auto psk = tkms::ReadHexSecretFile(f_psk, "initiator PSK");
    if (!psk.ok()) return Fail(psk.error().ToString());
    fc.initiator_psk = std::move(*psk);
    tkms::Status st = tkms::ue_cli::RunFinish(fc, stdout);
    return st.ok() ? 0 : Fail("finish failed: " + st.ToString());
  }

  if (timeout_ms <= 0) return Fail("--timeout-ms must be positive");
  config.timeout = std::chrono::milliseconds(timeout_ms);
  if (kms_identity.empty()) {
    auto id = tkms::ue_cli::DefaultKmsIdentity(config.kms_url);
    if (!id.ok()) return Fail(id.error().ToString());
    kms_identity = std::move(*id);
  }
  config.kms_identity = kms_identity;
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
