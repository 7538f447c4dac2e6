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

// The target's threads with their frames. Where: GIL held, target current.
std::vector<ThreadInfo> ReadTargetThreads(const ThreadStates& ts,
                                          bool all_frames) {
  std::vector<ThreadInfo> threads;
  PyObject* active = nullptr;  // threading._active: ident -> Thread
  PyObject* threading =
      PyDict_GetItemString(PyImport_GetModuleDict(), "threading");
  if (threading != nullptr) {
    active = PyObject_GetAttrString(threading, "_active");
    if (active == nullptr) PyErr_Clear();
    if (active != nullptr && !PyDict_Check(active)) Py_CLEAR(active);
  }
  PyInterpreterState* interp = PyThreadState_GetInterpreter(ts.target_ts);
  for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr;
       t = PyThreadState_Next(t)) {
    if (t == ts.target_ts) continue;
    ThreadInfo info;
    info.ident = t->thread_id;
    info.native_id = t->native_thread_id;
    PyObject* thread = nullptr;
    if (active != nullptr) {
      PyObject* key = PyLong_FromUnsignedLong(info.ident);
      thread = key ? PyDict_GetItem(active, key) : nullptr;  // borrowed
      Py_XDECREF(key);
    }
    if (thread != nullptr) {
      PyObject* name = PyObject_GetAttrString(thread, "_name");
      if (name != nullptr) {
        info.name = Text(name);
        Py_DECREF(name);
      } else {
        PyErr_Clear();
      }
    }
    // Frames read in place: no frame object is created in the target
    // (asking for one of a frame in its prologue is unsafe on 3.11), and
    // frames still in their prologue are left out, as in tracebacks.
    ForEachFrame(t, [&](const FrameView& f) {
      if (!f.complete) return true;
      auto* code = reinterpret_cast<PyCodeObject*>(f.code);
      info.frames.push_back(absl::StrFormat(
          "File \"%s\", line %d, in %s", Text(code->co_filename), f.line,
          Text(code->co_name)));
      return all_frames;
    });
    // Annex's own helper thread states have neither a frame nor a Thread.
    if (info.frames.empty() && thread == nullptr) continue;
    threads.push_back(std::move(info));
  }
  Py_XDECREF(active);
  return threads;
}

std::string DescribeThreads(const ThreadStates& ts) {
  ScopedTargetSwap swap(ts);
  std::string out;
  for (const ThreadInfo& t : ReadTargetThreads(ts, /*all_frames=*/false)) {
    absl::StrAppendFormat(&out, "Thread %lu (native %lu) \"%s\": %s\n", t.ident,
                          t.native_id, t.name.empty() ? "?" : t.name,
                          t.frames.empty() ? "no Python frame" : t.frames[0]);
  }
  return out;
}

std::string DescribeStacks(const ThreadStates& ts) {
  ScopedTargetSwap swap(ts);
  std::string out;
  for (const ThreadInfo& t : ReadTargetThreads(ts, /*all_frames=*/true)) {
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
