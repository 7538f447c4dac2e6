// 3.13+: compares the running libpython's _Py_DebugOffsets (the layout
// table CPython keeps in _PyRuntime for debuggers and profilers) with the
// layouts of the headers Annex was compiled against, for the structures
// Annex reads in place (thread states, interpreter frames, code objects,
// the interpreter's thread list and gc state). Earlier versions expose no
// such table.
#define Py_BUILD_CORE 1
#include "monitor/python/debug_offsets.h"

#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#if PY_VERSION_HEX >= 0x030D0000
#include "internal/pycore_frame.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"

#define ANNEX_CHECK_OFFSET(field, expected)                           \
  do {                                                                \
    if (live->field != (uint64_t)(expected)) {                        \
      snprintf(buf, size,                                             \
               "_Py_DebugOffsets." #field                             \
               " is %llu in the running "                             \
               "Python but %llu in the headers Annex was built with", \
               (unsigned long long)live->field,                       \
               (unsigned long long)(expected));                       \
      return 1;                                                       \
    }                                                                 \
  } while (0)

int AnnexDebugOffsetsMismatch(unsigned long build_version_hex, char* buf,
                              size_t size) {
  const _Py_DebugOffsets* live = &_PyRuntime.debug_offsets;
  if (memcmp(live->cookie, _Py_Debug_Cookie, sizeof(live->cookie)) != 0) {
    snprintf(buf, size,
             "the running Python has no _Py_DebugOffsets cookie \"%s\"",
             _Py_Debug_Cookie);
    return 1;
  }
  ANNEX_CHECK_OFFSET(version, build_version_hex);
  ANNEX_CHECK_OFFSET(free_threaded, _Py_Debug_Free_Threaded);
  ANNEX_CHECK_OFFSET(runtime_state.size, sizeof(_PyRuntimeState));
  ANNEX_CHECK_OFFSET(interpreter_state.size, sizeof(PyInterpreterState));
  ANNEX_CHECK_OFFSET(interpreter_state.threads_head,
                     offsetof(PyInterpreterState, threads.head));
  ANNEX_CHECK_OFFSET(interpreter_state.gc, offsetof(PyInterpreterState, gc));
  ANNEX_CHECK_OFFSET(thread_state.size, sizeof(PyThreadState));
  ANNEX_CHECK_OFFSET(thread_state.interp, offsetof(PyThreadState, interp));
  ANNEX_CHECK_OFFSET(thread_state.current_frame,
                     offsetof(PyThreadState, current_frame));
  ANNEX_CHECK_OFFSET(interpreter_frame.size, sizeof(_PyInterpreterFrame));
  ANNEX_CHECK_OFFSET(interpreter_frame.previous,
                     offsetof(_PyInterpreterFrame, previous));
  ANNEX_CHECK_OFFSET(interpreter_frame.executable,
                     offsetof(_PyInterpreterFrame, f_executable));
  ANNEX_CHECK_OFFSET(interpreter_frame.localsplus,
                     offsetof(_PyInterpreterFrame, localsplus));
  ANNEX_CHECK_OFFSET(code_object.size, sizeof(PyCodeObject));
  return 0;
}

#else

int AnnexDebugOffsetsMismatch(unsigned long build_version_hex, char* buf,
                              size_t size) {
  (void)build_version_hex;
  (void)buf;
  (void)size;
  return 0;  // 3.11 and 3.12 expose no _Py_DebugOffsets
}

#endif
