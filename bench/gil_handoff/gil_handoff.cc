// Benchmark: how fast the annex gets the GIL from a busy target, and how
// long a busy target waits while the annex runs a Python loop (docs/design.md
// rule 2). Prints one JSON object per case, several runs each, with a
// baseline measured in the same run:
//  - entry_*: latency from asking (AnnexRuntime::Run) to running in the
//    annex while a target thread spins in Python; baseline: target idle.
//  - stall_*: the longest gap between iterations of a busy target thread
//    while the annex runs a 1 s Python loop; baseline: annex idle.
//
//   bazel run -c opt //bench/gil_handoff [-- RUNS]
#include <Python.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "annex_python_build.h"
#include "bench/bench_util.h"
#include "monitor/python/annex_runtime.h"
#include "monitor/python/embed.h"

namespace {

using ::annex::bench::JsonList;
using ::annex::bench::Median;

using Clock = std::chrono::steady_clock;
using annex::python::AnnexRuntime;
using annex::python::ThreadStates;

void Print(const char* name, const std::vector<double>& runs,
           const std::vector<double>& baseline) {
  double m = Median(runs), b = Median(baseline);
  std::printf(
      "{\"bench\": \"gil_handoff\", \"case\": \"%s\", \"python\": \"%s\", "
      "\"unit\": \"ms\", \"runs\": %s, \"median\": %.3f, \"baseline_runs\": "
      "%s, \"baseline_median\": %.3f, \"ratio\": %.2f}\n",
      name, ANNEX_PYTHON_VERSION, JsonList(runs, 3).c_str(), m,
      JsonList(baseline, 3).c_str(), b, b > 0 ? m / b : 0.0);
  std::fflush(stdout);
}

// Target code: a busy loop that stops when flag[0] is set or after 3 s.
constexpr char kTargetCode[] = R"(
import threading, time
def _spin(flag):
    deadline = time.monotonic() + 3
    while not flag[0] and time.monotonic() < deadline:
        pass
def _gaps(flag, out):
    last = time.perf_counter(); worst = 0.0
    while not flag[0]:
        now = time.perf_counter(); worst = max(worst, now - last); last = now
    out.append(worst * 1000)
)";

// Entry latency with a target thread spinning (in main or in a worker), or
// with the target idle (busy = false).
double EntryLatency(AnnexRuntime& rt, bool busy, bool in_main) {
  PyObject* main = PyImport_AddModule("__main__");
  PyObject* g = PyModule_GetDict(main);
  PyObject* flag = PyByteArray_FromStringAndSize("\0", 1);
  PyDict_SetItemString(g, "_flag", flag);
  std::atomic<double> latency{0};
  auto ask = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto t0 = Clock::now();
    (void)rt.Run([&](const ThreadStates&) {
      latency =
          std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      PyByteArray_AS_STRING(flag)[0] = 1;
    });
  };
  if (!busy) {
    Py_BEGIN_ALLOW_THREADS ask();
    Py_END_ALLOW_THREADS
  } else if (in_main) {
    std::thread asker(ask);
    PyObject* r = PyRun_String("_spin(_flag)", Py_eval_input, g, g);
    Py_XDECREF(r);
    Py_BEGIN_ALLOW_THREADS asker.join();
    Py_END_ALLOW_THREADS
  } else {
    PyObject* r = PyRun_String(
        "_w = threading.Thread(target=_spin, args=(_flag,)); _w.start()",
        Py_file_input, g, g);
    Py_XDECREF(r);
    Py_BEGIN_ALLOW_THREADS ask();
    Py_END_ALLOW_THREADS r = PyRun_String("_w.join()", Py_file_input, g, g);
    Py_XDECREF(r);
  }
  Py_DECREF(flag);
  return latency;
}

// Longest gap of a busy target worker while the annex loops for 1 s (or
// sleeps 1 s without the GIL for the baseline).
double WorstTargetGap(AnnexRuntime& rt, bool annex_loops) {
  PyObject* g = PyModule_GetDict(PyImport_AddModule("__main__"));
  PyObject* r = PyRun_String(
      "_f = bytearray(1); _o = []\n"
      "_w = threading.Thread(target=_gaps, args=(_f, _o)); _w.start()\n"
      "time.sleep(0.05)\n",
      Py_file_input, g, g);
  Py_XDECREF(r);
  Py_BEGIN_ALLOW_THREADS if (annex_loops) {
    (void)rt.Run([](const ThreadStates&) {
      PyObject* d = PyDict_New();
      PyObject* r2 = PyRun_String(
          "import time\nt = time.monotonic()\n"
          "while time.monotonic() - t < 1.0: pass\n",
          Py_file_input, d, d);
      Py_XDECREF(r2);
      Py_DECREF(d);
    });
  }
  else {
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  Py_END_ALLOW_THREADS r =
      PyRun_String("_f[0] = 1; _w.join(); _gap = _o[0]", Py_file_input, g, g);
  Py_XDECREF(r);
  PyObject* gap = PyDict_GetItemString(g, "_gap");
  return gap ? PyFloat_AsDouble(gap) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  if (!annex::python::InitializeEmbedded().ok()) return 2;
  PyObject* g = PyModule_GetDict(PyImport_AddModule("__main__"));
  PyObject* r = PyRun_String(kTargetCode, Py_file_input, g, g);
  if (r == nullptr) {
    PyErr_Print();
    return 2;
  }
  Py_DECREF(r);
  auto rt = AnnexRuntime::Start({});
  if (!rt.ok()) {
    std::fprintf(stderr, "%s\n", rt.status().ToString().c_str());
    return 2;
  }
  std::vector<double> idle, main_busy, worker_busy, gap_loop, gap_idle;
  for (int i = 0; i < runs; ++i) {
    idle.push_back(EntryLatency(**rt, false, false));
    main_busy.push_back(EntryLatency(**rt, true, true));
    worker_busy.push_back(EntryLatency(**rt, true, false));
    gap_idle.push_back(WorstTargetGap(**rt, false));
    gap_loop.push_back(WorstTargetGap(**rt, true));
  }
  Print("entry_main_thread_busy", main_busy, idle);
  Print("entry_worker_thread_busy", worker_busy, idle);
  Print("stall_worker_while_annex_loops", gap_loop, gap_idle);
  (void)(*rt)->Stop();
  rt->reset();
  return Py_FinalizeEx() < 0 ? 1 : 0;
}
