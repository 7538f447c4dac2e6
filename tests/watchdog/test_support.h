// Test support for the watchdog tests: a tiny extension module `_wdtest`
// installed in the target, and a recorder that collects watchdog events.
//
//   InstallTestModule();                       // GIL held, target current
//   EventRecorder recorder;
//   options.on_event = recorder.Callback();    // releases _wdtest loops too
//   RunTargetCode("import _wdtest\nwhile not _wdtest.released(): pass\n");
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

// Installs `_wdtest` in sys.modules: released() is True once Release() was
// called or the safety deadline passed; gate() likewise with OpenGate();
// spin_in_c() spins in C, holding the GIL, until released. Re-arms the release
// flag and sets the deadline to now + `safety`. Where: main thread, GIL held,
// target current.
void InstallTestModule(absl::Duration safety = absl::Seconds(20));

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
  // least `count` events arrived or `timeout` passed; returns the events.
  std::vector<Event> WaitFor(size_t count, absl::Duration timeout)
      ABSL_LOCKS_EXCLUDED(mu_);

  std::vector<Event> events() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
};

// Polls `done` every 10 ms until it is true or `timeout` passed, with the
// GIL released if the caller holds it (so the annex can walk meanwhile).
// Returns the last value of `done`. Where: any thread.
bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout);

}  // namespace annex::watchdog::testing
