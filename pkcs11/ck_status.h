// CK_RV -> Status: the one place where PKCS#11 return values become tkms
// Status codes.
//
// Why: every Cryptoki function returns a CK_RV (PKCS#11 v2.40 §5.1, §3.6
// "Return values"). The rest of tkms reasons about Status codes, and the KMS
// maps them to HTTP statuses: kUnavailable means "try again later" (503),
// kPermissionDenied a wrong or locked PIN, kFailedPrecondition a key or token
// that cannot do what was asked (misconfiguration), kNotFound a handle that no
// longer names an object. Each failure is converted exactly once, where the
// call is made, with a message that names the call and the code and never any
// data: "C_Login failed: CKR_PIN_INCORRECT (0xa0)".
#pragma once

#include <string_view>

#include "firmware/base/status.h"
#include "pkcs11/pkcs11_api.h"

namespace tkms::pkcs11 {

// The CKR_* name of `rv` ("CKR_PIN_INCORRECT"); "CKR_VENDOR_DEFINED" for
// vendor codes and "CKR_UNKNOWN" for values PKCS#11 v2.40 does not define.
std::string_view CkrName(CK_RV rv);

// The StatusCode that `rv` maps to (kOk for CKR_OK):
//   kPermissionDenied   PIN incorrect / locked / expired, user not logged in
//   kUnavailable        token or device gone, device error or out of memory,
//                       session closed or invalid, library not initialised,
//                       too many sessions: retrying later may succeed
//   kNotFound           key or object handle invalid
//   kFailedPrecondition the key or token cannot do this (sensitive,
//                       unextractable, not wrappable, wrong type or size,
//                       function not permitted, mechanism invalid) or is
//                       misconfigured (token not recognised, write-protected,
//                       user PIN not initialised, another user logged in)
//   kInvalidArgument    PIN length or characters refused, bad argument
//   kInternal           everything else
StatusCode CkrStatusCode(CK_RV rv);

// Ok for CKR_OK; otherwise Status(CkrStatusCode(rv),
// "<call> failed: <CkrName> (0x<hex rv>)").
Status FromCkRv(CK_RV rv, std::string_view call);

// FromCkRv for a cryptographic operation on an open session of a key the
// KMS holds (C_SignInit/C_Sign, C_EncryptInit/C_Encrypt, C_GenerateRandom)
// and for C_OpenSession on an initialised module:
// there, CKR_GENERAL_ERROR and CKR_FUNCTION_FAILED can only be the token's own
// trouble, so they are kUnavailable (retry later: the request gets 503, the
// session is discarded, the token monitor probes) rather than kInternal (a
// bug: 500). Module loading and key management keep FromCkRv's mapping.
Status FromCkRvOperation(CK_RV rv, std::string_view call);

// True for failures worth retrying later (kUnavailable).
bool IsRetryable(const Status& status);

}  // namespace tkms::pkcs11
