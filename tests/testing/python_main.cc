// GoogleTest main() for binaries that embed the target interpreter.
#include "tests/testing/python_main.h"

#include <cstdio>
#include <thread>

#include "annex_python_build.h"
#include "gtest/gtest.h"
#include "monitor/python/embed.h"

namespace annex::testing {

bool RunTargetCode(const std::string& code) {
  PyObject* main = PyImport_AddModule("__main__");  // borrowed
  if (main == nullptr) return false;
  PyObject* globals = PyModule_GetDict(main);
  PyObject* result =
      PyRun_String(code.c_str(), Py_file_input, globals, globals);
  if (result == nullptr) {
    PyErr_Print();
    return false;
  }
  Py_DECREF(result);
  return true;
}

bool DefineTargetModule(const std::string& name, const std::string& source) {
  PyObject* module = PyImport_AddModule(name.c_str());  // borrowed
  PyObject* globals = module != nullptr ? PyModule_GetDict(module) : nullptr;
  PyObject* result =
      globals != nullptr
          ? PyRun_String(source.c_str(), Py_file_input, globals, globals)
          : nullptr;
  if (result == nullptr) {
    PyErr_Print();
    return false;
  }
  Py_DECREF(result);
  return true;
}

PyObject* EvalTarget(const std::string& expr) {
  PyObject* main = PyImport_AddModule("__main__");
  if (main == nullptr) return nullptr;
  PyObject* globals = PyModule_GetDict(main);
  PyObject* result =
      PyRun_String(expr.c_str(), Py_eval_input, globals, globals);
  if (result == nullptr) PyErr_Print();
  return result;
}

long TargetLong(const std::string& expr) {
  PyObject* v = EvalTarget(expr);
  long r = v != nullptr ? PyLong_AsLong(v) : -1;
  if (v != nullptr && r == -1 && PyErr_Occurred()) PyErr_Print();
  Py_XDECREF(v);
  return r;
}

std::string TargetStr(const std::string& expr) {
  PyObject* v = EvalTarget(expr);
  std::string r;
  if (v != nullptr && PyUnicode_Check(v)) r = PyUnicode_AsUTF8(v);
  Py_XDECREF(v);
  return r;
}

void BareSubinterpreterCycle() {
  Py_BEGIN_ALLOW_THREADS std::thread t([] {
    PyThreadState* ts = PyThreadState_New(PyInterpreterState_Main());
    PyEval_RestoreThread(ts);
    Py_EndInterpreter(Py_NewInterpreter());
    PyThreadState_Swap(ts);
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent();
  });
  t.join();
  Py_END_ALLOW_THREADS
}

}  // namespace annex::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (absl::Status s = annex::python::InitializeEmbedded(); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string{s.message()}.c_str());
    return 2;
  }
  int rc = RUN_ALL_TESTS();
  if (Py_FinalizeEx() < 0 && rc == 0) rc = 3;
  return rc;
}
