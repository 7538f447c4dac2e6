// Fresh buffers backed by huge pages (monitor/python/huge_pages.h): what
// they hold is what was written, and large arrays start on a 2 MiB
// boundary, so that every whole huge page inside them can be one.
#include "monitor/python/huge_pages.h"

#include <cstdint>
#include <numeric>
#include <vector>

#include "absl/numeric/int128.h"
#include "gtest/gtest.h"

namespace annex::python {
namespace {

TEST(HugePagesTest, NewHugeArrayHoldsWhatIsWritten) {
  constexpr size_t kHuge = size_t{2} << 20;
  for (size_t n : {size_t{0}, size_t{1}, size_t{1000}, size_t{3} << 20}) {
    HugeArray<uint32_t> a = NewHugeArray<uint32_t>(n);
    ASSERT_NE(a.get(), nullptr);
    if (n * sizeof(uint32_t) >= 2 * kHuge) {
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
