#include "web/annex_a.h"

#include <arpa/inet.h>

#include <charconv>

#include "firmware/base/encoding.h"

namespace tkms::web {
namespace {

Rejection BadRequest(std::string label, std::string reason) {
  return Rejection{400, std::move(label), std::move(reason)};
}

}  // namespace

bool PercentDecode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      const auto byte = PercentEscapeAt(in, i);
      if (!byte) return false;
      out.push_back(static_cast<char>(*byte));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return true;
}

Result<kms::RequestType, Rejection> ParseRequestType(std::string_view query) {
  int seen = 0;
  std::string value;
  std::string name;
  std::string decoded_value;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    const std::string_view raw_name = part.substr(0, eq);
    const std::string_view raw_value =
        eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    if (!PercentDecode(raw_name, name) || !PercentDecode(raw_value, decoded_value)) {
      return BadRequest("bad_query", "malformed percent-encoding in the query string");
    }
    if (name != "requesttype") continue;
    ++seen;
    value = decoded_value;
  }
  if (seen == 0) return BadRequest("requesttype_missing", "requesttype parameter missing");
  if (seen > 1) return BadRequest("requesttype_repeated", "requesttype parameter repeated");
  if (value == "ticketrequest") return kms::RequestType::kTicketRequest;
  if (value == "ticketresolve") return kms::RequestType::kTicketResolve;
  return BadRequest("requesttype_invalid", "requesttype must be ticketrequest or ticketresolve");
}

bool IsMikeyContentType(std::string_view content_type) {
  const size_t semi = content_type.find(';');
  return EqualsIgnoreCase(TrimOws(content_type.substr(0, semi)), kMikeyMediaType);
}

Result<std::vector<uint8_t>, Rejection> DecodeMikeyBody(std::string_view body) {
  const std::string text = StripWhitespace(body);
  if (text.empty()) return BadRequest("empty_body", "empty body");
  auto bytes = Base64Decode(text);
  if (!bytes.has_value()) return BadRequest("bad_base64", "body is not base64");
  if (bytes->empty()) return BadRequest("empty_body", "empty body");
  return std::move(*bytes);
}

std::string ListenAddress::ToString() const { return address + ":" + std::to_string(port); }

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  const auto invalid = [&] {
    return InvalidArgument("invalid listen address \"" + std::string(text) +
                           "\" (want IPv4 ADDR:PORT, e.g. 127.0.0.1:8080)");
  };
  // inet_pton stops at a NUL: "127.0.0.1\0junk:80" must not pass as 127.0.0.1.
  if (text.find('\0') != std::string_view::npos) return invalid();
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return invalid();
  const std::string address(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  in_addr parsed{};
  if (address.empty() || inet_pton(AF_INET, address.c_str(), &parsed) != 1) return invalid();
  if (port_text.empty() || port_text.size() > 5) return invalid();
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return invalid();
  }
  return ListenAddress{address, static_cast<uint16_t>(port)};
}

}  // namespace tkms::web
