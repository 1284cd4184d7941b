// SecretBytes: the buffer type for transient key material (derived MIKEY keys,
// TEKs/TGKs/MPKs on their way into a KEMAC, PINs read from a file).
//
// Why: key bytes that must exist in host memory for the duration of one
// request are wiped when released, including the old block whenever the
// vector reallocates. explicit_bzero cannot be removed as a dead store. The
// blocks come from the locked, never-dumped secret region
// (secret_memory.h).
// Comparisons of secrets and MACs go through ConstantTimeEquals.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <vector>

#include "firmware/base/secret_memory.h"

namespace tkms {

// Zeroes memory in a way the compiler may not elide.
void SecureWipe(void* p, size_t n) noexcept;

template <typename T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() noexcept = default;
  template <typename U>
  WipingAllocator(const WipingAllocator<U>&) noexcept {}  // NOLINT: rebind
  T* allocate(std::size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(AllocateSecretMemory(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    SecureWipe(p, n * sizeof(T));
    FreeSecretMemory(p, n * sizeof(T));
  }
  template <typename U>
  bool operator==(const WipingAllocator<U>&) const noexcept { return true; }
};

using SecretBytes = std::vector<uint8_t, WipingAllocator<uint8_t>>;

inline SecretBytes ToSecret(std::span<const uint8_t> bytes) {
  return SecretBytes(bytes.begin(), bytes.end());
}

// True iff a and b have the same length and contents. The time taken depends
// only on the lengths, never on where the contents differ.
bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b) noexcept;

}  // namespace tkms
