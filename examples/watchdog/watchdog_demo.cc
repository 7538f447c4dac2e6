// A C++ host with Annex's in-process watchdog (docs/watchdog.md). Its
// Python hangs on purpose, in one of two ways, and the watchdog detects the
// stall from its own thread (without the GIL), prints the event and the
// stack dump of the target's threads, and ends the hang:
//
//   watchdog_demo python-loop   crunch_forever() loops in Python; the
//                               watchdog's exception action raises
//                               TimeoutError in the main thread.
//   watchdog_demo c-spin        checksum_in_c() calls _spin.spin(), C code
//                               that keeps the GIL and never reaches a
//                               bytecode boundary, so no exception can reach
//                               it; instead it polls a flag that the
//                               watchdog's on_event callback sets, and
//                               raises TimeoutError itself.
//
// Either way the script catches the TimeoutError, carries on, and the host
// exits 0.
#include <Python.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "annex_python_build.h"  // ANNEX_PYTHON_EXECUTABLE
#include "monitor/watchdog/watchdog.h"

namespace {

constexpr char kUsage[] = "usage: watchdog_demo (python-loop | c-spin)\n";

// How long the target may keep the GIL without progress before the
// watchdog reports it. Short, so the demo is quick; not shorter, because a
// process descheduled for a whole timeout (a heavily loaded machine) can be
// misreported as stuck in C (see README.md, "Known issue").
constexpr absl::Duration kStallTimeout = absl::Seconds(1);

// The C spin gives up on its own after this, so a watchdog that failed to
// report cannot hang the demo (or its test) for good.
constexpr std::chrono::seconds kSpinSafetyLimit(10);

constexpr char kPythonLoopScript[] = R"PY(
def crunch_forever():
    total = 0
    while True:
        total += 1

print("script: calling crunch_forever()")
try:
    crunch_forever()
except TimeoutError:
    print("script: crunch_forever() ended by the watchdog's TimeoutError")
print("script: carrying on")
)PY";

constexpr char kCSpinScript[] = R"PY(
import _spin

def checksum_in_c():
    return _spin.spin()

print("script: calling checksum_in_c()")
try:
    checksum_in_c()
except TimeoutError as e:
    print(f"script: checksum_in_c() ended: {e}")
print("script: carrying on")
)PY";

// ---- _spin: a builtin module of this host ---------------------------------

// Set by the watchdog's on_event (watchdog thread), read by the spinning C
// code (main thread, GIL held). Atomic: the two never share a lock.
std::atomic<bool> g_release_spin{false};

// _spin.spin(): stands for C code that holds the GIL for too long (a
// computation, a blocking call made without Py_BEGIN_ALLOW_THREADS). It
// polls g_release_spin, the cooperative way out, and raises TimeoutError
// when the watchdog set it. Where: GIL held, target current.
PyObject* Spin(PyObject*, PyObject*) {
  auto deadline = std::chrono::steady_clock::now() + kSpinSafetyLimit;
  volatile uint64_t checksum = 0;
  while (!g_release_spin.load(std::memory_order_acquire)) {
    for (int i = 0; i < 100000; ++i) checksum = checksum * 31 + i;
    if (std::chrono::steady_clock::now() > deadline) {
      PyErr_SetString(PyExc_RuntimeError,
                      "_spin.spin: the watchdog did not release it in time");
      return nullptr;
    }
  }
  g_release_spin.store(false, std::memory_order_relaxed);
  PyErr_SetString(PyExc_TimeoutError,
                  "_spin.spin() stopped: the watchdog reported a stall");
  return nullptr;
}

