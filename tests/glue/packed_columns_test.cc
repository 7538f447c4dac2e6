// The compact columns of a KindedSet (glue/packed_columns.h) read back
// exactly what was written, in any order, width and span.
#include "glue/packed_columns.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace annex::glue {
namespace {

// Addresses as a heap has them (8-byte aligned, pools of a few KiB, arenas
// far apart), plus the odd cases: unaligned, huge gaps, descending.
std::vector<uintptr_t> SomeAddresses(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uintptr_t> out;
  uintptr_t a = 0x7f0000000000;
  for (size_t i = 0; i < n; ++i) {
    switch (rng() % 16) {
      case 0:
        a += 1 + rng() % 7;  // unaligned
        break;
      case 1:
        a += uintptr_t{1} << (20 + rng() % 20);  // another arena
        break;
      default:
        a += 8 * (1 + rng() % 32);
        break;
    }
    out.push_back(a);
  }
  return out;
}

// `indexes` as runs of consecutive ones, in their order.
IndexRuns RunsOf(const std::vector<size_t>& indexes) {
  IndexRuns runs;
  for (size_t i : indexes) {
    if (!runs.empty() && runs.back().first + runs.back().count == i) {
      ++runs.back().count;
    } else {
      runs.push_back({i, 1});
    }
  }
  return runs;
}

TEST(PackedAddressesTest, ReadsBackAnyAddresses) {
  for (size_t n : {0, 1, 63, 64, 65, 1000, 4097}) {
    std::vector<uintptr_t> v = SomeAddresses(n, n);
    PackedAddresses p = PackedAddresses::From(v);
    ASSERT_EQ(p.size(), n);
    EXPECT_EQ(p.ToVector(), v) << n;
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(p[i], v[i]) << n << " " << i;
    // Sorted input: lower_bound through the iterators finds each one.
    for (size_t i = 0; i < n; i += 7) {
      auto it = std::lower_bound(p.begin(), p.end(), v[i]);
      ASSERT_EQ(it - p.begin(), static_cast<std::ptrdiff_t>(i));
    }
    // Unsorted input packs too (blocks are offsets from their smallest).
    std::vector<uintptr_t> shuffled = v;
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(n));
    shuffled.push_back(0);
    shuffled.push_back(UINTPTR_MAX);
    PackedAddresses q = PackedAddresses::From(shuffled);
    EXPECT_EQ(q.ToVector(), shuffled) << n;
    EXPECT_EQ(p == q, false);
    EXPECT_TRUE(p == PackedAddresses::From(v));
  }
}

TEST(PackedAddressesTest, DenseAddressesTakeAboutTwoBytes) {
  std::vector<uintptr_t> v;
  for (size_t i = 0; i < 100000; ++i) v.push_back(0x7f0000000000 + 48 * i);
  PackedAddresses p = PackedAddresses::From(v);
  p.shrink_to_fit();
  EXPECT_LE(p.MemoryBytes(), v.size() * 23 / 10);
  EXPECT_EQ(p.ToVector(), v);
}

TEST(PackedUintsTest, WidensAndReadsBack) {
  std::mt19937 rng(7);
  PackedUints p;
  std::vector<uint32_t> v;
  for (size_t i = 0; i < 3000; ++i) {
    // Small at first (1 byte), then 2 bytes, then 4.
    const uint32_t x = i < 1000   ? rng() % 256
                       : i < 2000 ? rng() % 65536
                                  : static_cast<uint32_t>(rng());
    p.push_back(x);
    v.push_back(x);
    if (i == 999) {
      EXPECT_EQ(p.width(), 1);
    }
  }
  EXPECT_EQ(p.width(), 4);
  EXPECT_EQ(p.ToVector(), v);
  p.Set(5, 0xffffffffu);
  v[5] = 0xffffffffu;
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(p[i], v[i]);
  std::vector<uint32_t> seen;
  p.ForEach([&](uint32_t x) { seen.push_back(x); });
  EXPECT_EQ(seen, v);

  PackedUints q = PackedUints::From({3, 1, 4});
  EXPECT_EQ(q.width(), 1);
  q.Set(1, 70000);
  EXPECT_EQ(q.width(), 4);
  EXPECT_EQ(q.ToVector(), (std::vector<uint32_t>{3, 70000, 4}));
  q.assign(5, 300);
  EXPECT_EQ(q.ToVector(), std::vector<uint32_t>(5, 300));
  q.resize(7);
  EXPECT_EQ(q[6], 0u);
  EXPECT_TRUE(PackedUints::From({1, 2}) == PackedUints::From({1, 2}));
  // With the largest value given, the same column without a pass for it.
  for (const std::vector<uint32_t>& v :
       {std::vector<uint32_t>{}, std::vector<uint32_t>{0, 255, 3},
        std::vector<uint32_t>{256, 1}, std::vector<uint32_t>{65536, 2}}) {
    uint32_t max = 0;
    for (uint32_t x : v) max = std::max(max, x);
    const PackedUints given = PackedUints::From(v, max);
    EXPECT_EQ(given.ToVector(), v);
    EXPECT_EQ(given.width(), PackedUints::From(v).width());
  }
  PackedUints wide = PackedUints::From({1, 2, 70000});
  wide.resize(2);
  EXPECT_TRUE(wide == PackedUints::From({1, 2}));  // values, not widths
}

