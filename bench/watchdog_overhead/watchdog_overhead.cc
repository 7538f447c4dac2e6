// Benchmark: the cost of a running watchdog to a CPU-bound Python loop in
// the target's main thread. Runs the loop alternately without and with the
// watchdog (10 heartbeats/s) in one process and prints one JSON object per
// case: every run's seconds, the median, and the ratio to the baseline.
#include <Python.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "annex_python_build.h"
#include "monitor/python/embed.h"
#include "monitor/watchdog/watchdog.h"

namespace {

constexpr char kWork[] =
    "def work(n):\n"
    "    total = 0\n"
    "    for i in range(n):\n"
    "        total += i * i % 7\n"
    "    return total\n";

// Runs work(iterations) once and returns its wall time in seconds.
// Where: main thread, GIL held, target current.
double RunOnce(PyObject* work, long iterations) {
  absl::Time start = absl::Now();
  PyObject* result = PyObject_CallFunction(work, "l", iterations);
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (result == nullptr) {
    PyErr_Print();
    std::exit(1);
  }
  Py_DECREF(result);
  return seconds;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2]
                      : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

long Flag(int argc, char** argv, const char* name, long fallback) {
  size_t len = std::strlen(name);
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], name, len) == 0 && argv[i][len] == '=') {
      return std::atol(argv[i] + len + 1);
    }
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const long runs = Flag(argc, argv, "--runs", 5);
  const long iterations = Flag(argc, argv, "--iterations", 20000000);

  if (!annex::python::InitializeEmbedded().ok()) {
    std::fprintf(stderr, "cannot initialize Python\n");
    return 2;
  }
  PyObject* main_module = PyImport_AddModule("__main__");
  PyObject* globals = PyModule_GetDict(main_module);
  PyObject* defined = PyRun_String(kWork, Py_file_input, globals, globals);
  if (defined == nullptr) {
    PyErr_Print();
    return 1;
  }
  Py_DECREF(defined);
  PyObject* work = PyDict_GetItemString(globals, "work");  // borrowed

  annex::watchdog::Options options;
  options.stall_timeout = absl::Seconds(30);
  options.heartbeat_interval = absl::Milliseconds(100);  // 10 heartbeats/s
  annex::watchdog::Watchdog watchdog;

  RunOnce(work, iterations / 10);  // warm up
  std::vector<double> baseline;
  std::vector<double> watched;
  int64_t served = 0;
  for (long r = 0; r < runs; ++r) {  // interleaved, so drift hits both
    baseline.push_back(RunOnce(work, iterations));
    if (!watchdog.Start(options).ok()) return 1;
    watched.push_back(RunOnce(work, iterations));
    served += watchdog.Metrics().heartbeats_served;
    if (!watchdog.Stop().ok()) return 1;
  }
  const double base = Median(baseline);
  std::printf(
      "{\"case\": \"baseline\", \"python\": \"%s\", \"iterations\": %ld, "
      "\"runs\": %ld, \"seconds\": [%s], \"median_s\": %.6f, \"ratio\": 1.0}\n",
      PY_VERSION, iterations, runs, absl::StrJoin(baseline, ", ").c_str(),
      base);
  std::printf(
      "{\"case\": \"watchdog_10hz\", \"python\": \"%s\", \"iterations\": %ld, "
      "\"runs\": %ld, \"seconds\": [%s], \"median_s\": %.6f, \"ratio\": %.4f, "
      "\"heartbeats_served\": %lld}\n",
      PY_VERSION, iterations, runs, absl::StrJoin(watched, ", ").c_str(),
      Median(watched), Median(watched) / base, static_cast<long long>(served));
  return Py_FinalizeEx() < 0 ? 3 : 0;
}
