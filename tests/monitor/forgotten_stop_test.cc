// A host that finalizes Python without calling Monitor::Stop(): the
// monitor's atexit callback in the target stops the annex (and the console)
// first; no hang, no crash (docs/design.md rule 7). Each case needs a whole
// interpreter lifetime of its own, so it runs in a forked child (gtest's
// death-test machinery) whose exit status carries the verdict.
#include <Python.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "annex_python_build.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "monitor/python/embed.h"

namespace annex {
namespace {

bool InitPython() { return python::InitializeEmbedded().ok(); }

// Ends the child: 0 when `error` is empty, else prints it and exits 1.
[[noreturn]] void Verdict(const std::string& error) {
  if (!error.empty()) std::fprintf(stderr, "FAILED: %s\n", error.c_str());
  std::fflush(nullptr);
  _exit(error.empty() ? 0 : 1);
}

std::string FinalizeWithConsole() {
  if (!InitPython()) return "Py_Initialize failed";
  char dir[] = "/tmp/annex-fs-XXXXXX";  // short: socket paths are limited
  if (mkdtemp(dir) == nullptr) return "mkdtemp failed";
  Monitor monitor;
  Options options;
  options.console = true;
  options.console_socket_dir = dir;
  absl::Status started = monitor.Start(options);
  if (!started.ok()) return started.ToString();
  std::string socket = monitor.console_socket_path();
  struct stat st;
  if (stat(socket.c_str(), &st) != 0) return "no socket at " + socket;
  if (PyRun_SimpleString("import threading\nx = [1] * 1000\n") != 0) {
    return "target code failed";
  }
  if (Py_FinalizeEx() != 0) return "Py_FinalizeEx failed";
  if (monitor.running()) return "annex still running after finalization";
  if (stat(socket.c_str(), &st) == 0) return "socket left behind";
  if (!monitor.Stop().ok()) return "late Stop() failed";
  rmdir(dir);
  return "";
}

std::string FinalizeWhileTracing() {
  // tracemalloc is process-global; ending a sub-interpreter while it traces
  // has crashed CPython (gh-134604).
  if (!InitPython()) return "Py_Initialize failed";
  Monitor monitor;
  if (!monitor.Start().ok()) return "Start failed";
  if (PyRun_SimpleString("import tracemalloc\ntracemalloc.start(5)\n"
                         "junk = [str(i) for i in range(10000)]\n") != 0) {
    return "target code failed";
  }
  if (!monitor.ExecInAnnex("x = [i for i in range(1000)]").ok()) {
    return "annex code failed";
  }
  if (Py_FinalizeEx() != 0) return "Py_FinalizeEx failed";
  if (monitor.running()) return "annex still running";
  return "";
}

std::string StopWhileTracing() {
  if (!InitPython()) return "Py_Initialize failed";
  Monitor monitor;
  if (!monitor.Start().ok()) return "Start failed";
  if (PyRun_SimpleString("import tracemalloc\ntracemalloc.start()\n") != 0) {
    return "target code failed";
  }
  if (!monitor.ExecInAnnex("y = {i: str(i) for i in range(1000)}").ok()) {
    return "annex code failed";
  }
  if (!monitor.Stop().ok()) return "Stop failed";
  if (PyRun_SimpleString("tracemalloc.stop()\n") != 0) return "stop failed";
  if (Py_FinalizeEx() != 0) return "Py_FinalizeEx failed";
  return "";
}

std::string StartWhileTracing() {
  if (!InitPython()) return "Py_Initialize failed";
  if (PyRun_SimpleString("import tracemalloc\ntracemalloc.start()\n") != 0) {
    return "target code failed";
  }
  Monitor monitor;
  absl::Status started = monitor.Start();
#if PY_VERSION_HEX < 0x030C0000
  // 3.11: refused with a clear error instead of deadlocking in CPython.
  if (started.code() != absl::StatusCode::kFailedPrecondition ||
      started.message().find("tracemalloc") == absl::string_view::npos) {
    return "expected a tracemalloc refusal, got " + started.ToString();
  }
  if (PyRun_SimpleString("tracemalloc.stop()\n") != 0) return "stop failed";
  started = monitor.Start();
  if (!started.ok()) return started.ToString();
  if (PyRun_SimpleString("tracemalloc.start()\n") != 0) return "restart failed";
#endif
  if (!started.ok()) return started.ToString();
  auto out = monitor.ExecInAnnex("import json; print(json.dumps([1]))");
  if (!out.ok() || *out != "[1]\n") return "annex code failed";
  if (!monitor.Stop().ok()) return "Stop failed";
  if (Py_FinalizeEx() != 0) return "Py_FinalizeEx failed";
  return "";
}

TEST(ForgottenStopTest, StartAndStopWhileTargetTracesMemory) {
  EXPECT_EXIT(Verdict(StartWhileTracing()), ::testing::ExitedWithCode(0), "");
}

TEST(ForgottenStopTest, FinalizeStopsTheAnnexAndConsoleFirst) {
  EXPECT_EXIT(Verdict(FinalizeWithConsole()), ::testing::ExitedWithCode(0), "");
}

TEST(ForgottenStopTest, FinalizeWhileTargetTracesMemory) {
  EXPECT_EXIT(Verdict(FinalizeWhileTracing()), ::testing::ExitedWithCode(0),
              "");
}

TEST(ForgottenStopTest, ExplicitStopWhileTargetTracesMemory) {
  EXPECT_EXIT(Verdict(StopWhileTracing()), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace annex
