// Per-version CPython differences, behind small functions.
#include "monitor/python/version.h"

#include <cstdio>

#if PY_VERSION_HEX < 0x030C0000
// Exported by libpython 3.11 (declared in its internal pycore_ceval.h).
extern "C" int _PyEval_AddPendingCall(PyInterpreterState* interp,
                                      int (*func)(void*), void* arg);
#endif

namespace annex::python {

int AddPendingCallToMain(int (*func)(void*), void* arg) {
#if PY_VERSION_HEX < 0x030C0000
  return _PyEval_AddPendingCall(PyInterpreterState_Main(), func, arg);
#else
  // 3.12+: Py_AddPendingCall always targets the main interpreter.
  return Py_AddPendingCall(func, arg);
#endif
}

PyThreadState* CurrentThreadStateUnchecked() {
#if PY_VERSION_HEX >= 0x030D0000
  return PyThreadState_GetUnchecked();
#else
  return _PyThreadState_UncheckedGet();
#endif
}

bool ThisThreadHoldsGil() {
#if PY_VERSION_HEX >= 0x030C0000
  return CurrentThreadStateUnchecked() != nullptr;
#else
  // 3.11 keeps the current thread state in one process-wide variable; the
  // per-thread record is the GILState thread-specific slot.
  PyThreadState* current = _PyThreadState_UncheckedGet();
  return current != nullptr && current == PyGILState_GetThisThreadState();
#endif
}

absl::Status CheckRuntimeVersion() {
  static_assert(PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000,
                "Annex supports CPython 3.11 to 3.13");
  // Py_Version (3.11+) is the version of the libpython actually loaded.
  const unsigned long runtime = Py_Version;
  if ((runtime >> 16) != (PY_VERSION_HEX >> 16)) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "Annex was built for Python %d.%d but runs on %lu.%lu",
                  PY_MAJOR_VERSION, PY_MINOR_VERSION, runtime >> 24,
                  (runtime >> 16) & 0xff);
    return absl::FailedPreconditionError(buf);
  }
  return absl::OkStatus();
}

bool IsFinalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

const char* RuntimeVersionString() { return Py_GetVersion(); }

PyThreadState* NewSharedGilInterpreter() {
  // On 3.12+ Py_NewInterpreter() uses the legacy configuration: shared GIL,
  // main obmalloc, threads allowed, no multi-interpreter extension checks.
  // That is exactly what the annex needs; an isolated (own-GIL) interpreter
  // must never be used, since the annex touches the target's objects.
  PyThreadState* ts = Py_NewInterpreter();
  if (ts == nullptr) PyErr_Clear();
  return ts;
}

}  // namespace annex::python
