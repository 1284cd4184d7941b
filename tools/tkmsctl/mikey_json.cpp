// JSON view of MIKEY messages: see mikey_json.h and docs/mikey-json.md.
//
// JSON text is read by the bounded reader (firmware/json/bounded_json.h),
// keeping key order. MessageFromJson reports errors by throwing PathError
// inside this file only; the public functions catch it (and any nlohmann
// exception) and return a JsonError, so no exception crosses the API.
#include "tools/tkmsctl/mikey_json.h"

#include <algorithm>
#include <array>
#include <exception>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "firmware/base/byte_writer.h"
#include "firmware/base/encoding.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/json/bounded_json.h"
#include "firmware/mikey/types.h"
#include "tools/tkmsctl/input_format.h"

namespace tkms::tkmsctl {
namespace {

using namespace ::tkms::mikey;  // NOLINT: the model's many types, in this file only

// What `tkmsctl mikey encode` reads (docs/mikey-json.md): at most the
// input limit, 32 levels (a message nests 6 deep), 65536 values, and
// strings long enough for the hex of the largest payload (a TICKET of 64 KiB
// is 128 Ki hex digits).
constexpr json::Limits kMikeyJsonLimits{kMaxInputBytes, 32, 1 << 16, 1 << 18};

template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

constexpr uint8_t U8(PayloadType t) { return static_cast<uint8_t>(t); }

std::string Num(uint64_t v) { return std::to_string(v); }
std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }
std::string Index(const std::string& path, size_t i) { return path + "[" + Num(i) + "]"; }
std::string Member(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

// ---- names not in firmware/mikey/types.h -------------------------------------

// SRTP policy parameter types (RFC 3830 Table 6.10.1.a, RFC 4771 §3, RFC 7714 §15).
std::string_view SrtpParamName(uint8_t type) {
  static constexpr std::array<std::string_view, 21> kNames{
      "Encryption algorithm",           "Session Encr. key length",
      "Authentication algorithm",       "Session Auth. key length",
      "Session Salt key length",        "SRTP Pseudo Random Function",
      "Key derivation rate",            "SRTP encryption off/on",
      "SRTCP encryption off/on",        "Sender's FEC order",
      "SRTP authentication off/on",     "Authentication tag length",
      "SRTP prefix length",             "ROC transmission rate",
      "SRTP Auth. algorithm",           "SRTCP Auth. algorithm",
      "SRTP Session Auth. key len",     "SRTCP Session Auth. key len",
      "SRTP Authentication tag len",    "SRTCP Authentication tag len",
      "AEAD authentication tag length",
  };
  return type < kNames.size() ? kNames[type] : std::string_view{};
}

// RFC 6509 Tables 4 and 5.
std::string_view SakkeParamsName(uint8_t v) { return v == 1 ? "Parameter Set 1" : ""; }
std::string_view SakkeIdSchemeName(uint8_t v) { return v == 1 ? "tel URI with monthly keys" : ""; }

// ---- text helpers -------------------------------------------------------------

std::string AsString(ByteSpan b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

// The bytes as a string when they are printable UTF-8 (no C0/C1 control
// characters, no DEL, no overlong forms or surrogates).
std::optional<std::string> PrintableText(ByteSpan b) {
  size_t i = 0;
  while (i < b.size()) {
    const uint8_t c = b[i];
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7F) return std::nullopt;
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 2;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      n = 4;
      cp = c & 0x07u;
    } else {
      return std::nullopt;
    }
    if (n > b.size() - i) return std::nullopt;
    for (size_t k = 1; k < n; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (b[i + k] & 0x3Fu);
    }
    const uint32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp <= 0x9F)) {
      return std::nullopt;
    }
    i += n;
  }
  return AsString(b);
}

// The timestamp as it appears on the wire (8 or 4 bytes), if the type is known
// and the value fits.
std::optional<Bytes> TimestampBytes(uint8_t ts_type, uint64_t value) {
  if (!IsKnownTsType(ts_type)) return std::nullopt;
  const size_t n = TsLength(static_cast<TsType>(ts_type));
  if (n < 8 && (value >> (8 * n)) != 0) return std::nullopt;  // does not fit n bytes
  return ByteWriter().Uint(n, value).Take();
}

// ============================================================================
// Model -> JSON
// ============================================================================

void PutName(Json& j, const char* key, std::string_view name) {
  if (!name.empty()) j[key] = std::string(name);
}

void PutText(Json& j, const char* key, ByteSpan data) {
  if (auto text = PrintableText(data)) j[key] = std::move(*text);
}

void PutKv(Json& j, const KeyValidity& kv) {
  j["kv_type"] = kv.kv_type;
  PutName(j, "kv_type_name", KvTypeName(kv.kv_type));
  if (kv.kv_type == static_cast<uint8_t>(KvType::kSpi) || !kv.spi.empty()) j["spi"] = HexEncode(kv.spi);
  if (kv.kv_type == static_cast<uint8_t>(KvType::kInterval) || !kv.valid_from.empty() ||
      !kv.valid_to.empty()) {
    j["valid_from"] = HexEncode(kv.valid_from);
    j["valid_to"] = HexEncode(kv.valid_to);
  }
}

void PutTimestamp(Json& j, uint8_t ts_type, uint64_t value) {
  j["ts_type"] = ts_type;
  PutName(j, "ts_type_name", TsTypeName(ts_type));
  j["value"] = value;
  if (auto bytes = TimestampBytes(ts_type, value)) j["value_hex"] = HexEncode(*bytes);
}

Json KeyDataJson(const KeyDataPayload& k) {
  Json j = Json::object();
  j["key_type"] = k.key_type;
  PutName(j, "key_type_name", KeyTypeName(k.key_type));
  j["key"] = HexEncode(k.key);
  if (k.salt) j["salt"] = HexEncode(*k.salt);
  PutKv(j, k.kv);
  return j;
}

void PutKemac(Json& j, const KemacPayload& p) {
  j["encr_alg"] = p.encr_alg;
  PutName(j, "encr_alg_name", EncrAlgName(p.encr_alg));
  j["encr_data"] = HexEncode(p.encr_data);
  j["mac_alg"] = p.mac_alg;
  PutName(j, "mac_alg_name", MacAlgName(p.mac_alg));
  j["mac"] = HexEncode(p.mac);
  if (p.encr_alg != static_cast<uint8_t>(EncrAlg::kNull)) return;
  // The plaintext Key data chain, shown only if it re-encodes to the same
  // bytes (so that encode's cross-check accepts what decode printed).
  auto keys = DecodeKeyDataChain(p.encr_data);
  if (!keys.ok()) return;
  auto again = EncodeKeyDataChain(*keys);
  if (!again.ok() || !std::equal(again->begin(), again->end(), p.encr_data.begin(), p.encr_data.end())) {
    return;
  }
  Json list = Json::array();
  for (const auto& k : *keys) list.push_back(KeyDataJson(k));
  j["key_data"] = std::move(list);
}

