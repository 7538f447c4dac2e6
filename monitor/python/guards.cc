// RAII scopes for GIL and thread-state transitions.
#include "monitor/python/guards.h"

#include "monitor/python/cpython_peek.h"
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

std::optional<TargetMark> MarkTarget(const ThreadStates& ts) {
  if (ts.target_runs == nullptr || ts.target_ts == nullptr) {
    return std::nullopt;
  }
  AnnexPeekGil gil;
  // Read with the GIL held: no take of it can be under way, so the number
  // is exact.
  if (AnnexPeekGilState(PyThreadState_GetInterpreter(ts.target_ts), &gil) !=
          0 ||
      !gil.locked) {
    return std::nullopt;
  }
  return TargetMark{gil.switch_number, ts.target_runs->load()};
}

bool TargetUnchanged(const TargetMark& then, const TargetMark& now) {
  return then.runs == now.runs &&
         AnnexPeekSwitchesAllOwn(then.switches, now.switches) == 1;
}

ScopedTargetSwap::ScopedTargetSwap(const ThreadStates& ts, Use use)
    : previous_(CurrentThreadStateUnchecked()),
      swapped_(previous_ != ts.target_ts),
      runs_(use == Use::kRun ? ts.target_runs : nullptr) {
  if (swapped_) annex_swap_thread_state(ts.target_ts);
  if (runs_ != nullptr) runs_->fetch_add(1);
}

ScopedTargetSwap::~ScopedTargetSwap() {
  if (runs_ != nullptr) runs_->fetch_add(1);
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
