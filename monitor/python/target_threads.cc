// Reading the target's threads and stacks from the annex thread.
#include "monitor/python/target_threads.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "monitor/python/version.h"

namespace annex::python {

// Text of a str object, without caching anything inside it.
// Where: GIL held, any interpreter.
std::string Text(PyObject* str) {
  if (str == nullptr || !PyUnicode_Check(str)) return "?";
  PyObject* bytes = PyUnicode_AsUTF8String(str);
  if (bytes == nullptr) {
    PyErr_Clear();
    return "?";
  }
  std::string s(PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
  Py_DECREF(bytes);
  return s;
}

namespace {

// threading._active (ident -> Thread), borrowed, read from the module's
// dict without running code. Where: GIL held, target current.
PyObject* ActiveThreads() {
  PyObject* threading =
      PyDict_GetItemString(PyImport_GetModuleDict(), "threading");
  if (threading == nullptr || !PyModule_Check(threading)) return nullptr;
  PyObject* active =
      PyDict_GetItemString(PyModule_GetDict(threading), "_active");
  return active != nullptr && PyDict_Check(active) ? active : nullptr;
}

// The Thread object of `ident` in threading._active (borrowed), found by
// comparing int keys in place: no int is created to look it up.
// Where: GIL held, target current.
PyObject* ThreadOf(PyObject* active, unsigned long ident) {
  Py_ssize_t pos = 0;
  PyObject* key = nullptr;
  PyObject* value = nullptr;
  while (active != nullptr && PyDict_Next(active, &pos, &key, &value)) {
    if (!PyLong_CheckExact(key)) continue;
    unsigned long k = PyLong_AsUnsignedLong(key);
    if (k == static_cast<unsigned long>(-1) && PyErr_Occurred()) {
      PyErr_Clear();
      continue;
    }
    if (k == ident) return value;
  }
  return nullptr;
}

// The name a threading.Thread keeps in its instance attribute `_name`, read
// without running any code of the target: only when its type neither
// overrides attribute lookup (`__getattribute__`, `__getattr__`) nor defines
// `_name` itself, so the generic lookup reads the instance's own dict or
// inline values (it never materializes a dict for an exact str key).
// Returns "" when it cannot be read that way. Where: GIL held, target
// current.
std::string ThreadName(PyObject* thread) {
  PyTypeObject* type = Py_TYPE(thread);
  if (type->tp_getattro != PyObject_GenericGetAttr) return "";
  PyObject* key = PyUnicode_FromString("_name");  // transient, not tracked
  if (key == nullptr) {
    PyErr_Clear();
    return "";
  }
  std::string name;
  if (_PyType_Lookup(type, key) == nullptr) {
    PyObject* value = PyObject_GenericGetAttr(thread, key);
    if (value != nullptr) {
      if (PyUnicode_Check(value)) name = Text(value);
      Py_DECREF(value);
    } else {
      PyErr_Clear();
    }
  }
  Py_DECREF(key);
  return name;
}

}  // namespace

// The target's threads with their frames. Nothing of the target's runs:
// threading._active and each Thread's name are read in place (a Thread
// whose class customizes attribute lookup shows no name).
// Where: GIL held, target current.
std::vector<TargetThread> ReadTargetThreads(const ThreadStates& ts,
                                            bool all_frames) {
  std::vector<TargetThread> threads;
  PyObject* active = ActiveThreads();  // borrowed
  PyInterpreterState* interp = PyThreadState_GetInterpreter(ts.target_ts);
  for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr;
       t = PyThreadState_Next(t)) {
    if (t == ts.target_ts) continue;
    TargetThread info;
    info.ident = t->thread_id;
    info.native_id = t->native_thread_id;
    PyObject* thread = ThreadOf(active, info.ident);  // borrowed
    if (thread != nullptr) info.name = ThreadName(thread);
    // Frames read in place: no frame object is created in the target
    // (asking for one of a frame in its prologue is unsafe on 3.11), and
    // frames still in their prologue are left out, as in tracebacks.
    ForEachFrame(t, [&](const FrameView& f) {
      if (!f.complete) return true;
      auto* code = reinterpret_cast<PyCodeObject*>(f.code);
      info.frames.push_back(absl::StrFormat("File \"%s\", line %d, in %s",
                                            Text(code->co_filename), f.line,
                                            Text(code->co_name)));
      return all_frames;
    });
    // Annex's own helper thread states have neither a frame nor a Thread.
    if (info.frames.empty() && thread == nullptr) continue;
    threads.push_back(std::move(info));
  }
  return threads;
}

std::string DescribeThreads(const ThreadStates& ts) {
  ScopedTargetSwap swap(ts);
  std::string out;
  for (const TargetThread& t : ReadTargetThreads(ts, /*all_frames=*/false)) {
    absl::StrAppendFormat(&out, "Thread %lu (native %lu) \"%s\": %s\n", t.ident,
                          t.native_id, t.name.empty() ? "?" : t.name,
                          t.frames.empty() ? "no Python frame" : t.frames[0]);
  }
  return out;
}

std::string DescribeStacks(const ThreadStates& ts) {
  ScopedTargetSwap swap(ts);
  std::string out;
  for (const TargetThread& t : ReadTargetThreads(ts, /*all_frames=*/true)) {
    absl::StrAppendFormat(&out,
                          "Thread %lu (native %lu) \"%s\" (most recent call "
                          "last):\n",
                          t.ident, t.native_id, t.name.empty() ? "?" : t.name);
    for (auto it = t.frames.rbegin(); it != t.frames.rend(); ++it) {
      absl::StrAppend(&out, "  ", *it, "\n");
    }
    if (t.frames.empty()) absl::StrAppend(&out, "  (no Python frame)\n");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace annex::python
