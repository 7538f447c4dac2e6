// glue::RetainersJson over a hand-made graph whose dominator tree is known:
// siblings of one kind merge, roots are named, levels fold past
// max_children and under min_part into "<Other>", and depth stops at
// max_depth.
#include "glue/retainers.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/dominators.h"
#include "monitor/heap/graph.h"

namespace {

using ::annex::glue::RetainerOptions;
using ::annex::glue::RetainersJson;
using ::annex::heap::DominatorTree;
using ::annex::heap::HeapGraph;

// 0 (root "sys.modules", a dict) -> 1 (list) -> 2, 3 (Leaky); 0 -> 4 (str);
// 5 (root "thread 1 frame 0", a frame) -> 4. So 4 is dominated by the
// super-root alone (two roots reach it), 1 by 0, 2 and 3 by 1.
HeapGraph Graph() {
  HeapGraph g;
  g.addresses = {16, 32, 48, 64, 80, 96};
  g.sizes = {100, 50, 10, 10, 1000, 20};
  g.out_begin = {0, 2, 4, 4, 4, 4, 5};
  g.out_targets = {1, 4, 2, 3, 4};
  g.root_names = {"sys.modules", "thread 1 frame 0"};
  g.root_nodes = {0, 5};
  return g;
}

const std::vector<std::string> kNames = {"dict", "list", "Leaky", "str",
                                         "frame"};
const std::vector<uint32_t> kKinds = {0, 1, 2, 2, 3, 4};

TEST(RetainersTest, MergesByKindNamesRootsAndFolds) {
  const HeapGraph g = Graph();
  const DominatorTree tree = DominatorTree::Build(g);
  RetainerOptions two;
  two.max_children = 2;
  two.min_part = 0;
  EXPECT_EQ(RetainersJson(g, tree, kKinds, kNames, two),
            "[{\"kind\":\"str\",\"count\":1,\"retained\":1000,\"children\":[]},"
            "{\"kind\":\"sys.modules (dict)\",\"count\":1,\"retained\":170,"
            "\"children\":[{\"kind\":\"list\",\"count\":1,\"retained\":70,"
            "\"children\":[{\"kind\":\"Leaky\",\"count\":2,\"retained\":20,"
            "\"children\":[]}]}]},"
            "{\"kind\":\"<Other>\",\"count\":1,\"retained\":20,"
            "\"children\":[]}]");
  RetainerOptions shallow;
  shallow.max_depth = 2;
  shallow.min_part = 0;
  EXPECT_EQ(RetainersJson(g, tree, kKinds, kNames, shallow),
            "[{\"kind\":\"str\",\"count\":1,\"retained\":1000,\"children\":[]},"
            "{\"kind\":\"sys.modules (dict)\",\"count\":1,\"retained\":170,"
            "\"children\":[{\"kind\":\"list\",\"count\":1,\"retained\":70,"
            "\"children\":[]}]},"
            "{\"kind\":\"thread 1 frame 0 (frame)\",\"count\":1,"
            "\"retained\":20,\"children\":[]}]");
  // Entries under 2% of the 1190 reachable bytes (23.8) fold: the thread
  // root (20) and the Leaky pair (20), alone under their list.
  RetainerOptions big;
  big.min_part = 0.02;
  EXPECT_EQ(RetainersJson(g, tree, kKinds, kNames, big),
            "[{\"kind\":\"str\",\"count\":1,\"retained\":1000,\"children\":[]},"
            "{\"kind\":\"sys.modules (dict)\",\"count\":1,\"retained\":170,"
            "\"children\":[{\"kind\":\"list\",\"count\":1,\"retained\":70,"
            "\"children\":[{\"kind\":\"<Other>\",\"count\":2,\"retained\":20,"
            "\"children\":[]}]}]},"
            "{\"kind\":\"<Other>\",\"count\":1,\"retained\":20,"
            "\"children\":[]}]");
  EXPECT_EQ(RetainersJson(HeapGraph(), tree, {}, {}), "[]");
}

}  // namespace
