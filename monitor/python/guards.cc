// RAII scopes for GIL and thread-state transitions.
#include "monitor/python/guards.h"

#include "monitor/python/gilstate_bind.h"
#include "monitor/python/handoff.h"
#include "monitor/python/version.h"

namespace annex::python {

ScopedGilRelease::ScopedGilRelease() : saved_(PyEval_SaveThread()) {}

ScopedGilRelease::~ScopedGilRelease() { PyEval_RestoreThread(saved_); }

ScopedGilReleaseIfHeld::ScopedGilReleaseIfHeld()
    : saved_(ThisThreadHoldsGil() ? PyEval_SaveThread() : nullptr) {}

ScopedGilReleaseIfHeld::~ScopedGilReleaseIfHeld() {
  if (saved_ != nullptr) PyEval_RestoreThread(saved_);
}

ScopedTargetSwap::ScopedTargetSwap(const ThreadStates& ts)
    : previous_(CurrentThreadStateUnchecked()),
      swapped_(previous_ != ts.target_ts) {
  if (swapped_) annex_swap_thread_state(ts.target_ts);
}

ScopedTargetSwap::~ScopedTargetSwap() {
  if (swapped_) annex_swap_thread_state(previous_);
}

ScopedAnnexSwap::ScopedAnnexSwap(const ThreadStates& ts)
    : previous_(CurrentThreadStateUnchecked()),
      swapped_(previous_ != ts.annex_ts) {
  if (swapped_) annex_swap_thread_state(ts.annex_ts);
}

ScopedAnnexSwap::~ScopedAnnexSwap() {
  if (swapped_) annex_swap_thread_state(previous_);
}

ScopedAnnexEntry::ScopedAnnexEntry(GilHandoff& handoff, const ThreadStates& ts)
    : ts_(ts) {
  handoff.Acquire(ts.target_ts);
  annex_swap_thread_state(ts.annex_ts);
}

ScopedAnnexEntry::~ScopedAnnexEntry() {
  annex_swap_thread_state(ts_.target_ts);
  PyEval_SaveThread();
}

ScopedErrorPreserver::ScopedErrorPreserver() {
  PyErr_Fetch(&type_, &value_, &traceback_);
}

ScopedErrorPreserver::~ScopedErrorPreserver() {
  PyErr_Restore(type_, value_, traceback_);
}

}  // namespace annex::python
