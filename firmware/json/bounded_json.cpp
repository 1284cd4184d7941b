// The bounded JSON reader: see bounded_json.h.
//
// nlohmann's SAX parser drives BoundedBuilder, which builds the DOM and
// stops the parser (by returning false) at the first limit crossed. The SAX
// interface does not say where in the text an event happened, so the text is
// fed through CountingIterator, which counts the bytes nlohmann's lexer has
// taken; from that count and the text itself, each refusal finds the byte
// offset of what it refuses (the '{' of a too deep object, the opening quote
// of a duplicate key). Syntax errors come with nlohmann's own position.
#include "firmware/json/bounded_json.h"

#include <iterator>
#include <type_traits>
#include <new>
#include <stdexcept>
#include <unordered_set>
#include <utility>
#include <vector>

#include "firmware/base/printable.h"
#include "firmware/json/json_path.h"

namespace tkms::json {
namespace {

// A const char* that counts, in *consumed, how far nlohmann's input adapter
// has read (it reads one byte at a time: *it, then ++it).
class CountingIterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator() = default;
  CountingIterator(const char* at, size_t* consumed) : at_(at), consumed_(consumed) {}

  reference operator*() const { return *at_; }
  CountingIterator& operator++() {
    ++at_;
    ++*consumed_;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator before = *this;
    ++*this;
    return before;
  }
  bool operator==(const CountingIterator& other) const { return at_ == other.at_; }

 private:
  const char* at_ = nullptr;
  size_t* consumed_ = nullptr;
};

bool IsNumberChar(char c) { return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'; }

// "at byte offset N (line L, column C)" of `offset` in `text`.
void Locate(std::string_view text, size_t offset, ParseError& error) {
  error.offset = offset;
  error.line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++error.line;
      line_start = i + 1;
    }
  }
  error.column = offset - line_start + 1;
}

ParseError MakeError(std::string_view text, ErrorKind kind, size_t offset, std::string path,
                     std::string_view problem, std::string_view detail = {}) {
  ParseError error;
  error.kind = kind;
  error.path = std::move(path);
  Locate(text, offset, error);
  error.message = std::string(problem) + " at byte offset " + std::to_string(error.offset) + " (line " +
                  std::to_string(error.line) + ", column " + std::to_string(error.column) + ")";
  if (!detail.empty()) {
    error.message += ": ";
    error.message += detail;
  }
  return error;
}

// nlohmann's description of a syntax error without its "[json.exception.
// parse_error.101] parse error at line L, column C: " prefix and without the
// "last read" excerpt of the input; escaped and shortened.
std::string CleanDetail(std::string_view what) {
  const size_t bracket = what.find("] ");
  if (bracket != std::string_view::npos) what.remove_prefix(bracket + 2);
  if (what.substr(0, 11) == "parse error") {
    const size_t colon = what.find(": ");
    if (colon != std::string_view::npos) what.remove_prefix(colon + 2);
  }
  std::string text;
  const size_t last_read = what.find("; last read: '");
  if (last_read == std::string_view::npos) {
    text = std::string(what);
  } else {
    text = std::string(what.substr(0, last_read));
    const size_t expected = what.rfind("'; expected ");
    if (expected != std::string_view::npos && expected > last_read) text += what.substr(expected + 1);
  }
  return EscapedDetail(text);
}

