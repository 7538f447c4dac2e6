/* tracemalloc's C entry points, called from C: CPython 3.11's
   tracemalloc.h has no extern "C" block, so C++ cannot link against its
   declarations. Where: GIL held. */
#include <Python.h>
#include <stdint.h>

#if PY_VERSION_HEX >= 0x030D0000
/* 3.13 declares it in an internal header; libpython still exports it. */
PyAPI_FUNC(PyObject*)
    _PyTraceMalloc_GetTraceback(unsigned int domain, uintptr_t ptr);
#endif

int AnnexTracemallocUntrack(unsigned int domain, uintptr_t ptr) {
  return PyTraceMalloc_Untrack(domain, ptr);
}

PyObject* AnnexTracemallocTraceback(uintptr_t ptr) {
  return _PyTraceMalloc_GetTraceback(0, ptr);
}
