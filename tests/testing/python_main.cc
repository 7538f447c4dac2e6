// GoogleTest main() for binaries that embed the target interpreter.
#include "tests/testing/python_main.h"

#include <cstdio>

#include "annex_python_build.h"
#include "gtest/gtest.h"

namespace annex::testing {

bool RunTargetCode(const std::string& code) {
  PyObject* main = PyImport_AddModule("__main__");  // borrowed
  if (main == nullptr) return false;
  PyObject* globals = PyModule_GetDict(main);
  PyObject* result = PyRun_String(code.c_str(), Py_file_input, globals, globals);
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
  PyObject* result = PyRun_String(expr.c_str(), Py_eval_input, globals, globals);
  if (result == nullptr) PyErr_Print();
  return result;
}

}  // namespace annex::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.install_signal_handlers = 0;
  PyStatus status = PyConfig_SetBytesString(&config, &config.program_name,
                                            ANNEX_PYTHON_EXECUTABLE);
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    std::fprintf(stderr, "cannot initialize Python %s: %s\n",
                 ANNEX_PYTHON_VERSION, status.err_msg ? status.err_msg : "");
    return 2;
  }
  int rc = RUN_ALL_TESTS();
  if (Py_FinalizeEx() < 0 && rc == 0) rc = 3;
  return rc;
}
