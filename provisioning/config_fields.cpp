// The configuration loader's typed field readers, string rules and
// certificate checks: see config_reader.h and docs/config.md.
#include <cmath>
#include <string>

#include "firmware/json/bounded_json.h"
#include "firmware/pki/x509.h"
#include "provisioning/config_reader.h"

namespace tkms::provisioning::internal {
namespace {

constexpr size_t kMaxIdentityBytes = 255;  // the rule of `tkmsctl user add --id`
constexpr size_t kMaxPathBytes = 4095;     // PATH_MAX - 1
constexpr size_t kMaxTokenSpecBytes = 1024;
constexpr size_t kMaxPolicyNameBytes = 64;
constexpr size_t kMaxDnsNameBytes = 253;
constexpr size_t kMaxDnsLabelBytes = 63;

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}


}  // namespace

Status Invalid(std::string_view path, std::string_view problem) {
  std::string message = json::PathOrRoot(path);
  message += ": ";
  message += problem;
  return InvalidArgument(std::move(message));
}

Status WrongType(const std::string& path, const char* expected, const Json& value) {
  return Invalid(path, std::string("expected ") + expected + ", got " + json::TypeName(value));
}

// The member `key` of `object`, or nullptr.
const Json* Member(const Json& object, const char* key) {
  const auto& members = object.get_ref<const Json::object_t&>();
  const auto it = members.find(key);
  return it == members.end() ? nullptr : &it->second;
}

// `value` must be an object whose keys are all in `known`.
Status CheckObject(const Json& value, const std::string& path, std::initializer_list<const char*> known) {
  if (!value.is_object()) return WrongType(path, "an object", value);
  for (const auto& member : value.get_ref<const Json::object_t&>()) {
    bool found = false;
    for (const char* name : known) found = found || member.first == name;
    if (!found) {
      std::string expected;
      for (const char* name : known) expected += std::string(expected.empty() ? "" : ", ") + name;
      return Invalid(KeyPath(path, member.first), "unknown key (expected one of: " + expected + ")");
    }
  }
  return Status::Ok();
}

Status ParseUnsignedValue(const Json& value, const std::string& path, uint64_t min, uint64_t max, uint64_t& out) {
  const std::string range = " is out of range " + std::to_string(min) + ".." + std::to_string(max);
  // The parser turns integers beyond 64 bits into floating point.
  if (value.is_number_float() && std::fabs(value.get<double>()) >= 0x1p63) {
    return Invalid(path, "a number beyond 64 bits" + range);
  }
  if (!value.is_number_integer()) return WrongType(path, "an integer", value);
  if (!value.is_number_unsigned() && value.get<int64_t>() < 0) {
    return Invalid(path, std::to_string(value.get<int64_t>()) + range);
  }
  const auto number = value.is_number_unsigned() ? value.get<uint64_t>() : static_cast<uint64_t>(value.get<int64_t>());
  if (number < min || number > max) return Invalid(path, std::to_string(number) + range);
  out = number;
  return Status::Ok();
}

Status ReadBool(const Json& object, const std::string& path, const char* key, bool& out) {
  const Json* value = Member(object, key);
  if (value == nullptr) return Status::Ok();
  if (!value->is_boolean()) return WrongType(KeyPath(path, key), "a boolean", *value);
  out = value->get<bool>();
  return Status::Ok();
}

Status ParseString(const Json& value, const std::string& path, std::string& out) {
  if (!value.is_string()) return WrongType(path, "a string", value);
  out = value.get_ref<const std::string&>();
  return Status::Ok();
}

// ---- string rules --------------------------------------------------------------

// Identities (IDRkms, users, groups): 1..255 bytes, no space or control
// character, the same rule as `tkmsctl user add --id`.
Status CheckIdentity(std::string_view text, const std::string& path) {
  if (text.empty() || text.size() > kMaxIdentityBytes) {
    return Invalid(path, "an identity must have 1.." + std::to_string(kMaxIdentityBytes) + " bytes, this one has " +
                             std::to_string(text.size()));
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte <= 0x20 || byte == 0x7f) {
      return Invalid(path, "identity " + Quote(text) + " contains a space or control character at byte " +
                               std::to_string(i));
    }
  }
  return Status::Ok();
}

