// The strict JSON loader of KmsConfig (docs/config.md).
//
// Two steps. BoundedDomBuilder, a SAX handler for nlohmann's (iterative)
// parser, builds the JSON tree and stops the parser as soon as a container
// would nest deeper than kMaxConfigDepth or an object repeats a key, so a
// hostile document is refused before it is built. Then the tree is read
// section by section into a KmsConfig; every reader knows the JSON path of
// what it reads, and the first problem found is returned. Nothing here
// recurses on input, and every message is printable ASCII: text taken from
// the document is quoted, escaped and shortened (Quote()).
//
// A document's role (ConfigRole) decides which top-level sections it may
// hold; it is checked before any section is read. Certificates are checked
// for their PEM shape here and parsed with mbedTLS; their dates are checked
// only by CheckCertificateDates, so that parsing never depends on the clock.
#include "provisioning/config.h"
#include "provisioning/messages.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <new>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <mbedtls/error.h>
#include <mbedtls/x509_crt.h>
#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"

namespace tkms::provisioning {
namespace {

using Json = nlohmann::json;
using internal::AppendEscaped;
using internal::DescribeParseError;
using internal::kMaxDetailBytes;
using internal::kMaxQuotedBytes;
using internal::Quote;

constexpr size_t kMaxIdentityBytes = 255;  // the rule of `tkmsctl user add --id`
constexpr size_t kMaxPathBytes = 4095;     // PATH_MAX - 1
constexpr size_t kMaxTokenSpecBytes = 1024;
constexpr size_t kMaxPolicyNameBytes = 64;
constexpr size_t kMaxPskIdBytes = 64;
constexpr uint64_t kMaxLifetimeS = 31536000;  // 365 days
constexpr size_t kMaxDnsNameBytes = 253;
constexpr size_t kMaxDnsLabelBytes = 63;
// Room kept in a bundle's canonical form for the local sections that
// CombineConfig puts in: their canonical JSON is at most about 27 KiB (four
// strings of at most 4095 or 1024 bytes without control characters, each
// byte written as at most 2, plus small fixed-size fields).
constexpr size_t kLocalSectionsReserveBytes = 32768;

// ---- messages ----------------------------------------------------------------



bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Keys written as ".key" in a path; any other key is written ['key'].
bool IsPlainKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxQuotedBytes) return false;
  for (const char c : key) {
    if (!IsAsciiAlnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

// JSON paths: "" is the document itself (written "$"), "http.max_body_bytes",
// "users[2].identities[0]", "policy_classes['gold.v2'].max_keys".
std::string KeyPath(std::string_view parent, std::string_view key) {
  std::string out(parent);
  if (IsPlainKey(key)) {
    if (!out.empty()) out += '.';
    out += key;
  } else {
    if (out.empty()) out = "$";
    out += '[';
    out += Quote(key);
    out += ']';
  }
  return out;
}

std::string IndexPath(std::string_view parent, size_t index) {
  std::string out = parent.empty() ? std::string("$") : std::string(parent);
  out += '[';
  out += std::to_string(index);
  out += ']';
  return out;
}

Status Invalid(std::string_view path, std::string_view problem) {
  std::string message = path.empty() ? std::string("$") : std::string(path);
  message += ": ";
  message += problem;
  return InvalidArgument(std::move(message));
}


// ---- parsing: a bounded SAX tree builder --------------------------------------

// Builds the tree like nlohmann's own DOM parser, and in addition refuses
// nesting deeper than kMaxConfigDepth and duplicate object keys while the
// parser runs. Error paths are rendered only when an error happens.
class BoundedDomBuilder {
 public:
  using number_integer_t = Json::number_integer_t;
  using number_unsigned_t = Json::number_unsigned_t;
  using number_float_t = Json::number_float_t;
  using string_t = Json::string_t;
  using binary_t = Json::binary_t;

  explicit BoundedDomBuilder(std::string_view text) : text_(text) {}

  bool null() { return Add(Json(nullptr)) != nullptr; }
  bool boolean(bool value) { return Add(Json(value)) != nullptr; }
  bool number_integer(number_integer_t value) { return Add(Json(value)) != nullptr; }
  bool number_unsigned(number_unsigned_t value) { return Add(Json(value)) != nullptr; }
  bool number_float(number_float_t value, const string_t& /*text*/) { return Add(Json(value)) != nullptr; }
  bool string(string_t& value) { return Add(Json(std::move(value))) != nullptr; }
  bool binary(binary_t& /*value*/) {  // only binary formats (CBOR, ...) produce these
    error_ = Invalid(Path(), "binary values are not JSON");
    return false;
  }
  bool start_object(size_t /*elements*/) { return Open(Json::value_t::object); }
  bool start_array(size_t /*elements*/) { return Open(Json::value_t::array); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }

  bool key(string_t& name) {
    const auto& object = open_.back().node->get_ref<const Json::object_t&>();
    if (object.find(name) != object.end()) {
      error_ = Invalid(KeyPath(Path(), name), "duplicate key");
      return false;
    }
    key_ = std::move(name);
    return true;
  }

  bool parse_error(size_t position, const std::string& /*last_token*/, const Json::exception& exception) {
    // `position` counts the bytes read, the offending one included.
    size_t offset = position == 0 ? 0 : position - 1;
    if (offset > text_.size()) offset = text_.size();
    size_t line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < offset; ++i) {
      if (text_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    error_ = Invalid(Path(), "JSON syntax error at byte offset " + std::to_string(offset) + " (line " +
                                 std::to_string(line) + ", column " + std::to_string(offset - line_start + 1) +
                                 "): " + DescribeParseError(exception.what()));
    return false;
  }

  Json& root() { return root_; }
  Status error() const { return error_; }

 private:
  // Where an open container sits in its parent.
  struct Segment {
    enum class Kind { kRoot, kKey, kIndex } kind = Kind::kRoot;
    std::string key;  // kKey: cut to kMaxQuotedBytes + 1 bytes (renders the same)
    size_t index = 0;  // kIndex
  };
  struct Frame {
    Json* node;
    Segment segment;
  };

  static std::string Render(std::string path, const Segment& segment) {
    switch (segment.kind) {
      case Segment::Kind::kRoot: return path;
      case Segment::Kind::kKey: return KeyPath(path, segment.key);
      case Segment::Kind::kIndex: return IndexPath(path, segment.index);
    }
    return path;
  }

  // The path of the innermost open container.
  std::string Path() const {
    std::string path;
    for (const Frame& frame : open_) path = Render(std::move(path), frame.segment);
    return path;
  }

  // Where the next value will go.
  Segment NextSegment() const {
    Segment segment;
    if (open_.empty()) return segment;
    const Json& parent = *open_.back().node;
    if (parent.is_array()) {
      segment.kind = Segment::Kind::kIndex;
      segment.index = parent.size();
    } else {
      segment.kind = Segment::Kind::kKey;
      segment.key = key_.substr(0, kMaxQuotedBytes + 1);
    }
    return segment;
  }

  Json* Add(Json&& value) {
    if (open_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    Json& parent = *open_.back().node;
    if (parent.is_array()) {
      auto& array = parent.get_ref<Json::array_t&>();
      array.push_back(std::move(value));
      return &array.back();
    }
    auto& object = parent.get_ref<Json::object_t&>();
    auto inserted = object.emplace(std::move(key_), std::move(value));
    return &inserted.first->second;
  }

  bool Open(Json::value_t type) {
    Segment segment = NextSegment();
    if (open_.size() >= kMaxConfigDepth) {
      error_ = Invalid(Render(Path(), segment),
                       "nested deeper than " + std::to_string(kMaxConfigDepth) + " levels (kMaxConfigDepth)");
      return false;
    }
    Json* node = Add(Json(type));
    open_.push_back(Frame{node, std::move(segment)});
    return true;
  }

  bool Close() {
    open_.pop_back();
    return true;
  }

  std::string_view text_;
  Json root_;
  std::vector<Frame> open_;  // pointers stay valid: only the innermost container grows
  std::string key_;
  Status error_;
};

// ---- reading the tree: typed fields -------------------------------------------

const char* TypeName(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "an integer";
    case Json::value_t::number_float: return "a number with a fraction or exponent";
    case Json::value_t::binary:
    case Json::value_t::discarded: break;
  }
  return "an unsupported value";
}

Status WrongType(const std::string& path, const char* expected, const Json& value) {
  return Invalid(path, std::string("expected ") + expected + ", got " + TypeName(value));
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

template <typename T>
Status ParseUnsigned(const Json& value, const std::string& path, uint64_t min, uint64_t max, T& out) {
  static_assert(std::is_unsigned_v<T>);
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
  out = static_cast<T>(number);
  return Status::Ok();
}

// Optional integer member: absent keeps `out`.
template <typename T>
Status ReadUnsigned(const Json& object, const std::string& path, const char* key, uint64_t min, uint64_t max,
                    T& out) {
  const Json* value = Member(object, key);
  if (value == nullptr) return Status::Ok();
  return ParseUnsigned(*value, KeyPath(path, key), min, max, out);
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

// ---- reading the tree: string rules -------------------------------------------

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

struct Endpoint {
  uint32_t address = 0;
  uint32_t port = 0;
};

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

// ---- certificates -------------------------------------------------------------

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

// An mbedTLS certificate chain that frees itself.
class X509Certificate {
 public:
  X509Certificate() { mbedtls_x509_crt_init(&crt_); }
  ~X509Certificate() { mbedtls_x509_crt_free(&crt_); }
  X509Certificate(const X509Certificate&) = delete;
  X509Certificate& operator=(const X509Certificate&) = delete;

  // 0, or what mbedtls_x509_crt_parse returned.
  int Parse(std::string_view pem) {
    // mbedTLS reads PEM only from a NUL-terminated buffer, the NUL counted.
    const std::string terminated(pem);
    return mbedtls_x509_crt_parse(&crt_, reinterpret_cast<const unsigned char*>(terminated.c_str()),
                                  terminated.size() + 1);
  }
  const mbedtls_x509_crt& get() const { return crt_; }

 private:
  mbedtls_x509_crt crt_;
};

// mbedTLS's description of an error code, escaped and shortened.
std::string DescribeMbedtlsError(int code) {
  if (code > 0) return "mbedTLS refused it";  // a count of failed certificates
  return internal::MbedtlsErrorText(code);
}

// Checks the size and shape of `pem` and parses it into `crt`.
Status LoadCertificate(std::string_view pem, const std::string& path, X509Certificate& crt) {
  if (pem.size() > kMaxCertificatePemBytes) {
    return Invalid(path, "is " + std::to_string(pem.size()) + " bytes; at most " +
                             std::to_string(kMaxCertificatePemBytes) + " (kMaxCertificatePemBytes)");
  }
  if (!IsOnePemCertificate(pem)) {
    return Invalid(path, "not a PEM certificate (expected exactly one \"-----BEGIN CERTIFICATE-----\" ... "
                         "\"-----END CERTIFICATE-----\" block)");
  }
  if (const int ret = crt.Parse(pem); ret != 0) return Invalid(path, "does not parse: " + DescribeMbedtlsError(ret));
  return Status::Ok();
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// days_from_civil).
int64_t DaysFromCivil(int64_t year, int64_t month, int64_t day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

// Seconds since the epoch of a certificate time (UTC; mbedTLS has checked
// the fields' ranges, years 0..9999).
int64_t EpochSeconds(const mbedtls_x509_time& t) {
  return DaysFromCivil(t.year, t.mon, t.day) * 86400 + int64_t{t.hour} * 3600 + int64_t{t.min} * 60 + t.sec;
}

std::string FormatTime(const mbedtls_x509_time& t) {
  char text[48];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02dZ", t.year, t.mon, t.day, t.hour, t.min, t.sec);
  return text;
}

Status CheckCertificateDate(std::string_view pem, const std::string& path, std::time_t now) {
  X509Certificate crt;
  TKMS_RETURN_IF_ERROR(LoadCertificate(pem, path, crt));
  const auto at = static_cast<int64_t>(now);
  const mbedtls_x509_crt& parsed = crt.get();
  if (at < EpochSeconds(parsed.valid_from)) return Invalid(path, "not valid before " + FormatTime(parsed.valid_from));
  if (at > EpochSeconds(parsed.valid_to)) return Invalid(path, "expired on " + FormatTime(parsed.valid_to));
  return Status::Ok();
}

// ---- reading the tree: sections -------------------------------------------------

Status ReadEndpoint(const Json& object, const std::string& path, const char* key, std::string& out,
                    Endpoint& endpoint) {
  const Json* value = Member(object, key);
  const std::string field = KeyPath(path, key);
  if (value != nullptr) TKMS_RETURN_IF_ERROR(ParseString(*value, field, out));
  const auto parsed = ParseEndpoint(out);
  if (!parsed) {
    return Invalid(field, "expected \"ADDRESS:PORT\" with a dotted-quad IPv4 address and a port 0..65535, "
                          "no leading zeros (e.g. \"127.0.0.1:8080\"), got " + Quote(out));
  }
  endpoint = *parsed;
  return Status::Ok();
}

Status ReadListen(const Json* value, ListenConfig& out) {
  const std::string path = "listen";
  if (value != nullptr) TKMS_RETURN_IF_ERROR(CheckObject(*value, path, {"ua", "admin"}));
  const Json empty = Json::object();
  const Json& object = value != nullptr ? *value : empty;
  Endpoint ua;
  Endpoint admin;
  TKMS_RETURN_IF_ERROR(ReadEndpoint(object, path, "ua", out.ua, ua));
  TKMS_RETURN_IF_ERROR(ReadEndpoint(object, path, "admin", out.admin, admin));
  // Both sockets cannot bind the same port on overlapping addresses.
  if (ua.port != 0 && ua.port == admin.port &&
      (ua.address == admin.address || ua.address == 0 || admin.address == 0)) {
    return Invalid("listen.admin", Quote(out.admin) + " conflicts with listen.ua " + Quote(out.ua) +
                                       " (same port on overlapping addresses)");
  }
  return Status::Ok();
}

Status ReadHttp(const Json& value, HttpConfig& out) {
  const std::string path = "http";
  TKMS_RETURN_IF_ERROR(
      CheckObject(value, path, {"max_body_bytes", "worker_threads", "request_timeout_ms", "keep_alive_timeout_ms"}));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_body_bytes", 256, 1048576, out.max_body_bytes));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "worker_threads", 1, 256, out.worker_threads));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "request_timeout_ms", 100, 600000, out.request_timeout_ms));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "keep_alive_timeout_ms", 0, 600000, out.keep_alive_timeout_ms));
  return Status::Ok();
}

Status ReadToken(const Json* value, TokenConfig& out) {
  const std::string path = "token";
  if (value == nullptr) return Invalid("token.pin_file", "required field is missing");
  TKMS_RETURN_IF_ERROR(CheckObject(
      *value, path, {"module_path", "token", "pin_file", "softhsm2_conf", "sessions", "health_check_interval_ms"}));
  if (const Json* v = Member(*value, "module_path"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ParseString(*v, "token.module_path", out.module_path));
    TKMS_RETURN_IF_ERROR(CheckFileName(out.module_path, "token.module_path", true));
  }
  if (const Json* v = Member(*value, "token"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ParseString(*v, "token.token", out.token));
    TKMS_RETURN_IF_ERROR(CheckTokenSpec(out.token, "token.token"));
  }
  const Json* pin_file = Member(*value, "pin_file");
  if (pin_file == nullptr) return Invalid("token.pin_file", "required field is missing");
  TKMS_RETURN_IF_ERROR(ParseString(*pin_file, "token.pin_file", out.pin_file));
  TKMS_RETURN_IF_ERROR(CheckFileName(out.pin_file, "token.pin_file", false));
  if (const Json* v = Member(*value, "softhsm2_conf"); v != nullptr) {
    std::string conf;
    TKMS_RETURN_IF_ERROR(ParseString(*v, "token.softhsm2_conf", conf));
    TKMS_RETURN_IF_ERROR(CheckFileName(conf, "token.softhsm2_conf", false));
    out.softhsm2_conf = std::move(conf);
  }
  TKMS_RETURN_IF_ERROR(ReadUnsigned(*value, path, "sessions", 1, 64, out.sessions));
  TKMS_RETURN_IF_ERROR(
      ReadUnsigned(*value, path, "health_check_interval_ms", 100, 60000, out.health_check_interval_ms));
  return Status::Ok();
}

Status ReadMikey(const Json& value, MikeyConfig& out) {
  const std::string path = "mikey";
  TKMS_RETURN_IF_ERROR(
      CheckObject(value, path, {"timestamp_window_s", "replay_cache_entries", "kemac_iv_timestamp"}));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "timestamp_window_s", 1, 3600, out.timestamp_window_s));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "replay_cache_entries", 1, 10000000, out.replay_cache_entries));
  if (const Json* iv = Member(value, "kemac_iv_timestamp")) {
    const std::string iv_path = KeyPath(path, "kemac_iv_timestamp");
    std::string text;
    TKMS_RETURN_IF_ERROR(ParseString(*iv, iv_path, text));
    if (text == "response") {
      out.kemac_iv_timestamp = KemacIvTimestamp::kResponse;
    } else if (text == "request") {
      out.kemac_iv_timestamp = KemacIvTimestamp::kRequest;
    } else {
      return Invalid(iv_path, "must be \"response\" or \"request\"");
    }
  }
  return Status::Ok();
}

Status ReadPolicyClass(const Json& value, const std::string& path, PolicyClass& out) {
  TKMS_RETURN_IF_ERROR(CheckObject(value, path,
                                   {"default_lifetime_s", "max_lifetime_s", "allow_reuse", "allow_forking",
                                    "allow_initiator_keys", "allow_responder_keys", "max_responders", "max_keys",
                                    "allow_request", "allow_resolve", "kemac_encryption"}));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "default_lifetime_s", 1, kMaxLifetimeS, out.default_lifetime_s));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_lifetime_s", 1, kMaxLifetimeS, out.max_lifetime_s));
  if (out.default_lifetime_s > out.max_lifetime_s) {
    const bool given = Member(value, "default_lifetime_s") != nullptr;
    return Invalid(KeyPath(path, "default_lifetime_s"),
                   std::to_string(out.default_lifetime_s) + (given ? "" : " (the default)") +
                       " is more than max_lifetime_s (" + std::to_string(out.max_lifetime_s) + ")");
  }
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_reuse", out.allow_reuse));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_forking", out.allow_forking));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_initiator_keys", out.allow_initiator_keys));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_responder_keys", out.allow_responder_keys));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_responders", 1, 256, out.max_responders));
  TKMS_RETURN_IF_ERROR(ReadUnsigned(value, path, "max_keys", 1, 16, out.max_keys));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_request", out.allow_request));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_resolve", out.allow_resolve));
  if (const Json* kemac = Member(value, "kemac_encryption")) {
    const std::string kemac_path = KeyPath(path, "kemac_encryption");
    std::string text;
    TKMS_RETURN_IF_ERROR(ParseString(*kemac, kemac_path, text));
    if (text == "auto") {
      out.kemac_encryption = KemacEncryption::kAuto;
    } else if (text == "aes-cm-128") {
      out.kemac_encryption = KemacEncryption::kAesCm128;
    } else if (text == "aes-cm-256") {
      out.kemac_encryption = KemacEncryption::kAesCm256;
    } else {
      return Invalid(kemac_path, "must be \"auto\", \"aes-cm-128\" or \"aes-cm-256\"");
    }
  }
  return Status::Ok();
}

