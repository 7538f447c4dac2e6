// Fresh buffers backed by huge pages (monitor/python/huge_pages.h): what
// they hold is what was written, and large arrays start on a 2 MiB
// boundary, so that every whole huge page inside them can be one.
#include "monitor/python/huge_pages.h"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "absl/numeric/int128.h"
#include "gtest/gtest.h"

namespace annex::python {
namespace {

// The Size and AnonHugePages (kB) of the mapping holding `p`.
std::pair<size_t, size_t> MappingKb(const void* p) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  size_t size = 0, huge = 0;
  while (std::getline(in, line)) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 &&
        line.find(':') > line.find(' ')) {
      if (inside) break;
      inside = lo <= at && at < hi;
      continue;
    }
    if (!inside) continue;
    std::sscanf(line.c_str(), "Size: %zu kB", &size);
    std::sscanf(line.c_str(), "AnonHugePages: %zu kB", &huge);
  }
  return {size, huge};
}

// Why the pages of the room at `data` cannot all be huge, or "" when
// they can: transparent huge pages off, or a room that does not start on
// a 2 MiB boundary (malloc did not map it on its own, or the kernel did
// not place the mapping there).
std::string WhyNotAllHuge(const void* data) {
  if (!HugePagesOnRequest()) return "transparent huge pages are off";
  const uintptr_t page = reinterpret_cast<uintptr_t>(data) & ~uintptr_t{4095};
  if (page % kHugePageBytes != 0) {
    return "the room does not start on a 2 MiB boundary";
  }
  return "";
}

// A million 4-byte elements (a million objects' kinds, say): between 2
// and 4 MiB, rounded to two whole huge pages and, where the kernel places
// the mapping on a 2 MiB boundary, huge pages once written. First in the
// binary: malloc maps a block this small on its own only until a freed
// mapping raised its threshold (the tests below free larger ones).
TEST(HugePagesTest, RoomFromTwoMegabytesIsWholeHugePages) {
  std::vector<uint32_t> v;
  ReserveHuge(v, 1'030'000);
  const size_t bytes = v.capacity() * sizeof(uint32_t);
  EXPECT_EQ(bytes + kMallocSlack, 2 * kHugePageBytes);
  if (const std::string why = WhyNotAllHuge(v.data()); !why.empty()) {
    GTEST_SKIP() << why;
  }
  v.resize(v.capacity(), 7);
  const auto [size_kb, huge_kb] = MappingKb(v.data());
  EXPECT_EQ(size_kb, 4096u);
  EXPECT_EQ(huge_kb, size_kb);
}

TEST(HugePagesTest, NewHugeArrayHoldsWhatIsWritten) {
  constexpr size_t kHuge = size_t{2} << 20;
  for (size_t n :
       {size_t{0}, size_t{1}, size_t{1000}, size_t{600000}, size_t{3} << 20}) {
    HugeArray<uint32_t> a = NewHugeArray<uint32_t>(n);
    ASSERT_NE(a.get(), nullptr);
    if (n * sizeof(uint32_t) >= kHuge) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a.get()) % kHuge, 0u);
    }
    for (size_t i = 0; i < n; ++i) a[i] = static_cast<uint32_t>(i * 7);
    for (size_t i = 0; i < n; ++i)
      ASSERT_EQ(a[i], static_cast<uint32_t>(i * 7));
  }
  HugeArray<absl::uint128> wide = NewHugeArray<absl::uint128>(1 << 19);
  wide[(1 << 19) - 1] = absl::MakeUint128(5, 6);
  EXPECT_EQ(wide[(1 << 19) - 1], absl::MakeUint128(5, 6));
}

TEST(HugePagesTest, CopyHugeAndAssignHugeHoldTheValues) {
  std::vector<uint64_t> v(size_t{1} << 20);
  std::iota(v.begin(), v.end(), 3);
  EXPECT_EQ(CopyHuge(v), v);
  EXPECT_TRUE(CopyHuge(std::vector<uint8_t>()).empty());
  std::vector<uint32_t> w = {1, 2};
  AssignHuge(w, size_t{3} << 20, uint32_t{9});
  EXPECT_EQ(w.size(), size_t{3} << 20);
  EXPECT_EQ(w.front(), 9u);
  EXPECT_EQ(w.back(), 9u);
}

