// The `annex_test` module's C half: the target's __main__ reached from the
// annex thread, and the report slot the driver reads. See the header.
#include "tests/testing/annex_test_module.h"

#include <Python.h>

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "monitor/python/guards.h"
#include "tests/testing/annex_unittest_py.h"

namespace annex::testing {
namespace {

// What the driver set for the test that runs now, and what it reported.
// The driver writes the host part while no annex code runs; the annex
// thread reads it (and writes the report) during the driver's ExecInAnnex.
// The runtime's work queue orders the two; the mutex makes it plain.
struct Host {
  absl::Mutex mu;
  python::AnnexRuntime* runtime ABSL_GUARDED_BY(mu) = nullptr;
  Options options ABSL_GUARDED_BY(mu);
  std::string module_path ABSL_GUARDED_BY(mu);
  std::string test_class ABSL_GUARDED_BY(mu);
  std::string test_method ABSL_GUARDED_BY(mu);
  AnnexTestReport report ABSL_GUARDED_BY(mu);
};

Host& TheHost() {
  static Host* host = new Host;  // never destroyed: read at exit
  return *host;
}

// UTF-8 of a str (the annex's or the target's); a placeholder, with the
// error cleared, when it has none. Where: GIL held, the owner of `s` current.
std::string Utf8(PyObject* s) {
  Py_ssize_t n = 0;
  const char* p = PyUnicode_AsUTF8AndSize(s, &n);
  if (p == nullptr) {
    PyErr_Clear();
    return "<text that is not UTF-8>";
  }
  return std::string(p, static_cast<size_t>(n));
}

// What the target raised, as text only (no object crosses interpreters):
// its type's name, str() of the value, and the traceback's frames.
struct TargetException {
  struct Frame {
    std::string file, function;
    long line = 0;
  };
  std::string type, message;
  std::vector<Frame> frames;  // outermost first
};

// Takes the pending exception of the current interpreter apart (and clears
// it). Reads attributes only: nothing is imported. Where: GIL held, the
// target current (inside ScopedTargetSwap).
TargetException TakeException() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  TargetException e;
  e.type = type != nullptr && PyType_Check(type)
               ? reinterpret_cast<PyTypeObject*>(type)->tp_name
               : "Error";
  PyObject* text = value != nullptr ? PyObject_Str(value) : nullptr;
  if (text != nullptr) e.message = Utf8(text);
  Py_XDECREF(text);
  PyErr_Clear();
  PyObject* t = tb;
  Py_XINCREF(t);
  while (t != nullptr && t != Py_None) {
    PyObject* line = PyObject_GetAttrString(t, "tb_lineno");
    PyObject* frame = PyObject_GetAttrString(t, "tb_frame");
    PyObject* code =
        frame != nullptr ? PyObject_GetAttrString(frame, "f_code") : nullptr;
    PyObject* file =
        code != nullptr ? PyObject_GetAttrString(code, "co_filename") : nullptr;
    PyObject* name =
        code != nullptr ? PyObject_GetAttrString(code, "co_name") : nullptr;
    if (line != nullptr && file != nullptr && name != nullptr &&
        PyUnicode_Check(file) && PyUnicode_Check(name)) {
      e.frames.push_back({Utf8(file), Utf8(name), PyLong_AsLong(line)});
    }
    PyErr_Clear();
    Py_XDECREF(line);
    Py_XDECREF(frame);
    Py_XDECREF(code);
    Py_XDECREF(file);
    Py_XDECREF(name);
    PyObject* next = PyObject_GetAttrString(t, "tb_next");
    PyErr_Clear();
    Py_DECREF(t);
    t = next;
  }
  Py_XDECREF(t);
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  return e;
}

// The runtime, when this call runs where target_exec may: on the annex
// thread with the annex current. Else nullptr and RuntimeError set.
// Where: GIL held, any thread.
python::AnnexRuntime* AnnexHere() {
  python::AnnexRuntime* rt;
  {
    Host& h = TheHost();
    absl::MutexLock lock(&h.mu);
    rt = h.runtime;
  }
  if (rt == nullptr || !rt->OnAnnexThread() ||
      PyThreadState_Get()->interp != rt->annex()) {
    PyErr_SetString(PyExc_RuntimeError,
                    "annex_test reaches the target only from a test the "
                    "driver runs on the annex thread");
    return nullptr;
  }
  return rt;
}

// Runs `source` in the target's __main__ (statements, or with `eval` one
// expression whose repr is returned in *repr). False with *error what the
// target raised. Where: annex thread, GIL held, annex
// current; the target is current inside.
bool RunInTarget(python::AnnexRuntime& rt, const std::string& source, bool eval,
                 std::string* repr, TargetException* error) {
  python::ScopedTargetSwap swap(rt.thread_states());
  PyObject* main = PyImport_AddModule("__main__");  // borrowed
  if (main == nullptr) {
    *error = TakeException();
    return false;
  }
  PyObject* globals = PyModule_GetDict(main);
  PyObject* code = Py_CompileString(
      source.c_str(),
      eval ? "<annex_test.target_eval>" : "<annex_test.target_exec>",
      eval ? Py_eval_input : Py_file_input);
  PyObject* result =
      code != nullptr ? PyEval_EvalCode(code, globals, globals) : nullptr;
  Py_XDECREF(code);
  if (result == nullptr) {
    *error = TakeException();
    return false;
  }
  bool ok = true;
  if (eval) {
    PyObject* r = PyObject_Repr(result);
    if (r == nullptr) {
      *error = TakeException();
      ok = false;
    } else {
      *repr = Utf8(r);
      Py_DECREF(r);
    }
  }
  Py_DECREF(result);
  return ok;
}

// Raises module.TargetError with the target's traceback, which the
// module's _target_error() writes from `e`'s text. Where: annex thread, GIL
// held, annex current.
PyObject* RaiseTargetError(PyObject* module, const TargetException& e) {
  PyObject* frames = PyList_New(0);
  for (size_t i = 0; frames != nullptr && i < e.frames.size(); ++i) {
    const TargetException::Frame& f = e.frames[i];
    PyObject* item = Py_BuildValue(
        "(s#ls#)", f.file.data(), static_cast<Py_ssize_t>(f.file.size()),
        f.line, f.function.data(), static_cast<Py_ssize_t>(f.function.size()));
    if (item == nullptr || PyList_Append(frames, item) < 0) Py_CLEAR(frames);
    Py_XDECREF(item);
  }
  if (frames == nullptr) return nullptr;
  PyObject* error = PyObject_CallMethod(
      module, "_target_error", "s#s#O", e.type.data(),
      static_cast<Py_ssize_t>(e.type.size()), e.message.data(),
      static_cast<Py_ssize_t>(e.message.size()), frames);
  Py_DECREF(frames);
  if (error == nullptr) return nullptr;
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error)), error);
  Py_DECREF(error);
  return nullptr;
}