Status ReadPolicyClasses(const Json* value, std::map<std::string, PolicyClass>& out) {
  const std::string path = "policy_classes";
  if (value == nullptr) {
    out.emplace("default", PolicyClass{});
    return Status::Ok();
  }
  if (!value->is_object()) return WrongType(path, "an object", *value);
  for (const auto& [name, body] : value->get_ref<const Json::object_t&>()) {
    const std::string class_path = KeyPath(path, name);
    TKMS_RETURN_IF_ERROR(CheckPolicyName(name, class_path));
    PolicyClass policy;
    TKMS_RETURN_IF_ERROR(ReadPolicyClass(body, class_path, policy));
    out.emplace(name, policy);
  }
  return Status::Ok();
}

// Where each identity is used, for the cross-checks of users, groups and
// KMS URIs.
struct IdentityIndex {
  std::unordered_map<std::string, size_t> user_of;      // identity -> users[i]
  std::unordered_map<std::string, size_t> group_of;     // identity -> groups[i]
  std::unordered_map<std::string, std::string> kms_of;  // kms_uri -> "trust_relations[i]" or "external_kms[i]"
};

Status ReadKrrPolicy(const Json& value, KrrPolicyConfig& out) {
  const std::string path = "krr_policy";
  TKMS_RETURN_IF_ERROR(CheckObject(value, path,
                                   {"allow_krr", "report_krr", "require_signed_krr",
                                    "request_unknown_kms_certificates", "hold_until_kms_acceptance"}));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "allow_krr", out.allow_krr));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "report_krr", out.report_krr));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "require_signed_krr", out.require_signed_krr));
  TKMS_RETURN_IF_ERROR(
      ReadBool(value, path, "request_unknown_kms_certificates", out.request_unknown_kms_certificates));
  TKMS_RETURN_IF_ERROR(ReadBool(value, path, "hold_until_kms_acceptance", out.hold_until_kms_acceptance));
  return Status::Ok();
}

