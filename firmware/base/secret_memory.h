// Secret memory: where every SecretBytes buffer lives (the PIN, PSKs read
// from files, derived MIKEY keys, TEKs/TGKs/MPKs on their way into a KEMAC).
//
// Why: a key that exists in host memory for one request must not reach swap
// or a memory dump. Besides wiping on release (secret_bytes.h), the bytes
// come from one region that is mlock()ed (never swapped) and marked
// MADV_DONTDUMP (left out of core files and of gdb's gcore). tkmsd also makes the whole
// process non-dumpable (firmware/tkmsd/privileges.h); this is the second
// wall, for a dump taken anyway (a root gcore, a kernel crash dump).
//
// The region is one fixed mapping (kSecretMemoryBytes), made on first use,
// split into size classes of 32 bytes .. 64 KiB; a freed block goes back to
// its class and is reused, never returned to the system. A request larger
// than the largest class, or one that finds the region full, is served from
// the ordinary heap (still wiped) and counted in fallback_allocations, so
// running out of locked memory degrades, never fails. If mlock() is refused
// (RLIMIT_MEMLOCK; systemd's LimitMEMLOCK) the region is still used and
// excluded from dumps, and locked reports false.
//
// Under AddressSanitizer the unused part of every block is poisoned, so an
// overflow of a SecretBytes buffer is still reported.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tkms {

inline constexpr size_t kSecretMemoryBytes = size_t{1} << 20;

// Memory for `n` bytes (n > 0) that is excluded from dumps and, when
// possible, locked. Throws std::bad_alloc only if the heap fallback does.
void* AllocateSecretMemory(size_t n);
// Releases what AllocateSecretMemory(n) returned. The caller has wiped it.
void FreeSecretMemory(void* p, size_t n) noexcept;

struct SecretMemoryStats {
  size_t region_bytes = 0;     // the mapping (0 until first use, or if mmap failed)
  bool locked = false;         // mlock() succeeded for the whole region
  bool dontdump = false;       // madvise(MADV_DONTDUMP) succeeded
  size_t in_use_bytes = 0;     // class bytes handed out and not yet freed
  size_t high_water_bytes = 0; // the most in_use_bytes ever reached
  uint64_t fallback_allocations = 0;  // served from the ordinary heap
};
SecretMemoryStats GetSecretMemoryStats();

// True iff p points into the secret region (tests).
bool IsSecretMemory(const void* p);

}  // namespace tkms
