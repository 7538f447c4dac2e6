// Graph() builds the HeapGraph of exactly the reachable set, with the
// referents of each node as its out-edges and the named roots.
#include <Python.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/buffer_pool.h"
#include "monitor/heap/dominators.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/heap/lanes.h"
#include "monitor/heap/referrers.h"
#include "monitor/python/annex_runtime.h"
#include "monitor/python/version.h"
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

// Graphs built on several lanes in small slices (lanes.h) equal the one
// lane's: the same nodes, sizes and edges in the same order, with and
// without edges.
TEST(GraphTest, LanesBuildTheSameGraphAsOneLane) {
  ASSERT_TRUE(RunTargetCode(
      "g_lanes = [[i, str(i), {'k': (i,)}] for i in range(3000)]\n"));
  HeapEngine engine(testing::MainThreadStates());
  HeapEngine::Question question(engine);
  ASSERT_TRUE(question.status().ok()) << question.status();
  engine.set_lanes(Lanes(1));
  absl::StatusOr<HeapGraph> one = engine.Graph();
  ASSERT_TRUE(one.ok()) << one.status();
  absl::StatusOr<HeapGraph> one_nodes = engine.Graph(GraphOptions::NodesOnly());
  ASSERT_TRUE(one_nodes.ok()) << one_nodes.status();
  ASSERT_GT(one->size(), 15000u);
  for (const Lanes lanes : {Lanes(2, 101), Lanes(4, 1000), Lanes(2)}) {
    SCOPED_TRACE(::testing::Message()
                 << lanes.count() << " lanes, grain " << lanes.grain());
    engine.set_lanes(lanes);
    absl::StatusOr<HeapGraph> many = engine.Graph();
    ASSERT_TRUE(many.ok()) << many.status();
    EXPECT_EQ(many->addresses, one->addresses);
    EXPECT_EQ(many->sizes, one->sizes);
    EXPECT_EQ(many->out_begin, one->out_begin);
    EXPECT_EQ(many->out_targets, one->out_targets);
    absl::StatusOr<HeapGraph> nodes = engine.Graph(GraphOptions::NodesOnly());
    ASSERT_TRUE(nodes.ok()) << nodes.status();
    EXPECT_EQ(nodes->addresses, one_nodes->addresses);
    EXPECT_EQ(nodes->sizes, one_nodes->sizes);
  }
}

