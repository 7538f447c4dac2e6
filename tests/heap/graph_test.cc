// Graph() builds the HeapGraph of exactly the reachable set, with the
// referents of each node as its out-edges and the named roots.
#include <Python.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::RunTargetCode;

TEST(GraphTest, NodesAreTheHeapAndEdgesTheReferents) {
  ASSERT_TRUE(RunTargetCode(R"(
g_a = ['a']
g_b = {'key_b': 1234567}
g_pair = [g_a, g_b, g_a]
)"));
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapResult> heap = engine.Heap();
  ASSERT_TRUE(heap.ok());
  HeapResult stats;
  absl::StatusOr<HeapGraph> g = engine.Graph(&stats);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->addresses, heap->objects.ToVector());
  EXPECT_EQ(stats.total_bytes, heap->total_bytes);
  const int64_t pair = g->Find(testing::MainGlobalId("g_pair"));
  ASSERT_GE(pair, 0);
  std::multiset<uintptr_t> out;
  for (uint32_t e = g->out_begin[pair]; e < g->out_begin[pair + 1]; ++e) {
    out.insert(g->addresses[g->out_targets[e]]);
  }
  EXPECT_EQ(out.count(testing::MainGlobalId("g_a")), 2u);
  EXPECT_EQ(out.count(testing::MainGlobalId("g_b")), 1u);
  EXPECT_EQ(out.size(), 3u);
  // The str key of g_b is an out-edge too (dict keys are walked).
  const int64_t b = g->Find(testing::MainGlobalId("g_b"));
  bool key_seen = false;
  for (uint32_t e = g->out_begin[b]; e < g->out_begin[b + 1]; ++e) {
    PyObject* o = reinterpret_cast<PyObject*>(g->addresses[g->out_targets[e]]);
    key_seen |=
        PyUnicode_Check(o) && PyUnicode_CompareWithASCIIString(o, "key_b") == 0;
  }
  EXPECT_TRUE(key_seen);
  ASSERT_GE(g->root_names.size(), 3u);
  EXPECT_EQ(g->root_names[0], "sys.modules");
  EXPECT_EQ(g->root_names[1], "sys");
  EXPECT_EQ(g->root_names[2], "builtins");
  EXPECT_EQ(g->addresses[g->root_nodes[0]],
            reinterpret_cast<uintptr_t>(PyImport_GetModuleDict()));
}

// GraphOptions::edges = false (heap()'s walk): the same nodes and sizes in
// one GIL hold, and no referents at all.
TEST(GraphTest, NodesOnlyHaveTheSameNodesAndSizesAndNoEdges) {
  ASSERT_TRUE(RunTargetCode("g_nodes = [[i, str(i)] for i in range(2000)]\n"));
  HeapEngine engine(testing::MainThreadStates());
  HeapEngine::Question question(engine);
  ASSERT_TRUE(question.status().ok()) << question.status();
  absl::StatusOr<HeapGraph> full = engine.Graph();
  ASSERT_TRUE(full.ok()) << full.status();
  HeapResult stats;
  absl::StatusOr<HeapGraph> nodes =
      engine.Graph(GraphOptions::NodesOnly(), &stats);
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  EXPECT_GT(nodes->size(), 6000u);
  EXPECT_EQ(nodes->addresses, full->addresses);
  EXPECT_EQ(nodes->sizes, full->sizes);
  uint64_t total = 0;
  for (uint64_t s : nodes->sizes) total += s;
  EXPECT_EQ(total, stats.total_bytes);
  EXPECT_EQ(nodes->out_begin, std::vector<uint32_t>(nodes->size() + 1, 0));
  EXPECT_TRUE(nodes->out_targets.empty());
  EXPECT_FALSE(full->out_targets.empty());
  EXPECT_EQ(nodes->root_names, full->root_names);
  EXPECT_EQ(nodes->root_nodes, full->root_nodes);
}

}  // namespace
}  // namespace annex::heap
