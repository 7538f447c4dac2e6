// Benchmark of the heap walk: for each workload and size, walks the target's
// heap from the annex several times and prints one JSON object per case with
// objects, total bytes, walk time, GIL pause, annex memory per object, graph
// build time, and a same-run baseline: a Python BFS with gc.get_referents in
// the target from the same roots (plus dict keys, as the engine walks them;
// the gc.get_referents view, blind to what tp_traverse leaves out), with its
// object count and bytes. The stdlib_imports case is code-heavy: most of the
// standard library imported, once, at the last size. Walks size objects
// the engine's default way (Sizing::kExact: sys.getsizeof plus each
// instance's attribute values block); each run also walks with
// Sizing::kGetsizeof (sys.getsizeof alone, the sizing before values were
// the default), the two in alternating order, and reports both walks'
// minimum and median and their ratio. The first run builds a graph that
// also holds heapu's members (GraphOptions kLive).
//
//   bazel run -c opt //bench/heap_walk -- --sizes=1000000,10000000 --runs=5
#include <Python.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "annex_python_build.h"
#include "bench/bench_util.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/heap/roots.h"
#include "monitor/python/annex_runtime.h"
#include "monitor/python/embed.h"

namespace {

using ::annex::bench::JsonList;
using ::annex::bench::Median;

double Min(const std::vector<double>& v) {
  return v.empty() ? -1.0 : *std::min_element(v.begin(), v.end());
}
using ::annex::bench::RunInMain;

using annex::heap::HeapEngine;
using annex::heap::HeapGraph;
using annex::heap::HeapResult;
using annex::python::AnnexRuntime;
using annex::python::ThreadStates;

// Each workload builds `bench_data` with about n objects (the item size in
// objects is known) in the target's __main__.
struct Workload {
  const char* name;
  int objects_per_item;
  const char* build;  // uses `items`
};

constexpr Workload kWorkloads[] = {
    // dict + str key + large int value
    {"dicts_of_str_int", 3,
     "bench_data = [{'k%d' % i: i + 1000} for i in range(items)]"},
    // instance + its managed/instance dict (3.11 materializes lazily) + int
    {"instances_with_dicts", 2,
     "class BInst:\n"
     "    def __init__(self, v): self.v = v; self.w = None\n"
     "bench_data = [BInst(i + 1000) for i in range(items)]"},
    // slots object + int
    {"slots_objects", 2,
     "class BSlots:\n"
     "    __slots__ = ('a', 'b')\n"
     "    def __init__(self, v): self.a = v; self.b = None\n"
     "bench_data = [BSlots(i + 1000) for i in range(items)]"},
    // set of 4 ints (+ the set)
    {"sets", 5,
     "bench_data = [{i * 4 + 1000, i * 4 + 1001, i * 4 + 1002, i * 4 + 1003} "
     "for i in range(items)]"},
    // Code-heavy: most of the standard library imported (code objects,
    // their constants, classes and static types' dicts). The size is
    // ignored (objects_per_item 0); runs once, at the last size, since the
    // modules stay imported.
    {"stdlib_imports", 0,
     "import importlib, sys\n"
     "bench_skip = {'antigravity', 'this', 'idlelib', 'tkinter', 'turtle',\n"
     "              'turtledemo', 'test', 'lib2to3', 'ensurepip', 'venv',\n"
     "              'pydoc_data', 'xxlimited', 'xxlimited_35', 'xxsubtype'}\n"
     "bench_data = []\n"
     "for m in sorted(sys.stdlib_module_names):\n"
     "    if m.startswith('_') or m in bench_skip: continue\n"
     "    try: bench_data.append(importlib.import_module(m))\n"
     "    except BaseException: pass\n"},
};

constexpr char kPythonBfs[] = R"(
import gc, time
def bench_bfs(roots):
    t0 = time.perf_counter()
    seen = set()
    stack = []
    keep = []  # to size them after timing
    for r in roots:
        if id(r) not in seen:
            seen.add(id(r)); stack.append(r)
    get = gc.get_referents
    while stack:
        x = stack.pop()
        keep.append(x)
        for o in get(x):
            if id(o) not in seen:
                seen.add(id(o)); stack.append(o)
        if type(x) is dict:  # str keys: dict_traverse skips them
            for o in x:
                if id(o) not in seen:
                    seen.add(id(o)); stack.append(o)
    ms = (time.perf_counter() - t0) * 1000.0
    import sys
    return ms, len(seen), sum(sys.getsizeof(o) for o in keep)
)";

