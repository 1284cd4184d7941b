// mbedTLS error codes as message text: see mbedtls_error.h.
#include "firmware/pki/mbedtls_error.h"

#include <mbedtls/error.h>

#include <cstdio>

#include "firmware/base/printable.h"

namespace tkms::pki {

std::string MbedtlsErrorText(int code) {
  char buffer[256] = {};
  mbedtls_strerror(code, buffer, sizeof buffer);
  return EscapedDetail(buffer);
}

std::string MbedtlsError(int code) {
  char number[24];
  const unsigned magnitude = code < 0 ? 0u - static_cast<unsigned>(code) : static_cast<unsigned>(code);
  std::snprintf(number, sizeof number, "%s0x%04x", code < 0 ? "-" : "", magnitude);
  return std::string("mbedTLS ") + number + " (" + MbedtlsErrorText(code) + ")";
}

}  // namespace tkms::pki
