// fork() of the target: the os.register_at_fork callbacks end the annex
// interpreter before a fork and let the annex thread create a new one in the
// parent after it (docs/architecture.md "Ownership and order";
// DEVELOPERS.md, CPython fact 9).
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "monitor/python/annex_runtime.h"
#include "monitor/python/annex_runtime_parts.h"
#include "monitor/python/gilstate_bind.h"
#include "monitor/python/version.h"

namespace annex::python {

using runtime_internal::DeleteLinkCapsule;
using runtime_internal::kAtExitCapsule;

namespace {

// How long a fork() waits for the annex interpreter to end before it
// interrupts Python code running there, and then how much longer.
constexpr absl::Duration kForkGrace = absl::Seconds(2);
constexpr absl::Duration kForkPatience = absl::Seconds(28);

}  // namespace

PyObject* AnnexRuntime::BeforeForkCallback(PyObject* self, PyObject*) {
  return ForkCallback(self, /*before=*/true);
}

PyObject* AnnexRuntime::AfterForkParentCallback(PyObject* self, PyObject*) {
  return ForkCallback(self, /*before=*/false);
}

PyObject* AnnexRuntime::ForkCallback(PyObject* self, bool before) {
  auto* holder = static_cast<std::shared_ptr<AtExitLink>*>(
      PyCapsule_GetPointer(self, kAtExitCapsule));
  if (holder == nullptr) return nullptr;
  std::shared_ptr<AtExitLink> link = *holder;
  if (getpid() != link->owner) Py_RETURN_NONE;  // a child forking again
  // Held only for the callback, never across the fork itself: it keeps
  // Stop() from destroying the runtime meanwhile.
  absl::MutexLock lock(&link->mu);
  if (link->runtime != nullptr) {
    if (before) {
      link->runtime->SuspendForFork();
    } else {
      link->runtime->ResumeAfterFork();
    }
  }
  Py_RETURN_NONE;
}

void AnnexRuntime::SuspendForFork() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_requested_ || finished_ || suspend_requested_) return;
    suspend_requested_ = true;
  }
  // The annex thread needs the GIL to end the annex interpreter.
  PyThreadState* saved = PyEval_SaveThread();
  auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return suspended_ || finished_;
  };
  bool done;
  {
    absl::MutexLock lock(&mu_);
    done = mu_.AwaitWithTimeout(absl::Condition(&ended), kForkGrace);
  }
  if (!done) {
    // Python code of the console may run in the annex: interrupt it.
    Interrupt();
    absl::MutexLock lock(&mu_);
    done = mu_.AwaitWithTimeout(absl::Condition(&ended), kForkPatience);
  }
  if (!done) {
    std::fprintf(stderr,
                 "annex: the annex interpreter did not end before fork(); "
                 "the child may hang in CPython's PyOS_AfterFork_Child\n");
  }
  PyEval_RestoreThread(saved);
}

void AnnexRuntime::ResumeAfterFork() {
  // The annex thread creates the new interpreter once it gets the GIL (the
  // forking thread holds it now): nothing to wait for here.
  absl::MutexLock lock(&mu_);
  suspend_requested_ = false;
  // The forking thread ran target code: no mark taken before stays valid.
  target_runs_.fetch_add(1);
}

