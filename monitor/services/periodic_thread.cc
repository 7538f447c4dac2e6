// A monitor thread whose stop is safe with the GIL held: see
// periodic_thread.h.
#include "monitor/services/periodic_thread.h"

#include <Python.h>
#include <pthread.h>

#include <utility>

#include "absl/time/clock.h"
#include "monitor/python/guards.h"

namespace annex::services {

PeriodicThread::~PeriodicThread() { Stop(); }

void PeriodicThread::Start(const char* name, std::function<void()> body) {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([name, body = std::move(body)] {
    pthread_setname_np(pthread_self(), name);
    body();
  });
}

void PeriodicThread::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!thread_.joinable()) return;
    stop_ = true;  // the unlock wakes WaitUntil
  }
  // Work in flight needs the GIL: never hold it while joining.
  python::ScopedGilReleaseIfHeld release;
  thread_.join();
}

bool PeriodicThread::stopping() const { return stop_; }

void PeriodicThread::WaitUntil(absl::Time deadline,
                               const std::function<bool()>& wake) {
  auto woken = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || (wake && wake());
  };
  if (deadline == absl::InfiniteFuture()) {
    mu_.Await(absl::Condition(&woken));
  } else {
    mu_.AwaitWithDeadline(absl::Condition(&woken), deadline);
  }
}

}  // namespace annex::services
