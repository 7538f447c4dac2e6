// HeapEngine::Shared keeps the last walk's graph for the next question and
// answers from it only while the target cannot have changed: no thread
// state but Annex's held the target's GIL and the annex ran no target code
// (python::TargetMark). The test's main thread is the target's: it waits
// without the GIL for an idle target and takes the GIL (running code or
// not) for a busy one.
#include <Python.h>

#include <memory>
#include <string>
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

class KeptGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(RunTargetCode("kg_data = [object() for _ in range(2000)]\n"));
    absl::StatusOr<std::unique_ptr<AnnexRuntime>> rt =
        AnnexRuntime::Start(AnnexOptions{});
    ASSERT_TRUE(rt.ok()) << rt.status();
    runtime_ = std::move(*rt);
    ASSERT_TRUE(runtime_
                    ->Run([&](const ThreadStates& ts) {
                      engine_ = std::make_unique<HeapEngine>(ts);
                    })
                    .ok());
  }
  void TearDown() override {
    if (runtime_ != nullptr) {
      EXPECT_TRUE(
          runtime_->Run([&](const ThreadStates&) { engine_.reset(); }).ok());
      EXPECT_TRUE(runtime_->Stop().ok());
    }
    RunTargetCode("del kg_data\n");
  }

  struct Answer {
    std::shared_ptr<const HeapGraph> graph;
    uint64_t total_bytes = 0;
    bool has_data = false;  // kg_data's list is a node
  };

  // One question on the annex thread: the graph `options` asks for.
  Answer Ask(const GraphOptions& options) {
    Answer out;
    const uintptr_t data = heap::testing::MainGlobalId("kg_data");
    EXPECT_TRUE(runtime_
                    ->Run([&](const ThreadStates&) {
                      HeapResult stats;
                      SharedGraph g = engine_->Shared(options, &stats);
                      ASSERT_TRUE(g.ok()) << g.status();
                      out.graph = g.shared();
                      out.total_bytes = stats.total_bytes;
                      out.has_data = g->Find(data) >= 0;
                    })
                    .ok());
    return out;
  }
  // The same, with the host's thread out of the GIL throughout: the
  // target runs nothing in between.
  std::vector<Answer> AskIdle(const std::vector<GraphOptions>& questions) {
    std::vector<Answer> out;
    PyThreadState* host = PyEval_SaveThread();
    for (const GraphOptions& o : questions) {
      out.push_back(Answer());
      EXPECT_TRUE(runtime_
                      ->Run([&](const ThreadStates&) {
                        HeapResult stats;
                        SharedGraph g = engine_->Shared(o, &stats);
                        ASSERT_TRUE(g.ok()) << g.status();
                        out.back().graph = g.shared();
                        out.back().total_bytes = stats.total_bytes;
                      })
                      .ok());
    }
    PyEval_RestoreThread(host);
    return out;
  }
  HeapEngine::SharedStats Stats() {
    HeapEngine::SharedStats s;
    EXPECT_TRUE(
        runtime_->Run([&](const ThreadStates&) { s = engine_->shared_stats(); })
            .ok());
    return s;
  }

  std::unique_ptr<AnnexRuntime> runtime_;
  std::unique_ptr<HeapEngine> engine_;
};

TEST_F(KeptGraphTest, AnIdleTargetsWalkServesTheNextQuestions) {
  const std::vector<Answer> a =
      AskIdle({GraphOptions(), GraphOptions(), GraphOptions::NodesOnly()});
  ASSERT_EQ(a.size(), 3u);
  // One walk; the later questions read the very same graph and totals.
  EXPECT_EQ(a[1].graph, a[0].graph);
  EXPECT_EQ(a[2].graph, a[0].graph);  // edges serve a nodes-only question
  EXPECT_EQ(a[1].total_bytes, a[0].total_bytes);
  EXPECT_GT(a[0].total_bytes, 0u);
  const HeapEngine::SharedStats s = Stats();
  EXPECT_EQ(s.walks, 1u);
  EXPECT_EQ(s.reused, 2u);
}

TEST_F(KeptGraphTest, TheTargetTakingTheGilMeansANewWalk) {
  const Answer first = Ask(GraphOptions());
  EXPECT_TRUE(first.has_data);
  // The host's thread takes the GIL between the questions (it always
  // does when Run returns) and changes the heap: the answer follows.
  ASSERT_TRUE(RunTargetCode("kg_new = [object() for _ in range(100)]\n"));
  const uintptr_t added = heap::testing::MainGlobalId("kg_new");
  const Answer second = Ask(GraphOptions());
  EXPECT_NE(second.graph, first.graph);
  EXPECT_GE(second.graph->Find(added), 0);
  EXPECT_LT(first.graph->Find(added), 0);
  // Even with nothing run: the target held the GIL, so it could have.
  const Answer third = Ask(GraphOptions());
  EXPECT_NE(third.graph, second.graph);
  EXPECT_EQ(Stats().walks, 3u);
  ASSERT_TRUE(RunTargetCode("del kg_new\n"));
}

