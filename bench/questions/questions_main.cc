// Benchmark of what users type (issue 14): each heap question as a console
// user asks it, end to end, against the engine's bare walk of the same heap
// measured in the same run.
//
// The host (this program) builds a heap of about N objects in the target
// (records with three attributes, a name string and a tuple each, all held
// in one list, as a service's cache would) and keeps a target thread
// ticking every half millisecond, which records how long it could not run:
// the target's pause. Each question is Python code run through
// Monitor::ExecInAnnex in one annex session, the executor `annex exec` and
// `annex attach` use (AnnexConsole), without the socket; its echo is
// formatted as the console prints it. Per question: wall milliseconds
// around the call, the longest pause the ticker saw during it, and the
// median wall time as a ratio of the bare walk's (HeapEngine::Heap() on
// the annex thread, no sets kept, no classification), the process's CPU
// milliseconds during it (every thread: steadier than wall time when
// other work shares the cores, which stretches wall time but not CPU
// time), the minor page faults the process took during it (fresh memory
// touched: a 4 KiB page costs microseconds on a VM), and what the kept h
// and a copy of it (h.bytype) are charged per object by the annex's memory
// budget (docs/hp.md, "Memory budget"). One JSON object per size on stdout.
//
//   bazel run -c opt //bench/questions -- --sizes=1000000,10000000 --runs=3
//   [--questions=heap,bytype]   (heap and row_sp always run: others use h, r)
//   [--idle]
//
// --idle: the target runs no Python between questions, as a service
// waiting for requests: the ticker is stopped and the host's thread waits
// without the GIL, so a question may answer from the walk an earlier one
// kept (HeapEngine::Shared). The JSON says "target": "idle" (else
// "ticking") and has no pause fields: nothing runs in the target to see
// one.
//
// Questions (issue 14's list): heap (`h = hp.heap()`, kept as a user
// keeps it), bytype, byclodo (h itself), byrcs, byvia, sp and domisize of
// h's largest row, referrers of that row, get_shpaths(limit=0) of a set of
// 10,000 instances of another class held by one list (numpaths), heapu.
#include <Python.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "annex_python_build.h"
#include "bench/bench_util.h"
#include "glue/annex_access.h"
#include "glue/session.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/monitor.h"
#include "monitor/python/annex_runtime.h"
#include "monitor/python/embed.h"

namespace {

using ::annex::bench::JsonList;
using ::annex::bench::Median;
using ::annex::bench::RunInMain;

// The target's ticker: the longest time it waited past its half
// millisecond since `pause_reset` (what a question held the target).
constexpr char kTicker[] = R"py(
import threading, time
pause_max = 0.0
pause_stop = False
def _tick():
    global pause_max
    last = time.perf_counter()
    while not pause_stop:
        time.sleep(0.0005)
        now = time.perf_counter()
        if now - last > pause_max:
            pause_max = now - last
        last = now
pause_thread = threading.Thread(target=_tick, daemon=True)
pause_thread.start()
)py";

// Records of three attributes (inline values, no __dict__), a name string
// and a tuple each: about 4 objects per record with the list's share.
std::string BuildHeap(long objects) {
  return "class Record:\n"
         "    def __init__(self, i):\n"
         "        self.i = i\n"
         "        self.name = 'record-%d' % i\n"
         "        self.tags = (i, 'tag')\n"
         "bench_data = [Record(i) for i in range(" +
         std::to_string(objects / 4) +
         ")]\n"
         "class Small:\n"
         "    pass\n"
         "bench_small = [Small() for i in range(10000)]\n"
         "import gc; gc.collect()\n";
}

// The CPU time of the whole process so far, in milliseconds. Any thread.
double ProcessCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 +
         static_cast<double>(ts.tv_nsec) / 1e6;
}

// The minor page faults of the whole process so far. Any thread.
double ProcessMinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_minflt);
}

// Evaluates `expr` in the target's __main__ and returns it as a double.
// Where: main thread, GIL held (the host's).
double TargetDouble(const char* expr) {
  PyObject* globals = PyModule_GetDict(PyImport_AddModule("__main__"));
  PyObject* r = PyRun_String(expr, Py_eval_input, globals, globals);
  double v = r ? PyFloat_AsDouble(r) : -1;
  Py_XDECREF(r);
  if (PyErr_Occurred()) PyErr_Print();
  return v;
}