void PutV(Json& j, const VPayload& p) {
  j["auth_alg"] = p.auth_alg;
  PutName(j, "auth_alg_name", MacAlgName(p.auth_alg));
  j["mac"] = HexEncode(p.mac);
}

void PutT(Json& j, const TPayload& p) { PutTimestamp(j, p.ts_type, p.value); }

void PutIdr(Json& j, const IdrPayload& p) {
  j["role"] = p.role;
  PutName(j, "role_name", IdRoleName(p.role));
  j["id_type"] = p.id_type;
  PutName(j, "id_type_name", IdTypeName(p.id_type));
  j["data"] = HexEncode(p.data);
  PutText(j, "id_text", p.data);
}

void PutTr(Json& j, const TrPayload& p) {
  j["role"] = p.role;
  PutName(j, "role_name", TsRoleName(p.role));
  PutTimestamp(j, p.ts_type, p.value);
}

Json PayloadJson(const Payload& p);

Json TpDataJson(const TpDataPayload& p) {
  return PayloadJson(std::visit([](const auto& x) -> Payload { return x; }, p));
}

void PutPolicy(Json& j, const TicketPolicy& p) {
  j["ticket_type"] = p.ticket_type;
  PutName(j, "ticket_type_name", TicketTypeName(p.ticket_type));
  j["subtype"] = p.subtype;
  j["version"] = p.version;
  j["prf_func"] = p.prf_func;
  PutName(j, "prf_func_name", PrfName(p.prf_func));
  Json flags = Json::object();
  for (size_t i = 0; i < 12; ++i) {
    flags[std::string(1, kTicketFlagLetters[i])] = (p.flags & (1u << (11 - i))) != 0;
  }
  j["flags"] = std::move(flags);
  Json tp = Json::array();
  for (const auto& x : p.tp_data) tp.push_back(TpDataJson(x));
  j["tp_data"] = std::move(tp);
}

std::optional<Json> BaseTicketJson(const Bytes& ticket_data) {
  auto b = DecodeBaseTicketData(ticket_data);
  if (!b.ok()) return std::nullopt;
  auto again = EncodeBaseTicketData(*b);
  if (!again.ok() || *again != ticket_data) return std::nullopt;
  Json j = Json::object();
  j["thdr"] = HexEncode(b->thdr.data);
  Json t = Json::object();
  PutT(t, b->t);
  j["t"] = std::move(t);
  j["rand"] = HexEncode(b->rand.rand);
  Json kemac = Json::object();
  PutKemac(kemac, b->kemac);
  j["kemac"] = std::move(kemac);
  if (b->idr_psk) {
    Json idr = Json::object();
    PutIdr(idr, *b->idr_psk);
    j["idr_psk"] = std::move(idr);
  }
  Json v = Json::object();
  PutV(v, b->v);
  j["v"] = std::move(v);
  return j;
}

void PutTicket(Json& j, const TicketPayload& p) {
  PutPolicy(j, p.policy);
  j["ticket_data"] = HexEncode(p.ticket_data);
  if (IsBaseTicket(p.policy)) {
    if (auto view = BaseTicketJson(p.ticket_data)) j["base_ticket"] = std::move(*view);
  }
  if (p.initiator_data) {
    Json id = Json::object();
    Json vi = Json::object();
    Json vr = Json::object();
    PutV(vi, p.initiator_data->vi);
    PutV(vr, p.initiator_data->vr);
    id["vi"] = std::move(vi);
    id["vr"] = std::move(vr);
    j["initiator_data"] = std::move(id);
  } else {
    j["initiator_data"] = nullptr;
  }
}

Json PayloadJson(const Payload& payload) {
  Json j = Json::object();
  const uint8_t type = static_cast<uint8_t>(TypeOf(payload));
  j["type"] = type;
  j["name"] = std::string(PayloadTypeName(type));
  std::visit(Overloaded{
                 [&](const KemacPayload& p) { PutKemac(j, p); },
                 [&](const PkePayload& p) {
                   j["c"] = p.c;
                   j["data"] = HexEncode(p.data);
                 },
                 [&](const DhPayload& p) {
                   j["group"] = p.group;
                   PutName(j, "group_name", DhGroupName(p.group));
                   j["value"] = HexEncode(p.value);
                   PutKv(j, p.kv);
                 },
                 [&](const SignPayload& p) {
                   j["s_type"] = p.s_type;
                   PutName(j, "s_type_name", SignTypeName(p.s_type));
                   j["signature"] = HexEncode(p.signature);
                 },
                 [&](const TPayload& p) { PutT(j, p); },
                 [&](const IdPayload& p) {
                   j["id_type"] = p.id_type;
                   PutName(j, "id_type_name", IdTypeName(p.id_type));
                   j["data"] = HexEncode(p.data);
                   PutText(j, "id_text", p.data);
                 },
                 [&](const CertPayload& p) {
                   j["cert_type"] = p.cert_type;
                   PutName(j, "cert_type_name", CertTypeName(p.cert_type));
                   j["data"] = HexEncode(p.data);
                 },
                 [&](const ChashPayload& p) {
                   j["hash_func"] = p.hash_func;
                   PutName(j, "hash_func_name", HashFuncName(p.hash_func));
                   j["hash"] = HexEncode(p.hash);
                 },
                 [&](const VPayload& p) { PutV(j, p); },
                 [&](const SpPayload& p) {
                   j["policy_no"] = p.policy_no;
                   j["prot_type"] = p.prot_type;
                   PutName(j, "prot_type_name", ProtTypeName(p.prot_type));
                   Json params = Json::array();
                   for (const auto& param : p.params) {
                     Json x = Json::object();
                     x["type"] = param.type;
                     if (p.prot_type == 0) PutName(x, "type_name", SrtpParamName(param.type));
                     x["value"] = HexEncode(param.value);
                     params.push_back(std::move(x));
                   }
                   j["params"] = std::move(params);
                 },
                 [&](const RandPayload& p) { j["rand"] = HexEncode(p.rand); },
                 [&](const ErrPayload& p) {
                   j["error_no"] = p.error_no;
                   PutName(j, "error_no_name", ErrorNoName(p.error_no));
                 },
                 [&](const TrPayload& p) { PutTr(j, p); },
                 [&](const IdrPayload& p) { PutIdr(j, p); },
                 [&](const RandrPayload& p) {
                   j["role"] = p.role;
                   PutName(j, "role_name", RandRoleName(p.role));
                   j["rand"] = HexEncode(p.rand);
                 },
                 [&](const TpPayload& p) { PutPolicy(j, p.policy); },
                 [&](const TicketPayload& p) { PutTicket(j, p); },
                 [&](const GeneralExtPayload& p) {
                   j["ext_type"] = p.ext_type;
                   PutName(j, "ext_type_name", GeneralExtTypeName(p.ext_type));
                   j["data"] = HexEncode(p.data);
                   PutText(j, "data_text", p.data);
                 },
                 [&](const SakkePayload& p) {
                   j["params"] = p.params;
                   PutName(j, "params_name", SakkeParamsName(p.params));
                   j["id_scheme"] = p.id_scheme;
                   PutName(j, "id_scheme_name", SakkeIdSchemeName(p.id_scheme));
                   j["data"] = HexEncode(p.data);
                 },
             },
             payload);
  return j;
}

