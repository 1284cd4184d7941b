// The KMS user identity format (firmware/base/user_identity.h): the one
// transformation identities go through before they are compared (TS 33.328
// B.2.2.2 step 5; RFC 3261 §19.1.4, RFC 3966 §3-4, RFC 3986 §3.1, §6.2.2).
#include "firmware/base/user_identity.h"

#include <gtest/gtest.h>

namespace tkms {
namespace {

TEST(UserIdentity, SipSchemeAndHostAreCaseInsensitiveTheUserIsNot) {
  EXPECT_EQ(CanonicalUserIdentity("SIP:alice@EXAMPLE.org"), "sip:alice@example.org");
  EXPECT_EQ(CanonicalUserIdentity("sips:Alice@Example.Org:5061;Transport=TLS"), "sips:Alice@example.org:5061;Transport=TLS");
  EXPECT_TRUE(SameUserIdentity("sip:alice@example.org", "Sip:alice@Example.ORG"));
  EXPECT_FALSE(SameUserIdentity("sip:alice@example.org", "sip:Alice@example.org"));
  // A host without a user part.
  EXPECT_EQ(CanonicalUserIdentity("sip:PROXY.Example.org"), "sip:proxy.example.org");
  // '@' inside parameters does not move the host.
  EXPECT_EQ(CanonicalUserIdentity("sip:bob@HOST;x=a@B"), "sip:bob@host;x=a@B");
}

TEST(UserIdentity, PercentEncodingIsNormalised) {
  // %61 is 'a' (unreserved): decoded; %2f is '/' (reserved): kept, hex upper-cased.
  EXPECT_EQ(CanonicalUserIdentity("sip:%61lice@example.org"), "sip:alice@example.org");
  EXPECT_EQ(CanonicalUserIdentity("sip:a%2fb@example.org"), "sip:a%2Fb@example.org");
  EXPECT_EQ(CanonicalUserIdentity("sip:a%zz@example.org"), "sip:a%zz@example.org");  // not an escape
  EXPECT_EQ(CanonicalUserIdentity("sip:a%4"), "sip:a%4");                             // truncated
}

TEST(UserIdentity, TelNumbersIgnoreVisualSeparators) {
  EXPECT_EQ(CanonicalUserIdentity("TEL:+1-201-555-0123"), "tel:+12015550123");
  EXPECT_TRUE(SameUserIdentity("tel:+1(201)555.0123;phone-context=x", "tel:+12015550123;phone-context=x"));
  // Separators in parameters are not part of the number.
  EXPECT_EQ(CanonicalUserIdentity("tel:+1-2;a=b-c"), "tel:+12;a=b-c");
}

TEST(UserIdentity, OtherUrisAndBareNames) {
  EXPECT_EQ(CanonicalUserIdentity("HTTPS://User@KMS.Example.Org:443/Path"), "https://User@kms.example.org:443/Path");
  EXPECT_EQ(CanonicalUserIdentity("urn:Example:Thing"), "urn:Example:Thing");
  // No scheme: an FQDN such as a KMS identity, case-insensitive as a whole.
  EXPECT_EQ(CanonicalUserIdentity("KMS.Example.ORG"), "kms.example.org");
  EXPECT_EQ(CanonicalUserIdentity(""), "");
}

TEST(UserIdentity, IsIdempotent) {
  for (const char* id : {"SIP:%61lice@EXAMPLE.org;X=%2f", "tel:+1-(2)", "https://A@B.C/%7e", "KMS.x", "sip:"}) {
    const std::string once = CanonicalUserIdentity(id);
    EXPECT_EQ(CanonicalUserIdentity(once), once) << id;
  }
}

}  // namespace
}  // namespace tkms