// The required "kms_uri" of trust_relations[i] or external_kms[i] (`path`):
// an identity, not kms_identity, and no other entry's.
Status ReadKmsUri(const Json& entry, const std::string& path, const KmsConfig& config, IdentityIndex& identities,
                  std::string& out) {
  const std::string uri_path = KeyPath(path, "kms_uri");
  const Json* uri = Member(entry, "kms_uri");
  if (uri == nullptr) return Invalid(uri_path, "required field is missing");
  TKMS_RETURN_IF_ERROR(ParseString(*uri, uri_path, out));
  TKMS_RETURN_IF_ERROR(CheckIdentity(out, uri_path));
  if (out == config.kms_identity) return Invalid(uri_path, Quote(out) + " is kms_identity");
  const auto [it, inserted] = identities.kms_of.emplace(out, path);
  if (!inserted) return Invalid(uri_path, Quote(out) + " is already the kms_uri of " + it->second);
  return Status::Ok();
}

// The certificate `value` at `path`: PEM text of one CERTIFICATE block that
// mbedTLS parses; with `must_be_ca`, a CA certificate.
Status ReadCertificate(const Json& value, const std::string& path, bool must_be_ca, std::string& out) {
  TKMS_RETURN_IF_ERROR(ParseString(value, path, out));
  X509Certificate crt;
  TKMS_RETURN_IF_ERROR(LoadCertificate(out, path, crt));
  if (must_be_ca && crt.get().ca_istrue == 0) {
    return Invalid(path, "not a CA certificate (a ca needs basicConstraints with CA=true; "
                         "give the peer's own certificate as \"certificate\")");
  }
  return Status::Ok();
}

