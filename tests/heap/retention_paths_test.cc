// Shortest paths with named edges and retained sizes on real Python object
// structures in the embedded target (one interpreter per binary).
#include <Python.h>

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/heap/dominators.h"
#include "monitor/heap/edge_names.h"
#include "monitor/heap/retention.h"
#include "tests/heap/python_graph.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::heap::testing::NodeOf;
using ::annex::heap::testing::WalkFrom;
using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

// The leaky application: a module with a registry, a closure, a class
// attribute, a cycle held from one place, a planted structure, and a thread
// sleeping with a local. Set up once per binary.
constexpr char kSetup[] = R"py(
import sys, types
_m = types.ModuleType('leaky_app')
sys.modules['leaky_app'] = _m
exec('''
import sys, threading, time

class Planted:
    pass

class Handler:
    def __init__(self, i):
        self.i = i

class Node:
    __slots__ = ('peer',)

class Config:
    cache = Planted()

def make_handler():
    cache = Planted()
    def handler():
        return cache
    return handler

stop = False
ready = threading.Event()

def sleeper():
    x = Planted()
    ready.set()
    while not stop:
        time.sleep(0.002)

def _setup():
    global registry, alias, handler, keep, big, big_size, cycle_size, inline, thread
    registry = {'handlers': [Handler(i) for i in range(5)]}
    alias = {'deep': {'deeper': registry['handlers']}}  # a longer route
    h = registry['handlers'][3]
    h.cache = Planted()
    vars(h)  # a real __dict__ object from here on
    inline = Handler(9)
    inline.cache = Planted()
    handler = make_handler()
    a, b = Node(), Node()
    a.peer, b.peer = b, a
    keep = a
    cycle_size = sys.getsizeof(a) + sys.getsizeof(b)
    big = [bytearray(100 + i) for i in range(10)]
    t = tuple(float(i) + 0.5 for i in range(5))
    d = {'k%d' % i: [i * 1000 + 1007] for i in range(4)}  # no small ints
    big += [t, d]
    objs = [big] + big[:10] + [t] + list(t) + [d] + list(d) + list(d.values())
    objs += [v[0] for v in d.values()]
    big_size = sum(sys.getsizeof(o) for o in objs)
    thread = threading.Thread(target=sleeper, daemon=True)
    thread.start()
    ready.wait()

_setup()
del _setup
''', _m.__dict__)
del _m
)py";

class RetentionPathsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(RunTargetCode(kSetup)); }
  static void TearDownTestSuite() {
    RunTargetCode(
        "import leaky_app\nleaky_app.stop = True\nleaky_app.thread.join()\n");
  }

  // The graph of everything reachable from sys.modules.
  static HeapGraph ModulesGraph() {
    return WalkFrom({{"sys.modules", PySys_GetObject("modules")}});
  }

  // The texts of all shortest paths to the object `expr` evaluates to.
  static std::vector<std::string> PathTexts(const HeapGraph& g,
                                            const std::string& expr) {
    PyObject* obj = EvalTarget(expr);
    EXPECT_NE(obj, nullptr) << expr;
    std::vector<std::string> out;
    if (obj == nullptr) return out;
    const int64_t node = NodeOf(g, obj);
    EXPECT_GE(node, 0) << expr << " not in the graph";
    if (node >= 0) {
      auto paths = PathsTo(g, {static_cast<uint32_t>(node)});
      EXPECT_TRUE(paths.ok()) << paths.status();
      if (paths.ok()) {
        for (const RetentionPath& p : *paths) out.push_back(p.text);
      }
    }
    Py_DECREF(obj);
    return out;
  }

  static uint32_t Node(const HeapGraph& g, const std::string& expr) {
    PyObject* obj = EvalTarget(expr);
    int64_t node = obj ? NodeOf(g, obj) : -1;
    Py_XDECREF(obj);
    EXPECT_GE(node, 0) << expr;
    return static_cast<uint32_t>(node);
  }

  static long Long(const std::string& expr) {
    PyObject* obj = EvalTarget(expr);
    long v = obj ? PyLong_AsLong(obj) : -1;
    Py_XDECREF(obj);
    return v;
  }
};

