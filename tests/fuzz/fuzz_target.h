// The libFuzzer entry point every fuzz target in tests/fuzz/ defines.
//
// Why: each target is linked either with libFuzzer (-DTKMS_FUZZ=ON, the
// `fuzz` preset) or with replay_main.cpp, which ctest runs over the committed
// corpus in every other build. Declaring the entry point here, before its
// definition, keeps -Wmissing-declarations quiet and gives both drivers the
// same signature.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#include <cstdio>
#include <cstdlib>

namespace tkms::fuzz {

// Reports a violated property and aborts, which libFuzzer records as a crash
// (and saves the input) and the replay driver turns into a failed ctest.
[[noreturn]] inline void Violation(const char* target, const char* property) {
  std::fprintf(stderr, "%s: property violated: %s\n", target, property);
  std::abort();
}

}  // namespace tkms::fuzz
