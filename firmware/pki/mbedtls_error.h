// mbedTLS error codes as message text.
//
// Why: every refusal that comes from mbedTLS (a certificate that does not
// parse, a key that does not load, a TLS handshake that fails) should say
// what mbedTLS said, in printable ASCII and bounded length.
#pragma once

#include <string>

namespace tkms::pki {

// mbedTLS's own text for an error code, escaped and shortened
// ("X509 - The CRT/CRL/CSR format is invalid, e.g. different type expected").
std::string MbedtlsErrorText(int code);
// The same with the code: "mbedTLS -0x2180 (X509 - ...)".
std::string MbedtlsError(int code);

}  // namespace tkms::pki