// annex_test._target_exec(code) / _target_repr(expr). Where: annex thread,
// GIL held, annex current (checked).
PyObject* TargetRun(PyObject* module, PyObject* arg, bool eval) {
  if (!PyUnicode_Check(arg)) {
    PyErr_Format(PyExc_TypeError, "%s takes a str, not %.100s",
                 eval ? "target_eval" : "target_exec", Py_TYPE(arg)->tp_name);
    return nullptr;
  }
  python::AnnexRuntime* rt = AnnexHere();
  if (rt == nullptr) return nullptr;
  const std::string source = Utf8(arg);
  std::string repr;
  TargetException error;
  if (!RunInTarget(*rt, source, eval, &repr, &error)) {
    return RaiseTargetError(module, error);
  }
  if (!eval) Py_RETURN_NONE;
  return PyUnicode_FromStringAndSize(repr.data(),
                                     static_cast<Py_ssize_t>(repr.size()));
}

PyObject* TargetExec(PyObject* module, PyObject* code) {
  return TargetRun(module, code, false);
}

PyObject* TargetRepr(PyObject* module, PyObject* expr) {
  return TargetRun(module, expr, true);
}

// annex_test._report(kind, text): the outcome the driver reads; the last
// call wins. Where: GIL held, any interpreter (the annex).
PyObject* Report(PyObject*, PyObject* args) {
  const char* kind;
  const char* text;
  if (!PyArg_ParseTuple(args, "ss:_report", &kind, &text)) return nullptr;
  Host& h = TheHost();
  absl::MutexLock lock(&h.mu);
  h.report = {kind, text};
  Py_RETURN_NONE;
}

