// Collecting the target's roots with the target current.
#include "monitor/heap/roots.h"

#include "absl/strings/str_cat.h"
#include "monitor/python/version.h"

namespace annex::heap {

RootList& RootList::operator=(RootList&& other) noexcept {
  if (this != &other) {
    for (PyObject* o : objects_) Py_DECREF(o);
    names_ = std::move(other.names_);
    objects_ = std::move(other.objects_);
    other.names_.clear();
    other.objects_.clear();
  }
  return *this;
}

RootList::~RootList() {
  for (PyObject* o : objects_) Py_DECREF(o);
}

void RootList::Add(std::string name, PyObject* object) {
  if (object == nullptr) return;
  Py_INCREF(object);
  names_.push_back(std::move(name));
  objects_.push_back(object);
}

absl::StatusOr<RootList> CollectRoots(
    const absl::flat_hash_set<PyThreadState*>& excluded) {
  PyThreadState* current = python::CurrentThreadStateUnchecked();
  if (current == nullptr) {
    return absl::FailedPreconditionError("no Python thread state is current");
  }
  PyInterpreterState* interp = PyThreadState_GetInterpreter(current);
  RootList roots;
  PyObject* modules = PyImport_GetModuleDict();  // borrowed, current interp
  if (modules == nullptr || !PyDict_Check(modules)) {
    PyErr_Clear();
    return absl::FailedPreconditionError("sys.modules is gone");
  }
  roots.Add("sys.modules", modules);
  // Looked up in the dict directly (no import machinery, no code run).
  PyObject* sys = PyDict_GetItemString(modules, "sys");  // borrowed
  if (sys != nullptr && PyModule_Check(sys)) {
    roots.Add("sys", PyModule_GetDict(sys));
  }
  // With no frame running on the calling thread state this is the
  // interpreter's builtins dict.
  roots.Add("builtins", PyEval_GetBuiltins());
  PyErr_Clear();

  for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr;
       t = PyThreadState_Next(t)) {
    if (excluded.contains(t)) continue;
    PyFrameObject* frame = PyThreadState_GetFrame(t);  // new reference
    if (frame == nullptr) continue;  // idle or helper thread: skipped
    const std::string prefix =
        absl::StrCat("thread ", python::ThreadStateId(t));
    int depth = 0;
    while (frame != nullptr) {
      roots.Add(absl::StrCat(prefix, " frame ", depth++),
                reinterpret_cast<PyObject*>(frame));
      PyFrameObject* back = PyFrame_GetBack(frame);  // new reference
      Py_DECREF(frame);
      frame = back;
    }
    roots.Add(absl::StrCat(prefix, " dict"), python::ThreadStateDict(t));
    roots.Add(absl::StrCat(prefix, " async_exc"),
              python::ThreadStateAsyncExc(t));
  }
  return roots;
}

}  // namespace annex::heap