// The first walk of an engine has no last walk to size its records by:
// EstimateFirstWalk reserves them from the allocator's count of blocks in
// use, read in the annex (on 3.12+ through its sys.getallocatedblocks,
// which the target's count shares), so they never move; without it they
// grow by doubling. The estimate changes no result.
TEST(FirstWalkTest, AllocatorEstimateKeepsTheRecordsInPlace) {
  ASSERT_TRUE(
      RunTargetCode("g_first = [(i, str(i), [i]) for i in range(100000)]\n"));
  auto rt = python::AnnexRuntime::Start({});
  ASSERT_TRUE(rt.ok()) << rt.status();
  int64_t blocks = -1;
  HeapResult plain_stats, estimated_stats, edges_stats;
  absl::StatusOr<HeapGraph> plain = absl::UnknownError("not run");
  absl::StatusOr<HeapGraph> estimated = absl::UnknownError("not run");
  bool pending_error = true;
  bool edges_ok = false;  // the nodes-only graph and the one after it
  ASSERT_TRUE((*rt)
                  ->Run([&](const python::ThreadStates& ts) {
                    // One GIL hold: the target cannot change in between.
                    blocks = python::AllocatedBlocks();
                    HeapEngine without(ts);
                    plain = without.Graph(&plain_stats);
                    HeapEngine with(ts);
                    // Called only when the estimate is taken.
                    with.EstimateFirstWalk([] { return ~size_t{0}; });
                    estimated = with.Graph(&estimated_stats);
                    // The first graph with edges reserves two per object.
                    HeapEngine nodes_first(ts);
                    nodes_first.EstimateFirstWalk([] { return ~size_t{0}; });
                    absl::StatusOr<HeapGraph> nodes =
                        nodes_first.Graph(GraphOptions::NodesOnly());
                    if (nodes.ok()) {
                      edges_ok = nodes_first.Graph(&edges_stats).ok();
                    }
                    pending_error = PyErr_Occurred() != nullptr;
                  })
                  .ok());
  EXPECT_FALSE(pending_error);
  // 400 K objects of the list's, besides the rest of both interpreters.
  EXPECT_GE(blocks, 400000);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(estimated.ok()) << estimated.status();
  EXPECT_GE(plain->size(), 400000u);
  EXPECT_GT(plain_stats.record_growths, 0u);
  EXPECT_EQ(estimated_stats.record_growths, 0u);
  ASSERT_TRUE(edges_ok);
  EXPECT_EQ(edges_stats.record_growths, 0u);
  EXPECT_EQ(estimated->addresses, plain->addresses);
  EXPECT_EQ(estimated->sizes, plain->sizes);
  EXPECT_EQ(estimated->out_begin, plain->out_begin);
  EXPECT_EQ(estimated->out_targets, plain->out_targets);
  // With the target current, 3.12+ cannot ask (the int would be the
  // target's) and says so; 3.11 reads the count in C, creating nothing.
  const int64_t from_target = python::AllocatedBlocks();
  EXPECT_FALSE(PyErr_Occurred());
  if (PY_VERSION_HEX >= 0x030C0000) {
    EXPECT_EQ(from_target, -1);
  } else {
    EXPECT_GE(from_target, 400000);
  }
  ASSERT_TRUE(RunTargetCode("del g_first\n"));
}

}  // namespace
}  // namespace annex::heap

