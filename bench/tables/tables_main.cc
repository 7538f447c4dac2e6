// Benchmark of the partition views whose cost must follow the set's size
// (issue 21: `h.parts` of an 834-row partition of 519 K objects took 20.9 s
// while one row took 0.04 s; `.byvia` of 1 M objects froze the target
// 11 s). For each size it builds `rows` classes with size/rows instances
// each (held in one list, so Via names them by index) in the target, then
// asks the annex, through the public API as a console user would, several
// times: hp.heap() (the walk: the same-run baseline), h.parts, one row
// h[0], h.byvia and h.byrcs. One JSON object per size with every run
// (CPU milliseconds of the annex thread), the medians and each median as a
// ratio of the walk's. Linear views keep the same ratio at every size.
//
//   bazel run -c opt //bench/tables -- --sizes=200000,1000000 --rows=834
//   --runs=3
#include <Python.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "annex_python_build.h"
#include "bench/bench_util.h"
#include "monitor/monitor.h"
#include "monitor/python/embed.h"

namespace {

using ::annex::bench::JsonList;
using ::annex::bench::Median;
using ::annex::bench::RunInMain;

// Prints one line of numbers: walk parts one via rcs objects rows. Times
// are the annex thread's CPU time (time.thread_time: the walk and the
// views run on it, and this 2-core machine is shared, so wall time
// measures the neighbours), page faults included.
constexpr char kQuestion[] = R"py(
import time
hp.pause_limit = None  # measured whole, at any size
def ms(f):
    t0 = time.thread_time()
    r = f()
    return (time.thread_time() - t0) * 1000.0, r
walk, h = ms(hp.heap)
parts, p = ms(lambda: h.parts)
one, _ = ms(lambda: h[0])
via, v = ms(lambda: h.byvia)
rcs, r = ms(lambda: h.byrcs)
print(walk, parts, one, via, rcs, len(h), len(p), len(v.stat), len(r.stat))
)py";

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> sizes = {200000, 1000000};
  long rows = 834;
  int runs = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (annex::bench::ParseSizesFlag(a, &sizes)) continue;
    if (a.rfind("--rows=", 0) == 0) {
      rows = std::atol(a.c_str() + 7);
    } else if (a.rfind("--runs=", 0) == 0) {
      runs = std::atoi(a.c_str() + 7);
    } else {
      std::fprintf(stderr, "usage: %s [--sizes=N,M] [--rows=R] [--runs=K]\n",
                   argv[0]);
      return 2;
    }
  }
  if (!annex::python::InitializeEmbedded().ok()) return 2;
  annex::Monitor monitor;
  if (absl::Status s = monitor.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  for (long n : sizes) {
    if (!RunInMain("classes = [type('K%d' % i, (), {'__slots__': ()})\n"
                   "           for i in range(" +
                   std::to_string(rows) +
                   ")]\n"
                   "bench_data = [classes[i % len(classes)]()\n"
                   "              for i in range(" +
                   std::to_string(n) +
                   ")]\n"
                   "import gc; gc.collect()\n")) {
      return 1;
    }
    std::vector<double> walk, parts, one, via, rcs;
    long objects = 0, part_rows = 0, via_rows = 0, rcs_rows = 0;
    for (int r = 0; r < runs; ++r) {
      absl::StatusOr<std::string> out = monitor.ExecInAnnex(kQuestion);
      if (!out.ok()) {
        std::fprintf(stderr, "%s\n", out.status().ToString().c_str());
        return 1;
      }
      double w, p, o, v, c;
      if (std::sscanf(out->c_str(), "%lf %lf %lf %lf %lf %ld %ld %ld %ld", &w,
                      &p, &o, &v, &c, &objects, &part_rows, &via_rows,
                      &rcs_rows) != 9) {
        std::fprintf(stderr, "unexpected output: %s\n", out->c_str());
        return 1;
      }
      walk.push_back(w);
      parts.push_back(p);
      one.push_back(o);
      via.push_back(v);
      rcs.push_back(c);
    }
    const double wm = Median(walk);
    std::printf(
        "{\"case\": \"tables\", \"python\": \"%s\", \"requested_objects\": "
        "%ld, \"objects\": %ld, \"classes\": %ld, \"runs\": %d, "
        "\"parts_rows\": %ld, \"via_rows\": %ld, \"rcs_rows\": %ld, "
        "\"walk_ms\": %s, \"parts_ms\": %s, \"one_row_ms\": %s, "
        "\"byvia_ms\": %s, \"byrcs_ms\": %s, \"walk_ms_median\": %.1f, "
        "\"parts_ms_median\": %.1f, \"one_row_ms_median\": %.1f, "
        "\"byvia_ms_median\": %.1f, \"byrcs_ms_median\": %.1f, "
        "\"parts_per_walk\": %.2f, \"byvia_per_walk\": %.2f, "
        "\"byrcs_per_walk\": %.2f, \"walk_ms_per_million\": %.1f}\n",
        ANNEX_PYTHON_VERSION, n, objects, rows, runs, part_rows, via_rows,
        rcs_rows, JsonList(walk, 1).c_str(), JsonList(parts, 1).c_str(),
        JsonList(one, 1).c_str(), JsonList(via, 1).c_str(),
        JsonList(rcs, 1).c_str(), wm, Median(parts), Median(one), Median(via),
        Median(rcs), Median(parts) / wm, Median(via) / wm, Median(rcs) / wm,
        wm / (objects / 1e6));
    std::fflush(stdout);
    if (!RunInMain("del bench_data, classes; gc.collect()")) return 1;
  }
  absl::Status s = monitor.Stop();
  if (Py_FinalizeEx() < 0) return 3;
  return s.ok() ? 0 : 1;
}
