// PopCount64 (POPCNT when the CPU has it) and the portable count agree
// with counting bit by bit.
#include "monitor/heap/internal/popcount.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace annex::heap::internal {
namespace {

int BitByBit(uint64_t x) {
  int n = 0;
  for (int b = 0; b < 64; ++b) n += (x >> b) & 1;
  return n;
}

std::vector<uint64_t> Words() {
  std::vector<uint64_t> words = {0,
                                 1,
                                 uint64_t{1} << 63,
                                 ~uint64_t{0},
                                 0x5555555555555555ULL,
                                 0xaaaaaaaaaaaaaaaaULL,
                                 0x00000000ffffffffULL,
                                 0xff00ff00ff00ff00ULL};
  for (int b = 0; b < 64; ++b) {
    words.push_back(uint64_t{1} << b);
    words.push_back((uint64_t{1} << b) - 1);  // the mask Rank() counts
  }
  uint64_t x = 0x9e3779b97f4a7c15ULL;  // a xorshift sequence
  for (int i = 0; i < 1000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    words.push_back(x);
  }
  return words;
}

TEST(PopCountTest, BothCountsAgreeWithCountingBitByBit) {
  for (uint64_t w : Words()) {
    EXPECT_EQ(PopCount64(w), BitByBit(w)) << std::hex << w;
    EXPECT_EQ(PopCount64Portable(w), BitByBit(w)) << std::hex << w;
  }
}

}  // namespace
}  // namespace annex::heap::internal
