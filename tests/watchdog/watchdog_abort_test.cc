// The abort action, in a death test of its own binary: the process dies
// with SIGABRT after writing the report.
#include <sys/resource.h>

#include <csignal>

#include "gtest/gtest.h"
#include "monitor/watchdog/watchdog.h"
#include "tests/testing/python_main.h"
#include "tests/watchdog/test_support.h"

namespace annex::watchdog {
namespace {

using ::annex::testing::RunTargetCode;

TEST(WatchdogAbortDeathTest, AbortsAfterReportingAStall) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        rlimit no_core;  // a test leaves no core file behind
        no_core.rlim_cur = 0;
        no_core.rlim_max = 0;
        setrlimit(RLIMIT_CORE, &no_core);
        // Only the abort ends the spin below: a build that never aborts
        // hangs the child until the test's timeout.
        testing::InstallTestModule();
        Options options;
        options.stall_timeout = absl::Milliseconds(200);
        options.report_fd = 2;
        options.abort = true;
        Watchdog watchdog;
        if (!watchdog.Start(options).ok()) _exit(1);
        RunTargetCode(
            "import _wdtest\n"
            "def wedged():\n"
            "    _wdtest.spin_in_c()\n"
            "wedged()\n");
        _exit(0);
      },
      ::testing::KilledBySignal(SIGABRT),
      "annex watchdog: stall kind=stuck_in_c(.|\n)*in wedged");
}

}  // namespace
}  // namespace annex::watchdog
