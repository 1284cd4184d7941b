// What tkms-ue call and offer / answer / finish share (see cli_common.h).
#include "tools/ue_cli/cli_common.h"

#include <array>
#include <fstream>
#include <utility>

#include "firmware/base/big_endian.h"
#include "firmware/base/byte_reader.h"
#include "firmware/base/encoding.h"
#include "web/client/http_client.h"

namespace tkms::ue_cli {
namespace {

// The SSRC at the start of SRTP Session Data (RFC 3830 §6.1.1), or "-".
std::string SsrcText(const mikey::GenericIdEntry& cs) {
  ByteReader r(cs.session_data);
  uint32_t v = 0;
  if (!r.ReadU32(v)) return "-";
  char ssrc[16];
  std::snprintf(ssrc, sizeof ssrc, "0x%08x", v);
  return ssrc;
}

std::string SpiText(const mikey::GenericIdEntry& cs) { return cs.spi.empty() ? "-" : HexEncode(cs.spi); }

}  // namespace

mikey::Bytes B(std::string_view s) { return mikey::Bytes(s.begin(), s.end()); }

Result<uint32_t> RandomU32(mikey::crypto::CryptoProvider& provider) {
  std::array<uint8_t, 4> b{};
  TKMS_RETURN_IF_ERROR(provider.Random(b));
  return LoadBe32(b);
}

std::string DescribeSession(const ue::TransferSession& s) {
  std::string text = "CSB ID " + std::to_string(s.csb_id) + ";";
  for (const auto& cs : s.crypto_sessions) {
    text += " CS " + std::to_string(cs.cs_id) + " SSRC " + SsrcText(cs) + " SPI " + SpiText(cs) + ";";
  }
  return text;
}

void PrintCryptoSessions(std::FILE* out, const std::string& who, const ue::TransferSession& s) {
  for (const auto& cs : s.crypto_sessions) {
    PrintLine(out, who, "cs " + std::to_string(cs.cs_id) + " ssrc " + SsrcText(cs) + " spi " + SpiText(cs));
  }
}

Result<ue::KmsClient> KmsAt(const std::string& url, std::chrono::milliseconds timeout,
                            const web::client::TlsClientOptions& tls) {
  web::client::HttpClientOptions options;
  options.timeout = timeout;
  options.tls = tls;
  auto http = web::client::HttpClient::FromUrl(url, options);
  if (!http.ok()) return http.error();
  return ue::KmsClient(std::move(*http));
}

const mikey::TicketPayload* TicketIn(const mikey::Message& m) {
  for (const auto& p : m.payloads) {
    if (const auto* t = std::get_if<mikey::TicketPayload>(&p)) return t;
  }
  return nullptr;
}

Result<mikey::Message> AcceptTransferInit(ByteSpan bytes, const std::vector<mikey::Bytes>& acceptable) {
  auto message = ue::DecodeTransferInit(bytes);
  if (!message.ok()) return PermissionDenied("TRANSFER_INIT refused: " + message.error().ToString());
  if (auto early = ue::CheckTransferInitEarly(*message, acceptable, ue::NtpUtcNow()); !early.ok()) {
    return PermissionDenied(early.error().ToString());
  }
  const mikey::TicketPayload* ticket = TicketIn(*message);
  if (ticket == nullptr) return PermissionDenied("the TRANSFER_INIT has no TICKET payload");
  if ((ticket->policy.flags & mikey::kFlagF) == 0) {
    return InvalidArgument("the ticket's F flag is 0: no TRANSFER_RESP, so no separate responder stream");
  }
  return std::move(*message);
}

Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot open " + path);
  std::string text;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes) return InvalidArgument(path + " is too large");
  }
  if (in.bad()) return Unavailable("cannot read " + path);
  return text;
}

}  // namespace tkms::ue_cli
