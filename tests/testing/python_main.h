// Test support: a GoogleTest main() that owns exactly one embedded CPython
// (the target) per test binary, as pybind11's tests do.
//
// Python is initialized before the first test with the build's interpreter
// as program name (so the matching standard library is found, never the
// `python3` on PATH), and finalized after the last. Tests start and end with
// the GIL held by the main thread.
#pragma once

#include <Python.h>

#include <string>

namespace annex::testing {

// Runs `code` in the target's __main__ namespace. GIL held, target current.
// Returns false and prints the traceback when it raised.
bool RunTargetCode(const std::string& code);

// Makes module `name` in the target's sys.modules (or takes the one there)
// and runs `source` in its dict, so its classes and functions belong to
// that module. Returns false and prints the traceback when it raised.
// GIL held, target current.
bool DefineTargetModule(const std::string& name, const std::string& source);

// Evaluates `expr` in __main__ and returns a new reference, or nullptr with
// the traceback printed. GIL held, target current.
PyObject* EvalTarget(const std::string& expr);

// The value of `expr` evaluated in the target's __main__ as a C long (-1 and
// the traceback printed when it fails or is not an int) / as a str ("" when
// it fails or is not a str). Where: test main thread, GIL held, target
// current.
long TargetLong(const std::string& expr);
std::string TargetStr(const std::string& expr);

// One bare sub-interpreter lifetime on its own thread (created, ended, no
// Annex code), as the annex has: CPython's own cost, for baselines.
// Where: the main thread with the GIL held (released while it runs).
void BareSubinterpreterCycle();

}  // namespace annex::testing
