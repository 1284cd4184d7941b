#include "firmware/mikey/coverage.h"

#include <string>

namespace tkms::mikey {
namespace {

CodecError CoverageError(Rule rule, size_t offset, std::string detail) {
  return CodecError{rule, offset, std::move(detail)};
}

// Offset and length (within a TICKET payload's bytes) of the Initiator Data
// length field plus Initiator Data: 10 + TP Data length + 2 + Ticket Data length.
bool InitiatorDataRange(ByteSpan ticket, size_t& begin, size_t& length) {
  ByteReader r(ticket);
  uint16_t tp_len = 0, td_len = 0, id_len = 0;
  if (!r.Skip(8) || !r.ReadU16(tp_len) || !r.Skip(tp_len) || !r.ReadU16(td_len) ||
      !r.Skip(td_len)) {
    return false;
  }
  begin = r.offset();
  if (!r.ReadU16(id_len) || !r.Skip(id_len)) return false;
  length = 2 + size_t{id_len};
  return true;
}

}  // namespace

Result<MacCoverage, CodecError> VPayloadCoverage(ByteSpan message, const Message& decoded,
                                                 const std::vector<PayloadExtent>& extents,
                                                 std::span<const ByteSpan> appended) {
  if (decoded.payloads.empty() || extents.size() != decoded.payloads.size() + 1) {
    return CoverageError(Rule::kComposition, 0, "message has no payloads to cover");
  }
  const auto* v = std::get_if<VPayload>(&decoded.payloads.back());
  if (v == nullptr) {
    return CoverageError(Rule::kComposition, extents.back().offset,
                         "the last payload is not a V payload");
  }
  const size_t mac_len = v->mac.size();
  const size_t mac_at = message.size() - mac_len;
  MacCoverage out;
  out.mac_alg = v->auth_alg;
  out.mac = message.subspan(mac_at);

  size_t cut_begin = mac_at, cut_length = 0;
  if (decoded.header.data_type == static_cast<uint8_t>(DataType::kTransferInit)) {
    for (size_t i = 0; i < decoded.payloads.size(); ++i) {
      if (!std::holds_alternative<TicketPayload>(decoded.payloads[i])) continue;
      const PayloadExtent& e = extents[i + 1];
      size_t begin = 0, length = 0;
      if (!InitiatorDataRange(message.subspan(e.offset, e.length), begin, length)) {
        return CoverageError(Rule::kTruncated, e.offset, "TICKET payload is malformed");
      }
      cut_begin = e.offset + begin;
      cut_length = length;
    }
  }
  out.parts.push_back(message.first(cut_begin));
  if (cut_begin + cut_length < mac_at) {
    out.parts.push_back(message.subspan(cut_begin + cut_length, mac_at - cut_begin - cut_length));
  }
  for (ByteSpan a : appended) out.parts.push_back(a);
  return out;
}

Result<MacCoverage, CodecError> VPayloadCoverage(ByteSpan message,
                                                 std::span<const ByteSpan> appended) {
  DecodeOptions options;
  options.check_composition = false;
  std::vector<PayloadExtent> extents;
  auto decoded = Decode(message, options, extents);
  if (!decoded.ok()) return std::move(decoded).error();
  return VPayloadCoverage(message, *decoded, extents, appended);
}

Result<Bytes, CodecError> BaseTicketMacInput(const TicketPayload& ticket) {
  if (!IsBaseTicket(ticket.policy)) {
    return CoverageError(Rule::kTicketType, 0, "not a MIKEY base ticket");
  }
  auto base = DecodeBaseTicketData(ticket.ticket_data);
  if (!base.ok()) return std::move(base).error();
  TicketPayload without_initiator_data = ticket;
  without_initiator_data.initiator_data.reset();
  auto encoded = EncodePayload(without_initiator_data, 0);
  if (!encoded.ok()) return std::move(encoded).error();
  // Drop: next payload (1 byte) in front; Initiator Data length (2 bytes, now
  // zero) and the V MAC at the end.
  const Bytes& b = *encoded;
  const size_t mac_len = base->v.mac.size();
  return Bytes(b.begin() + 1, b.end() - 2 - static_cast<std::ptrdiff_t>(mac_len));
}

Result<Bytes, CodecError> InitiatorDataMacInput(const InitiatorData& data) {
  auto vi = EncodePayload(data.vi, static_cast<uint8_t>(PayloadType::kV));
  if (!vi.ok()) return std::move(vi).error();
  Bytes out;
  out.push_back(static_cast<uint8_t>(PayloadType::kV));
  out.insert(out.end(), vi->begin(), vi->end());
  out.push_back(0);  // Vr next payload
  out.push_back(data.vr.auth_alg);
  return out;
}

}  // namespace tkms::mikey
