#include "pkcs11/uri.h"

#include <array>
#include <utility>

#include "firmware/base/encoding.h"

namespace tkms::pkcs11 {
namespace {

constexpr std::string_view kScheme = "pkcs11:";

bool IsAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// RFC 3986 §2.3 unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
bool IsUnreserved(char c) {
  return IsAlpha(c) || IsDigit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// RFC 7512 pk11-res-avail.
bool IsResAvail(char c) {
  switch (c) {
    case ':': case '[': case ']': case '@': case '!': case '$': case '\'':
    case '(': case ')': case '*': case '+': case ',': case '=':
      return true;
    default:
      return false;
  }
}

// pk11-pchar without pct-encoded: unreserved / pk11-res-avail / "&".
bool IsPathChar(char c) { return IsUnreserved(c) || IsResAvail(c) || c == '&'; }
// pk11-qchar without pct-encoded: unreserved / pk11-res-avail / "/" / "?" / "|".
bool IsQueryChar(char c) { return IsUnreserved(c) || IsResAvail(c) || c == '/' || c == '?' || c == '|'; }

Status UriError(size_t offset, std::string_view what) {
  return InvalidArgument("PKCS#11 URI: " + std::string(what) + " at offset " +
                         std::to_string(offset));
}

// An attribute name safe to repeat in an error message.
std::string Quoted(std::string_view name) {
  if (name.empty() || name.size() > 64) return "(name)";
  for (char c : name) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '-' && c != '_') return "(name)";
  }
  std::string quoted;
  quoted.reserve(name.size() + 2);
  quoted.push_back('\'');
  quoted.append(name);
  quoted.push_back('\'');
  return quoted;
}

// Percent-decodes `raw` (which starts at `offset` in the URI); every raw
// character must satisfy `allowed`.
Result<std::string> Decode(std::string_view raw, size_t offset, bool (*allowed)(char)) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '%') {
      if (raw.size() - i < 3) return UriError(offset + i, "truncated percent-encoding");
      const auto byte = PercentEscapeAt(raw, i);
      if (!byte) return UriError(offset + i, "invalid percent-encoding");
      out.push_back(static_cast<char>(*byte));
      i += 2;
      continue;
    }
    if (!allowed(c)) return UriError(offset + i, "character not allowed");
    out.push_back(c);
  }
  return out;
}

// 1*DIGIT into a value <= max.
bool ParseDecimal(std::string_view digits, uint64_t max, uint64_t& out) {
  if (digits.empty() || digits.size() > 20) return false;
  uint64_t value = 0;
  for (char c : digits) {
    if (!IsDigit(c)) return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (value > (max - d) / 10) return false;
    value = value * 10 + d;
  }
  out = value;
  return true;
}

bool IsVendorName(std::string_view name) {
  if (name.size() < 3 || name.substr(0, 2) != "x-") return false;
  for (char c : name.substr(2)) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '-' && c != '_') return false;
  }
  return true;
}

constexpr std::array<std::pair<std::string_view, UriObjectType>, 5> kTypes = {{
    {"public", UriObjectType::kPublic},
    {"private", UriObjectType::kPrivate},
    {"cert", UriObjectType::kCert},
    {"secret-key", UriObjectType::kSecretKey},
    {"data", UriObjectType::kData},
}};

// Splits `text` (at absolute `offset`) on `separator`, calling
// fn(segment, segment_offset) for each; stops at the first error.
template <typename Fn>
Status ForEachSegment(std::string_view text, size_t offset, char separator, Fn&& fn) {
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    const std::string_view segment =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (segment.empty()) return UriError(offset + start, "empty attribute");
    TKMS_RETURN_IF_ERROR(fn(segment, offset + start));
    if (end == std::string_view::npos) return Status::Ok();
    start = end + 1;
  }
}

Status SetText(std::optional<std::string>& field, std::string_view name, std::string_view raw,
               size_t offset, bool (*allowed)(char)) {
  if (field.has_value()) return UriError(offset, "duplicate attribute " + Quoted(name));
  Result<std::string> value = Decode(raw, offset + name.size() + 1, allowed);
  if (!value.ok()) return value.error();
  field = std::move(*value);
  return Status::Ok();
}