Json HeaderJson(const CommonHeader& h) {
  Json j = Json::object();
  j["version"] = h.version;
  j["data_type"] = h.data_type;
  PutName(j, "data_type_name", DataTypeName(h.data_type));
  j["v"] = h.v;
  j["prf_func"] = h.prf_func;
  PutName(j, "prf_func_name", PrfName(h.prf_func));
  j["csb_id"] = h.csb_id;
  j["cs_count"] = h.cs_count;
  j["cs_id_map_type"] = h.cs_id_map_type;
  PutName(j, "cs_id_map_type_name", CsIdMapTypeName(h.cs_id_map_type));
  Json map = Json::array();
  if (h.cs_id_map_type == static_cast<uint8_t>(CsIdMapType::kSrtpId)) {
    for (const auto& e : h.srtp_map) {
      Json x = Json::object();
      x["policy_no"] = e.policy_no;
      x["ssrc"] = e.ssrc;
      x["roc"] = e.roc;
      map.push_back(std::move(x));
    }
  } else if (h.cs_id_map_type == static_cast<uint8_t>(CsIdMapType::kGenericId)) {
    for (const auto& e : h.generic_map) {
      Json x = Json::object();
      x["cs_id"] = e.cs_id;
      x["prot_type"] = e.prot_type;
      PutName(x, "prot_type_name", ProtTypeName(e.prot_type));
      x["s"] = e.s_flag;
      x["policies"] = e.policies;
      x["session_data"] = HexEncode(e.session_data);
      x["spi"] = HexEncode(e.spi);
      map.push_back(std::move(x));
    }
  }
  j["cs_id_map"] = std::move(map);
  return j;
}

// ============================================================================
// JSON -> model
// ============================================================================

struct PathError {
  std::string path;
  std::string detail;
};

[[noreturn]] void Throw(std::string path, std::string detail) {
  throw PathError{std::move(path), std::move(detail)};
}

std::string TypeName(const Json& j) {
  if (j.is_number_float()) return "a fractional number";
  return std::string(j.type_name());
}

template <typename T>
T ReadUint(const Json& v, const std::string& path, uint64_t max = std::numeric_limits<T>::max()) {
  const std::string range = " is out of range (0.." + Num(max) + ")";
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > max) Throw(path, Num(u) + range);
    return static_cast<T>(u);
  }
  if (v.is_number_integer()) Throw(path, std::to_string(v.get<int64_t>()) + range);
  if (v.is_number_float()) Throw(path, "must be an integer, not " + v.dump());
  Throw(path, "must be a number, not " + TypeName(v));
}

Bytes ReadHex(const Json& v, const std::string& path) {
  if (!v.is_string()) Throw(path, "must be a hex string, not " + TypeName(v));
  const auto& s = v.get_ref<const std::string&>();
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) Throw(path, "not a hex string: character " + Num(i) + " is not a hex digit");
  }
  if (s.size() % 2 != 0) Throw(path, "not a hex string: odd number of hex digits (" + Num(s.size()) + ")");
  auto bytes = HexDecode(s);
  if (!bytes) Throw(path, "not a hex string");
  return std::move(*bytes);
}

// Cross-checks the informational name `key` of object `j` against the
// authoritative number `number_key` = `number`, whose registry name is
// `expected` ("" if the number is not defined: the codec reports that).
void CheckName(const Json& j, const std::string& path, std::string_view key,
               std::string_view number_key, uint64_t number, std::string_view expected) {
  auto it = j.find(std::string(key));
  if (it == j.end()) return;
  if (!it->is_string()) Throw(Member(path, key), "must be a string, not " + TypeName(*it));
  if (expected.empty()) return;
  const auto& given = it->get_ref<const std::string&>();
  if (given != expected) {
    Throw(Member(path, key), Quote(given) + " does not match " + std::string(number_key) + " " +
                                 Num(number) + " (" + Quote(expected) +
                                 "); the number is authoritative: fix or remove " + std::string(key));
  }
}

// The fields of one JSON object, with the set of keys it may carry.
class Fields {
 public:
  Fields(const Json& j, std::string path, std::initializer_list<std::string_view> allowed,
         bool payload_header = false)
      : j_(j), path_(std::move(path)) {
    if (!j.is_object()) Throw(path_, "must be an object, not " + TypeName(j));
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      const bool known = std::find(allowed.begin(), allowed.end(), key) != allowed.end() ||
                         (payload_header && (key == "type" || key == "name"));
      if (!known) Throw(At(key), "unknown field");
    }
  }

  const std::string& path() const { return path_; }
  std::string At(std::string_view key) const { return Member(path_, key); }
  bool Has(std::string_view key) const { return j_.find(std::string(key)) != j_.end(); }

  const Json& Get(std::string_view key) const {
    auto it = j_.find(std::string(key));
    if (it == j_.end()) Throw(At(key), "missing field");
    return *it;
  }

  template <typename T>
  T Uint(std::string_view key, uint64_t max = std::numeric_limits<T>::max()) const {
    return ReadUint<T>(Get(key), At(key), max);
  }

  bool Bool(std::string_view key) const {
    const Json& v = Get(key);
    if (!v.is_boolean()) Throw(At(key), "must be true or false, not " + TypeName(v));
    return v.get<bool>();
  }

  Bytes Hex(std::string_view key) const { return ReadHex(Get(key), At(key)); }

  const Json& Array(std::string_view key) const {
    const Json& v = Get(key);
    if (!v.is_array()) Throw(At(key), "must be an array, not " + TypeName(v));
    return v;
  }

  // Cross-checks an informational name; see CheckName.
  void Name(std::string_view key, std::string_view number_key, uint64_t number,
            std::string_view expected) const {
    CheckName(j_, path_, key, number_key, number, expected);
  }

  // Cross-checks an informational text field against the bytes it shows.
  void Text(std::string_view key, std::string_view bytes_key, const Bytes& bytes) const {
    if (!Has(key)) return;
    const Json& v = Get(key);
    if (!v.is_string()) Throw(At(key), "must be a string, not " + TypeName(v));
    if (v.get_ref<const std::string&>() != AsString(bytes)) {
      Throw(At(key), "does not match " + std::string(bytes_key) + " (" + std::string(bytes_key) +
                         " is authoritative: fix or remove " + std::string(key) + ")");
    }
  }

 private:
  const Json& j_;
  std::string path_;
};

