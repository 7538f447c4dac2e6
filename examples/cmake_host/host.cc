// A C++ host that embeds CPython and starts Annex, built with CMake against
// the installed package (find_package(Annex), Annex::annex). It keeps 3000
// Widget objects alive and waits, with the console open, until the file
// named by its first argument exists; `annex exec <pid> 'hp.heap()'` answers
// meanwhile.
//
//   cmake_host STOPFILE
#include <Python.h>

#include <cstdio>
#include <string>

#include "monitor/monitor.h"  // installed under include/annex

namespace {

constexpr char kProgram[] = R"PY(
import os, sys, time
class CMakeHostWidget:
    def __init__(self, n):
        self.n = n
widgets = [CMakeHostWidget(i) for i in range(3000)]
print("ready", os.getpid(), flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
print("stopping", flush=True)
)PY";

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s STOPFILE\n", argv[0]);
    return 2;
  }
  // Initialize the Python Annex was built for (its standard library is
  // found from its executable's path).
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.parse_argv = 0;  // sys.argv is argv as given, not python3's options
  PyStatus status = PyConfig_SetBytesString(&config, &config.program_name,
                                            HOST_PYTHON_EXECUTABLE);
  char* py_argv[] = {argv[0], argv[1]};
  if (!PyStatus_Exception(status)) {
    status = PyConfig_SetBytesArgv(&config, 2, py_argv);
  }
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) Py_ExitStatusException(status);

  annex::Monitor monitor;
  annex::Options options;
  options.console = true;
  if (absl::Status s = monitor.Start(options); !s.ok()) {
    std::fprintf(stderr, "cmake_host: Annex did not start: %s\n",
                 std::string(s.message()).c_str());
    Py_FinalizeEx();
    return 1;
  }
  // The C++ API answers too: the heap by kind, without Python on our side.
  absl::StatusOr<annex::glue::Stat> stat = monitor.HeapSummary("Clodo", 3);
  if (!stat.ok()) {
    std::fprintf(stderr, "cmake_host: HeapSummary: %s\n",
                 std::string(stat.status().message()).c_str());
  } else {
    std::printf("heap summary rows: %zu\n", stat->numrows());
  }
  int rc = PyRun_SimpleString(kProgram);
  if (absl::Status s = monitor.Stop(); !s.ok()) rc = 1;
  if (Py_FinalizeEx() < 0) rc = 1;
  return rc == 0 ? 0 : 1;
}
