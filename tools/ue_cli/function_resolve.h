// tkms-ue function-resolve: an authorised network function (TR 33.828 step 5,
// lawful interception) has the KMS that issued a ticket open it, over that
// KMS's Zk listener (TS 33.328 Annex A on Zk, B.2.2.3; RFC 6043 §10).
//
// Why a command: the network function holds no PSK; it is known to the KMS
// by its pinned TLS client certificate (`network_functions`, role resolve),
// so the exchange is one unprotected RESOLVE_INIT_PSK / RESOLVE_RESP inside
// mutual TLS (tools/ue/function_resolve.h). The ticket comes from an SDP
// offer (a=key-mgmt:mikey with the TRANSFER_INIT, as `tkms-ue offer` writes
// it). The command prints the ticket's initiator and responders (from the
// ticket policy) and each key received by name, type and SPI with a short
// SHA-256 fingerprint -- never key bytes on stdout. With keys_out the keys
// go, hex in JSON, to a new file created exclusively with mode 0600.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "firmware/base/status.h"
#include "tools/ue/function_resolve.h"
#include "web/client/tls_client.h"

namespace tkms::ue_cli {

struct FunctionResolveConfig {
  std::string kms_url;       // https://host:port of the KMS's Zk listener
  web::client::TlsClientOptions tls;  // CA file, the function's certificate and key: all required
  std::string kms_identity;  // IDRkms: the ticket's issuer, the KMS asked
  std::string offer;         // SDP offer with the TRANSFER_INIT
  std::string keys_out;      // optional: JSON keys file (0600, never overwritten)
  std::chrono::milliseconds timeout{5000};
};

// Ok, or the reason: "KMS refused: MIKEY error N (name)" (kPermissionDenied),
// "the KMS does not authorise this certificate for the resolve role" (HTTP
// 403, kPermissionDenied), the TLS client's text for TLS failures.
Status RunFunctionResolve(const FunctionResolveConfig& config, std::FILE* out);

// The keys file: {"kms", "csb_id", "initiator", "responders", "keys": [{"name",
// "type", "key_type", "spi", "key", ["salt"]}]}, key bytes as lowercase hex.
// SecretBytes, since it holds the keys.
SecretBytes KeysJson(const std::string& kms_identity, uint32_t csb_id, const mikey::TicketPolicy& policy,
                     const ue::FunctionResolvedKeys& keys);

}  // namespace tkms::ue_cli
