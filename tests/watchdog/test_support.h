// Test support for the watchdog tests: a tiny extension module `_wdtest`
// installed in the target, and a recorder that collects watchdog events.
//
//   InstallTestModule();                       // GIL held, target current
//   EventRecorder recorder;
//   options.on_event = recorder.Callback();    // releases _wdtest loops too
//   RunTargetCode("import _wdtest\nwhile not _wdtest.released(): pass\n");
//
// No wait here has a deadline of its own, which a loaded machine could pass:
// each waits for its condition, and a build that never brings it hangs the
// test until Bazel's test timeout (the size in BUILD). A wait still waiting
// after 10 s says so on stderr once, and goes on waiting.
#pragma once

#include <Python.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "monitor/watchdog/watchdog.h"

namespace annex::watchdog::testing {

// Installs `_wdtest` in the current interpreter's sys.modules: released() is
// True once Release() was called; gate() likewise with OpenGate();
// spin_in_c() spins in C, holding the GIL, until released; wait_released()
// blocks with the GIL released (as time.sleep does) until released. Loops on
// them end only when the test (or a watchdog event's callback) releases
// them, so a test runs each such loop within one RunTargetCode call (or
// joins the thread that runs it before any ASSERT_*): a loop left running
// would keep the GIL through the teardown. Re-arms both flags. Where: any
// thread, GIL held, the interpreter that will import it current.
void InstallTestModule();

// Lets _wdtest loops end. Where: any thread, no GIL needed.
void Release();

// Makes _wdtest.gate() True (a second flag, independent of Release(); also
// re-armed by InstallTestModule). Where: any thread, no GIL needed.
void OpenGate();

// Collects events from the watchdog thread.
class EventRecorder {
 public:
  // A callback for Options::on_event that records the event and, when
  // `release` is set, calls Release(). Valid while the recorder lives.
  std::function<void(const Event&)> Callback(bool release = true);

  // Waits (without the GIL: releases it if the caller holds it) until at
  // least `count` events arrived, however long that takes; returns the
  // events. Where: any thread.
  std::vector<Event> WaitFor(size_t count) ABSL_LOCKS_EXCLUDED(mu_);

  std::vector<Event> events() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
};

// Polls `done` every 10 ms until it is true, however long that takes, with
// the GIL released if the caller holds it (so the annex can walk
// meanwhile). `what` names the condition in the line printed after 10 s.
// Where: the main thread, or a thread without the GIL before any
// sub-interpreter existed (after that PyGILState_Check() says yes on every
// thread, and one without a thread state must not release).
void WaitUntil(const std::function<bool()>& done, const char* what);

// Sleeps for `window` with the GIL released if the caller holds it: for
// tests that check that something does NOT happen while the target is
// outside Python. `then`, if given, runs after the sleep and before the
// GIL is taken back: a thread holding the GIL counts as inside Python, so
// what the watchdog reports of "outside" is read there. Where: as
// WaitUntil.
void SleepWithoutGil(absl::Duration window,
                     const std::function<void()>& then = nullptr);

// Runs `run` (target code that loops until _wdtest.gate() is true, e.g.
// through RunTargetCode) while a thread opens the gate once `ready` holds,
// polled every 5 ms for however long a loaded machine takes (the poller
// gives up once `run` returned); returns what `run` returned. For a
// condition that needs the target running Python (heartbeats are served
// only then), where WaitUntil, which blocks the calling thread, cannot
// be used. Where: the thread `run` needs; `ready` runs on another thread
// and must not need the GIL.
bool RunUntilGateOpens(const std::function<bool()>& ready,
                       const std::function<bool()>& run);

}  // namespace annex::watchdog::testing
