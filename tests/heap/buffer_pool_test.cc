// BufferPool keeps big vectors between questions: a Take after a Give of
// enough capacity gets that memory back, what is kept stays within the
// limit, Trim frees it and every change is reported.
#include "monitor/heap/buffer_pool.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace annex::heap {
namespace {

constexpr size_t kBig = BufferPool::kMinBytes / sizeof(uint32_t) * 4;

// A pool that keeps vectors from kMinBytes up (the default keeps only
// vectors of 32 MiB and more).
class SmallPool : public BufferPool {
 public:
  explicit SmallPool(size_t limit = kDefaultLimit) : BufferPool(limit) {
    set_min_bytes(kMinBytes);
  }
};

TEST(BufferPoolTest, TakeAfterGiveReusesTheMemory) {
  SmallPool pool;
  std::vector<uint32_t> v = pool.Take<uint32_t>(kBig);
  EXPECT_TRUE(v.empty());
  EXPECT_GE(v.capacity(), kBig);
  v.assign(kBig, 7);
  const uint32_t* data = v.data();
  pool.Give(std::move(v));
  EXPECT_EQ(pool.stats().kept_vectors, 1u);
  EXPECT_GE(pool.kept_bytes(), kBig * sizeof(uint32_t));
  // A smaller need fits the kept vector: the same memory, empty again.
  std::vector<uint32_t> w = pool.Take<uint32_t>(kBig / 2);
  EXPECT_EQ(w.data(), data);
  EXPECT_TRUE(w.empty());
  const BufferPool::Stats s = pool.stats();
  EXPECT_EQ(s.fresh, 1u);
  EXPECT_EQ(s.reused, 1u);
  EXPECT_EQ(s.kept_bytes, 0u);
  EXPECT_EQ(s.kept_vectors, 0u);
}

TEST(BufferPoolTest, FreshVectorsHaveRoomToGrowAnEighth) {
  SmallPool pool;
  std::vector<uint64_t> v = pool.Take<uint64_t>(kBig);
  EXPECT_GE(v.capacity(), kBig + kBig / 8);
  pool.Give(std::move(v));
  // A heap a little larger than last time still fits.
  std::vector<uint64_t> w = pool.Take<uint64_t>(kBig + kBig / 10);
  EXPECT_EQ(pool.stats().reused, 1u);
  EXPECT_EQ(pool.stats().fresh, 1u);
}

TEST(BufferPoolTest, TypesAndSizesAreMatchedBestFit) {
  SmallPool pool;
  std::vector<uint32_t> small = pool.Take<uint32_t>(kBig);
  std::vector<uint32_t> large = pool.Take<uint32_t>(4 * kBig);
  const uint32_t* small_data = small.data();
  const uint32_t* large_data = large.data();
  pool.Give(std::move(large));
  pool.Give(std::move(small));
  // Another element type never takes them.
  std::vector<uint64_t> other = pool.Take<uint64_t>(kBig / 4);
  EXPECT_EQ(pool.stats().kept_vectors, 2u);
  // The smallest that fits, then the other one.
  EXPECT_EQ(pool.Take<uint32_t>(kBig).data(), small_data);
  EXPECT_EQ(pool.Take<uint32_t>(kBig).data(), large_data);
}

TEST(BufferPoolTest, SmallVectorsAreNotKept) {
  BufferPool defaults;
  EXPECT_EQ(defaults.min_bytes(), BufferPool::kDefaultMinBytes);
  defaults.Give(std::vector<uint32_t>(kBig));
  EXPECT_EQ(defaults.stats().kept_vectors, 0u);
  SmallPool pool;
  std::vector<uint32_t> v = pool.Take<uint32_t>(16);
  EXPECT_GE(v.capacity(), 16u);
  pool.Give(std::move(v));
  EXPECT_EQ(pool.stats().kept_vectors, 0u);
  EXPECT_EQ(pool.stats().fresh, 0u);
}

TEST(BufferPoolTest, KeepsWithinTheLimitSmallestLeavingFirst) {
  const size_t bytes = kBig * sizeof(uint32_t);
  SmallPool pool(bytes * 5 / 2);
  std::vector<uint32_t> a = pool.Take<uint32_t>(kBig / 2);  // ~0.56 bytes
  std::vector<uint32_t> b = pool.Take<uint32_t>(kBig);      // ~1.1 bytes
  std::vector<uint32_t> c = pool.Take<uint32_t>(kBig);
  pool.Give(std::move(a));
  pool.Give(std::move(b));
  EXPECT_EQ(pool.stats().kept_vectors, 2u);
  pool.Give(std::move(c));  // passes the limit: `a` (smallest) leaves
  EXPECT_EQ(pool.stats().kept_vectors, 2u);
  EXPECT_LE(pool.kept_bytes(), bytes * 5 / 2);
  // Lowering the limit frees down to it.
  pool.set_limit(2 * bytes);
  EXPECT_EQ(pool.stats().kept_vectors, 1u);
  EXPECT_LE(pool.kept_bytes(), 2 * bytes);
  // A need larger than anything kept: the fresh vector replaces the
  // largest kept one, too small now; larger than the limit, it is not
  // kept either.
  std::vector<uint32_t> huge = pool.Take<uint32_t>(4 * kBig);
  EXPECT_EQ(pool.stats().kept_vectors, 0u);
  pool.Give(std::move(huge));
  EXPECT_EQ(pool.stats().kept_vectors, 0u);
  pool.Give(pool.Take<uint32_t>(kBig));
  EXPECT_EQ(pool.stats().kept_vectors, 1u);
  // A limit of 0 keeps nothing.
  pool.set_limit(0);
  EXPECT_EQ(pool.kept_bytes(), 0u);
  std::vector<uint32_t> d = pool.Take<uint32_t>(kBig);
  pool.Give(std::move(d));
  EXPECT_EQ(pool.kept_bytes(), 0u);
  EXPECT_EQ(pool.stats().kept_vectors, 0u);
}

TEST(BufferPoolTest, TrimFreesAndEveryChangeIsReported) {
  SmallPool pool;
  std::vector<size_t> reports;
  pool.set_on_change([&](size_t kept) { reports.push_back(kept); });
  std::vector<uint32_t> v = pool.Take<uint32_t>(kBig);  // fresh: no change
  EXPECT_TRUE(reports.empty());
  const size_t bytes = v.capacity() * sizeof(uint32_t);
  pool.Give(std::move(v));
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports.back(), bytes);
  pool.Trim();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports.back(), 0u);
  EXPECT_EQ(pool.kept_bytes(), 0u);
  pool.Give(pool.Take<uint32_t>(kBig));
  std::vector<uint32_t> again = pool.Take<uint32_t>(kBig);  // reused
  ASSERT_EQ(reports.size(), 4u);
  EXPECT_EQ(reports.back(), 0u);
}

TEST(BufferPoolTest, HelpersWorkWithoutAPool) {
  std::vector<uint32_t> v = FilledFrom<uint32_t>(nullptr, 10, 3);
  EXPECT_EQ(v, std::vector<uint32_t>(10, 3));
  GiveTo<uint32_t>(nullptr, v);
  EXPECT_EQ(v.capacity(), 0u);
  SmallPool pool;
  std::vector<uint8_t> w = FilledFrom<uint8_t>(&pool, kBig * 4, 1);
  GiveTo(&pool, w);
  EXPECT_EQ(w.capacity(), 0u);
  EXPECT_EQ(pool.stats().kept_vectors, 1u);
}

}  // namespace
}  // namespace annex::heap
