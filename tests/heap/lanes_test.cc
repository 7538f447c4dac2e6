// Lanes runs every slice exactly once, on helper threads when it has lanes
// for them (shown by a slice that waits for another thread's slice), on
// the caller alone, in order, with one lane; Beside runs each side once.
#include "monitor/heap/lanes.h"

#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace annex::heap {
namespace {

TEST(LanesTest, CountsAreClamped) {
  EXPECT_EQ(Lanes().count(), 1);
  EXPECT_EQ(Lanes(0).count(), 1);
  EXPECT_EQ(Lanes(-3).count(), 1);
  EXPECT_EQ(Lanes(2).count(), 2);
  EXPECT_EQ(Lanes(99).count(), Lanes::kMaxLanes);
  EXPECT_EQ(Lanes(2).grain(), Lanes::kGrain);
  EXPECT_EQ(Lanes(2, 0).grain(), 1u);
}

// The cgroup's CPU quota in CPUs' time per period, or -1 when none (read
// as the cgroup documentation describes its files, v2 then v1).
double CgroupQuota() {
  std::ifstream v2("/sys/fs/cgroup/cpu.max");
  std::string quota, period;
  if (v2 >> quota >> period) {
    return quota == "max" ? -1 : std::stod(quota) / std::stod(period);
  }
  std::ifstream q("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
  std::ifstream p("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  long long quota_us = -1, period_us = 0;
  if (!(q >> quota_us) || !(p >> period_us) || quota_us <= 0) return -1;
  return static_cast<double>(quota_us) / static_cast<double>(period_us);
}

TEST(LanesTest, ForMachineFollowsTheCpusThisProcessMayUse) {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  ASSERT_EQ(sched_getaffinity(0, sizeof(cpus), &cpus), 0);
  const double quota = CgroupQuota();
  const bool two = CPU_COUNT(&cpus) >= 2 && (quota < 0 || quota >= 2);
  EXPECT_EQ(Lanes::ForMachine().count(), two ? 2 : 1) << "quota " << quota;
}

TEST(LanesTest, EverySliceRunsOnceWhateverTheLanesAndSizes) {
  for (int count : {1, 2, 3, 4}) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{64}, size_t{1000},
                     size_t{100003}}) {
      for (size_t grain : {size_t{0}, size_t{1}, size_t{10}, size_t{4096}}) {
        std::vector<std::atomic<int>> runs(n);
        std::atomic<size_t> slices{0};
        Lanes(count, grain).For(n, [&](size_t begin, size_t end) {
          ASSERT_LT(begin, end);
          ASSERT_LE(end - begin, grain == 0 ? 1 : grain);
          for (size_t i = begin; i < end; ++i) runs[i].fetch_add(1);
          slices.fetch_add(1);
        });
        for (size_t i = 0; i < n; ++i) {
          ASSERT_EQ(runs[i].load(), 1)
              << "lanes " << count << " n " << n << " grain " << grain;
        }
        const size_t g = grain == 0 ? 1 : grain;
        EXPECT_EQ(slices.load(), (n + g - 1) / g);
      }
    }
  }
}

TEST(LanesTest, OneLaneRunsTheSlicesInOrderOnTheCaller) {
  std::vector<size_t> begins;
  const std::thread::id caller = std::this_thread::get_id();
  Lanes(1, 10).For(100, [&](size_t begin, size_t end) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(end, begin + 10);
    begins.push_back(begin);
  });
  EXPECT_EQ(begins,
            (std::vector<size_t>{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}));
}

