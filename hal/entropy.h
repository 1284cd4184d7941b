// EntropySource: where the appliance's random bytes come from.
//
// Why: every secret the KMS makes (MPKs, session keys, RANDs, SPIs, ticket
// RANDs; RFC 6043 §12.1: "the KMS ... can be assumed to be less likely to use
// a bad random number generator") must come from a generator worth that
// trust. In tkmsd it is the token's RNG (C_GenerateRandom, through the
// keystore: KmsKeys implements this interface); tools and UEs without a
// token use the kernel's CSPRNG (OsEntropy). Nothing in tkms draws random
// bytes from anywhere else (no std::random_device, no rand()).
#pragma once

#include <cstdint>
#include <span>

#include "firmware/base/status.h"

namespace tkms::hal {

class EntropySource {
 public:
  virtual ~EntropySource() = default;
  // Fills `out`; kUnavailable if the source cannot deliver now.
  virtual Status Random(std::span<uint8_t> out) = 0;
};

// The kernel's CSPRNG (getrandom(2), blocking until it is seeded).
class OsEntropy final : public EntropySource {
 public:
  Status Random(std::span<uint8_t> out) override;
};

}  // namespace tkms::hal
