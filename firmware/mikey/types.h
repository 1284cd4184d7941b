// MIKEY number registries: data types, payload identifiers and the enumerated
// field values of RFC 3830 §6, RFC 4563, RFC 4650, RFC 4738, RFC 6043 §6 and
// RFC 6509 §4.
//
// Why: the codec accepts only values these registries define. Each Is*()
// predicate answers "is this a value we know", and each *Name() gives the name
// used in JSON output and error messages. Private-use and reserved values are
// rejected: a KMS has no use for values whose meaning it cannot know.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tkms::mikey {

// HDR data type (RFC 3830 Table 6.1.a, RFC 4650, RFC 4738, RFC 6043 Table 6.1,
// RFC 6509 Table 1).
enum class DataType : uint8_t {
  kPskInit = 0,
  kPskResp = 1,
  kPkInit = 2,
  kPkResp = 3,
  kDhInit = 4,
  kDhResp = 5,
  kError = 6,
  kDhhmacInit = 7,
  kDhhmacResp = 8,
  kRsaRInit = 9,
  kRsaRResp = 10,
  kRequestInitPsk = 11,
  kRequestInitPk = 12,
  kRequestResp = 13,
  kTransferInit = 14,
  kTransferResp = 15,
  kResolveInitPsk = 16,
  kResolveInitPk = 17,
  kResolveResp = 18,
  kSakke = 26,
};
bool IsKnownDataType(uint8_t v);
std::string_view DataTypeName(uint8_t v);  // "REQUEST_INIT_PSK", ...; "" if unknown
std::optional<uint8_t> DataTypeFromName(std::string_view name);

// Next-payload identifiers (RFC 3830 Table 6.1.b, RFC 6043 Table 6.2,
// RFC 6509 Table 2).
enum class PayloadType : uint8_t {
  kLast = 0,
  kKemac = 1,
  kPke = 2,
  kDh = 3,
  kSign = 4,
  kT = 5,
  kId = 6,
  kCert = 7,
  kChash = 8,
  kV = 9,
  kSp = 10,
  kRand = 11,
  kErr = 12,
  kTr = 13,
  kIdr = 14,
  kRandr = 15,
  kTp = 16,
  kTicket = 17,
  kKeyData = 20,
  kGeneralExt = 21,
  kSakke = 26,
};
// True for the identifiers that may appear in a top-level payload chain
// (Key data is only valid inside a KEMAC).
bool IsKnownPayloadType(uint8_t v);
std::string_view PayloadTypeName(uint8_t v);  // "KEMAC", "T", ...; "" if unknown
std::optional<uint8_t> PayloadTypeFromName(std::string_view name);

// PRF func (RFC 3830 §6.1, RFC 6043 Table 6.3).
enum class PrfFunc : uint8_t { kMikey1 = 0, kHmacSha256 = 1 };
bool IsKnownPrf(uint8_t v);
std::string_view PrfName(uint8_t v);

// CS ID map type (RFC 3830 Table 6.1.d, RFC 4563 §5, RFC 6043 Table 6.4).
enum class CsIdMapType : uint8_t { kSrtpId = 0, kEmpty = 1, kGenericId = 2 };
bool IsKnownCsIdMapType(uint8_t v);
std::string_view CsIdMapTypeName(uint8_t v);

// KEMAC encryption algorithm (RFC 3830 Table 6.2.a, RFC 6043 Table 6.5).
enum class EncrAlg : uint8_t { kNull = 0, kAesCm128 = 1, kAesKw128 = 2, kAesCm256 = 3 };
bool IsKnownEncrAlg(uint8_t v);
std::string_view EncrAlgName(uint8_t v);

// MAC algorithm (KEMAC and V; RFC 3830 Table 6.2.b, RFC 6043 Table 6.6).
enum class MacAlg : uint8_t { kNull = 0, kHmacSha1_160 = 1, kHmacSha256_256 = 2 };
bool IsKnownMacAlg(uint8_t v);
std::string_view MacAlgName(uint8_t v);
size_t MacLength(MacAlg alg);  // 0, 20, 32

// Timestamp type (RFC 3830 Table 6.6, RFC 6043 Table 6.8).
enum class TsType : uint8_t { kNtpUtc = 0, kNtp = 1, kCounter = 2, kNtpUtc32 = 3 };
bool IsKnownTsType(uint8_t v);
std::string_view TsTypeName(uint8_t v);
size_t TsLength(TsType type);  // 8 or 4

// TS role (TR payload, RFC 6043 Table 6.9).
enum class TsRole : uint8_t { kIssue = 1, kStart = 2, kEnd = 3, kRekeying = 4 };
bool IsKnownTsRole(uint8_t v);
std::string_view TsRoleName(uint8_t v);

// ID type (RFC 3830 Table 6.7.a, RFC 6043 Table 6.10).
enum class IdType : uint8_t { kNai = 0, kUri = 1, kByteString = 2 };
bool IsKnownIdType(uint8_t v);
std::string_view IdTypeName(uint8_t v);

