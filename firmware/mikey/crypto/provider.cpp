#include "firmware/mikey/crypto/provider.h"

namespace tkms::mikey::crypto {

size_t DigestLength(HashAlg alg) {
  switch (alg) {
    case HashAlg::kSha1: return 20;
    case HashAlg::kSha256: return 32;
  }
  return 0;
}

}  // namespace tkms::mikey::crypto
