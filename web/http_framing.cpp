#include "web/http_framing.h"

#include <cstdint>
#include <span>

#include "firmware/base/byte_reader.h"

namespace tkms::web {
namespace {

constexpr uint64_t kMaxContentLength = (uint64_t{1} << 63) - 1;

ByteSpan BytesOf(std::string_view text) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

}  // namespace

std::optional<uint64_t> ParseContentLength(std::string_view value) {
  value = TrimOws(value);
  if (value.empty()) return std::nullopt;
  ByteReader reader(BytesOf(value));
  uint64_t length = 0;
  uint8_t c = 0;
  while (reader.ReadU8(c)) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = c - '0';
    if (length > (kMaxContentLength - digit) / 10) return std::nullopt;
    length = length * 10 + digit;
  }
  return length;
}

BodyFraming DecideBodyFraming(const std::vector<HttpHeader>& headers) {
  const HttpHeader* content_length = nullptr;
  const HttpHeader* transfer_encoding = nullptr;
  size_t content_lengths = 0;
  size_t transfer_encodings = 0;
  for (const HttpHeader& header : headers) {
    if (EqualsIgnoreCase(header.name, "Content-Length")) {
      content_length = &header;
      ++content_lengths;
    } else if (EqualsIgnoreCase(header.name, "Transfer-Encoding")) {
      transfer_encoding = &header;
      ++transfer_encodings;
    }
  }
  BodyFraming framing;
  if (content_lengths > 1) {
    framing.error = FramingError::kRepeatedContentLength;
  } else if (content_length != nullptr && transfer_encoding != nullptr) {
    framing.error = FramingError::kContentLengthAndTransferEncoding;
  } else if (transfer_encoding != nullptr) {
    if (transfer_encodings == 1 && EqualsIgnoreCase(TrimOws(transfer_encoding->value), "chunked")) {
      framing.kind = BodyFraming::Kind::kChunked;
    } else {
      framing.error = FramingError::kUnsupportedTransferCoding;
    }
  } else if (content_length != nullptr) {
    if (const auto length = ParseContentLength(content_length->value)) {
      framing.kind = BodyFraming::Kind::kContentLength;
      framing.content_length = *length;
    } else {
      framing.error = FramingError::kBadContentLength;
    }
  }
  return framing;
}

std::string_view FramingErrorLabel(FramingError error) {
  switch (error) {
    case FramingError::kNone: return "-";
    case FramingError::kRepeatedContentLength: return "content_length_repeated";
    case FramingError::kBadContentLength: return "bad_content_length";
    case FramingError::kContentLengthAndTransferEncoding: return "content_length_and_transfer_encoding";
    case FramingError::kUnsupportedTransferCoding: return "transfer_coding";
  }
  return "-";
}

std::string_view FramingErrorText(FramingError error) {
  switch (error) {
    case FramingError::kNone: return "";
    case FramingError::kRepeatedContentLength: return "repeated Content-Length";
    case FramingError::kBadContentLength: return "malformed Content-Length";
    case FramingError::kContentLengthAndTransferEncoding:
      return "Content-Length and Transfer-Encoding together";
    case FramingError::kUnsupportedTransferCoding:
      return "only Transfer-Encoding: chunked is accepted";
  }
  return "";
}

}  // namespace tkms::web
