// Stopping a heap question early: its pause limit and its cancellation.
//
// A heap question holds the target from start to end (GIL held, no target
// thread runs; heap_engine.h). Its long loops (the walk, path search and
// enumeration, dominator trees, classification) poll a QuestionStop; once
// the question has held the target past its pause limit, or its asker
// cancelled it (a console client's Ctrl-C or disconnect), every poll says
// stop, the loops return, and the question fails with status() and lets
// the target run again. Nothing half-done is kept.
//
//   QuestionStop::Limits limits;
//   limits.pause_limit = absl::Seconds(5);
//   limits.cancelled = [&] { return runtime.TakeInterrupt(); };
//   engine.set_question_limits(limits);   // every later question
//   ...
//   for (...) { if (stop->Poll()) return stop->status(); ... }
//
// Poll() costs a counter increment; the clock and the cancel predicate are
// read once every kStride polls (a few microseconds of loop work).
#pragma once

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace annex::heap {

class QuestionStop {
 public:
  struct Limits {
    // How long one question may hold the target (InfiniteDuration: no
    // limit).
    absl::Duration pause_limit = absl::InfiniteDuration();
    // Polled: true when the asker gave up (may be empty). Must be cheap
    // and callable on the question's thread with the GIL held.
    std::function<bool()> cancelled;
    // Named in the error, e.g. "hp.pause_limit": how to change the limit.
    const char* limit_name = "the pause limit";
  };

  static constexpr uint32_t kStride = 4096;

  // Starts a question's clock under `limits` (copied). Where: the
  // question's thread.
  void Begin(const Limits& limits) {
    limits_ = limits;
    start_ = absl::Now();
    deadline_ = limits.pause_limit == absl::InfiniteDuration()
                    ? absl::InfiniteFuture()
                    : start_ + limits.pause_limit;
    calls_ = 0;
    why_ = Why::kNone;
  }
  // Ends it: Poll() says go on again until the next Begin().
  void End() { why_ = Why::kNone; }

  // True once the question must stop; stays true until End()/Begin().
  // Where: the question's thread.
  bool Poll() {
    if (why_ != Why::kNone) return true;
    if (++calls_ % kStride != 0) return false;
    return Check();
  }
  // Poll() without the stride: reads the clock now (between phases).
  bool Check() {
    if (why_ != Why::kNone) return true;
    if (limits_.cancelled && limits_.cancelled()) {
      why_ = Why::kCancelled;
    } else if (absl::Now() > deadline_) {
      why_ = Why::kPauseLimit;
    }
    return why_ != Why::kNone;
  }
  bool stopped() const { return why_ != Why::kNone; }

  // Why the question stopped: DeadlineExceeded saying how long it held the
  // target, the limit and what to do; Cancelled; OK when not stopped.
  absl::Status status() const;

 private:
  enum class Why { kNone, kPauseLimit, kCancelled };
  Limits limits_;
  absl::Time start_;
  absl::Time deadline_ = absl::InfiniteFuture();
  uint32_t calls_ = 0;
  Why why_ = Why::kNone;
};

}  // namespace annex::heap
