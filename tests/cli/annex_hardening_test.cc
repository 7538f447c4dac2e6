// Issue 16, the console keeps working when the target does not: a client
// killed during a blocking lock wait or socket read in the annex leaves the
// annex free for the next client.
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

// Waits until `path` exists (true) or `client` has ended without making it
// (false: it failed before its wait).
bool WaitForFileOrExit(const std::string& path,
                       const BackgroundProcess& client) {
  while (access(path.c_str(), F_OK) != 0) {
    if (client.ended()) return access(path.c_str(), F_OK) == 0;
    usleep(10000);
  }
  return true;
}

// Each blocking call never returns by itself; the client is killed once the
// code has reached it (it writes `waiting` just before), and the next client
// must be served. Before the fix only time.sleep ended: the next `exec`
// found the annex busy for good. The next `exec` has no --timeout (a
// deadline a loaded machine could pass): an annex left busy hangs it until
// the test's timeout.
TEST(AnnexHardeningTest, ClientKilledDuringABlockingWaitLeavesTheAnnexFree) {
  char dir[] = "/tmp/annex-wait-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string env = std::string("XDG_RUNTIME_DIR=") + dir;
  std::string stop = std::string(dir) + "/stop";
  std::string app = WriteScript("idle.py",
                                "import os, time\n"
                                "while not os.path.exists('" +
                                    stop +
                                    "'):\n"
                                    "    time.sleep(0.02)\n");
  BackgroundProcess service({AnnexBinary(), "run", app}, "", {env});
  pid_t pid = WaitForAnnexPs(env, "idle.py", service);
  ASSERT_GT(pid, 0) << "the service never showed up in `annex ps`";
  const std::string p = std::to_string(pid);

  // The waits are installed only when the annex imports threading or
  // socket: until then it has imported none of them (importing them in
  // every annex cost 3.12 memory per interpreter, tests/monitor:cycles_test)
  // and only the C finder waits for them.
  const std::string fresh_code =
      "import sys\n"
      "print([m for m in ('threading', 'socket', 'select', 'queue') "
      "if m in sys.modules], type(sys.meta_path[0].find_spec).__name__)";
  Result fresh = RunProcess({AnnexBinary(), "exec", p, fresh_code}, "", {env});
  EXPECT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_EQ(fresh.out, "[] builtin_function_or_method\n");

  const std::vector<std::pair<std::string, std::string>> waits = {
      {"lock",
       "import threading\nl = threading.Lock()\nl.acquire()\n"
       "MARK\nl.acquire()\n"},
      {"queue", "import threading, queue\nq = queue.Queue()\nMARK\nq.get()\n"},
      {"event", "import threading\nMARK\nthreading.Event().wait()\n"},
      {"socket",
       "import socket\na, b = socket.socketpair()\nMARK\na.recv(1)\n"},
      {"accept",
       "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\n"
       "s.listen()\nMARK\ns.accept()\n"},
      {"select",
       "import select, os\nr, w = os.pipe()\nMARK\nselect.select([r], [], "
       "[])\n"},
      {"poll",
       "import select, os\nr, w = os.pipe()\np = select.poll()\n"
       "p.register(r, select.POLLIN)\nMARK\np.poll()\n"},
      {"selector",
       "import selectors, os\nr, w = os.pipe()\n"
       "s = selectors.DefaultSelector()\n"
       "s.register(r, selectors.EVENT_READ)\nMARK\ns.select()\n"},
      // Popen.wait() (what subprocess.run waits in). The child is made
      // before MARK and killed by the code's own cleanup, with its output
      // away from the service's: an interrupt that lands in Popen's
      // creation (run() writing MARK first could be killed there) would
      // leave a child holding the service's stdout open.
      {"subprocess",
       "import subprocess\np = subprocess.Popen(['sleep', '1000'], "
       "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nMARK\n"
       "try:\n    p.wait()\nfinally:\n    p.kill()\n    p.wait()\n"},
      {"tls_handshake",
       "import ssl, socket\na, b = socket.socketpair()\n"
       "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
       "ctx.check_hostname = False\nctx.verify_mode = ssl.CERT_NONE\n"
       "MARK\nctx.wrap_socket(a, server_hostname='peer')\n"},
  };
  for (const auto& [name, code_template] : waits) {
    SCOPED_TRACE(name);
    // Progress on stderr: a hang shows where it is in the test's log.
    std::fprintf(stderr, "case %s: start\n", name.c_str());
    const std::string waiting = std::string(dir) + "/waiting-" + name;
    std::string code = code_template;
    code.replace(code.find("MARK"), 4, "open('" + waiting + "', 'w').close()");
    BackgroundProcess client({AnnexBinary(), "exec", p, code}, "", {env});
    if (!WaitForFileOrExit(waiting, client)) {
      ADD_FAILURE() << "the client ended before its wait:\n"
                    << client.out() << client.err();
      continue;
    }
    std::fprintf(stderr, "case %s: waiting, killing the client\n",
                 name.c_str());
    client.Signal(SIGKILL);
    client.Join();
    Result next =
        RunProcess({AnnexBinary(), "exec", p, "print('free')"}, "", {env});
    EXPECT_EQ(next.exit_code, 0) << next.err;
    EXPECT_EQ(next.out, "free\n");
    std::fprintf(stderr, "case %s: next command answered\n", name.c_str());
  }

  // Installed, and the modules are otherwise the real ones.
  Result patched = RunProcess(
      {AnnexBinary(), "exec", p,
       "import threading, socket, _thread, sys\n"
       "print(threading.Lock.__name__, _thread.allocate_lock.__name__,\n"
       "      socket.socket.recv.__name__,\n"
       "      type(threading.RLock()).__name__,\n"
       "      threading.__spec__.loader is threading.__loader__,\n"
       "      type(socket.__loader__).__name__,\n"
       "      [f for f in sys.meta_path\n"
       "       if getattr(f, '__name__', '') == 'annex_waits'])"},
      "", {env});
  EXPECT_EQ(patched.exit_code, 0) << patched.err;
  EXPECT_EQ(patched.out, "lock lock recv _RLock True SourceFileLoader []\n");
  const std::string selects_code =
      "import select, selectors, os, ssl\n"
      "print(select.poll.__module__, select.epoll.__module__,\n"
      "      selectors.DefaultSelector._selector_cls.__module__,\n"
      "      os.waitpid.__module__, ssl.SSLSocket.recv.__module__)";
  Result selects =
      RunProcess({AnnexBinary(), "exec", p, selects_code}, "", {env});
  EXPECT_EQ(selects.exit_code, 0) << selects.err;
  EXPECT_EQ(selects.out,
            "annex._waits annex._waits annex._waits annex._waits "
            "annex._waits\n");

  std::ofstream(stop) << "stop";
  EXPECT_EQ(service.Join().exit_code, 0) << service.Join().err;
}

