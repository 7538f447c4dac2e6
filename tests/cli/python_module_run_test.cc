// `python3 -m annex run` (packaging/python/annex/__main__.py, laid out as
// tools/install.sh installs it) takes `annex run`'s watchdog flags with the
// same meaning: --on-stall dump|exception|abort, --watchdog-report FILE,
// --report-blocked-main and --report-busy-workers, all needing --watchdog.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "annex_python_build.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace {

using ::annex::testing::RunProcess;
using Result = ::annex::testing::ProcessResult;

bool Copy(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary);
  out << in.rdbuf();
  return in.good() && out.good();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class PythonModuleRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = "/tmp/annex-pyrun-XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    const std::string runfiles =
        absl::StrCat(std::getenv("TEST_SRCDIR"), "/annex/packaging/python/");
    ASSERT_EQ(mkdir((dir_ + "/annex").c_str(), 0700), 0);
    for (const char* file : {"annex/__init__.py", "annex/__main__.py"}) {
      ASSERT_TRUE(Copy(runfiles + file, dir_ + "/" + file)) << file;
    }
    ASSERT_TRUE(Copy(runfiles + "_annex.so", dir_ + "/annex/_annex.so"));
  }

  // python3 -m annex run ARGS..., with this build's module on the path.
  Result Run(std::vector<std::string> args) {
    args.insert(args.begin(), {ANNEX_PYTHON_EXECUTABLE, "-m", "annex", "run"});
    return RunProcess(args, "",
                      {"PYTHONPATH=" + dir_, "PYTHONNOUSERSITE=1",
                       "XDG_RUNTIME_DIR=" + dir_});
  }

  std::string Script(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_;
};

TEST_F(PythonModuleRunTest, FlagsNeedTheWatchdogAndKnownActions) {
  const std::string app = Script("nothing.py", "print('ran')\n");
  for (const char* flag : {"--report-blocked-main", "--report-busy-workers"}) {
    Result r = Run({"--no-console", flag, app});
    EXPECT_EQ(r.exit_code, 2) << flag;
    EXPECT_NE(r.err.find(absl::StrCat(flag, " needs --watchdog SECONDS")),
              std::string::npos)
        << r.err;
    EXPECT_EQ(r.out, "") << flag;
  }
  Result no_watchdog = Run({"--no-console", "--on-stall", "abort", app});
  EXPECT_EQ(no_watchdog.exit_code, 2);
  EXPECT_NE(no_watchdog.err.find("--on-stall needs --watchdog SECONDS"),
            std::string::npos)
      << no_watchdog.err;
  Result bad =
      Run({"--no-console", "--watchdog", "1", "--on-stall", "reboot", app});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("dump, exception or abort"), std::string::npos)
      << bad.err;
  Result missing = Run({"--watchdog-report"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("--watchdog-report needs a value"),
            std::string::npos)
      << missing.err;
  // All of them accepted together; a program without stalls just runs.
  Result fine = Run({"--no-console", "--watchdog", "5", "--on-stall", "dump",
                     "--watchdog-report", dir_ + "/none.report",
                     "--report-blocked-main", "--report-busy-workers", app});
  EXPECT_EQ(fine.exit_code, 0) << fine.err;
  EXPECT_EQ(fine.out, "ran\n");
  Result help = Run({"--help"});
  for (const char* flag : {"--on-stall", "--watchdog-report",
                           "--report-blocked-main", "--report-busy-workers"}) {
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
  }
  // annex.start() itself refuses them without a watchdog.
  Result api = RunProcess(
      {ANNEX_PYTHON_EXECUTABLE, "-c",
       "import annex\n"
       "for bad in (dict(on_stall='dump'), dict(report_busy_workers=True),\n"
       "            dict(watchdog=1, on_stall='later')):\n"
       "    try:\n"
       "        annex.start(console=False, **bad)\n"
       "    except ValueError as e:\n"
       "        print('refused:', e)\n"},
      "", {"PYTHONPATH=" + dir_, "PYTHONNOUSERSITE=1"});
  EXPECT_EQ(api.exit_code, 0) << api.err;
  EXPECT_EQ(api.out,
            "refused: on_stall, watchdog_report, report_blocked_main and "
            "report_busy_workers need watchdog=SECONDS (or True)\n"
            "refused: on_stall, watchdog_report, report_blocked_main and "
            "report_busy_workers need watchdog=SECONDS (or True)\n"
            "refused: on_stall is 'dump', 'exception' or 'abort'\n");
}

// As tests/cli:annex_watchdog_test for `annex run`: main takes a Lock it
// already holds; reported (blocked_without_gil, with the stack) to the
// report file and stderr, then aborted.
TEST_F(PythonModuleRunTest, DeadlockOnALockInMainIsReportedAndAborted) {
  const std::string report = dir_ + "/deadlock.report";
  const std::string app = Script("deadlock.py",
                                 "import threading\n"
                                 "lock = threading.Lock()\n"
                                 "def deadlock():\n"
                                 "    with lock:\n"
                                 "        with lock:\n"
                                 "            pass\n"
                                 "deadlock()\n");
  Result run =
      Run({"--no-console", "--watchdog", "0.5", "--report-blocked-main",
           "--on-stall", "abort", "--watchdog-report", report, app});
  EXPECT_EQ(run.exit_code, 128 + SIGABRT) << run.err;
  const std::string text = ReadFile(report);
  EXPECT_NE(text.find("kind=blocked_without_gil"), std::string::npos) << text;
  EXPECT_NE(text.find("in deadlock\n"), std::string::npos) << text;
  EXPECT_NE(run.err.find("kind=blocked_without_gil"), std::string::npos)
      << run.err;
  struct stat st;
  ASSERT_EQ(stat(report.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// A worker loops forever while main waits for it, waking up now and then:
// reported (busy_python) and ended by TimeoutError; the program goes on.
TEST_F(PythonModuleRunTest, RunawayWorkerIsReportedAndStoppedByAnException) {
  const std::string app = Script("runaway.py",
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
  Result run = Run({"--no-console", "--watchdog", "0.3",
                    "--report-busy-workers", "--on-stall", "exception", app});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "['stopped']\n") << run.err;
  EXPECT_NE(run.err.find("kind=busy_python"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("in runaway\n"), std::string::npos) << run.err;
}

}  // namespace