Status ReadTrustRelations(const Json* value, KmsConfig& config, IdentityIndex& identities) {
  if (value == nullptr) return Status::Ok();
  if (!value->is_array()) return WrongType("trust_relations", "an array", *value);
  if (value->size() > kMaxTrustRelations) {
    return Invalid("trust_relations", std::to_string(value->size()) + " entries; at most " +
                                          std::to_string(kMaxTrustRelations) + " (kMaxTrustRelations)");
  }
  config.trust_relations.reserve(value->size());
  for (size_t i = 0; i < value->size(); ++i) {
    const Json& entry = (*value)[i];
    const std::string path = IndexPath("trust_relations", i);
    TKMS_RETURN_IF_ERROR(CheckObject(entry, path, {"kms_uri", "endpoint", "certificate", "ca"}));
    TrustRelationConfig out;
    TKMS_RETURN_IF_ERROR(ReadKmsUri(entry, path, config, identities, out.kms_uri));
    const std::string endpoint_path = KeyPath(path, "endpoint");
    const Json* endpoint = Member(entry, "endpoint");
    if (endpoint == nullptr) return Invalid(endpoint_path, "required field is missing");
    TKMS_RETURN_IF_ERROR(ParseString(*endpoint, endpoint_path, out.endpoint));
    if (!IsZkEndpoint(out.endpoint)) {
      return Invalid(endpoint_path, "expected \"HOST:PORT\" with a DNS name or a dotted-quad IPv4 address and a "
                                    "port 1..65535, no leading zeros (e.g. \"kms.example.net:8443\"), got " +
                                        Quote(out.endpoint));
    }
    const Json* certificate = Member(entry, "certificate");
    const Json* ca = Member(entry, "ca");
    if (certificate != nullptr && ca != nullptr) {
      return Invalid(KeyPath(path, "ca"), "give either certificate (the peer's) or ca (its issuer's), not both");
    }
    if (certificate == nullptr && ca == nullptr) {
      return Invalid(KeyPath(path, "certificate"),
                     "required field is missing (give certificate, the peer's, or ca, its issuer's)");
    }
    if (certificate != nullptr) {
      TKMS_RETURN_IF_ERROR(ReadCertificate(*certificate, KeyPath(path, "certificate"), false, out.certificate));
    } else {
      TKMS_RETURN_IF_ERROR(ReadCertificate(*ca, KeyPath(path, "ca"), true, out.ca));
    }
    config.trust_relations.push_back(std::move(out));
  }
  return Status::Ok();
}