PyMethodDef kSpinMethods[] = {
    {"spin", Spin, METH_NOARGS,
     "Spin in C holding the GIL until the watchdog says stop."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kSpinModule = {
    PyModuleDef_HEAD_INIT, "_spin", "C code that hogs the GIL.", -1,
    kSpinMethods,
};

PyObject* InitSpinModule() { return PyModule_Create(&kSpinModule); }

// ---- the host ---------------------------------------------------------------

// Prints an event as it is reported. Where: the watchdog thread, without
// the GIL: no Python calls, only C stdio (flushed, so it interleaves in
// order with the script's unbuffered output).
void PrintEvent(const annex::watchdog::Event& event) {
  std::printf(
      "watchdog: %s event, kind %s, %s thread (native %lu), "
      "after %lld ms\n",
      annex::watchdog::EventTypeName(event.type),
      annex::watchdog::StallKindName(event.stall_kind),
      event.thread.is_main ? "main" : "worker", event.thread.native_id,
      static_cast<long long>(absl::ToInt64Milliseconds(event.duration)));
  std::printf("watchdog: summary: %s\n", event.summary.c_str());
  std::printf("watchdog: stack dump:\n%s", event.stack_dump.c_str());
  std::fflush(stdout);
}

// Initializes the target: the build's interpreter as program name (so the
// matching standard library is found), unbuffered stdio (so the script's
// lines and the watchdog's interleave in order), and _spin as a builtin
// module, which must be registered before initialization.
PyStatus InitializePython() {
  if (PyImport_AppendInittab("_spin", &InitSpinModule) != 0) {
    return PyStatus_Error("cannot register _spin");
  }
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.buffered_stdio = 0;
  PyStatus status = PyConfig_SetBytesString(&config, &config.program_name,
                                            ANNEX_PYTHON_EXECUTABLE);
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  return status;
}

// Runs `source` in __main__ under `filename`. False if it raised (the
// traceback is printed). Where: main thread, GIL held.
bool RunScript(const char* source, const char* filename) {
  PyObject* code = Py_CompileString(source, filename, Py_file_input);
  if (code == nullptr) {
    PyErr_Print();
    return false;
  }
  PyObject* globals = PyModule_GetDict(PyImport_AddModule("__main__"));
  PyObject* result = PyEval_EvalCode(code, globals, globals);
  Py_DECREF(code);
  if (result == nullptr) {
    PyErr_Print();
    return false;
  }
  Py_DECREF(result);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || (std::strcmp(argv[1], "python-loop") != 0 &&
                    std::strcmp(argv[1], "c-spin") != 0)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const bool c_spin = std::strcmp(argv[1], "c-spin") == 0;

  PyStatus status = InitializePython();
  if (PyStatus_Exception(status)) Py_ExitStatusException(status);

  annex::watchdog::Options options;
  options.stall_timeout = kStallTimeout;
  if (c_spin) {
    // An exception would only be seen after the C call returns: let the C
    // code know instead.
    options.on_event = [](const annex::watchdog::Event& event) {
      PrintEvent(event);
      g_release_spin.store(true, std::memory_order_release);
    };
  } else {
    // TimeoutError in the stalled thread (here: main), delivered by a
    // pending call at its next bytecode boundary.
    options.raise_exception = true;
    options.on_event = PrintEvent;
  }
  annex::watchdog::Watchdog watchdog;
  if (absl::Status s = watchdog.Start(options); !s.ok()) {
    std::fprintf(stderr, "host: watchdog not started: %s\n",
                 std::string{s.message()}.c_str());
    Py_FinalizeEx();
    return 1;
  }

  bool script_ok = c_spin ? RunScript(kCSpinScript, "<c-spin>")
                          : RunScript(kPythonLoopScript, "<python-loop>");

  annex::watchdog::Metrics metrics = watchdog.Metrics();
  // Before Py_FinalizeEx(): a heartbeat still queued then finds it gone.
  watchdog.Stop().IgnoreError();
  std::printf(
      "host: watchdog stopped: %lld stall(s), %lld exception(s) "
      "raised, heartbeat latency max %lld ms\n",
      static_cast<long long>(metrics.stalls),
      static_cast<long long>(metrics.exceptions_raised),
      static_cast<long long>(
          absl::ToInt64Milliseconds(metrics.heartbeat_latency_max)));
  std::fflush(stdout);
  if (Py_FinalizeEx() < 0) return 120;
  return script_ok && metrics.stalls >= 1 ? 0 : 1;
}
