// Session, SessionObject, TokenLogin and SessionPool (pkcs11/session.h)
// against the real module.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "pkcs11/attributes.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "tests/pkcs11/softhsm_fixture.h"

namespace tkms::pkcs11 {
namespace {

using test::SoftHsmToken;

class pkcs11_Session : public ::testing::Test {
 protected:
  void SetUp() override {
    auto token = SoftHsmToken::Create();
    ASSERT_TRUE(token.ok()) << token.error().ToString();
    token_ = std::move(*token);
    Result<TokenInfo> info = FindToken(*token_->module(), token_->label());
    ASSERT_TRUE(info.ok()) << info.error().ToString();
    slot_ = info->slot_id;
  }
  CK_RV SessionInfo(CK_SESSION_HANDLE handle, CK_SESSION_INFO& info) {
    return token_->module()->fns().C_GetSessionInfo(handle, &info);
  }
  CK_STATE StateOfNewSession() {
    Result<Session> s = Session::Open(token_->module(), slot_);
    EXPECT_TRUE(s.ok());
    CK_SESSION_INFO info{};
    EXPECT_EQ(SessionInfo(s->handle(), info), CKR_OK);
    return info.state;
  }

  std::unique_ptr<SoftHsmToken> token_;
  CK_SLOT_ID slot_ = 0;
};

TEST_F(pkcs11_Session, ClosesExactlyOnce) {
  Result<Session> opened = Session::Open(token_->module(), slot_);
  ASSERT_TRUE(opened.ok()) << opened.error().ToString();
  const CK_SESSION_HANDLE handle = opened->handle();
  CK_SESSION_INFO info{};
  {
    Session moved = std::move(*opened);
    EXPECT_FALSE(opened->valid());  // NOLINT: checking the moved-from state
    EXPECT_EQ(moved.handle(), handle);
    ASSERT_EQ(SessionInfo(handle, info), CKR_OK);
    EXPECT_EQ(info.state, static_cast<CK_STATE>(CKS_RW_PUBLIC_SESSION));
  }
  EXPECT_EQ(SessionInfo(handle, info), CKR_SESSION_HANDLE_INVALID);
}

TEST_F(pkcs11_Session, SessionObjectIsDestroyedOnScopeExit) {
  Result<Session> session = Session::Open(token_->module(), slot_);
  ASSERT_TRUE(session.ok());
  AttributeTemplate tmpl;
  tmpl.Ulong(CKA_CLASS, CKO_DATA).Bool(CKA_TOKEN, false).Bool(CKA_PRIVATE, false).Text(CKA_LABEL, "x");
  CK_OBJECT_HANDLE handle = kInvalidHandle;
  ASSERT_EQ(session->fns().C_CreateObject(session->handle(), tmpl.data(), tmpl.size(), &handle),
            CKR_OK);
  CK_OBJECT_CLASS cls = 0;
  CK_ATTRIBUTE attribute{CKA_CLASS, &cls, sizeof(cls)};
  {
    SessionObject object(*session, handle);
    SessionObject moved = std::move(object);
    EXPECT_FALSE(object.valid());  // NOLINT: moved-from
    EXPECT_EQ(session->fns().C_GetAttributeValue(session->handle(), handle, &attribute, 1), CKR_OK);
  }
  EXPECT_EQ(session->fns().C_GetAttributeValue(session->handle(), handle, &attribute, 1),
            CKR_OBJECT_HANDLE_INVALID);
}

TEST_F(pkcs11_Session, LoginBelongsToTheTokenAndEndsWithThePinnedSession) {
  {
    Result<TokenLogin> login = TokenLogin::Open(token_->module(), slot_, SoftHsmToken::UserPin());
    ASSERT_TRUE(login.ok()) << login.error().ToString();
    // Another session of the process is logged in too.
    EXPECT_EQ(StateOfNewSession(), static_cast<CK_STATE>(CKS_RW_USER_FUNCTIONS));
    // A second login on the same token is not accepted (the PIN would not be
    // checked).
    Result<TokenLogin> again = TokenLogin::Open(token_->module(), slot_, SoftHsmToken::UserPin());
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().message(), "C_Login failed: CKR_USER_ALREADY_LOGGED_IN (0x100)");
  }
  EXPECT_EQ(StateOfNewSession(), static_cast<CK_STATE>(CKS_RW_PUBLIC_SESSION));
}

TEST_F(pkcs11_Session, WrongPinIsPermissionDenied) {
  const SecretBytes wrong{'w', 'r', 'o', 'n', 'g', '-', '9', '9'};
  Result<TokenLogin> login = TokenLogin::Open(token_->module(), slot_, wrong);
  ASSERT_FALSE(login.ok());
  EXPECT_EQ(login.error().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(login.error().message(), "C_Login failed: CKR_PIN_INCORRECT (0xa0)");
}

TEST_F(pkcs11_Session, PoolIsBoundedAndReusesSessions) {
  SessionPool pool(token_->module(), slot_, 2, std::chrono::milliseconds(50));
  Result<SessionPool::Lease> a = pool.Acquire();
  Result<SessionPool::Lease> b = pool.Acquire();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->handle(), (*b)->handle());
  EXPECT_EQ(pool.open_sessions(), 2u);

  const auto start = std::chrono::steady_clock::now();
  Result<SessionPool::Lease> c = pool.Acquire();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(c.error().message(), "all 2 PKCS#11 sessions stayed busy for 50 ms");
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(45));

  const CK_SESSION_HANDLE reused = (*a)->handle();
  { SessionPool::Lease done = std::move(*a); }
  Result<SessionPool::Lease> d = pool.Acquire();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->handle(), reused);

  d->Discard();
  { SessionPool::Lease done = std::move(*d); }
  EXPECT_EQ(pool.open_sessions(), 1u);
  CK_SESSION_INFO info{};
  EXPECT_EQ(SessionInfo(reused, info), CKR_SESSION_HANDLE_INVALID);
}

TEST_F(pkcs11_Session, PoolWaitsForAReturnedSession) {
  SessionPool pool(token_->module(), slot_, 1, std::chrono::milliseconds(5000));
  Result<SessionPool::Lease> held = pool.Acquire();
  ASSERT_TRUE(held.ok());
  std::thread releaser([lease = std::move(*held)]() mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    SessionPool::Lease done = std::move(lease);
  });
  Result<SessionPool::Lease> waited = pool.Acquire();
  EXPECT_TRUE(waited.ok());
  releaser.join();
}

}  // namespace
}  // namespace tkms::pkcs11