using Texts = std::vector<std::string>;

TEST_F(RetentionPathsTest, LeakInAModuleLevelRegistryDict) {
  HeapGraph g = ModulesGraph();
  EXPECT_EQ(PathTexts(g, "sys.modules['leaky_app'].registry['handlers'][3]"),
            Texts{"%R.sys.modules['leaky_app'].__dict__['registry']"
                  "['handlers'][3]"});
  // Its dict was materialized by vars(): on 3.11 and 3.12 the instance then
  // holds the dict; 3.13 keeps visiting the inline values.
  const std::string attr =
      PY_VERSION_HEX >= 0x030D0000 ? ".cache" : ".__dict__['cache']";
  EXPECT_EQ(
      PathTexts(g, "sys.modules['leaky_app'].registry['handlers'][3].cache"),
      Texts{"%R.sys.modules['leaky_app'].__dict__['registry']"
            "['handlers'][3]" +
            attr});
}

TEST_F(RetentionPathsTest, InlineInstanceAttribute) {
  HeapGraph g = ModulesGraph();
  EXPECT_EQ(PathTexts(g, "sys.modules['leaky_app'].inline.cache"),
            Texts{"%R.sys.modules['leaky_app'].__dict__['inline'].cache"});
}

TEST_F(RetentionPathsTest, ClosureVariable) {
  HeapGraph g = ModulesGraph();
  PyObject* obj = EvalTarget(
      "sys.modules['leaky_app'].handler.__closure__[0].cell_contents");
  ASSERT_NE(obj, nullptr);
  auto paths = PathsTo(g, {static_cast<uint32_t>(NodeOf(g, obj))});
  Py_DECREF(obj);
  ASSERT_TRUE(paths.ok());
  ASSERT_EQ(paths->size(), 1u);
  const RetentionPath& p = (*paths)[0];
  EXPECT_EQ(p.text,
            "%R.sys.modules['leaky_app'].__dict__['handler'].__closure__[0]"
            ".cell_contents");
  ASSERT_EQ(p.edges.size(), 6u);
  EXPECT_EQ(p.edges[4].kind, EdgeKind::kClosureCell);
  EXPECT_EQ(p.edges[4].name, "cache");
  EXPECT_EQ(p.edges[5].kind, EdgeKind::kCellContents);
  EXPECT_EQ(p.root_name, "sys.modules");
  EXPECT_EQ(p.nodes.size(), 7u);
}

TEST_F(RetentionPathsTest, FrameLocalOfASleepingThread) {
  // Test-only: sys._current_frames() from the target's own main thread.
  PyObject* frame = EvalTarget(
      "sys._current_frames()[sys.modules['leaky_app'].thread.ident]");
  ASSERT_NE(frame, nullptr);
  HeapGraph g = WalkFrom({{"sleeper_frame", frame}});
  PyObject* x = EvalTarget(
      "sys._current_frames()[sys.modules['leaky_app'].thread.ident]"
      ".f_locals['x']");
  ASSERT_NE(x, nullptr);
  const int64_t node = NodeOf(g, x);
  ASSERT_GE(node, 0);
  auto paths = PathsTo(g, {static_cast<uint32_t>(node)});
  ASSERT_TRUE(paths.ok());
  ASSERT_EQ(paths->size(), 1u);
  EXPECT_EQ((*paths)[0].text, "%R.sleeper_frame.f_locals['x']");
  EXPECT_EQ((*paths)[0].edges[0].kind, EdgeKind::kFrameLocal);
  EXPECT_EQ((*paths)[0].edges[0].name, "x");
  Py_DECREF(x);
  Py_DECREF(frame);
}

TEST_F(RetentionPathsTest, ClassAttribute) {
  HeapGraph g = ModulesGraph();
  EXPECT_EQ(PathTexts(g, "sys.modules['leaky_app'].Config.cache"),
            Texts{"%R.sys.modules['leaky_app'].__dict__['Config']"
                  ".__dict__['cache']"});
}

