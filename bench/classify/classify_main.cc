// Benchmark of the classifiers: for each workload and size, walks the
// target's heap from the annex once, then partitions the walked objects by
// type and by clodo (class, or "dict of <owner>") several times, and prints
// one JSON object per case: the partition times, the time to print the
// default (10-row) table of the clodo partition, and a same-run baseline:
// the same objects classified by type in the target's Python,
// collections.Counter(map(type, objs)). Heapy's times for scale (from the
// issue, measured on this kind of machine): 0.45 to 0.75 s per million.
//
//   bazel run -c opt //bench/classify -- --sizes=1000000,10000000 --runs=5
#include <Python.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "annex_python_build.h"
#include "bench/bench_util.h"
#include "glue/classifiers.h"
#include "glue/heap_view.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/python/annex_runtime.h"
#include "monitor/python/embed.h"

namespace {

using ::annex::bench::JsonList;
using ::annex::bench::Median;
using ::annex::bench::RunInMain;

using annex::glue::ClassifyObjects;
using annex::glue::KindedSet;
using annex::glue::TypeNamer;
using annex::heap::HeapEngine;
using annex::heap::HeapGraph;
using annex::python::AnnexRuntime;
using annex::python::ThreadStates;
using Clock = std::chrono::steady_clock;

struct Workload {
  const char* name;
  int objects_per_item;
  const char* build;  // uses `items`
};

constexpr Workload kWorkloads[] = {
    // instance + its (materialized) attribute dict + int: many owned dicts
    {"instances_with_dicts", 3,
     "class BInst:\n"
     "    def __init__(self, v): self.v = v\n"
     "bench_data = [BInst(i + 1000) for i in range(items)]\n"
     "for o in bench_data: vars(o)\n"},
    // dict (no owner) + str key + int value
    {"dicts_of_str_int", 3,
     "bench_data = [{'k%d' % i: i + 1000} for i in range(items)]"},
    // slots object + int + tuple
    {"slots_objects", 3,
     "class BSlots:\n"
     "    __slots__ = ('a', 'b')\n"
     "    def __init__(self, v): self.a = v; self.b = (v,)\n"
     "bench_data = [BSlots(i + 1000) for i in range(items)]"},
};

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Counter(map(type, objs)) over the objects at `addresses`, in the target
// (main thread, GIL held, target current; the objects are reachable and
// nothing ran since the walk that found them). Milliseconds, or -1.
double PythonByType(const std::vector<uintptr_t>& addresses) {
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(addresses.size()));
  if (list == nullptr) return -1;
  for (size_t i = 0; i < addresses.size(); ++i) {
    PyObject* o = reinterpret_cast<PyObject*>(addresses[i]);
    Py_INCREF(o);
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), o);
  }
  PyObject* globals = PyModule_GetDict(PyImport_AddModule("__main__"));
  PyDict_SetItemString(globals, "bench_objs", list);
  Py_DECREF(list);
  bool ok = RunInMain(
      "import collections, time\n"
      "_t0 = time.perf_counter()\n"
      "_c = collections.Counter(map(type, bench_objs))\n"
      "bench_py_ms = (time.perf_counter() - _t0) * 1000.0\n"
      "del _c, bench_objs\n");
  if (!ok) return -1;
  PyObject* ms = PyDict_GetItemString(globals, "bench_py_ms");
  return ms ? PyFloat_AsDouble(ms) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> sizes = {1000000, 10000000};
  int runs = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (annex::bench::ParseSizesFlag(a, &sizes)) continue;
    if (a.rfind("--runs=", 0) == 0) {
      runs = std::atoi(a.c_str() + 7);
    } else {
      std::fprintf(stderr, "usage: %s [--sizes=N,M] [--runs=R]\n", argv[0]);
      return 2;
    }
  }
  if (!annex::python::InitializeEmbedded().ok()) return 2;
  absl::StatusOr<std::unique_ptr<AnnexRuntime>> rt = AnnexRuntime::Start({});
  if (!rt.ok()) {
    std::fprintf(stderr, "%s\n", rt.status().ToString().c_str());
    return 1;
  }
  for (long n : sizes) {
    for (const Workload& w : kWorkloads) {
      if (!RunInMain("items = " + std::to_string(n / w.objects_per_item) +
                     "\n" + w.build) ||
          !RunInMain("import gc; gc.collect(); del items")) {
        return 1;
      }
      std::vector<double> type_ms, clodo_ms, table_ms;
      size_t objects = 0, type_rows = 0, clodo_rows = 0;
      std::vector<uintptr_t> walked;
      std::string error;
      absl::Status s = (*rt)->Run([&](const ThreadStates& ts) {
        absl::StatusOr<TypeNamer> namer = TypeNamer::Create();
        if (!namer.ok()) {
          error = std::string{namer.status().message()};
          return;
        }
        HeapEngine engine(ts);
        absl::StatusOr<HeapGraph> graph = engine.Graph();
        if (!graph.ok()) {
          error = std::string{graph.status().message()};
          return;
        }
        // GIL held since the walk: the graph's objects are alive.
        objects = graph->size();
        for (int r = 0; r < runs; ++r) {
          auto t0 = Clock::now();
          KindedSet by_type =
              ClassifyObjects(*namer, graph->addresses, graph->sizes, nullptr);
          by_type.classifier =
              annex::glue::Classifier(annex::glue::Classifier::kType);
          type_rows = by_type.Rows().size();
          auto t1 = Clock::now();
          KindedSet by_clodo = ClassifyObjects(*namer, graph->addresses,
                                               graph->sizes, &graph->addresses);
          clodo_rows = by_clodo.Rows().size();
          auto t2 = Clock::now();
          std::string table = by_clodo.PartitionTable();
          auto t3 = Clock::now();
          type_ms.push_back(Ms(t0, t1));
          clodo_ms.push_back(Ms(t1, t2));
          table_ms.push_back(Ms(t2, t3));
          if (table.empty()) error = "empty table";
        }
        walked = graph->addresses;
      });
      if (!s.ok() || !error.empty()) {
        std::fprintf(stderr, "classify failed: %s %s\n", s.ToString().c_str(),
                     error.c_str());
        return 1;
      }
      double py_ms = PythonByType(walked);
      const double million = objects / 1e6;
      std::printf(
          "{\"case\": \"%s\", \"python\": \"%s\", \"requested_objects\": %ld, "
          "\"objects\": %zu, \"runs\": %d, \"type_ms\": %s, "
          "\"clodo_ms\": %s, \"table_ms\": %s, \"type_ms_median\": %.2f, "
          "\"clodo_ms_median\": %.2f, \"table_ms_median\": %.2f, "
          "\"type_ms_per_million\": %.2f, \"clodo_ms_per_million\": %.2f, "
          "\"type_rows\": %zu, \"clodo_rows\": %zu, "
          "\"python_counter_type_ms\": %.2f, "
          "\"speedup_type_vs_python\": %.1f}\n",
          w.name, ANNEX_PYTHON_VERSION, n, objects, runs,
          JsonList(type_ms, 2).c_str(), JsonList(clodo_ms, 2).c_str(),
          JsonList(table_ms, 2).c_str(), Median(type_ms), Median(clodo_ms),
          Median(table_ms), Median(type_ms) / million,
          Median(clodo_ms) / million, type_rows, clodo_rows, py_ms,
          py_ms > 0 ? py_ms / Median(type_ms) : 0.0);
      std::fflush(stdout);
      if (!RunInMain("del bench_data; gc.collect()")) return 1;
    }
  }
  absl::Status s = (*rt)->Stop();
  if (Py_FinalizeEx() < 0) return 3;
  return s.ok() ? 0 : 1;
}