// File names: 1..4095 bytes without control characters (NUL included);
// `absolute` also wants a leading '/'.
Status CheckFileName(std::string_view text, const std::string& path, bool absolute) {
  if (text.empty()) return Invalid(path, "must not be empty");
  if (text.size() > kMaxPathBytes) {
    return Invalid(path, "is " + std::to_string(text.size()) + " bytes; at most " + std::to_string(kMaxPathBytes));
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte == 0x7f) return Invalid(path, "contains a control character at byte " + std::to_string(i));
  }
  if (absolute && text.front() != '/') {
    return Invalid(path, "must be an absolute path (starting with '/'), got " + Quote(text));
  }
  return Status::Ok();
}

// Account names (the "user" tkmsd drops to): 1..32 bytes of the portable
// set [a-z_][a-z0-9_-]* that Debian's adduser accepts for system users.
Status CheckUserName(std::string_view text, const std::string& path) {
  constexpr size_t kMaxUserNameBytes = 32;
  if (text.empty() || text.size() > kMaxUserNameBytes) {
    return Invalid(path, "a user name must have 1.." + std::to_string(kMaxUserNameBytes) + " bytes");
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && ((c >= '0' && c <= '9') || c == '-'));
    if (!ok) return Invalid(path, "user name " + Quote(text) + " is not of the form [a-z_][a-z0-9_-]*");
  }
  return Status::Ok();
}

Status CheckTokenSpec(std::string_view text, const std::string& path) {
  if (text.empty()) return Invalid(path, "must not be empty");
  if (text.size() > kMaxTokenSpecBytes) {
    return Invalid(path, "is " + std::to_string(text.size()) + " bytes; at most " + std::to_string(kMaxTokenSpecBytes));
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte == 0x7f) return Invalid(path, "contains a control character at byte " + std::to_string(i));
  }
  return Status::Ok();
}

Status CheckPolicyName(std::string_view name, const std::string& path) {
  bool ok = !name.empty() && name.size() <= kMaxPolicyNameBytes;
  for (const char c : name) ok = ok && (IsAsciiAlnum(c) || c == '_' || c == '.' || c == '-');
  if (!ok) return Invalid(path, "a policy class name has 1..64 characters from A-Z a-z 0-9 _ . -");
  return Status::Ok();
}

namespace {

// A decimal number without sign or leading zeros, at most `max`.
std::optional<uint32_t> ParseDecimal(std::string_view digits, uint32_t max) {
  if (digits.empty() || digits.size() > 5 || (digits.size() > 1 && digits.front() == '0')) return std::nullopt;
  uint32_t value = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > max) return std::nullopt;
  return value;
}

// "A.B.C.D": dotted-quad IPv4, decimal octets without leading zeros.
std::optional<uint32_t> ParseIpv4(std::string_view address) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    const size_t dot = address.find('.');
    if ((i < 3) != (dot != std::string_view::npos)) return std::nullopt;
    const auto octet = ParseDecimal(address.substr(0, dot), 255);
    if (!octet) return std::nullopt;
    value = (value << 8) | *octet;
    address = i < 3 ? address.substr(dot + 1) : std::string_view();
  }
  return value;
}

}  // namespace

// "A.B.C.D:PORT": dotted-quad IPv4, decimal port 0..65535, no leading zeros.
std::optional<Endpoint> ParseEndpoint(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto port = ParseDecimal(text.substr(colon + 1), 65535);
  if (!port) return std::nullopt;
  const auto address = ParseIpv4(text.substr(0, colon));
  if (!address) return std::nullopt;
  return Endpoint{*address, *port};
}

namespace {

// A DNS host name: 1..253 bytes of dot-separated labels, each 1..63 of
// A-Z a-z 0-9 and '-', not starting or ending with '-' (no trailing dot).
bool IsDnsName(std::string_view host) {
  if (host.empty() || host.size() > kMaxDnsNameBytes) return false;
  size_t label = 0;
  char previous = '.';
  for (const char c : host) {
    if (c == '.') {
      if (label == 0 || previous == '-') return false;
      label = 0;
    } else if (IsAsciiAlnum(c) || c == '-') {
      if (label == 0 && c == '-') return false;
      if (++label > kMaxDnsLabelBytes) return false;
    } else {
      return false;
    }
    previous = c;
  }
  return label != 0 && previous != '-';
}

}  // namespace

// "HOST:PORT" of a Zk peer: HOST a DNS name or a dotted-quad IPv4 address (a
// host of only digits and dots must be the latter), PORT 1..65535 without
// leading zeros.
bool IsZkEndpoint(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return false;
  const auto port = ParseDecimal(text.substr(colon + 1), 65535);
  if (!port || *port == 0) return false;
  const std::string_view host = text.substr(0, colon);
  if (host.find_first_not_of("0123456789.") == std::string_view::npos) return ParseIpv4(host).has_value();
  return IsDnsName(host);
}

