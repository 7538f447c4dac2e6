// The `annex` command end to end, through the real binary: `annex run`
// behaves like the interpreter it embeds (compared case by case with that
// interpreter run directly), and `annex exec` / `attach` reach a live
// program's annex over the real socket.
#include <Python.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "annex_python_build.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/http.h"

namespace {

using ::annex::testing::FreeLoopbackPort;
using ::annex::testing::HttpGet;
using ::annex::testing::MetricValue;

using ::annex::testing::AnnexBinary;
using ::annex::testing::BackgroundProcess;
using ::annex::testing::FileExists;
using ::annex::testing::ListedPid;
using ::annex::testing::RunProcess;
using ::annex::testing::WaitForAnnexPs;
using ::annex::testing::WaitForFile;
using Result = ::annex::testing::ProcessResult;

std::string WriteScript(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// `annex run ARGS` and `python ARGS` must agree on everything observable.
void ExpectLikePython(const std::vector<std::string>& args,
                      const std::string& input = "") {
  std::vector<std::string> annex = {AnnexBinary(), "run", "--no-console"};
  std::vector<std::string> python = {ANNEX_PYTHON_EXECUTABLE};
  annex.insert(annex.end(), args.begin(), args.end());
  python.insert(python.end(), args.begin(), args.end());
  Result a = RunProcess(annex, input), p = RunProcess(python, input);
  EXPECT_EQ(a.exit_code, p.exit_code);
  EXPECT_EQ(a.out, p.out);
  EXPECT_EQ(a.err, p.err);
}

TEST(AnnexCommandTest, HelpAndUsageErrors) {
  Result help = RunProcess({AnnexBinary(), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("usage: annex"), std::string::npos);
  Result run_help = RunProcess({AnnexBinary(), "run", "--help"});
  EXPECT_EQ(run_help.exit_code, 0);
  EXPECT_NE(run_help.out.find("--allow-exec-target"), std::string::npos);
  EXPECT_EQ(RunProcess({AnnexBinary()}).exit_code, 2);
  Result bad = RunProcess({AnnexBinary(), "frobnicate"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("unknown command"), std::string::npos);
  EXPECT_EQ(RunProcess({AnnexBinary(), "exec", "notapid", "1"}).exit_code, 2);
  EXPECT_EQ(RunProcess({AnnexBinary(), "run", "--tcp"}).exit_code, 2);
}

TEST(AnnexCommandTest, RecordAndTopOptionErrorsSayWhatIsWrong) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"record", "--interval", "0", "1", "f"},
       "annex record: --interval needs seconds > 0"},
      {{"record", "--timeout", "soon", "1", "f"},
       "annex record: --timeout needs seconds > 0"},
      {{"record", "--count", "0", "1", "f"},
       "annex record: --count needs a number >= 1"},
      {{"record", "--top", "100001", "1", "f"},
       "annex record: --top needs a number from 1 to 100000"},
      {{"record", "--format", "xml", "1", "f"},
       "annex record: --format is stat or jsonl"},
      {{"record", "--max-bytes", "12Q", "1", "f"},
       "annex record: --max-bytes:"},
      {{"record", "--frobnicate", "1", "f"},
       "annex record: unknown option or missing value: --frobnicate"},
      {{"record", "1", "f", "--interval"},
       "annex record: unknown option or missing value: --interval"},
      {{"record", "1"}, "usage: annex record"},
      {{"record", "notapid", "f"}, "annex record: "},
      {{"top", "--rows", "x", "1"},
       "annex top: --rows needs a number from 1 to 100000"},
      {{"top", "--kinds", "0", "1"},
       "annex top: --kinds needs a number from 1 to 100000"},
      {{"top", "--growth", "--count", "-3", "1"},
       "annex top: --count needs a number >= 1"},
      {{"top", "1", "2"}, "usage: annex top"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {AnnexBinary()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    Result r = RunProcess(argv);
    EXPECT_EQ(r.exit_code, 2) << c.args[1];
    EXPECT_NE(r.err.find(c.message), std::string::npos)
        << c.message << " not in: " << r.err;
    EXPECT_EQ(r.out, "");
  }
  for (const char* cmd : {"record", "top"}) {
    Result help = RunProcess({AnnexBinary(), cmd, "--interval", "5", "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_EQ(help.out.rfind(absl::StrCat("usage: annex ", cmd), 0), 0u)
        << help.out;
  }
}

TEST(AnnexCommandTest, RunScriptIsLikePython) {
  std::string s =
      WriteScript("argv.py",
                  "import sys\n"
                  "print(sys.argv[1:], __name__)\n"
                  "print(sys.executable.endswith('python" ANNEX_PYTHON_VERSION
                  "'))\n"
                  "raise SystemExit(3)\n");
  ExpectLikePython({s, "a", "b c"});
}

TEST(AnnexCommandTest, UncaughtExceptionIsLikePython) {
  std::string s = WriteScript("boom.py", "def f():\n    1/0\nf()\n");
  ExpectLikePython({s});
}

TEST(AnnexCommandTest, DashCAndDashMAndStdinAreLikePython) {
  ExpectLikePython({"-c", "import sys; print(sys.argv); sys.exit('bye')", "x"});
  ExpectLikePython({"-m", "json.tool"}, "{\"b\": [1, 2]}");
  ExpectLikePython({"-c", "print(input().upper())"}, "hello\n");
  ExpectLikePython({"-", "arg"}, "import sys; print(sys.argv)\n");
}

TEST(AnnexCommandTest, ExecAndAttachReachALiveProgram) {
  char dir[] = "/tmp/annex-cli-XXXXXX";  // short: socket paths are limited
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string env = std::string("XDG_RUNTIME_DIR=") + dir;
  std::string flag = std::string(dir) + "/stop";
  std::string app =
      WriteScript("service.py",
                  "import os, threading, time\n"
                  "cache = {}\n"
                  "def worker():\n"
                  "    while not os.path.exists(" +
                      std::string("'") + flag +
                      "'):\n"
                      "        cache[len(cache) % 100] = 'x'\n"
                      "        time.sleep(0.01)\n"
                      "t = threading.Thread(target=worker, name='filler')\n"
                      "t.start(); t.join()\n"
                      "print('service done')\n");
  BackgroundProcess service({AnnexBinary(), "run", app}, "", {env});
  // Wait for the console socket of the service.
  pid_t pid = WaitForAnnexPs(env, "service.py", service);
  ASSERT_GT(pid, 0) << "the service never showed up in `annex ps`: "
                    << service.Join().err;
  std::string p = std::to_string(pid);

  Result ok = RunProcess({AnnexBinary(), "exec", p, "print(6 * 7)"}, "", {env});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "42\n");
  Result raised = RunProcess({AnnexBinary(), "exec", p, "1/0"}, "", {env});
  EXPECT_EQ(raised.exit_code, 1);
  EXPECT_NE(raised.err.find("ZeroDivisionError"), std::string::npos);
  Result from_stdin = RunProcess({AnnexBinary(), "exec", p, "-"},
                                 "import sys\nprint('ns' in dir())\n", {env});
  EXPECT_EQ(from_stdin.out, "False\n");
  Result attach = RunProcess({AnnexBinary(), "attach", p},
                             ".threads\n.stacks\nx = 5\nx * 2\n", {env});
  EXPECT_EQ(attach.exit_code, 0) << attach.err;
  EXPECT_NE(attach.out.find("\"filler\""), std::string::npos) << attach.out;
  EXPECT_NE(attach.out.find("\"MainThread\""), std::string::npos);
  EXPECT_NE(attach.out.find("in worker"), std::string::npos);
  EXPECT_NE(attach.out.find("10"), std::string::npos);
  Result refused =
      RunProcess({AnnexBinary(), "attach", p}, ".exec-target 1+1\n", {env});
  EXPECT_NE((refused.out + refused.err).find("not permitted"),
            std::string::npos)
      << refused.out << refused.err;

  std::ofstream(flag) << "stop";
  const Result& ended = service.Join();
  EXPECT_EQ(ended.exit_code, 0) << ended.err;
  EXPECT_EQ(ended.out, "service done\n");
  struct stat st;
  EXPECT_NE(stat((std::string(dir) + "/annex/" + p + ".sock").c_str(), &st), 0)
      << "socket left behind";
}

// Starts `annex run script` with its runtime directory in `env` as
// `*service`; returns the pid of the program once `annex ps` lists it (0 if
// it ended first).
pid_t StartService(const std::string& env, const std::string& script_name,
                   const std::string& script,
                   std::unique_ptr<BackgroundProcess>* service) {
  std::string app = WriteScript(script_name, script);
  *service = std::make_unique<BackgroundProcess>(
      std::vector<std::string>{AnnexBinary(), "run", app}, "",
      std::vector<std::string>{env});
  return WaitForAnnexPs(env, script_name, **service);
}

// Issue 16: a target thread stuck in C with the GIL (sum over a huge range)
// used to make `annex exec`, `.threads` and `.stacks` hang for as long as
// it ran. `annex stacks` answers from GIL-free reads and names the holder,
// with its Python thread name as a command that held the GIL last saw it;
// `exec --timeout` gives up with exit 124, naming it too; both return while
// the spinner still spins (it writes `done` when it ends). Then SIGTERM of
// the `annex run` process leaves no socket files behind.
TEST(AnnexCommandTest, ConsoleAnswersWhileATargetThreadKeepsTheGil) {
  char dir[] = "/tmp/annex-gil-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string env = std::string("XDG_RUNTIME_DIR=") + dir;
  std::string go = std::string(dir) + "/go";
  std::string started = std::string(dir) + "/started";
  std::string done = std::string(dir) + "/done";
  std::unique_ptr<BackgroundProcess> service;
  pid_t pid = StartService(
      env, "spinner.py",
      "import os, threading, time\n"
      "def spin():\n"
      "    while not os.path.exists('" +
          go +
          "'):\n"
          "        time.sleep(0.01)\n"
          "    open('" +
          started +
          "', 'w').close()\n"
          "    sum(range(10**12))\n"
          "    open('" +
          done +
          "', 'w').close()\n"
          "threading.Thread(target=spin, name='spinner', daemon=True).start()\n"
          "time.sleep(3600)\n",
      &service);
  ASSERT_GT(pid, 0) << "the service never showed up in `annex ps`";
  std::string p = std::to_string(pid);
  // A command with the GIL while the spinner waits: the console copies the
  // threads' Python names (threading does not name OS threads before 3.14).
  Result seen = RunProcess({AnnexBinary(), "exec", p, "pass"}, "", {env});
  ASSERT_EQ(seen.exit_code, 0) << seen.err;
  std::ofstream(go) << "go";
  WaitForFile(started);

  Result stacks = RunProcess({AnnexBinary(), "stacks", p}, "", {env});
  EXPECT_EQ(stacks.exit_code, 0) << stacks.err;
  EXPECT_NE(stacks.out.find("read without the GIL"), std::string::npos)
      << stacks.out;
  EXPECT_NE(stacks.out.find("GIL is held by target thread"), std::string::npos)
      << stacks.out;
  EXPECT_NE(stacks.out.find("[holds GIL]"), std::string::npos) << stacks.out;
  EXPECT_NE(stacks.out.find("in spin"), std::string::npos) << stacks.out;
  EXPECT_NE(stacks.out.find(", Python \"spinner\") [holds GIL]"),
            std::string::npos)
      << stacks.out;
  EXPECT_NE(stacks.out.find(", Python \"spinner\"), innermost first"),
            std::string::npos)
      << stacks.out;
  EXPECT_FALSE(FileExists(done)) << "answered only after the spinner ended";

  Result exec = RunProcess(
      {AnnexBinary(), "exec", "--timeout", "1", p, "print(1)"}, "", {env});
  EXPECT_EQ(exec.exit_code, 124) << exec.out << exec.err;
  EXPECT_NE(exec.err.find("--timeout"), std::string::npos) << exec.err;
  EXPECT_NE(exec.err.find("GIL is held by target thread"), std::string::npos)
      << exec.err;
  EXPECT_NE(exec.err.find("in spin"), std::string::npos) << exec.err;
  EXPECT_FALSE(FileExists(done)) << "answered only after the spinner ended";

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(service->Join().exit_code, 128 + SIGTERM) << service->Join().err;
  std::string base = std::string(dir) + "/annex/" + p;
  EXPECT_FALSE(FileExists(base + ".sock")) << "socket left behind";
  EXPECT_FALSE(FileExists(base + ".info")) << "info file left behind";
}

// A service under `annex run` that idles (after running `setup`) until its
// runtime directory holds `stop`. A client runs `annex exec PID CODE`, where
// CODE is `code` with MARKER replaced by a file it creates once it is busy;
// the client is killed (SIGKILL) then, and the next client's exec must
// answer. CODE never ends by itself, and the exec has no --timeout: an annex
// left busy hangs the test until its timeout (no deadline of its own, which
// a loaded machine could pass).
void ExpectKilledClientLeavesTheAnnexFree(const std::string& setup,
                                          const std::string& code) {
  char dir[] = "/tmp/annex-kill-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string env = std::string("XDG_RUNTIME_DIR=") + dir;
  std::string stop = std::string(dir) + "/stop";
  std::string marker = std::string(dir) + "/busy";
  std::unique_ptr<BackgroundProcess> service;
  pid_t pid = StartService(env, "idle.py",
                           "import os, time\n" + setup +
                               "while not os.path.exists('" + stop +
                               "'):\n"
                               "    time.sleep(0.02)\n",
                           &service);
  ASSERT_GT(pid, 0) << "the service never showed up in `annex ps`";
  std::string p = std::to_string(pid);
  {
    BackgroundProcess client({AnnexBinary(), "exec", p,
                              absl::StrReplaceAll(code, {{"MARKER", marker}})},
                             "", {env});
    while (!FileExists(marker) && !client.ended()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(FileExists(marker)) << client.Join().err;
    client.Signal(SIGKILL);
    EXPECT_EQ(client.Join().exit_code, 128 + SIGKILL);
  }
  Result next =
      RunProcess({AnnexBinary(), "exec", p, "print('free')"}, "", {env});
  EXPECT_EQ(next.exit_code, 0) << next.err;
  EXPECT_EQ(next.out, "free\n");

  std::ofstream(stop) << "stop";
  EXPECT_EQ(service->Join().exit_code, 0) << service->Join().err;
}

// Issue 16: a client that left during `time.sleep(60)` kept the annex
// busy for the rest of the minute. Here the client sleeps for ever; the
// next client's exec must answer.
TEST(AnnexCommandTest, ClientKilledDuringASleepLeavesTheAnnexFree) {
  ExpectKilledClientLeavesTheAnnexFree(
      "",
      "import time\nopen('MARKER', 'w').close()\n"
      "while True:\n"
      "    time.sleep(60)\n");
}

// Issue 14: killing a client did not stop the heap question it had asked
// (a path search on 500 K objects held the target for over ten minutes).
// A client that asks heap questions without a pause limit, one after the
// other for ever, is killed while they run: the question in flight stops,
// the loop ends, and the next client's exec answers (without the stop the
// loop would never end and this test would meet Bazel's timeout).
TEST(AnnexCommandTest, ClientKilledDuringHeapQuestionsLeavesTheAnnexFree) {
  ExpectKilledClientLeavesTheAnnexFree(
      "data = [{'k': [i]} for i in range(200000)]\n",
      "hp.pause_limit = None\nh = hp.heap()\nopen('MARKER', 'w').close()\n"
      "while True:\n"
      "    h.byvia\n"
      "    h = hp.heap()\n");
}

// An output over the console's reply limit is cut with a note and a
// non-zero exit status, not passed off as a whole result.
TEST(AnnexCommandTest, OverLongOutputIsRefusedWithANote) {
  char dir[] = "/tmp/annex-long-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string env = std::string("XDG_RUNTIME_DIR=") + dir;
  std::string stop = std::string(dir) + "/stop";
  std::unique_ptr<BackgroundProcess> service;
  pid_t pid = StartService(env, "quiet.py",
                           "import os, time\n"
                           "while not os.path.exists('" +
                               stop +
                               "'):\n"
                               "    time.sleep(0.02)\n",
                           &service);
  ASSERT_GT(pid, 0);
  Result big = RunProcess(
      {AnnexBinary(), "exec", std::to_string(pid), "print('x' * (2 << 20))"},
      "", {env});
  EXPECT_EQ(big.exit_code, 5) << big.err.substr(0, 300);
  EXPECT_NE(big.out.find("bytes cut"), std::string::npos);
  std::ofstream(stop) << "stop";
  service->Join();
}

// fork() under `annex run`: CPython cannot fork with a sub-interpreter, so
// the annex ends before each fork and comes back in the parent. A child that
// returns normally (and so stops its copy of the monitor), a multiprocessing
// pool with the "fork" start method, and subprocess with preexec_fn (which
// forks through PyOS_BeforeFork) must all work, and the parent must still
// answer heap questions afterwards.
TEST(AnnexCommandTest, ForkingProgramRunsAndStaysObservable) {
  char dir[] = "/tmp/annex-fork-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string env = std::string("XDG_RUNTIME_DIR=") + dir;
  std::string flag = std::string(dir) + "/stop";
  std::string app = WriteScript(
      "forker.py",
      "import os, sys, time, warnings, subprocess\n"
      "import multiprocessing as mp\n"
      "warnings.simplefilter('ignore', DeprecationWarning)\n"
      "def sq(x):\n"
      "    return x * x\n"
      "if __name__ == '__main__':\n"
      "    pid = os.fork()\n"
      "    if pid == 0:\n"
      "        sys.exit(3)\n"
      "    print('child', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
      "    with mp.get_context('fork').Pool(2) as pool:\n"
      "        print('pool', sum(pool.map(sq, range(100))))\n"
      "    r = subprocess.run(['true'], preexec_fn=lambda: None)\n"
      "    print('preexec', r.returncode, flush=True)\n"
      "    while not os.path.exists(sys.argv[1]):\n"
      "        time.sleep(0.02)\n");
  BackgroundProcess service({AnnexBinary(), "run", app, flag}, "", {env});
  std::string answer;
  // Until it answers, or the program ended without answering.
  while (answer.empty() && !service.ended()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const pid_t pid = ListedPid(
        RunProcess({AnnexBinary(), "ps"}, "", {env}).out, "forker.py");
    if (pid == 0) continue;
    // Once the forks are done the program waits: ask it then.
    Result q = RunProcess(
        {AnnexBinary(), "exec", std::to_string(pid),
         "import sys\n"
         "w = [t for t in hp.threads().splitlines() if 'MainThread' in t]\n"
         "print(len(hp.heap()) > 1000, 'in <module>' in ''.join(w))\n"},
        "", {env});
    if (q.exit_code == 0 && q.out == "True True\n") answer = q.out;
  }
  std::ofstream(flag) << "stop";
  const Result& ended = service.Join();
  EXPECT_EQ(answer, "True True\n") << "no heap answer after the forks";
  EXPECT_EQ(ended.exit_code, 0) << ended.err;
  EXPECT_EQ(ended.out, "child 3\npool 328350\npreexec 0\n") << ended.err;
}

// A program nobody wrote for Annex: a run of CPython's own test suite
// (Debian's libpython3.11-testsuite), questioned live while it runs. It must
// end exactly as it does under the plain interpreter.
TEST(AnnexCommandTest, StdlibTestSuiteUnderAnnexWhileQueried) {
  const std::vector<std::string> suite = {"-m",
                                          "test",
                                          "test_json",
                                          "test_collections",
                                          "test_dict",
                                          "test_set",
                                          "test_list",
                                          "test_itertools",
                                          "test_functools",
                                          "test_string",
                                          "test_textwrap",
                                          "test_heapq",
                                          "test_bisect"};
  std::vector<std::string> plain = {ANNEX_PYTHON_EXECUTABLE};
  plain.insert(plain.end(), suite.begin(), suite.end());
  Result reference = RunProcess(plain);
  if (reference.out.find("No module named test") != std::string::npos ||
      reference.err.find("No module named test") != std::string::npos) {
    GTEST_SKIP() << "CPython's test suite is not installed";
  }
  ASSERT_NE(reference.out.find("Tests result: SUCCESS"), std::string::npos)
      << reference.out << reference.err;

  char dir[] = "/tmp/annex-real-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string env = std::string("XDG_RUNTIME_DIR=") + dir;
  // The watchdog watches too (stalls over 20 s would be reported on stderr),
  // and serves its metrics, fed by a heap walk every second.
  const int metrics_port = FreeLoopbackPort();
  ASSERT_GT(metrics_port, 0);
  std::vector<std::string> monitored = {
      AnnexBinary(),     "run",
      "--watchdog",      "20",
      "--metrics-port",  std::to_string(metrics_port),
      "--heap-interval", "1"};
  monitored.insert(monitored.end(), suite.begin(), suite.end());
  BackgroundProcess running(monitored, "", {env});
  // Question it for as long as it runs.
  int answered = 0, paths = 0, stacks = 0, scrapes = 0;
  double served = 0, objects = 0, stalls = 0;
  std::string failures;
  while (!running.ended()) {
    const pid_t listed =
        ListedPid(RunProcess({AnnexBinary(), "ps"}, "", {env}).out, "-m test");
    if (listed == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const std::string pid = std::to_string(listed);
    Result heap = RunProcess(
        {AnnexBinary(), "exec", pid,
         "h = hp.heap()\n"
         "print(len(h) > 10000, h.size > 1000000)\n"
         "sp = str(h[0].sp)\n"
         "found = sp.count('%R') >= 1\n"
         "# .sp walks again: the row may have died since heap() (documented)\n"
         "print(found or sp.startswith('(no member of the set is reachable'))\n"
         "print(found)\n"},
        "", {env});
    if (heap.exit_code == 0) {
      ++answered;
      if (heap.out.rfind("True True\nTrue\n", 0) != 0) failures += heap.out;
      if (heap.out.size() >= 5 &&
          heap.out.compare(heap.out.size() - 5, 5, "True\n") == 0) {
        ++paths;
      }
    }
    Result st = RunProcess({AnnexBinary(), "attach", pid}, ".stacks\n", {env});
    if (st.out.find("libregrtest") != std::string::npos) ++stacks;
    std::string metrics = HttpGet(metrics_port, "/metrics");
    if (!metrics.empty()) {
      ++scrapes;
      served = std::max(
          served,
          MetricValue(metrics, "annex_watchdog_heartbeats_served_total"));
      objects = std::max(
          objects,
          MetricValue(metrics, "annex_python_objects{source=\"heap_engine\"}"));
      // Not busy_python: the suite's main thread runs Python and keeps the
      // GIL (no other thread asks for it), so one test that runs longer
      // than the timeout on a loaded machine is rightly reported as busy.
      for (const char* kind : {"stuck_in_c", "blocked_without_gil"}) {
        stalls += MetricValue(
            metrics,
            absl::StrCat("annex_watchdog_stalls_total{kind=\"", kind, "\"}"));
      }
    }
  }
  const Result& run = running.Join();
  EXPECT_EQ(run.exit_code, reference.exit_code) << run.err;
  EXPECT_NE(run.out.find("Tests result: SUCCESS"), std::string::npos)
      << run.out << run.err;
  EXPECT_GE(answered, 1) << "no heap question was answered while it ran";
  EXPECT_EQ(failures, "");
  EXPECT_GE(paths, 1);
  EXPECT_GE(stacks, 1) << "no stack of the running suite was seen";
  // The watchdog: heartbeats served by the busy suite, no stall but busy
  // main reported (metrics or stderr), object counts from the heap engine.
  EXPECT_GE(scrapes, 1) << "the metrics endpoint never answered";
  EXPECT_GT(served, 0);
  EXPECT_EQ(stalls, 0);
  EXPECT_GT(objects, 10000);
  for (size_t at = run.err.find("annex watchdog: "); at != std::string::npos;
       at = run.err.find("annex watchdog: ", at + 1)) {
    EXPECT_EQ(run.err.compare(at, 38, "annex watchdog: stall kind=busy_python"),
              0)
        << run.err.substr(at, 200);
  }
  std::printf(
      "answered %d heap questions, %d with paths, %d stacks; "
      "%d scrapes: %.0f heartbeats served, %.0f objects\n",
      answered, paths, stacks, scrapes, served, objects);
}

// `annex attach` kept open: lines are written to it one at a time and its
// output is read until a marker appears (no wall-clock limit: a hang meets
// Bazel's test timeout). Its end closes stdin: the client ends its session
// and exits.
class Attached {
 public:
  Attached(const std::string& pid, const std::string& env)
      : client_(BackgroundProcess::OpenInput{}, {AnnexBinary(), "attach", pid},
                {env}) {}
  ~Attached() { client_.Join(); }
  // Sends `line`, then a print of an end marker; returns what the session
  // printed before the marker (all it printed if it ended first).
  std::string Ask(const std::string& line) {
    const std::string marker = absl::StrCat("<<end ", ++asked_, ">>");
    client_.Write(line + "\nprint('" + marker + "')\n");
    client_.WaitForOutput(marker + "\n", read_);
    const std::string out = client_.out();
    const size_t at = out.find(marker + "\n", read_);
    const size_t end = at == std::string::npos ? out.size() : at;
    std::string r = out.substr(read_, end - read_);
    read_ = at == std::string::npos ? end : at + marker.size() + 1;
    if (at == std::string::npos) r += client_.err();
    return r;
  }

 private:
  BackgroundProcess client_;
  size_t read_ = 0;  // what Ask has returned of the client's stdout
  int asked_ = 0;
};

// Issue 13: each console client has its own reference point. Two clients
// attached at once set theirs at different moments and see different
// heap() results at the same moment; a third client's setref and
// clearref, and one-off `annex exec` sessions, change neither.
TEST(AnnexCommandTest, ConsoleClientsHaveTheirOwnReferencePoints) {
  char dir[] = "/tmp/annex-cli-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string env = std::string("XDG_RUNTIME_DIR=") + dir;
  std::string base = std::string(dir) + "/";
  // The program makes list A when asked (file "a"), then list B (file
  // "b"), and writes each one's id for the test.
  std::unique_ptr<BackgroundProcess> service;
  pid_t pid =
      StartService(env, "refpoints.py",
                   "import os, time\n"
                   "d = '" +
                       base +
                       "'\n"
                       "held = {}\n"
                       "for name in ('a', 'b'):\n"
                       "    while not os.path.exists(d + name):\n"
                       "        time.sleep(0.01)\n"
                       "    held[name] = [object() for i in range(50)]\n"
                       "    with open(d + name + '.tmp', 'w') as f:\n"
                       "        f.write(str(id(held[name])))\n"
                       "    os.rename(d + name + '.tmp', d + name + '.id')\n"
                       "while not os.path.exists(d + 'stop'):\n"
                       "    time.sleep(0.01)\n"
                       "print('done', len(held))\n",
                   &service);
  ASSERT_GT(pid, 0);
  const std::string p = std::to_string(pid);
  auto make = [&](const std::string& name) {
    std::ofstream(base + name) << "go";
    WaitForFile(base + name + ".id");
    std::string id;
    std::ifstream(base + name + ".id") >> id;
    return id;
  };
  {
    Attached one(p, env), two(p, env), three(p, env);
    one.Ask("hp.setref()");
    const std::string a = make("a");
    two.Ask("hp.setref()");
    const std::string b = make("b");
    three.Ask("hp.setref()\nhp.clearref()");
    Result exec =
        RunProcess({AnnexBinary(), "exec", p, "hp.setref()"}, "", {env});
    EXPECT_EQ(exec.exit_code, 0) << exec.err;
    const std::string ask =
        "h = hp.heap()\nprint('in', " + a + " in h, " + b + " in h, h.count)";
    const std::string r1 = one.Ask(ask), r2 = two.Ask(ask), r3 = three.Ask(ask);
    EXPECT_NE(r1.find("in True True "), std::string::npos) << r1;
    EXPECT_NE(r2.find("in False True "), std::string::npos) << r2;
    // Client three cleared its reference point: the whole heap.
    EXPECT_NE(r3.find("in True True "), std::string::npos) << r3;
  }  // the clients end
  std::ofstream(base + "stop") << "stop";
  const Result& ended = service->Join();
  EXPECT_EQ(ended.exit_code, 0) << ended.err;
  EXPECT_EQ(ended.out, "done 2\n");
}

}  // namespace
