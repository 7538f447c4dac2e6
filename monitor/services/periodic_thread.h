// A monitor thread that has the annex do work now and then (a heap walk
// through AnnexRuntime::Run), and the start and stop such a thread needs.
//
// The thread's work needs the GIL (the annex gets it through the hand-off),
// so joining it while holding the GIL would deadlock with a walk in flight:
// Stop() releases the GIL meanwhile when the caller holds it. This object
// owns the mutex that guards its stop flag, and the owner guards the state
// it shares with the thread by the same mutex (`ABSL_GUARDED_BY(
// thread_.mu())`, checked by clang), so the thread's loop waits for "time,
// stop or the owner's request" in one wait:
//
//   PeriodicThread thread_;
//   int requests_ ABSL_GUARDED_BY(thread_.mu()) = 0;
//   ...
//   thread_.Start("annex-recorder", [this] { ThreadMain(); });
//   // in ThreadMain, holding thread_.mu():
//   while (!thread_.stopping()) { thread_.WaitUntil(next, ...); ... }
//   ...
//   thread_.Stop();   // before the runtime stops
#pragma once

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace annex::services {

class PeriodicThread {
 public:
  // Where: any thread.
  PeriodicThread() = default;
  // Stops. Where: as Stop().
  ~PeriodicThread();
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  // The mutex that guards stopping() and the owner's state shared with the
  // thread. Where: any thread.
  absl::Mutex& mu() const ABSL_LOCK_RETURNED(mu_) { return mu_; }

  // Runs `body` on a new thread named `name` (at most 15 characters), unless
  // one was started and not yet joined. Where: any thread, mu() not held.
  void Start(const char* name, std::function<void()> body)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Asks the thread to stop, wakes its wait and joins the thread (work in
  // flight finishes first; a caller holding the GIL releases it
  // meanwhile). Where: any thread but the annex's and the thread's own,
  // mu() not held.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // True before the first Start() and from Stop() until the next Start():
  // the body's loop ends when it turns true. Where: any thread, mu() held.
  bool stopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Waits, releasing mu() meanwhile, until `deadline` passes
  // (absl::InfiniteFuture(): no deadline), Stop() is called or `wake()` is
  // true (a condition over state mu() guards, evaluated with mu() held;
  // none: only time and Stop()). Returns at once when one of them already
  // holds. Where: the thread's own body, mu() held.
  void WaitUntil(absl::Time deadline,
                 const std::function<bool()>& wake = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::thread thread_;  // started and joined with mu_ not held
  bool stop_ ABSL_GUARDED_BY(mu_) = true;
};

}  // namespace annex::services
