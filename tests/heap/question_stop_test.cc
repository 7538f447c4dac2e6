// Heap questions stop early: the walk, path search and enumeration and the
// dominator tree poll a QuestionStop and end with its status once it says
// stop (cancelled by the asker, or past the pause limit), whatever the size
// of the work left. Cancellation is driven by a counting predicate, so no
// test depends on how fast the machine is.
#include "monitor/heap/question_stop.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/dominators.h"
#include "monitor/heap/heap_engine.h"
#include "monitor/heap/paths.h"
#include "tests/heap/graph_testing.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::heap::testing::MakeGraph;

// Cancelled from the `after`-th look at the predicate on.
QuestionStop::Limits CancelAfter(int after, int* looks) {
  QuestionStop::Limits limits;
  limits.cancelled = [after, looks] { return ++*looks >= after; };
  return limits;
}

TEST(QuestionStopTest, PollsReadThePredicateOncePerStride) {
  int looks = 0;
  QuestionStop stop;
  stop.Begin(CancelAfter(2, &looks));
  int polls = 0;
  while (!stop.Poll()) ++polls;
  EXPECT_EQ(looks, 2);
  EXPECT_EQ(polls, 2 * static_cast<int>(QuestionStop::kStride) - 1);
  EXPECT_TRUE(stop.Poll());  // stays stopped
  EXPECT_EQ(stop.status().code(), absl::StatusCode::kCancelled);
  stop.End();
  EXPECT_FALSE(stop.stopped());
  EXPECT_TRUE(stop.status().ok());
}

TEST(QuestionStopTest, PastThePauseLimitSaysWhatToDo) {
  QuestionStop::Limits limits;
  limits.pause_limit = absl::Nanoseconds(1);
  limits.limit_name = "hp.pause_limit";
  QuestionStop stop;
  stop.Begin(limits);
  absl::SleepFor(absl::Microseconds(10));  // the limit is 1 ns: passed
  EXPECT_TRUE(stop.Check());
  const absl::Status s = stop.status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(s.message().find("holding the target for"), std::string::npos);
  EXPECT_NE(s.message().find("past hp.pause_limit of 1ns"), std::string::npos)
      << s;
  EXPECT_NE(s.message().find("Ask about a smaller set"), std::string::npos);
  // No limit: never stops by time.
  stop.Begin(QuestionStop::Limits());
  EXPECT_FALSE(stop.Check());
}

// 2^depth shortest paths from the root to the last node: each level is two
// nodes, both pointing at both nodes of the next level.
HeapGraph DiamondChain(uint32_t depth) {
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  const uint32_t n = 2 * depth + 2;  // root 0, levels 1..depth, end n-1
  edges.push_back({0, 1});
  edges.push_back({0, 2});
  for (uint32_t level = 0; level + 1 < depth; ++level) {
    const uint32_t a = 1 + 2 * level, b = a + 1, c = a + 2, d = a + 3;
    for (uint32_t from : {a, b}) {
      for (uint32_t to : {c, d}) edges.push_back({from, to});
    }
  }
  edges.push_back({n - 3, n - 1});
  edges.push_back({n - 2, n - 1});
  return MakeGraph(n, edges, {0});
}

TEST(QuestionStopTest, PathEnumerationStopsWhenCancelled) {
  // 2^40 paths: without the stop this never ends.
  HeapGraph g = DiamondChain(40);
  int looks = 0;
  QuestionStop stop;
  stop.Begin(CancelAfter(1, &looks));
  ShortestPathOptions options;
  options.max_paths = 0;
  options.stop = &stop;
  absl::StatusOr<ShortestPaths> sp =
      FindShortestPaths(g, {g.size() - 1}, options);
  ASSERT_FALSE(sp.ok());
  EXPECT_EQ(sp.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(looks, 1);
  // The same search, not cancelled, with a bound on the paths: fine.
  stop.End();
  stop.Begin(QuestionStop::Limits());
  options.max_paths = 10;
  sp = FindShortestPaths(g, {g.size() - 1}, options);
  ASSERT_TRUE(sp.ok()) << sp.status();
  EXPECT_EQ(sp->paths.size(), 10u);
  EXPECT_TRUE(sp->truncated);
}

TEST(QuestionStopTest, DominatorTreeStopsWhenCancelled) {
  const uint32_t n = 200000;
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t v = 0; v + 1 < n; ++v) edges.push_back({v, v + 1});
  HeapGraph g = MakeGraph(n, edges, {0});
  int looks = 0;
  QuestionStop stop;
  stop.Begin(CancelAfter(3, &looks));
  DominatorTree tree = DominatorTree::Build(g, &stop);
  EXPECT_TRUE(stop.stopped());
  EXPECT_EQ(looks, 3);
  EXPECT_EQ(tree.reachable(), 0u);
  stop.End();
  stop.Begin(QuestionStop::Limits());
  DominatorTree whole = DominatorTree::Build(g, &stop);
  EXPECT_EQ(whole.reachable(), n);
  EXPECT_EQ(whole.idom(n - 1), n - 2);
}

// The engine's walk: a cancelled question fails with Cancelled, and the
// next one, not cancelled, walks the whole heap.
TEST(QuestionStopTest, TheWalkStopsAndTheNextQuestionIsWhole) {
  ASSERT_TRUE(
      annex::testing::RunTargetCode("qs_data = [[i] for i in range(50000)]\n"));
  HeapEngine engine(testing::MainThreadStates());
  int looks = 0;
  engine.set_question_limits(CancelAfter(1, &looks));
  absl::StatusOr<HeapResult> stopped = engine.Heap();
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(looks, 1);
  absl::StatusOr<HeapGraph> graph = engine.Graph();
  EXPECT_EQ(graph.status().code(), absl::StatusCode::kCancelled);
  engine.set_question_limits(QuestionStop::Limits());
  absl::StatusOr<HeapResult> whole = engine.Heap();
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_GT(whole->objects.size(), 100000u);
}

}  // namespace
}  // namespace annex::heap
