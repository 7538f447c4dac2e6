// The target's threads and their Python stacks, read from the annex thread
// with the target current only for the read (docs/design.md rule 4). Never uses
// sys._current_frames(), which walks every interpreter and creates frame
// objects in the caller's interpreter.
#pragma once

#include <Python.h>

#include <string>
#include <vector>

#include "monitor/python/guards.h"

namespace annex::python {

// One thread of the target as the annex reads it with the GIL (the
// watchdog's GIL-free view of a thread is watchdog::ThreadInfo).
struct TargetThread {
  unsigned long ident = 0;
  unsigned long native_id = 0;
  std::string name;
  std::vector<std::string> frames;  // innermost first
};

// The target's threads (its Python-visible ones: with a frame or a
// threading.Thread), skipping `ts.target_ts` and Annex's frameless helper
// thread states; frames innermost first (only the innermost unless
// `all_frames`). Where: annex thread, GIL held, TARGET current.
std::vector<TargetThread> ReadTargetThreads(const ThreadStates& ts,
                                            bool all_frames);

// One line per target thread / a traceback per target thread.
// Where: annex thread, GIL held, annex or target current.
std::string DescribeThreads(const ThreadStates& ts);
std::string DescribeStacks(const ThreadStates& ts);

// Text of a str object without caching anything inside it ("?" when not a
// str). Where: GIL held, any interpreter.
std::string Text(PyObject* str);

}  // namespace annex::python