Status ReadExternalKms(const Json* value, KmsConfig& config, IdentityIndex& identities) {
  if (value == nullptr) return Status::Ok();
  if (!value->is_array()) return WrongType("external_kms", "an array", *value);
  if (value->size() > kMaxExternalKms) {
    return Invalid("external_kms", std::to_string(value->size()) + " entries; at most " +
                                       std::to_string(kMaxExternalKms) + " (kMaxExternalKms)");
  }
  config.external_kms.reserve(value->size());
  for (size_t i = 0; i < value->size(); ++i) {
    const Json& entry = (*value)[i];
    const std::string path = IndexPath("external_kms", i);
    TKMS_RETURN_IF_ERROR(CheckObject(entry, path, {"kms_uri", "certificate"}));
    ExternalKmsConfig out;
    TKMS_RETURN_IF_ERROR(ReadKmsUri(entry, path, config, identities, out.kms_uri));
    const std::string certificate_path = KeyPath(path, "certificate");
    const Json* certificate = Member(entry, "certificate");
    if (certificate == nullptr) return Invalid(certificate_path, "required field is missing");
    TKMS_RETURN_IF_ERROR(ReadCertificate(*certificate, certificate_path, false, out.certificate));
    config.external_kms.push_back(std::move(out));
  }
  return Status::Ok();
}

// A user's primary_home_kms, secondary_home_kms or external_kms list: KMS
// URIs this configuration knows, each once.
Status ReadUserKmsList(const Json& user, const std::string& path, const char* key, const KmsConfig& config,
                       const IdentityIndex& identities, std::vector<std::string>& out) {
  const Json* list = Member(user, key);
  if (list == nullptr) return Status::Ok();
  const std::string list_path = KeyPath(path, key);
  if (!list->is_array()) return WrongType(list_path, "an array", *list);
  if (list->size() > kMaxUserKmsListEntries) {
    return Invalid(list_path, std::to_string(list->size()) + " entries; at most " +
                                  std::to_string(kMaxUserKmsListEntries) + " (kMaxUserKmsListEntries)");
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string uri_path = IndexPath(list_path, i);
    std::string uri;
    TKMS_RETURN_IF_ERROR(ParseString((*list)[i], uri_path, uri));
    TKMS_RETURN_IF_ERROR(CheckIdentity(uri, uri_path));
    if (uri != config.kms_identity && identities.kms_of.count(uri) == 0) {
      return Invalid(uri_path, Quote(uri) + " is not a known KMS (kms_identity, or the kms_uri of an entry of "
                                            "trust_relations or external_kms)");
    }
    for (size_t j = 0; j < out.size(); ++j) {
      if (out[j] == uri) {
        return Invalid(uri_path, Quote(uri) + " is listed twice (also " + IndexPath(list_path, j) + ")");
      }
    }
    out.push_back(std::move(uri));
  }
  return Status::Ok();
}

Status ReadUser(const Json& value, const std::string& path, size_t index, const KmsConfig& config,
                IdentityIndex& identities, std::unordered_map<std::string, size_t>& psk_owner, UserConfig& out) {
  TKMS_RETURN_IF_ERROR(CheckObject(
      value, path,
      {"identities", "psk_id", "policy_class", "primary_home_kms", "secondary_home_kms", "external_kms"}));
  const std::string ids_path = KeyPath(path, "identities");
  const Json* ids = Member(value, "identities");
  if (ids == nullptr) return Invalid(ids_path, "required field is missing");
  if (!ids->is_array()) return WrongType(ids_path, "an array", *ids);
  if (ids->empty()) return Invalid(ids_path, "must list at least one identity");
  for (size_t i = 0; i < ids->size(); ++i) {
    const std::string id_path = IndexPath(ids_path, i);
    std::string identity;
    TKMS_RETURN_IF_ERROR(ParseString((*ids)[i], id_path, identity));
    TKMS_RETURN_IF_ERROR(CheckIdentity(identity, id_path));
    if (identity == config.kms_identity) return Invalid(id_path, Quote(identity) + " is kms_identity");
    const auto [it, inserted] = identities.user_of.emplace(identity, index);
    if (!inserted) {
      return Invalid(id_path, it->second == index
                                  ? Quote(identity) + " is listed twice"
                                  : Quote(identity) + " already belongs to " + IndexPath("users", it->second));
    }
    out.identities.push_back(std::move(identity));
  }
  if (const Json* psk = Member(value, "psk_id"); psk != nullptr) {
    const std::string psk_path = KeyPath(path, "psk_id");
    std::string hex;
    TKMS_RETURN_IF_ERROR(ParseString(*psk, psk_path, hex));
    auto bytes = HexDecode(hex);
    if (!bytes || bytes->empty() || bytes->size() > kMaxPskIdBytes) {
      return Invalid(psk_path, "expected the CKA_ID as 1..64 bytes of hex (2..128 hex digits), got " + Quote(hex));
    }
    // Keyed by the canonical (lowercase) hex.
    const auto [it, inserted] = psk_owner.emplace(HexEncode(*bytes), index);
    if (!inserted) return Invalid(psk_path, "names the same PSK object as " + IndexPath("users", it->second));
    out.psk_id = std::move(*bytes);
  }
  if (const Json* policy = Member(value, "policy_class"); policy != nullptr) {
    const std::string policy_path = KeyPath(path, "policy_class");
    TKMS_RETURN_IF_ERROR(ParseString(*policy, policy_path, out.policy_class));
    if (out.policy_class.empty()) {
      return Invalid(policy_path, "must not be empty (omit it to use default_policy_class)");
    }
    if (config.policy_classes.count(out.policy_class) == 0) {
      return Invalid(policy_path, "no policy class named " + Quote(out.policy_class));
    }
  }
  TKMS_RETURN_IF_ERROR(ReadUserKmsList(value, path, "primary_home_kms", config, identities, out.primary_home_kms));
  TKMS_RETURN_IF_ERROR(
      ReadUserKmsList(value, path, "secondary_home_kms", config, identities, out.secondary_home_kms));
  TKMS_RETURN_IF_ERROR(ReadUserKmsList(value, path, "external_kms", config, identities, out.external_kms));
  return Status::Ok();
}

