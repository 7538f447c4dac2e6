// Manual end-to-end tool for the console until monitor/cli wires the real
// `annex` command: `console_demo serve [--allow-exec-target] [--tcp]` runs a
// server backed by the FakeExecutor until stdin closes (and prints "sleep
// started" each time a "sleep" command starts); `console_demo ps`,
// `console_demo attach PID`, `console_demo exec PID CODE|-` call the same
// entry points `annex` will. `--dir=DIR` (anywhere) picks the socket
// directory instead of the per-user default.
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "monitor/console/cli.h"
#include "monitor/console/server.h"
#include "tests/console/fake_executor.h"

using ::annex::console::ClientOptions;
using ::annex::console::kExitUsage;
using ::annex::console::ParsePidArg;
using ::annex::console::RunAttach;
using ::annex::console::RunExec;
using ::annex::console::RunPs;
using ::annex::console::Server;
using ::annex::console::ServerOptions;
using ::annex::console::testing::FakeExecutor;

int main(int argc, char** argv) {
  std::string dir;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--dir=", 6) == 0) {
      dir = argv[i] + 6;
    } else {
      args.push_back(argv[i]);
    }
  }
  argc = static_cast<int>(args.size());
  argv = args.data();
  std::string verb = argc > 1 ? argv[1] : "";
  ClientOptions options;
  options.socket_dir = dir;
  if (verb == "serve") {
    FakeExecutor executor;
    // Where: the client's worker thread (tests wait for this line).
    executor.OnSleep([] { std::cout << "sleep started" << std::endl; });
    ServerOptions so;
    so.python_version = "fake";
    so.socket_dir = dir;
    for (int i = 2; i < argc; ++i) {
      if (std::strcmp(argv[i], "--allow-exec-target") == 0) {
        so.allow_exec_target = true;
      } else if (std::strcmp(argv[i], "--tcp") == 0) {
        so.enable_tcp = true;
      }
    }
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start(so, &executor);
    if (!server.ok()) {
      std::cerr << server.status() << "\n";
      return 1;
    }
    std::cout << "serving on " << (*server)->socket_path() << std::endl;
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    return 0;
  }
  if (verb == "ps") return RunPs(std::cout, options);
  if ((verb == "attach" && argc == 3) || (verb == "exec" && argc == 4)) {
    absl::StatusOr<pid_t> pid = ParsePidArg(argv[2]);
    if (!pid.ok()) {
      std::cerr << pid.status() << "\n";
      return kExitUsage;
    }
    if (verb == "attach") return RunAttach(*pid, options);
    return RunExec(*pid, argv[3], options);
  }
  std::cerr << "usage: console_demo serve [--allow-exec-target] [--tcp] | ps"
               " | attach PID | exec PID CODE|-\n";
  return kExitUsage;
}
