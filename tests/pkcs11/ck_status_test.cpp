// FromCkRv: the CK_RV -> Status mapping and its messages (pkcs11/ck_status.h).
#include <gtest/gtest.h>

#include <string>

#include "pkcs11/ck_status.h"

namespace tkms::pkcs11 {
namespace {

TEST(pkcs11_CkStatus, OkIsOk) { EXPECT_TRUE(FromCkRv(CKR_OK, "C_Login").ok()); }

TEST(pkcs11_CkStatus, MessageNamesCallAndCode) {
  Status status = FromCkRv(CKR_PIN_INCORRECT, "C_Login");
  EXPECT_EQ(status.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(status.message(), "C_Login failed: CKR_PIN_INCORRECT (0xa0)");
  EXPECT_EQ(FromCkRv(CKR_KEY_NOT_WRAPPABLE, "C_WrapKey").message(),
            "C_WrapKey failed: CKR_KEY_NOT_WRAPPABLE (0x69)");
}

TEST(pkcs11_CkStatus, MapsTheDocumentedClasses) {
  struct Case {
    CK_RV rv;
    StatusCode code;
  };
  const Case cases[] = {
      {CKR_PIN_INCORRECT, StatusCode::kPermissionDenied},
      {CKR_PIN_LOCKED, StatusCode::kPermissionDenied},
      {CKR_PIN_EXPIRED, StatusCode::kPermissionDenied},
      {CKR_USER_NOT_LOGGED_IN, StatusCode::kPermissionDenied},
      {CKR_TOKEN_NOT_PRESENT, StatusCode::kUnavailable},
      {CKR_DEVICE_REMOVED, StatusCode::kUnavailable},
      {CKR_DEVICE_ERROR, StatusCode::kUnavailable},
      {CKR_DEVICE_MEMORY, StatusCode::kUnavailable},
      {CKR_SESSION_CLOSED, StatusCode::kUnavailable},
      {CKR_SESSION_HANDLE_INVALID, StatusCode::kUnavailable},
      {CKR_CRYPTOKI_NOT_INITIALIZED, StatusCode::kUnavailable},
      {CKR_SESSION_COUNT, StatusCode::kUnavailable},
      {CKR_KEY_HANDLE_INVALID, StatusCode::kNotFound},
      {CKR_OBJECT_HANDLE_INVALID, StatusCode::kNotFound},
      {CKR_ATTRIBUTE_SENSITIVE, StatusCode::kFailedPrecondition},
      {CKR_KEY_UNEXTRACTABLE, StatusCode::kFailedPrecondition},
      {CKR_KEY_FUNCTION_NOT_PERMITTED, StatusCode::kFailedPrecondition},
      {CKR_KEY_TYPE_INCONSISTENT, StatusCode::kFailedPrecondition},
      {CKR_MECHANISM_INVALID, StatusCode::kFailedPrecondition},
      {CKR_TOKEN_NOT_RECOGNIZED, StatusCode::kFailedPrecondition},
      {CKR_KEY_NOT_WRAPPABLE, StatusCode::kFailedPrecondition},
      {CKR_USER_PIN_NOT_INITIALIZED, StatusCode::kFailedPrecondition},
      {CKR_PIN_LEN_RANGE, StatusCode::kInvalidArgument},
      {CKR_GENERAL_ERROR, StatusCode::kInternal},
      {CKR_FUNCTION_FAILED, StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    Status status = FromCkRv(c.rv, "C_X");
    EXPECT_EQ(status.code(), c.code) << CkrName(c.rv);
    EXPECT_EQ(CkrStatusCode(c.rv), c.code) << CkrName(c.rv);
  }
}

TEST(pkcs11_CkStatus, UnknownAndVendorCodes) {
  EXPECT_EQ(CkrName((CK_RV{1} << 31) | 0x12u), "CKR_VENDOR_DEFINED");
  EXPECT_EQ(CkrName(0x7777), "CKR_UNKNOWN");
  Status status = FromCkRv(0x7777, "C_Sign");
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_EQ(status.message(), "C_Sign failed: CKR_UNKNOWN (0x7777)");
}

// A cryptographic operation's CKR_GENERAL_ERROR / CKR_FUNCTION_FAILED is the
// token's trouble: retry later (503), not a bug (500). Found by the PKCS#11
// fault campaign (tools/reliability/pkcs11_faults.py, docs/reliability.md).
TEST(pkcs11_CkStatus, OperationFailuresOfTheTokenAreRetryable) {
  for (CK_RV rv : {CKR_GENERAL_ERROR, CKR_FUNCTION_FAILED, CKR_DEVICE_ERROR, CKR_SESSION_HANDLE_INVALID}) {
    const Status status = FromCkRvOperation(rv, "C_Sign");
    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << CkrName(rv);
    EXPECT_TRUE(IsRetryable(status)) << CkrName(rv);
    EXPECT_EQ(status.message(), FromCkRv(rv, "C_Sign").message());
  }
  EXPECT_TRUE(FromCkRvOperation(CKR_OK, "C_Sign").ok());
  EXPECT_EQ(FromCkRvOperation(CKR_KEY_HANDLE_INVALID, "C_Sign").code(), StatusCode::kNotFound);
  EXPECT_EQ(FromCkRvOperation(CKR_HOST_MEMORY, "C_Sign").code(), StatusCode::kResourceExhausted);
  // Elsewhere (module loading, key management) the mapping is unchanged.
  EXPECT_EQ(FromCkRv(CKR_GENERAL_ERROR, "C_Initialize").code(), StatusCode::kInternal);
}

TEST(pkcs11_CkStatus, OnlyUnavailableIsRetryable) {
  EXPECT_TRUE(IsRetryable(FromCkRv(CKR_DEVICE_ERROR, "C_Sign")));
  EXPECT_TRUE(IsRetryable(FromCkRv(CKR_SESSION_HANDLE_INVALID, "C_Sign")));
  EXPECT_FALSE(IsRetryable(FromCkRv(CKR_PIN_INCORRECT, "C_Login")));
  EXPECT_FALSE(IsRetryable(FromCkRv(CKR_KEY_TYPE_INCONSISTENT, "C_SignInit")));
  EXPECT_FALSE(IsRetryable(Status::Ok()));
}

}  // namespace
}  // namespace tkms::pkcs11
