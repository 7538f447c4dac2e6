// Fairness between the annex and the target (the header's "nudger" and
// "yielder", and the yield hook): the GIL goes back and forth while annex
// work runs, on every CPython version (docs/design.md rule 2).
#include <time.h>

#include <chrono>

#include "monitor/python/annex_runtime.h"
#include "monitor/python/annex_runtime_parts.h"
#include "monitor/python/cpython_peek.h"
#include "monitor/python/gilstate_bind.h"
#include "monitor/python/version.h"

namespace annex::python {
namespace {

constexpr absl::Duration kNudgePeriod = absl::Milliseconds(2);

}  // namespace

void AnnexRuntime::SetActive(bool active) {
  absl::MutexLock lock(&mu_);
  active_ += active ? 1 : -1;
}

void AnnexRuntime::NudgerMain() {
  // Where: its own thread; takes the GIL only through the hand-off, with a
  // target thread state, and never runs Python code.
  nudge_ts_ = PyThreadState_New(target_);
  if (nudge_ts_ == nullptr) return;
  // Binds the fresh thread state to this thread once, with the GIL.
  handoff_.Acquire(nudge_ts_);
  PyEval_SaveThread();
  auto wanted = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return nudger_exit_ || active_ > 0;
  };
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&wanted));
      if (nudger_exit_) break;
    }
    handoff_.Acquire(nudge_ts_);
    PyEval_SaveThread();
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&nudger_exit_), kNudgePeriod);
  }
  handoff_.Acquire(nudge_ts_);
  PyThreadState_Clear(nudge_ts_);
  PyThreadState_DeleteCurrent();
  nudge_ts_ = nullptr;
}

void AnnexRuntime::YielderMain() {
  // Where: its own thread; enters the annex only while a work item runs.
  const auto stale = 2 * options_.yield_interval;
  const absl::Duration interval = absl::FromChrono(options_.yield_interval);
  auto work_runs = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return nudger_exit_ || task_running_;
  };
  auto visit_due = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return nudger_exit_ || deliver_interrupt_ || !task_running_;
  };
  for (;;) {
    bool interrupt = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&work_runs));
      if (nudger_exit_) break;
      mu_.AwaitWithTimeout(absl::Condition(&visit_due), interval);
      if (nudger_exit_) break;
      if (!task_running_) continue;
      // A sleeping annex thread takes the interrupt itself (SleepCallback).
      interrupt = deliver_interrupt_ && !sleeping_;
      deliver_interrupt_ = false;
      const auto since =
          std::chrono::steady_clock::now().time_since_epoch() -
          std::chrono::steady_clock::duration(last_yield_.load());
      if (!interrupt && since < stale) continue;  // the trace hook yields
      // No visit while tracemalloc traces: creating the visit's thread
      // state without the GIL is not safe then (version.h). The trace hook
      // still yields, and delivers interrupts to Python code that emits
      // trace events.
      if (TracemallocTracingNoGil() ||
          annex_interpreter_creation_would_deadlock()) {
        continue;
      }
      in_annex_ = true;
    }
    EnterAnnexBriefly(interrupt);
    absl::MutexLock lock(&mu_);
    in_annex_ = false;
  }
}

void AnnexRuntime::EnterAnnexBriefly(bool interrupt) {
  // A thread state of the annex, alive only for this visit: waiting for the
  // GIL with it makes CPython set the annex's drop request, which its eval
  // loop checks even in loops that emit no trace events. On the way the
  // GIL also reaches waiting target threads (the annex must hand it over
  // before it may take it back).
  PyThreadState* ts = PyThreadState_New(annex_interp_);
  if (ts == nullptr) return;
  PyEval_RestoreThread(ts);
  AnnexNoteOwnGilTake();  // the watchdog tells this take from the target's
  if (interrupt) {
    // Only while the flag is still pending: the trace hook (or a sleep)
    // may have taken it meanwhile, and each request raises once. The
    // annex thread cannot take it now: this visit holds the GIL.
    absl::MutexLock lock(&mu_);
    if (task_running_ && !sleeping_ && interrupt_.exchange(false)) {
      async_pending_ = true;
      PyThreadState_SetAsyncExc(annex_thread_ident_, PyExc_KeyboardInterrupt);
    }
  }
  yields_.fetch_add(1, std::memory_order_relaxed);
  last_yield_.store(
      std::chrono::steady_clock::now().time_since_epoch().count());
  PyThreadState_Clear(ts);
  PyThreadState_DeleteCurrent();
}

int AnnexRuntime::YieldHook(PyObject* self, PyFrameObject* frame, int what,
                            PyObject* arg) {
  auto* rt = static_cast<AnnexRuntime*>(PyCapsule_GetPointer(self, nullptr));
  if (rt == nullptr) {
    PyErr_Clear();
    return 0;
  }
  // Python code in the annex may have let go of the GIL and taken it back
  // inside CPython (a sleep, I/O): note the take for the watchdog.
  AnnexNoteOwnGilTake();
  if (rt->interrupt_.exchange(false)) {
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    return -1;
  }
  auto now = std::chrono::steady_clock::now();
  if (now - std::chrono::steady_clock::time_point(
                std::chrono::steady_clock::duration(rt->last_yield_.load())) <
      rt->options_.yield_interval) {
    return 0;
  }
  // Hand the GIL to the target: nothing in CPython 3.11/3.12 asks the annex's
  // eval loop to drop it for a waiter of another interpreter.
  annex_swap_thread_state(rt->ts_.target_ts);
  PyEval_SaveThread();
  struct timespec pause;
  pause.tv_sec = 0;
  pause.tv_nsec =
      static_cast<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                            rt->options_.yield_pause)
                            .count());
  nanosleep(&pause, nullptr);
  rt->handoff_.Acquire(rt->ts_.target_ts);
  annex_swap_thread_state(rt->ts_.annex_ts);
  rt->yields_.fetch_add(1, std::memory_order_relaxed);
  rt->last_yield_.store(
      std::chrono::steady_clock::now().time_since_epoch().count());
  return 0;
}

}  // namespace annex::python