// Python BFS from the same roots, in the target (GIL held, target current).
bool PythonBfs(double* ms, long* count, long long* bytes) {
  PyObject* roots_list = PyList_New(0);
  {
    absl::StatusOr<annex::heap::RootList> roots = annex::heap::CollectRoots({});
    if (!roots.ok()) return false;
    for (size_t i = 0; i < roots->size(); ++i)
      PyList_Append(roots_list, roots->object(i));
  }
  PyObject* globals = PyModule_GetDict(PyImport_AddModule("__main__"));
  PyObject* fn = PyDict_GetItemString(globals, "bench_bfs");
  PyObject* r = PyObject_CallOneArg(fn, roots_list);
  Py_DECREF(roots_list);
  if (r == nullptr) {
    PyErr_Print();
    return false;
  }
  *ms = PyFloat_AsDouble(PyTuple_GetItem(r, 0));
  *count = PyLong_AsLong(PyTuple_GetItem(r, 1));
  *bytes = PyLong_AsLongLong(PyTuple_GetItem(r, 2));
  Py_DECREF(r);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> sizes = {1000000, 10000000};
  int runs = 5;
  bool baseline = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (annex::bench::ParseSizesFlag(a, &sizes)) continue;
    if (a.rfind("--runs=", 0) == 0) {
      runs = std::atoi(a.c_str() + 7);
    } else if (a == "--no_baseline") {
      baseline = false;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--sizes=N,M] [--runs=R] [--no_baseline]\n",
                   argv[0]);
      return 2;
    }
  }
  if (!annex::python::InitializeEmbedded().ok()) return 2;
  if (!RunInMain(kPythonBfs)) return 1;

  absl::StatusOr<std::unique_ptr<AnnexRuntime>> rt = AnnexRuntime::Start({});
  if (!rt.ok()) {
    std::fprintf(stderr, "%s\n", rt.status().ToString().c_str());
    return 1;
  }
  for (long n : sizes) {
    for (const Workload& w : kWorkloads) {
      if (w.objects_per_item == 0 && n != sizes.back()) continue;
      const long items = w.objects_per_item == 0 ? 0 : n / w.objects_per_item;
      if (!RunInMain("items = " + std::to_string(items) + "\n" + w.build) ||
          !RunInMain("import gc; gc.collect(); del items")) {
        return 1;
      }
      std::vector<double> walk_ms, pause_ms, graph_ms, getsizeof_walk_ms,
          live_graph_ms;
      uint64_t objects = 0, total_bytes = 0, values_bytes = 0;
      uint64_t getsizeof_bytes = 0;
      uint64_t live_objects = 0;
      size_t set_bytes = 0, bitmap_bytes = 0, graph_bytes = 0;
      for (int r = 0; r < runs; ++r) {
        absl::Status s = (*rt)->Run([&](const ThreadStates& ts) {
          HeapEngine engine(ts);
          // The same walk sized as sys.getsizeof alone (the sizing before
          // exact sizes were the default), first on odd runs.
          auto getsizeof_walk = [&] {
            HeapEngine::ScopedSizing sizing(engine,
                                            annex::heap::Sizing::kGetsizeof);
            absl::StatusOr<HeapResult> plain = engine.Heap();
            if (plain.ok()) {
              getsizeof_walk_ms.push_back(plain->walk_ns / 1e6);
              getsizeof_bytes = plain->total_bytes;
            }
          };
          if (r % 2 == 1) getsizeof_walk();
          absl::StatusOr<HeapResult> heap = engine.Heap();
          if (!heap.ok()) return;
          walk_ms.push_back(heap->walk_ns / 1e6);
          pause_ms.push_back(heap->pause_ns / 1e6);
          objects = heap->objects.size();
          total_bytes = heap->total_bytes;
          values_bytes = heap->inline_values_bytes;
          set_bytes = heap->objects.MemoryBytes();
          bitmap_bytes = heap->visited_set_bytes;
          if (r % 2 == 0) getsizeof_walk();
          if (r == 0) {
            // A graph that also holds heapu's members (what questions
            // about heapu members ask).
            annex::heap::GraphOptions live;
            live.scope = annex::heap::GraphOptions::Scope::kLive;
            auto l0 = std::chrono::steady_clock::now();
            absl::StatusOr<HeapGraph> lg = engine.Graph(live);
            live_graph_ms.push_back(std::chrono::duration<double, std::milli>(
                                        std::chrono::steady_clock::now() - l0)
                                        .count());
            if (lg.ok()) live_objects = lg->size();
            HeapResult gstats;
            auto t0 = std::chrono::steady_clock::now();
            absl::StatusOr<HeapGraph> g = engine.Graph(&gstats);
            graph_ms.push_back(std::chrono::duration<double, std::milli>(
                                   std::chrono::steady_clock::now() - t0)
                                   .count());
            if (g.ok()) {
              graph_bytes =
                  g->addresses.capacity() * 8 + g->sizes.capacity() * 8 +
                  g->out_begin.capacity() * 4 + g->out_targets.capacity() * 4;
            }
          }
        });
        if (!s.ok() || walk_ms.size() != static_cast<size_t>(r) + 1) {
          std::fprintf(stderr, "walk failed\n");
          return 1;
        }
      }
      double bfs_ms = -1;
      long bfs_count = -1;
      long long bfs_bytes = -1;
      if (baseline && !PythonBfs(&bfs_ms, &bfs_count, &bfs_bytes)) return 1;
      const double million = objects / 1e6;
      std::printf(
          "{\"case\": \"%s\", \"python\": \"%s\", \"requested_objects\": %ld, "
          "\"objects\": %llu, \"total_bytes\": %llu, \"runs\": %d, "
          "\"walk_ms\": %s, \"pause_ms\": %s, \"walk_ms_median\": %.2f, "
          "\"pause_ms_median\": %.2f, \"pause_ms_max\": %.2f, "
          "\"ms_per_million\": %.2f, \"result_set_bytes_per_object\": %.3f, "
          "\"visited_bitmap_bytes_per_object\": %.3f, \"graph_ms\": %.2f, "
          "\"graph_bytes_per_object\": %.2f, \"python_bfs_ms\": %.2f, "
          "\"python_bfs_objects\": %ld, \"python_bfs_bytes\": %lld, "
          "\"speedup_vs_python_bfs\": %.1f, "
          "\"walk_ms_min\": %.2f, \"getsizeof_walk_ms\": %s, "
          "\"getsizeof_walk_ms_min\": %.2f, "
          "\"getsizeof_walk_ms_median\": %.2f, "
          "\"exact_vs_getsizeof_walk_min_ratio\": %.3f, "
          "\"getsizeof_total_bytes\": %llu, "
          "\"inline_values_bytes\": %llu, \"live_graph_ms\": %.2f, "
          "\"live_graph_objects\": %llu}\n",
          w.name, ANNEX_PYTHON_VERSION, n,
          static_cast<unsigned long long>(objects),
          static_cast<unsigned long long>(total_bytes), runs,
          JsonList(walk_ms, 2).c_str(), JsonList(pause_ms, 2).c_str(),
          Median(walk_ms), Median(pause_ms),
          *std::max_element(pause_ms.begin(), pause_ms.end()),
          Median(walk_ms) / million, static_cast<double>(set_bytes) / objects,
          static_cast<double>(bitmap_bytes) / objects,
          graph_ms.empty() ? -1.0 : graph_ms[0],
          static_cast<double>(graph_bytes) / objects, bfs_ms, bfs_count,
          bfs_bytes, bfs_ms > 0 ? bfs_ms / Median(walk_ms) : 0.0, Min(walk_ms),
          JsonList(getsizeof_walk_ms, 2).c_str(), Min(getsizeof_walk_ms),
          getsizeof_walk_ms.empty() ? -1.0 : Median(getsizeof_walk_ms),
          getsizeof_walk_ms.empty() ? -1.0
                                    : Min(walk_ms) / Min(getsizeof_walk_ms),
          static_cast<unsigned long long>(getsizeof_bytes),
          static_cast<unsigned long long>(values_bytes),
          live_graph_ms.empty() ? -1.0 : live_graph_ms[0],
          static_cast<unsigned long long>(live_objects));
      std::fflush(stdout);
      if (!RunInMain("del bench_data; gc.collect()")) return 1;
    }
  }
  absl::Status s = (*rt)->Stop();
  if (Py_FinalizeEx() < 0) return 3;
  return s.ok() ? 0 : 1;
}
