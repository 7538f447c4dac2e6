// What the benchmark programs share (see bench_util.h).
#include "bench/bench_util.h"

#include <Python.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

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

bool ParseSizesFlag(const std::string& arg, std::vector<long>* sizes) {
  constexpr char kFlag[] = "--sizes=";
  if (arg.rfind(kFlag, 0) != 0) return false;
  sizes->clear();
  for (absl::string_view s :
       absl::StrSplit(arg.substr(sizeof(kFlag) - 1), ',')) {
    long n;
    if (absl::SimpleAtoi(s, &n)) sizes->push_back(n);
  }
  return true;
}

}  // namespace annex::bench
