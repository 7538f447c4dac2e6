// The stall classification logic, fed with synthetic samples (no Python).
#include "monitor/watchdog/internal/stall_detector.h"

#include <vector>

#include "gtest/gtest.h"

namespace annex::watchdog::internal {
namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kTimeout = 100 * kMs;

int kMain;  // identities only
int kWorker;
int kFrameA, kFrameB;

StallSample Held(int64_t now_ms, const void* holder, const void* instr,
                 int64_t heartbeat_since_ms = 0) {
  StallSample s;
  s.now_ns = now_ms * kMs;
  s.gil_locked = true;
  s.holder = holder;
  s.switch_number = 7;
  s.holder_is_main = holder == &kMain;
  s.holder_frame = &kFrameA;
  s.holder_instr = instr;
  s.main_thread = &kMain;
  s.heartbeat_outstanding_since_ns = heartbeat_since_ms * kMs;
  return s;
}

StallDetector::Config Config() {
  StallDetector::Config config;
  config.timeout_ns = kTimeout;
  return config;
}

TEST(StallDetectorTest, MainHoldingGilWithOverdueHeartbeatIsStuckInC) {
  StallDetector detector(Config());
  std::optional<StallVerdict> verdict;
  for (int64_t t = 0; t <= 200 && !verdict; t += 5) {
    verdict =
        detector.Update(Held(t, &kMain, &kFrameA, /*heartbeat_since_ms=*/1));
    if (verdict) {
      EXPECT_GE(t, 101);
    }
  }
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(verdict->kind, StallKind::kStuckInC);
  EXPECT_EQ(verdict->thread, &kMain);
  EXPECT_TRUE(verdict->is_main);
}

TEST(StallDetectorTest, MainKeepingGilButServingHeartbeatsIsBusyPython) {
  StallDetector detector(Config());
  std::optional<StallVerdict> verdict;
  int64_t t = 0;
  for (; t <= 200 && !verdict; t += 5) {
    // Even an instruction pointer that never moves (`while True: pass`).
    verdict =
        detector.Update(Held(t, &kMain, &kFrameA, /*heartbeat_since_ms=*/0));
  }
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(verdict->kind, StallKind::kBusyPython);
  EXPECT_EQ(t - 5, 100);
  // Reported once per run.
  EXPECT_FALSE(detector.Update(Held(t, &kMain, &kFrameA)).has_value());
}

TEST(StallDetectorTest, BusyMainIsSilentWhenNotAskedFor) {
  StallDetector::Config config = Config();
  config.report_busy_main = false;
  StallDetector detector(config);
  for (int64_t t = 0; t <= 300; t += 5) {
    EXPECT_FALSE(detector.Update(Held(t, &kMain, &kFrameA)).has_value());
  }
}

TEST(StallDetectorTest, WorkerWithStillInstructionPointerIsStuckInC) {
  StallDetector detector(Config());
  std::optional<StallVerdict> verdict;
  for (int64_t t = 0; t <= 200 && !verdict; t += 5) {
    verdict = detector.Update(Held(t, &kWorker, &kFrameA));
  }
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(verdict->kind, StallKind::kStuckInC);
  EXPECT_EQ(verdict->thread, &kWorker);
  EXPECT_FALSE(verdict->is_main);
}

TEST(StallDetectorTest, WorkerRunningPythonIsReportedOnlyWhenAskedFor) {
  for (bool ask : {false, true}) {
    StallDetector::Config config = Config();
    config.report_busy_workers = ask;
    StallDetector detector(config);
    std::optional<StallVerdict> verdict;
    for (int64_t t = 0; t <= 300 && !verdict; t += 5) {
      verdict =
          detector.Update(Held(t, &kWorker, (t / 5) % 2 ? &kFrameA : &kFrameB));
    }
    EXPECT_EQ(verdict.has_value(), ask);
    if (verdict) {
      EXPECT_EQ(verdict->kind, StallKind::kBusyPython);
    }
  }
}

TEST(StallDetectorTest, WorkerRunningPythonWhileOthersWaitIsReported) {
  StallDetector detector(Config());  // report_busy_workers off
  std::optional<StallVerdict> verdict;
  int64_t t = 0;
  for (; t <= 400 && !verdict; t += 5) {
    StallSample s = Held(t, &kWorker, (t / 5) % 2 ? &kFrameA : &kFrameB);
    s.gil_wanted = t >= 50;  // the main thread starts waiting at 50 ms
    verdict = detector.Update(s);
  }
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(t - 5, 150);
  EXPECT_EQ(verdict->kind, StallKind::kBusyPython);
  EXPECT_TRUE(verdict->gil_wanted);
}

TEST(StallDetectorTest, GapWithOverdueHeartbeatNeedsAFreshRunBeforeStuck) {
  // Main holds the GIL; its heartbeat was sent at 1 ms. The watchdog is not
  // scheduled from 10 to 160 ms: the heartbeat is overdue at the first
  // sample after the gap, but the run has only just been seen again.
  StallDetector detector(Config());
  EXPECT_FALSE(detector.Update(Held(10, &kMain, &kFrameA, 1)).has_value());
  EXPECT_FALSE(detector.Update(Held(160, &kMain, &kFrameA, 1)).has_value());
  std::optional<StallVerdict> verdict;
  int64_t t = 165;
  for (; t <= 400 && !verdict; t += 5) {
    verdict = detector.Update(Held(t, &kMain, &kFrameA, 1));
  }
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(verdict->kind, StallKind::kStuckInC);
  EXPECT_EQ(t - 5, 210) << "reported once the run was seen for timeout/2";
  EXPECT_GE(verdict->duration_ns, kTimeout / 2);
}

TEST(StallDetectorTest, SamplingGapRestartsTheEvidence) {
  StallDetector detector(Config());
  EXPECT_FALSE(detector.Update(Held(0, &kWorker, &kFrameA)).has_value());
  // The watchdog thread was not scheduled for 150 ms: no verdict from one
  // sample on either side of the gap.
  EXPECT_FALSE(detector.Update(Held(150, &kWorker, &kFrameA)).has_value());
  std::optional<StallVerdict> verdict;
  int64_t t = 155;
  for (; t <= 400 && !verdict; t += 5) {
    verdict = detector.Update(Held(t, &kWorker, &kFrameA));
  }
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(t - 5, 250);
}

TEST(StallDetectorTest, ServedProbesCountAsProgress) {
  StallDetector::Config config = Config();
  config.report_busy_workers = true;
  StallDetector detector(config);
  std::optional<StallVerdict> verdict;
  for (int64_t t = 0; t <= 300 && !verdict; t += 5) {
    // 3.13: the stored instruction pointer stands still in a loop.
    StallSample s = Held(t, &kWorker, &kFrameA);
    s.holder_progress = t / 5;
    verdict = detector.Update(s);
  }
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(verdict->kind, StallKind::kBusyPython);
}

TEST(StallDetectorTest, GilChangingHandsResetsTheRun) {
  StallDetector detector(Config());
  for (int64_t t = 0; t <= 500; t += 5) {
    StallSample s = Held(t, &kWorker, &kFrameA);
    s.switch_number =
        static_cast<unsigned long>(t / 50);  // a switch every 50 ms
    EXPECT_FALSE(detector.Update(s).has_value()) << t;
  }
}

TEST(StallDetectorTest, BlockedMainIsReportedOnceAndOnlyWhenAskedFor) {
  for (bool ask : {false, true}) {
    StallDetector::Config config = Config();
    config.report_blocked_main = ask;
    StallDetector detector(config);
    int reported = 0;
    for (int64_t t = 0; t <= 400; t += 5) {
      StallSample s;
      s.now_ns = t * kMs;
      s.main_thread = &kMain;
      s.heartbeat_outstanding_since_ns = 1 * kMs;
      if (auto verdict = detector.Update(s)) {
        ++reported;
        EXPECT_EQ(verdict->kind, StallKind::kBlockedWithoutGil);
        EXPECT_EQ(verdict->thread, &kMain);
      }
    }
    EXPECT_EQ(reported, ask ? 1 : 0);
  }
}

// Switch numbers noted as Annex's own takes, for the fake below.
std::vector<unsigned long> g_own_takes;

int FakeExplained(unsigned long from, unsigned long to, int allow_last) {
  for (unsigned long s = from + 1; s <= to; ++s) {
    if (allow_last && s == to) break;
    bool explained = false;
    for (unsigned long t : g_own_takes) explained |= t == s || t + 1 == s;
    if (!explained) return 0;
  }
  return 1;
}

// The annex walks the heap every 30 ms while main runs a busy loop: main
// hands the GIL over (switch +1), the annex's take is noted, main takes it
// back (+1). Without the notes every walk restarts main's run and the loop
// is never reported (issue 16: `--heap-interval 1` hid a busy loop).
TEST(StallDetectorTest, AnnexTakesDoNotEndABusyMainRun) {
  for (bool noted : {false, true}) {
    g_own_takes.clear();
    StallDetector::Config config = Config();
    config.switches_explained = &FakeExplained;
    StallDetector detector(config);
    std::optional<StallVerdict> verdict;
    unsigned long switches = 7;
    int kAnnex;
    for (int64_t t = 0; t <= 300 && !verdict; t += 5) {
      if (t % 30 == 10) {
        ++switches;  // the annex takes the GIL
        if (noted) g_own_takes.push_back(switches);
        StallSample annex = Held(t, &kAnnex, &kFrameB);
        annex.switch_number = switches;
        annex.holder_is_own = true;
        if (t % 60 == 10) {  // seen by a sample only at every other walk
          EXPECT_FALSE(detector.Update(annex).has_value());
        }
        ++switches;  // main takes it back
        continue;
      }
      StallSample main = Held(t, &kMain, &kFrameA);
      main.switch_number = switches;
      verdict = detector.Update(main);
      if (verdict) {
        EXPECT_EQ(verdict->kind, StallKind::kBusyPython);
        EXPECT_GE(t, 100);
        EXPECT_LT(t, 110);
        EXPECT_EQ(verdict->switch_number, switches);
      }
    }
    EXPECT_EQ(verdict.has_value(), noted);
  }
}

// A target thread that takes the GIL between two of main's holds ends the
// run, Annex's takes before it notwithstanding.
TEST(StallDetectorTest, AWorkerTakingTheGilAfterAnnexEndsTheRun) {
  g_own_takes = {8};
  StallDetector::Config config = Config();
  config.switches_explained = &FakeExplained;
  StallDetector detector(config);
  int64_t t = 0;
  for (; t <= 60; t += 5) {
    EXPECT_FALSE(detector.Update(Held(t, &kMain, &kFrameA)).has_value());
  }
  // annex took 8, the worker 9, main 10: not a run of main any more.
  std::optional<StallVerdict> verdict;
  for (; t <= 150 && !verdict; t += 5) {
    StallSample main = Held(t, &kMain, &kFrameA);
    main.switch_number = 10;
    verdict = detector.Update(main);
  }
  EXPECT_FALSE(verdict.has_value());
  // Reported a whole timeout after the worker's take instead.
  for (; t <= 200 && !verdict; t += 5) {
    StallSample main = Held(t, &kMain, &kFrameA);
    main.switch_number = 10;
    verdict = detector.Update(main);
  }
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(verdict->kind, StallKind::kBusyPython);
}

}  // namespace
}  // namespace annex::watchdog::internal
