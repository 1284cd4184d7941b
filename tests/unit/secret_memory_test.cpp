// The secret region (firmware/base/secret_memory.h): SecretBytes live in one
// mapping the kernel reports as locked and not dumped, blocks are reused,
// and what does not fit falls back to the (wiped) heap.
#include "firmware/base/secret_memory.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "firmware/base/secret_bytes.h"

namespace tkms {
namespace {

// The VmFlags line of the /proc/self/smaps entry that contains p.
std::string VmFlagsOf(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto addr = reinterpret_cast<uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find('-') < 17) {
      inside = addr >= lo && addr < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

bool HasFlag(const std::string& vmflags, const char* flag) {
  std::istringstream words(vmflags);
  std::string word;
  while (words >> word) {
    if (word == flag) return true;
  }
  return false;
}

TEST(SecretMemory, SecretBytesLiveInTheLockedUndumpedRegion) {
  SecretBytes pin(8, 0x31);
  ASSERT_TRUE(IsSecretMemory(pin.data()));
  const SecretMemoryStats stats = GetSecretMemoryStats();
  EXPECT_EQ(stats.region_bytes, kSecretMemoryBytes);
  EXPECT_TRUE(stats.dontdump);
  const std::string flags = VmFlagsOf(pin.data());
  ASSERT_FALSE(flags.empty());
  EXPECT_TRUE(HasFlag(flags, "dd")) << flags;  // MADV_DONTDUMP
  // mlock() may be refused by RLIMIT_MEMLOCK; the kernel and the stats agree.
  EXPECT_EQ(HasFlag(flags, "lo"), stats.locked) << flags;
}

// tkms-ue call fork()s its responders, which use keys made before the fork.
TEST(SecretMemory, AForkedChildKeepsItsSecrets) {
  SecretBytes psk(32, 0x5a);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(std::all_of(psk.begin(), psk.end(), [](uint8_t v) { return v == 0x5a; }) ? 0 : 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(SecretMemory, OrdinaryVectorsAreNotInTheRegion) {
  std::vector<uint8_t> plain(8, 0x31);
  EXPECT_FALSE(IsSecretMemory(plain.data()));
}

TEST(SecretMemory, FreedBlocksAreReusedAndCounted) {
  const size_t before = GetSecretMemoryStats().in_use_bytes;
  const void* first = nullptr;
  {
    SecretBytes a(40);  // the 64-byte class
    first = a.data();
    EXPECT_EQ(GetSecretMemoryStats().in_use_bytes, before + 64);
  }
  EXPECT_EQ(GetSecretMemoryStats().in_use_bytes, before);
  SecretBytes b(64);
  EXPECT_EQ(b.data(), first);
  EXPECT_TRUE(std::all_of(b.begin(), b.end(), [](uint8_t v) { return v == 0; }));
}

TEST(SecretMemory, WhatDoesNotFitComesFromTheHeapAndIsCounted) {
  const uint64_t before = GetSecretMemoryStats().fallback_allocations;
  SecretBytes huge((size_t{64} << 10) + 1);
  EXPECT_FALSE(IsSecretMemory(huge.data()));
  EXPECT_EQ(GetSecretMemoryStats().fallback_allocations, before + 1);
  // Exhausting the region: every further block falls back, nothing fails.
  std::vector<SecretBytes> blocks;
  for (size_t i = 0; i < kSecretMemoryBytes / (size_t{64} << 10) + 2; ++i) blocks.emplace_back(size_t{64} << 10);
  EXPECT_FALSE(IsSecretMemory(blocks.back().data()));
  blocks.clear();
  SecretBytes again(size_t{64} << 10);
  EXPECT_TRUE(IsSecretMemory(again.data()));
}

TEST(SecretMemory, ManyThreadsAllocateAndFree) {
  const size_t before = GetSecretMemoryStats().in_use_bytes;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 2000; ++i) {
        SecretBytes key(static_cast<size_t>(16 + (i * 7 + t) % 200), static_cast<uint8_t>(t));
        ASSERT_EQ(key[0], static_cast<uint8_t>(t));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(GetSecretMemoryStats().in_use_bytes, before);
  EXPECT_GE(GetSecretMemoryStats().high_water_bytes, before);
}

}  // namespace
}  // namespace tkms
