/* GILState slot rebinding for the annex thread (see gilstate_bind.h). C,
 * because CPython 3.11's internal headers are not C++. */
#include "monitor/python/gilstate_bind.h"

#include "monitor/python/cpython_peek.h"

#if PY_VERSION_HEX < 0x030C0000
#define Py_BUILD_CORE 1
#include "internal/pycore_pymem.h"
#include "internal/pycore_runtime.h"
#endif

int annex_interpreter_creation_would_deadlock(void) {
#if PY_VERSION_HEX < 0x030C0000
  return _Py_tracemalloc_config.tracing ? 1 : 0;
#else
  return 0;
#endif
}

PyThreadState* annex_swap_thread_state(PyThreadState* ts) {
  PyThreadState* previous = PyThreadState_Swap(ts);
  /* 3.12+ release and take the GIL again in the swap. */
  if (ts != NULL) AnnexNoteOwnGilTake();
#if PY_VERSION_HEX < 0x030C0000
  if (ts != NULL) {
    if (ts->gilstate_counter < 1) ts->gilstate_counter = 1;
    PyThread_tss_set(&_PyRuntime.gilstate.autoTSSkey, ts);
  }
#endif
  return previous;
}