// annex_test._current() -> (module path, test class, test method). Where:
// GIL held, any interpreter (the annex).
PyObject* Current(PyObject*, PyObject*) {
  Host& h = TheHost();
  absl::MutexLock lock(&h.mu);
  return Py_BuildValue("(sss)", h.module_path.c_str(), h.test_class.c_str(),
                       h.test_method.c_str());
}

// Seconds of a duration as a float, None when infinite. Where: GIL held.
PyObject* Seconds(absl::Duration d) {
  if (d == absl::InfiniteDuration()) Py_RETURN_NONE;
  return PyFloat_FromDouble(absl::ToDoubleSeconds(d));
}

// annex_test.monitor_option(name): the Options the driver started the
// Monitor with, read-only. Where: GIL held, any interpreter (the annex).
PyObject* MonitorOption(PyObject*, PyObject* arg) {
  if (!PyUnicode_Check(arg)) {
    PyErr_SetString(PyExc_TypeError, "monitor_option takes the option's name");
    return nullptr;
  }
  const std::string name = Utf8(arg);
  Options o;
  {
    Host& h = TheHost();
    absl::MutexLock lock(&h.mu);
    o = h.options;
  }
  if (name == "question_pause_limit") return Seconds(o.question_pause_limit);
  if (name == "console") return PyBool_FromLong(o.console);
  PyErr_Format(PyExc_KeyError,
               "monitor_option(%R): the driver shows 'question_pause_limit' "
               "(seconds, None for no limit) and 'console'",
               arg);
  return nullptr;
}

PyMethodDef kMethods[] = {
    {"_target_exec", TargetExec, METH_O,
     "_target_exec(code): run code in the target's __main__."},
    {"_target_repr", TargetRepr, METH_O,
     "_target_repr(expr): repr() of expr evaluated in the target's __main__."},
    {"_report", Report, METH_VARARGS,
     "_report(kind, text): the outcome the driver reads."},
    {"_current", Current, METH_NOARGS,
     "_current(): (module path, test class, test method) to run."},
    {"monitor_option", MonitorOption, METH_O,
     "monitor_option(name): an option the driver started the Monitor with."},
    {nullptr, nullptr, 0, nullptr},
};

// Runs annex_unittest.py (embedded, compiled under its path) in the
// module's dict. Where: GIL held, the importing interpreter current.
int ExecModule(PyObject* module) {
  PyObject* dict = PyModule_GetDict(module);  // borrowed
  PyObject* code =
      Py_CompileString(embedded::kAnnexUnittestPy,
                       embedded::kAnnexUnittestPyPath, Py_file_input);
  PyObject* r = code != nullptr ? PyEval_EvalCode(code, dict, dict) : nullptr;
  Py_XDECREF(code);
  if (r == nullptr) return -1;
  Py_DECREF(r);
  return 0;
}

PyModuleDef_Slot kSlots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(ExecModule)},
    {0, nullptr},
};

PyModuleDef kModule = {
    PyModuleDef_HEAD_INIT,
    "annex_test",
    "What an hp test in the annex reaches: the target (target_exec, "
    "target_eval) and the driver's options (monitor_option).",
    0,
    kMethods,
    kSlots,
    nullptr,
    nullptr,
    nullptr,
};

// Where: GIL held, the importing interpreter current.
PyObject* InitModule() { return PyModuleDef_Init(&kModule); }

}  // namespace

void RegisterAnnexTestModule() {
  PyImport_AppendInittab("annex_test", InitModule);
}

void SetAnnexTestHost(python::AnnexRuntime* runtime, const Options& options,
                      const std::string& module_path,
                      const std::string& test_class,
                      const std::string& test_method) {
  Host& h = TheHost();
  absl::MutexLock lock(&h.mu);
  h.runtime = runtime;
  h.options = options;
  h.module_path = module_path;
  h.test_class = test_class;
  h.test_method = test_method;
  h.report = {};
}

AnnexTestReport TakeAnnexTestReport() {
  Host& h = TheHost();
  absl::MutexLock lock(&h.mu);
  AnnexTestReport r = std::move(h.report);
  h.report = {};
  return r;
}

}  // namespace annex::testing
