// The smallest C++ host of Annex: it embeds CPython (the target), starts an
// annex::Monitor beside it, runs the host's Python, asks the annex
// interpreter a few questions through Monitor::ExecInAnnex, and shuts down
// in the order docs/design.md rule 7 asks for: Stop() before Py_FinalizeEx().
//
//   embed_minimal              runs the embedded script below
//   embed_minimal app.py       runs app.py instead (as __main__)
//
// The point it makes: the annex is a second interpreter in the same process.
// It runs the same CPython build, but it has its own sys.modules, its own
// __main__ and its own builtins, so what the host's script imports or
// defines is not visible there (and the annex's own imports do not land in
// the host's sys.modules).
#include <Python.h>

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "annex_python_build.h"  // from //third_party/python
#include "monitor/monitor.h"

namespace {

// The host's own Python: imports a module nobody else does (colorsys) and
// registers a module of its own, so the two interpreters can be compared.
constexpr char kHostScript[] = R"PY(
import colorsys, sys, types
sys.modules["host_app"] = types.ModuleType("host_app")
orders = [("tea", 3), ("cake", 1)]
print("target: Python", sys.version.split()[0])
print("target: 'colorsys' in sys.modules:", "colorsys" in sys.modules)
print("target: 'host_app' in sys.modules:", "host_app" in sys.modules)
print("target: __main__ has 'orders':", hasattr(sys.modules["__main__"], "orders"))
)PY";

// Asked of the annex after the host's script ran. Each runs in a fresh
// namespace in the annex interpreter; ExecInAnnex returns what it printed.
constexpr const char* kAnnexQuestions[] = {
    "import sys\n"
    "print('Python', sys.version.split()[0])",
    "import sys\n"
    "print(\"'colorsys' in sys.modules:\", 'colorsys' in sys.modules)\n"
    "print(\"'host_app' in sys.modules:\", 'host_app' in sys.modules)",
    "import __main__\n"
    "print(\"__main__ has 'orders':\", hasattr(__main__, 'orders'))",
    "import sys, wave\n"
    "print(\"imported wave; 'wave' in sys.modules:\", 'wave' in sys.modules)",
};

// And the other way round: what the annex imported is not in the host's
// sys.modules.
constexpr char kHostAfterAnnex[] =
    "import sys\n"
    "print(\"target: 'wave' in sys.modules:\", 'wave' in sys.modules)\n";

// Initializes the target with the build's interpreter as program name, so
// the standard library of the Python that Annex was built for is found (not
// whatever `python3` is first on PATH). Where: main thread, before any
// other Python call.
PyStatus InitializePython() {
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  PyStatus status = PyConfig_SetBytesString(&config, &config.program_name,
                                            ANNEX_PYTHON_EXECUTABLE);
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  return status;
}

// Runs the host's script: the file `path`, or kHostScript when empty.
// Returns false if it raised (the traceback is printed). Where: main
// thread, GIL held.
bool RunHostScript(const char* path) {
  if (path == nullptr) return PyRun_SimpleString(kHostScript) == 0;
  FILE* file = std::fopen(path, "r");
  if (file == nullptr) {
    std::perror(path);
    return false;
  }
  // Closes the file.
  return PyRun_SimpleFileExFlags(file, path, /*closeit=*/1, nullptr) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  PyStatus status = InitializePython();
  if (PyStatus_Exception(status)) Py_ExitStatusException(status);

  annex::Monitor monitor;
  if (absl::Status s = monitor.Start(); !s.ok()) {
    std::fprintf(stderr, "host: monitor not started: %s\n",
                 std::string{s.message()}.c_str());
    Py_FinalizeEx();
    return 1;
  }

  bool script_ok = RunHostScript(argc > 1 ? argv[1] : nullptr);
  // Python's sys.stdout and C's stdout buffer separately: flush Python's
  // before printing from C so the lines come out in order.
  PyRun_SimpleString("import sys; sys.stdout.flush()");

  bool annex_ok = true;
  for (const char* question : kAnnexQuestions) {
    absl::StatusOr<std::string> answer = monitor.ExecInAnnex(question);
    if (!answer.ok()) {
      std::fprintf(stderr, "host: annex failed: %s\n",
                   std::string{answer.status().message()}.c_str());
      annex_ok = false;
      continue;
    }
    // Prefix every line the annex printed.
    size_t start = 0;
    while (start < answer->size()) {
      size_t end = answer->find('\n', start);
      if (end == std::string::npos) end = answer->size();
      std::printf("annex:  %.*s\n", static_cast<int>(end - start),
                  answer->data() + start);
      start = end + 1;
    }
  }

  std::fflush(stdout);
  if (PyRun_SimpleString(kHostAfterAnnex) != 0) script_ok = false;
  PyRun_SimpleString("import sys; sys.stdout.flush()");

  // Stop the annex while the target is still alive, then finalize.
  if (absl::Status s = monitor.Stop(); !s.ok()) {
    std::fprintf(stderr, "host: monitor stop: %s\n",
                 std::string{s.message()}.c_str());
    annex_ok = false;
  }
  std::printf("host: monitor stopped, finalizing\n");
  std::fflush(stdout);
  if (Py_FinalizeEx() < 0) return 120;
  return script_ok && annex_ok ? 0 : 1;
}