// A syntax error reported by nlohmann's parser at `offset`, sorted into a kind.
ParseError ParserError(std::string_view text, size_t offset, std::string path, const nlohmann::json::exception& e) {
  const std::string_view what = e.what();
  const std::string detail = CleanDetail(what);
  if (e.id == 406) {
    // nlohmann reports the byte after the number: name its first byte.
    size_t start = offset;
    while (start < text.size() && IsNumberChar(text[start])) ++start;
    while (start > 0 && IsNumberChar(text[start - 1])) --start;
    return MakeError(text, ErrorKind::kNumberOutOfRange, start, std::move(path), "number out of range", detail);
  }
  if (what.find("ill-formed UTF-8 byte") != std::string_view::npos) {
    std::string byte = "a byte";
    if (offset < text.size()) {
      static constexpr char kHex[] = "0123456789abcdef";
      const auto value = static_cast<unsigned char>(text[offset]);
      byte = std::string("the byte 0x") + kHex[value >> 4] + kHex[value & 0x0f];
    }
    return MakeError(text, ErrorKind::kInvalidUtf8, offset, std::move(path), "invalid UTF-8",
                     byte + " is not valid UTF-8 here (RFC 3629)");
  }
  if (what.find("invalid string: surrogate") != std::string_view::npos) {
    return MakeError(text, ErrorKind::kInvalidUtf8, offset, std::move(path), "invalid UTF-8",
                     "a \\u escape is a lone UTF-16 surrogate, which has no UTF-8 form");
  }
  if (what.find("; expected end of input") != std::string_view::npos) {
    return MakeError(text, ErrorKind::kTrailingData, offset, std::move(path), "data after the JSON value",
                     "only white space may follow it");
  }
  return MakeError(text, ErrorKind::kSyntax, offset, std::move(path), "JSON syntax error", detail);
}

// The SAX handler: builds the DOM within the limits.
template <typename BasicJson>
class BoundedBuilder {
 public:
  using number_integer_t = typename BasicJson::number_integer_t;
  using number_unsigned_t = typename BasicJson::number_unsigned_t;
  using number_float_t = typename BasicJson::number_float_t;
  using string_t = typename BasicJson::string_t;
  using binary_t = typename BasicJson::binary_t;

  BoundedBuilder(std::string_view text, const Limits& limits, const size_t& consumed)
      : text_(text), limits_(limits), consumed_(consumed) {}

  bool null() { return Add(BasicJson(nullptr), consumed_ - 4); }
  bool boolean(bool value) { return Add(BasicJson(value), consumed_ - (value ? 4 : 5)); }
  bool number_integer(number_integer_t value) { return Add(BasicJson(value), NumberStart()); }
  bool number_unsigned(number_unsigned_t value) { return Add(BasicJson(value), NumberStart()); }
  bool number_float(number_float_t value, const string_t& /*text*/) { return Add(BasicJson(value), NumberStart()); }
  bool binary(binary_t& /*value*/) {  // only binary formats (CBOR, ...) produce these
    return Fail(ErrorKind::kSyntax, consumed_, Path(), "JSON syntax error", "a binary value");
  }

  bool string(string_t& value) {
    const size_t start = StringStart();
    if (value.size() > limits_.max_string_bytes) return StringTooLong(start, NextPath(), "a string", value.size());
    return Add(BasicJson(std::move(value)), start);
  }

  bool key(string_t& name) {
    const size_t start = StringStart();
    if (name.size() > limits_.max_string_bytes) return StringTooLong(start, KeyPath(Path(), name), "a key", name.size());
    if (IsDuplicate(name)) return Fail(ErrorKind::kDuplicateKey, start, KeyPath(Path(), name), "duplicate key");
    key_ = std::move(name);
    return true;
  }

  bool start_object(size_t /*elements*/) { return Open(BasicJson::value_t::object); }
  bool start_array(size_t /*elements*/) { return Open(BasicJson::value_t::array); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }

  bool parse_error(size_t position, const std::string& /*last_token*/, const nlohmann::json::exception& e) {
    // `position` counts the bytes read, the offending one included.
    size_t offset = position == 0 ? 0 : position - 1;
    if (offset > text_.size()) offset = text_.size();
    error_ = ParserError(text_, offset, Path(), e);
    return false;
  }

  BasicJson& root() { return root_; }
  const ParseError& error() const { return error_; }

 private:
  // Where an open container sits in its parent.
  struct Segment {
    enum class Kind : uint8_t { kRoot, kKey, kIndex } kind = Kind::kRoot;
    std::string key;   // kKey: cut to kMaxQuotedBytes + 1 bytes (renders the same)
    size_t index = 0;  // kIndex
  };
  struct Frame {
    BasicJson* node;
    Segment segment;
  };
  static constexpr bool kOrdered = !std::is_same_v<BasicJson, nlohmann::json>;

