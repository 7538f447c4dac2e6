// A monitor thread that has the annex do work now and then (a heap walk
// through AnnexRuntime::Run), and the start and stop such a thread needs.
//
// The thread's work needs the GIL (the annex gets it through the hand-off),
// so joining it while holding the GIL would deadlock with a walk in flight:
// Stop() releases the GIL meanwhile when the caller holds it. The owner keeps
// its own mutex and condition variable for the state it shares with the
// thread; this object's stop flag is guarded by the same mutex, so the
// thread's loop waits for "time, stop or the owner's request" in one wait.
//
//   std::mutex mu_;
//   std::condition_variable cv_;
//   PeriodicThread thread_{&mu_, &cv_};   // after mu_ and cv_
//   ...
//   thread_.Start("annex-recorder", [this] { ThreadMain(); });
//   // in ThreadMain, holding mu_:
//   while (!thread_.stopping()) { thread_.WaitUntil(lock, next, ...); ... }
//   ...
//   thread_.Stop();   // before the runtime stops
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace annex::services {

class PeriodicThread {
 public:
  // `mu` guards stopping() along with the owner's shared state; Stop()
  // notifies `cv`, which the owner waits on with `mu`. Both must outlive
  // this object. Where: any thread.
  PeriodicThread(std::mutex* mu, std::condition_variable* cv);
  // Stops. Where: as Stop().
  ~PeriodicThread();
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  // Runs `body` on a new thread named `name` (at most 15 characters), unless
  // one was started and not yet joined. Where: any thread, `mu` not held.
  void Start(const char* name, std::function<void()> body);
  // Asks the thread to stop, wakes `cv`'s waiters and joins the thread (work
  // in flight finishes first; a caller holding the GIL releases it
  // meanwhile). Where: any thread but the annex's and the thread's own,
  // `mu` not held.
  void Stop();

  // True before the first Start() and from Stop() until the next Start():
  // the body's loop ends when it turns true. Where: any thread, `mu` held.
  bool stopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(*mu_);

  // Waits on `cv` until `deadline` passes (absl::InfiniteFuture(): no
  // deadline), Stop() is called or `wake()` is true (checked with `mu`
  // held; none: only time and Stop()). Returns at once when one of them
  // already holds. Where: the thread's own body, `lock` holding `mu`.
  void WaitUntil(std::unique_lock<std::mutex>& lock, absl::Time deadline,
                 const std::function<bool()>& wake = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(*mu_);

 private:
  std::mutex* const mu_;
  std::condition_variable* const cv_;
  std::thread thread_;  // started and joined with `mu_` not held
  bool stop_ ABSL_GUARDED_BY(*mu_) = true;
};

}  // namespace annex::services