Status ParsePathAttribute(Pkcs11Uri& uri, std::string_view name, std::string_view raw,
                          size_t offset) {
  const size_t value_offset = offset + name.size() + 1;
  if (name == "token") return SetText(uri.token, name, raw, offset, IsPathChar);
  if (name == "manufacturer") return SetText(uri.manufacturer, name, raw, offset, IsPathChar);
  if (name == "serial") return SetText(uri.serial, name, raw, offset, IsPathChar);
  if (name == "model") return SetText(uri.model, name, raw, offset, IsPathChar);
  if (name == "library-manufacturer") {
    return SetText(uri.library_manufacturer, name, raw, offset, IsPathChar);
  }
  if (name == "library-description") {
    return SetText(uri.library_description, name, raw, offset, IsPathChar);
  }
  if (name == "slot-description") return SetText(uri.slot_description, name, raw, offset, IsPathChar);
  if (name == "slot-manufacturer") {
    return SetText(uri.slot_manufacturer, name, raw, offset, IsPathChar);
  }
  if (name == "object") return SetText(uri.object, name, raw, offset, IsPathChar);
  if (name == "id") {
    if (uri.id.has_value()) return UriError(offset, "duplicate attribute 'id'");
    Result<std::string> value = Decode(raw, value_offset, IsPathChar);
    if (!value.ok()) return value.error();
    uri.id = std::vector<uint8_t>(value->begin(), value->end());
    return Status::Ok();
  }
  if (name == "library-version") {
    if (uri.library_version.has_value()) {
      return UriError(offset, "duplicate attribute 'library-version'");
    }
    const size_t dot = raw.find('.');
    UriLibraryVersion version;
    uint64_t major = 0;
    if (!ParseDecimal(raw.substr(0, dot), 255, major)) {
      return UriError(value_offset, "library-version must be DIGITS[.DIGITS] of at most 255");
    }
    version.major = static_cast<uint32_t>(major);
    if (dot != std::string_view::npos) {
      uint64_t minor = 0;
      if (!ParseDecimal(raw.substr(dot + 1), 255, minor)) {
        return UriError(value_offset, "library-version must be DIGITS[.DIGITS] of at most 255");
      }
      version.minor = static_cast<uint32_t>(minor);
    }
    uri.library_version = version;
    return Status::Ok();
  }
  if (name == "slot-id") {
    if (uri.slot_id.has_value()) return UriError(offset, "duplicate attribute 'slot-id'");
    uint64_t slot = 0;
    if (!ParseDecimal(raw, UINT64_MAX, slot)) {
      return UriError(value_offset, "slot-id must be decimal digits that fit CK_SLOT_ID");
    }
    uri.slot_id = slot;
    return Status::Ok();
  }
  if (name == "type") {
    if (uri.type.has_value()) return UriError(offset, "duplicate attribute 'type'");
    for (const auto& [text, type] : kTypes) {
      if (raw == text) {
        uri.type = type;
        return Status::Ok();
      }
    }
    return UriError(value_offset, "type must be public, private, cert, secret-key or data");
  }
  if (IsVendorName(name)) {
    for (const UriVendorAttribute& existing : uri.vendor_path) {
      if (existing.name == name) return UriError(offset, "duplicate attribute " + Quoted(name));
    }
    Result<std::string> value = Decode(raw, value_offset, IsPathChar);
    if (!value.ok()) return value.error();
    uri.vendor_path.push_back({std::string(name), std::move(*value)});
    return Status::Ok();
  }
  return UriError(offset, "unknown path attribute " + Quoted(name));
}

Status ParseQueryAttribute(Pkcs11Uri& uri, std::string_view name, std::string_view raw,
                           size_t offset) {
  if (name == "pin-value") {
    return UriError(offset,
                    "pin-value is refused (a PIN never travels in a URI; use pin-source or the "
                    "keystore's PIN option)");
  }
  if (name == "pin-source") return SetText(uri.pin_source, name, raw, offset, IsQueryChar);
  if (name == "module-name") return SetText(uri.module_name, name, raw, offset, IsQueryChar);
  if (name == "module-path") return SetText(uri.module_path, name, raw, offset, IsQueryChar);
  if (IsVendorName(name)) {
    Result<std::string> value = Decode(raw, offset + name.size() + 1, IsQueryChar);
    if (!value.ok()) return value.error();
    uri.vendor_query.push_back({std::string(name), std::move(*value)});
    return Status::Ok();
  }
  return UriError(offset, "unknown query attribute " + Quoted(name));
}

// Splits "name=value" (at absolute `offset`).
template <typename Fn>
Status WithNameValue(std::string_view segment, size_t offset, Fn&& fn) {
  const size_t eq = segment.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return UriError(offset, "attribute is not name=value");
  }
  return fn(segment.substr(0, eq), segment.substr(eq + 1), offset);
}