// The payload type number of a payload object (checked to be an object first).
uint8_t PayloadTypeOf(const Json& j, const std::string& path) {
  if (!j.is_object()) Throw(path, "must be an object, not " + TypeName(j));
  auto it = j.find("type");
  if (it == j.end()) Throw(Member(path, "type"), "missing field");
  return ReadUint<uint8_t>(*it, Member(path, "type"));
}

void ReadKv(const Fields& f, KeyValidity& kv) {
  kv.kv_type = f.Uint<uint8_t>("kv_type", 0x0F);
  f.Name("kv_type_name", "kv_type", kv.kv_type, KvTypeName(kv.kv_type));
  if (kv.kv_type == static_cast<uint8_t>(KvType::kSpi)) {
    kv.spi = f.Hex("spi");
  } else if (f.Has("spi")) {
    Throw(f.At("spi"), "only allowed with kv_type 1 (SPI)");
  }
  if (kv.kv_type == static_cast<uint8_t>(KvType::kInterval)) {
    kv.valid_from = f.Hex("valid_from");
    kv.valid_to = f.Hex("valid_to");
  } else {
    for (const char* key : {"valid_from", "valid_to"}) {
      if (f.Has(key)) Throw(f.At(key), "only allowed with kv_type 2 (INTERVAL)");
    }
  }
}

void ReadTimestamp(const Fields& f, uint8_t& ts_type, uint64_t& value) {
  ts_type = f.Uint<uint8_t>("ts_type");
  f.Name("ts_type_name", "ts_type", ts_type, TsTypeName(ts_type));
  value = f.Uint<uint64_t>("value");
  if (!f.Has("value_hex")) return;
  const Bytes given = f.Hex("value_hex");
  const auto want = TimestampBytes(ts_type, value);
  if (want && given != *want) {
    Throw(f.At("value_hex"), "does not match value " + Num(value) + " (" + Quote(HexEncode(*want)) +
                                 "); value is authoritative: fix or remove value_hex");
  }
}

std::string KeyField(Rule rule) {
  switch (rule) {
    case Rule::kKeyType: return "key_type";
    case Rule::kKvType: return "kv_type";
    default: return "";
  }
}

SecretBytes EncodeKeys(const std::vector<KeyDataPayload>& keys, const std::string& path) {
  auto encoded = EncodeKeyDataChain(keys);
  if (encoded.ok()) return std::move(*encoded);
  for (size_t i = 0; i < keys.size(); ++i) {
    auto one = EncodeKeyDataChain({keys[i]});
    if (!one.ok()) {
      const std::string field = KeyField(one.error().rule);
      Throw(field.empty() ? Index(path, i) : Member(Index(path, i), field), CodecErrorText(one.error()));
    }
  }
  Throw(path, CodecErrorText(encoded.error()));
}

std::vector<KeyDataPayload> ReadKeyData(const Json& list, const std::string& path) {
  std::vector<KeyDataPayload> keys;
  for (size_t i = 0; i < list.size(); ++i) {
    const Fields f(list[i], Index(path, i),
                   {"key_type", "key_type_name", "key", "salt", "kv_type", "kv_type_name", "spi",
                    "valid_from", "valid_to"});
    KeyDataPayload k;
    k.key_type = f.Uint<uint8_t>("key_type", 0x0F);
    f.Name("key_type_name", "key_type", k.key_type, KeyTypeName(k.key_type));
    Bytes key = f.Hex("key");
    k.key = ToSecret(key);
    SecureWipe(key.data(), key.size());
    if (IsKnownKeyType(k.key_type)) {
      const bool wants_salt = KeyTypeHasSalt(static_cast<KeyType>(k.key_type));
      if (wants_salt && !f.Has("salt")) {
        Throw(f.At("salt"), "missing field (key type " + std::string(KeyTypeName(k.key_type)) + " carries a salt)");
      }
      if (!wants_salt && f.Has("salt")) {
        Throw(f.At("salt"), "key type " + std::string(KeyTypeName(k.key_type)) + " has no salt");
      }
    }
    if (f.Has("salt")) {
      Bytes salt = f.Hex("salt");
      k.salt = ToSecret(salt);
      SecureWipe(salt.data(), salt.size());
    }
    ReadKv(f, k.kv);
    keys.push_back(std::move(k));
  }
  return keys;
}

KemacPayload ReadKemac(const Json& j, const std::string& path, bool payload_header) {
  const Fields f(j, path,
                 {"encr_alg", "encr_alg_name", "encr_data", "mac_alg", "mac_alg_name", "mac", "key_data"},
                 payload_header);
  KemacPayload p;
  p.encr_alg = f.Uint<uint8_t>("encr_alg");
  f.Name("encr_alg_name", "encr_alg", p.encr_alg, EncrAlgName(p.encr_alg));
  const bool has_hex = f.Has("encr_data");
  const bool has_view = f.Has("key_data");
  if (!has_hex && !has_view) {
    Throw(f.At("encr_data"), "missing field (give encr_data, or key_data with encr_alg 0 (NULL))");
  }
  std::optional<SecretBytes> view;
  if (has_view) {
    if (p.encr_alg != static_cast<uint8_t>(EncrAlg::kNull)) {
      Throw(f.At("key_data"),
            "a key_data view is only defined for encr_alg 0 (NULL); tkmsctl does not encrypt: give "
            "encr_data");
    }
    view = EncodeKeys(ReadKeyData(f.Array("key_data"), f.At("key_data")), f.At("key_data"));
  }
  if (has_hex) {
    p.encr_data = f.Hex("encr_data");
    if (view && !std::equal(view->begin(), view->end(), p.encr_data.begin(), p.encr_data.end())) {
      Throw(f.At("key_data"),
            "does not match encr_data (encr_data is authoritative: remove key_data, or remove "
            "encr_data to encode key_data)");
    }
  } else {
    p.encr_data.assign(view->begin(), view->end());
  }
  p.mac_alg = f.Uint<uint8_t>("mac_alg");
  f.Name("mac_alg_name", "mac_alg", p.mac_alg, MacAlgName(p.mac_alg));
  p.mac = f.Hex("mac");
  return p;
}