TEST_F(RetentionPathsTest, CycleHeldByOneOutsideReference) {
  HeapGraph g = ModulesGraph();
  EXPECT_EQ(PathTexts(g, "sys.modules['leaky_app'].keep.peer"),
            Texts{"%R.sys.modules['leaky_app'].__dict__['keep'].peer"});
  const uint32_t a = Node(g, "sys.modules['leaky_app'].keep");
  const uint32_t b = Node(g, "sys.modules['leaky_app'].keep.peer");
  DominatorTree dom = DominatorTree::Build(g);
  EXPECT_EQ(dom.idom(b), a);
  NodeSet ab = {std::min(a, b), std::max(a, b)};
  EXPECT_EQ(*Dominated(g, dom, {a}), ab);
  const long expected = Long("sys.modules['leaky_app'].cycle_size");
  EXPECT_EQ(*RetainedSize(g, {a}), static_cast<uint64_t>(expected));
  EXPECT_EQ(dom.RetainedSize(a), static_cast<uint64_t>(expected));
  // b alone frees nothing else: a still holds it.
  EXPECT_EQ(*Dominated(g, dom, {b}), NodeSet{b});
}

TEST_F(RetentionPathsTest, DomisizeEqualsSumOfGetsizeof) {
  HeapGraph g = ModulesGraph();
  const uint32_t big = Node(g, "sys.modules['leaky_app'].big");
  const long expected = Long("sys.modules['leaky_app'].big_size");
  ASSERT_GT(expected, 0);
  EXPECT_EQ(*RetainedSize(g, {big}), static_cast<uint64_t>(expected));
  DominatorTree dom = DominatorTree::Build(g);
  EXPECT_EQ(dom.RetainedSize(big), static_cast<uint64_t>(expected));
  EXPECT_EQ(*heap::RetainedSize(g, dom, {big}),
            static_cast<uint64_t>(expected));
}

TEST_F(RetentionPathsTest, AvoidingAnEdgeShowsTheNextRoute) {
  HeapGraph g = ModulesGraph();
  const uint32_t registry = Node(g, "sys.modules['leaky_app'].registry");
  const uint32_t handlers =
      Node(g, "sys.modules['leaky_app'].registry['handlers']");
  EXPECT_EQ(
      PathTexts(g, "sys.modules['leaky_app'].registry['handlers']"),
      Texts{"%R.sys.modules['leaky_app'].__dict__['registry']['handlers']"});
  ShortestPathOptions options;
  options.avoid_edges = {{registry, handlers}};
  auto paths = PathsTo(g, {handlers}, options);
  ASSERT_TRUE(paths.ok());
  ASSERT_EQ(paths->size(), 1u);
  EXPECT_EQ((*paths)[0].text,
            "%R.sys.modules['leaky_app'].__dict__['alias']['deep']['deeper']");
  options.avoid_edges.clear();
  options.avoid_nodes = {registry};
  EXPECT_EQ((*PathsTo(g, {handlers}, options))[0].text, (*paths)[0].text);
}

TEST_F(RetentionPathsTest, NamedEdgesInAndOut) {
  HeapGraph g = ModulesGraph();
  const uint32_t handlers =
      Node(g, "sys.modules['leaky_app'].registry['handlers']");
  auto in = NamedEdgesIn(g, ReverseIndex::Build(g), {handlers});
  ASSERT_TRUE(in.ok());
  std::vector<std::string> texts;
  for (const NamedEdge& e : *in) {
    EXPECT_EQ(e.to, handlers);
    texts.push_back(e.edge.text);
  }
  std::sort(texts.begin(), texts.end());
  EXPECT_EQ(texts, (Texts{"['deeper']", "['handlers']"}));
  auto out = NamedEdgesOut(g, {handlers});
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 5u);
  std::vector<std::string> items;
  for (const NamedEdge& e : *out) items.push_back(e.edge.text);
  std::sort(items.begin(), items.end());
  EXPECT_EQ(items, (Texts{"[0]", "[1]", "[2]", "[3]", "[4]"}));
  EXPECT_EQ(NamedEdgesOut(g, {g.size()}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace annex::heap
