// Population count of 64-bit words for the visited set's ranks (a rank per
// reference while a graph is built). The default build targets plain
// x86-64 (tools/copts.bzl adds no -m flag), where __builtin_popcountll is
// a call into libgcc's table-driven __popcountdi2, which showed in heap
// walk profiles. Here the POPCNT instruction is used when the CPU has it,
// decided once at start-up; otherwise an inline bit-sliced count.
//
//   int n = PopCount64(word);
#pragma once

#include <cstdint>

namespace annex::heap::internal {

// Counting without any instruction set extension: bits of each pair,
// then of each nibble, then of each byte, the bytes summed by one
// multiplication into the top byte. Any thread.
inline int PopCount64Portable(uint64_t x) {
  constexpr uint64_t kPairs = 0x5555555555555555ULL;
  constexpr uint64_t kNibbles = 0x3333333333333333ULL;
  constexpr uint64_t kBytes = 0x0f0f0f0f0f0f0f0fULL;
  constexpr uint64_t kByteSum = 0x0101010101010101ULL;
  x -= (x >> 1) & kPairs;
  x = (x & kNibbles) + ((x >> 2) & kNibbles);
  x = (x + (x >> 4)) & kBytes;
  return static_cast<int>((x * kByteSum) >> 56);
}

#if defined(__x86_64__) && !defined(__POPCNT__)
// Whether this CPU has POPCNT (CPUID), asked once during static
// initialization.
inline const bool kCpuHasPopcnt = [] {
  __builtin_cpu_init();  // may run before libgcc's own constructor
  return __builtin_cpu_supports("popcnt") != 0;
}();
#endif

// The number of set bits in `x`. Any thread.
inline int PopCount64(uint64_t x) {
#if defined(__x86_64__) && !defined(__POPCNT__)
  if (kCpuHasPopcnt) {
    // The instruction through asm: the compiler may not emit it for a
    // build that targets CPUs without it.
    uint64_t n;
    asm("popcntq %1, %0" : "=r"(n) : "rm"(x) : "cc");
    return static_cast<int>(n);
  }
  return PopCount64Portable(x);
#else
  return __builtin_popcountll(x);  // the compiler's best for this target
#endif
}

}  // namespace annex::heap::internal
