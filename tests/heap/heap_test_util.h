// Helpers shared by the heap engine's tests. Test-only.
#pragma once

#include <Python.h>

#include <cstdint>
#include <string>
#include <vector>

#include "monitor/heap/heap_engine.h"
#include "monitor/python/guards.h"
#include "monitor/python/version.h"

namespace annex::heap::testing {

// Thread states for an engine used by the test's main thread on the single
// (target) interpreter. GIL held, target current.
inline python::ThreadStates MainThreadStates() {
  return python::ThreadStates{PyThreadState_Get(), nullptr};
}

// id() of a global of __main__, or 0. GIL held, target current.
inline uintptr_t MainGlobalId(const std::string& name) {
  PyObject* main = PyImport_AddModule("__main__");  // borrowed
  PyObject* v = PyDict_GetItemString(PyModule_GetDict(main), name.c_str());
  return reinterpret_cast<uintptr_t>(v);
}

// Converts a Python iterable of ints into addresses; empty on error.
// GIL held.
inline std::vector<uintptr_t> AddressesOf(PyObject* iterable) {
  std::vector<uintptr_t> out;
  PyObject* it = PyObject_GetIter(iterable);
  if (it == nullptr) {
    PyErr_Print();
    return out;
  }
  while (PyObject* item = PyIter_Next(it)) {
    out.push_back(static_cast<uintptr_t>(PyLong_AsUnsignedLongLong(item)));
    Py_DECREF(item);
  }
  Py_DECREF(it);
  return out;
}

}  // namespace annex::heap::testing
