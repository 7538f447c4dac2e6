// ObjectSet: encoding round trips and set algebra against std::set.
#include "monitor/heap/object_set.h"

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace annex::heap {
namespace {

std::vector<uintptr_t> RandomAddresses(std::mt19937_64& rng, size_t n,
                                       uintptr_t align) {
  std::vector<uintptr_t> v;
  std::uniform_int_distribution<uintptr_t> gap(1, 5000);
  uintptr_t a = 0x7f0000000000;
  for (size_t i = 0; i < n; ++i) {
    a += gap(rng) * align;
    if (rng() % 3 == 0) v.push_back(a);
  }
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

std::vector<uintptr_t> Sorted(const std::set<uintptr_t>& s) {
  return std::vector<uintptr_t>(s.begin(), s.end());
}

TEST(ObjectSetTest, RoundTripsAlignedAndUnalignedAddresses) {
  std::mt19937_64 rng(1);
  for (uintptr_t align : {uintptr_t{1}, uintptr_t{8}, uintptr_t{16}}) {
    std::vector<uintptr_t> v = RandomAddresses(rng, 10000, align);
    v.push_back(v.front());  // a duplicate
    ObjectSet s = ObjectSet::FromUnsorted(v);
    std::set<uintptr_t> ref(v.begin(), v.end());
    EXPECT_EQ(s.size(), ref.size());
    EXPECT_EQ(s.ToVector(), Sorted(ref));
    for (uintptr_t a : ref) ASSERT_TRUE(s.contains(a));
    EXPECT_FALSE(s.contains(0));
    EXPECT_FALSE(s.contains(*ref.rbegin() + 1));
    EXPECT_FALSE(s.contains(*ref.begin() - 1));
  }
}

TEST(ObjectSetTest, AlgebraMatchesStdSet) {
  std::mt19937_64 rng(2);
  std::vector<uintptr_t> av = RandomAddresses(rng, 3000, 16);
  std::vector<uintptr_t> bv(av.begin(), av.begin() + av.size() / 2);
  std::vector<uintptr_t> more = RandomAddresses(rng, 3000, 16);
  bv.insert(bv.end(), more.begin(), more.end());
  ObjectSet a = ObjectSet::FromUnsorted(av), b = ObjectSet::FromUnsorted(bv);
  std::set<uintptr_t> sa(av.begin(), av.end()), sb(bv.begin(), bv.end());
  std::set<uintptr_t> u, i, d, x;
  std::set_union(sa.begin(), sa.end(), sb.begin(), sb.end(),
                 std::inserter(u, u.end()));
  std::set_intersection(sa.begin(), sa.end(), sb.begin(), sb.end(),
                        std::inserter(i, i.end()));
  std::set_difference(sa.begin(), sa.end(), sb.begin(), sb.end(),
                      std::inserter(d, d.end()));
  std::set_symmetric_difference(sa.begin(), sa.end(), sb.begin(), sb.end(),
                                std::inserter(x, x.end()));
  EXPECT_EQ((a | b).ToVector(), Sorted(u));
  EXPECT_EQ((a & b).ToVector(), Sorted(i));
  EXPECT_EQ((a - b).ToVector(), Sorted(d));
  EXPECT_EQ((a ^ b).ToVector(), Sorted(x));
  EXPECT_TRUE((a & b) <= a);
  EXPECT_TRUE((a & b).IsSubsetOf(b));
  EXPECT_FALSE(a <= b);
  EXPECT_TRUE(a == ObjectSet::FromUnsorted(av));
  EXPECT_TRUE(a != b);
  EXPECT_TRUE((a - a).empty());
  EXPECT_EQ(ObjectSet(), a - a);
}

TEST(ObjectSetTest, DenseHeapCostsAboutOneAndAHalfBytesPerObject) {
  std::vector<uintptr_t> v;
  for (uintptr_t a = 0x7f0000000000, i = 0; i < 1000000; ++i) {
    a += 16 * (1 + i % 7);
    v.push_back(a);
  }
  ObjectSet s = ObjectSet::FromUnsorted(v);
  EXPECT_EQ(s.size(), v.size());
  EXPECT_LT(s.MemoryBytes(), 2 * v.size());
}

}  // namespace
}  // namespace annex::heap
