// Unit tests of the bounded JSON reader (firmware/json/bounded_json.h): what
// it accepts, one test per kind of refusal (each with its byte offset and
// path), both DOM flavours, and the JSON-path notation (json_path.h).
#include "firmware/json/bounded_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "firmware/json/json_path.h"

namespace tkms::json {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr Limits kRoomy{1 << 20, 32, 100000, 1 << 16};

bool IsPrintableAscii(const std::string& text) {
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Refused by both flavours the same way; returns the error.
ParseError Refused(std::string_view text, const Limits& limits = kRoomy) {
  auto sorted = Parse(text, limits);
  auto ordered = ParseOrdered(text, limits);
  EXPECT_FALSE(sorted.ok()) << "accepted: " << text;
  EXPECT_FALSE(ordered.ok()) << "accepted (ordered): " << text;
  if (sorted.ok() || ordered.ok()) return ParseError{};
  EXPECT_EQ(sorted.error().kind, ordered.error().kind);
  EXPECT_EQ(sorted.error().offset, ordered.error().offset);
  EXPECT_EQ(sorted.error().message, ordered.error().message);
  EXPECT_EQ(sorted.error().path, ordered.error().path);
  EXPECT_TRUE(IsPrintableAscii(sorted.error().ToString())) << sorted.error().ToString();
  return sorted.error();
}

void ExpectRefused(std::string_view text, ErrorKind kind, size_t offset, const Limits& limits = kRoomy) {
  SCOPED_TRACE(std::string(text.substr(0, 80)));
  const ParseError e = Refused(text, limits);
  EXPECT_EQ(e.kind, kind) << ErrorKindName(e.kind) << ": " << e.ToString();
  EXPECT_EQ(e.offset, offset) << e.ToString();
}

nlohmann::json Accepted(std::string_view text, const Limits& limits = kRoomy) {
  auto parsed = Parse(text, limits);
  EXPECT_TRUE(parsed.ok()) << text << ": " << (parsed.ok() ? "" : parsed.error().ToString());
  EXPECT_TRUE(ParseOrdered(text, limits).ok()) << text;
  return parsed.ok() ? *parsed : nlohmann::json();
}

// ---- what is accepted ------------------------------------------------------------

TEST(BoundedJsonTest, AcceptsEveryKindOfValue) {
  const auto j = Accepted(R"({"s":"x\n\u00e9\ud834\udd1e","i":-3,"u":18446744073709551615,"f":1.5e3,)"
                          R"("t":true,"n":null,"a":[],"o":{}})");
  EXPECT_EQ(j["s"], "x\n\xc3\xa9\xf0\x9d\x84\x9e");
  EXPECT_EQ(j["i"], -3);
  EXPECT_EQ(j["u"].get<uint64_t>(), 18446744073709551615u);
  EXPECT_EQ(j["f"], 1500.0);
  EXPECT_EQ(j["t"], true);
  EXPECT_TRUE(j["n"].is_null());
  EXPECT_TRUE(j["a"].is_array());
  EXPECT_TRUE(j["o"].is_object());
  EXPECT_EQ(Accepted("  7 \r\n\t"), 7);
  EXPECT_EQ(Accepted("\"\xe2\x82\xac\""), "\xe2\x82\xac");  // raw UTF-8 in a string
}

TEST(BoundedJsonTest, SkipsALeadingByteOrderMark) {
  EXPECT_EQ(Accepted("\xef\xbb\xbf{\"a\":1}")["a"], 1);
  ExpectRefused("\xef\xbb\xbf", ErrorKind::kSyntax, 3);
  ExpectRefused("{}\xef\xbb\xbf", ErrorKind::kTrailingData, 2);
}

TEST(BoundedJsonTest, OrderedKeepsTheKeysOfTheText) {
  const std::string text = R"({"zulu":1,"alpha":{"y":2,"b":3},"mike":[{"k":4,"c":5}]})";
  auto ordered = ParseOrdered(text, kRoomy);
  ASSERT_TRUE(ordered.ok());
  EXPECT_EQ(ordered->dump(), text);
  auto sorted = Parse(text, kRoomy);
  ASSERT_TRUE(sorted.ok());
  EXPECT_EQ(sorted->dump(), R"({"alpha":{"b":3,"y":2},"mike":[{"c":5,"k":4}],"zulu":1})");
}

TEST(BoundedJsonTest, ManyKeysInOneObjectStayFast) {
  // Duplicate detection must not be quadratic for ordered objects.
  std::string text = "{";
  for (int i = 0; i < 50000; ++i) text += (i == 0 ? "\"k" : ",\"k") + std::to_string(i) + "\":0";
  text += "}";
  auto ordered = ParseOrdered(text, kRoomy);
  ASSERT_TRUE(ordered.ok()) << ordered.error().ToString();
  EXPECT_EQ(ordered->size(), 50000u);
  text.insert(text.size() - 1, ",\"k17\":1");
  ExpectRefused(text, ErrorKind::kDuplicateKey, text.rfind("\"k17\""));
}

// ---- refusals, one kind at a time -------------------------------------------------

TEST(BoundedJsonTest, TooLarge) {
  const Limits limits{8, 4, 10, 10};
  EXPECT_TRUE(Parse("[1,2,3] ", limits).ok());  // exactly 8 bytes
  const ParseError e = Refused("[1,2,3]  ", limits);
  EXPECT_EQ(e.kind, ErrorKind::kTooLarge);
  EXPECT_EQ(e.message, "the text is 9 bytes; at most 8");
}

TEST(BoundedJsonTest, SyntaxErrors) {
  ExpectRefused("", ErrorKind::kSyntax, 0);
  ExpectRefused("{", ErrorKind::kSyntax, 1);
  ExpectRefused("[1,]", ErrorKind::kSyntax, 3);
  ExpectRefused(R"({"a":1,})", ErrorKind::kSyntax, 7);
  ExpectRefused(R"({"a" 1})", ErrorKind::kSyntax, 5);
  ExpectRefused("{/* c */}", ErrorKind::kSyntax, 1);
  ExpectRefused("// c\n{}", ErrorKind::kSyntax, 0);
  ExpectRefused("['a']", ErrorKind::kSyntax, 1);
  ExpectRefused("[NaN]", ErrorKind::kSyntax, 1);
  ExpectRefused("[01]", ErrorKind::kSyntax, 2);
  ExpectRefused("[+1]", ErrorKind::kSyntax, 1);
  ExpectRefused("[1.]", ErrorKind::kSyntax, 3);
  ExpectRefused("[\"a\tb\"]", ErrorKind::kSyntax, 3);  // a raw control character
  ExpectRefused(R"(["\x"])", ErrorKind::kSyntax, 3);
  ExpectRefused("[tru]", ErrorKind::kSyntax, 4);
  ExpectRefused("\xff", ErrorKind::kSyntax, 0);  // a non-ASCII byte outside a string
  const ParseError e = Refused("{\"kms\": \"k\",\n \"token\": {\"pin_file\": \"p\",}}");
  EXPECT_EQ(e.ToString(),
            "token: JSON syntax error at byte offset 40 (line 2, column 28): syntax error while parsing object key - "
            "unexpected '}'; expected string literal");
}

TEST(BoundedJsonTest, InvalidUtf8) {
  ExpectRefused("[\"\xff\"]", ErrorKind::kInvalidUtf8, 2);
  ExpectRefused("[\"ab\xc0\xaf\"]", ErrorKind::kInvalidUtf8, 4);       // overlong '/'
  ExpectRefused("[\"\xed\xa0\x80\"]", ErrorKind::kInvalidUtf8, 3);     // an encoded surrogate
  ExpectRefused("[\"\xe2\x82\"]", ErrorKind::kInvalidUtf8, 4);         // truncated
  ExpectRefused("[\"\xf4\x90\x80\x80\"]", ErrorKind::kInvalidUtf8, 3); // beyond U+10FFFF
  ExpectRefused("{\"k\xfe\":1}", ErrorKind::kInvalidUtf8, 3);           // in a key
  ExpectRefused(R"(["\ud800"])", ErrorKind::kInvalidUtf8, 8);          // a lone high surrogate
  ExpectRefused(R"(["\udc00"])", ErrorKind::kInvalidUtf8, 7);          // a lone low surrogate
  const ParseError e = Refused("{\"kms_identity\":\"k\xff\"}");
  EXPECT_EQ(e.ToString(),
            "$: invalid UTF-8 at byte offset 18 (line 1, column 19): the byte 0xff is not valid UTF-8 here (RFC 3629)");
}

TEST(BoundedJsonTest, TrailingData) {
  ExpectRefused("{} x", ErrorKind::kTrailingData, 3);
  ExpectRefused("{}{}", ErrorKind::kTrailingData, 2);
  ExpectRefused("1 2", ErrorKind::kTrailingData, 2);
  ExpectRefused("[]\n]", ErrorKind::kTrailingData, 3);
  // nlohmann's lexer ends the text at a NUL byte; the reader does not.
  ExpectRefused(std::string("{}\0", 3), ErrorKind::kTrailingData, 2);
  ExpectRefused(std::string("{} \0{\"a\":1}", 11), ErrorKind::kTrailingData, 3);
  ExpectRefused(std::string("7\0", 2), ErrorKind::kTrailingData, 1);
  ExpectRefused(std::string("[1,\0]", 5), ErrorKind::kSyntax, 3);
  EXPECT_THAT(Refused("{} x").message, HasSubstr("data after the JSON value"));
}

TEST(BoundedJsonTest, NumberOutOfRange) {
  ExpectRefused("[1e400]", ErrorKind::kNumberOutOfRange, 1);
  ExpectRefused("[0, -1e400 ]", ErrorKind::kNumberOutOfRange, 4);
  EXPECT_THAT(Refused("[1e400]").message, HasSubstr("number overflow parsing '1e400'"));
  // Integers beyond 64 bits are read as doubles, like every JSON number.
  EXPECT_TRUE(Accepted("[18446744073709551616]")[0].is_number_float());
}

TEST(BoundedJsonTest, TooDeep) {
  const Limits limits{1 << 10, 3, 100, 100};
  EXPECT_TRUE(Parse("[[{\"a\":1}]]", limits).ok());  // exactly 3
  const std::string text = R"({"a":[{"b":[1]}]})";
  const ParseError e = Refused(text, limits);
  EXPECT_EQ(e.kind, ErrorKind::kTooDeep);
  EXPECT_EQ(e.offset, text.find("[1]"));
  EXPECT_EQ(e.path, "a[0].b");
  EXPECT_EQ(e.ToString(), "a[0].b: nested deeper than 3 levels at byte offset 11 (line 1, column 12)");
  // A million open brackets: refused at the fourth, the rest never read.
  ExpectRefused(std::string(1 << 20, '['), ErrorKind::kTooDeep, 3, Limits{1 << 20, 3, 100, 100});
  // Depth 0: no container at all.
  ExpectRefused("{}", ErrorKind::kTooDeep, 0, Limits{10, 0, 10, 10});
  EXPECT_TRUE(Parse("1", Limits{10, 0, 10, 10}).ok());
}

TEST(BoundedJsonTest, TooManyValues) {
  const Limits limits{1 << 10, 4, 4, 100};
  EXPECT_TRUE(Parse("[1,\"a\",true]", limits).ok());  // 4 values: the array and three
  ExpectRefused("[1,\"a\",true,null]", ErrorKind::kTooManyValues, 12, limits);
  ExpectRefused("[1,\"a\",[],{}]", ErrorKind::kTooManyValues, 10, limits);
  ExpectRefused("[1,\"a\",true,\"xyz\"]", ErrorKind::kTooManyValues, 12, limits);
  ExpectRefused("[1,\"a\",true,-12.5e1 ]", ErrorKind::kTooManyValues, 12, limits);
  ExpectRefused("[1,\"a\",true,7]", ErrorKind::kTooManyValues, 12, limits);
  EXPECT_EQ(Refused("[1,2,3,4,5]", limits).path, "$[3]");
  // Keys are not values.
  EXPECT_TRUE(Parse(R"({"a":1,"b":2,"c":3})", limits).ok());
}

TEST(BoundedJsonTest, StringTooLong) {
  const Limits limits{1 << 10, 4, 100, 4};
  EXPECT_TRUE(Parse(R"(["abcd","\u00e9\u00e9"])", limits).ok());  // 4 bytes each after unescaping
  ExpectRefused(R"(["abcde"])", ErrorKind::kStringTooLong, 1, limits);
  ExpectRefused(R"(["ab","\u00e9\u00e9a"])", ErrorKind::kStringTooLong, 6, limits);
  ExpectRefused(R"(["\"\"\"\"\""])", ErrorKind::kStringTooLong, 1, limits);  // escaped quotes
  ExpectRefused(R"({"abcde":1})", ErrorKind::kStringTooLong, 1, limits);      // a key
  const ParseError e = Refused(R"({"o":{"k":"12345"}})", limits);
  EXPECT_EQ(e.path, "o.k");
  EXPECT_THAT(e.message, HasSubstr("a string of 5 bytes; at most 4"));
}

TEST(BoundedJsonTest, DuplicateKeys) {
  ExpectRefused(R"({"a":1,"a":2})", ErrorKind::kDuplicateKey, 7);
  ExpectRefused(R"({"a":1,"\u0061":2})", ErrorKind::kDuplicateKey, 7);  // the same key, escaped
  ExpectRefused(R"({"x":[{"k\\":1,"k\\":{}}]})", ErrorKind::kDuplicateKey, 15);
  const ParseError e = Refused(R"({"token":{"pin_file":"p","pin_file":"q"}})");
  EXPECT_EQ(e.ToString(), "token.pin_file: duplicate key at byte offset 25 (line 1, column 26)");
  // The same key in two objects is fine.
  EXPECT_TRUE(Parse(R"({"a":{"k":1},"b":{"k":2},"k":3})", kRoomy).ok());
  EXPECT_TRUE(ParseOrdered(R"({"a":{"k":1},"b":{"k":2},"k":3})", kRoomy).ok());
}

TEST(BoundedJsonTest, LinesAndColumnsCountBytesFromOne) {
  const ParseError e = Refused("[\n  1,\n  \xc3\xa9 ]");
  EXPECT_EQ(e.kind, ErrorKind::kSyntax);
  EXPECT_EQ(e.offset, 9u);
  EXPECT_EQ(e.line, 3u);
  EXPECT_EQ(e.column, 3u);
}

TEST(BoundedJsonTest, MessagesArePrintableAndShort) {
  const std::string junk = "{\"k\":\"" + std::string(5000, 'y') + "\x01\"}";
  const ParseError e = Refused(junk);
  EXPECT_TRUE(IsPrintableAscii(e.ToString())) << e.ToString();
  EXPECT_LT(e.ToString().size(), 300u) << e.ToString();
  const std::string key(300, '\x7f');
  const ParseError dup = Refused("{\"" + key + "\":1,\"" + key + "\":2}");
  EXPECT_EQ(dup.kind, ErrorKind::kDuplicateKey);
  EXPECT_THAT(dup.path, StartsWith("$['\\x7f"));
  EXPECT_LT(dup.ToString().size(), 400u);
}

TEST(BoundedJsonTest, EveryKindHasAName) {
  for (int k = 0; k <= static_cast<int>(ErrorKind::kOutOfMemory); ++k) {
    EXPECT_STRNE(ErrorKindName(static_cast<ErrorKind>(k)), "unknown");
  }
}

// ---- paths -------------------------------------------------------------------------

TEST(JsonPathTest, Notation) {
  EXPECT_EQ(PathOrRoot(""), "$");
  EXPECT_EQ(KeyPath("", "users"), "users");
  EXPECT_EQ(IndexPath(KeyPath("", "users"), 2), "users[2]");
  EXPECT_EQ(KeyPath("users[2]", "psk_id"), "users[2].psk_id");
  EXPECT_EQ(KeyPath("policy_classes", "gold.v2"), "policy_classes['gold.v2']");
  EXPECT_EQ(KeyPath("", "a b"), "$['a b']");
  EXPECT_EQ(IndexPath("", 0), "$[0]");
  EXPECT_EQ(KeyPath("", "it's"), "$['it\\'s']");
  EXPECT_EQ(KeyPath("", std::string(65, 'k')), "$['" + std::string(64, 'k') + "...']");
  EXPECT_TRUE(IsPlainKey("max_body-bytes9"));
  EXPECT_FALSE(IsPlainKey(""));
  EXPECT_FALSE(IsPlainKey("a.b"));
}

}  // namespace
}  // namespace tkms::json
