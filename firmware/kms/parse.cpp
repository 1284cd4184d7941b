// Step 1 of an exchange: decode the request once and pick out the payloads
// the KMS uses (RFC 6043 §4.2.1.1-4.2.1.4 REQUEST_INIT_PSK, §4.2.3.1-4.2.3.4
// RESOLVE_INIT_PSK). Error numbers: RFC 3830 Table 6.12, RFC 4738 §3.3 (13
// only for a message type the KMS does not support), RFC 6043 Table 6.14.
#include <string>

#include "firmware/kms/exchange.h"

namespace tkms::kms {
namespace {

using mikey::ErrorNo;
using mikey::IdRole;

struct ExchangeShape {
  mikey::DataType expected;    // the PSK variant tkms serves
  mikey::DataType pk_variant;  // the public-key variant it does not
  uint8_t peer_role;           // IDRi / IDRr
  uint8_t rand_role;           // RANDRi / RANDRr
  const char* rand_name;
};

ExchangeShape ShapeOf(RequestType type) {
  if (type == RequestType::kTicketRequest) {
    return {mikey::DataType::kRequestInitPsk, mikey::DataType::kRequestInitPk,
            static_cast<uint8_t>(IdRole::kInitiator), static_cast<uint8_t>(mikey::RandRole::kInitiator), "RANDRi"};
  }
  return {mikey::DataType::kResolveInitPsk, mikey::DataType::kResolveInitPk,
          static_cast<uint8_t>(IdRole::kResponder), static_cast<uint8_t>(mikey::RandRole::kResponder), "RANDRr"};
}

Rejection Malformed(std::string detail) {
  return Rejection::Mikey(ErrorNo::kUnspecified, Refusal::kMalformed, std::move(detail));
}

// The data type decides before anything else is looked at: a message of the
// wrong exchange is refused as such even when its payloads are malformed.
std::optional<Rejection> CheckDataType(RequestType type, uint8_t data_type) {
  const ExchangeShape shape = ShapeOf(type);
  if (data_type == static_cast<uint8_t>(shape.pk_variant)) {
    return Rejection::Mikey(ErrorNo::kUnsupportedMessage, Refusal::kWrongDataType,
                            "the public-key variant (data type " + std::to_string(data_type) +
                                ") is not supported; use the PSK variant");
  }
  if (data_type != static_cast<uint8_t>(shape.expected)) {
    return Rejection::Mikey(ErrorNo::kInvalidDt, Refusal::kWrongDataType,
                            "data type " + std::to_string(data_type) + " on requesttype=" +
                                std::string(RequestTypeName(type)) + " (expected " +
                                std::to_string(static_cast<int>(shape.expected)) + ")");
  }
  return std::nullopt;
}

// Slots an IDR payload by role; a second IDR of a role the KMS uses is
// refused (which of the two would the MAC's Identity be?).
std::optional<Rejection> TakeIdr(const mikey::IdrPayload& idr, uint8_t peer_role, RequestPayloads& p) {
  const mikey::IdrPayload** slot = nullptr;
  if (idr.role == peer_role) slot = &p.idr_peer;
  if (idr.role == static_cast<uint8_t>(IdRole::kKms)) slot = &p.idr_kms;
  if (idr.role == static_cast<uint8_t>(IdRole::kPsk)) slot = &p.idr_psk;
  if (slot == nullptr) return std::nullopt;
  if (*slot != nullptr) {
    return Rejection::Mikey(ErrorNo::kInvalidId, Refusal::kMalformed,
                            "more than one IDR with role " + std::to_string(idr.role));
  }
  *slot = &idr;
  return std::nullopt;
}

template <typename T>
std::optional<Rejection> TakeOnce(const T& payload, const T*& slot, const char* name) {
  if (slot != nullptr) return Malformed(std::string("more than one ") + name + " payload");
  slot = &payload;
  return std::nullopt;
}

std::optional<Rejection> Gather(RequestType type, const mikey::Message& m, RequestPayloads& p) {
  const ExchangeShape shape = ShapeOf(type);
  if (m.payloads.empty() || !std::holds_alternative<mikey::VPayload>(m.payloads.back())) {
    return Malformed("the last payload must be V");
  }
  p.v = &std::get<mikey::VPayload>(m.payloads.back());
  for (size_t i = 0; i + 1 < m.payloads.size(); ++i) {
    const auto& payload = m.payloads[i];
    std::optional<Rejection> refused;
    if (const auto* t = std::get_if<mikey::TPayload>(&payload)) {
      refused = TakeOnce(*t, p.t, "T");
    } else if (const auto* r = std::get_if<mikey::RandrPayload>(&payload)) {
      if (r->role == shape.rand_role) refused = TakeOnce(*r, p.randr, shape.rand_name);
    } else if (const auto* idr = std::get_if<mikey::IdrPayload>(&payload)) {
      refused = TakeIdr(*idr, shape.peer_role, p);
    } else if (const auto* tp = std::get_if<mikey::TpPayload>(&payload)) {
      if (type == RequestType::kTicketRequest) refused = TakeOnce(*tp, p.tp, "TP");
    } else if (const auto* ticket = std::get_if<mikey::TicketPayload>(&payload)) {
      if (type == RequestType::kTicketResolve) refused = TakeOnce(*ticket, p.ticket, "TICKET");
    }
    if (refused) return refused;
  }
  if (p.t == nullptr) return Malformed("no T payload");
  if (p.randr == nullptr) return Malformed(std::string("no ") + shape.rand_name + " payload");
  if (type == RequestType::kTicketRequest && p.tp == nullptr) return Malformed("no TP payload");
  if (type == RequestType::kTicketResolve && p.ticket == nullptr) return Malformed("no TICKET payload");
  return std::nullopt;
}

}  // namespace

StepResult<ParsedRequest> ParseRequest(RequestType type, ByteSpan bytes,
                                       std::optional<mikey::HeaderPrefix>& header) {
  mikey::DecodeOptions options;
  options.check_composition = false;  // unexpected payloads are ignored (§4.2.1.4, §4.2.3.4)
  mikey::DecodeReport report;
  auto decoded = mikey::Decode(bytes, options, report);
  header = report.header;
  if (!header) return Rejection::BadRequest("the body is not a MIKEY message (no version-1 common header)");
  if (auto refused = CheckDataType(type, header->data_type)) return *refused;
  if (!decoded.ok()) {
    const auto& e = decoded.error();
    return Rejection::Mikey(mikey::RuleErrorNo(e.rule), Refusal::kMalformed, e.ToString());
  }
  ParsedRequest parsed;
  parsed.type = type;
  parsed.bytes = bytes;
  parsed.message = std::move(*decoded);
  parsed.extents = std::move(report.extents);
  // RFC 6043 §4.2.1.1 / §4.2.3.1: "#CS MUST be set to '0' and the CS ID map
  // type SHALL be the Empty map"; the response copies both.
  const auto& h = parsed.message.header;
  if (h.cs_count != 0 || h.cs_id_map_type != static_cast<uint8_t>(mikey::CsIdMapType::kEmpty)) {
    return Malformed("#CS must be 0 with the Empty CS ID map (RFC 6043 §4.2.1.1, §4.2.3.1)");
  }
  if (auto refused = Gather(type, parsed.message, parsed.payloads)) return *refused;
  return parsed;
}

}  // namespace tkms::kms
