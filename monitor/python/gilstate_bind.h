/* Keeping CPython's GILState slot of the annex thread truthful (3.11).
 *
 * The annex thread swaps between its target and annex thread states while it
 * holds the GIL. CPython 3.11's tracemalloc calls PyGILState_Ensure() inside
 * its raw-allocator hook, on whatever thread allocates; PyGILState_Ensure
 * decides "this thread already holds the GIL" by comparing the current
 * thread state with the one in the thread's GILState slot. With the annex
 * current and the slot naming the target thread state, it waits for the GIL
 * its own thread holds: a deadlock (seen here with tracemalloc tracing).
 * So every swap on the annex thread also rebinds the slot. On 3.12+ this is
 * not needed and the function only swaps.
 */
#ifndef ANNEX_MONITOR_PYTHON_GILSTATE_BIND_H_
#define ANNEX_MONITOR_PYTHON_GILSTATE_BIND_H_

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

/* PyThreadState_Swap(ts), and on 3.11 also binds this thread's GILState slot
 * to `ts` (when ts is not NULL) with a gilstate counter of at least 1, so a
 * balanced PyGILState_Ensure/Release inside CPython never deletes it.
 * Returns the previous thread state.
 * Where: the annex thread, GIL held (or `ts` about to be made current by a
 * GIL acquisition). */
PyThreadState* annex_swap_thread_state(PyThreadState* ts);

/* 1 when this CPython's tracemalloc deadlocks interpreter creation: on 3.11
 * while tracemalloc traces, Py_NewInterpreter swaps thread states inside
 * CPython, where no rebinding can follow, and the allocator hook's
 * PyGILState_Ensure then waits for the GIL its own thread holds. 0 on 3.12+
 * or when not tracing. Where: GIL held. */
int annex_interpreter_creation_would_deadlock(void);

#ifdef __cplusplus
}
#endif

#endif  // ANNEX_MONITOR_PYTHON_GILSTATE_BIND_H_
