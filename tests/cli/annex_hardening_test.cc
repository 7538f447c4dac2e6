// Issue 16, the console keeps working when the target does not: a client
// killed during a blocking lock wait or socket read in the annex leaves the
// annex free for the next client.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

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

// Runs `annex exec PID code` in a child with `env`, output to /dev/null.
pid_t StartClient(const std::string& env, const std::string& pid,
                  const std::string& code) {
  pid_t client = fork();
  if (client == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    putenv(const_cast<char*>(env.c_str()));
    std::string bin = AnnexBinary();
    execl(bin.c_str(), bin.c_str(), "exec", pid.c_str(), code.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  return client;
}

// Each blocking call never returns by itself; the client is killed once the
// code has reached it (it writes `waiting` just before), and the next client
// must be served. Before the fix only time.sleep ended: the next `exec`
// found the annex busy and gave up after its --timeout (exit 124).
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

  const std::vector<std::pair<std::string, std::string>> waits = {
      {"lock", "import threading\nl = threading.Lock()\nl.acquire()\n"
               "MARK\nl.acquire()\n"},
      {"queue", "import threading, queue\nq = queue.Queue()\nMARK\nq.get()\n"},
      {"event", "import threading\nMARK\nthreading.Event().wait()\n"},
      {"socket", "import socket\na, b = socket.socketpair()\nMARK\na.recv(1)\n"},
      {"accept",
       "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\n"
       "s.listen()\nMARK\ns.accept()\n"},
  };
  for (const auto& [name, code_template] : waits) {
    SCOPED_TRACE(name);
    const std::string waiting = std::string(dir) + "/waiting-" + name;
    std::string code = code_template;
    code.replace(code.find("MARK"), 4, "open('" + waiting + "', 'w').close()");
    pid_t client = StartClient(env, p, code);
    WaitForFile(waiting);
    kill(client, SIGKILL);
    int status = 0;
    waitpid(client, &status, 0);
    Result next = RunProcess(
        {AnnexBinary(), "exec", "--timeout", "20", p, "print('free')"}, "",
        {env});
    EXPECT_EQ(next.exit_code, 0) << next.err;
    EXPECT_EQ(next.out, "free\n");
  }

  std::ofstream(stop) << "stop";
  EXPECT_EQ(service.Join().exit_code, 0) << service.Join().err;
}

}  // namespace
