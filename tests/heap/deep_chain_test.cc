// A 1,000,000-deep linked chain is walked without recursion.
#include <Python.h>

#include "gtest/gtest.h"
#include "monitor/heap/heap_engine.h"
#include "tests/heap/heap_test_util.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::RunTargetCode;

TEST(DeepChainTest, WalksAMillionDeepChain) {
  ASSERT_TRUE(RunTargetCode(R"(
class Link:
    __slots__ = ('next',)
chain = None
for _ in range(1000000):
    link = Link()
    link.next = chain
    chain = link
del link
nested = None
for _ in range(200000):
    nested = [nested]
)"));
  HeapEngine engine(testing::MainThreadStates());
  absl::StatusOr<HeapResult> heap = engine.Heap();
  ASSERT_TRUE(heap.ok()) << heap.status();
  EXPECT_GT(heap->objects.size(), 1200000u);
  EXPECT_TRUE(heap->objects.contains(testing::MainGlobalId("chain")));
  absl::StatusOr<HeapGraph> graph = engine.Graph();
  ASSERT_TRUE(graph.ok());
  EXPECT_EQ(graph->size(), heap->objects.size());
  ASSERT_TRUE(RunTargetCode("del chain, nested"));
}

}  // namespace
}  // namespace annex::heap