  bool Fail(ErrorKind kind, size_t offset, std::string path, std::string_view problem, std::string_view detail = {}) {
    error_ = MakeError(text_, kind, offset, std::move(path), problem, detail);
    return false;
  }

  bool StringTooLong(size_t offset, std::string path, const char* what, size_t size) {
    return Fail(ErrorKind::kStringTooLong, offset, std::move(path), "string too long",
                std::string(what) + " of " + std::to_string(size) + " bytes; at most " +
                    std::to_string(limits_.max_string_bytes));
  }

  // The opening quote of the string or key just read: the lexer has taken
  // its closing quote, and every '"' inside it is escaped.
  size_t StringStart() const {
    size_t i = consumed_ == 0 ? 0 : consumed_ - 1;
    while (i > 0) {
      --i;
      if (text_[i] != '"') continue;
      size_t slashes = 0;
      while (slashes < i && text_[i - 1 - slashes] == '\\') ++slashes;
      if (slashes % 2 == 0) return i;
    }
    return 0;
  }

  // The first byte of the number just read: the lexer has taken one byte
  // past it, unless it ended the text.
  size_t NumberStart() const {
    size_t end = consumed_;
    if (end > 0 && end <= text_.size() && !IsNumberChar(text_[end - 1])) --end;
    while (end > 0 && IsNumberChar(text_[end - 1])) --end;
    return end;
  }

  static std::string Render(std::string path, const Segment& segment) {
    switch (segment.kind) {
      case Segment::Kind::kRoot: return path;
      case Segment::Kind::kKey: return KeyPath(path, segment.key);
      case Segment::Kind::kIndex: return IndexPath(path, segment.index);
    }
    return path;
  }

  // The path of the innermost open container; rendered only for errors.
  std::string Path() const {
    std::string path;
    for (const Frame& frame : open_) path = Render(std::move(path), frame.segment);
    return path;
  }

  // Where the next value goes.
  Segment NextSegment() const {
    Segment segment;
    if (open_.empty()) return segment;
    const BasicJson& parent = *open_.back().node;
    if (parent.is_array()) {
      segment.kind = Segment::Kind::kIndex;
      segment.index = parent.size();
    } else {
      segment.kind = Segment::Kind::kKey;
      segment.key = key_.substr(0, kMaxQuotedBytes + 1);
    }
    return segment;
  }
  std::string NextPath() const { return Render(Path(), NextSegment()); }

  bool IsDuplicate(const string_t& name) {
    if constexpr (kOrdered) {
      return !keys_.back().insert(name).second;
    } else {
      const auto& object = open_.back().node->template get_ref<const typename BasicJson::object_t&>();
      return object.find(name) != object.end();
    }
  }

