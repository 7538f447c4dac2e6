// While four target threads mutate the heap, walks from the annex finish
// without crashing and each snapshot is internally consistent.
#include <Python.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/python/annex_runtime.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::python::AnnexOptions;
using ::annex::python::AnnexRuntime;
using ::annex::python::ThreadStates;
using ::annex::testing::RunTargetCode;

// Empty when consistent, else what is wrong.
std::string CheckGraph(const HeapGraph& g) {
  const uint32_t n = g.size();
  if (g.sizes.size() != n) return "sizes";
  if (g.out_begin.size() != n + size_t{1} || g.out_begin[0] != 0)
    return "out_begin";
  if (g.out_begin[n] != g.out_targets.size()) return "out_begin end";
  for (uint32_t v = 0; v < n; ++v) {
    if (v > 0 && g.addresses[v] <= g.addresses[v - 1])
      return "addresses not sorted";
    if (g.out_begin[v + 1] < g.out_begin[v]) return "out_begin decreasing";
    if (g.sizes[v] < 16) return "size too small";
  }
  for (uint32_t t : g.out_targets) {
    if (t >= n) return "edge target out of range";
  }
  if (g.root_names.size() != g.root_nodes.size() || g.root_nodes.empty())
    return "roots";
  std::vector<char> seen(n, 0);
  std::vector<uint32_t> stack;
  for (uint32_t r : g.root_nodes) {
    if (r >= n) return "root out of range";
    if (!seen[r]) {
      seen[r] = 1;
      stack.push_back(r);
    }
  }
  size_t reached = stack.size();
  while (!stack.empty()) {
    const uint32_t v = stack.back();
    stack.pop_back();
    for (uint32_t e = g.out_begin[v]; e < g.out_begin[v + 1]; ++e) {
      const uint32_t t = g.out_targets[e];
      if (!seen[t]) {
        seen[t] = 1;
        ++reached;
        stack.push_back(t);
      }
    }
  }
  if (reached != n) return "nodes not reachable from the roots";
  return "";
}

TEST(ConsistencyTest, WalksWhileTargetThreadsMutate) {
  ASSERT_TRUE(RunTargetCode(R"(
import threading, random, gc
c_stop = []
c_iterations = [0, 0, 0, 0]
def c_mutator(n):
    rnd = random.Random(n)
    data = {}
    objs = []
    while not c_stop:
        k = rnd.randrange(1000)
        op = rnd.randrange(6)
        if op == 0:
            data[k] = [k, str(k), {k: (k,)}]
        elif op == 1:
            data.pop(k, None)
        elif op == 2:
            objs.append(type('T%d' % (k % 5), (), {'v': k})())
        elif op == 3 and objs:
            objs.pop(rnd.randrange(len(objs)))
        elif op == 4:
            a = [k]; a.append(a)   # garbage cycles for heapu
        elif k == 0:
            gc.collect(0)
        if len(objs) > 500:
            del objs[:250]
        c_iterations[n] += 1
c_threads = [threading.Thread(target=c_mutator, args=(i,)) for i in range(4)]
for t in c_threads:
    t.start()
)"));
  absl::StatusOr<std::unique_ptr<AnnexRuntime>> rt =
      AnnexRuntime::Start(AnnexOptions{});
  ASSERT_TRUE(rt.ok()) << rt.status();
  int walks = 0, heapu_ok = 0;
  std::vector<std::string> errors;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE((*rt)
                    ->Run([&](const ThreadStates& ts) {
                      HeapEngine engine(ts);
                      HeapResult stats;
                      absl::StatusOr<HeapGraph> g = engine.Graph(&stats);
                      if (!g.ok()) {
                        errors.push_back(g.status().ToString());
                        return;
                      }
                      std::string problem = CheckGraph(*g);
                      uint64_t total = 0;
                      for (uint64_t s : g->sizes) total += s;
                      if (total != stats.total_bytes) problem += " total";
                      if (!problem.empty()) errors.push_back(problem);
                      ++walks;
                      if (i % 10 == 0) {
                        absl::StatusOr<ObjectSet> u = engine.Unreachable();
                        if (u.ok()) ++heapu_ok;
                      }
                    })
                    .ok());
    Py_BEGIN_ALLOW_THREADS usleep(2000);
    Py_END_ALLOW_THREADS
  }
  EXPECT_TRUE((*rt)->Stop().ok());
  ASSERT_TRUE(RunTargetCode(R"(
c_stop.append(1)
for t in c_threads:
    t.join()
assert all(n > 0 for n in c_iterations), c_iterations
)"));
  EXPECT_EQ(walks, 100);
  EXPECT_GT(heapu_ok, 0);
  for (const std::string& e : errors) ADD_FAILURE() << e;
}

}  // namespace
}  // namespace annex::heap