TEST(PackedSizesTest, LargeSizesAreExceptions) {
  std::vector<uint64_t> v = {0,     56,         65534, 65535,
                             65536, 1ull << 40, 72,    UINT64_MAX};
  PackedSizes p = PackedSizes::From(v);
  EXPECT_EQ(p.ToVector(), v);
  uint64_t total = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(p[i], v[i]) << i;
    total += v[i];
  }
  EXPECT_EQ(p.Total(), total);
  std::vector<uint64_t> small(10000, 64);
  PackedSizes q = PackedSizes::From(small);
  q.shrink_to_fit();
  EXPECT_EQ(q.MemoryBytes(), small.size() * 2);
}

// Gather(indexes) and Gather(RunsOf(indexes)) hold exactly the values at
// those indexes, in their order, for every kind of selection a subset makes:
// all but a few (a set pruned of its dead members), a sparse sample, none, one,
// repeats and descending order, reaching into the unpacked tail block, over
// columns with every width, address span and large size.
TEST(PackedColumnsTest, GatherHoldsTheValuesAtTheIndexes) {
  for (size_t n :
       {size_t{1}, size_t{63}, size_t{64}, size_t{130}, size_t{5000}}) {
    const std::vector<uintptr_t> addresses = SomeAddresses(n, 7 + n);
    std::vector<uint32_t> narrow(n), wide(n);
    std::vector<uint64_t> sizes(n);
    for (size_t i = 0; i < n; ++i) {
      narrow[i] = static_cast<uint32_t>(i % 200);
      wide[i] = static_cast<uint32_t>(i * 7919 % 100003);
      sizes[i] = i % 9 == 0 ? (uint64_t{1} << 20) + i : i % 4000;
    }
    const PackedAddresses a = PackedAddresses::From(addresses);
    const PackedUints k1 = PackedUints::From(narrow);
    const PackedUints k4 = PackedUints::From(wide);
    const PackedSizes z = PackedSizes::From(sizes);
    std::mt19937_64 rng(n);
    std::vector<std::vector<size_t>> selections(5);
    for (size_t i = 0; i < n; ++i) {
      if (rng() % 100 != 0) selections[0].push_back(i);  // all but a few
      if (rng() % 10 == 0) selections[1].push_back(i);   // sparse
    }
    selections[3] = {n - 1};
    // A whole block left out: the blocks after it are whole again.
    selections.emplace_back();
    for (size_t i = 0; i < n; ++i) {
      if (i < 64 || i >= 128) selections.back().push_back(i);
    }
    selections[4] = {n - 1, 0, n / 2, n / 2, n - 1};  // any order, repeats
    for (const std::vector<size_t>& keep : selections) {
      std::vector<uintptr_t> want_a;
      std::vector<uint32_t> want_1, want_4;
      std::vector<uint64_t> want_z;
      for (size_t i : keep) {
        want_a.push_back(addresses[i]);
        want_1.push_back(narrow[i]);
        want_4.push_back(wide[i]);
        want_z.push_back(sizes[i]);
      }
      const IndexRuns runs = RunsOf(keep);
      size_t in_runs = 0;
      for (const IndexRun& r : runs) {
        ASSERT_GT(r.count, 0u);
        for (size_t j = 0; j < r.count; ++j) {
          ASSERT_EQ(r.first + j, keep[in_runs + j]);
        }
        in_runs += r.count;
      }
      ASSERT_EQ(in_runs, keep.size());
      for (bool by_runs : {false, true}) {
        SCOPED_TRACE(by_runs ? "runs" : "indexes");
        const PackedAddresses ga = by_runs ? a.Gather(runs) : a.Gather(keep);
        const PackedUints g1 = by_runs ? k1.Gather(runs) : k1.Gather(keep);
        const PackedUints g4 = by_runs ? k4.Gather(runs) : k4.Gather(keep);
        const PackedSizes gz = by_runs ? z.Gather(runs) : z.Gather(keep);
        ASSERT_EQ(ga.size(), keep.size());
        EXPECT_EQ(ga.ToVector(), want_a) << n << " " << keep.size();
        EXPECT_EQ(g1.ToVector(), want_1) << n << " " << keep.size();
        EXPECT_EQ(g4.ToVector(), want_4) << n << " " << keep.size();
        EXPECT_EQ(gz.ToVector(), want_z) << n << " " << keep.size();
        for (size_t j = 0; j < keep.size(); ++j) {
          ASSERT_EQ(ga[j], want_a[j]) << n << " " << j;
          ASSERT_EQ(gz[j], want_z[j]) << n << " " << j;
        }
        uint64_t total = 0;
        for (uint64_t s : want_z) total += s;
        EXPECT_EQ(gz.Total(), total);
        // The gathered columns grow on as any other.
        PackedAddresses more = ga;
        more.push_back(1);
        std::vector<uintptr_t> want_more = want_a;
        want_more.push_back(1);
        EXPECT_EQ(more.ToVector(), want_more);
      }
    }
  }
}

