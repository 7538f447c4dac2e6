// Private to the annex runtime's source files (annex_runtime.cc,
// annex_fairness.cc, annex_builtins.cc, annex_fork.cc, annex_atexit.cc): the
// work item, the link the target's callbacks hold, and the constants and
// helpers more than one of them uses.
#pragma once

#include <Python.h>
#include <unistd.h>

#include <chrono>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "monitor/python/annex_runtime.h"
#include "monitor/python/guards.h"

namespace annex::python {

struct AnnexRuntime::Task {
  explicit Task(absl::Mutex& runtime_mu) : mu(runtime_mu) {}

  const Work* work = nullptr;
  Work owned;  // RunWithin(): the runtime's own copy; `work` points to it
  // The runtime's mu_. Clang cannot tell that `task->mu` and the runtime's
  // `mu_` are one mutex: code that holds mu_ says so with
  // `task->mu.AssertHeld()` (checked at run time too) before it touches
  // the fields below, and a Condition over them requires both.
  absl::Mutex& mu;
  bool started ABSL_GUARDED_BY(mu) = false;
  bool done ABSL_GUARDED_BY(mu) = false;
  bool interrupt ABSL_GUARDED_BY(mu) = false;  // RunWithin interrupted it
  absl::Status status ABSL_GUARDED_BY(mu);
};

// Shared between the runtime and the atexit callback living in the target,
// which may outlive the runtime (it is unregistered, but a copy of the list
// may be running). `runtime` is null once the runtime stopped.
struct AnnexRuntime::AtExitLink {
  const pid_t owner = getpid();  // a forked child has no annex to stop
  absl::Mutex mu;
  AnnexRuntime* runtime ABSL_GUARDED_BY(mu) = nullptr;
};

namespace runtime_internal {

// The name of the capsules that hold a std::shared_ptr<AtExitLink> for the
// runtime's functions in the target (atexit and os.register_at_fork).
inline constexpr const char* kAtExitCapsule = "annex.atexit_link";

// The capsule destructor of those capsules. Where: any thread, GIL held.
inline void DeleteLinkCapsule(PyObject* capsule) {
  delete static_cast<std::shared_ptr<void>*>(
      PyCapsule_GetPointer(capsule, kAtExitCapsule));
}

// Releases the GIL held by the calling thread (if any) while `wait` runs.
// Where: any thread but the annex thread; with or without the GIL.
template <typename F>
void WaitWithoutGil(F&& wait) {
  ScopedGilReleaseIfHeld release;
  wait();
}

}  // namespace runtime_internal
}  // namespace annex::python
