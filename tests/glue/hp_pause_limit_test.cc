// Heap questions have a pause limit and stop when interrupted, through the
// public API as a console client or a host meets them: past hp.pause_limit
// (or the host's Options::question_pause_limit) a question ends with a
// TimeoutError that says what to do, the target runs again at once, each
// console client's hp has its own limit, and Monitor::Interrupt() ends a loop
// of heap questions and frees the annex for the next command. The hp-only
// case is Python: tests/hp/test_pause_limit.py.
#include <Python.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

class HpPauseLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        testing::RunTargetCode("pl_data = [[i, str(i)] for i in range(20000)]\n"
                               "pl_ticks = 0\n"));
  }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }
  std::string Exec(const std::string& line, uint64_t namespace_id) {
    auto out = monitor_.ExecInAnnex(line, namespace_id);
    EXPECT_TRUE(out.ok()) << line << ": " << out.status();
    return out.ok() ? *out : out.status().ToString();
  }
  Monitor monitor_;
};

TEST_F(HpPauseLimitTest, PastTheLimitTheQuestionStopsAndTheTargetRuns) {
  ASSERT_TRUE(monitor_.Start().ok());
  EXPECT_EQ(Exec("hp.pause_limit", 1), "5.0\n");
  // 1 µs: any walk of this heap (over 40,000 objects) passes it.
  Exec("hp.pause_limit = 1e-6", 1);
  EXPECT_EQ(Exec("hp.pause_limit", 1), "1e-06\n");
  std::string out = Exec(
      "exec('try:\\n    hp.heap()\\nexcept TimeoutError as e:\\n"
      "    print(str(e))')",
      1);
  EXPECT_NE(out.find("the heap question stopped after holding the target"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("past hp.pause_limit of 1us; the target runs again"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("raise the limit (hp.pause_limit)"), std::string::npos);
  // The target runs again right after.
  ASSERT_TRUE(testing::RunTargetCode("pl_ticks += 1\n"));
  // Another session keeps the default, and the first keeps its own.
  EXPECT_EQ(Exec("hp.pause_limit", 2), "5.0\n");
  EXPECT_EQ(Exec("len(hp.heap()) > 40000", 2), "True\n");
  EXPECT_NE(Exec("exec('try:\\n    hp.heap().byrcs\\nexcept TimeoutError:\\n"
                 "    print(\"stopped\")')",
                 1)
                .find("stopped"),
            std::string::npos);
  // None: no limit; del: the default again.
  Exec("hp.pause_limit = None", 1);
  EXPECT_EQ(Exec("print(hp.pause_limit)", 1), "None\n");
  EXPECT_EQ(Exec("len(hp.heap()) > 40000", 1), "True\n");
  Exec("del hp.pause_limit", 1);
  EXPECT_EQ(Exec("hp.pause_limit", 1), "5.0\n");
  // Bad values are refused and change nothing.
  for (const char* bad : {"0", "-1", "'x'", "float('nan')"}) {
    auto r = monitor_.ExecInAnnex(std::string("hp.pause_limit = ") + bad, 1);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("ValueError: hp.pause_limit"),
              absl::string_view::npos)
        << r.status();
  }
  EXPECT_EQ(Exec("hp.pause_limit", 1), "5.0\n");
}

TEST_F(HpPauseLimitTest, TheHostsLimitBindsHostQuestionsAndIsTheDefault) {
  Options options;
  options.question_pause_limit = absl::ZeroDuration();
  EXPECT_EQ(monitor_.Start(options).code(), absl::StatusCode::kInvalidArgument);
  options.question_pause_limit = absl::Nanoseconds(1);
  ASSERT_TRUE(monitor_.Start(options).ok());
  auto summary = monitor_.HeapSummary();
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(summary.status().message().find("Options::question_pause_limit"),
            absl::string_view::npos)
      << summary.status();
  EXPECT_EQ(Exec("hp.pause_limit", 1), "1e-09\n");
  Exec("hp.pause_limit = None", 1);
  EXPECT_EQ(Exec("len(hp.heap()) > 40000", 1), "True\n");
  ASSERT_TRUE(testing::RunTargetCode("pl_ticks += 1\n"));
}

// A client asking heap questions in a loop (each a walk and a
// classification that holds the target) is interrupted: the loop ends
// with KeyboardInterrupt, whether the interrupt found it in Python code or
// inside a question, and the annex answers the next command.
TEST_F(HpPauseLimitTest, InterruptEndsALoopOfQuestionsAndFreesTheAnnex) {
  ASSERT_TRUE(monitor_.Start().ok());
  Exec("n = 0", 3);
  // The loop writes a byte to this pipe once its first question is
  // answered: interrupts start only then.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  absl::Notification done;
  absl::StatusOr<std::string> looped;
  std::thread asker([&] {
    looped = monitor_.ExecInAnnex(
        "exec('import os\\nwhile True:\\n    hp.heap().byrcs\\n"
        "    n += 1\\n    if n == 1: os.write(" +
            std::to_string(fds[1]) + ", b\"x\")')",
        3);
    done.Notify();
  });
  // The test's thread holds the GIL (python_main.h): let the annex run.
  Py_BEGIN_ALLOW_THREADS;
  char c;
  EXPECT_EQ(read(fds[0], &c, 1), 1);
  // Interrupt until the loop ends: a request that lands between two
  // work items is dropped.
  while (!done.WaitForNotificationWithTimeout(absl::Milliseconds(5))) {
    monitor_.Interrupt();
  }
  Py_END_ALLOW_THREADS;
  asker.join();
  ASSERT_FALSE(looped.ok());
  EXPECT_NE(looped.status().message().find("KeyboardInterrupt"),
            absl::string_view::npos)
      << looped.status();
  EXPECT_EQ(Exec("n >= 1", 3), "True\n");
  EXPECT_EQ(Exec("print('free')", 3), "free\n");
  close(fds[0]);
  close(fds[1]);
  ASSERT_TRUE(testing::RunTargetCode("pl_ticks += 1\n"));
}

}  // namespace
}  // namespace annex