// Copies (made and assigned) read back the same values and are their own:
// changing a copy leaves the original as it was. Columns past 4 MiB take
// their room through huge_pages.h, the path a million-member set's copy
// takes.
TEST(PackedColumnsTest, CopiesAreEqualAndIndependent) {
  for (size_t n : {size_t{0}, size_t{100}, size_t{3} << 20}) {
    const std::vector<uintptr_t> addresses = SomeAddresses(n, 11);
    std::vector<uint32_t> kinds(n);
    std::vector<uint64_t> sizes(n);
    for (size_t i = 0; i < n; ++i) {
      kinds[i] = static_cast<uint32_t>(i % 70001);
      sizes[i] = i % 5 == 0 ? uint64_t{1} << 33 : i % 1000;
    }
    const PackedAddresses a = PackedAddresses::From(addresses);
    const PackedUints k = PackedUints::From(kinds);
    const PackedSizes z = PackedSizes::From(sizes);
    PackedAddresses a2(a);
    PackedUints k2(k);
    PackedSizes z2(z);
    EXPECT_TRUE(a2 == a);
    EXPECT_EQ(a2.ToVector(), addresses);
    EXPECT_EQ(k2.ToVector(), kinds);
    EXPECT_EQ(z2.ToVector(), sizes);
    PackedAddresses a3;
    PackedUints k3 = PackedUints::From({9});
    PackedSizes z3 = PackedSizes::From({9});
    a3 = a;
    k3 = k;
    z3 = z;
    EXPECT_EQ(a3.ToVector(), addresses);
    EXPECT_EQ(k3.ToVector(), kinds);
    EXPECT_EQ(z3.ToVector(), sizes);
    // Self-assignment keeps the values.
    const PackedUints& same = k3;
    k3 = same;
    EXPECT_EQ(k3.ToVector(), kinds);
    if (n == 0) continue;
    k2.Set(0, 0xffffffffu);
    a2.push_back(addresses.back() + 8);
    z2.push_back(7);
    EXPECT_EQ(k[0], kinds[0]);
    EXPECT_EQ(k2[0], 0xffffffffu);
    EXPECT_EQ(a.size(), n);
    EXPECT_EQ(a.ToVector(), addresses);
    EXPECT_EQ(z.size(), n);
    EXPECT_EQ(z2.size(), n + 1);
  }
}

}  // namespace
}  // namespace annex::glue
