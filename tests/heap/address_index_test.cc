// AddressIndex finds the position of every member of an ascending vector,
// and -1 for anything else, with the bitmap and with the binary-search
// fallback (duplicates, unaligned or very high addresses).
#include "monitor/heap/address_index.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace annex::heap {
namespace {

// Checks every member and the neighbours of every member against a binary
// search of `sorted`.
void ExpectMatchesBinarySearch(const std::vector<uintptr_t>& sorted) {
  AddressIndex index(sorted);
  auto expected = [&](uintptr_t a) -> int64_t {
    auto it = std::lower_bound(sorted.begin(), sorted.end(), a);
    return it != sorted.end() && *it == a ? it - sorted.begin() : -1;
  };
  for (size_t i = 0; i < sorted.size(); ++i) {
    const uintptr_t a = sorted[i];
    ASSERT_EQ(index.Find(a), expected(a)) << i;
    for (uintptr_t d : {uintptr_t{1}, uintptr_t{8}, uintptr_t{16}}) {
      ASSERT_EQ(index.Find(a + d), expected(a + d)) << i;
      ASSERT_EQ(index.Find(a - d), expected(a - d)) << i;
    }
  }
  EXPECT_EQ(index.Find(0), expected(0));
  EXPECT_EQ(index.Find(~uintptr_t{0} & ~uintptr_t{7}),
            expected(~uintptr_t{0} & ~uintptr_t{7}));
}

// Ascending 16-byte aligned addresses in a few clusters spread over the
// 48-bit space, like a heap's arenas and mmapped blocks.
std::vector<uintptr_t> HeapLike(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<uintptr_t> out;
  uintptr_t a = 0x5555'0000'0000 + (rng() % 4096) * 16;
  while (out.size() < n) {
    const uint64_t r = rng() % 1000;
    if (r == 0) {
      a += (rng() % (uint64_t{1} << 36)) & ~uintptr_t{15};  // another arena
    } else if (r < 10) {
      a += (uintptr_t{1} << 22) + 16;  // the next 4 MiB chunk
    } else {
      a += 16 * (1 + rng() % 8);
    }
    out.push_back(a);
  }
  return out;
}

TEST(AddressIndexTest, FindsEveryMemberAndNothingElse) {
  for (unsigned seed = 1; seed <= 3; ++seed) {
    ExpectMatchesBinarySearch(HeapLike(50000, seed));
  }
  ExpectMatchesBinarySearch({});
  ExpectMatchesBinarySearch({0x1000});
  ExpectMatchesBinarySearch({8, 16, 0x7fff'ffff'fff8});
}

TEST(AddressIndexTest, PositionsAreNodeIds) {
  std::vector<uintptr_t> sorted = HeapLike(1000, 7);
  AddressIndex index(sorted);
  for (size_t i = 0; i < sorted.size(); ++i) {
    EXPECT_EQ(index.Find(sorted[i]), static_cast<int64_t>(i));
  }
  EXPECT_GT(index.MemoryBytes(), 0u);
}

TEST(AddressIndexTest, FallsBackForAddressesTheBitmapCannotRank) {
  // Unaligned, above 2^48, and duplicated addresses: still found.
  ExpectMatchesBinarySearch({0x1000, 0x1003, 0x2000});
  ExpectMatchesBinarySearch(
      {0x1000, uintptr_t{1} << 50, (uintptr_t{1} << 50) + 8});
  std::vector<uintptr_t> dup = {0x1000, 0x2000, 0x2000, 0x3000};
  AddressIndex index(dup);
  EXPECT_EQ(index.Find(0x2000), 1);
  EXPECT_EQ(index.Find(0x3000), 3);
  EXPECT_EQ(index.Find(0x2008), -1);
  EXPECT_EQ(index.MemoryBytes(), 0u);
}

}  // namespace
}  // namespace annex::heap