VPayload ReadV(const Json& j, const std::string& path, bool payload_header) {
  const Fields f(j, path, {"auth_alg", "auth_alg_name", "mac"}, payload_header);
  VPayload p;
  p.auth_alg = f.Uint<uint8_t>("auth_alg");
  f.Name("auth_alg_name", "auth_alg", p.auth_alg, MacAlgName(p.auth_alg));
  p.mac = f.Hex("mac");
  return p;
}

TPayload ReadT(const Json& j, const std::string& path, bool payload_header) {
  const Fields f(j, path, {"ts_type", "ts_type_name", "value", "value_hex"}, payload_header);
  TPayload p;
  ReadTimestamp(f, p.ts_type, p.value);
  return p;
}

IdrPayload ReadIdr(const Json& j, const std::string& path, bool payload_header) {
  const Fields f(j, path, {"role", "role_name", "id_type", "id_type_name", "data", "id_text"},
                 payload_header);
  IdrPayload p;
  p.role = f.Uint<uint8_t>("role");
  f.Name("role_name", "role", p.role, IdRoleName(p.role));
  p.id_type = f.Uint<uint8_t>("id_type");
  f.Name("id_type_name", "id_type", p.id_type, IdTypeName(p.id_type));
  p.data = f.Hex("data");
  f.Text("id_text", "data", p.data);
  return p;
}

TrPayload ReadTr(const Json& j, const std::string& path) {
  const Fields f(j, path, {"role", "role_name", "ts_type", "ts_type_name", "value", "value_hex"}, true);
  TrPayload p;
  p.role = f.Uint<uint8_t>("role");
  f.Name("role_name", "role", p.role, TsRoleName(p.role));
  ReadTimestamp(f, p.ts_type, p.value);
  return p;
}

JsonError LocateInPayload(const Payload& p, const std::string& path, const CodecError& e);

// Encodes a decoded base-ticket view; errors name the part they concern.
Bytes EncodeBaseTicket(const BaseTicketData& b, const std::string& path) {
  auto encoded = EncodeBaseTicketData(b);
  if (encoded.ok()) return std::move(*encoded);
  const CodecError& e = encoded.error();
  if (b.thdr.data.size() > 0xFFFF) Throw(Member(path, "thdr"), CodecErrorText(e));
  std::vector<std::pair<std::string, Payload>> parts{
      {"t", b.t}, {"rand", b.rand}, {"kemac", b.kemac}};
  if (b.idr_psk) parts.emplace_back("idr_psk", *b.idr_psk);
  parts.emplace_back("v", b.v);
  for (const auto& [name, part] : parts) {
    auto one = EncodePayload(part, 0);
    if (!one.ok()) {
      // "rand" is a hex string in the view, not an object with a rand field.
      if (name == "rand") Throw(Member(path, "rand"), CodecErrorText(one.error()));
      JsonError located = LocateInPayload(part, Member(path, name), one.error());
      Throw(std::move(located.path), std::move(located.detail));
    }
  }
  if (e.rule == Rule::kTicketData && b.idr_psk) Throw(Member(path, "idr_psk"), CodecErrorText(e));
  Throw(path, CodecErrorText(e));
}

BaseTicketData ReadBaseTicket(const Json& j, const std::string& path) {
  const Fields f(j, path, {"thdr", "t", "rand", "kemac", "idr_psk", "v"});
  BaseTicketData b;
  b.thdr.data = f.Hex("thdr");
  b.t = ReadT(f.Get("t"), f.At("t"), false);
  b.rand.rand = f.Hex("rand");
  b.kemac = ReadKemac(f.Get("kemac"), f.At("kemac"), false);
  if (f.Has("idr_psk")) b.idr_psk = ReadIdr(f.Get("idr_psk"), f.At("idr_psk"), false);
  b.v = ReadV(f.Get("v"), f.At("v"), false);
  return b;
}

TpDataPayload ReadTpDataEntry(const Json& j, const std::string& path) {
  const uint8_t type = PayloadTypeOf(j, path);
  CheckName(j, path, "name", "type", type, PayloadTypeName(type));
  switch (static_cast<PayloadType>(type)) {
    case PayloadType::kIdr: return ReadIdr(j, path, true);
    case PayloadType::kTr: return ReadTr(j, path);
    case PayloadType::kKemac: return ReadKemac(j, path, true);
    default: break;
  }
  const std::string_view name = PayloadTypeName(type);
  Throw(Member(path, "type"), "payload type " + Num(type) + (name.empty() ? "" : " (" + std::string(name) + ")") +
                                  " is not allowed in TP Data (IDR, TR, KEMAC; RFC 6043 §6.10)");
}

void ReadPolicy(const Fields& f, TicketPolicy& p) {
  p.ticket_type = f.Uint<uint16_t>("ticket_type");
  f.Name("ticket_type_name", "ticket_type", p.ticket_type, TicketTypeName(p.ticket_type));
  p.subtype = f.Uint<uint8_t>("subtype");
  p.version = f.Uint<uint8_t>("version");
  p.prf_func = f.Uint<uint8_t>("prf_func", 0x7F);
  f.Name("prf_func_name", "prf_func", p.prf_func, PrfName(p.prf_func));
  const Fields flags(f.Get("flags"), f.At("flags"),
                     {"D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O"});
  p.flags = 0;
  for (size_t i = 0; i < 12; ++i) {
    if (flags.Bool(std::string(1, kTicketFlagLetters[i]))) p.flags |= static_cast<uint16_t>(1u << (11 - i));
  }
  const Json& tp = f.Array("tp_data");
  for (size_t i = 0; i < tp.size(); ++i) p.tp_data.push_back(ReadTpDataEntry(tp[i], Index(f.At("tp_data"), i)));
}

