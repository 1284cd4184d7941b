// Internal to tkms-ue (call.cpp, offer_answer.cpp): what the end-to-end
// call and the offer / answer / finish steps share.
//
// Why: both run the same Ticket Transfer steps (RFC 6043 §4.2.2) and read the
// same untrusted inputs -- the peer's SDP (RFC 4567 a=key-mgmt, through
// tools/ue/sdp.h) and its TRANSFER_INIT, checked before any KMS is contacted
// (§4.2.2.2) -- so one copy keeps both commands' behaviour the same.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/status.h"
#include "firmware/mikey/crypto/provider.h"
#include "firmware/mikey/message.h"
#include "tools/ue/kms_client.h"
#include "tools/ue/transfer.h"
#include "tools/ue_cli/media.h"

namespace tkms::ue_cli {

mikey::Bytes B(std::string_view s);
Result<uint32_t> RandomU32(mikey::crypto::CryptoProvider& provider);

// "CSB ID n; CS 1 SSRC 0x.. SPI ..;" and the "cs <id> ssrc 0x<ssrc> spi <hex>"
// lines (never key bytes).
std::string DescribeSession(const ue::TransferSession& s);
void PrintCryptoSessions(std::FILE* out, const std::string& who, const ue::TransferSession& s);

// A KMS client for an http:// or https:// URL (https: `tls` must name the CA
// file; see web/client/tls_client.h).
Result<ue::KmsClient> KmsAt(const std::string& url, std::chrono::milliseconds timeout,
                            const web::client::TlsClientOptions& tls);

// The TICKET payload of a decoded TRANSFER_INIT; nullptr if there is none.
const mikey::TicketPayload* TicketIn(const mikey::Message& m);

// A received TRANSFER_INIT: decoded (map type checked, RFC 6043 §6.1) and its
// ticket policy checked before any KMS is contacted (§4.2.2.2), including the
// F flag this tool needs (the Responder's stream travels in the TRANSFER_RESP).
Result<mikey::Message> AcceptTransferInit(ByteSpan bytes, const std::vector<mikey::Bytes>& acceptable);

// A file of at most max_bytes (the peer's SDP, the state file), read whole.
Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);

}  // namespace tkms::ue_cli