Status ReadUsers(const Json* value, KmsConfig& config, IdentityIndex& identities) {
  if (value == nullptr) return Status::Ok();
  if (!value->is_array()) return WrongType("users", "an array", *value);
  if (value->size() > kMaxUsers) {
    return Invalid("users", std::to_string(value->size()) + " entries; at most " + std::to_string(kMaxUsers));
  }
  std::unordered_map<std::string, size_t> psk_owner;
  config.users.reserve(value->size());
  for (size_t i = 0; i < value->size(); ++i) {
    UserConfig user;
    TKMS_RETURN_IF_ERROR(ReadUser((*value)[i], IndexPath("users", i), i, config, identities, psk_owner, user));
    config.users.push_back(std::move(user));
  }
  return Status::Ok();
}

// Two passes: every group identity is known before members are checked, so a
// member naming a later group is refused too.
Status ReadGroups(const Json* value, KmsConfig& config, IdentityIndex& identities) {
  if (value == nullptr) return Status::Ok();
  if (!value->is_array()) return WrongType("groups", "an array", *value);
  if (value->size() > kMaxGroups) {
    return Invalid("groups", std::to_string(value->size()) + " entries; at most " + std::to_string(kMaxGroups));
  }
  config.groups.resize(value->size());
  for (size_t g = 0; g < value->size(); ++g) {
    const Json& group = (*value)[g];
    const std::string path = IndexPath("groups", g);
    TKMS_RETURN_IF_ERROR(CheckObject(group, path, {"identity", "members"}));
    const std::string id_path = KeyPath(path, "identity");
    const Json* id = Member(group, "identity");
    if (id == nullptr) return Invalid(id_path, "required field is missing");
    std::string& identity = config.groups[g].identity;
    TKMS_RETURN_IF_ERROR(ParseString(*id, id_path, identity));
    TKMS_RETURN_IF_ERROR(CheckIdentity(identity, id_path));
    if (identity == config.kms_identity) return Invalid(id_path, Quote(identity) + " is kms_identity");
    if (const auto user = identities.user_of.find(identity); user != identities.user_of.end()) {
      return Invalid(id_path, Quote(identity) + " is an identity of " + IndexPath("users", user->second));
    }
    const auto [it, inserted] = identities.group_of.emplace(identity, g);
    if (!inserted) {
      return Invalid(id_path, Quote(identity) + " is already the identity of " + IndexPath("groups", it->second));
    }
  }
  for (size_t g = 0; g < value->size(); ++g) {
    const Json& group = (*value)[g];
    const std::string members_path = KeyPath(IndexPath("groups", g), "members");
    const Json* members = Member(group, "members");
    if (members == nullptr) return Invalid(members_path, "required field is missing");
    if (!members->is_array()) return WrongType(members_path, "an array", *members);
    if (members->empty()) return Invalid(members_path, "must list at least one member");
    std::unordered_map<std::string, size_t> seen;
    std::vector<std::string>& out = config.groups[g].members;
    for (size_t m = 0; m < members->size(); ++m) {
      const std::string member_path = IndexPath(members_path, m);
      std::string member;
      TKMS_RETURN_IF_ERROR(ParseString((*members)[m], member_path, member));
      TKMS_RETURN_IF_ERROR(CheckIdentity(member, member_path));
      if (const auto [it, inserted] = seen.emplace(member, m); !inserted) {
        return Invalid(member_path,
                       Quote(member) + " is listed twice (also " + IndexPath(members_path, it->second) + ")");
      }
      if (member == config.kms_identity) return Invalid(member_path, Quote(member) + " is kms_identity");
      if (const auto other = identities.group_of.find(member); other != identities.group_of.end()) {
        return Invalid(member_path, Quote(member) + " is the identity of " + IndexPath("groups", other->second) +
                                        "; groups cannot contain groups");
      }
      if (!config.token_users && identities.user_of.count(member) == 0) {
        return Invalid(member_path,
                       Quote(member) + " is not an identity of any entry of users (and token_users is false)");
      }
      out.push_back(std::move(member));
    }
  }
  return Status::Ok();
}

// The top-level sections and whether each is local (appliance settings) or
// provisioned (what a bundle delivers), in the order "expected one of" names
// them.
struct Section {
  const char* key;
  bool local;
};
constexpr Section kSections[] = {
    {"kms_identity", false},
    {"version", false},
    {"listen", true},
    {"http", true},
    {"token", true},
    {"mikey", true},
    {"policy_classes", false},
    {"default_policy_class", false},
    {"token_users", false},
    {"users", false},
    {"groups", false},
    {"trust_relations", false},
    {"external_kms", false},
    {"krr_policy", false},
};

bool AllowedIn(const Section& section, ConfigRole role) {
  return role == ConfigRole::kComplete || section.local == (role == ConfigRole::kLocal);
}

// The document is an object whose keys are sections the role allows.
Status CheckSections(const Json& root, ConfigRole role) {
  if (!root.is_object()) return WrongType("", "an object", root);
  for (const auto& member : root.get_ref<const Json::object_t&>()) {
    const Section* section = nullptr;
    for (const Section& candidate : kSections) {
      if (member.first == candidate.key) section = &candidate;
    }
    if (section == nullptr) {
      std::string expected;
      for (const Section& candidate : kSections) {
        if (AllowedIn(candidate, role)) expected += std::string(expected.empty() ? "" : ", ") + candidate.key;
      }
      return Invalid(KeyPath("", member.first), "unknown key (expected one of: " + expected + ")");
    }
    if (!AllowedIn(*section, role)) {
      return Invalid(section->key, role == ConfigRole::kBundle
                                       ? "an appliance-local setting; it belongs in the local configuration "
                                         "(--config), not in a bundle"
                                       : "comes from the signed bundle; remove it from the local configuration");
    }
  }
  return Status::Ok();
}