struct Question {
  const char* name;
  const char* code;
};

// Run in order in one session: the later ones use `h` and `r`. The first
// run's answers are formatted exactly as the console shows them (the
// expression's echo).
constexpr Question kQuestions[] = {
    {"heap", "h = hp.heap()"},
    {"bytype", "h.bytype"},
    {"byclodo", "h"},
    {"byrcs", "h.byrcs"},
    {"byvia", "h.byvia"},
    {"row_sp", "r = h[0]; r.sp"},
    {"row_domisize", "r.domisize"},
    {"row_referrers", "r.referrers"},
    {"shpaths_10k",
     "s = h & hp.Type('__main__.Small'); s.get_shpaths(limit=0).numpaths"},
    {"heapu", "hp.heapu()"},
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> sizes = {1000000};
  int runs = 3;
  std::vector<std::string> only;  // empty: every question
  bool idle = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (annex::bench::ParseSizesFlag(a, &sizes)) continue;
    if (a.rfind("--runs=", 0) == 0) {
      runs = std::atoi(a.c_str() + 7);
    } else if (a == "--idle") {
      idle = true;
    } else if (a.rfind("--questions=", 0) == 0) {
      only = absl::StrSplit(a.substr(12), ',');
    } else {
      std::fprintf(stderr,
                   "usage: %s [--sizes=N,M] [--runs=K] [--questions=a,b] "
                   "[--idle]\n",
                   argv[0]);
      return 2;
    }
  }
  if (runs < 1) runs = 1;
  if (!annex::python::InitializeEmbedded().ok()) return 2;
  annex::Monitor monitor;
  // The default budget (512 MiB a session) refuses byrcs and byvia of 10M
  // objects (about 1 GiB of transient memory): the bench measures them.
  annex::Options options;
  options.annex_memory.per_hp_bytes = size_t{8} << 30;
  options.annex_memory.total_bytes = size_t{8} << 30;
  if (absl::Status s = monitor.Start(options); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  auto access = monitor.session()->Get<annex::glue::AnnexAccess>();
  if (!access.ok() || !RunInMain(kTicker)) return 1;
  annex::python::AnnexRuntime& runtime = (*access)->runtime();

  // The later questions read `h` (and `r`): heap (and row_sp) always run.
  std::vector<Question> questions;
  for (const Question& q : kQuestions) {
    const std::string name = q.name;
    if (only.empty() || name == "heap" || name == "row_sp" ||
        std::find(only.begin(), only.end(), name) != only.end()) {
      questions.push_back(q);
    }
  }
  if (idle && !RunInMain("pause_stop = True\npause_thread.join()")) return 1;
  for (long n : sizes) {
    if (!RunInMain(BuildHeap(n))) return 1;
    // Measured whole at any size: no pause limit for this session.
    if (!monitor.ExecInAnnex("hp.pause_limit = None", /*namespace_id=*/1)
             .ok()) {
      return 1;
    }
    std::vector<double> walk_ms, walk_pause_ms;
    std::vector<std::vector<double>> wall(questions.size()),
        pause(questions.size()), cpu(questions.size()),
        faults(questions.size());
    long objects = 0;
    for (int run = 0; run < runs; ++run) {
      absl::Status s = runtime.Run([&](const annex::python::ThreadStates& ts) {
        annex::heap::HeapEngine engine(ts);
        absl::StatusOr<annex::heap::HeapResult> heap = engine.Heap();
        if (!heap.ok()) return;
        walk_ms.push_back(heap->walk_ns / 1e6);
        walk_pause_ms.push_back(heap->pause_ns / 1e6);
        objects = static_cast<long>(heap->objects.size());
      });
      if (!s.ok() || walk_ms.size() != static_cast<size_t>(run) + 1) {
        std::fprintf(stderr, "walk failed: %s\n", s.ToString().c_str());
        return 1;
      }
      // Idle: the host's thread holds no GIL from the first question to
      // the last, and runs nothing in between.
      PyThreadState* host = idle ? PyEval_SaveThread() : nullptr;
      for (size_t q = 0; q < questions.size(); ++q) {
        if (!idle) RunInMain("pause_max = 0.0");
        const double cpu0 = ProcessCpuMs();
        const double faults0 = ProcessMinorFaults();
        auto t0 = std::chrono::steady_clock::now();
        absl::StatusOr<std::string> out =
            monitor.ExecInAnnex(questions[q].code, /*namespace_id=*/1);
        const double ms = std::chrono::duration<double, std::milli>(
                              std::chrono::steady_clock::now() - t0)
                              .count();
        cpu[q].push_back(ProcessCpuMs() - cpu0);
        faults[q].push_back(ProcessMinorFaults() - faults0);
        if (!out.ok()) {
          if (host != nullptr) PyEval_RestoreThread(host);
          std::fprintf(stderr, "%s: %s\n", questions[q].name,
                       out.status().ToString().c_str());
          return 1;
        }
        wall[q].push_back(ms);
        if (idle) continue;
        // The ticker records a pause once it runs again: let it.
        RunInMain("time.sleep(0.003)");
        pause[q].push_back(TargetDouble("pause_max") * 1000.0);
      }
      if (host != nullptr) PyEval_RestoreThread(host);
    }
    // What the kept h costs in the annex (its packed columns and identity
    // watch) and what a copy of it costs (h.bytype: the columns only), as
    // the memory budget charges them, per object.
    double heap_bpo = 0, copy_bpo = 0;
    {
      absl::StatusOr<std::string> out = monitor.ExecInAnnex(
          "exec(\"c = h.bytype\\nrows = [l.split() for l in "
          "hp.memory(rows=1000).splitlines() if '> at 0x' in l]\\n"
          "charged = {int(r[-1], 16): int(r[1]) for r in rows}\\n"
          "print(charged.get(id(h), 0) / len(h), charged.get(id(c), 0) / "
          "len(h))\\ndel c\")",
          /*namespace_id=*/1);
      if (!out.ok() ||
          std::sscanf(out->c_str(), "%lf %lf", &heap_bpo, &copy_bpo) != 2) {
        std::fprintf(stderr, "bytes per object: %s\n",
                     out.ok() ? out->c_str() : out.status().ToString().c_str());
        return 1;
      }
    }
    const double wm = Median(walk_ms);
    std::string fields;
    for (size_t q = 0; q < questions.size(); ++q) {
      const std::string k = questions[q].name;
      absl::StrAppend(&fields, ", \"", k, "_ms\": ", JsonList(wall[q], 1),
                      ", \"", k, "_cpu_ms\": ", JsonList(cpu[q], 1), ", \"", k,
                      "_faults\": ", JsonList(faults[q], 0));
      if (!idle) {
        absl::StrAppend(&fields, ", \"", k,
                        "_pause_ms\": ", JsonList(pause[q], 1));
      }
      absl::StrAppend(&fields, ", \"", k,
                      "_per_walk\": ", std::to_string(Median(wall[q]) / wm));
    }
    std::printf(
        "{\"case\": \"questions\", \"python\": \"%s\", \"target\": \"%s\", "
        "\"requested_objects\": %ld, \"objects\": %ld, \"runs\": %d, "
        "\"walk_ms\": %s, "
        "\"walk_pause_ms\": %s, \"walk_ms_median\": %.1f, "
        "\"walk_ms_per_million\": %.1f, \"kept_heap_bytes_per_object\": %.2f, "
        "\"kept_copy_bytes_per_object\": %.2f%s}\n",
        ANNEX_PYTHON_VERSION, idle ? "idle" : "ticking", n, objects, runs,
        JsonList(walk_ms, 1).c_str(), JsonList(walk_pause_ms, 1).c_str(), wm,
        wm / (objects / 1e6), heap_bpo, copy_bpo, fields.c_str());
    std::fflush(stdout);
    if (!monitor.ReleaseAnnexNamespace(1).ok() ||
        !RunInMain("del bench_data, bench_small; gc.collect()")) {
      return 1;
    }
  }
  if (!idle) RunInMain("pause_stop = True\npause_thread.join()");
  absl::Status s = monitor.Stop();
  if (Py_FinalizeEx() < 0) return 3;
  return s.ok() ? 0 : 1;
}