TicketPayload ReadTicket(const Json& j, const std::string& path) {
  const Fields f(j, path,
                 {"ticket_type", "ticket_type_name", "subtype", "version", "prf_func", "prf_func_name",
                  "flags", "tp_data", "ticket_data", "base_ticket", "initiator_data"},
                 true);
  TicketPayload p;
  ReadPolicy(f, p.policy);
  const bool has_hex = f.Has("ticket_data");
  const bool has_view = f.Has("base_ticket");
  if (!has_hex && !has_view) {
    Throw(f.At("ticket_data"), "missing field (give ticket_data, or base_ticket for the MIKEY base ticket)");
  }
  std::optional<Bytes> view;
  if (has_view) {
    if (!IsBaseTicket(p.policy)) {
      Throw(f.At("base_ticket"),
            "only defined for the MIKEY base ticket (ticket_type 1, subtype 1, version 1)");
    }
    view = EncodeBaseTicket(ReadBaseTicket(f.Get("base_ticket"), f.At("base_ticket")), f.At("base_ticket"));
  }
  if (has_hex) {
    p.ticket_data = f.Hex("ticket_data");
    if (view && *view != p.ticket_data) {
      Throw(f.At("base_ticket"),
            "does not match ticket_data (ticket_data is authoritative: remove base_ticket, or remove "
            "ticket_data to encode base_ticket)");
    }
  } else {
    p.ticket_data = std::move(*view);
  }
  const Json& id = f.Get("initiator_data");
  if (!id.is_null()) {
    const Fields idf(id, f.At("initiator_data"), {"vi", "vr"});
    p.initiator_data = InitiatorData{ReadV(idf.Get("vi"), idf.At("vi"), false),
                                     ReadV(idf.Get("vr"), idf.At("vr"), false)};
  }
  return p;
}

Payload ReadPayload(const Json& j, const std::string& path) {
  const uint8_t type = PayloadTypeOf(j, path);
  if (!IsKnownPayloadType(type)) {
    std::string why = "payload type " + Num(type);
    if (type == U8(PayloadType::kKeyData)) {
      why += " (KEY_DATA) only appears inside a KEMAC (see key_data)";
    } else if (type == U8(PayloadType::kLast)) {
      why += " (LAST) is not a payload";
    } else {
      why += " is not defined";
    }
    Throw(Member(path, "type"), why);
  }
  // The payload name is informational: cross-checked before the body, so that
  // a wrong type number is reported as such rather than as unknown fields.
  CheckName(j, path, "name", "type", type, PayloadTypeName(type));
  auto fields = [&](std::initializer_list<std::string_view> allowed) {
    return Fields(j, path, allowed, true);
  };
  Payload out;
  switch (static_cast<PayloadType>(type)) {
    case PayloadType::kKemac:
      out = ReadKemac(j, path, true);
      break;
    case PayloadType::kPke: {
      const Fields f = fields({"c", "data"});
      out = PkePayload{f.Uint<uint8_t>("c", 3), f.Hex("data")};
      break;
    }
    case PayloadType::kDh: {
      const Fields f = fields({"group", "group_name", "value", "kv_type", "kv_type_name", "spi",
                               "valid_from", "valid_to"});
      DhPayload p;
      p.group = f.Uint<uint8_t>("group");
      f.Name("group_name", "group", p.group, DhGroupName(p.group));
      p.value = f.Hex("value");
      ReadKv(f, p.kv);
      out = std::move(p);
      break;
    }
    case PayloadType::kSign: {
      const Fields f = fields({"s_type", "s_type_name", "signature"});
      SignPayload p;
      p.s_type = f.Uint<uint8_t>("s_type", 0x0F);
      f.Name("s_type_name", "s_type", p.s_type, SignTypeName(p.s_type));
      p.signature = f.Hex("signature");
      out = std::move(p);
      break;
    }
    case PayloadType::kT:
      out = ReadT(j, path, true);
      break;
    case PayloadType::kId: {
      const Fields f = fields({"id_type", "id_type_name", "data", "id_text"});
      IdPayload p;
      p.id_type = f.Uint<uint8_t>("id_type");
      f.Name("id_type_name", "id_type", p.id_type, IdTypeName(p.id_type));
      p.data = f.Hex("data");
      f.Text("id_text", "data", p.data);
      out = std::move(p);
      break;
    }
    case PayloadType::kCert: {
      const Fields f = fields({"cert_type", "cert_type_name", "data"});
      CertPayload p;
      p.cert_type = f.Uint<uint8_t>("cert_type");
      f.Name("cert_type_name", "cert_type", p.cert_type, CertTypeName(p.cert_type));
      p.data = f.Hex("data");
      out = std::move(p);
      break;
    }
    case PayloadType::kChash: {
      const Fields f = fields({"hash_func", "hash_func_name", "hash"});
      ChashPayload p;
      p.hash_func = f.Uint<uint8_t>("hash_func");
      f.Name("hash_func_name", "hash_func", p.hash_func, HashFuncName(p.hash_func));
      p.hash = f.Hex("hash");
      out = std::move(p);
      break;
    }
    case PayloadType::kV:
      out = ReadV(j, path, true);
      break;
    case PayloadType::kSp: {
      const Fields f = fields({"policy_no", "prot_type", "prot_type_name", "params"});
      SpPayload p;
      p.policy_no = f.Uint<uint8_t>("policy_no");
      p.prot_type = f.Uint<uint8_t>("prot_type");
      f.Name("prot_type_name", "prot_type", p.prot_type, ProtTypeName(p.prot_type));
      const Json& params = f.Array("params");
      for (size_t i = 0; i < params.size(); ++i) {
        const Fields pf(params[i], Index(f.At("params"), i), {"type", "type_name", "value"});
        SpParam param;
        param.type = pf.Uint<uint8_t>("type");
        pf.Name("type_name", "type", param.type, p.prot_type == 0 ? SrtpParamName(param.type) : "");
        param.value = pf.Hex("value");
        p.params.push_back(std::move(param));
      }
      out = std::move(p);
      break;
    }
    case PayloadType::kRand: {
      const Fields f = fields({"rand"});
      out = RandPayload{f.Hex("rand")};
      break;
    }
    case PayloadType::kErr: {
      const Fields f = fields({"error_no", "error_no_name"});
      ErrPayload p;
      p.error_no = f.Uint<uint8_t>("error_no");
      f.Name("error_no_name", "error_no", p.error_no, ErrorNoName(p.error_no));
      out = p;
      break;
    }
    case PayloadType::kTr:
      out = ReadTr(j, path);
      break;
    case PayloadType::kIdr:
      out = ReadIdr(j, path, true);
      break;
    case PayloadType::kRandr: {
      const Fields f = fields({"role", "role_name", "rand"});
      RandrPayload p;
      p.role = f.Uint<uint8_t>("role");
      f.Name("role_name", "role", p.role, RandRoleName(p.role));
      p.rand = f.Hex("rand");
      out = std::move(p);
      break;
    }
    case PayloadType::kTp: {
      const Fields f = fields({"ticket_type", "ticket_type_name", "subtype", "version", "prf_func",
                               "prf_func_name", "flags", "tp_data"});
      TpPayload p;
      ReadPolicy(f, p.policy);
      out = std::move(p);
      break;
    }
    case PayloadType::kTicket:
      out = ReadTicket(j, path);
      break;
    case PayloadType::kGeneralExt: {
      const Fields f = fields({"ext_type", "ext_type_name", "data", "data_text"});
      GeneralExtPayload p;
      p.ext_type = f.Uint<uint8_t>("ext_type");
      f.Name("ext_type_name", "ext_type", p.ext_type, GeneralExtTypeName(p.ext_type));
      p.data = f.Hex("data");
      f.Text("data_text", "data", p.data);
      out = std::move(p);
      break;
    }
    case PayloadType::kSakke: {
      const Fields f = fields({"params", "params_name", "id_scheme", "id_scheme_name", "data"});
      SakkePayload p;
      p.params = f.Uint<uint8_t>("params");
      f.Name("params_name", "params", p.params, SakkeParamsName(p.params));
      p.id_scheme = f.Uint<uint8_t>("id_scheme");
      f.Name("id_scheme_name", "id_scheme", p.id_scheme, SakkeIdSchemeName(p.id_scheme));
      p.data = f.Hex("data");
      out = std::move(p);
      break;
    }
    case PayloadType::kLast:
    case PayloadType::kKeyData:
      break;
  }
  return out;
}

