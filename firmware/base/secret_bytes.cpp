#include "firmware/base/secret_bytes.h"

#include <cstring>

namespace tkms {

void SecureWipe(void* p, size_t n) noexcept {
  if (p != nullptr && n != 0) {
    explicit_bzero(p, n);
  }
}

bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = static_cast<uint8_t>(diff | (a[i] ^ b[i]));
  }
  return diff == 0;
}

}  // namespace tkms
