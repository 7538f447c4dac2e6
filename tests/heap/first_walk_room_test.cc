// HeapEngine::FirstWalkRoom, the room of a session's first recording walk,
// and what it is for in glibc's malloc. Its own binary: the glibc test
// needs a process whose mmap threshold no earlier test has raised.
#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/numeric/bits.h"
#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/python/huge_pages.h"

namespace annex::heap {
namespace {

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
// Once the first walk's record of 3.5 M references is freed, a vector of
// 29.5 MiB comes from malloc's free memory instead of a fresh mapping
// (mallinfo2's hblks counts the mappings held). First in the binary: the
// probe needs glibc's threshold below 29 MiB, as a fresh process has it.
TEST(FirstWalkRoomTest, FreedRoomRaisesGlibcsThreshold) {
  auto mapped_while_held = [](size_t bytes) {
    const size_t before = mallinfo2().hblks;
    void* p = std::malloc(bytes);
    const bool mapped = mallinfo2().hblks > before;
    std::free(p);  // a mapping under 32 MiB raises the threshold to it
    return mapped;
  };
  if (!mapped_while_held(size_t{29} << 20)) {
    // A repeated run, or a threshold set by the environment (which also
    // stops glibc from moving it).
    GTEST_SKIP() << "malloc's mmap threshold is already past 29 MiB";
  }
  {
    std::vector<uint64_t> record;
    python::ReserveHuge(record, HeapEngine::FirstWalkRoom(3500000));
  }
  EXPECT_FALSE(mapped_while_held((size_t{59} << 20) / 2));
}
#endif

// A first reservation is a power of two at least its estimate, but one
// that fits in 30 MiB stays there once ReserveHuge has rounded it to huge
// pages: freed, a mapping raises glibc's mmap threshold only when it is
// under 32 MiB, and 2^22 references (1M objects' first edge walk) mapped
// 34 MiB.
TEST(FirstWalkRoomTest, AFittingEstimateMapsUnderGlibcsLimit) {
  constexpr size_t kLimit = size_t{32} << 20;
  constexpr size_t kFits = size_t{30} << 20;
  for (const size_t n :
       {size_t{1}, size_t{1000}, size_t{1} << 20, (size_t{1} << 21) + 1,
        size_t{3000000}, kFits / 8 - 8, kFits / 8, size_t{10000000}}) {
    const size_t room = HeapEngine::FirstWalkRoom(n);
    EXPECT_GE(room, n);
    const size_t power = absl::bit_ceil(n);
    if (n * sizeof(uint64_t) + python::kMallocSlack > kFits) {
      EXPECT_EQ(room, power) << n;
      continue;
    }
    EXPECT_LE(room, power) << n;
    std::vector<uint64_t> v;
    python::ReserveHuge(v, room);
    EXPECT_LT(v.capacity() * sizeof(uint64_t) + python::kMallocSlack, kLimit)
        << n;
  }
  EXPECT_EQ(HeapEngine::FirstWalkRoom(0), 0u);
}

}  // namespace
}  // namespace annex::heap
