// How a test's wait says what it waits for. Tests wait for their
// condition, never for a deadline a loaded machine could pass: a hang ends
// at Bazel's test timeout (the test's size in BUILD). So that the log of
// such a hang says what it waited for, a wait that has waited
// kSayStillWaitingAfter says so once on stderr, and goes on waiting.
//
//   StillWaiting still;
//   while (!done()) {
//     still.Check([&] { return absl::StrCat(n, " sessions"); });
//     absl::SleepFor(absl::Milliseconds(5));
//   }
//   AwaitSaying(mu, absl::Condition(&arrived), [&] { return "events"; });
#pragma once

#include <cstdio>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace annex::testing {

inline constexpr absl::Duration kSayStillWaitingAfter = absl::Seconds(10);

// "still waiting for <what> after 10s" on stderr. Where: any thread.
inline void SayStillWaiting(const std::string& what) {
  std::fprintf(stderr, "still waiting for %s after %s\n", what.c_str(),
               absl::FormatDuration(kSayStillWaitingAfter).c_str());
}

// For a polling wait: Check() in each round says, once the wait has taken
// kSayStillWaitingAfter, what it still waits for (`what` is called only
// then). Where: the waiting thread.
class StillWaiting {
 public:
  StillWaiting() : say_at_(absl::Now() + kSayStillWaitingAfter) {}
  void Check(const std::function<std::string()>& what) {
    if (said_ || absl::Now() <= say_at_) return;
    said_ = true;
    SayStillWaiting(what());
  }

 private:
  absl::Time say_at_;
  bool said_ = false;
};

// mu.Await(cond), saying what it still waits for (`what`, called with `mu`
// held) once kSayStillWaitingAfter has passed. Where: any thread, `mu`
// held.
inline void AwaitSaying(absl::Mutex& mu, const absl::Condition& cond,
                        const std::function<std::string()>& what)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  if (mu.AwaitWithTimeout(cond, kSayStillWaitingAfter)) return;
  SayStillWaiting(what());
  mu.Await(cond);
}

}  // namespace annex::testing