  // Counts the value, then puts it where it belongs; `start` is its offset.
  BasicJson* Insert(BasicJson&& value, size_t start) {
    if (++values_ > limits_.max_values) {
      Fail(ErrorKind::kTooManyValues, start, NextPath(), "too many values",
           "more than " + std::to_string(limits_.max_values));
      return nullptr;
    }
    if (open_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    BasicJson& parent = *open_.back().node;
    if (parent.is_array()) {
      auto& array = parent.template get_ref<typename BasicJson::array_t&>();
      array.push_back(std::move(value));
      return &array.back();
    }
    auto& object = parent.template get_ref<typename BasicJson::object_t&>();
    if constexpr (kOrdered) {
      // Appended without ordered_map's linear search: IsDuplicate checked.
      auto& pairs = static_cast<typename BasicJson::object_t::Container&>(object);
      pairs.emplace_back(std::move(key_), std::move(value));
      return &pairs.back().second;
    } else {
      return &object.emplace(std::move(key_), std::move(value)).first->second;
    }
  }

  bool Add(BasicJson&& value, size_t start) { return Insert(std::move(value), start) != nullptr; }

  bool Open(typename BasicJson::value_t type) {
    const size_t start = consumed_ == 0 ? 0 : consumed_ - 1;  // the '{' or '['
    if (open_.size() >= limits_.max_depth) {
      return Fail(ErrorKind::kTooDeep, start, NextPath(),
                  "nested deeper than " + std::to_string(limits_.max_depth) + " levels");
    }
    Segment segment = NextSegment();
    BasicJson* node = Insert(BasicJson(type), start);
    if (node == nullptr) return false;
    // Pointers stay valid: only the innermost open container grows.
    open_.push_back(Frame{node, std::move(segment)});
    if constexpr (kOrdered) {
      if (type == BasicJson::value_t::object) keys_.emplace_back();
    }
    return true;
  }

  bool Close() {
    if constexpr (kOrdered) {
      if (open_.back().node->is_object()) keys_.pop_back();
    }
    open_.pop_back();
    return true;
  }

  std::string_view text_;
  const Limits& limits_;
  const size_t& consumed_;  // bytes nlohmann's lexer has taken from text_
  BasicJson root_;
  std::vector<Frame> open_;
  std::vector<std::unordered_set<std::string>> keys_;  // ordered_json: the keys of each open object
  string_t key_;
  size_t values_ = 0;
  ParseError error_;
};

template <typename BasicJson>
Result<BasicJson, ParseError> ParseBounded(std::string_view text, const Limits& limits) noexcept {
  try {
    if (text.size() > limits.max_bytes) {
      ParseError error;
      error.kind = ErrorKind::kTooLarge;
      error.offset = limits.max_bytes;
      error.message = "the text is " + std::to_string(text.size()) + " bytes; at most " +
                      std::to_string(limits.max_bytes);
      return error;
    }
    size_t consumed = 0;
    BoundedBuilder<BasicJson> builder(text, limits, consumed);
    const CountingIterator begin(text.data(), &consumed);
    const CountingIterator end(text.data() + text.size(), &consumed);
    if (!BasicJson::sax_parse(begin, end, &builder, nlohmann::json::input_format_t::json, /*strict=*/true,
                              /*ignore_comments=*/false)) {
      return builder.error();
    }
    // nlohmann's lexer takes a NUL byte for the end of the text: a NUL after
    // the value, and whatever follows it, is trailing data.
    if (consumed < text.size() || (consumed > 0 && text[consumed - 1] == '\0')) {
      return MakeError(text, ErrorKind::kTrailingData, consumed - 1, "", "data after the JSON value",
                       "a NUL byte; only white space may follow the value");
    }
    return std::move(builder.root());
  } catch (...) {  // std::bad_alloc, std::length_error: nothing else is thrown
    ParseError error;
    error.kind = ErrorKind::kOutOfMemory;
    error.message = "out of memory";  // short: no allocation
    return error;
  }
}

}  // namespace

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kTooLarge: return "too large";
    case ErrorKind::kSyntax: return "syntax";
    case ErrorKind::kInvalidUtf8: return "invalid UTF-8";
    case ErrorKind::kTrailingData: return "trailing data";
    case ErrorKind::kNumberOutOfRange: return "number out of range";
    case ErrorKind::kTooDeep: return "too deep";
    case ErrorKind::kTooManyValues: return "too many values";
    case ErrorKind::kStringTooLong: return "string too long";
    case ErrorKind::kDuplicateKey: return "duplicate key";
    case ErrorKind::kOutOfMemory: return "out of memory";
  }
  return "unknown";
}

std::string ParseError::ToString() const { return PathOrRoot(path) + ": " + message; }

Result<nlohmann::json, ParseError> Parse(std::string_view text, const Limits& limits) noexcept {
  return ParseBounded<nlohmann::json>(text, limits);
}

Result<nlohmann::ordered_json, ParseError> ParseOrdered(std::string_view text, const Limits& limits) noexcept {
  return ParseBounded<nlohmann::ordered_json>(text, limits);
}

const char* TypeName(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "an integer";
    case nlohmann::json::value_t::number_float: return "a number with a fraction or exponent";
    case nlohmann::json::value_t::binary:
    case nlohmann::json::value_t::discarded: break;
  }
  return "an unsupported value";
}

}  // namespace tkms::json
