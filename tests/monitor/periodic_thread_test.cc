// PeriodicThread: Stop() called with the GIL held lets work in flight that
// needs the GIL finish, and WaitUntil wakes for its deadline, an owner's
// request and Stop().
#include "monitor/services/periodic_thread.h"

#include <Python.h>

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/python_main.h"

namespace annex::services {
namespace {

// The owner's side: its mutex, condition variable and shared state.
struct Owner {
  std::mutex mu;
  std::condition_variable cv;
  int requests ABSL_GUARDED_BY(mu) = 0;
  int served ABSL_GUARDED_BY(mu) = 0;
  int ticks ABSL_GUARDED_BY(mu) = 0;
  bool in_flight ABSL_GUARDED_BY(mu) = false;
  PeriodicThread thread{&mu, &cv};
};

TEST(PeriodicThreadTest, StopWithTheGilHeldLetsWorkThatNeedsItFinish) {
  ASSERT_TRUE(PyGILState_Check());  // python_main: tests hold the GIL
  Owner o;
  o.thread.Start("annex-test", [&o] {
    std::unique_lock<std::mutex> lock(o.mu);
    while (!o.thread.stopping()) {
      if (o.requests == o.served) {
        o.thread.WaitUntil(lock, absl::InfiniteFuture(),
                           [&o] { return o.requests > o.served; });
        continue;
      }
      o.in_flight = true;
      o.cv.notify_all();
      lock.unlock();
      // Work that needs the GIL, which the test's thread holds.
      PyGILState_STATE gil = PyGILState_Ensure();
      PyObject* n = PyLong_FromLong(42);
      Py_XDECREF(n);
      PyGILState_Release(gil);
      lock.lock();
      ++o.served;
    }
  });
  {
    std::unique_lock<std::mutex> lock(o.mu);
    ++o.requests;
    o.cv.notify_all();
    o.cv.wait(lock, [&o] { return o.in_flight; });
  }
  o.thread.Stop();  // would deadlock if it joined holding the GIL
  EXPECT_TRUE(PyGILState_Check());
  std::lock_guard<std::mutex> lock(o.mu);
  EXPECT_EQ(o.served, 1);
  EXPECT_TRUE(o.thread.stopping());
}

TEST(PeriodicThreadTest, WaitUntilWakesForItsDeadlineAndStop) {
  Owner o;
  {
    std::lock_guard<std::mutex> lock(o.mu);
    EXPECT_TRUE(o.thread.stopping());  // not started yet
  }
  o.thread.Start("annex-test", [&o] {
    std::unique_lock<std::mutex> lock(o.mu);
    absl::Time next = absl::Now();
    while (!o.thread.stopping()) {
      if (absl::Now() < next) {
        o.thread.WaitUntil(lock, next);
        continue;
      }
      ++o.ticks;
      o.cv.notify_all();
      // After three ticks, no deadline: only Stop() ends the wait.
      next = o.ticks < 3 ? absl::Now() + absl::Milliseconds(1)
                         : absl::InfiniteFuture();
    }
  });
  o.thread.Start("annex-test", [] { ADD_FAILURE() << "started twice"; });
  {
    std::unique_lock<std::mutex> lock(o.mu);
    EXPECT_FALSE(o.thread.stopping());
    o.cv.wait(lock, [&o] { return o.ticks >= 3; });
  }
  o.thread.Stop();
  std::lock_guard<std::mutex> lock(o.mu);
  EXPECT_EQ(o.ticks, 3);
  EXPECT_TRUE(o.thread.stopping());
}

}  // namespace
}  // namespace annex::services
