// Token discovery and initialisation (pkcs11/token.h).
#include <gtest/gtest.h>

#include <string>

#include "pkcs11/token.h"
#include "tests/pkcs11/softhsm_fixture.h"

namespace tkms::pkcs11 {
namespace {

using test::SoftHsmToken;

class pkcs11_Token : public ::testing::Test {
 protected:
  void SetUp() override {
    auto token = SoftHsmToken::Create();
    ASSERT_TRUE(token.ok()) << token.error().ToString();
    token_ = std::move(*token);
  }
  Module& module() { return *token_->module(); }

  std::unique_ptr<SoftHsmToken> token_;
};

TEST_F(pkcs11_Token, ListsTheInitialisedToken) {
  Result<std::vector<TokenInfo>> tokens = ListTokens(module());
  ASSERT_TRUE(tokens.ok()) << tokens.error().ToString();
  const TokenInfo* found = nullptr;
  for (const TokenInfo& t : *tokens) {
    if (t.label == token_->label()) found = &t;
  }
  ASSERT_NE(found, nullptr);
  EXPECT_TRUE(found->initialized);
  EXPECT_TRUE(found->user_pin_initialized);
  EXPECT_TRUE(found->login_required);
  EXPECT_TRUE(found->has_rng);
  EXPECT_FALSE(found->write_protected);
  EXPECT_FALSE(found->serial.empty());
  EXPECT_FALSE(found->manufacturer.empty());
}

TEST_F(pkcs11_Token, FindsByLabelSerialAndUri) {
  Result<TokenInfo> by_label = FindToken(module(), token_->label());
  ASSERT_TRUE(by_label.ok()) << by_label.error().ToString();
  Result<TokenInfo> by_serial = FindToken(module(), "serial:" + by_label->serial);
  ASSERT_TRUE(by_serial.ok()) << by_serial.error().ToString();
  EXPECT_EQ(by_serial->slot_id, by_label->slot_id);
  Result<TokenInfo> by_uri = FindToken(module(), "pkcs11:token=" + token_->label());
  ASSERT_TRUE(by_uri.ok()) << by_uri.error().ToString();
  EXPECT_EQ(by_uri->slot_id, by_label->slot_id);
  Pkcs11Uri uri;
  uri.token = by_label->label;
  uri.serial = by_label->serial;
  uri.slot_id = by_label->slot_id;
  uri.manufacturer = by_label->manufacturer;
  uri.library_manufacturer = module().info().manufacturer;
  Result<TokenInfo> by_full_uri = FindToken(module(), FormatPkcs11Uri(uri));
  ASSERT_TRUE(by_full_uri.ok()) << by_full_uri.error().ToString();
}

TEST_F(pkcs11_Token, MissingTokenListsWhatExists) {
  Result<TokenInfo> token = FindToken(module(), "no-such-token");
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.error().code(), StatusCode::kNotFound);
  EXPECT_EQ(token.error().message(),
            "no token labelled 'no-such-token' (available tokens: '" + token_->label() + "')");
  EXPECT_EQ(FindToken(module(), "serial:0000").error().code(), StatusCode::kNotFound);
  EXPECT_EQ(FindToken(module(), "pkcs11:token=tkms-test;library-manufacturer=Nobody")
                .error()
                .code(),
            StatusCode::kNotFound);
}

TEST_F(pkcs11_Token, RefusesUnusableSpecs) {
  EXPECT_EQ(FindToken(module(), "").error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(FindToken(module(), "serial:").error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(FindToken(module(), "pkcs11:token=tkms-test;object=k").error().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(FindToken(module(), "pkcs11:token=%zz").error().code(), StatusCode::kInvalidArgument);
}

TEST_F(pkcs11_Token, InitTokenAddsASecondTokenAndRefusesDuplicates) {
  ASSERT_TRUE(token_->AddToken("second").ok());
  Result<TokenInfo> second = FindToken(module(), "second");
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  EXPECT_TRUE(second->user_pin_initialized);

  Status duplicate = InitToken(module(), "second", SoftHsmToken::SoPin(), SoftHsmToken::UserPin());
  EXPECT_EQ(duplicate.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(duplicate.message(), "a token labelled 'second' already exists");
  EXPECT_EQ(InitToken(module(), std::string(33, 'x'), SoftHsmToken::SoPin(), SoftHsmToken::UserPin())
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(InitToken(module(), "third", SecretBytes{}, SoftHsmToken::UserPin()).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(pkcs11_Token, PinTheTokenRefusesIsInvalidArgument) {
  // SoftHSM2 requires at least 4 bytes.
  const SecretBytes short_pin{'1', '2'};
  Status status = InitToken(module(), "short-pin", short_pin, SoftHsmToken::UserPin());
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
}

}  // namespace
}  // namespace tkms::pkcs11
