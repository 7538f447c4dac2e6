// Reference patterns over small graphs with a classifier callback.
#include "monitor/heap/reference_pattern.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/heap/graph_testing.h"

namespace annex::heap {
namespace {

using ::annex::heap::testing::MakeGraph;

// "<label> <mark> <count> <kind>" per row, "[^ n]" for repeats.
std::string Rows(const RpResult& rp) {
  std::string out;
  for (const RpRow& r : rp.rows) {
    out += r.label + " [" + static_cast<char>(r.mark);
    if (r.mark == RpMark::kSeen) out += " " + std::to_string(r.seen);
    out += "] " + std::to_string(r.nodes.size()) + " " + r.kind;
    if (r.dropped > 0) out += " +" + std::to_string(r.dropped);
    out += "\n";
  }
  return out;
}

// Kinds from a table that outlives the options; `depth` levels.
RpOptions ByTable(const std::vector<std::string>& kinds, int depth = 7) {
  RpOptions options;
  options.depth = depth;
  options.classify = [&kinds](const NodeSet& s) {
    std::vector<std::string> out;
    for (uint32_t v : s) out.push_back(kinds[v]);
    return absl::StatusOr<std::vector<std::string>>(out);
  };
  return options;
}

// Leaks 5 and 6 held by dicts 3 and 4 (held by module 1) and by list 2;
// module 1 held by root 0, which also holds list 2. 7 <-> 8, a cycle,
// holds 6.
HeapGraph LeakGraph() {
  return MakeGraph(9,
                   {{0, 1},
                    {0, 2},
                    {1, 3},
                    {1, 4},
                    {3, 5},
                    {4, 6},
                    {2, 5},
                    {7, 6},
                    {8, 7},
                    {7, 8}},
                   {0});
}
const std::vector<std::string> kLeakKinds = {
    "root", "module", "list", "dict", "dict", "Leak", "Leak", "Node", "Node"};

// Rows() of the pattern of `set` in `g`, or the error's message.
std::string Pattern(const HeapGraph& g, const NodeSet& set,
                    const RpOptions& options) {
  auto rp = ReferencePattern(g, ReverseIndex::Build(g), set, options);
  return rp.ok() ? Rows(*rp) : std::string{rp.status().message()};
}

TEST(ReferencePatternTest, NamesRowsDepthFirstAsHeapy) {
  HeapGraph g = LeakGraph();
  auto rp = ReferencePattern(g, ReverseIndex::Build(g), {5, 6},
                             ByTable(kLeakKinds, 3));
  ASSERT_TRUE(rp.ok()) << rp.status();
  // Sizes are all 1 in MakeGraph: the kinds with more objects come first.
  EXPECT_EQ(Rows(*rp),
            "_ [-] 2 Leak\n"
            "a [-] 2 dict\n"
            "aa [-] 1 module\n"
            "a3 [R] 1 root\n"
            "b [-] 1 Node\n"
            "ba [-] 1 Node\n"
            "baa [^ 4] 1 Node\n"
            "c [-] 1 list\n"
            "ca [^ 3] 1 root\n");
  EXPECT_EQ(rp->rows[1].nodes, (NodeSet{3, 4}));
  EXPECT_EQ(rp->rows[8].parent, 7);
  EXPECT_FALSE(rp->truncated);
}

TEST(ReferencePatternTest, BreadthFirstNumbersLevelByLevel) {
  RpOptions options = ByTable(kLeakKinds, 3);
  options.breadth_first = true;
  EXPECT_EQ(Pattern(LeakGraph(), {5, 6}, options),
            "_ [-] 2 Leak\n"
            "a [-] 2 dict\n"
            "b [-] 1 Node\n"
            "c [-] 1 list\n"
            "aa [-] 1 module\n"
            "ba [-] 1 Node\n"
            "ca [R] 1 root\n"
            "a3 [^ 6] 1 root\n"
            "baa [^ 2] 1 Node\n");
}

TEST(ReferencePatternTest, NocycLeavesOutTheRowsAbove) {
  RpOptions options = ByTable(kLeakKinds, 3);
  options.nocyc = true;
  // 7's referrer 8 is new; 8's referrer 7 is a row above: none left.
  EXPECT_EQ(Pattern(LeakGraph(), {6}, options),
            "_ [-] 1 Leak\n"
            "a [-] 1 Node\n"
            "aa [R] 1 Node\n"
            "b [-] 1 dict\n"
            "ba [-] 1 module\n"
            "baa [R] 1 root\n");
}

TEST(ReferencePatternTest, DepthMarksDeeperRows) {
  EXPECT_EQ(Pattern(LeakGraph(), {5}, ByTable(kLeakKinds, 1)),
            "_ [-] 1 Leak\n"
            "a [+] 1 dict\n"
            "b [+] 1 list\n");
  EXPECT_EQ(Pattern(LeakGraph(), {5}, ByTable(kLeakKinds, 0)),
            "_ [+] 1 Leak\n");
}

TEST(ReferencePatternTest, DropsSmallKindsBeyondTheLimit) {
  HeapGraph g = MakeGraph(4, {{1, 0}, {2, 0}, {3, 0}}, {1});
  RpOptions options;
  options.classify = [](const NodeSet& s) {
    std::vector<std::string> out;
    for (uint32_t v : s) out.push_back("k" + std::to_string(v));
    return absl::StatusOr<std::vector<std::string>>(out);
  };
  options.max_children = 1;
  // Node v has size v + 1: k3 is the largest kind.
  EXPECT_EQ(Pattern(g, {0}, options), "_ [-] 1 k0 +2\na [R] 1 k3\n");
  options.max_children = 27;
  EXPECT_EQ(Pattern(g, {0}, options),
            "max_children must be between 1 and 26 (one letter per kind)");
}

TEST(ReferencePatternTest, StopsAtStopKindsButNotAtTheSet) {
  // 3 <- 2 (a "module") <- 1 <- 0; the module's referrers are not followed.
  HeapGraph g = MakeGraph(4, {{0, 1}, {1, 2}, {2, 3}}, {0});
  const std::vector<std::string> kinds = {"root", "dict", "module", "Leak"};
  RpOptions options = ByTable(kinds);
  options.stop = [&](const NodeSet& s) {
    for (uint32_t v : s) {
      if (kinds[v] != "module") return false;
    }
    return true;
  };
  EXPECT_EQ(Pattern(g, {3}, options), "_ [-] 1 Leak\na [S] 1 module\n");
  EXPECT_EQ(Pattern(g, {2}, options),
            "_ [-] 1 module\na [-] 1 dict\naa [R] 1 root\n");
}

TEST(ReferencePatternTest, MaxRowsCutsThePattern) {
  // A chain 0 <- 1 <- 2 <- ... <- 9.
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  for (uint32_t i = 0; i + 1 < 10; ++i) edges.push_back({i + 1, i});
  HeapGraph g = MakeGraph(10, edges, {9});
  const std::vector<std::string> kinds(10, "list");
  RpOptions options = ByTable(kinds, 20);
  options.max_rows = 4;
  auto rp = ReferencePattern(g, ReverseIndex::Build(g), {0}, options);
  ASSERT_TRUE(rp.ok()) << rp.status();
  EXPECT_EQ(rp->rows.size(), 4u);
  EXPECT_TRUE(rp->truncated);
  EXPECT_EQ(rp->rows[3].label, "a3");
}

TEST(ReferencePatternTest, LabelsCompressRunsLongerThanTwo) {
  EXPECT_EQ(RpLabel({}), "_");
  EXPECT_EQ(RpLabel({0, 0}), "aa");
  EXPECT_EQ(RpLabel({0, 0, 0, 1}), "a3b");
  EXPECT_EQ(RpLabel({2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}), "cb11a");
}

TEST(ReferencePatternTest, RelateReplacesReferrers) {
  RpOptions options = ByTable(kLeakKinds, 2);
  // "Held by the module" as the relation.
  options.relate = [](const NodeSet& s) {
    return s == NodeSet{1} ? NodeSet{} : NodeSet{1};
  };
  EXPECT_EQ(Pattern(LeakGraph(), {5, 6}, options),
            "_ [-] 2 Leak\na [R] 1 module\n");
}

}  // namespace
}  // namespace annex::heap
