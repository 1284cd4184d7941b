// tkms-ue function-resolve: a network function's resolve at the issuing
// KMS's Zk listener (TR 33.828 step 5; TS 33.328 B.2.2.3; RFC 6043 §10); see
// function_resolve.h.
#include "tools/ue_cli/function_resolve.h"

#include <sys/stat.h>

#include <cerrno>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "firmware/base/printable.h"
#include "firmware/base/secret_files.h"
#include "firmware/mikey/types.h"
#include "tools/ue/sdp.h"
#include "tools/ue/transfer.h"
#include "tools/ue_cli/cli_common.h"
#include "tools/ue_cli/media.h"
#include "tools/ue_cli/state_file.h"

namespace tkms::ue_cli {
namespace {

const std::string kWho = "function-resolve";

std::string AsText(const mikey::Bytes& b) { return std::string(b.begin(), b.end()); }

// The ticket policy's identities of `role` (IDRi, IDRr); untrusted text.
std::vector<std::string> PolicyIdentities(const mikey::TicketPolicy& policy, mikey::IdRole role) {
  std::vector<std::string> out;
  for (const auto& item : policy.tp_data) {
    const auto* idr = std::get_if<mikey::IdrPayload>(&item);
    if (idr != nullptr && idr->role == static_cast<uint8_t>(role)) out.push_back(AsText(idr->data));
  }
  return out;
}

std::string QuotedList(const std::vector<std::string>& ids) {
  if (ids.empty()) return "(none in the ticket policy)";
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ", ") + Quote(id);
  return out;
}

// "MPKi", "MPKr", then the session keys by their number.
std::string KeyName(size_t mpk_index, bool is_mpk, size_t session_index) {
  if (is_mpk) return mpk_index == 0 ? "MPKi" : "MPKr";
  return "key" + std::to_string(session_index + 1);
}

template <typename Fn>
void ForEachKey(const ue::FunctionResolvedKeys& keys, Fn fn) {
  for (size_t i = 0; i < keys.mpk_keys.size(); ++i) fn(KeyName(i, true, 0), keys.mpk_keys[i]);
  for (size_t i = 0; i < keys.session_keys.size(); ++i) fn(KeyName(0, false, i), keys.session_keys[i]);
}

void AppendText(SecretBytes& out, std::string_view text) { out.insert(out.end(), text.begin(), text.end()); }

void AppendHex(SecretBytes& out, ByteSpan bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (uint8_t b : bytes) {
    out.push_back(static_cast<uint8_t>(kDigits[b >> 4]));
    out.push_back(static_cast<uint8_t>(kDigits[b & 0x0F]));
  }
}

// A JSON string of untrusted text: invalid UTF-8 replaced, never thrown on.
std::string JsonString(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The error the operator reads, by what went wrong.
Status Refusal(const ue::UeError& e) {
  if (e.kind == ue::UeErrorKind::kMikeyError && !e.mikey_errors.empty()) {
    std::string text;
    for (uint8_t no : e.mikey_errors) {
      text += (text.empty() ? "" : ", ") + std::string("MIKEY error ") + std::to_string(no) + " (" +
              std::string(mikey::ErrorNoName(no)) + ")";
    }
    return PermissionDenied("KMS refused: " + text);
  }
  if (e.kind == ue::UeErrorKind::kHttpStatus && e.http_status == 403) {
    return PermissionDenied("the KMS does not authorise this certificate for the resolve role (HTTP 403)");
  }
  if (e.kind == ue::UeErrorKind::kTransport) return Unavailable(e.detail);  // the TLS client's own text
  return Unavailable("function resolve failed: " + e.ToString());
}

Status CheckConfig(const FunctionResolveConfig& c) {
  auto url = web::client::ParseHttpUrl(c.kms_url);
  if (!url.ok()) return url.error();
  if (!url->https) return InvalidArgument("--kms must be https:// (the Zk listener is mutual TLS only)");
  if (c.tls.ca_file.empty() || c.tls.cert_file.empty() || c.tls.key_file.empty()) {
    return InvalidArgument("--cacert, --cert and --key are needed (the network function's TLS identity)");
  }
  TKMS_RETURN_IF_ERROR(CheckPrintable(c.kms_identity, "--kms-identity"));
  if (c.offer.empty()) return InvalidArgument("--offer is needed");
  if (c.timeout.count() <= 0) return InvalidArgument("the timeout must be positive");
  if (!c.keys_out.empty()) {
    // Before the KMS is asked (every resolve is an audit line there): the
    // file is created exclusively later, this only fails early.
    struct stat st {};
    if (::lstat(c.keys_out.c_str(), &st) == 0) {
      return FailedPrecondition("--keys-out " + c.keys_out + " exists; refusing to overwrite it");
    }
    if (errno != ENOENT) return InvalidArgument(ErrnoMessage(("--keys-out " + c.keys_out).c_str()));
  }
  return Status::Ok();
}

}  // namespace

SecretBytes KeysJson(const std::string& kms_identity, uint32_t csb_id, const mikey::TicketPolicy& policy,
                     const ue::FunctionResolvedKeys& keys) {
  SecretBytes out;
  AppendText(out, "{\"kms\": " + JsonString(kms_identity) + ", \"csb_id\": " + std::to_string(csb_id));
  const auto initiators = PolicyIdentities(policy, mikey::IdRole::kInitiator);
  AppendText(out, ", \"initiator\": " + (initiators.empty() ? std::string("null") : JsonString(initiators.front())));
  AppendText(out, ", \"responders\": [");
  bool first = true;
  for (const auto& r : PolicyIdentities(policy, mikey::IdRole::kResponder)) {
    AppendText(out, (first ? "" : ", ") + JsonString(r));
    first = false;
  }
  AppendText(out, "], \"keys\": [");
  first = true;
  ForEachKey(keys, [&](const std::string& name, const mikey::KeyDataPayload& k) {
    AppendText(out, std::string(first ? "\n  " : ",\n  ") + "{\"name\": \"" + name + "\", \"type\": \"" +
                        std::string(mikey::KeyTypeName(k.key_type)) + "\", \"key_type\": " +
                        std::to_string(k.key_type) + ", \"spi\": \"" + HexEncode(k.kv.spi) + "\", \"key\": \"");
    AppendHex(out, k.key);
    if (k.salt) {
      AppendText(out, "\", \"salt\": \"");
      AppendHex(out, *k.salt);
    }
    AppendText(out, "\"}");
    first = false;
  });
  AppendText(out, "\n]}\n");
  return out;
}

Status RunFunctionResolve(const FunctionResolveConfig& c, std::FILE* out) {
  TKMS_RETURN_IF_ERROR(CheckConfig(c));
  auto text = ReadSmallFile(c.offer, ue::kMaxSdpBytes);
  if (!text.ok()) return text.error();
  auto transfer_init = ue::ExtractMikeyKeyMgmt(*text);
  if (!transfer_init.ok()) return InvalidArgument("the SDP offer " + c.offer + ": " + transfer_init.error().message());
  auto message = ue::DecodeTransferInit(*transfer_init);
  if (!message.ok()) return InvalidArgument("the SDP offer's TRANSFER_INIT: " + message.error().ToString());
  const mikey::TicketPayload* ticket = TicketIn(*message);
  if (ticket == nullptr) return InvalidArgument("the TRANSFER_INIT has no TICKET payload");
  const mikey::TicketPolicy& policy = ticket->policy;
  PrintLine(out, kWho, "ticket initiator " + QuotedList(PolicyIdentities(policy, mikey::IdRole::kInitiator)) +
                           "; responders " + QuotedList(PolicyIdentities(policy, mikey::IdRole::kResponder)) +
                           ((policy.flags & mikey::kFlagI) != 0 ? "; key forking (I flag)" : ""));

  auto kms = KmsAt(c.kms_url, c.timeout, c.tls);
  if (!kms.ok()) return kms.error();
  ue::FunctionResolveParams params;
  params.ticket = *ticket;
  params.kms_identity = B(c.kms_identity);
  auto init_csb = RandomU32(kms->provider());
  if (!init_csb.ok()) return init_csb.error();
  params.csb_id = *init_csb;
  auto keys = kms->FunctionResolve(params);
  if (!keys.ok()) return Refusal(keys.error());
  PrintLine(out, kWho, "ticket resolved by " + Quote(AsText(keys->kms_identity)) + ": " +
                           std::to_string(keys->mpk_keys.size() + keys->session_keys.size()) +
                           " keys, as the ticket holds them (not forked)");
  ForEachKey(*keys, [&](const std::string& name, const mikey::KeyDataPayload& k) {
    PrintLine(out, kWho, "key " + name + " type " + std::string(mikey::KeyTypeName(k.key_type)) + " spi " +
                             (k.kv.spi.empty() ? std::string("-") : HexEncode(k.kv.spi)) + " sha256 " +
                             ue::KeyFingerprint(k));
  });
  if (c.keys_out.empty()) return Status::Ok();
  TKMS_RETURN_IF_ERROR(WriteSecretFile(c.keys_out, KeysJson(c.kms_identity, *init_csb, policy, *keys), "keys file"));
  PrintLine(out, kWho, "keys written to " + c.keys_out + " (mode 0600)");
  return Status::Ok();
}

}  // namespace tkms::ue_cli