CommonHeader ReadHeader(const Json& j, const std::string& path) {
  const Fields f(j, path,
                 {"version", "data_type", "data_type_name", "v", "prf_func", "prf_func_name", "csb_id",
                  "cs_count", "cs_id_map_type", "cs_id_map_type_name", "cs_id_map"});
  CommonHeader h;
  h.version = f.Uint<uint8_t>("version");
  h.data_type = f.Uint<uint8_t>("data_type");
  f.Name("data_type_name", "data_type", h.data_type, DataTypeName(h.data_type));
  h.v = f.Bool("v");
  h.prf_func = f.Uint<uint8_t>("prf_func", 0x7F);
  f.Name("prf_func_name", "prf_func", h.prf_func, PrfName(h.prf_func));
  h.csb_id = f.Uint<uint32_t>("csb_id");
  h.cs_count = f.Uint<uint8_t>("cs_count");
  h.cs_id_map_type = f.Uint<uint8_t>("cs_id_map_type");
  f.Name("cs_id_map_type_name", "cs_id_map_type", h.cs_id_map_type, CsIdMapTypeName(h.cs_id_map_type));
  const Json& map = f.Array("cs_id_map");
  const std::string map_path = f.At("cs_id_map");
  if (h.cs_id_map_type == static_cast<uint8_t>(CsIdMapType::kSrtpId)) {
    for (size_t i = 0; i < map.size(); ++i) {
      const Fields e(map[i], Index(map_path, i), {"policy_no", "ssrc", "roc"});
      h.srtp_map.push_back(SrtpIdEntry{e.Uint<uint8_t>("policy_no"), e.Uint<uint32_t>("ssrc"),
                                       e.Uint<uint32_t>("roc")});
    }
  } else if (h.cs_id_map_type == static_cast<uint8_t>(CsIdMapType::kGenericId)) {
    for (size_t i = 0; i < map.size(); ++i) {
      const Fields e(map[i], Index(map_path, i),
                     {"cs_id", "prot_type", "prot_type_name", "s", "policies", "session_data", "spi"});
      GenericIdEntry g;
      g.cs_id = e.Uint<uint8_t>("cs_id");
      g.prot_type = e.Uint<uint8_t>("prot_type");
      e.Name("prot_type_name", "prot_type", g.prot_type, ProtTypeName(g.prot_type));
      g.s_flag = e.Bool("s");
      const Json& policies = e.Array("policies");
      for (size_t k = 0; k < policies.size(); ++k) {
        g.policies.push_back(ReadUint<uint8_t>(policies[k], Index(e.At("policies"), k)));
      }
      g.session_data = e.Hex("session_data");
      g.spi = e.Hex("spi");
      h.generic_map.push_back(std::move(g));
    }
  } else if (!map.empty()) {
    const std::string_view name = CsIdMapTypeName(h.cs_id_map_type);
    Throw(map_path, "must be empty for cs_id_map_type " + Num(h.cs_id_map_type) +
                        (name.empty() ? "" : " (" + std::string(name) + ")"));
  }
  return h;
}

Message ReadMessage(const Json& j) {
  const Fields f(j, "", {"header", "payloads"});
  Message m;
  m.header = ReadHeader(f.Get("header"), "header");
  const Json& payloads = f.Array("payloads");
  for (size_t i = 0; i < payloads.size(); ++i) {
    m.payloads.push_back(ReadPayload(payloads[i], Index("payloads", i)));
  }
  return m;
}

// ============================================================================
// Locating codec errors
// ============================================================================

std::string HeaderField(Rule rule) {
  switch (rule) {
    case Rule::kVersion: return "version";
    case Rule::kDataType: return "data_type";
    case Rule::kPrfFunc: return "prf_func";
    case Rule::kCsIdMapType: return "cs_id_map_type";
    case Rule::kCsIdMap:
    case Rule::kProtType:
    case Rule::kFieldTooLong: return "cs_id_map";
    default: return "";
  }
}

// The field of a payload of `type` that a violation of `rule` concerns.
std::string PayloadField(PayloadType type, Rule rule) {
  switch (rule) {
    case Rule::kEncrAlg: return "encr_alg";
    case Rule::kMacAlg: return type == PayloadType::kV ? "auth_alg" : "mac_alg";
    case Rule::kMacLength: return "mac";
    case Rule::kTsType: return "ts_type";
    case Rule::kTsRole:
    case Rule::kIdRole:
    case Rule::kRandRole: return "role";
    case Rule::kIdType: return "id_type";
    case Rule::kRandLength: return "rand";
    case Rule::kCertType: return "cert_type";
    case Rule::kHashFunc: return "hash_func";
    case Rule::kSignType: return "s_type";
    case Rule::kDhGroup: return "group";
    case Rule::kKvType:
    case Rule::kKeyData: return type == PayloadType::kDh ? "kv_type" : "";
    case Rule::kErrorNo: return "error_no";
    case Rule::kPkeCache: return "c";
    case Rule::kGeneralExtType: return "ext_type";
    case Rule::kProtType: return "prot_type";
    case Rule::kSpParam: return "params";
    case Rule::kTicketType: return "ticket_type";
    case Rule::kPrfFunc: return "prf_func";
    case Rule::kTicketFlags: return "flags";
    case Rule::kTpData: return "tp_data";
    case Rule::kTicketData: return "ticket_data";
    case Rule::kInitiatorData: return "initiator_data";
    case Rule::kFieldTooLong:
      switch (type) {
        case PayloadType::kT:
        case PayloadType::kTr: return "value";
        case PayloadType::kRand:
        case PayloadType::kRandr: return "rand";
        case PayloadType::kId:
        case PayloadType::kIdr:
        case PayloadType::kCert:
        case PayloadType::kGeneralExt:
        case PayloadType::kSakke:
        case PayloadType::kPke: return "data";
        case PayloadType::kSign: return "signature";
        case PayloadType::kChash: return "hash";
        case PayloadType::kSp: return "params";
        case PayloadType::kKemac: return "encr_data";
        default: return "";
      }
    default: return "";
  }
}

