// The annex's own builtins that Interrupt() and Stop() can end: time.sleep,
// the blocking waits of threading, socket, select, subprocess and ssl (an
// import hook over py/annex_waits.py), and an input() that refuses.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "monitor/python/annex_runtime.h"
#include "monitor/python/annex_waits_py.h"
#include "monitor/python/annex_waits_watch_py.h"

namespace annex::python {
namespace {

// Longest single wait of the annex's lock and socket waits, i.e. how late
// an Interrupt() ends them (InstallInterruptibleWaits).
constexpr auto kInterruptSlice = std::chrono::milliseconds(50);

// The annex's interruptible waits are Python: monitor/python/py/
// annex_waits.py (the patches) and annex_waits_watch.py (the import watch
// that applies them), compiled into the binary (//tools:embed_file.bzl).
// The modules whose first import runs the watch (its WATCHED).
constexpr const char* kWaitsWatched[] = {"threading", "socket", "select",
                                         "subprocess", "ssl"};

// find_spec(name, path=None, target=None) of the finder module that
// InstallInterruptibleWaits puts on the annex's sys.meta_path. Where: a
// thread of the annex interpreter, GIL held, inside an import.
PyObject* WaitsFindSpec(PyObject* holder, PyObject* args) {
  PyObject* name = nullptr;
  PyObject* path = Py_None;
  PyObject* target = Py_None;
  if (!PyArg_ParseTuple(args, "U|OO:find_spec", &name, &path, &target)) {
    return nullptr;
  }
  bool watched = false;
  for (const char* m : kWaitsWatched) {
    watched |= PyUnicode_CompareWithASCIIString(name, m) == 0;
  }
  if (!watched) Py_RETURN_NONE;
  // First of the two: compile the watcher, make its find_spec the
  // finder's own, and let it answer.
  PyObject* globals = PyDict_New();
  PyObject* result = nullptr;
  if (globals != nullptr && PyDict_SetItemString(globals, "__builtins__",
                                                 PyEval_GetBuiltins()) == 0) {
    PyObject* code =
        Py_CompileString(embedded::kAnnexWaitsWatchPy,
                         embedded::kAnnexWaitsWatchPyPath, Py_file_input);
    if (code != nullptr) result = PyEval_EvalCode(code, globals, globals);
    Py_XDECREF(code);
  }
  PyObject* watch = result != nullptr ? PyDict_GetItemString(globals, "_watch")
                                      : nullptr;  // borrowed
  PyObject* find_spec = nullptr;
  if (watch != nullptr) {
    const double slice = std::chrono::duration<double>(kInterruptSlice).count();
    find_spec =
        PyObject_CallFunction(watch, "dssO", slice, embedded::kAnnexWaitsPy,
                              embedded::kAnnexWaitsPyPath, holder);
  }
  Py_XDECREF(result);
  Py_XDECREF(globals);
  if (find_spec == nullptr ||
      PyObject_SetAttrString(holder, "find_spec", find_spec) < 0) {
    // Only the interruptibility is lost; the import goes on without us.
    Py_XDECREF(find_spec);
    PyErr_Clear();
    Py_RETURN_NONE;
  }
  PyObject* spec =
      PyObject_CallFunctionObjArgs(find_spec, name, path, target, nullptr);
  Py_DECREF(find_spec);
  return spec;
}

}  // namespace

void AnnexRuntime::InstallInterruptibleWaits() {
  // Where: annex thread, GIL held, annex current. At start only a module
  // with one C function goes on sys.meta_path: nothing is compiled and no
  // class is made until the annex imports threading or socket (3.12 keeps
  // memory of what every annex imports: tests/monitor:cycles_test). A
  // failure leaves the plain waits: only their interruptibility is lost.
  static PyMethodDef find_spec_def = {
      "find_spec", reinterpret_cast<PyCFunction>(&WaitsFindSpec), METH_VARARGS,
      "Annex: makes the annex's lock and socket waits interruptible when it "
      "first imports threading or socket."};
  PyObject* holder = PyModule_New("annex_waits");
  PyObject* fn =
      holder != nullptr ? PyCFunction_New(&find_spec_def, holder) : nullptr;
  PyObject* meta_path = PySys_GetObject("meta_path");  // borrowed
  if (fn == nullptr || PyObject_SetAttrString(holder, "find_spec", fn) < 0 ||
      meta_path == nullptr || !PyList_Check(meta_path) ||
      PyList_Insert(meta_path, 0, holder) < 0) {
    PyErr_Clear();
  }
  Py_XDECREF(fn);
  Py_XDECREF(holder);
}

void AnnexRuntime::InstallInterruptibleSleep() {
  static PyMethodDef sleep_def = {
      "sleep", &AnnexRuntime::SleepCallback, METH_O,
      "sleep(seconds)\n\nAs time.sleep, but a console Ctrl-C or a client "
      "that leaves (AnnexRuntime::Interrupt) ends it with KeyboardInterrupt."};
  // The annex's own `time` module object (a copy of the target's, or a
  // module of its own): the target's time.sleep is not touched.
  PyObject* time = PyImport_ImportModule("time");
  PyObject* self = PyCapsule_New(this, nullptr, nullptr);
  PyObject* fn = (time && self) ? PyCFunction_New(&sleep_def, self) : nullptr;
  if (fn == nullptr || PyObject_SetAttrString(time, "sleep", fn) < 0) {
    PyErr_Clear();  // plain time.sleep stays: only Ctrl-C is lost
  }
  Py_XDECREF(fn);
  Py_XDECREF(self);
  Py_XDECREF(time);
}

namespace {

// The annex's input(): the process's stdin belongs to the program being
// watched (its terminal, a pipe, /dev/null), and a read there would take
// the host's input and block, uninterruptibly, until a line came.
// Where: annex thread, GIL held, annex current.
PyObject* AnnexInput(PyObject*, PyObject*, PyObject*) {
  PyErr_SetString(
      PyExc_RuntimeError,
      "input() is not available in the annex: it would read the stdin of "
      "the process being watched (its terminal or pipe), taking the "
      "program's input and blocking until a line came. Put the values in "
      "the code you run instead.");
  return nullptr;
}

}  // namespace

void AnnexRuntime::InstallAnnexInput() {
  static PyMethodDef input_def = {
      "input",
      reinterpret_cast<PyCFunction>(
          reinterpret_cast<void (*)(void)>(&AnnexInput)),
      METH_VARARGS | METH_KEYWORDS,
      "input(prompt='')\n\nNot in the annex: it would read the watched "
      "process's stdin (RuntimeError)."};
  // The annex's own builtins module: the target's input() is not touched.
  PyObject* builtins = PyImport_ImportModule("builtins");
  PyObject* fn = builtins ? PyCFunction_New(&input_def, nullptr) : nullptr;
  if (fn == nullptr || PyObject_SetAttrString(builtins, "input", fn) < 0) {
    PyErr_Clear();  // the plain input() stays
  }
  Py_XDECREF(fn);
  Py_XDECREF(builtins);
}

PyObject* AnnexRuntime::SleepCallback(PyObject* self, PyObject* arg) {
  auto* rt = static_cast<AnnexRuntime*>(PyCapsule_GetPointer(self, nullptr));
  if (rt == nullptr) return nullptr;
  double seconds = PyFloat_AsDouble(arg);
  if (seconds == -1.0 && PyErr_Occurred()) return nullptr;
  if (std::isnan(seconds)) {
    PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
    return nullptr;
  }
  if (seconds < 0) {
    PyErr_SetString(PyExc_ValueError, "sleep length must be non-negative");
    return nullptr;
  }
  seconds = std::min(seconds, 1e9);  // ~31 years; keeps the clock in range
  bool interrupted = false;
  Py_BEGIN_ALLOW_THREADS;
  {
    absl::MutexLock lock(&rt->mu_);
    rt->sleeping_ = true;
    auto woken_by = [rt]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(rt->mu_) {
      return rt->interrupt_.load() || rt->async_pending_ || rt->stop_requested_;
    };
    const bool woken = rt->mu_.AwaitWithTimeout(absl::Condition(&woken_by),
                                                absl::Seconds(seconds));
    rt->sleeping_ = false;
    // One interrupt, one KeyboardInterrupt: the flag is taken here or by
    // the trace hook or the yielder (an async exception), never twice. A
    // pending async exception is raised by the eval loop on return.
    interrupted = woken && (rt->interrupt_.exchange(false) ||
                            (rt->stop_requested_ && !rt->async_pending_));
    rt->async_pending_ = false;
  }
  Py_END_ALLOW_THREADS;
  if (interrupted) {
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    return nullptr;
  }
  Py_RETURN_NONE;
}

}  // namespace annex::python