// ---- certificates --------------------------------------------------------------

namespace {

constexpr std::string_view kPemBegin = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kPemEnd = "-----END CERTIFICATE-----";

bool IsPemSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Exactly one PEM "CERTIFICATE" block: the BEGIN line, base64 text and line
// breaks, the END line, and nothing but white space around it (no headers,
// no second block, no other text).
bool IsOnePemCertificate(std::string_view text) {
  while (!text.empty() && IsPemSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsPemSpace(text.back())) text.remove_suffix(1);
  if (text.size() < kPemBegin.size() + kPemEnd.size()) return false;
  if (text.substr(0, kPemBegin.size()) != kPemBegin || text.substr(text.size() - kPemEnd.size()) != kPemEnd) {
    return false;
  }
  const std::string_view body = text.substr(kPemBegin.size(), text.size() - kPemBegin.size() - kPemEnd.size());
  for (const char c : body) {
    if (!IsPemSpace(c) && !IsAsciiAlnum(c) && c != '+' && c != '/' && c != '=') return false;
  }
  return true;
}

// Checks the size and shape of `pem` and parses it into `chain`.
Status LoadCertificate(std::string_view pem, const std::string& path, pki::X509Chain& chain) {
  if (pem.size() > kMaxCertificatePemBytes) {
    return Invalid(path, "is " + std::to_string(pem.size()) + " bytes; at most " +
                             std::to_string(kMaxCertificatePemBytes) + " (kMaxCertificatePemBytes)");
  }
  if (!IsOnePemCertificate(pem)) {
    return Invalid(path, "not a PEM certificate (expected exactly one \"-----BEGIN CERTIFICATE-----\" ... "
                         "\"-----END CERTIFICATE-----\" block)");
  }
  return chain.AddPem(pem, path, kMaxCertificatePemBytes, 1);
}

}  // namespace

Status ReadCertificate(const Json& value, const std::string& path, bool must_be_ca, std::string& out) {
  TKMS_RETURN_IF_ERROR(ParseString(value, path, out));
  pki::X509Chain chain;
  TKMS_RETURN_IF_ERROR(LoadCertificate(out, path, chain));
  if (must_be_ca && chain.front().native().ca_istrue == 0) {
    return Invalid(path, "not a CA certificate (a ca needs basicConstraints with CA=true; "
                         "give the peer's own certificate as \"certificate\")");
  }
  return Status::Ok();
}

namespace {

Status LoadCertificateChain(std::string_view pem, const std::string& path, pki::X509Chain& chain) {
  constexpr size_t kMaxBytes = kMaxCertificatePemBytes * kMaxKmsCertificateChain;
  if (pem.size() > kMaxBytes) {
    return Invalid(path, "is " + std::to_string(pem.size()) + " bytes; at most " + std::to_string(kMaxBytes));
  }
  return chain.AddPem(pem, path, kMaxBytes, kMaxKmsCertificateChain);
}

Status CheckValidAt(const pki::CertificateRef& crt, const std::string& path, std::time_t now) {
  if (now < crt.not_before()) return Invalid(path, "not valid before " + pki::FormatUtcTime(crt.not_before()));
  if (now > crt.not_after()) return Invalid(path, "expired on " + pki::FormatUtcTime(crt.not_after()));
  return Status::Ok();
}

}  // namespace

Status CheckCertificateDate(std::string_view pem, const std::string& path, std::time_t now) {
  pki::X509Chain chain;
  TKMS_RETURN_IF_ERROR(LoadCertificate(pem, path, chain));
  return CheckValidAt(chain.front(), path, now);
}

Status ReadCertificateChain(const Json& value, const std::string& path, std::string& out) {
  TKMS_RETURN_IF_ERROR(ParseString(value, path, out));
  if (out.empty()) return Status::Ok();  // "" = not set (the canonical form writes it)
  pki::X509Chain chain;
  return LoadCertificateChain(out, path, chain);
}

Status CheckCertificateChainDate(std::string_view pem, const std::string& path, std::time_t now) {
  pki::X509Chain chain;
  TKMS_RETURN_IF_ERROR(LoadCertificateChain(pem, path, chain));
  return CheckValidAt(chain.front(), path, now);
}

}  // namespace tkms::provisioning::internal