// Sections a role does not allow were refused by CheckSections, so reading
// them finds nothing and keeps the defaults.
Result<KmsConfig> ReadConfig(const Json& root, ConfigRole role) {
  TKMS_RETURN_IF_ERROR(CheckSections(root, role));
  KmsConfig config;
  if (role != ConfigRole::kLocal) {
    const Json* kms_identity = Member(root, "kms_identity");
    if (kms_identity == nullptr) return Invalid("kms_identity", "required field is missing");
    TKMS_RETURN_IF_ERROR(ParseString(*kms_identity, "kms_identity", config.kms_identity));
    TKMS_RETURN_IF_ERROR(CheckIdentity(config.kms_identity, "kms_identity"));
  }
  if (const Json* v = Member(root, "version"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ParseUnsigned(*v, "version", 1, kMaxConfigVersion, config.version));
  } else if (role == ConfigRole::kBundle) {
    return Invalid("version", "required field is missing (every bundle has a version)");
  }

  TKMS_RETURN_IF_ERROR(ReadListen(Member(root, "listen"), config.listen));
  if (const Json* v = Member(root, "http"); v != nullptr) TKMS_RETURN_IF_ERROR(ReadHttp(*v, config.http));
  if (role != ConfigRole::kBundle) TKMS_RETURN_IF_ERROR(ReadToken(Member(root, "token"), config.token));
  if (const Json* v = Member(root, "mikey"); v != nullptr) TKMS_RETURN_IF_ERROR(ReadMikey(*v, config.mikey));

  const Json* classes = Member(root, "policy_classes");
  TKMS_RETURN_IF_ERROR(ReadPolicyClasses(classes, config.policy_classes));
  if (const Json* v = Member(root, "default_policy_class"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ParseString(*v, "default_policy_class", config.default_policy_class));
  }
  if (config.policy_classes.count(config.default_policy_class) == 0) {
    return Invalid("default_policy_class",
                   "no policy class named " + Quote(config.default_policy_class) +
                       (classes == nullptr ? " (without policy_classes the only class is 'default')" : ""));
  }
  TKMS_RETURN_IF_ERROR(ReadBool(root, "", "token_users", config.token_users));

  // KMSs before users: users' KMS lists name them.
  IdentityIndex identities;
  TKMS_RETURN_IF_ERROR(ReadTrustRelations(Member(root, "trust_relations"), config, identities));
  TKMS_RETURN_IF_ERROR(ReadExternalKms(Member(root, "external_kms"), config, identities));
  if (const Json* v = Member(root, "krr_policy"); v != nullptr) {
    TKMS_RETURN_IF_ERROR(ReadKrrPolicy(*v, config.krr_policy));
  }
  TKMS_RETURN_IF_ERROR(ReadUsers(Member(root, "users"), config, identities));
  TKMS_RETURN_IF_ERROR(ReadGroups(Member(root, "groups"), config, identities));
  return config;
}

// ---- files -----------------------------------------------------------------------

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

const char* FileTypeName(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

std::string TooLarge(const std::string& shown, const std::string& size) {
  return shown + ": the file is " + size + " bytes; at most " + std::to_string(kMaxConfigBytes) +
         " (kMaxConfigBytes)";
}

}  // namespace

Result<KmsConfig> ParseConfig(std::string_view json_text, ConfigRole role) {
  if (role != ConfigRole::kComplete && role != ConfigRole::kLocal && role != ConfigRole::kBundle) {
    return InvalidArgument("$: unknown configuration role " + std::to_string(static_cast<unsigned>(role)));
  }
  if (json_text.size() > kMaxConfigBytes) {
    return Invalid("", "the document is " + std::to_string(json_text.size()) + " bytes; at most " +
                           std::to_string(kMaxConfigBytes) + " (kMaxConfigBytes)");
  }
  try {
    BoundedDomBuilder builder(json_text);
    const char* begin = json_text.data();
    if (!Json::sax_parse(begin, begin + json_text.size(), &builder, Json::input_format_t::json,
                         /*strict=*/true, /*ignore_comments=*/false)) {
      Status error = builder.error();
      if (error.ok()) error = Invalid("", "the JSON parser stopped without saying why");
      return error;
    }
    auto config = ReadConfig(builder.root(), role);
    if (!config.ok()) return config;
    // Defaults are written out in the canonical form; it must parse again.
    // A bundle's must leave room for the local sections CombineConfig adds.
    const size_t canonical = ConfigToJson(*config).size();
    if (role == ConfigRole::kBundle && canonical > kMaxConfigBytes - kLocalSectionsReserveBytes) {
      return Invalid("", "the canonical form of this bundle (ConfigToJson, every default written out) would be " +
                             std::to_string(canonical) + " bytes; at most " +
                             std::to_string(kMaxConfigBytes - kLocalSectionsReserveBytes) +
                             " (kMaxConfigBytes less 32768 kept for the local sections)");
    }
    if (canonical > kMaxConfigBytes) {
      return Invalid("", "the canonical form of this configuration (ConfigToJson, every default written out) "
                         "would be " + std::to_string(canonical) + " bytes; at most " +
                         std::to_string(kMaxConfigBytes) + " (kMaxConfigBytes)");
    }
    return config;
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("$: out of memory while reading the configuration");
  }
}

Result<KmsConfig> LoadConfigFile(const std::string& path, ConfigRole role) {
  std::string shown;
  AppendEscaped(shown, path, '\0');
  if (path.empty() || path.find('\0') != std::string::npos) {
    return InvalidArgument(shown + ": not a usable file name");
  }
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    const int error = errno;
    std::string message = shown + ": cannot open: " + std::strerror(error);
    if (error == ENOENT || error == ENOTDIR) return NotFound(std::move(message));
    if (error == EACCES || error == EPERM) return PermissionDenied(std::move(message));
    if (error == ELOOP || error == ENAMETOOLONG || error == ENXIO) return InvalidArgument(std::move(message));
    return Unavailable(std::move(message));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Unavailable(shown + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgument(shown + ": is " + FileTypeName(st.st_mode) + ", not a regular file");
  }
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > kMaxConfigBytes) {
    return InvalidArgument(TooLarge(shown, std::to_string(st.st_size)));
  }
  // Up to one byte more than allowed, in case the file grew since fstat.
  std::string text(kMaxConfigBytes + 1, '\0');
  size_t used = 0;
  while (used < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unavailable(shown + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > kMaxConfigBytes) return InvalidArgument(TooLarge(shown, "more than " + std::to_string(kMaxConfigBytes)));
  text.resize(used);
  auto config = ParseConfig(text, role);
  if (!config.ok()) return Status(config.error().code(), shown + ": " + config.error().message());
  return config;
}