// A room of megabytes is rounded to just under whole huge pages, so that
// malloc maps whole ones; where the kernel then places the mapping on a
// 2 MiB boundary (Linux 6.7 on), every page of it is huge once written,
// its first and last included.
TEST(HugePagesTest, LargeRoomIsWholeHugePages) {
  std::vector<uint32_t> v;
  // 80 MB: above glibc's largest threshold for mapping a block on its own
  // (32 MiB; below it, after freeing large blocks, malloc serves from its
  // heap, where the rounding changes nothing).
  ReserveHuge(v, 20'000'000);
  const size_t bytes = v.capacity() * sizeof(uint32_t);
  EXPECT_GE(v.capacity(), 20'000'000u);
  // Just under whole huge pages (within one element of them).
  const size_t mapped = bytes + kMallocSlack;
  EXPECT_LT((kHugePageBytes - mapped % kHugePageBytes) % kHugePageBytes,
            sizeof(uint32_t))
      << bytes;
  EXPECT_LT(bytes, 20'000'000 * sizeof(uint32_t) + kHugePageBytes);
  if (const std::string why = WhyNotAllHuge(v.data()); !why.empty()) {
    GTEST_SKIP() << why;
  }
  v.resize(v.capacity(), 7);  // every page written
  const auto [size_kb, huge_kb] = MappingKb(v.data());
  EXPECT_EQ(size_kb % 2048, 0u) << size_kb;
  EXPECT_GE(size_kb * 1024, bytes);
  EXPECT_EQ(huge_kb, size_kb);
}

// Spare room goes when it is worth a copy, and only then.
TEST(HugePagesTest, ShrinkHugeKeepsTheRoundingAndDropsRealSpare) {
  std::vector<uint32_t> v;
  ReserveHuge(v, 3'000'000);
  v.assign(3'000'000, 5);
  const uint32_t* data = v.data();
  ShrinkHuge(v);  // spare under a huge page: kept
  EXPECT_EQ(v.data(), data);
  v.resize(1'000'000);  // 8 MB spare
  ShrinkHuge(v);
  EXPECT_NE(v.data(), data);
  EXPECT_LT(v.capacity(), 1'000'000u + (kHugePageBytes / sizeof(uint32_t)));
  ASSERT_EQ(v.size(), 1'000'000u);
  for (uint32_t x : v) ASSERT_EQ(x, 5u);
}

// Grown one element at a time to megabytes: the contents stay, the room
// at least doubles when it runs out (so moves are few), and room that is
// enough is left alone.
TEST(HugePagesTest, GrowHugeKeepsTheElementsAndDoublesTheRoom) {
  std::vector<uint32_t> v;
  size_t moves = 0;
  for (uint32_t i = 0; i < (3u << 20); ++i) {
    const size_t before = v.capacity();
    GrowHuge(v, 1);
    if (v.capacity() != before) {
      ++moves;
      EXPECT_GE(v.capacity(), 2 * before);
    }
    ASSERT_GT(v.capacity(), v.size());
    v.push_back(i * 3);
  }
  EXPECT_LE(moves, 13u);  // 1024 doubled up to 3 Mi elements
  for (uint32_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], i * 3);
  const uint32_t* data = v.data();
  GrowHuge(v, v.capacity() - v.size());  // fits: not moved
  EXPECT_EQ(v.data(), data);
  GrowHuge(v, v.capacity() - v.size() + 1);  // one more than fits
  EXPECT_NE(v.data(), data);
  EXPECT_EQ(v[v.size() - 1], (v.size() - 1) * 3);
}

// HugeCopiedVector's copies (made, assigned, self-assigned) hold the
// same values and are independent of the original; moves take the
// storage itself.
TEST(HugePagesTest, HugeCopiedVectorCopiesAreEqualAndIndependent) {
  HugeCopiedVector<uint16_t> v(size_t{3} << 20);
  std::iota(v.begin(), v.end(), uint16_t{1});
  const HugeCopiedVector<uint16_t> made(v);
  EXPECT_EQ(made, v);
  HugeCopiedVector<uint16_t> assigned = {7};
  assigned = v;
  EXPECT_EQ(assigned, v);
  v[5] = 0;
  EXPECT_NE(made[5], 0);
  EXPECT_NE(assigned[5], 0);
  const HugeCopiedVector<uint16_t>& same = assigned;
  assigned = same;
  EXPECT_EQ(assigned, made);
  const uint16_t* storage = assigned.data();
  HugeCopiedVector<uint16_t> moved(std::move(assigned));
  EXPECT_EQ(moved.data(), storage);
  EXPECT_EQ(moved, made);
  HugeCopiedVector<uint16_t> empty;
  EXPECT_TRUE(HugeCopiedVector<uint16_t>(empty).empty());
}

}  // namespace
}  // namespace annex::python