void AnnexRuntime::RegisterTargetAtFork() {
  static PyMethodDef before_def = {
      "_annex_before_fork", &AnnexRuntime::BeforeForkCallback, METH_NOARGS,
      "Ends the Annex interpreter before fork()."};
  static PyMethodDef parent_def = {
      "_annex_after_fork_parent", &AnnexRuntime::AfterForkParentCallback,
      METH_NOARGS, "Creates the Annex interpreter again after fork()."};
  ScopedErrorPreserver keep_error;
  PyObject* modules = PyImport_GetModuleDict();              // borrowed
  PyObject* posix = PyDict_GetItemString(modules, "posix");  // borrowed
  if (posix == nullptr) return;  // no fork() without posix either
  PyObject* lists_before[3];
  ForkerLists(target_, lists_before);
  PyObject* funcs[2] = {nullptr, nullptr};
  PyMethodDef* defs[2] = {&before_def, &parent_def};
  for (int i = 0; i < 2; ++i) {
    auto* holder = new std::shared_ptr<AtExitLink>(atexit_link_);
    PyObject* capsule =
        PyCapsule_New(holder, kAtExitCapsule, &DeleteLinkCapsule);
    if (capsule == nullptr) {
      delete holder;
      break;
    }
    funcs[i] = PyCFunction_New(defs[i], capsule);
    Py_DECREF(capsule);
    if (funcs[i] == nullptr) break;
    // Refers only to a capsule: no cycle, so it can stay off the gc lists.
    PyObject_GC_UnTrack(funcs[i]);
  }
  if (funcs[0] != nullptr && funcs[1] != nullptr) {
    PyObject* reg = PyObject_GetAttrString(posix, "register_at_fork");
    PyObject* args = PyTuple_New(0);
    PyObject* kwargs = Py_BuildValue("{sOsO}", "before", funcs[0],
                                     "after_in_parent", funcs[1]);
    PyObject* r =
        (reg && args && kwargs) ? PyObject_Call(reg, args, kwargs) : nullptr;
    if (r != nullptr) {
      fork_funcs_[0] = Py_NewRef(funcs[0]);
      fork_funcs_[1] = Py_NewRef(funcs[1]);
    }
    Py_XDECREF(r);
    Py_XDECREF(kwargs);
    Py_XDECREF(args);
    Py_XDECREF(reg);
  }
  Py_XDECREF(funcs[0]);
  Py_XDECREF(funcs[1]);
  PyErr_Clear();
  // Lists the registration created in the interpreter state: alive as long
  // as the target, referenced by no root. Off the gc lists and hidden they
  // leave gc.get_objects() and heapu() as they were.
  PyObject* lists_after[3];
  ForkerLists(target_, lists_after);
  for (int i = 0; i < 3; ++i) {
    PyObject* o = lists_after[i];
    if (o == nullptr || o == lists_before[i] || !PyObject_GC_IsTracked(o)) {
      continue;
    }
    created_forker_list_[i] = true;
    footprint_.Hold(o);
  }
}

void AnnexRuntime::UnregisterTargetAtFork() {
  // os.register_at_fork has no way back: take our functions out of the
  // interpreter's lists by identity (no Python code runs), and drop a list
  // the registration created once it is empty again.
  PyObject* lists[3];
  ForkerLists(target_, lists);
  for (int i = 0; i < 3; ++i) {
    PyObject* list = lists[i];
    if (list == nullptr || !PyList_Check(list)) continue;
    for (Py_ssize_t k = PyList_GET_SIZE(list) - 1; k >= 0; --k) {
      PyObject* item = PyList_GET_ITEM(list, k);
      if (item != nullptr &&
          (item == fork_funcs_[0] || item == fork_funcs_[1])) {
        if (PySequence_DelItem(list, k) < 0) PyErr_Clear();
      }
    }
    if (created_forker_list_[i] && PyList_GET_SIZE(list) == 0) {
      ClearForkerList(target_, i);  // still held by footprint_
    }
    created_forker_list_[i] = false;
  }
  Py_CLEAR(fork_funcs_[0]);
  Py_CLEAR(fork_funcs_[1]);
}

void AnnexRuntime::SuspendAnnex() {
  {
    // Py_EndInterpreter requires the annex's last thread state.
    absl::MutexLock lock(&mu_);
    auto out = [this]()
                   ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !in_annex_; };
    mu_.Await(absl::Condition(&out));
  }
  SetActive(true);
  handoff_.Acquire(ts_.target_ts);
  if (ts_.annex_ts != nullptr) {
    annex_swap_thread_state(ts_.annex_ts);
    EndAnnex();
  }
  PyEval_SaveThread();
  SetActive(false);
  {
    absl::MutexLock lock(&mu_);
    suspended_ = true;
    auto resumed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_requested_ || !suspend_requested_;
    };
    mu_.Await(absl::Condition(&resumed));
    if (stop_requested_) return;  // DestroyInterpreters finds no annex
    // Not suspended from here on: a fork() requested while the new annex
    // is being created waits until the loop has ended it again.
    suspended_ = false;
  }
  SetActive(true);
  handoff_.Acquire(ts_.target_ts);
  absl::Status status = NewAnnex();  // annex current when OK
  if (status.ok() && options_.on_start) {
    status = options_.on_start(*this);
    if (!status.ok()) EndAnnex();
  }
  if (status.ok()) annex_swap_thread_state(ts_.target_ts);
  PyEval_SaveThread();
  SetActive(false);
  if (!status.ok()) {
    // Work now fails with Unavailable (see ThreadMain); Stop() still works.
    const std::string why(status.message());
    std::fprintf(stderr,
                 "annex: the annex interpreter could not be created again "
                 "after fork(): %s\n",
                 why.c_str());
  }
  fork_restarts_.fetch_add(1);
}

}  // namespace annex::python