// While CPython finalizes the program (after the annex has stopped) the
// console still answers: every command is refused with a message that says
// why (exit status 4), `annex stacks` too (thread states are being freed:
// no GIL-free reads then), and the socket goes at the end of finalization.
TEST(AnnexHardeningTest, RefusesClearlyWhilePythonFinalizes) {
  char dir[] = "/tmp/annex-fin-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string env = std::string("XDG_RUNTIME_DIR=") + dir;
  const std::string finalizing = std::string(dir) + "/finalizing";
  const std::string go = std::string(dir) + "/go";
  // A module global whose __del__ runs when finalization clears __main__
  // (builtins are gone by then: what it needs is bound as defaults).
  std::string app =
      WriteScript("finalizing.py",
                  "import os, time\n"
                  "class Slow:\n"
                  "    def __del__(self, open=open, exists=os.path.exists,\n"
                  "                sleep=time.sleep):\n"
                  "        open('" +
                      finalizing +
                      "', 'w').close()\n"
                      "        while not exists('" +
                      go +
                      "'):\n"
                      "            sleep(0.01)\n"
                      "slow = Slow()\n");
  BackgroundProcess service({AnnexBinary(), "run", app}, "", {env});
  WaitForFile(finalizing);
  pid_t pid = WaitForAnnexPs(env, "finalizing.py", service);
  ASSERT_GT(pid, 0);
  const std::string refusal =
      "annex: the program is exiting (Python is finalizing): the annex runs "
      "no more commands\n";
  Result exec = RunProcess(
      {AnnexBinary(), "exec", std::to_string(pid), "print('hi')"}, "", {env});
  EXPECT_EQ(exec.exit_code, 4) << exec.err;
  EXPECT_EQ(exec.out, "");
  EXPECT_EQ(exec.err, refusal);
  Result stacks =
      RunProcess({AnnexBinary(), "stacks", std::to_string(pid)}, "", {env});
  EXPECT_EQ(stacks.exit_code, 4) << stacks.err;
  EXPECT_EQ(stacks.err, refusal);
  const std::string socket =
      std::string(dir) + "/annex/" + std::to_string(pid) + ".sock";
  EXPECT_TRUE(::annex::testing::FileExists(socket));
  std::ofstream(go) << "go";
  const Result& result = service.Join();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_FALSE(::annex::testing::FileExists(socket));
}

// At exit the console stays up until the program's own Python is done:
// its atexit callbacks (registered after the monitor started, so run before
// the monitor's) still find the process attachable, and the console closes
// only after the watchdog's heap walks and the recorder have stopped (a walk
// in flight used to run with the socket already gone). Then it refuses
// commands while CPython finalizes (above) and the socket goes at the end of
// finalization; what remains between its removal and the process's end is
// measured and printed, not asserted.
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
  Result at_exit = RunProcess(
      {AnnexBinary(), "exec", std::to_string(pid), "print('still here')"}, "",
      {env});
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