std::string ConfigToJson(const KmsConfig& config) {
  // Compact, keys sorted (nlohmann::json objects are std::maps): for these
  // documents (integers only, ASCII keys) this is the RFC 8785 (JCS) form.
  Json listen = Json::object();
  listen["ua"] = config.listen.ua;
  listen["admin"] = config.listen.admin;

  Json http = Json::object();
  http["max_body_bytes"] = config.http.max_body_bytes;
  http["worker_threads"] = config.http.worker_threads;
  http["request_timeout_ms"] = config.http.request_timeout_ms;
  http["keep_alive_timeout_ms"] = config.http.keep_alive_timeout_ms;

  Json token = Json::object();
  token["module_path"] = config.token.module_path;
  token["token"] = config.token.token;
  token["pin_file"] = config.token.pin_file;
  if (config.token.softhsm2_conf) token["softhsm2_conf"] = *config.token.softhsm2_conf;
  token["sessions"] = config.token.sessions;
  token["health_check_interval_ms"] = config.token.health_check_interval_ms;

  Json mikey = Json::object();
  mikey["timestamp_window_s"] = config.mikey.timestamp_window_s;
  mikey["replay_cache_entries"] = config.mikey.replay_cache_entries;
  mikey["kemac_iv_timestamp"] =
      config.mikey.kemac_iv_timestamp == KemacIvTimestamp::kRequest ? "request" : "response";

  Json classes = Json::object();
  for (const auto& [name, policy] : config.policy_classes) {
    Json entry = Json::object();
    entry["default_lifetime_s"] = policy.default_lifetime_s;
    entry["max_lifetime_s"] = policy.max_lifetime_s;
    entry["allow_reuse"] = policy.allow_reuse;
    entry["allow_forking"] = policy.allow_forking;
    entry["allow_initiator_keys"] = policy.allow_initiator_keys;
    entry["allow_responder_keys"] = policy.allow_responder_keys;
    entry["max_responders"] = policy.max_responders;
    entry["max_keys"] = policy.max_keys;
    entry["allow_request"] = policy.allow_request;
    entry["allow_resolve"] = policy.allow_resolve;
    entry["kemac_encryption"] = policy.kemac_encryption == KemacEncryption::kAesCm256   ? "aes-cm-256"
                                : policy.kemac_encryption == KemacEncryption::kAesCm128 ? "aes-cm-128"
                                                                                        : "auto";
    classes[name] = std::move(entry);
  }

  Json users = Json::array();
  for (const UserConfig& user : config.users) {
    Json entry = Json::object();
    entry["identities"] = user.identities;
    if (user.psk_id) entry["psk_id"] = HexEncode(*user.psk_id);
    if (!user.policy_class.empty()) entry["policy_class"] = user.policy_class;
    if (!user.primary_home_kms.empty()) entry["primary_home_kms"] = user.primary_home_kms;
    if (!user.secondary_home_kms.empty()) entry["secondary_home_kms"] = user.secondary_home_kms;
    if (!user.external_kms.empty()) entry["external_kms"] = user.external_kms;
    users.push_back(std::move(entry));
  }

  Json groups = Json::array();
  for (const GroupConfig& group : config.groups) {
    Json entry = Json::object();
    entry["identity"] = group.identity;
    entry["members"] = group.members;
    groups.push_back(std::move(entry));
  }

  Json trust_relations = Json::array();
  for (const TrustRelationConfig& trust : config.trust_relations) {
    Json entry = Json::object();
    entry["kms_uri"] = trust.kms_uri;
    entry["endpoint"] = trust.endpoint;
    if (!trust.certificate.empty()) entry["certificate"] = trust.certificate;
    if (!trust.ca.empty()) entry["ca"] = trust.ca;
    trust_relations.push_back(std::move(entry));
  }

  Json external_kms = Json::array();
  for (const ExternalKmsConfig& external : config.external_kms) {
    Json entry = Json::object();
    entry["kms_uri"] = external.kms_uri;
    entry["certificate"] = external.certificate;
    external_kms.push_back(std::move(entry));
  }

  Json krr = Json::object();
  krr["allow_krr"] = config.krr_policy.allow_krr;
  krr["report_krr"] = config.krr_policy.report_krr;
  krr["require_signed_krr"] = config.krr_policy.require_signed_krr;
  krr["request_unknown_kms_certificates"] = config.krr_policy.request_unknown_kms_certificates;
  krr["hold_until_kms_acceptance"] = config.krr_policy.hold_until_kms_acceptance;

  Json root = Json::object();
  if (config.version != 0) root["version"] = config.version;
  root["kms_identity"] = config.kms_identity;
  root["listen"] = std::move(listen);
  root["http"] = std::move(http);
  root["token"] = std::move(token);
  root["mikey"] = std::move(mikey);
  root["policy_classes"] = std::move(classes);
  root["default_policy_class"] = config.default_policy_class;
  root["token_users"] = config.token_users;
  root["users"] = std::move(users);
  root["groups"] = std::move(groups);
  root["trust_relations"] = std::move(trust_relations);
  root["external_kms"] = std::move(external_kms);
  root["krr_policy"] = std::move(krr);
  // `replace`: a hand-made configuration with invalid UTF-8 must not throw.
  return root.dump(-1, ' ', false, Json::error_handler_t::replace);
}

KmsConfig CombineConfig(const KmsConfig& local, const KmsConfig& bundle) {
  KmsConfig combined = bundle;
  combined.listen = local.listen;
  combined.http = local.http;
  combined.token = local.token;
  combined.mikey = local.mikey;
  return combined;
}

Status CheckCertificateDates(const KmsConfig& config, std::time_t now) {
  for (size_t i = 0; i < config.trust_relations.size(); ++i) {
    const TrustRelationConfig& trust = config.trust_relations[i];
    const std::string path = IndexPath("trust_relations", i);
    if (!trust.certificate.empty()) {
      TKMS_RETURN_IF_ERROR(CheckCertificateDate(trust.certificate, KeyPath(path, "certificate"), now));
    }
    if (!trust.ca.empty()) TKMS_RETURN_IF_ERROR(CheckCertificateDate(trust.ca, KeyPath(path, "ca"), now));
  }
  for (size_t i = 0; i < config.external_kms.size(); ++i) {
    TKMS_RETURN_IF_ERROR(CheckCertificateDate(config.external_kms[i].certificate,
                                              KeyPath(IndexPath("external_kms", i), "certificate"), now));
  }
  return Status::Ok();
}

}  // namespace tkms::provisioning
