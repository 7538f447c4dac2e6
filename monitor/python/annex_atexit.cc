// The safety net in the target: an atexit function that stops the annex when
// the host finalizes without Stop(), registered so that the target's
// sys.modules and gc lists stay as they were (DEVELOPERS.md, CPython fact 7).
#include <memory>
#include <mutex>

#include "monitor/python/annex_runtime.h"
#include "monitor/python/annex_runtime_parts.h"
#include "monitor/python/version.h"

namespace annex::python {

using runtime_internal::DeleteLinkCapsule;
using runtime_internal::kAtExitCapsule;

PyObject* AnnexRuntime::AtExitCallback(PyObject* self, PyObject*) {
  // Where: the target's main thread inside Py_FinalizeEx, GIL held.
  auto* holder = static_cast<std::shared_ptr<AtExitLink>*>(
      PyCapsule_GetPointer(self, kAtExitCapsule));
  if (holder == nullptr) return nullptr;
  std::shared_ptr<AtExitLink> link = *holder;
  // After fork() the child has a copy of the runtime but none of its
  // threads (and perhaps a copied, locked mutex): nothing to stop there.
  if (getpid() != link->owner) Py_RETURN_NONE;
  absl::MutexLock lock(&link->mu);
  if (link->runtime != nullptr) {
    if (link->runtime->options_.before_atexit_stop) {
      ScopedGilRelease release;
      link->runtime->options_.before_atexit_stop();
    }
    link->runtime->StopImpl(/*from_atexit=*/true).IgnoreError();
    link->runtime = nullptr;
  }
  Py_RETURN_NONE;
}

void AnnexRuntime::RegisterTargetAtExit() {
  static PyMethodDef def = {"_annex_stop", &AnnexRuntime::AtExitCallback,
                            METH_NOARGS,
                            "Stops the Annex monitor before finalization."};
  {
    absl::MutexLock lock(&atexit_link_->mu);
    atexit_link_->runtime = this;
  }
  PyObject* modules = PyImport_GetModuleDict();
  const bool had_atexit = PyDict_GetItemString(modules, "atexit") != nullptr;
  PyObject* atexit = PyImport_ImportModule("atexit");
  if (atexit == nullptr) {
    PyErr_Clear();
    return;
  }
  auto* holder = new std::shared_ptr<AtExitLink>(atexit_link_);
  PyObject* capsule = PyCapsule_New(holder, kAtExitCapsule, &DeleteLinkCapsule);
  if (capsule == nullptr) delete holder;
  PyObject* func = capsule ? PyCFunction_New(&def, capsule) : nullptr;
  Py_XDECREF(capsule);
  if (func != nullptr) {
    // The function refers only to a capsule: it cannot be part of a cycle,
    // so untracking it keeps the target's gc lists exactly as they were.
    PyObject_GC_UnTrack(func);
    PyObject* r = PyObject_CallMethod(atexit, "register", "O", func);
    if (r == nullptr) {
      PyErr_Clear();
      Py_CLEAR(func);
    }
    Py_XDECREF(r);
  } else {
    PyErr_Clear();
  }
  atexit_func_ = func;
  if (!had_atexit) {
    // Keep the module we imported: out of sys.modules it would become
    // cyclic garbage (module <-> its functions) in the target's gc lists.
    // Held, it is alive, used again by Stop(), and hidden from heap views.
    atexit_module_ = Py_NewRef(atexit);
    footprint_.HoldModule(atexit);
  }
  Py_DECREF(atexit);
  // The callbacks live in the interpreter's atexit state, not in the module:
  // if the host had not imported atexit, leave its sys.modules as it was.
  if (!had_atexit && PyDict_DelItemString(modules, "atexit") < 0) PyErr_Clear();
}

void AnnexRuntime::UnregisterTargetAtExit() {
  ScopedErrorPreserver keep_error;
  // During finalization the callback is running now; the list is cleared by
  // CPython after it, and modifying it meanwhile is unsafe.
  if (atexit_func_ != nullptr && !IsFinalizing()) {
    PyObject* atexit = atexit_module_ != nullptr
                           ? Py_NewRef(atexit_module_)
                           : PyImport_ImportModule("atexit");
    if (atexit != nullptr) {
      PyObject* r =
          PyObject_CallMethod(atexit, "unregister", "O", atexit_func_);
      Py_XDECREF(r);
      Py_DECREF(atexit);
    }
    PyErr_Clear();
  }
  Py_CLEAR(atexit_func_);  // released with the target current (rule 10)
  UnregisterTargetAtFork();
  // The module and its functions form a cycle only the gc can free.
  footprint_.Release();
  Py_CLEAR(atexit_module_);
}

}  // namespace annex::python