// ID role (IDR payload, RFC 6043 Table 6.11, RFC 6509 §4.4).
enum class IdRole : uint8_t {
  kInitiator = 1,
  kResponder = 2,
  kKms = 3,
  kPsk = 4,
  kApplication = 5,
  kInitiatorKms = 6,
  kResponderKms = 7,
};
bool IsKnownIdRole(uint8_t v);
std::string_view IdRoleName(uint8_t v);

// RAND role (RANDR payload, RFC 6043 Table 6.13).
enum class RandRole : uint8_t { kInitiator = 1, kResponder = 2, kKms = 3 };
bool IsKnownRandRole(uint8_t v);
std::string_view RandRoleName(uint8_t v);

// Certificate type (RFC 3830 Table 6.7.b).
enum class CertType : uint8_t { kX509v3 = 0, kX509v3Url = 1, kX509v3Sign = 2, kX509v3Encr = 3 };
bool IsKnownCertType(uint8_t v);
std::string_view CertTypeName(uint8_t v);

// Hash function (CHASH; RFC 3830 Table 6.8, RFC 6043 Table 6.12).
enum class HashFunc : uint8_t { kSha1 = 0, kMd5 = 1, kSha256 = 2 };
bool IsKnownHashFunc(uint8_t v);
std::string_view HashFuncName(uint8_t v);
size_t HashLength(HashFunc f);  // 20, 16, 32

// Signature type (SIGN; RFC 3830 Table 6.5, RFC 6509 Table 6).
enum class SignType : uint8_t { kRsaPkcs1 = 0, kRsaPss = 1, kEccsi = 2 };
bool IsKnownSignType(uint8_t v);
std::string_view SignTypeName(uint8_t v);

// DH group (RFC 3830 Table 6.4).
enum class DhGroup : uint8_t { kOakley5 = 0, kOakley1 = 1, kOakley2 = 2 };
bool IsKnownDhGroup(uint8_t v);
std::string_view DhGroupName(uint8_t v);
size_t DhValueLength(DhGroup g);  // 192, 96, 128

// Key validity type (RFC 3830 Table 6.13.b).
enum class KvType : uint8_t { kNull = 0, kSpi = 1, kInterval = 2 };
bool IsKnownKvType(uint8_t v);
std::string_view KvTypeName(uint8_t v);

// Key data type (RFC 3830 Table 6.13.a, RFC 6043 Table 6.7).
enum class KeyType : uint8_t {
  kTgk = 0,
  kTgkSalt = 1,
  kTek = 2,
  kTekSalt = 3,
  kGtgk = 4,
  kGtgkSalt = 5,
  kMpk = 6,
};
bool IsKnownKeyType(uint8_t v);
std::string_view KeyTypeName(uint8_t v);
bool KeyTypeHasSalt(KeyType t);

// Error number (ERR; RFC 3830 Table 6.12, RFC 4738, RFC 6043 Table 6.14).
enum class ErrorNo : uint8_t {
  kAuthFailure = 0,
  kInvalidTs = 1,
  kInvalidPrf = 2,
  kInvalidMac = 3,
  kInvalidEa = 4,
  kInvalidHa = 5,
  kInvalidDh = 6,
  kInvalidId = 7,
  kInvalidCert = 8,
  kInvalidSp = 9,
  kInvalidSpPar = 10,
  kInvalidDt = 11,
  kUnspecified = 12,
  kUnsupportedMessage = 13,
  kInvalidTicket = 14,
  kInvalidTpPar = 15,
};
bool IsKnownErrorNo(uint8_t v);
std::string_view ErrorNoName(uint8_t v);

// PKE cache indicator C (RFC 3830 Table 6.3): 0 no cache, 1 cache, 2 cache for CSB.
bool IsKnownPkeCache(uint8_t v);

// General Extension type (RFC 3830 Table 6.15, RFC 4563, RFC 4738, RFC 5410).
enum class GeneralExtType : uint8_t {
  kVendorId = 0,
  kSdpIds = 1,
  kTeslaIKey = 2,
  kKeyId = 3,
  kCsbId = 4,
  kOmaBcast = 5,
};
bool IsKnownGeneralExtType(uint8_t v);
std::string_view GeneralExtTypeName(uint8_t v);

// SP protocol type (RFC 3830 Table 6.10): 0 = SRTP.
bool IsKnownProtType(uint8_t v);
std::string_view ProtTypeName(uint8_t v);

// SAKKE params and ID scheme (RFC 6509 Tables 4 and 5).
bool IsKnownSakkeParams(uint8_t v);
bool IsKnownSakkeIdScheme(uint8_t v);

// Ticket type (RFC 6043 Table 6.15): 1 MIKEY base ticket, 2 3GPP base ticket.
enum class TicketType : uint16_t { kMikeyBase = 1, k3gppBase = 2 };
bool IsKnownTicketType(uint16_t v);
std::string_view TicketTypeName(uint16_t v);
// RFC 6043 Appendix A: subtype and version of the MIKEY base ticket.
inline constexpr uint8_t kBaseTicketSubtype = 0x01;
inline constexpr uint8_t kBaseTicketVersion = 0x01;

// HDR version (RFC 3830 §6.1).
inline constexpr uint8_t kMikeyVersion = 1;

}  // namespace tkms::mikey
