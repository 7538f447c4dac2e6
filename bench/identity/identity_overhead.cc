// Benchmark: the cost of the death watch (python/death_watch.h) to an
// allocation-heavy loop in the target. The target holds a heap of about
// --objects objects; the loop makes and frees lists, dicts, tuples, floats,
// instances and strs. Runs alternate in one process between no watch, the
// whole heap watched (a reference point, hp.setref()), and no watch again
// after it was released (the hooks must be gone). One JSON object per case:
// every run's CPU seconds, the median, and the ratio to the no-watch median.
//
//   bazel run -c opt //bench/identity:identity_overhead -- --runs=15
#include <Python.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/python/death_watch.h"
#include "monitor/python/embed.h"

namespace {

using ::annex::bench::JsonList;
using ::annex::bench::Median;
using ::annex::bench::RunInMain;

constexpr char kSetup[] =
    "class ChurnObj:\n"
    "    def __init__(self, v):\n"
    "        self.v = v\n"
    "def churn(n):\n"
    "    for i in range(n):\n"
    "        a = [i, i]\n"
    "        d = {'k': i}\n"
    "        t = (i, a)\n"
    "        f = i * 0.5\n"
    "        o = ChurnObj(f)\n"
    "        s = 'x%d' % i\n"
    "        del a, d, t, f, o, s\n";

long Flag(int argc, char** argv, const char* name, long fallback) {
  const size_t len = std::strlen(name);
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], name, len) == 0 && argv[i][len] == '=') {
      return std::atol(argv[i] + len + 1);
    }
  }
  return fallback;
}

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// CPU seconds of churn(n) on this thread (not wall time: the machine may be
// shared, and the loop never waits). Where: main thread, GIL held.
double RunOnce(long n) {
  const double start = ThreadCpuSeconds();
  if (!RunInMain("churn(" + std::to_string(n) + ")")) std::exit(1);
  return ThreadCpuSeconds() - start;
}

double Min(const std::vector<double>& v) {
  double m = v.empty() ? 0 : v[0];
  for (double x : v) m = x < m ? x : m;
  return m;
}

// `ratio`: median over the no-watch median; `min_ratio`: fastest run over
// the fastest no-watch run (less sensitive to other processes on a shared
// machine).
void Print(const char* version, const char* name, const std::vector<double>& v,
           const std::vector<double>& base, size_t watched) {
  const double m = Median(v);
  std::printf(
      "{\"bench\":\"identity_overhead\",\"python\":\"%s\",\"case\":\"%s\","
      "\"watched_blocks\":%zu,\"runs_s\":%s,\"median_s\":%.4f,"
      "\"ratio\":%.4f,\"min_ratio\":%.4f}\n",
      version, name, watched, JsonList(v, 4).c_str(), m, m / Median(base),
      Min(v) / Min(base));
}

}  // namespace

int main(int argc, char** argv) {
  const long runs = Flag(argc, argv, "--runs", 15);
  const long iterations = Flag(argc, argv, "--iterations", 100000);
  const long objects = Flag(argc, argv, "--objects", 300000);
  if (!annex::python::InitializeEmbedded().ok()) {
    std::fprintf(stderr, "cannot initialize Python\n");
    return 2;
  }
  if (!RunInMain(kSetup) || !RunInMain("held = [[i] for i in range(" +
                                       std::to_string(objects / 2) + ")]")) {
    return 1;
  }
  RunOnce(iterations / 4);  // warm up (specialization, free lists)
  annex::heap::HeapEngine engine(
      annex::python::ThreadStates{PyThreadState_Get(), nullptr});
  std::vector<double> none, active, after, walk_ms, setref_ms;
  size_t watched = 0;
  uint64_t hits = 0;  // filter hits in the last active run
  for (long r = 0; r < runs; ++r) {
    none.push_back(RunOnce(iterations));
    double t0 = ThreadCpuSeconds();
    if (!engine.Heap().ok()) return 1;
    walk_ms.push_back((ThreadCpuSeconds() - t0) * 1e3);
    t0 = ThreadCpuSeconds();
    if (!engine.SetRef().ok()) return 1;  // the same walk, then the watch
    setref_ms.push_back((ThreadCpuSeconds() - t0) * 1e3);
    watched = annex::python::GetDeathWatchStats().watched_blocks;
    // Warm again after the walk and Watch() evicted the loop's caches (the
    // other cases follow a churn run): the case measures the hooks only.
    RunOnce(iterations / 4);
    const uint64_t epoch0 = annex::python::DeathWatchEpoch();
    active.push_back(RunOnce(iterations));
    hits = annex::python::DeathWatchEpoch() - epoch0;
    engine.ClearRef();
    annex::python::FlushDeathWatch();
    if (annex::python::GetDeathWatchStats().installed) {
      std::fprintf(stderr, "hooks still installed after release\n");
      return 1;
    }
    after.push_back(RunOnce(iterations));
  }
  Print(PY_VERSION, "no_watch", none, none, 0);
  Print(PY_VERSION, "reference_point_active", active, none, watched);
  Print(PY_VERSION, "after_release", after, none, 0);
  // Deaths the hooks logged in the last active run: the loop's own objects
  // are never watched, so anything but a few means false filter hits.
  std::printf(
      "{\"bench\":\"identity_overhead\",\"python\":\"%s\","
      "\"case\":\"filter_hits_last_active_run\",\"hits\":%llu}\n",
      PY_VERSION, static_cast<unsigned long long>(hits));
  // What taking the watch costs the question itself: a walk alone against
  // a walk plus Watch() of everything it found (CPU ms).
  std::printf(
      "{\"bench\":\"identity_overhead\",\"python\":\"%s\","
      "\"case\":\"setref_cost\",\"watched_blocks\":%zu,"
      "\"walk_ms\":%.2f,\"walk_and_watch_ms\":%.2f}\n",
      PY_VERSION, watched, Median(walk_ms), Median(setref_ms));
  return 0;
}