TEST_F(KeptGraphTest, TargetCodeTheAnnexRunsMeansANewWalk) {
  PyThreadState* host = PyEval_SaveThread();
  std::shared_ptr<const HeapGraph> before, after;
  uintptr_t made = 0;
  ASSERT_TRUE(runtime_
                  ->Run([&](const ThreadStates& ts) {
                    before = engine_->Shared(GraphOptions()).shared();
                  })
                  .ok());
  ASSERT_TRUE(runtime_
                  ->Run([&](const ThreadStates& ts) {
                    // Target code run by the annex (as `annex exec
                    // --target` does): a kRun scope.
                    python::ScopedTargetSwap swap(ts);
                    PyObject* main = PyImport_AddModule("__main__");
                    PyObject* list = PyList_New(0);
                    made = reinterpret_cast<uintptr_t>(list);
                    PyObject_SetAttrString(main, "kg_made", list);
                    Py_DECREF(list);
                  })
                  .ok());
  ASSERT_TRUE(runtime_
                  ->Run([&](const ThreadStates&) {
                    after = engine_->Shared(GraphOptions()).shared();
                  })
                  .ok());
  PyEval_RestoreThread(host);
  ASSERT_NE(before, nullptr);
  ASSERT_NE(after, nullptr);
  EXPECT_NE(after, before);
  EXPECT_LT(before->Find(made), 0);
  EXPECT_GE(after->Find(made), 0);
  ASSERT_TRUE(RunTargetCode("del kg_made\n"));
}

TEST_F(KeptGraphTest, OnlyAGraphThatHoldsWhatIsAskedServes) {
  GraphOptions sized = GraphOptions::NodesOnly();
  const std::vector<Answer> a = AskIdle({
      GraphOptions::NodesOnly(),  // 0: walk, nodes only
      GraphOptions(),             // 1: needs edges: walk
      GraphOptions::NodesOnly(),  // 2: served by 1
  });
  EXPECT_NE(a[1].graph, a[0].graph);
  EXPECT_EQ(a[2].graph, a[1].graph);
  EXPECT_EQ(Stats().walks, 2u);
  // Another sizing, other sizes: a walk.
  ASSERT_TRUE(runtime_
                  ->Run([&](const ThreadStates&) {
                    engine_->set_sizing(Sizing::kGetsizeof);
                  })
                  .ok());
  const Answer getsizeof = Ask(sized);
  EXPECT_NE(getsizeof.graph, a[1].graph);
  ASSERT_TRUE(runtime_
                  ->Run([&](const ThreadStates&) {
                    engine_->set_sizing(Sizing::kExact);
                  })
                  .ok());
}

TEST_F(KeptGraphTest, AnUnreachableWantedObjectNeedsALiveWalk) {
  // A cycle nothing reaches, found by id before it is dropped.
  ASSERT_TRUE(
      RunTargetCode("import gc; gc.disable()\n"
                    "kg_cycle = []; kg_cycle.append(kg_cycle)\n"));
  const std::vector<uintptr_t> wanted = {
      heap::testing::MainGlobalId("kg_cycle")};
  ASSERT_TRUE(RunTargetCode("del kg_cycle\n"));
  GraphOptions live_if_needed;
  live_if_needed.scope = GraphOptions::Scope::kLiveIfNeeded;
  live_if_needed.wanted = &wanted;
  const std::vector<Answer> a = AskIdle({
      GraphOptions(),  // 0: reachable only
      live_if_needed,  // 1: the cycle is not in 0: a live walk
      live_if_needed,  // 2: served by 1
      GraphOptions(),  // 3: 1 holds more than reachable: a walk
  });
  EXPECT_TRUE(a[0].graph->reachable_only);
  EXPECT_NE(a[1].graph, a[0].graph);
  EXPECT_FALSE(a[1].graph->reachable_only);
  EXPECT_GE(a[1].graph->Find(wanted[0]), 0);
  EXPECT_EQ(a[2].graph, a[1].graph);
  EXPECT_NE(a[3].graph, a[1].graph);
  EXPECT_TRUE(a[3].graph->reachable_only);
  EXPECT_EQ(Stats().walks, 3u);
  ASSERT_TRUE(RunTargetCode("gc.enable(); gc.collect()\n"));
}

TEST_F(KeptGraphTest, TrimGivesTheKeptGraphBack) {
  PyThreadState* host = PyEval_SaveThread();
  std::shared_ptr<const HeapGraph> first, second;
  size_t held = 0, after_trim = 1;
  ASSERT_TRUE(runtime_
                  ->Run([&](const ThreadStates&) {
                    first = engine_->Shared(GraphOptions()).shared();
                  })
                  .ok());
  held = engine_->buffers().held_bytes();
  engine_->buffers().Trim();  // as the memory budget's reclaimer does
  after_trim = engine_->buffers().held_bytes();
  ASSERT_TRUE(runtime_
                  ->Run([&](const ThreadStates&) {
                    second = engine_->Shared(GraphOptions()).shared();
                  })
                  .ok());
  PyEval_RestoreThread(host);
  EXPECT_GT(held, 0u);
  EXPECT_EQ(after_trim, 0u);
  EXPECT_NE(second, first);
  // A limit below the graph's size keeps nothing.
  engine_->buffers().set_limit(0);
  Ask(GraphOptions());
  EXPECT_EQ(engine_->buffers().held_bytes(), 0u);
}

TEST(KeptGraphSingleInterpreterTest, NothingIsKeptWithoutMarks) {
  // The caller's own thread runs target code as it likes: no mark tells.
  HeapEngine engine(heap::testing::MainThreadStates());
  SharedGraph a = engine.Shared(GraphOptions());
  SharedGraph b = engine.Shared(GraphOptions());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a.shared(), b.shared());
  EXPECT_EQ(engine.buffers().held_bytes(), 0u);
  EXPECT_EQ(engine.shared_stats().walks, 2u);
  EXPECT_EQ(engine.shared_stats().reused, 0u);
}

}  // namespace
}  // namespace annex::heap
