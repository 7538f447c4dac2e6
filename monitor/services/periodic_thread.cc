// A monitor thread whose stop is safe with the GIL held: see
// periodic_thread.h.
#include "monitor/services/periodic_thread.h"

#include <Python.h>
#include <pthread.h>

#include <utility>

#include "absl/time/clock.h"
#include "monitor/python/guards.h"

namespace annex::services {

PeriodicThread::PeriodicThread(std::mutex* mu, std::condition_variable* cv)
    : mu_(mu), cv_(cv) {}

PeriodicThread::~PeriodicThread() { Stop(); }

void PeriodicThread::Start(const char* name, std::function<void()> body) {
  std::lock_guard<std::mutex> lock(*mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([name, body = std::move(body)] {
    pthread_setname_np(pthread_self(), name);
    body();
  });
}

void PeriodicThread::Stop() {
  {
    std::lock_guard<std::mutex> lock(*mu_);
    if (!thread_.joinable()) return;
    stop_ = true;
  }
  cv_->notify_all();
  // Work in flight needs the GIL: never hold it while joining.
  python::ScopedGilReleaseIfHeld release;
  thread_.join();
}

bool PeriodicThread::stopping() const { return stop_; }

void PeriodicThread::WaitUntil(std::unique_lock<std::mutex>& lock,
                               absl::Time deadline,
                               const std::function<bool()>& wake) {
  auto woken = [&] { return stop_ || (wake && wake()); };
  if (deadline == absl::InfiniteFuture()) {
    cv_->wait(lock, woken);  // (a chrono deadline would overflow)
  } else {
    cv_->wait_for(lock, absl::ToChronoNanoseconds(deadline - absl::Now()),
                  woken);
  }
}

}  // namespace annex::services
