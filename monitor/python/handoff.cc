// GIL hand-over from the target's main thread to the annex thread.
#include "monitor/python/handoff.h"

#include <unistd.h>

#include <atomic>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "monitor/python/cpython_peek.h"
#include "monitor/python/version.h"

namespace annex::python {

struct GilHandoff::State {
  // The process whose threads use this state. After fork() a child has a
  // copy of it (its mutex possibly held by a thread that does not exist
  // there) and none of those threads: callbacks do nothing in the child.
  const pid_t owner = getpid();
  absl::Mutex mu;
  // Annex-side threads inside Acquire().
  int waiters ABSL_GUARDED_BY(mu) = 0;
  // A callback is in the target's pending-call queue.
  bool queued ABSL_GUARDED_BY(mu) = false;
  std::atomic<long> hand_overs{0};
};

namespace {

// The longest the target's main thread stays out of the GIL for one request.
// A safety net only: the waiter normally signals within microseconds of
// getting the GIL, and a late callback does not wait at all.
constexpr absl::Duration kMaxHandOverWait = absl::Milliseconds(100);

// Pending call. Where: the target's main thread, GIL held, target current.
int HandOver(void* arg) {
  std::unique_ptr<std::shared_ptr<GilHandoff::State>> holder(
      static_cast<std::shared_ptr<GilHandoff::State>*>(arg));
  GilHandoff::State& st = **holder;
  if (getpid() != st.owner) return 0;  // a forked child: never touch mu
  {
    absl::MutexLock lock(&st.mu);
    st.queued = false;
    if (st.waiters == 0) return 0;  // late: nothing to do, cost nothing
  }
  st.hand_overs.fetch_add(1, std::memory_order_relaxed);
  PyThreadState* saved = PyEval_SaveThread();
  {
    absl::MutexLock lock(&st.mu);
    auto no_waiter = [&st]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.mu) {
      return st.waiters == 0;
    };
    st.mu.AwaitWithTimeout(absl::Condition(&no_waiter), kMaxHandOverWait);
  }
  PyEval_RestoreThread(saved);
  return 0;
}

}  // namespace

GilHandoff::GilHandoff() : state_(std::make_shared<State>()) {}

GilHandoff::~GilHandoff() = default;

long GilHandoff::HandOvers() const {
  return state_->hand_overs.load(std::memory_order_relaxed);
}

void GilHandoff::Acquire(PyThreadState* target_ts) {
  bool enqueue = false;
  {
    absl::MutexLock lock(&state_->mu);
    ++state_->waiters;
    if (!state_->queued) {
      state_->queued = true;
      enqueue = true;
    }
  }
  if (enqueue) {
    // The callback keeps the state alive however late it runs.
    auto* holder = new std::shared_ptr<State>(state_);
    // Needs neither the GIL nor a thread state; fails only when the queue
    // is full, and then we simply wait without it.
    if (AddPendingCallToMain(&HandOver, holder) != 0) {
      delete holder;
      absl::MutexLock lock(&state_->mu);
      state_->queued = false;
    }
  }
  PyEval_RestoreThread(target_ts);
  AnnexNoteOwnGilTake();  // the watchdog tells this take from the target's
  absl::MutexLock lock(&state_->mu);
  --state_->waiters;
}

}  // namespace annex::python
