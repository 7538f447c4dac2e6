// Taking the GIL from the annex thread while the target is busy.
//
// On 3.11 and 3.12 a thread waiting for the GIL sets the drop request only on
// its own interpreter, and on 3.12 even a waiter with a target thread state
// is not served while the target's *main* thread runs a CPU-bound loop
// (docs/design.md rule 2 has the measured table). GilHandoff therefore
// schedules a pending call in the target: it runs on the target's main thread
// at its next bytecode boundary, releases the GIL there and waits (on a
// condition variable, no spinning) until the annex holds it. The waiter itself
// waits with its target thread state, which covers busy worker threads.
//
//   GilHandoff handoff;
//   handoff.Acquire(target_ts);   // GIL held, target_ts current
//
// The pending callback costs nothing when it runs late (the annex no longer
// waits): it returns at once. At most one callback is queued at a time.
#pragma once

#include <Python.h>

#include <memory>

namespace annex::python {

class GilHandoff {
 public:
  GilHandoff();
  ~GilHandoff();
  GilHandoff(const GilHandoff&) = delete;
  GilHandoff& operator=(const GilHandoff&) = delete;

  // Blocks until this thread holds the GIL with `target_ts` current.
  // Where: any thread that owns `target_ts` (a thread state of the main
  // interpreter), GIL not held, no thread state current. Thread-safe.
  void Acquire(PyThreadState* target_ts);

  // How many hand-over callbacks ran and actually released the GIL. For
  // tests and benchmarks. Where: any thread.
  long HandOvers() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace annex::python
