// `annex run`'s watchdog flags end to end (issue 16), through both ways of
// running a program with the monitor: the `annex` command and `python3 -m
// annex run` (packaging/python/annex/__main__.py, laid out as
// tools/install.sh installs it). Each flag means the same in both: a
// deadlock on a Lock in the main thread and a runaway worker thread are
// detected with flags alone, with the action (--on-stall) and a report file
// (--watchdog-report) chosen on the command line.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "annex_python_build.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace {

using ::annex::testing::AnnexBinary;
using ::annex::testing::PythonModuleDir;
using ::annex::testing::ReadFile;
using ::annex::testing::Runfile;
using ::annex::testing::RunProcess;
using ::annex::testing::WithSanitizerRuntime;
using Result = ::annex::testing::ProcessResult;

enum class Launcher { kAnnexCommand, kPythonModule };

class RunWatchdogFlagsTest : public ::testing::TestWithParam<Launcher> {
 protected:
  void SetUp() override {
    // The package is laid out for both: one directory for each test's files.
    dir_ = PythonModuleDir("runflags");
    ASSERT_FALSE(dir_.empty());
  }

  // `annex run ARGS...` or `python3 -m annex run ARGS...` with this build's
  // module on the path.
  Result Run(std::vector<std::string> args) {
    if (GetParam() == Launcher::kAnnexCommand) {
      args.insert(args.begin(), {AnnexBinary(), "run"});
      return RunProcess(args, "", {"XDG_RUNTIME_DIR=" + dir_});
    }
    args.insert(args.begin(), {ANNEX_PYTHON_EXECUTABLE, "-m", "annex", "run"});
    return RunProcess(
        args, "",
        WithSanitizerRuntime({"PYTHONPATH=" + dir_, "PYTHONNOUSERSITE=1",
                              "XDG_RUNTIME_DIR=" + dir_}));
  }

  std::string Script(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_;
};

TEST_P(RunWatchdogFlagsTest, FlagsNeedTheWatchdogAndKnownActions) {
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
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag :
       {"--on-stall", "--watchdog-report", "--report-blocked-main",
        "--report-busy-workers", "--record-retainers", "--memory-budget"}) {
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
  }
}

// One parser (monitor/cli/run_flags.h) reads the options of both: the
// record and budget options work with python3 -m annex run too, with the
// same messages; only the annex command takes --python.
TEST_P(RunWatchdogFlagsTest, BothTakeEveryOptionWithTheSameMessages) {
  const std::string app = Script("nothing.py", "print('ran')\n");
  Result top = Run(
      {"--no-console", "--record", dir_ + "/r.stat", "--record-top", "0", app});
  EXPECT_EQ(top.exit_code, 2);
  EXPECT_NE(top.err.find("annex run: --record-top needs 1 to 100000"),
            std::string::npos)
      << top.err;
  Result budget = Run({"--no-console", "--memory-budget", "x", app});
  EXPECT_EQ(budget.exit_code, 2);
  EXPECT_NE(budget.err.find("--memory-budget needs MB[,TOTAL_MB] > 0"),
            std::string::npos)
      << budget.err;
  // The first record is written at once: the program waits for it.
  const std::string record = dir_ + "/heap.jsonl";
  const std::string waits =
      Script("waits.py",
             "import os, sys, time\n"
             "def done():\n"
             "    return (os.path.exists(sys.argv[1]) and\n"
             "            open(sys.argv[1]).read().endswith('\\n'))\n"
             "while not done():\n"
             "    time.sleep(0.02)\n"
             "print('ran')\n");
  Result recorded = Run({"--no-console", "--record", record, "--record-format",
                         "jsonl", "--memory-budget", "64", waits, record});
  EXPECT_EQ(recorded.exit_code, 0) << recorded.err;
  EXPECT_EQ(recorded.out, "ran\n");
  EXPECT_NE(ReadFile(record).find("{\"schema\":\"annex.record/1\","),
            std::string::npos)
      << ReadFile(record);
  Result python = Run({"--no-console", "--python", "/usr/bin/python3", app});
  if (GetParam() == Launcher::kPythonModule) {
    EXPECT_EQ(python.exit_code, 2);
    EXPECT_NE(python.err.find("--python is for the annex command"),
              std::string::npos)
        << python.err;
  } else {
    EXPECT_EQ(python.err.find("--python is for the annex command"),
              std::string::npos)
        << python.err;
  }
}

// The main thread takes a Lock it already holds: blocked for good without
// the GIL. Reported (blocked_without_gil, with the Python stack) to the
// report file and stderr, then aborted.
TEST_P(RunWatchdogFlagsTest, DeadlockOnALockInMainIsReportedAndAborted) {
  const std::string report = dir_ + "/deadlock.report";
  Result run =
      Run({"--no-console", "--watchdog", "0.5", "--report-blocked-main",
           "--on-stall", "abort", "--watchdog-report", report,
           Runfile("tests/cli/testdata/deadlock.py")});
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

// A worker loops forever while main waits for it: reported (busy_python)
// and ended by TimeoutError; the program goes on and exits normally.
TEST_P(RunWatchdogFlagsTest, RunawayWorkerIsReportedAndStoppedByAnException) {
  Result run = Run({"--no-console", "--watchdog", "0.3",
                    "--report-busy-workers", "--on-stall", "exception",
                    Runfile("tests/cli/testdata/runaway.py")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "['stopped']\n") << run.err;
  EXPECT_NE(run.err.find("kind=busy_python"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("in runaway\n"), std::string::npos) << run.err;
}

INSTANTIATE_TEST_SUITE_P(BothLaunchers, RunWatchdogFlagsTest,
                         ::testing::Values(Launcher::kAnnexCommand,
                                           Launcher::kPythonModule),
                         [](const ::testing::TestParamInfo<Launcher>& info) {
                           return info.param == Launcher::kAnnexCommand
                                      ? "AnnexCommand"
                                      : "PythonModule";
                         });

// annex.start() itself refuses the stall flags' options without a watchdog.
TEST(PythonModuleStartTest, RefusesStallOptionsWithoutAWatchdog) {
  const std::string dir = PythonModuleDir("runflags");
  ASSERT_FALSE(dir.empty());
  Result api = RunProcess(
      {ANNEX_PYTHON_EXECUTABLE, "-c",
       "import annex\n"
       "for bad in (dict(on_stall='dump'), dict(report_busy_workers=True),\n"
       "            dict(watchdog=1, on_stall='later')):\n"
       "    try:\n"
       "        annex.start(console=False, **bad)\n"
       "    except ValueError as e:\n"
       "        print('refused:', e)\n"},
      "", WithSanitizerRuntime({"PYTHONPATH=" + dir, "PYTHONNOUSERSITE=1"}));
  EXPECT_EQ(api.exit_code, 0) << api.err;
  EXPECT_EQ(api.out,
            "refused: on_stall, watchdog_report, report_blocked_main and "
            "report_busy_workers need watchdog=SECONDS (or True)\n"
            "refused: on_stall, watchdog_report, report_blocked_main and "
            "report_busy_workers need watchdog=SECONDS (or True)\n"
            "refused: on_stall is 'dump', 'exception' or 'abort'\n");
}

}  // namespace
