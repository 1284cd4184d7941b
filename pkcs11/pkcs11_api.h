// The PKCS#11 v2.40 C API as tkms includes it.
//
// Why: every file of the PKCS#11 plumbing and of the keystore needs the
// Cryptoki types, and p11-kit's <p11-kit/pkcs11.h> is the clean,
// self-contained copy Debian ships (it defines CK_PTR, CK_DEFINE_FUNCTION,
// NULL_PTR and the CK_* structs itself). Its macros use C casts, so the
// include is fenced against -Wold-style-cast here, once. Only pkcs11/ and the
// keystore's sources (firmware/keystore) include this header: the rest of
// tkms sees key references (firmware/keystore/keystore.h), not Cryptoki.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#include <p11-kit/pkcs11.h>
#pragma GCC diagnostic pop

namespace tkms::pkcs11 {

// CK_UNAVAILABLE_INFORMATION without the C cast of the macro: the value a
// module puts in ulValueLen (or a memory counter) when it cannot answer.
inline constexpr CK_ULONG kCkUnavailable = ~CK_ULONG{0};

// CK_INVALID_HANDLE as a typed constant.
inline constexpr CK_ULONG kInvalidHandle = 0;

}  // namespace tkms::pkcs11
