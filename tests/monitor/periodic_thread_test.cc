// PeriodicThread: Stop() called with the GIL held lets work in flight that
// needs the GIL finish, and WaitUntil wakes for its deadline, an owner's
// request and Stop().
#include "monitor/services/periodic_thread.h"

#include <Python.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/python_main.h"

namespace annex::services {
namespace {

// The owner's side: the thread, whose mutex guards the shared state.
struct Owner {
  PeriodicThread thread;
  int requests ABSL_GUARDED_BY(thread.mu()) = 0;
  int served ABSL_GUARDED_BY(thread.mu()) = 0;
  int ticks ABSL_GUARDED_BY(thread.mu()) = 0;
  bool in_flight ABSL_GUARDED_BY(thread.mu()) = false;
};

TEST(PeriodicThreadTest, StopWithTheGilHeldLetsWorkThatNeedsItFinish) {
  ASSERT_TRUE(PyGILState_Check());  // python_main: tests hold the GIL
  Owner o;
  o.thread.Start("annex-test", [&o] {
    o.thread.mu().Lock();
    while (!o.thread.stopping()) {
      if (o.requests == o.served) {
        o.thread.WaitUntil(absl::InfiniteFuture(),
                           [&o]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(o.thread.mu()) {
                             return o.requests > o.served;
                           });
        continue;
      }
      o.in_flight = true;
      o.thread.mu().Unlock();
      // Work that needs the GIL, which the test's thread holds.
      PyGILState_STATE gil = PyGILState_Ensure();
      PyObject* n = PyLong_FromLong(42);
      Py_XDECREF(n);
      PyGILState_Release(gil);
      o.thread.mu().Lock();
      ++o.served;
    }
    o.thread.mu().Unlock();
  });
  {
    absl::MutexLock lock(&o.thread.mu());
    ++o.requests;
    o.thread.mu().Await(absl::Condition(&o.in_flight));
  }
  o.thread.Stop();  // would deadlock if it joined holding the GIL
  EXPECT_TRUE(PyGILState_Check());
  absl::MutexLock lock(&o.thread.mu());
  EXPECT_EQ(o.served, 1);
  EXPECT_TRUE(o.thread.stopping());
}

TEST(PeriodicThreadTest, WaitUntilWakesForItsDeadlineAndStop) {
  Owner o;
  {
    absl::MutexLock lock(&o.thread.mu());
    EXPECT_TRUE(o.thread.stopping());  // not started yet
  }
  o.thread.Start("annex-test", [&o] {
    absl::MutexLock lock(&o.thread.mu());
    absl::Time next = absl::Now();
    while (!o.thread.stopping()) {
      if (absl::Now() < next) {
        o.thread.WaitUntil(next);
        continue;
      }
      ++o.ticks;
      // After three ticks, no deadline: only Stop() ends the wait.
      next = o.ticks < 3 ? absl::Now() + absl::Milliseconds(1)
                         : absl::InfiniteFuture();
    }
  });
  o.thread.Start("annex-test", [] { ADD_FAILURE() << "started twice"; });
  {
    absl::MutexLock lock(&o.thread.mu());
    EXPECT_FALSE(o.thread.stopping());
    auto three = [&o]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(o.thread.mu()) {
      return o.ticks >= 3;
    };
    o.thread.mu().Await(absl::Condition(&three));
  }
  o.thread.Stop();
  absl::MutexLock lock(&o.thread.mu());
  EXPECT_EQ(o.ticks, 3);
  EXPECT_TRUE(o.thread.stopping());
}

}  // namespace
}  // namespace annex::services
