// Test support for the watchdog tests: see test_support.h.
#include "tests/watchdog/test_support.h"

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/still_waiting.h"

namespace annex::watchdog::testing {
namespace {

std::atomic<bool> g_released{false};
std::atomic<bool> g_gate{false};

// Where: target thread, GIL held.
PyObject* Released(PyObject*, PyObject*) {
  return PyBool_FromLong(g_released.load());
}

// Spins in C with the GIL held (no bytecode boundary) until released.
// Where: target thread, GIL held (and kept).
PyObject* SpinInC(PyObject*, PyObject*) {
  while (!g_released.load()) {
  }
  Py_RETURN_NONE;
}

// Blocks with the GIL released (as time.sleep does) until released.
// Where: target thread, GIL held (released while it waits).
PyObject* WaitReleased(PyObject*, PyObject*) {
  Py_BEGIN_ALLOW_THREADS;
  while (!g_released.load()) absl::SleepFor(absl::Milliseconds(1));
  Py_END_ALLOW_THREADS;
  Py_RETURN_NONE;
}

// Where: target thread, GIL held.
PyObject* Gate(PyObject*, PyObject*) { return PyBool_FromLong(g_gate.load()); }

PyMethodDef kMethods[] = {
    {"gate", Gate, METH_NOARGS, "True once the test opened the gate."},
    {"released", Released, METH_NOARGS, "True once the test released loops."},
    {"spin_in_c", SpinInC, METH_NOARGS, "Spin in C holding the GIL."},
    {"wait_released", WaitReleased, METH_NOARGS,
     "Block without the GIL until released."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_wdtest", nullptr, -1, kMethods};

// Releases the GIL for the scope if the calling thread holds it. Where: as
// WaitUntil.
class WithoutGil {
 public:
  WithoutGil() : saved_(PyGILState_Check() ? PyEval_SaveThread() : nullptr) {}
  ~WithoutGil() {
    if (saved_ != nullptr) PyEval_RestoreThread(saved_);
  }
  WithoutGil(const WithoutGil&) = delete;
  WithoutGil& operator=(const WithoutGil&) = delete;

 private:
  PyThreadState* saved_;
};

}  // namespace

void InstallTestModule() {
  g_released.store(false);
  g_gate.store(false);
  PyObject* modules = PyImport_GetModuleDict();  // borrowed
  if (PyDict_GetItemString(modules, "_wdtest") != nullptr) return;
  PyObject* module = PyModule_Create(&kModule);
  if (module == nullptr ||
      PyDict_SetItemString(modules, "_wdtest", module) != 0) {
    PyErr_Print();
  }
  Py_XDECREF(module);
}

void Release() { g_released.store(true); }

void OpenGate() { g_gate.store(true); }

std::function<void(const Event&)> EventRecorder::Callback(bool release) {
  return [this, release](const Event& e) {
    {
      absl::MutexLock lock(&mu_);
      events_.push_back(e);
    }
    if (release) Release();
  };
}

std::vector<Event> EventRecorder::WaitFor(size_t count) {
  WithoutGil without_gil;
  absl::MutexLock lock(&mu_);
  auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return events_.size() >= count;
  };
  annex::testing::AwaitSaying(
      mu_, absl::Condition(&arrived), [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return absl::StrCat(count, " watchdog event(s) (", events_.size(),
                            " so far)");
      });
  return events_;
}

std::vector<Event> EventRecorder::events() {
  absl::MutexLock lock(&mu_);
  return events_;
}

void WaitUntil(const std::function<bool()>& done, const char* what) {
  WithoutGil without_gil;
  annex::testing::StillWaiting still;
  while (!done()) {
    still.Check([what] { return std::string(what); });
    absl::SleepFor(absl::Milliseconds(10));
  }
}

void SleepWithoutGil(absl::Duration window, const std::function<void()>& then) {
  WithoutGil without_gil;
  absl::SleepFor(window);
  if (then) then();
}

bool RunUntilGateOpens(const std::function<bool()>& ready,
                       const std::function<bool()>& run) {
  std::atomic<bool> finished{false};
  std::thread opener([&ready, &finished] {
    while (!finished.load() && !ready()) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    OpenGate();
  });
  const bool ran = run();
  finished.store(true);
  opener.join();
  return ran;
}

}  // namespace annex::watchdog::testing
