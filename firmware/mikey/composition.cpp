#include "firmware/mikey/composition.h"

#include <algorithm>
#include <array>
#include <span>
#include <string>

namespace tkms::mikey {
namespace {

constexpr uint8_t kAnyRole = 0;
constexpr uint8_t kMany = 0xFF;

// One element of a composition: a payload type, optionally with a role
// (IDR, RANDR, TR), and how often it may occur in a row.
struct Element {
  PayloadType type;
  uint8_t role;
  uint8_t min;
  uint8_t max;
  const char* name;
};

constexpr Element One(PayloadType t, const char* n, uint8_t role = kAnyRole) { return {t, role, 1, 1, n}; }
constexpr Element Opt(PayloadType t, const char* n, uint8_t role = kAnyRole) { return {t, role, 0, 1, n}; }
constexpr Element Any(PayloadType t, const char* n, uint8_t role = kAnyRole) { return {t, role, 0, kMany, n}; }
constexpr Element Some(PayloadType t, const char* n, uint8_t role = kAnyRole) { return {t, role, 1, kMany, n}; }

using P = PayloadType;
constexpr uint8_t kI = static_cast<uint8_t>(IdRole::kInitiator);
constexpr uint8_t kR = static_cast<uint8_t>(IdRole::kResponder);
constexpr uint8_t kKms = static_cast<uint8_t>(IdRole::kKms);
constexpr uint8_t kPsk = static_cast<uint8_t>(IdRole::kPsk);
constexpr uint8_t kApp = static_cast<uint8_t>(IdRole::kApplication);
constexpr uint8_t kKmsi = static_cast<uint8_t>(IdRole::kInitiatorKms);
constexpr uint8_t kKmsr = static_cast<uint8_t>(IdRole::kResponderKms);
constexpr uint8_t kRandI = static_cast<uint8_t>(RandRole::kInitiator);
constexpr uint8_t kRandR = static_cast<uint8_t>(RandRole::kResponder);
constexpr uint8_t kRandKms = static_cast<uint8_t>(RandRole::kKms);

constexpr Element kExt = Any(P::kGeneralExt, "GENERAL_EXT");

// ---- RFC 3830 §3.1-3.3, §5 ----
constexpr Element kPskInit[] = {One(P::kT, "T"), One(P::kRand, "RAND"), {P::kId, kAnyRole, 0, 2, "[IDi], [IDr]"},
                                Any(P::kSp, "SP"), kExt, One(P::kKemac, "KEMAC")};
constexpr Element kVerify[] = {One(P::kT, "T"), Opt(P::kId, "IDr"), kExt, One(P::kV, "V")};
constexpr Element kPkInit[] = {One(P::kT, "T"), One(P::kRand, "RAND"), Opt(P::kId, "IDi"),
                               Any(P::kCert, "CERTi"), Opt(P::kId, "IDr"), Any(P::kSp, "SP"),
                               One(P::kKemac, "KEMAC"), Opt(P::kChash, "CHASH"), One(P::kPke, "PKE"),
                               kExt, One(P::kSign, "SIGNi")};
constexpr Element kDhInit[] = {One(P::kT, "T"), One(P::kRand, "RAND"), Opt(P::kId, "IDi"),
                               Any(P::kCert, "CERTi"), Opt(P::kId, "IDr"), Any(P::kSp, "SP"),
                               One(P::kDh, "DHi"), kExt, One(P::kSign, "SIGNi")};
constexpr Element kDhResp[] = {One(P::kT, "T"), Opt(P::kId, "IDr"), Any(P::kCert, "CERTr"),
                               One(P::kId, "IDi"), One(P::kDh, "DHr"), One(P::kDh, "DHi"),
                               kExt, One(P::kSign, "SIGNr")};
constexpr Element kError[] = {One(P::kT, "T"), Some(P::kErr, "ERR"), Any(P::kSp, "SP"), kExt,
                              Opt(P::kV, "V"), Opt(P::kSign, "SIGN")};
// ---- RFC 4650 §4 (DHHMAC) ----
constexpr Element kDhhmacInit[] = {One(P::kT, "T"), One(P::kRand, "RAND"), Opt(P::kId, "IDi"),
                                   One(P::kId, "IDr"), Any(P::kSp, "SP"), One(P::kDh, "DHi"),
                                   kExt, One(P::kKemac, "KEMAC")};
constexpr Element kDhhmacResp[] = {One(P::kT, "T"), Opt(P::kId, "IDr"), One(P::kId, "IDi"),
                                   One(P::kDh, "DHr"), One(P::kDh, "DHi"), kExt, One(P::kKemac, "KEMAC")};
// ---- RFC 4738 §3 (RSA-R) ----
constexpr Element kRsaRInit[] = {One(P::kT, "T"), Opt(P::kRand, "RAND"), Opt(P::kId, "IDi"),
                                 Any(P::kCert, "CERTi"), Opt(P::kId, "IDr"), Any(P::kSp, "SP"),
                                 kExt, One(P::kSign, "SIGNi")};
constexpr Element kRsaRResp[] = {Opt(P::kGeneralExt, "GENERAL_EXT(CSB_ID)"), One(P::kT, "T"),
                                 Opt(P::kRand, "RAND"), Opt(P::kId, "IDr"), Any(P::kCert, "CERTr"),
                                 Opt(P::kSp, "SP"), One(P::kKemac, "KEMAC"), One(P::kPke, "PKE"),
                                 kExt, One(P::kSign, "SIGNr")};
// ---- RFC 6043 §4.2 / §5.2 ----
constexpr Element kRequestInitPsk[] = {One(P::kT, "T"), One(P::kRandr, "RANDRi", kRandI),
                                       Opt(P::kIdr, "IDRi", kI), Opt(P::kIdr, "IDRkms", kKms),
                                       One(P::kTp, "TP"), Opt(P::kIdr, "IDRpsk", kPsk), kExt,
                                       One(P::kV, "V")};
constexpr Element kRequestInitPk[] = {One(P::kT, "T"), One(P::kRandr, "RANDRi", kRandI),
                                      Opt(P::kIdr, "IDRi", kI), Any(P::kCert, "CERTi"),
                                      Opt(P::kIdr, "IDRkms", kKms), One(P::kTp, "TP"),
                                      Opt(P::kChash, "CHASH"), One(P::kPke, "PKE"), kExt,
                                      One(P::kSign, "SIGNi")};
constexpr Element kRequestResp[] = {One(P::kT, "T"), Opt(P::kIdr, "IDRkms", kKms),
                                    One(P::kTicket, "TICKET"), One(P::kKemac, "KEMAC"), kExt,
                                    One(P::kV, "V")};
constexpr Element kTransferInit[] = {One(P::kT, "T"), One(P::kRandr, "RANDRi", kRandI),
                                     Opt(P::kIdr, "IDRi", kI), Opt(P::kIdr, "IDRr", kR),
                                     Any(P::kSp, "SP"), One(P::kTicket, "TICKET"),
                                     Opt(P::kKemac, "KEMAC"), kExt, One(P::kV, "V")};
constexpr Element kTransferInitUpdateI[] = {One(P::kT, "T"), Opt(P::kIdr, "IDRi", kI),
                                            Opt(P::kIdr, "IDRr", kR), Any(P::kSp, "SP"),
                                            Opt(P::kKemac, "KEMAC"), kExt, One(P::kV, "V")};
constexpr Element kTransferInitUpdateR[] = {One(P::kT, "T"), Opt(P::kIdr, "IDRr", kR),
                                            Opt(P::kIdr, "IDRi", kI), Any(P::kSp, "SP"),
                                            Opt(P::kKemac, "KEMAC"), kExt, One(P::kV, "V")};
constexpr Element kTransferResp[] = {One(P::kT, "T"), Opt(P::kRandr, "RANDRr", kRandR),
                                     Opt(P::kIdr, "IDRr", kR), Opt(P::kRandr, "RANDRkms", kRandKms),
                                     Any(P::kSp, "SP"), Opt(P::kKemac, "KEMAC"), kExt,
                                     One(P::kV, "V")};
constexpr Element kTransferRespUpdateR[] = {One(P::kT, "T"), Opt(P::kIdr, "IDRi", kI),
                                            Any(P::kSp, "SP"), Opt(P::kKemac, "KEMAC"), kExt,
                                            One(P::kV, "V")};
constexpr Element kResolveInitPsk[] = {One(P::kT, "T"), One(P::kRandr, "RANDRr", kRandR),
                                       Opt(P::kIdr, "IDRr", kR), Opt(P::kIdr, "IDRkms", kKms),
                                       One(P::kTicket, "TICKET"), Opt(P::kIdr, "IDRpsk", kPsk), kExt,
                                       One(P::kV, "V")};
constexpr Element kResolveInitPk[] = {One(P::kT, "T"), One(P::kRandr, "RANDRr", kRandR),
                                      Opt(P::kIdr, "IDRr", kR), Any(P::kCert, "CERTr"),
                                      Opt(P::kIdr, "IDRkms", kKms), One(P::kTicket, "TICKET"),
                                      Opt(P::kChash, "CHASH"), One(P::kPke, "PKE"), kExt,
                                      One(P::kSign, "SIGNr")};
constexpr Element kResolveResp[] = {One(P::kT, "T"), Opt(P::kIdr, "IDRkms", kKms),
                                    One(P::kKemac, "KEMAC"), Opt(P::kIdr, "IDRr", kR),
                                    Opt(P::kRandr, "RANDRkms", kRandKms), kExt, One(P::kV, "V")};
// ---- RFC 6509 §2.2.1 (MIKEY-SAKKE I_MESSAGE) ----
constexpr Element kSakke[] = {One(P::kT, "T"), One(P::kRand, "RAND"), Opt(P::kIdr, "IDRi", kI),
                              Opt(P::kIdr, "IDRr", kR), Opt(P::kIdr, "IDRkmsi", kKmsi),
                              Opt(P::kIdr, "IDRkmsr", kKmsr), Any(P::kCert, "CERT"),
                              Any(P::kSp, "SP"), One(P::kSakke, "SAKKE"), kExt,
                              One(P::kSign, "SIGN")};
// ---- RFC 6043 §6.10 TP Data ----
constexpr uint8_t kTrS = static_cast<uint8_t>(TsRole::kStart);
constexpr uint8_t kTrE = static_cast<uint8_t>(TsRole::kEnd);
constexpr uint8_t kTrR = static_cast<uint8_t>(TsRole::kRekeying);
constexpr Element kTpData[] = {Opt(P::kIdr, "IDRkms", kKms), Opt(P::kIdr, "IDRi", kI),
                               Opt(P::kTr, "TRs", kTrS),     Opt(P::kTr, "TRe", kTrE),
                               Opt(P::kTr, "TRr", kTrR),     Opt(P::kKemac, "KEMAC"),
                               Any(P::kIdr, "IDRapp", kApp), Some(P::kIdr, "IDRr", kR)};

using Grammar = std::span<const Element>;

struct Composition {
  uint8_t data_type;
  std::array<Grammar, 3> alternatives;
  const char* reference;
};

constexpr Composition kCompositions[] = {
    {0, {kPskInit}, "RFC 3830 §3.1"},
    {1, {kVerify}, "RFC 3830 §3.1"},
    {2, {kPkInit}, "RFC 3830 §3.2"},
    {3, {kVerify}, "RFC 3830 §3.2"},
    {4, {kDhInit}, "RFC 3830 §3.3"},
    {5, {kDhResp}, "RFC 3830 §3.3"},
    {6, {kError}, "RFC 3830 §5.1.2, RFC 6043 §5.4"},
    {7, {kDhhmacInit}, "RFC 4650 §4"},
    {8, {kDhhmacResp}, "RFC 4650 §4"},
    {9, {kRsaRInit}, "RFC 4738 §3"},
    {10, {kRsaRResp}, "RFC 4738 §3"},
    {11, {kRequestInitPsk}, "RFC 6043 §4.2.1.2"},
    {12, {kRequestInitPk}, "RFC 6043 §4.2.1.3"},
    {13, {kRequestResp}, "RFC 6043 §4.2.1.5"},
    {14, {kTransferInit, kTransferInitUpdateI, kTransferInitUpdateR}, "RFC 6043 §4.2.2.1, §5.2"},
    {15, {kTransferResp, kTransferRespUpdateR}, "RFC 6043 §4.2.2.3, §5.2"},
    {16, {kResolveInitPsk}, "RFC 6043 §4.2.3.2"},
    {17, {kResolveInitPk}, "RFC 6043 §4.2.3.3"},
    {18, {kResolveResp}, "RFC 6043 §4.2.3.5"},
    {26, {kSakke}, "RFC 6509 §2.2.1"},
};

const Composition* Find(uint8_t data_type) {
  for (const auto& c : kCompositions) {
    if (c.data_type == data_type) return &c;
  }
  return nullptr;
}

struct Item {
  PayloadType type;
  uint8_t role;
};

uint8_t RoleOf(const Payload& p) {
  if (const auto* idr = std::get_if<IdrPayload>(&p)) return idr->role;
  if (const auto* randr = std::get_if<RandrPayload>(&p)) return randr->role;
  if (const auto* tr = std::get_if<TrPayload>(&p)) return tr->role;
  return kAnyRole;
}
uint8_t RoleOf(const TpDataPayload& p) {
  if (const auto* idr = std::get_if<IdrPayload>(&p)) return idr->role;
  if (const auto* tr = std::get_if<TrPayload>(&p)) return tr->role;
  return kAnyRole;
}

bool Matches(const Element& e, const Item& item) {
  return e.type == item.type && (e.role == kAnyRole || e.role == item.role);
}

std::string ItemName(const Item& item) {
  std::string name(PayloadTypeName(static_cast<uint8_t>(item.type)));
  if (item.type == P::kIdr && IsKnownIdRole(item.role)) return std::string(IdRoleName(item.role));
  if (item.type == P::kRandr && IsKnownRandRole(item.role)) return std::string(RandRoleName(item.role));
  if (item.type == P::kTr && IsKnownTsRole(item.role)) return std::string(TsRoleName(item.role));
  return name;
}

std::string Describe(Grammar g, const char* prefix) {
  std::string out = prefix;
  for (const auto& e : g) {
    if (!out.empty()) out += ", ";
    if (e.min == 1 && e.max == 1) out += e.name;
    else if (e.min == 0 && e.max == kMany) out += std::string("{") + e.name + "}";
    else if (e.min == 1 && e.max == kMany) out += std::string("(") + e.name + ")";
    else if (e.min == 0 && e.max == 1) out += std::string("[") + e.name + "]";
    else out += e.name;
  }
  return out;
}

// Matches `items` against `g` like a regular expression (every element is a
// bounded repetition of one payload kind). Sets-of-positions simulation: no
// backtracking, no recursion, O(elements x payloads^2) at worst, two buffers
// reused across elements.
// Returns true on a full match; otherwise `furthest` is the index of the first
// payload no path could consume.
bool MatchGrammar(Grammar g, std::span<const Item> items, size_t& furthest) {
  const size_t n = items.size();
  // reach[p]: some path matched the elements so far and consumed p payloads.
  std::vector<uint8_t> reach(n + 1, 0);
  std::vector<uint8_t> next(n + 1, 0);
  std::fill_n(reach.begin(), 1, uint8_t{1});
  furthest = 0;
  for (const auto& e : g) {
    std::fill(next.begin(), next.end(), 0);
    for (size_t p = 0; p <= n; ++p) {
      if (!reach[p]) continue;
      if (e.min == 0) next[p] = 1;
      size_t k = 0;
      while (k < e.max && p + k < n && Matches(e, items[p + k])) {
        ++k;
        if (k >= e.min) next[p + k] = 1;
      }
    }
    reach.swap(next);
    for (size_t p = furthest + 1; p <= n; ++p) {
      if (reach[p]) furthest = p;
    }
  }
  return reach[n] != 0;
}

CodecError Violation(Rule rule, size_t offset, std::string detail) {
  return CodecError{rule, offset, std::move(detail)};
}

size_t OffsetOf(const std::vector<PayloadExtent>& extents, size_t payload_index) {
  // extents[0] is the header; payload i is extents[i + 1].
  if (payload_index + 1 < extents.size()) return extents[payload_index + 1].offset;
  if (!extents.empty()) return extents.back().offset + extents.back().length;
  return 0;
}

Result<void, CodecError> CheckHeader(const Message& m) {
  const auto& h = m.header;
  const auto dt = static_cast<DataType>(h.data_type);
  switch (dt) {
    case DataType::kRequestInitPsk:
    case DataType::kRequestInitPk:
    case DataType::kRequestResp:
    case DataType::kResolveInitPsk:
    case DataType::kResolveInitPk:
    case DataType::kResolveResp:
      if (h.cs_count != 0 || h.cs_id_map_type != static_cast<uint8_t>(CsIdMapType::kEmpty)) {
        return Violation(Rule::kHeader, 8,
                         std::string(DataTypeName(h.data_type)) +
                             " must have #CS = 0 and the Empty CS ID map (RFC 6043 §4.2.1.1, §4.2.3.1)");
      }
      break;
    case DataType::kTransferInit:
    case DataType::kTransferResp:
      if (h.cs_id_map_type == static_cast<uint8_t>(CsIdMapType::kSrtpId)) {
        return Violation(Rule::kHeader, 9,
                         "the SRTP-ID map SHALL NOT be used in MIKEY-TICKET (RFC 6043 §6.1)");
      }
      break;
    default:
      break;
  }
  return {};
}

Result<void, CodecError> CheckTpData(const TicketPolicy& policy, bool granted, size_t offset) {
  std::vector<Item> items;
  items.reserve(policy.tp_data.size());
  for (const auto& p : policy.tp_data) items.push_back({TypeOf(p), RoleOf(p)});
  size_t furthest = 0;
  if (!MatchGrammar(kTpData, items, furthest)) {
    const std::string found = furthest < items.size() ? ItemName(items[furthest]) : "the end";
    return Violation(Rule::kTpData, offset,
                     "TP Data payload #" + std::to_string(furthest + 1) + " (" + found +
                         ") does not fit " + Describe(kTpData, "") + " (RFC 6043 §6.10)");
  }
  for (const auto& p : policy.tp_data) {
    if (const auto* tr = std::get_if<TrPayload>(&p)) {
      if (tr->role == kTrR && tr->ts_type != static_cast<uint8_t>(TsType::kNtpUtc32)) {
        return Violation(Rule::kTpData, offset, "TRr must use TS type NTP-UTC-32 (RFC 6043 §6.10)");
      }
    }
    if (const auto* kemac = std::get_if<KemacPayload>(&p)) {
      if (granted) {
        return Violation(Rule::kTpData, offset,
                         "a granted ticket policy must not carry a KEMAC (RFC 6043 §6.10)");
      }
      if (kemac->encr_alg != 0 || kemac->mac_alg != 0) {
        return Violation(Rule::kTpData, offset,
                         "the TP KEMAC must use NULL encryption and NULL MAC (RFC 6043 §6.10)");
      }
      auto requested = DecodeKeyDataChain(kemac->encr_data);
      if (!requested.ok()) {
        return Violation(Rule::kTpData, offset,
                         "the TP KEMAC does not hold a Key data chain: " + requested.error().detail);
      }
    }
  }
  auto flags = CheckTicketFlags(policy.flags);
  if (!flags.ok()) {
    CodecError e = std::move(flags).error();
    e.offset = offset;
    return e;
  }
  return {};
}

}  // namespace

std::string CompositionOf(uint8_t data_type) {
  const Composition* c = Find(data_type);
  if (c == nullptr) return {};
  std::string out;
  for (const auto& alt : c->alternatives) {
    if (alt.empty()) continue;
    if (!out.empty()) out += " | ";
    out += Describe(alt, "HDR");
  }
  return out;
}

Result<void, CodecError> CheckTicketFlags(uint16_t f) {
  struct Dependency {
    bool violated;
    const char* text;
  };
  const auto has = [f](uint16_t bit) { return (f & bit) != 0; };
  const Dependency deps[] = {
      {!has(kFlagD) && !has(kFlagL), "NOT D implies L"},
      {has(kFlagG) && !has(kFlagF), "G implies F"},
      {!has(kFlagG) && !has(kFlagH), "NOT G implies H (and NOT H implies G)"},
      {has(kFlagI) && !has(kFlagE), "I implies E"},
      {has(kFlagK) && !has(kFlagD), "K implies D"},
      {has(kFlagM) && !has(kFlagF), "M implies F"},
  };
  for (const auto& d : deps) {
    if (d.violated) {
      return Violation(Rule::kTicketFlags, 0,
                       std::string("ticket policy flags violate \"") + d.text + "\" (RFC 6043 §6.10)");
    }
  }
  return {};
}

Result<void, CodecError> CheckComposition(const Message& m, const std::vector<PayloadExtent>& extents) {
  const Composition* c = Find(m.header.data_type);
  if (c == nullptr) {
    return Violation(Rule::kDataType, 1,
                     "data type " + std::to_string(m.header.data_type) + " is not defined");
  }
  auto header = CheckHeader(m);
  if (!header.ok()) return header;

  std::vector<Item> items;
  items.reserve(m.payloads.size());
  for (const auto& p : m.payloads) items.push_back({TypeOf(p), RoleOf(p)});
  size_t best = 0;
  bool matched = false;
  for (const auto& alt : c->alternatives) {
    if (alt.empty()) continue;
    size_t furthest = 0;
    if (MatchGrammar(alt, items, furthest)) {
      matched = true;
      break;
    }
    if (furthest > best) best = furthest;
  }
  if (!matched) {
    const std::string name(DataTypeName(m.header.data_type));
    const std::string found =
        best < items.size() ? ItemName(items[best]) + " at payload #" + std::to_string(best + 1)
                            : "the end of the message after payload #" + std::to_string(items.size());
    return Violation(Rule::kComposition, OffsetOf(extents, best),
                     name + ": unexpected " + found + "; " + c->reference + " requires " +
                         CompositionOf(m.header.data_type));
  }

  const auto dt = static_cast<DataType>(m.header.data_type);
  for (size_t i = 0; i < m.payloads.size(); ++i) {
    const size_t at = OffsetOf(extents, i);
    if (const auto* tp = std::get_if<TpPayload>(&m.payloads[i])) {
      auto ok = CheckTpData(tp->policy, /*granted=*/false, at);
      if (!ok.ok()) return ok;
    } else if (const auto* ticket = std::get_if<TicketPayload>(&m.payloads[i])) {
      auto ok = CheckTpData(ticket->policy, /*granted=*/true, at);
      if (!ok.ok()) return ok;
      const bool forking = (ticket->policy.flags & kFlagI) != 0;
      const bool has_initiator_data = ticket->initiator_data.has_value();
      // Initiator Data is inserted by the Initiator iff key forking is used
      // (RFC 6043 §6.10); the KMS returns the ticket without it.
      const bool must_have = forking && (dt == DataType::kTransferInit ||
                                         dt == DataType::kResolveInitPsk ||
                                         dt == DataType::kResolveInitPk);
      if (has_initiator_data && (!forking || dt == DataType::kRequestResp)) {
        return Violation(Rule::kInitiatorData, at,
                         "Initiator Data is only present with key forking (I flag), inserted by the "
                         "Initiator (RFC 6043 §6.10)");
      }
      if (must_have && !has_initiator_data) {
        return Violation(Rule::kInitiatorData, at,
                         "the ticket uses key forking (I flag) but carries no Initiator Data "
                         "(RFC 6043 §6.10)");
      }
    }
  }
  return {};
}

}  // namespace tkms::mikey
