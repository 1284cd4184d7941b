// Checks of received Ticket Transfer messages and of what they carry, apart
// from building and answering them (transfer.cpp): the CS ID map type (RFC
// 6043 §6.1, reading 17), the Responder's early check of a TRANSFER_INIT
// (§4.2.2.2), the ticket's validity period, the RAND lengths (§12.1, reading
// 18) and the one SRTP policy the UE accepts (RFC 3830 §6.10.1, RFC 3711).
#include <string>

#include "firmware/base/byte_reader.h"
#include "tools/ue/transfer.h"
#include "tools/ue/ue_internal.h"

namespace tkms::ue {

using mikey::DataType;
using mikey::Message;
using mikey::SpParam;
using mikey::SpPayload;
using internal::Verification;

namespace {

constexpr uint8_t kProtSrtp = 0;  // RFC 3830 Table 6.10 Prot type

// RFC 3830 Table 6.10.1.a parameter types and the AES_CM_128_HMAC_SHA1_80 values.
struct SrtpParamValue {
  uint8_t type;
  uint8_t value;
};
constexpr SrtpParamValue kAesCm128HmacSha1_80[] = {
    {0, 1},   // encryption algorithm: AES-CM
    {1, 16},  // session encr. key length (= master key length, RFC 3830 §6.10.1)
    {2, 1},   // authentication algorithm: HMAC-SHA-1
    {3, 20},  // session auth. key length
    {4, 14},  // session salt key length
    {5, 0},   // SRTP PRF: AES-CM
    {7, 1},   // SRTP encryption on
    {8, 1},   // SRTCP encryption on
    {10, 1},  // SRTP authentication on
    {11, 10}, // authentication tag length (80 bits)
    {12, 0},  // SRTP prefix length
};

// RFC 3830 §6.1 common header: data type at offset 1, CS ID map type at 9.
constexpr size_t kHdrDataTypeOffset = 1;
constexpr size_t kHdrMapTypeOffset = 9;

// A policy parameter value: an unsigned integer of any width (RFC 3830 §6.10
// "Policy param length"), read through ByteReader. False if it is empty or
// does not fit 64 bits once leading zero bytes are skipped.
bool ParamValue(ByteSpan bytes, uint64_t& out) {
  if (bytes.empty()) return false;
  ByteReader r(bytes);
  uint8_t b = 0;
  while (r.PeekU8(b) && b == 0 && r.remaining() > 1) {
    if (!r.Skip(1)) return false;
  }
  return r.ReadUint(r.remaining(), out);  // refuses more than 8 bytes
}

}  // namespace

// ---- CS ID map type (reading 17) --------------------------------------------------

Result<void, UeError> CheckTransferMapType(uint8_t map_type, std::string_view what) {
  if (map_type == static_cast<uint8_t>(mikey::CsIdMapType::kGenericId) ||
      map_type == static_cast<uint8_t>(mikey::CsIdMapType::kEmpty)) {
    return {};
  }
  if (map_type == static_cast<uint8_t>(mikey::CsIdMapType::kSrtpId)) {
    return Verification(std::string(what) +
                        " uses the SRTP-ID CS ID map (type 0), which SHALL NOT be used in the Ticket Transfer "
                        "exchange (RFC 6043 §6.1)");
  }
  return Verification(std::string(what) + " uses CS ID map type " + std::to_string(map_type) +
                      ", which is not defined (RFC 6043 §6.1: GENERIC-ID, 2; RFC 3830 §6.1: Empty, 1)");
}

Result<void, UeError> CheckTransferMapTypeBytes(ByteSpan message, DataType expected) {
  if (message.size() <= kHdrMapTypeOffset || message[kHdrDataTypeOffset] != static_cast<uint8_t>(expected)) return {};
  return CheckTransferMapType(message[kHdrMapTypeOffset], mikey::DataTypeName(static_cast<uint8_t>(expected)));
}

UeResult<Message> DecodeTransferInit(ByteSpan bytes) {
  auto raw = CheckTransferMapTypeBytes(bytes, DataType::kTransferInit);
  if (!raw.ok()) return std::move(raw).error();
  auto m = mikey::Decode(bytes);
  if (!m.ok()) return internal::Undecodable("TRANSFER_INIT", m.error());
  if (m->header.data_type != static_cast<uint8_t>(DataType::kTransferInit)) {
    return Verification("expected TRANSFER_INIT, received " + std::string(mikey::DataTypeName(m->header.data_type)));
  }
  auto map = CheckTransferMapType(m->header.cs_id_map_type, "TRANSFER_INIT");
  if (!map.ok()) return std::move(map).error();
  return std::move(*m);
}

// ---- RAND lengths (reading 18) --------------------------------------------------------

Result<void, UeError> CheckTransferRandLengths(size_t randri, size_t randrr, size_t longest_key,
                                               std::string_view what) {
  if (randri + randrr >= longest_key) return {};
  return Verification(std::string(what) + ": RANDRi (" + std::to_string(randri) + " bytes) and RANDRr (" +
                      std::to_string(randrr) + " bytes) together are shorter than the longest key they are used "
                      "with (" + std::to_string(longest_key) + " bytes; RFC 6043 §12.1 MUST)");
}

// ---- Ticket policy ----------------------------------------------------------------------

Result<void, UeError> CheckTicketValidityPeriod(const mikey::TicketPolicy& policy, uint64_t now_ntp) {
  // NTP-UTC-32 values are compared as seconds; 64-bit values as they are.
  const auto as_ntp64 = [](const mikey::TrPayload& tr) -> std::optional<uint64_t> {
    if (tr.ts_type == static_cast<uint8_t>(mikey::TsType::kNtpUtc32)) return tr.value << 32;
    if (tr.ts_type == static_cast<uint8_t>(mikey::TsType::kNtpUtc) ||
        tr.ts_type == static_cast<uint8_t>(mikey::TsType::kNtp)) {
      return tr.value;
    }
    return std::nullopt;
  };
  for (const auto& item : policy.tp_data) {
    const auto* tr = std::get_if<mikey::TrPayload>(&item);
    if (tr == nullptr) continue;
    const auto value = as_ntp64(*tr);
    if (tr->role == static_cast<uint8_t>(mikey::TsRole::kStart) && value && now_ntp < *value) {
      return Verification("the ticket is not valid yet (TRs)");
    }
    if (tr->role == static_cast<uint8_t>(mikey::TsRole::kEnd) && value && now_ntp > *value) {
      return Verification("the ticket has expired (TRe)");
    }
  }
  return {};
}

Result<void, UeError> CheckTransferInitEarly(const mikey::Message& transfer_init,
                                             const std::vector<Bytes>& acceptable, uint64_t now_ntp) {
  const auto refuse = [](std::string why) {
    return Verification("TRANSFER_INIT rejected before resolving: " + std::move(why));
  };
  const mikey::TicketPayload* ticket = nullptr;
  for (const auto& p : transfer_init.payloads) {
    if (const auto* t = std::get_if<mikey::TicketPayload>(&p)) ticket = t;
  }
  if (auto map = CheckTransferMapType(transfer_init.header.cs_id_map_type, "the TRANSFER_INIT"); !map.ok()) {
    return refuse(map.error().detail);
  }
  if (ticket == nullptr) return refuse("no TICKET payload");
  const auto& policy = ticket->policy;
  if ((policy.flags & mikey::kFlagO) == 0) return refuse("the O flag is 0 (the ticket needs processing beyond RFC 6043)");
  if ((policy.flags & mikey::kFlagI) != 0 && !ticket->initiator_data) {
    return refuse("the I flag is set but the TICKET has no Initiator Data");
  }
  if (auto period = CheckTicketValidityPeriod(policy, now_ntp); !period.ok()) return refuse(period.error().detail);
  bool listed = false;
  for (const auto& item : policy.tp_data) {
    if (const auto* idr = std::get_if<mikey::IdrPayload>(&item)) {
      if (idr->role != static_cast<uint8_t>(mikey::IdRole::kResponder)) continue;
      for (const auto& id : acceptable) listed = listed || internal::SameIdentity(idr->data, id);
    }
  }
  if (!listed) return refuse("none of this end-point's identities is a responder (IDRr) of the ticket");
  return {};
}

// ---- SRTP policy ------------------------------------------------------------------

SpPayload SrtpAesCm128HmacSha1_80Policy(uint8_t policy_no) {
  SpPayload sp;
  sp.policy_no = policy_no;
  sp.prot_type = kProtSrtp;
  for (const auto& p : kAesCm128HmacSha1_80) sp.params.push_back(SpParam{p.type, Bytes{p.value}});
  return sp;
}

bool IsAcceptableSrtpPolicy(const SpPayload& policy) {
  if (policy.prot_type != kProtSrtp) return false;
  for (const SpParam& param : policy.params) {
    for (const auto& want : kAesCm128HmacSha1_80) {
      if (param.type != want.type) continue;
      uint64_t v = 0;
      if (!ParamValue(param.value, v) || v != want.value) return false;
    }
    // Parameters outside the table (key derivation rate 6, FEC order 9) are
    // not part of the transform: key derivation rate 0 and any FEC order work.
    if (param.type == 6) {
      for (uint8_t b : param.value) {
        if (b != 0) return false;  // rekeying by key derivation rate is not supported
      }
    }
  }
  return true;
}

}  // namespace tkms::ue
