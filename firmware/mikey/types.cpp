#include "firmware/mikey/types.h"

#include <array>
#include <utility>

namespace tkms::mikey {
namespace {

using NameEntry = std::pair<uint8_t, std::string_view>;

template <size_t N>
std::string_view Lookup(const std::array<NameEntry, N>& table, uint8_t v) {
  for (const auto& [value, name] : table) {
    if (value == v) return name;
  }
  return {};
}

template <size_t N>
std::optional<uint8_t> Reverse(const std::array<NameEntry, N>& table, std::string_view name) {
  for (const auto& [value, entry] : table) {
    if (entry == name) return value;
  }
  return std::nullopt;
}

constexpr std::array<NameEntry, 20> kDataTypes{{
    {0, "PSK_INIT"},          {1, "PSK_RESP"},          {2, "PK_INIT"},
    {3, "PK_RESP"},           {4, "DH_INIT"},           {5, "DH_RESP"},
    {6, "ERROR"},             {7, "DHHMAC_INIT"},       {8, "DHHMAC_RESP"},
    {9, "RSA_R_INIT"},        {10, "RSA_R_RESP"},       {11, "REQUEST_INIT_PSK"},
    {12, "REQUEST_INIT_PK"},  {13, "REQUEST_RESP"},     {14, "TRANSFER_INIT"},
    {15, "TRANSFER_RESP"},    {16, "RESOLVE_INIT_PSK"}, {17, "RESOLVE_INIT_PK"},
    {18, "RESOLVE_RESP"},     {26, "SAKKE"},
}};

constexpr std::array<NameEntry, 21> kPayloadTypes{{
    {0, "LAST"},   {1, "KEMAC"},  {2, "PKE"},      {3, "DH"},    {4, "SIGN"},   {5, "T"},
    {6, "ID"},     {7, "CERT"},   {8, "CHASH"},    {9, "V"},     {10, "SP"},    {11, "RAND"},
    {12, "ERR"},   {13, "TR"},    {14, "IDR"},     {15, "RANDR"}, {16, "TP"},   {17, "TICKET"},
    {20, "KEY_DATA"}, {21, "GENERAL_EXT"}, {26, "SAKKE"},
}};

constexpr std::array<NameEntry, 2> kPrfs{{{0, "MIKEY-1"}, {1, "PRF-HMAC-SHA-256"}}};
constexpr std::array<NameEntry, 3> kMapTypes{{{0, "SRTP-ID"}, {1, "EMPTY"}, {2, "GENERIC-ID"}}};
constexpr std::array<NameEntry, 4> kEncrAlgs{
    {{0, "NULL"}, {1, "AES-CM-128"}, {2, "AES-KW-128"}, {3, "AES-CM-256"}}};
constexpr std::array<NameEntry, 3> kMacAlgs{
    {{0, "NULL"}, {1, "HMAC-SHA-1-160"}, {2, "HMAC-SHA-256-256"}}};
constexpr std::array<NameEntry, 4> kTsTypes{
    {{0, "NTP-UTC"}, {1, "NTP"}, {2, "COUNTER"}, {3, "NTP-UTC-32"}}};
constexpr std::array<NameEntry, 4> kTsRoles{
    {{1, "TRi"}, {2, "TRs"}, {3, "TRe"}, {4, "TRr"}}};
constexpr std::array<NameEntry, 3> kIdTypes{{{0, "NAI"}, {1, "URI"}, {2, "BYTE-STRING"}}};
constexpr std::array<NameEntry, 7> kIdRoles{{{1, "IDRi"},
                                             {2, "IDRr"},
                                             {3, "IDRkms"},
                                             {4, "IDRpsk"},
                                             {5, "IDRapp"},
                                             {6, "IDRkmsi"},
                                             {7, "IDRkmsr"}}};
constexpr std::array<NameEntry, 3> kRandRoles{{{1, "RANDRi"}, {2, "RANDRr"}, {3, "RANDRkms"}}};
constexpr std::array<NameEntry, 4> kCertTypes{{{0, "X.509v3"},
                                               {1, "X.509v3-URL"},
                                               {2, "X.509v3-Sign"},
                                               {3, "X.509v3-Encr"}}};
constexpr std::array<NameEntry, 3> kHashFuncs{{{0, "SHA-1"}, {1, "MD5"}, {2, "SHA-256"}}};
constexpr std::array<NameEntry, 3> kSignTypes{{{0, "RSA-PKCS1-v1_5"}, {1, "RSA-PSS"}, {2, "ECCSI"}}};
constexpr std::array<NameEntry, 3> kDhGroups{{{0, "OAKLEY-5"}, {1, "OAKLEY-1"}, {2, "OAKLEY-2"}}};
constexpr std::array<NameEntry, 3> kKvTypes{{{0, "NULL"}, {1, "SPI"}, {2, "INTERVAL"}}};
constexpr std::array<NameEntry, 7> kKeyTypes{{{0, "TGK"},
                                              {1, "TGK+SALT"},
                                              {2, "TEK"},
                                              {3, "TEK+SALT"},
                                              {4, "GTGK"},
                                              {5, "GTGK+SALT"},
                                              {6, "MPK"}}};
constexpr std::array<NameEntry, 16> kErrors{{
    {0, "Auth failure"},     {1, "Invalid TS"},      {2, "Invalid PRF"},
    {3, "Invalid MAC"},      {4, "Invalid EA"},      {5, "Invalid HA"},
    {6, "Invalid DH"},       {7, "Invalid ID"},      {8, "Invalid Cert"},
    {9, "Invalid SP"},       {10, "Invalid SPpar"},  {11, "Invalid DT"},
    {12, "Unspecified error"}, {13, "Unsupported message type"},
    {14, "Invalid TICKET"},  {15, "Invalid TPpar"},
}};
constexpr std::array<NameEntry, 6> kGeneralExtTypes{{{0, "Vendor ID"},
                                                     {1, "SDP IDs"},
                                                     {2, "TESLA I-Key"},
                                                     {3, "Key ID"},
                                                     {4, "CSB_ID"},
                                                     {5, "OMA BCAST"}}};
constexpr std::array<NameEntry, 1> kProtTypes{{{0, "SRTP"}}};

}  // namespace

bool IsKnownDataType(uint8_t v) { return !Lookup(kDataTypes, v).empty(); }
std::string_view DataTypeName(uint8_t v) { return Lookup(kDataTypes, v); }
std::optional<uint8_t> DataTypeFromName(std::string_view name) { return Reverse(kDataTypes, name); }

bool IsKnownPayloadType(uint8_t v) {
  return v != 0 && v != static_cast<uint8_t>(PayloadType::kKeyData) && !Lookup(kPayloadTypes, v).empty();
}
std::string_view PayloadTypeName(uint8_t v) { return Lookup(kPayloadTypes, v); }
std::optional<uint8_t> PayloadTypeFromName(std::string_view name) { return Reverse(kPayloadTypes, name); }

bool IsKnownPrf(uint8_t v) { return !Lookup(kPrfs, v).empty(); }
std::string_view PrfName(uint8_t v) { return Lookup(kPrfs, v); }
bool IsKnownCsIdMapType(uint8_t v) { return !Lookup(kMapTypes, v).empty(); }
std::string_view CsIdMapTypeName(uint8_t v) { return Lookup(kMapTypes, v); }
bool IsKnownEncrAlg(uint8_t v) { return !Lookup(kEncrAlgs, v).empty(); }
std::string_view EncrAlgName(uint8_t v) { return Lookup(kEncrAlgs, v); }
bool IsKnownMacAlg(uint8_t v) { return !Lookup(kMacAlgs, v).empty(); }
std::string_view MacAlgName(uint8_t v) { return Lookup(kMacAlgs, v); }

size_t MacLength(MacAlg alg) {
  switch (alg) {
    case MacAlg::kNull: return 0;
    case MacAlg::kHmacSha1_160: return 20;
    case MacAlg::kHmacSha256_256: return 32;
  }
  return 0;
}

bool IsKnownTsType(uint8_t v) { return !Lookup(kTsTypes, v).empty(); }
std::string_view TsTypeName(uint8_t v) { return Lookup(kTsTypes, v); }
size_t TsLength(TsType type) {
  return (type == TsType::kCounter || type == TsType::kNtpUtc32) ? 4 : 8;
}
bool IsKnownTsRole(uint8_t v) { return !Lookup(kTsRoles, v).empty(); }
std::string_view TsRoleName(uint8_t v) { return Lookup(kTsRoles, v); }
bool IsKnownIdType(uint8_t v) { return !Lookup(kIdTypes, v).empty(); }
std::string_view IdTypeName(uint8_t v) { return Lookup(kIdTypes, v); }
bool IsKnownIdRole(uint8_t v) { return !Lookup(kIdRoles, v).empty(); }
std::string_view IdRoleName(uint8_t v) { return Lookup(kIdRoles, v); }
bool IsKnownRandRole(uint8_t v) { return !Lookup(kRandRoles, v).empty(); }
std::string_view RandRoleName(uint8_t v) { return Lookup(kRandRoles, v); }
bool IsKnownCertType(uint8_t v) { return !Lookup(kCertTypes, v).empty(); }
std::string_view CertTypeName(uint8_t v) { return Lookup(kCertTypes, v); }
bool IsKnownHashFunc(uint8_t v) { return !Lookup(kHashFuncs, v).empty(); }
std::string_view HashFuncName(uint8_t v) { return Lookup(kHashFuncs, v); }
size_t HashLength(HashFunc f) {
  switch (f) {
    case HashFunc::kSha1: return 20;
    case HashFunc::kMd5: return 16;
    case HashFunc::kSha256: return 32;
  }
  return 0;
}
bool IsKnownSignType(uint8_t v) { return !Lookup(kSignTypes, v).empty(); }
std::string_view SignTypeName(uint8_t v) { return Lookup(kSignTypes, v); }
bool IsKnownDhGroup(uint8_t v) { return !Lookup(kDhGroups, v).empty(); }
std::string_view DhGroupName(uint8_t v) { return Lookup(kDhGroups, v); }
size_t DhValueLength(DhGroup g) {
  switch (g) {
    case DhGroup::kOakley5: return 192;
    case DhGroup::kOakley1: return 96;
    case DhGroup::kOakley2: return 128;
  }
  return 0;
}
bool IsKnownKvType(uint8_t v) { return !Lookup(kKvTypes, v).empty(); }
std::string_view KvTypeName(uint8_t v) { return Lookup(kKvTypes, v); }
bool IsKnownKeyType(uint8_t v) { return !Lookup(kKeyTypes, v).empty(); }
std::string_view KeyTypeName(uint8_t v) { return Lookup(kKeyTypes, v); }
bool KeyTypeHasSalt(KeyType t) {
  return t == KeyType::kTgkSalt || t == KeyType::kTekSalt || t == KeyType::kGtgkSalt;
}
bool IsKnownErrorNo(uint8_t v) { return !Lookup(kErrors, v).empty(); }
std::string_view ErrorNoName(uint8_t v) { return Lookup(kErrors, v); }
bool IsKnownPkeCache(uint8_t v) { return v <= 2; }
bool IsKnownGeneralExtType(uint8_t v) { return !Lookup(kGeneralExtTypes, v).empty(); }
std::string_view GeneralExtTypeName(uint8_t v) { return Lookup(kGeneralExtTypes, v); }
bool IsKnownProtType(uint8_t v) { return !Lookup(kProtTypes, v).empty(); }
std::string_view ProtTypeName(uint8_t v) { return Lookup(kProtTypes, v); }
bool IsKnownSakkeParams(uint8_t v) { return v == 1; }
bool IsKnownSakkeIdScheme(uint8_t v) { return v == 1; }

bool IsKnownTicketType(uint16_t v) { return v == 1 || v == 2; }
std::string_view TicketTypeName(uint16_t v) {
  switch (v) {
    case 1: return "MIKEY base ticket";
    case 2: return "3GPP base ticket";
    default: return {};
  }
}

}  // namespace tkms::mikey
