// Issue 16, the console keeps working when the target does not: the
// process stays attachable until its own Python is done at exit.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace {

using ::annex::testing::AnnexBinary;
using ::annex::testing::BackgroundProcess;
using ::annex::testing::RunProcess;
using ::annex::testing::WaitForAnnexPs;
using ::annex::testing::WaitForFile;
using Result = ::annex::testing::ProcessResult;

std::string WriteScript(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// At exit the console stays up until the program's own Python is done:
// its atexit callbacks (registered after the monitor started, so run before
// the monitor's) still find the process attachable, and the console closes
// only after the watchdog's heap walks and the recorder have stopped (a walk
// in flight used to run with the socket already gone). The window that
// remains (socket removed -> process gone: the annex ending and CPython
// finalizing) is measured and printed, not asserted; docs/architecture.md
// gives the figures.
TEST(AnnexHardeningTest, AttachableUntilTheProgramsPythonIsDone) {
  char dir[] = "/tmp/annex-exit-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string env = std::string("XDG_RUNTIME_DIR=") + dir;
  const std::string exiting = std::string(dir) + "/exiting";
  const std::string go = std::string(dir) + "/go";
  std::string app = WriteScript("exiting.py",
                                "import atexit, os, time\n"
                                "data = [[i] for i in range(200000)]\n"
                                "def last_words():\n"
                                "    open('" +
                                    exiting +
                                    "', 'w').close()\n"
                                    "    while not os.path.exists('" +
                                    go +
                                    "'):\n"
                                    "        time.sleep(0.01)\n"
                                    "atexit.register(last_words)\n");
  BackgroundProcess service(
      {AnnexBinary(), "run", "--watchdog", "5", "--heap-interval", "0.2", app},
      "", {env});
  WaitForFile(exiting);
  // Found by `annex ps` and answering, from the program's last atexit.
  pid_t pid = WaitForAnnexPs(env, "exiting.py", service);
  ASSERT_GT(pid, 0);
  Result at_exit = RunProcess({AnnexBinary(), "exec", "--timeout", "20",
                               std::to_string(pid), "print('still here')"},
                              "", {env});
  EXPECT_EQ(at_exit.exit_code, 0) << at_exit.err;
  EXPECT_EQ(at_exit.out, "still here\n");
  // The socket's path, then the window between its removal and the exit.
  const std::string socket =
      std::string(dir) + "/annex/" + std::to_string(pid) + ".sock";
  ASSERT_TRUE(::annex::testing::FileExists(socket));
  std::ofstream(go) << "go";
  while (::annex::testing::FileExists(socket) && !service.ended()) {
    usleep(200);
  }
  const auto gone = std::chrono::steady_clock::now();
  const Result& result = service.Join();
  const auto exited = std::chrono::steady_clock::now();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::printf(
      "unattachable at exit for %.3f s (socket removed -> process gone)\n",
      std::chrono::duration<double>(exited - gone).count());
}

}  // namespace
