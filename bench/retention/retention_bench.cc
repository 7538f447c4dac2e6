// Retention benchmark: shortest paths to one node and whole-graph
// dominators on synthetic Python-shaped heaps, each next to a plain BFS of
// the same graph in the same run (the ratio is the portable number).
// One JSON object per line. Flags: --nodes=1000000,3000000 --runs=5
// --cases=dominators,sp_deepest (only those; default all)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/bench_util.h"
#include "bench/retention/synthetic_heap.h"
#include "monitor/heap/dominators.h"
#include "monitor/heap/paths.h"
#include "monitor/heap/referrers.h"

namespace annex::bench {
namespace {

using ::annex::bench::Median;

using Clock = std::chrono::steady_clock;

template <typename F>
double TimeMs(F&& f) {
  auto start = Clock::now();
  f();
  return std::chrono::duration<double, std::milli>(Clock::now() - start)
      .count();
}

void Report(const char* name, const heap::HeapGraph& g,
            const std::vector<double>& ms, double baseline_ms,
            const std::string& extra) {
  const double median = Median(ms);
  const double per_million = median / (g.size() / 1e6);
  std::string runs;
  for (double m : ms) runs += (runs.empty() ? "" : ",") + std::to_string(m);
  std::printf(
      "{\"case\":\"%s\",\"nodes\":%u,\"edges\":%zu,\"runs_ms\":[%s],"
      "\"median_ms\":%.2f,\"min_ms\":%.2f,\"ms_per_million_nodes\":%.2f,"
      "\"bfs_median_ms\":%.2f,\"ratio_to_bfs\":%.2f%s}\n",
      name, g.size(), g.out_targets.size(), runs.c_str(), median,
      *std::min_element(ms.begin(), ms.end()), per_million, baseline_ms,
      median / baseline_ms, extra.c_str());
  std::fflush(stdout);
}

// Whether case `name` was asked for (--cases=a,b; all when empty). The
// plain BFS baseline always runs.
bool Wanted(const std::vector<std::string>& cases, const std::string& name) {
  return cases.empty() ||
         std::find(cases.begin(), cases.end(), name) != cases.end();
}

void Bench(uint32_t n, int runs, const std::vector<std::string>& only) {
  heap::HeapGraph g;
  const double gen_ms = TimeMs([&] { g = SyntheticHeap(n, 12345); });
  std::vector<double> bfs;
  bfs.reserve(runs);
  std::vector<uint32_t> dist;
  for (int r = 0; r < runs; ++r) {
    bfs.push_back(TimeMs([&] { dist = heap::RootDistances(g); }));
  }
  const double bfs_ms = Median(bfs);
  uint32_t reached = 0, depth = 0;
  for (uint32_t d : dist) {
    if (d == heap::kUnreached) continue;
    ++reached;
    depth = std::max(depth, d);
  }
  std::printf(
      "{\"case\":\"graph\",\"nodes\":%u,\"edges\":%zu,\"generate_ms\":%.1f,"
      "\"reachable\":%u,\"max_depth\":%u}\n",
      n, g.out_targets.size(), gen_ms, reached, depth);
  Report("bfs_baseline", g, bfs, bfs_ms, "");

  std::vector<double> rev_ms;
  heap::ReverseIndex reverse;
  const bool want_reverse = Wanted(only, "reverse_index") ||
                            Wanted(only, "sp_deepest_with_reverse_index") ||
                            Wanted(only, "sp_median_depth_with_reverse_index");
  for (int r = 0; r < runs && want_reverse; ++r) {
    rev_ms.push_back(TimeMs([&] { reverse = heap::ReverseIndex::Build(g); }));
  }
  if (Wanted(only, "reverse_index")) {
    Report("reverse_index", g, rev_ms, bfs_ms, "");
  }

  // Shortest paths to single nodes: the deepest node (a whole BFS) and one
  // at the median depth.
  uint32_t deepest = 0;
  for (uint32_t v = 0; v < n; ++v) {
    if (dist[v] != heap::kUnreached && dist[v] > dist[deepest]) deepest = v;
  }
  std::vector<uint32_t> sorted_depths;
  for (uint32_t d : dist) {
    if (d != heap::kUnreached) sorted_depths.push_back(d);
  }
  std::nth_element(sorted_depths.begin(),
                   sorted_depths.begin() + sorted_depths.size() / 2,
                   sorted_depths.end());
  const uint32_t median_depth = sorted_depths[sorted_depths.size() / 2];
  uint32_t typical = n / 2;
  while (dist[typical] != median_depth) typical = (typical + 1) % n;
  // With and without a reverse index built beforehand (once per snapshot;
  // its cost is the reverse_index case).
  struct SpCase {
    const char* name;
    uint32_t target;
    const heap::ReverseIndex* reverse;
  };
  const SpCase cases[] = {
      {"sp_deepest", deepest, nullptr},
      {"sp_deepest_with_reverse_index", deepest, &reverse},
      {"sp_median_depth", typical, nullptr},
      {"sp_median_depth_with_reverse_index", typical, &reverse},
  };
  for (const SpCase& c : cases) {
    if (!Wanted(only, c.name)) continue;
    const char* name = c.name;
    const uint32_t target = c.target;
    heap::ShortestPathOptions options;
    options.reverse = c.reverse;
    std::vector<double> ms;
    ms.reserve(runs);
    size_t paths = 0;
    uint32_t length = 0;
    for (int r = 0; r < runs; ++r) {
      ms.push_back(TimeMs([&] {
        auto sp = heap::FindShortestPaths(g, {target}, options);
        paths = sp->paths.size();
        length = sp->length;
      }));
    }
    Report(name, g, ms, bfs_ms,
           ",\"path_length\":" + std::to_string(length) +
               ",\"paths\":" + std::to_string(paths));
  }

  uint64_t total = 0;
  std::vector<double> dom_ms;
  for (int r = 0; r < runs && Wanted(only, "dominators"); ++r) {
    dom_ms.push_back(TimeMs([&] {
      heap::DominatorTree dom = heap::DominatorTree::Build(g);
      total = dom.RetainedSize(0);
    }));
  }
  if (!dom_ms.empty()) {
    Report("dominators", g, dom_ms, bfs_ms,
           ",\"retained_by_sys_modules\":" + std::to_string(total));
  }
  if (!Wanted(only, "retained_size_of_3_node_set")) return;

  heap::DominatorTree dom = heap::DominatorTree::Build(g);
  std::vector<double> set_ms;
  set_ms.reserve(runs);
  for (int r = 0; r < runs; ++r) {
    set_ms.push_back(TimeMs([&] {
      total = *heap::RetainedSize(g, dom, {typical, deepest, n / 3});
    }));
  }
  Report("retained_size_of_3_node_set", g, set_ms, bfs_ms,
         ",\"bytes\":" + std::to_string(total));
}

}  // namespace
}  // namespace annex::bench

int main(int argc, char** argv) {
  std::vector<uint32_t> sizes = {1000000};
  int runs = 5;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--cases=", 0) == 0) {
      only = absl::StrSplit(arg.substr(8), ',', absl::SkipEmpty());
      continue;
    }
    if (arg.rfind("--nodes=", 0) == 0) {
      sizes.clear();
      for (absl::string_view s : absl::StrSplit(arg.substr(8), ',')) {
        uint32_t v;
        if (!absl::SimpleAtoi(s, &v) || v < 10000) {
          std::fprintf(stderr, "bad --nodes: %s\n", arg.c_str());
          return 2;
        }
        sizes.push_back(v);
      }
    } else if (arg.rfind("--runs=", 0) == 0) {
      runs = std::max(1, std::atoi(arg.c_str() + 7));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--nodes=N,...] [--runs=R] [--cases=name,...]\n",
                   argv[0]);
      return 2;
    }
  }
  for (uint32_t n : sizes) annex::bench::Bench(n, runs, only);
  return 0;
}
