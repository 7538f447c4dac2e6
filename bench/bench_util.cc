// What the benchmark programs share (see bench_util.h).
#include "bench/bench_util.h"

#include <Python.h>

#include <algorithm>
#include <cstdio>

namespace annex::bench {

bool RunInMain(const std::string& code) {
  PyObject* globals = PyModule_GetDict(PyImport_AddModule("__main__"));
  PyObject* r = PyRun_String(code.c_str(), Py_file_input, globals, globals);
  if (r == nullptr) {
    PyErr_Print();
    return false;
  }
  Py_DECREF(r);
  return true;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string JsonList(const std::vector<double>& v, int decimals) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s%.*f", i ? ", " : "", decimals, v[i]);
    s += buf;
  }
  return s + "]";
}

}  // namespace annex::bench