const TicketPolicy* PolicyOf(const Payload& p) {
  if (const auto* tp = std::get_if<TpPayload>(&p)) return &tp->policy;
  if (const auto* t = std::get_if<TicketPayload>(&p)) return &t->policy;
  return nullptr;
}

// The part of payload `p` (at `path`) that makes it fail to encode with `e`:
// TP Data entries and Initiator Data V payloads are tried one by one, then
// the field the rule names. The error returned is that of the part.
JsonError LocateInPayload(const Payload& p, const std::string& path, const CodecError& e) {
  if (const TicketPolicy* policy = PolicyOf(p)) {
    for (size_t j = 0; j < policy->tp_data.size(); ++j) {
      const Payload entry = std::visit([](const auto& x) -> Payload { return x; }, policy->tp_data[j]);
      auto one = EncodePayload(entry, 0);
      if (!one.ok()) return LocateInPayload(entry, Index(Member(path, "tp_data"), j), one.error());
    }
  }
  if (const auto* t = std::get_if<TicketPayload>(&p)) {
    if (IsBaseTicket(t->policy)) {
      auto base = DecodeBaseTicketData(t->ticket_data);
      if (!base.ok()) return JsonError{Member(path, "ticket_data"), CodecErrorText(base.error())};
    }
    if (t->initiator_data) {
      const std::string id = Member(path, "initiator_data");
      const std::pair<const char*, const VPayload*> vs[] = {{"vi", &t->initiator_data->vi},
                                                            {"vr", &t->initiator_data->vr}};
      for (const auto& [name, v] : vs) {
        auto one = EncodePayload(*v, 0);
        if (!one.ok()) return LocateInPayload(*v, Member(id, name), one.error());
      }
    }
  }
  const std::string field = PayloadField(TypeOf(p), e.rule);
  return JsonError{field.empty() ? path : Member(path, field), CodecErrorText(e)};
}

// The JSON path of what a Decode error at `offset` in Encode(m) concerns: the
// header or payload holding that byte, and the field the rule names.
std::string PathAtOffset(const Message& m, const CodecError& e) {
  Message header_only;
  header_only.header = m.header;
  auto header = Encode(header_only);
  size_t end = header.ok() ? header->size() : 0;
  if (e.offset < end) {
    const std::string field = HeaderField(e.rule);
    return field.empty() ? "header" : "header." + field;
  }
  for (size_t i = 0; i < m.payloads.size(); ++i) {
    const uint8_t next = i + 1 < m.payloads.size() ? static_cast<uint8_t>(TypeOf(m.payloads[i + 1])) : 0;
    auto one = EncodePayload(m.payloads[i], next);
    end += one.ok() ? one->size() : 0;
    if (e.offset < end || i + 1 == m.payloads.size()) {
      const std::string path = Index("payloads", i);
      const std::string field =
          e.rule == Rule::kComposition ? "" : PayloadField(TypeOf(m.payloads[i]), e.rule);
      return field.empty() ? path : Member(path, field);
    }
  }
  return "";
}

}  // namespace

std::string JsonError::ToString() const { return path.empty() ? detail : path + ": " + detail; }

std::string CodecErrorText(const mikey::CodecError& error) {
  const auto no = static_cast<uint8_t>(error.error_no());
  return std::string(mikey::RuleName(error.rule)) + ": " + error.detail + " (MIKEY error " +
         std::to_string(no) + ", " + std::string(mikey::ErrorNoName(no)) + ")";
}

Json MessageToJson(const mikey::Message& message) {
  Json j = Json::object();
  j["header"] = HeaderJson(message.header);
  Json payloads = Json::array();
  for (const auto& p : message.payloads) payloads.push_back(PayloadJson(p));
  j["payloads"] = std::move(payloads);
  return j;
}

Result<mikey::Message, JsonError> MessageFromJson(const Json& json) {
  try {
    return ReadMessage(json);
  } catch (const PathError& e) {
    return JsonError{e.path, e.detail};
  } catch (const std::exception& e) {
    return JsonError{"", std::string("internal error while reading JSON: ") + e.what()};
  }
}

Result<Json, JsonError> ParseJsonText(std::string_view text) {
  auto parsed = json::ParseOrdered(text, kMikeyJsonLimits);
  if (!parsed.ok()) return JsonError{parsed.error().path, parsed.error().message};
  return std::move(*parsed);
}

JsonError LocateEncodeError(const mikey::Message& message, const mikey::CodecError& error) {
  mikey::Message header_only;
  header_only.header = message.header;
  if (auto h = mikey::Encode(header_only); !h.ok()) {
    const std::string field = HeaderField(h.error().rule);
    return JsonError{field.empty() ? "header" : "header." + field, CodecErrorText(h.error())};
  }
  for (size_t i = 0; i < message.payloads.size(); ++i) {
    const auto& p = message.payloads[i];
    if (error.rule == mikey::Rule::kMisplacedPayload && mikey::TypeOf(p) == mikey::PayloadType::kSign &&
        i + 1 != message.payloads.size()) {
      return JsonError{Index("payloads", i), CodecErrorText(error)};
    }
    auto one = mikey::EncodePayload(p, 0);
    if (!one.ok()) return LocateInPayload(p, Index("payloads", i), one.error());
  }
  return JsonError{"", CodecErrorText(error)};
}

Result<mikey::Bytes, JsonError> EncodeJsonText(std::string_view text) {
  auto json = ParseJsonText(text);
  if (!json.ok()) return std::move(json).error();
  auto message = MessageFromJson(*json);
  if (!message.ok()) return std::move(message).error();
  auto encoded = mikey::Encode(*message);
  if (!encoded.ok()) {
    return LocateEncodeError(*message, encoded.error());
  }
  // Never print what decode would refuse (composition, limits, ...).
  auto decoded = mikey::Decode(*encoded);
  if (!decoded.ok()) {
    return JsonError{PathAtOffset(*message, decoded.error()),
                     "the encoded message would not decode: " + decoded.error().ToString()};
  }
  if (*decoded != *message) {
    return JsonError{"", "internal error: the encoded message decodes to a different model"};
  }
  return std::move(*encoded);
}

}  // namespace tkms::tkmsctl
