// Test support for the watchdog tests: see test_support.h.
#include "tests/watchdog/test_support.h"

#include <atomic>
#include <chrono>
#include <string>

namespace annex::watchdog::testing {
namespace {

std::atomic<bool> g_released{false};
std::atomic<bool> g_gate{false};
std::atomic<int64_t> g_deadline_ns{0};

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

bool IsReleased() {
  return g_released.load() || NowNs() > g_deadline_ns.load();
}

// Where: target thread, GIL held.
PyObject* Released(PyObject*, PyObject*) {
  return PyBool_FromLong(IsReleased());
}

// Spins in C with the GIL held (no bytecode boundary) until released.
// Where: target thread, GIL held (and kept).
PyObject* SpinInC(PyObject*, PyObject*) {
  while (!IsReleased()) {
  }
  Py_RETURN_NONE;
}

// Where: target thread, GIL held.
PyObject* Gate(PyObject*, PyObject*) {
  return PyBool_FromLong(g_gate.load() || NowNs() > g_deadline_ns.load());
}

PyMethodDef kMethods[] = {
    {"gate", Gate, METH_NOARGS, "True once the test opened the gate."},
    {"released", Released, METH_NOARGS, "True once the test released loops."},
    {"spin_in_c", SpinInC, METH_NOARGS, "Spin in C holding the GIL."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_wdtest", nullptr, -1, kMethods};

}  // namespace

void InstallTestModule(absl::Duration safety) {
  g_released.store(false);
  g_gate.store(false);
  g_deadline_ns.store(NowNs() + absl::ToInt64Nanoseconds(safety));
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

std::vector<Event> EventRecorder::WaitFor(size_t count,
                                          absl::Duration timeout) {
  PyThreadState* saved = nullptr;
  if (PyGILState_Check()) saved = PyEval_SaveThread();  // test main thread only
  {
    absl::MutexLock lock(&mu_);
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return events_.size() >= count;
    };
    mu_.AwaitWithTimeout(absl::Condition(&arrived), timeout);
  }
  if (saved != nullptr) PyEval_RestoreThread(saved);
  return events();
}

std::vector<Event> EventRecorder::events() {
  absl::MutexLock lock(&mu_);
  return events_;
}

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  PyThreadState* saved = PyGILState_Check() ? PyEval_SaveThread() : nullptr;
  const absl::Time deadline = absl::Now() + timeout;
  bool ok = done();
  while (!ok && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
    ok = done();
  }
  if (saved != nullptr) PyEval_RestoreThread(saved);
  return ok;
}

}  // namespace annex::watchdog::testing
