// Stack dumps of every thread of the target, taken without the GIL and
// written with write(2) to a file descriptor opened in advance (the pattern
// of faulthandler's watchdog, docs/design.md rule 6), and the copy of the
// Python thread names they show, the one part made with the GIL.
//
//   WriteAllThreads(fd, PyInterpreterState_Main(), holder, 100);
#pragma once

#include <Python.h>

#include <string>
#include <vector>

namespace annex::watchdog::internal {

// Holds CPython's thread-list lock for a scope, so that the thread states
// confirmed live inside it cannot be freed while they are read. Gives up
// after `timeout_us` (then locked() is false). Where: a thread that does not
// hold the GIL (the watchdog thread).
class ScopedThreadListLock {
 public:
  explicit ScopedThreadListLock(int timeout_us);
  ~ScopedThreadListLock();
  ScopedThreadListLock(const ScopedThreadListLock&) = delete;
  ScopedThreadListLock& operator=(const ScopedThreadListLock&) = delete;
  bool locked() const { return locked_; }

 private:
  bool locked_;
};

// Identity of a target thread, read without the GIL.
struct ThreadIds {
  unsigned long ident = 0;      // threading.get_ident()
  unsigned long native_id = 0;  // Linux TID
  std::string name;             // the OS thread name (/proc/self/task/TID/comm)
};

// A Python (threading) thread name copied while the GIL was held
// (AnnexPeekPythonThreadNames): it belongs to the thread with both ids.
struct PythonThreadName {
  unsigned long ident = 0;
  unsigned long native_id = 0;
  std::string name;  // escaped as in dumps
};

// Copies threading's thread names (AnnexPeekPythonThreadNames: read in
// place, nothing of the target runs and no object is created; escaped as
// the dumps escape names), each with its ident and the native id of the
// main interpreter's thread state of that ident (0 when none), so that a
// copy never names a later thread that reuses the ident. Empty when
// threading is not imported or not as expected, and while Python
// finalizes. The one copy both the watchdog (its heartbeat) and the
// console (after each command) make. Where: GIL held, the target's
// (main) interpreter current, never the annex's (docs/design.md rule 4):
// the target's main thread at a bytecode boundary (the watchdog), or the
// annex thread inside python::ScopedTargetSwap (the console).
std::vector<PythonThreadName> CopyPythonThreadNames();

// Reads the ids and OS name of `ts`. Where: any thread, no GIL; `ts` live.
ThreadIds ReadThreadIds(PyThreadState* ts);

// The name in `names` of the thread with these ids, "" when none (a
// thread that threading does not know, or one that started after the
// copy). Where: any thread.
std::string PythonNameOf(const std::vector<PythonThreadName>& names,
                         unsigned long ident, unsigned long native_id);

// Writes, for each thread of `interp` (newest first, as CPython lists them),
// a header line with ident, native id, OS name, Python name (from
// `python_names`, when it has one), and whether it is the main thread or
// holds the GIL, then its Python stack, innermost frame first.
// `gil_holder` may be null. Threads whose ident is in `hidden` (the annex's
// own thread states in the target) are left out; a last line says how many.
// Returns the number of threads written.
// Where: any thread, no GIL, reads only; hold ScopedThreadListLock (without
// it this is faulthandler's racy walk).
int WriteAllThreads(int fd, PyInterpreterState* interp,
                    const PyThreadState* gil_holder, int max_depth,
                    const std::vector<unsigned long>& hidden = {},
                    const std::vector<PythonThreadName>& python_names = {});

}  // namespace annex::watchdog::internal