// Appends `value`, percent-encoding (upper-case hex) exactly the bytes that
// may not appear raw in this component. Encoding nothing more keeps the
// canonical text no longer than any text that parses to the same URI.
void AppendEncoded(std::string& out, std::string_view value, bool (*allowed)(char)) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : value) {
    if (allowed(c)) {
      out.push_back(c);
      continue;
    }
    const auto byte = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0x0f]);
  }
}

}  // namespace

std::string_view UriObjectTypeName(UriObjectType type) {
  for (const auto& [text, value] : kTypes) {
    if (value == type) return text;
  }
  return "unknown";
}

bool IsPkcs11Uri(std::string_view text) {
  if (text.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return false;
  }
  return true;
}

Result<Pkcs11Uri> ParsePkcs11Uri(std::string_view text) {
  if (text.size() > kMaxPkcs11UriLength) {
    return InvalidArgument("PKCS#11 URI longer than " + std::to_string(kMaxPkcs11UriLength) +
                           " bytes");
  }
  if (!IsPkcs11Uri(text)) return InvalidArgument("not a PKCS#11 URI (expected \"pkcs11:\")");
  Pkcs11Uri uri;
  const size_t path_offset = kScheme.size();
  const std::string_view rest = text.substr(path_offset);
  const size_t question = rest.find('?');
  const std::string_view path = rest.substr(0, question);
  if (!path.empty()) {
    TKMS_RETURN_IF_ERROR(ForEachSegment(path, path_offset, ';', [&](std::string_view s, size_t o) {
      return WithNameValue(s, o, [&](std::string_view n, std::string_view v, size_t at) {
        return ParsePathAttribute(uri, n, v, at);
      });
    }));
  }
  if (question != std::string_view::npos) {
    const size_t query_offset = path_offset + question + 1;
    const std::string_view query = rest.substr(question + 1);
    if (!query.empty()) {
      TKMS_RETURN_IF_ERROR(ForEachSegment(query, query_offset, '&', [&](std::string_view s, size_t o) {
        return WithNameValue(s, o, [&](std::string_view n, std::string_view v, size_t at) {
          return ParseQueryAttribute(uri, n, v, at);
        });
      }));
    }
  }
  return uri;
}

std::string FormatPkcs11Uri(const Pkcs11Uri& uri) {
  std::string out(kScheme);
  bool first = true;
  auto begin = [&](std::string_view name, char separator) {
    if (!first) out.push_back(separator);
    first = false;
    out.append(name).push_back('=');
  };
  auto text = [&](std::string_view name, const std::optional<std::string>& value, char sep) {
    if (!value.has_value()) return;
    begin(name, sep);
    AppendEncoded(out, *value, sep == ';' ? IsPathChar : IsQueryChar);
  };
  text("token", uri.token, ';');
  text("manufacturer", uri.manufacturer, ';');
  text("serial", uri.serial, ';');
  text("model", uri.model, ';');
  text("library-manufacturer", uri.library_manufacturer, ';');
  text("library-description", uri.library_description, ';');
  if (uri.library_version.has_value()) {
    begin("library-version", ';');
    out.append(std::to_string(uri.library_version->major));
    if (uri.library_version->minor.has_value()) {
      out.push_back('.');
      out.append(std::to_string(*uri.library_version->minor));
    }
  }
  text("slot-description", uri.slot_description, ';');
  text("slot-manufacturer", uri.slot_manufacturer, ';');
  if (uri.slot_id.has_value()) {
    begin("slot-id", ';');
    out.append(std::to_string(*uri.slot_id));
  }
  text("object", uri.object, ';');
  if (uri.type.has_value()) {
    begin("type", ';');
    out.append(UriObjectTypeName(*uri.type));
  }
  if (uri.id.has_value()) {
    begin("id", ';');
    AppendEncoded(out, std::string_view(reinterpret_cast<const char*>(uri.id->data()), uri.id->size()),
                  IsPathChar);
  }
  for (const UriVendorAttribute& attribute : uri.vendor_path) {
    begin(attribute.name, ';');
    AppendEncoded(out, attribute.value, IsPathChar);
  }

  const bool has_query = uri.pin_source || uri.module_name || uri.module_path ||
                         !uri.vendor_query.empty();
  if (!has_query) return out;
  out.push_back('?');
  first = true;
  text("pin-source", uri.pin_source, '&');
  text("module-name", uri.module_name, '&');
  text("module-path", uri.module_path, '&');
  for (const UriVendorAttribute& attribute : uri.vendor_query) {
    begin(attribute.name, '&');
    AppendEncoded(out, attribute.value, IsQueryChar);
  }
  return out;
}

}  // namespace tkms::pkcs11