namespace annex::heap {
namespace {

// The graph of a fresh engine (nothing kept): what a reused one must equal.
HeapGraph FreshGraph() {
  HeapEngine fresh(testing::MainThreadStates());
  absl::StatusOr<HeapGraph> g = fresh.Graph();
  EXPECT_TRUE(g.ok()) << g.status();
  HeapGraph out = g.ok() ? std::move(*g) : HeapGraph();
  out.pool = nullptr;  // outlives `fresh`: plain vectors from here on
  return out;
}

// `got` (built in reused memory) equals the fresh engine's graph, which
// is returned.
HeapGraph ExpectFreshGraph(const HeapGraph& got) {
  HeapGraph expected = FreshGraph();
  EXPECT_EQ(got.addresses, expected.addresses);
  EXPECT_EQ(got.sizes, expected.sizes);
  EXPECT_EQ(got.out_begin, expected.out_begin);
  EXPECT_EQ(got.out_targets, expected.out_targets);
  return expected;
}

// Issue 14: the second question at a heap of the same size takes all its
// big vectors (walk records, graph arrays, reverse index, dominator
// arrays) from what the first one gave back, and graphs stay exact when
// objects were added or removed in between (the kept memory holds the
// last question's values until overwritten).
TEST(GraphReuseTest, SecondQuestionReusesBuffersAndFollowsTheHeap) {
  ASSERT_TRUE(
      RunTargetCode("g_reuse = [[i, str(i)] for i in range(60000)]\n"
                    "g_tail = [(i, i + 1) for i in range(20000)]\n"));
  HeapEngine engine(testing::MainThreadStates());
  engine.buffers().set_min_bytes(BufferPool::kMinBytes);  // a small heap
  auto ask = [&engine](HeapGraph* out, uint64_t* retained) {
    absl::StatusOr<HeapGraph> g = engine.Graph();
    ASSERT_TRUE(g.ok()) << g.status();
    ReverseIndex rev = ReverseIndex::Build(*g);
    EXPECT_EQ(rev.in_sources.size(), g->out_targets.size());
    DominatorTree dom = DominatorTree::Build(*g);
    const int64_t list = g->Find(testing::MainGlobalId("g_reuse"));
    ASSERT_GE(list, 0);
    *retained = dom.RetainedSize(static_cast<uint32_t>(list));
    *out = std::move(*g);
  };
  HeapGraph first;
  uint64_t first_retained = 0;
  ask(&first, &first_retained);
  first = HeapGraph();  // ended: its arrays go back
  const BufferPool::Stats cold = engine.buffers().stats();
  EXPECT_GT(cold.kept_bytes, 0u);
  HeapGraph second;
  uint64_t second_retained = 0;
  ask(&second, &second_retained);
  second = HeapGraph();
  // The first walk grew its records by doubling (no size known yet), so
  // the second question may still make a few of its own; from the third
  // on, a question at the same heap takes nothing fresh.
  const BufferPool::Stats warm = engine.buffers().stats();
  EXPECT_GE(warm.reused, cold.reused + 8);
  EXPECT_GT(warm.reused_bytes - cold.reused_bytes,
            warm.fresh_bytes - cold.fresh_bytes);
  EXPECT_EQ(second_retained, first_retained);
  ask(&second, &second_retained);
  const BufferPool::Stats after = engine.buffers().stats();
  EXPECT_EQ(after.fresh, warm.fresh)
      << "a question at the same heap faulted "
      << after.fresh_bytes - warm.fresh_bytes << " fresh bytes";
  EXPECT_GE(after.reused, warm.reused + 12);
  EXPECT_EQ(second_retained, first_retained);
  ExpectFreshGraph(second);
  second = HeapGraph();

  // Fewer objects: nothing of the larger last answer may show.
  ASSERT_TRUE(RunTargetCode("del g_reuse[30000:]\ng_tail = None\n"));
  HeapGraph smaller;
  uint64_t smaller_retained = 0;
  ask(&smaller, &smaller_retained);
  HeapGraph expected = ExpectFreshGraph(smaller);
  EXPECT_LT(smaller_retained, first_retained);
  EXPECT_EQ(smaller_retained,
            DominatorTree::Build(expected).RetainedSize(static_cast<uint32_t>(
                expected.Find(testing::MainGlobalId("g_reuse")))));
  smaller = HeapGraph();

  // More objects than ever: fresh memory where the kept is too small, and
  // the same exact graph.
  ASSERT_TRUE(RunTargetCode(
      "g_more = [[i, str(i), float(i)] for i in range(90000)]\n"));
  HeapGraph larger;
  uint64_t larger_retained = 0;
  ask(&larger, &larger_retained);
  ExpectFreshGraph(larger);
  EXPECT_EQ(larger_retained, smaller_retained);
  ASSERT_TRUE(RunTargetCode("del g_reuse, g_tail, g_more\n"));
}

// Trim() and a limit of 0 leave nothing kept; graphs that outlive their
// engine still free their memory.
TEST(GraphReuseTest, TrimAndZeroLimitKeepNothing) {
  ASSERT_TRUE(RunTargetCode("g_trim = [[i] for i in range(50000)]\n"));
  HeapGraph survivor;
  {
    HeapEngine engine(testing::MainThreadStates());
    engine.buffers().set_min_bytes(BufferPool::kMinBytes);
    {
      absl::StatusOr<HeapGraph> g = engine.Graph();
      ASSERT_TRUE(g.ok());
    }
    EXPECT_GT(engine.buffers().kept_bytes(), 0u);
    engine.buffers().Trim();
    EXPECT_EQ(engine.buffers().kept_bytes(), 0u);
    engine.buffers().set_limit(0);
    {
      absl::StatusOr<HeapGraph> g = engine.Graph();
      ASSERT_TRUE(g.ok());
    }
    EXPECT_EQ(engine.buffers().kept_bytes(), 0u);
    engine.buffers().set_limit(BufferPool::kDefaultLimit);
    absl::StatusOr<HeapGraph> g = engine.Graph();
    ASSERT_TRUE(g.ok());
    survivor = std::move(*g);
  }
  EXPECT_GT(survivor.size(), 50000u);
  survivor = HeapGraph();  // its pool ends with it
  ASSERT_TRUE(RunTargetCode("del g_trim\n"));
}

}  // namespace
}  // namespace annex::heap
