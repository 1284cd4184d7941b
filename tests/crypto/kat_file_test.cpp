// The vector-file loader must refuse records that a test could silently
// half-use, and the committed file must contain only kinds some test checks.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "tests/crypto/kat_file.h"

namespace tkms::test {
namespace {

constexpr char kGood[] =
    "# header block without fields\n"
    "\n"
    "# how this record was obtained\n"
    "kind = sample\n"
    "number = 0x10\n"
    "data = 00ff\n"
    "absent = -\n"
    "parts = 01,0203\n"
    "\n";

TEST(crypto_KatFile, ParsesRecords) {
  auto records = ParseKat(kGood, "good.txt");
  ASSERT_TRUE(records.ok()) << records.error().ToString();
  ASSERT_EQ(records->size(), 1u);
  KatRecord& r = (*records)[0];
  EXPECT_EQ(r.kind(), "sample");
  EXPECT_EQ(r.where(), "good.txt:3");
  EXPECT_EQ(r.Uint("number"), 16u);
  EXPECT_EQ(r.Hex("data"), (std::vector<uint8_t>{0x00, 0xff}));
  EXPECT_FALSE(r.OptionalHex("absent").has_value());
  EXPECT_EQ(r.HexList("parts").size(), 2u);
  EXPECT_TRUE(r.Finish().ok()) << r.Finish().ToString();
}

TEST(crypto_KatFile, UnusedFieldFails) {
  auto records = ParseKat(kGood, "good.txt");
  ASSERT_TRUE(records.ok());
  KatRecord& r = (*records)[0];
  r.Uint("number");
  r.Hex("data");
  r.OptionalHex("absent");
  Status finish = r.Finish();
  EXPECT_FALSE(finish.ok());
  EXPECT_NE(finish.message().find("unused field parts"), std::string::npos);
}

TEST(crypto_KatFile, MissingFieldFails) {
  auto records = ParseKat(kGood, "good.txt");
  ASSERT_TRUE(records.ok());
  KatRecord& r = (*records)[0];
  r.Uint("number");
  r.Hex("data");
  r.OptionalHex("absent");
  r.HexList("parts");
  r.Hex("no_such_field");
  Status finish = r.Finish();
  EXPECT_FALSE(finish.ok());
  EXPECT_NE(finish.message().find("missing field no_such_field"), std::string::npos);
}

TEST(crypto_KatFile, MalformedValuesFail) {
  auto records = ParseKat("# c\nkind = k\nhex = 0g\nnum = 12a\nlist = 01,zz\n", "bad.txt");
  ASSERT_TRUE(records.ok());
  KatRecord& r = (*records)[0];
  r.Hex("hex");
  EXPECT_FALSE(r.Finish().ok());
  r.Uint("num");
  r.HexList("list");
  Status finish = r.Finish();
  EXPECT_NE(finish.message().find("hex is not hex"), std::string::npos);
  EXPECT_NE(finish.message().find("num is not an unsigned integer"), std::string::npos);
  EXPECT_NE(finish.message().find("list has a part that is not hex"), std::string::npos);
}

TEST(crypto_KatFile, StructuralErrorsFailParsing) {
  EXPECT_FALSE(ParseKat("kind = k\na = 1\n", "x").ok()) << "record without comment";
  EXPECT_FALSE(ParseKat("# c\nkind = k\na = 1\na = 2\n", "x").ok()) << "repeated field";
  EXPECT_FALSE(ParseKat("# c\nkind = k\njunk\n", "x").ok()) << "line without '='";
  EXPECT_FALSE(ParseKat("# c\na = 1\n", "x").ok()) << "record without kind";
  EXPECT_FALSE(LoadKatFile("/nonexistent/kat.txt").ok());
}

TEST(crypto_KatFile, CommittedFileHoldsOnlyCheckedKinds) {
  // Each kind is consumed by the test named next to it; an unknown kind would
  // be a vector that nothing checks.
  const std::map<std::string, size_t> minimum = {
      {"prf", 72},        {"rfc3830_tgk", 8}, {"rfc3830_msg", 4}, {"ticket_msg", 9},
      {"ticket_tgk", 6},  {"fork", 4},        {"vr_auth", 3},     {"tpk", 3},
      {"mpk", 4},         {"srtp_3830", 3},   {"srtp_6043", 4},   {"aes_ctr", 3},
      {"kemac", 6},       {"mac", 3},
  };
  auto records = LoadKatFile(CryptoKatPath());
  ASSERT_TRUE(records.ok()) << records.error().ToString();
  std::map<std::string, size_t> count;
  for (const KatRecord& r : *records) {
    EXPECT_EQ(minimum.count(r.kind()), 1u) << r.where() << ": unchecked kind " << r.kind();
    ++count[r.kind()];
  }
  for (const auto& [kind, at_least] : minimum) {
    EXPECT_GE(count[kind], at_least) << kind;
  }
}

}  // namespace
}  // namespace tkms::test
