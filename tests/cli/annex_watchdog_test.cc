// `annex run`'s watchdog flags end to end (issue 16): a deadlock on a Lock
// in the main thread and a runaway worker thread are detected with flags
// alone, with the action (--on-stall) and a report file
// (--watchdog-report) chosen on the command line.
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace {

using ::annex::testing::AnnexBinary;
using ::annex::testing::RunProcess;
using Result = ::annex::testing::ProcessResult;

std::string WriteScript(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(AnnexWatchdogTest, FlagsNeedTheWatchdogAndKnownActions) {
  std::string app = WriteScript("nothing.py", "pass\n");
  Result no_watchdog = RunProcess(
      {AnnexBinary(), "run", "--no-console", "--on-stall", "abort", app});
  EXPECT_EQ(no_watchdog.exit_code, 2);
  EXPECT_NE(no_watchdog.err.find("--on-stall needs --watchdog SECONDS"),
            std::string::npos)
      << no_watchdog.err;
  Result bad = RunProcess({AnnexBinary(), "run", "--no-console", "--watchdog",
                           "1", "--on-stall", "reboot", app});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("dump, exception or abort"), std::string::npos)
      << bad.err;
  Result missing = RunProcess({AnnexBinary(), "run", "--watchdog-report"});
  EXPECT_EQ(missing.exit_code, 2);
  Result help = RunProcess({AnnexBinary(), "run", "--help"});
  EXPECT_NE(help.out.find("--report-busy-workers"), std::string::npos);
}

// The main thread takes a Lock it already holds: blocked for good without
// the GIL. Reported (blocked_without_gil, with the Python stack) to the
// report file and stderr, then aborted.
TEST(AnnexWatchdogTest, DeadlockOnALockInMainIsReportedAndAborted) {
  std::string report = ::testing::TempDir() + "/deadlock.report";
  std::remove(report.c_str());
  std::string app = WriteScript("deadlock.py",
                                "import threading\n"
                                "lock = threading.Lock()\n"
                                "def deadlock():\n"
                                "    with lock:\n"
                                "        with lock:\n"
                                "            pass\n"
                                "deadlock()\n");
  Result run = RunProcess({AnnexBinary(), "run", "--no-console", "--watchdog",
                           "0.5", "--report-blocked-main", "--on-stall",
                           "abort", "--watchdog-report", report, app});
  EXPECT_EQ(run.exit_code, 128 + SIGABRT) << run.err;
  std::string text = ReadFile(report);
  EXPECT_NE(text.find("kind=blocked_without_gil"), std::string::npos) << text;
  EXPECT_NE(text.find("in deadlock\n"), std::string::npos) << text;
  EXPECT_NE(run.err.find("kind=blocked_without_gil"), std::string::npos)
      << run.err;
  struct stat st;
  ASSERT_EQ(stat(report.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// A worker thread loops forever while main waits for it, waking up now and
// then: reported (busy_python) and ended by TimeoutError; the program goes
// on and exits normally.
TEST(AnnexWatchdogTest, RunawayWorkerIsReportedAndStoppedByAnException) {
  std::string app = WriteScript("runaway.py",
                                "import threading, time\n"
                                "outcome = []\n"
                                "def runaway():\n"
                                "    n = 0\n"
                                "    try:\n"
                                "        while True:\n"
                                "            n += 1\n"
                                "    except TimeoutError:\n"
                                "        outcome.append('stopped')\n"
                                "t = threading.Thread(target=runaway)\n"
                                "t.start()\n"
                                "deadline = time.monotonic() + 60\n"
                                "while t.is_alive() and "
                                "time.monotonic() < deadline:\n"
                                "    time.sleep(1)\n"
                                "print(outcome)\n");
  Result run =
      RunProcess({AnnexBinary(), "run", "--no-console", "--watchdog", "0.3",
                  "--report-busy-workers", "--on-stall", "exception", app});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "['stopped']\n") << run.err;
  EXPECT_NE(run.err.find("kind=busy_python"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("in runaway\n"), std::string::npos) << run.err;
}

}  // namespace