TEST(LanesTest, OneSliceRunsOnTheCaller) {
  const std::thread::id caller = std::this_thread::get_id();
  int calls = 0;
  Lanes(4, 10).For(5, [&](size_t begin, size_t end) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(begin, 0u);
    EXPECT_EQ(end, 5u);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

// Whichever thread takes the first slice waits inside it until another
// thread ran a slice: with two lanes, a helper must take the second one.
TEST(LanesTest, TwoLanesRunSlicesOnAHelperThread) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::thread::id> ran_by(2);
  bool second_done = false;
  Lanes(2, 1).For(2, [&](size_t begin, size_t) {
    std::unique_lock<std::mutex> lock(mu);
    ran_by[begin] = std::this_thread::get_id();
    if (begin == 0) {
      cv.wait(lock, [&] { return second_done; });
    } else {
      second_done = true;
      cv.notify_all();
    }
  });
  EXPECT_NE(ran_by[0], ran_by[1]);
}

TEST(LanesTest, OneLaneStopsWhenTheCallerSaysSo) {
  int asked = 0;
  std::vector<size_t> begins;
  EXPECT_FALSE(Lanes(1, 10).For(
      100, [&](size_t begin, size_t) { begins.push_back(begin); },
      [&] { return ++asked == 3; }));
  EXPECT_EQ(begins, (std::vector<size_t>{0, 10}));
  // Never told to stop: every slice, and true.
  begins.clear();
  EXPECT_TRUE(Lanes(1, 10).For(
      100, [&](size_t begin, size_t) { begins.push_back(begin); },
      [] { return false; }));
  EXPECT_EQ(begins.size(), 10u);
}

// The caller asks before each slice it takes: told to stop at once, it
// takes none (whatever a helper took meanwhile), and For says it stopped.
TEST(LanesTest, TheCallerTakesNoSliceOnceToldToStop) {
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> on_caller{0};
  std::vector<std::atomic<int>> runs(1000);
  const bool finished = Lanes(2, 1).For(
      runs.size(),
      [&](size_t begin, size_t) {
        runs[begin].fetch_add(1);
        if (std::this_thread::get_id() == caller) on_caller.fetch_add(1);
      },
      [] { return true; });
  EXPECT_FALSE(finished);
  EXPECT_EQ(on_caller.load(), 0);
  for (const auto& r : runs) ASSERT_LE(r.load(), 1);
}

// A slice's exception reaches the caller once every lane has stopped,
// whichever lane threw.
TEST(LanesTest, AnExceptionInASliceReachesTheCaller) {
  for (int count : {1, 2, 3}) {
    std::atomic<int> ran{0};
    EXPECT_THROW(Lanes(count, 1).For(100,
                                     [&](size_t begin, size_t) {
                                       ran.fetch_add(1);
                                       if (begin == 7) {
                                         throw std::runtime_error("slice 7");
                                       }
                                     }),
                 std::runtime_error)
        << count;
    EXPECT_GE(ran.load(), 8) << count;
  }
  EXPECT_THROW(
      Lanes(2).Beside([] { throw std::runtime_error("helper"); }, [] {}),
      std::runtime_error);
  EXPECT_THROW(
      Lanes(2).Beside([] {}, [] { throw std::runtime_error("caller"); }),
      std::runtime_error);
}

TEST(LanesTest, SeveralLanesRunEverySliceWhenNeverStopped) {
  std::vector<std::atomic<int>> runs(5000);
  EXPECT_TRUE(Lanes(3, 7).For(
      runs.size(),
      [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) runs[i].fetch_add(1);
      },
      [] { return false; }));
  for (const auto& r : runs) ASSERT_EQ(r.load(), 1);
}

TEST(LanesTest, BesideRunsTheHelperSideOnAnotherThread) {
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id helper_ran_on, caller_ran_on;
  Lanes(2).Beside([&] { helper_ran_on = std::this_thread::get_id(); },
                  [&] { caller_ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(caller_ran_on, caller);
  EXPECT_NE(helper_ran_on, caller);
  EXPECT_NE(helper_ran_on, std::thread::id());
}

TEST(LanesTest, BesideWithOneLaneRunsTheCallerSideFirst) {
  const std::thread::id caller = std::this_thread::get_id();
  std::vector<std::string> order;
  Lanes(1).Beside(
      [&] {
        EXPECT_EQ(std::this_thread::get_id(), caller);
        order.push_back("helper side");
      },
      [&] { order.push_back("caller side"); });
  EXPECT_EQ(order, (std::vector<std::string>{"caller side", "helper side"}));
}

}  // namespace
}  // namespace annex::heap
