// The secret region: see secret_memory.h.
#include "firmware/base/secret_memory.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <mutex>
#include <new>
#include <vector>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TKMS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TKMS_ASAN 1
#endif
#ifdef TKMS_ASAN
#include <sanitizer/asan_interface.h>
#define TKMS_POISON(p, n) __asan_poison_memory_region((p), (n))
#define TKMS_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define TKMS_POISON(p, n) ((void)(p), (void)(n))
#define TKMS_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace tkms {
namespace {

constexpr size_t kSmallestClass = 32;
constexpr size_t kClasses = 12;  // 32 B .. 64 KiB
constexpr size_t kLargestClass = kSmallestClass << (kClasses - 1);

size_t ClassIndex(size_t n) {
  size_t index = 0;
  size_t size = kSmallestClass;
  while (size < n) {
    size <<= 1;
    ++index;
  }
  return index;
}

class SecretRegion {
 public:
  SecretRegion() {
    void* p = ::mmap(nullptr, kSecretMemoryBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    base_ = static_cast<uint8_t*>(p);
    stats_.region_bytes = kSecretMemoryBytes;
    stats_.dontdump = ::madvise(base_, kSecretMemoryBytes, MADV_DONTDUMP) == 0;
    // Not MADV_WIPEONFORK: a program that forks workers (tkms-ue call runs
    // each responder in a child) needs its keys in the child; tkmsd never
    // forks.
    // The system call itself: AddressSanitizer's mlock interceptor does
    // nothing and reports success.
    stats_.locked = ::syscall(SYS_mlock, base_, kSecretMemoryBytes) == 0;
    TKMS_POISON(base_, kSecretMemoryBytes);
  }

  void* Allocate(size_t n) {
    if (n == 0) n = 1;
    if (base_ != nullptr && n <= kLargestClass) {
      const size_t index = ClassIndex(n);
      const size_t size = kSmallestClass << index;
      std::lock_guard<std::mutex> lock(mu_);
      uint8_t* block = nullptr;
      if (!free_[index].empty()) {
        block = free_[index].back();
        free_[index].pop_back();
      } else if (kSecretMemoryBytes - used_ >= size) {
        block = base_ + used_;
        used_ += size;
      }
      if (block != nullptr) {
        stats_.in_use_bytes += size;
        if (stats_.in_use_bytes > stats_.high_water_bytes) stats_.high_water_bytes = stats_.in_use_bytes;
        TKMS_UNPOISON(block, n);
        return block;
      }
      ++stats_.fallback_allocations;
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.fallback_allocations;
    }
    return ::operator new(n);
  }

  void Free(void* p, size_t n) noexcept {
    if (!Contains(p)) {
      ::operator delete(p);
      return;
    }
    if (n == 0) n = 1;
    const size_t index = ClassIndex(n);
    const size_t size = kSmallestClass << index;
    TKMS_POISON(p, size);
    std::lock_guard<std::mutex> lock(mu_);
    stats_.in_use_bytes -= size;
    try {
      free_[index].push_back(static_cast<uint8_t*>(p));
    } catch (...) {
      // The bookkeeping could not grow: the block is lost to the region
      // (it stays wiped and locked), which only costs capacity.
    }
  }

  bool Contains(const void* p) const {
    const auto* b = static_cast<const uint8_t*>(p);
    return base_ != nullptr && b >= base_ && b < base_ + kSecretMemoryBytes;
  }

  SecretMemoryStats Stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  uint8_t* base_ = nullptr;
  std::mutex mu_;
  size_t used_ = 0;  // bytes carved from the front of the region
  std::array<std::vector<uint8_t*>, kClasses> free_;
  SecretMemoryStats stats_;
};

// Made on first use and never destroyed: SecretBytes in static objects may
// be released after every other destructor has run.
SecretRegion& Region() {
  static SecretRegion* region = new SecretRegion();
  return *region;
}

}  // namespace

void* AllocateSecretMemory(size_t n) { return Region().Allocate(n); }

void FreeSecretMemory(void* p, size_t n) noexcept {
  if (p != nullptr) Region().Free(p, n);
}

SecretMemoryStats GetSecretMemoryStats() { return Region().Stats(); }

bool IsSecretMemory(const void* p) { return Region().Contains(p); }

}  // namespace tkms
