// The soak test of DESIGN's first promise (a monitor never harms its host):
// a target churning awkward objects on 8 threads under `annex run`, asked
// questions of every kind through `annex exec`, must answer every one and
// survive. The driver (soak.py, also used by tools/soak.sh for long runs)
// decides pass or fail; this test runs it at a size fit for CI.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "annex_python_build.h"
#include "gtest/gtest.h"

namespace {

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir ? srcdir : ".") + "/annex/" + path;
}

// Runs argv; returns its exit status and what it printed (stdout and
// stderr together).
int RunProcess(const std::vector<std::string>& argv, std::string* output) {
  int out[2];
  if (pipe(out) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    close(out[1]);
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) output->append(buf, n);
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(SoakTest, ChurningTargetAnswersEveryKindOfQuestionAndSurvives) {
  std::string output;
  // 6 rounds of every kind of question (18 kinds, 6 of them on identity
  // over time: reference points and kept sets asked again after the target
  // ran, which arm the death watch while the target churns). A hang is a
  // question without an answer for 10 minutes: far past any load, never a
  // speed check.
  const int status =
      RunProcess({ANNEX_PYTHON_EXECUTABLE, Runfile("tests/soak/soak.py"),
                  "--annex", Runfile("monitor/cli/annex"), "--questions", "108",
                  "--hang-seconds", "600", "--dir", ::testing::TempDir()},
                 &output);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("\"questions\": 108"), std::string::npos) << output;
  EXPECT_NE(output.find("\"failures\": 0"), std::string::npos) << output;
}

}  // namespace
