// RFC 7512 PKCS#11 URI parsing and formatting (pkcs11/uri.h), and key
// selectors from URIs (pkcs11/key_selector.h).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pkcs11/key_selector.h"
#include "pkcs11/uri.h"

namespace tkms::pkcs11 {
namespace {

Pkcs11Uri MustParse(std::string_view text) {
  Result<Pkcs11Uri> uri = ParsePkcs11Uri(text);
  EXPECT_TRUE(uri.ok()) << text << ": " << uri.error().ToString();
  return uri.ok() ? *uri : Pkcs11Uri{};
}

void ExpectRoundTrip(std::string_view text) {
  SCOPED_TRACE(std::string(text));
  const Pkcs11Uri uri = MustParse(text);
  const std::string formatted = FormatPkcs11Uri(uri);
  Result<Pkcs11Uri> again = ParsePkcs11Uri(formatted);
  ASSERT_TRUE(again.ok()) << formatted << ": " << again.error().ToString();
  EXPECT_EQ(*again, uri) << formatted;
  EXPECT_EQ(FormatPkcs11Uri(*again), formatted);
}

StatusCode ParseCode(std::string_view text) {
  Result<Pkcs11Uri> uri = ParsePkcs11Uri(text);
  return uri.ok() ? StatusCode::kOk : uri.error().code();
}

// RFC 7512 §3 examples (the one with a pin-value and the one with vendor
// attributes without the "x-" prefix are tested separately below).
const char* const kRfcExamples[] = {
    "pkcs11:",
    "pkcs11:object=my-pubkey;type=public",
    "pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
    "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;"
    "model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial="
    "?pin-source=file:/etc/token_pin",
    "pkcs11:object=my-sign-key;type=private?module-name=mypkcs11",
    "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
    "pkcs11:slot-description=Sun%20Metaslot",
    "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;"
    "library-version=1.23",
    "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;"
    "id=%01%02%03%Ba%dd%Ca%fe%04%05%06",
    "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
    "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;"
    "type=cert",
};

TEST(pkcs11_Uri, ParsesTheRfc7512Examples) {
  for (const char* example : kRfcExamples) ExpectRoundTrip(example);
}

TEST(pkcs11_Uri, DecodesValues) {
  const Pkcs11Uri uri = MustParse(kRfcExamples[3]);
  EXPECT_EQ(uri.token, "The Software PKCS#11 Softtoken");
  EXPECT_EQ(uri.manufacturer, "Snake Oil, Inc.");
  EXPECT_EQ(uri.model, "1.0");
  EXPECT_EQ(uri.object, "my-certificate");
  EXPECT_EQ(uri.type, UriObjectType::kCert);
  EXPECT_EQ(uri.id, (std::vector<uint8_t>{0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91}));
  EXPECT_EQ(uri.serial, "");  // present and empty
  EXPECT_FALSE(uri.slot_id.has_value());
  EXPECT_EQ(uri.pin_source, "file:/etc/token_pin");

  const Pkcs11Uri lib = MustParse(kRfcExamples[7]);
  ASSERT_TRUE(lib.library_version.has_value());
  EXPECT_EQ(lib.library_version->major, 1u);
  EXPECT_EQ(lib.library_version->minor, 23u);
  EXPECT_EQ(MustParse(kRfcExamples[8]).library_version->minor, std::nullopt);
  EXPECT_EQ(MustParse(kRfcExamples[10]).token, "Name with a small A with acute: \xc3\xa1");
}

TEST(pkcs11_Uri, FormatsCanonically) {
  Pkcs11Uri uri;
  uri.token = "tkms";
  uri.object = "psk alice;1";
  uri.id = std::vector<uint8_t>{0x01, 0x02, 0xab};
  uri.slot_id = 42;
  uri.type = UriObjectType::kSecretKey;
  uri.vendor_path.push_back({"x-tkms", "a/b"});
  uri.module_path = "/usr/lib/softhsm/libsofthsm2.so";
  EXPECT_EQ(FormatPkcs11Uri(uri),
            "pkcs11:token=tkms;slot-id=42;object=psk%20alice%3B1;type=secret-key;id=%01%02%AB;"
            "x-tkms=a%2Fb?module-path=/usr/lib/softhsm/libsofthsm2.so");
  // Only what must be encoded is: allowed characters stay raw, in ids too.
  Pkcs11Uri raw;
  raw.object = "a:b=c&d";
  raw.id = std::vector<uint8_t>{'A', ':', 0x00};
  raw.pin_source = "file:/etc/pin?x|y&z";
  EXPECT_EQ(FormatPkcs11Uri(raw), "pkcs11:object=a:b=c&d;id=A:%00?pin-source=file:/etc/pin?x|y%26z");
  EXPECT_EQ(FormatPkcs11Uri(Pkcs11Uri{}), "pkcs11:");
}

TEST(pkcs11_Uri, AcceptsReservedCharactersWhereTheGrammarAllows) {
  // pk11-path-res-avail and pk11-query-res-avail characters, unencoded.
  const Pkcs11Uri uri = MustParse("pkcs11:token=:[]@!$'()*+,=&?x-attr=:[]@!$'()*+,=/?|");
  EXPECT_EQ(uri.token, ":[]@!$'()*+,=&");
  ASSERT_EQ(uri.vendor_query.size(), 1u);
  EXPECT_EQ(uri.vendor_query[0].value, ":[]@!$'()*+,=/?|");
  EXPECT_EQ(MustParse("PKCS11:token=a").token, "a");  // scheme is case-insensitive
  EXPECT_EQ(MustParse("pkcs11:token=%00%ff").token, std::string("\0\xff", 2));
}

TEST(pkcs11_Uri, RefusesPinValue) {
  Result<Pkcs11Uri> uri = ParsePkcs11Uri(
      "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc."
      "?pin-value=the-pin");
  ASSERT_FALSE(uri.ok());
  EXPECT_EQ(uri.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(uri.error().message().find("pin-value is refused"), std::string::npos);
  EXPECT_EQ(uri.error().message().find("the-pin"), std::string::npos);
}

TEST(pkcs11_Uri, RefusesVendorAttributesWithoutXPrefix) {
  // RFC 7512 §3's last example uses "vendor-aaa"; tkms keeps vendor
  // attributes only under the "x-" prefix and refuses other unknown names.
  EXPECT_EQ(ParseCode("pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a"
                      "?pin-source=file:/etc/token_pin&vendor-bbb=value-b"),
            StatusCode::kInvalidArgument);
  const Pkcs11Uri uri = MustParse(
      "pkcs11:token=my-token;x-vendor-aaa=value-a?pin-source=f&x-bbb=1&x-bbb=2");
  ASSERT_EQ(uri.vendor_path.size(), 1u);
  EXPECT_EQ(uri.vendor_path[0].name, "x-vendor-aaa");
  ASSERT_EQ(uri.vendor_query.size(), 2u);  // query vendor attributes may repeat
  ExpectRoundTrip("pkcs11:token=my-token;x-vendor-aaa=value-a?pin-source=f&x-bbb=1&x-bbb=2");
}

TEST(pkcs11_Uri, RefusesMalformedInput) {
  const char* const bad[] = {
      "",
      "pkcs11",
      "pkcs:token=a",
      "pkcs11:token",             // not name=value
      "pkcs11:=a",                // empty name
      "pkcs11:token=a;",          // empty attribute
      "pkcs11:;token=a",
      "pkcs11:token=a;;object=b",
      "pkcs11:token=a?",          // empty query is fine...
      "pkcs11:token=a?&",         // ...empty query attributes are not
      "pkcs11:token=a b",         // space must be encoded
      "pkcs11:token=a%2",         // truncated escape
      "pkcs11:token=a%zz",        // not hex
      "pkcs11:token=a%",
      "pkcs11:token=a/b",         // '/' only in the query
      "pkcs11:token=a?pin-source=a&b",
      "pkcs11:token=a;token=b",   // duplicate
      "pkcs11:id=%01;id=%02",
      "pkcs11:x-a=1;x-a=2",
      "pkcs11:foo=bar",           // unknown
      "pkcs11:Token=a",           // names are case-sensitive
      "pkcs11:token=a?foo=bar",
      "pkcs11:slot-id=",
      "pkcs11:slot-id=1a",
      "pkcs11:slot-id=%31",
      "pkcs11:slot-id=18446744073709551616",  // 2^64
      "pkcs11:library-version=",
      "pkcs11:library-version=1.",
      "pkcs11:library-version=.1",
      "pkcs11:library-version=256",
      "pkcs11:library-version=1.2.3",
      "pkcs11:type=",
      "pkcs11:type=Public",
      "pkcs11:type=secret",
      "pkcs11:token=\xc3\xa1",  // non-ASCII must be percent-encoded
      "pkcs11:token=a#frag",
      "pkcs11:x-=1",
      "pkcs11:x-a.b=1",
  };
  for (const char* text : bad) {
    if (std::string_view(text) == "pkcs11:token=a?") {
      EXPECT_EQ(ParseCode(text), StatusCode::kOk);
      continue;
    }
    EXPECT_EQ(ParseCode(text), StatusCode::kInvalidArgument) << text;
  }
  EXPECT_EQ(MustParse("pkcs11:slot-id=18446744073709551615").slot_id, UINT64_MAX);
}

TEST(pkcs11_Uri, ErrorsGiveTheOffset) {
  Result<Pkcs11Uri> uri = ParsePkcs11Uri("pkcs11:token=ab%zz");
  ASSERT_FALSE(uri.ok());
  EXPECT_EQ(uri.error().message(), "PKCS#11 URI: invalid percent-encoding at offset 15");
}

TEST(pkcs11_Uri, CanonicalFormIsNeverLonger) {
  // A fuzzer find: "%"-encoding allowed characters in Format made the
  // canonical text of a long URI exceed the length limit.
  std::string text = "pkcs11:id=";
  text.append(kMaxPkcs11UriLength - text.size(), ':');
  const Pkcs11Uri uri = MustParse(text);
  EXPECT_EQ(FormatPkcs11Uri(uri).size(), text.size());
  ExpectRoundTrip(text);
}

TEST(pkcs11_Uri, LengthLimit) {
  std::string text = "pkcs11:token=";
  text.append(kMaxPkcs11UriLength - text.size(), 'a');
  EXPECT_EQ(ParseCode(text), StatusCode::kOk);
  text.push_back('a');
  EXPECT_EQ(ParseCode(text), StatusCode::kInvalidArgument);
}

TEST(pkcs11_KeySelector, FromUri) {
  Result<KeySelector> both = KeySelectorFromUri("pkcs11:object=L;id=%01%02");
  ASSERT_TRUE(both.ok()) << both.error().ToString();
  EXPECT_EQ(both->label, "L");
  EXPECT_EQ(both->id, (Bytes{0x01, 0x02}));
  EXPECT_EQ(both->ToString(), "label 'L' id 0102");
  Result<KeySelector> label = KeySelectorFromUri("pkcs11:object=psk%20alice");
  ASSERT_TRUE(label.ok());
  EXPECT_EQ(label->label, "psk alice");
  EXPECT_FALSE(label->id.has_value());

  for (const char* bad : {"pkcs11:", "pkcs11:token=tkms;object=L", "pkcs11:object=L;type=secret-key",
                          "pkcs11:object=L?pin-source=file:/x", "object=L",
                          "pkcs11:object=L?pin-value=1234"}) {
    Result<KeySelector> selector = KeySelectorFromUri(bad);
    ASSERT_FALSE(selector.ok()) << bad;
    EXPECT_EQ(selector.error().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace tkms::pkcs11
