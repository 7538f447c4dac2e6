// DescribeEdge for each kind of reference, safe key rendering, and proof
// that naming never runs the objects' Python code.
#include <Python.h>

#include <string>

#include "gtest/gtest.h"
#include "monitor/heap/edge_names.h"
#include "tests/testing/python_main.h"

namespace annex::heap {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::RunTargetCode;

constexpr char kSetup[] = R"py(
import sys

class Recorder:
    calls = []

class Weird(Recorder):
    def __repr__(self):
        Recorder.calls.append('repr')
        return 'weird'
    def __eq__(self, other):
        Recorder.calls.append('eq')
        return False
    def __hash__(self):
        return 7
    def __getattribute__(self, name):
        Recorder.calls.append('getattribute ' + name)
        return object.__getattribute__(self, name)
    def __getattr__(self, name):
        Recorder.calls.append('getattr ' + name)
        raise AttributeError(name)
    def __iter__(self):
        Recorder.calls.append('iter')
        return iter(())

class StrSub(str):
    def __repr__(self):
        Recorder.calls.append('str repr')
        return 'sub'

class WeirdSet(set):
    def __iter__(self):
        Recorder.calls.append('set iter')
        return set.__iter__(self)

class Slotted:
    __slots__ = ('first', 'second')

def _edges_setup():
    global target, weird, held, slotted, keyed, wset, cell, method, C, D
    target = object()
    weird = Weird()
    held = [1.5]
    object.__setattr__(weird, 'val', held)
    slotted = Slotted()
    slotted.second = held
    keys = ['s', 3, 2.5, b'b', None, True, (1, ('a', None)), StrSub('z'), weird,
            'not an identifier']
    keyed = {k: [i] for i, k in enumerate(keys)}  # values: fresh lists
    wset = WeirdSet([target])
    def outer():
        v = held
        return lambda: v
    cell = outer().__closure__[0]
    class C:
        attr = held
        def m(self):
            pass
    class D(C):
        pass
    method = D().m
_edges_setup()
del _edges_setup
Recorder.calls.clear()
)py";

class EdgeNamesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(RunTargetCode(kSetup)); }

  // DescribeEdge(eval(from), eval(to)).
  static Edge Describe(const std::string& from, const std::string& to) {
    PyObject* f = EvalTarget(from);
    PyObject* t = EvalTarget(to);
    EXPECT_NE(f, nullptr) << from;
    EXPECT_NE(t, nullptr) << to;
    Edge e;
    if (f && t) e = DescribeEdge(f, t);
    EXPECT_FALSE(PyErr_Occurred());
    Py_XDECREF(f);
    Py_XDECREF(t);
    return e;
  }
  static std::string Text(const std::string& from, const std::string& to) {
    return Describe(from, to).text;
  }
  static std::string Calls() {
    PyObject* calls = EvalTarget("repr(Recorder.calls)");
    std::string out = calls ? PyUnicode_AsUTF8(calls) : "?";
    Py_XDECREF(calls);
    return out;
  }
  void TearDown() override {
    EXPECT_EQ(Calls(), "[]") << "naming ran the objects' Python code";
  }
};

TEST_F(EdgeNamesTest, ContainerItems) {
  EXPECT_EQ(Text("[target, held]", "held"), "[1]");
  EXPECT_EQ(Text("(held,)", "held"), "[0]");
  EXPECT_EQ(Describe("{held.__class__}", "list").kind, EdgeKind::kSetMember);
  EXPECT_EQ(Text("{held.__class__}", "list"), "<member>");
  EXPECT_EQ(Text("wset", "target"), "<member>");
  EXPECT_EQ(Text("{'k': held}", "held"), "['k']");
  EXPECT_EQ(Text("{held.__class__: 1}", "list"), ".keys()[0]");
  EXPECT_EQ(Describe("{held.__class__: 1}", "list").kind, EdgeKind::kDictKey);
}

TEST_F(EdgeNamesTest, DictKeysRenderSafely) {
  auto key_text = [](const std::string& value) { return Text("keyed", value); };
  EXPECT_EQ(key_text("keyed['s']"), "['s']");
  EXPECT_EQ(key_text("keyed[3]"), "[3]");
  EXPECT_EQ(key_text("keyed[2.5]"), "[2.5]");
  EXPECT_EQ(key_text("keyed[b'b']"), "[b'b']");
  EXPECT_EQ(key_text("keyed[None]"), "[None]");
  EXPECT_EQ(key_text("keyed[True]"), "[True]");
  EXPECT_EQ(key_text("keyed[(1, ('a', None))]"), "[(1, ('a', None))]");
  EXPECT_EQ(key_text("keyed['not an identifier']"), "['not an identifier']");
  // A str subclass and a user class may run code in repr: opaque.
  std::string sub =
      key_text("[v for k, v in keyed.items() if type(k) is StrSub][0]");
  EXPECT_EQ(sub.rfind("[<key of type StrSub at 0x", 0), 0u) << sub;
  std::string weird =
      key_text("[v for k, v in keyed.items() if k is weird][0]");
  EXPECT_EQ(weird.rfind("[<key of type Weird at 0x", 0), 0u) << weird;
  RunTargetCode("Recorder.calls.clear()");  // the list comprehensions above
}

TEST_F(EdgeNamesTest, AttributesSlotsAndDicts) {
  EXPECT_EQ(Text("weird", "held"), ".val");
  EXPECT_EQ(Describe("weird", "held").name, "val");
  EXPECT_EQ(Text("slotted", "held"), ".second");
  EXPECT_EQ(Text("weird", "Weird"), ".__class__");
  EXPECT_EQ(Describe("weird", "Weird").kind, EdgeKind::kType);
  EXPECT_EQ(Text("cell", "held"), ".cell_contents");
  RunTargetCode("Recorder.calls.clear()");
}

TEST_F(EdgeNamesTest, ClassesModulesFunctionsAndMethods) {
  PyObject* c = EvalTarget("C");
  PyObject* attr = EvalTarget("held");
  PyObject* dict = reinterpret_cast<PyTypeObject*>(c)->tp_dict;
  EXPECT_EQ(DescribeEdge(c, dict).text, ".__dict__");
  EXPECT_EQ(DescribeEdge(dict, attr).text, "['attr']");
  Py_DECREF(attr);
  Py_DECREF(c);
  EXPECT_EQ(Text("D", "D.__mro__"), ".__mro__");
  EXPECT_EQ(Text("D", "D.__bases__"), ".__bases__");
  EXPECT_EQ(Text("D.__mro__", "C"), "[1]");
  EXPECT_EQ(Text("sys.modules['__main__']", "globals()"), ".__dict__");
  EXPECT_EQ(Text("method", "method.__self__"), ".__self__");
  EXPECT_EQ(Text("method", "method.__func__"), ".__func__");
  EXPECT_EQ(Text("method.__func__", "method.__func__.__code__"), ".__code__");
  EXPECT_EQ(Text("method.__func__", "globals()"), ".__globals__");
  EXPECT_EQ(Text("[].append", "[].append.__self__"), "<internal>")
      << "a fresh list each time: not the same object";
  EXPECT_EQ(Text("held.append", "held"), ".__self__");
}

TEST_F(EdgeNamesTest, NothingMatchesIsInternal) {
  Edge e = Describe("held", "target");
  EXPECT_EQ(e.kind, EdgeKind::kInternal);
  EXPECT_EQ(e.text, "<internal>");
}

// Counts allocations of the object domain (the one every Python object
// comes from) while installed. Where: GIL held (the test's thread).
struct AllocationCounter {
  AllocationCounter() {
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &inner);
    self = this;
    PyMemAllocatorEx counting{nullptr, Malloc, Calloc, Realloc, Free};
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &counting);
  }
  ~AllocationCounter() {
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &inner);
    self = nullptr;
  }
  static void* Malloc(void*, size_t n) {
    ++self->count;
    return self->inner.malloc(self->inner.ctx, n);
  }
  static void* Calloc(void*, size_t n, size_t size) {
    ++self->count;
    return self->inner.calloc(self->inner.ctx, n, size);
  }
  static void* Realloc(void*, void* p, size_t n) {
    ++self->count;
    return self->inner.realloc(self->inner.ctx, p, n);
  }
  static void Free(void*, void* p) { self->inner.free(self->inner.ctx, p); }

  static AllocationCounter* self;
  PyMemAllocatorEx inner;
  long count = 0;
};
AllocationCounter* AllocationCounter::self = nullptr;

// Naming a set member or a closure cell creates nothing in the target: no
// set iterator, no co_freevars tuple (a gc-tracked allocation there could
// start a collection in the middle of a question).
TEST_F(EdgeNamesTest, NamingSetMembersAndCellsAllocatesNothing) {
  ASSERT_TRUE(RunTargetCode("_ne_fn = (lambda v: (lambda: v))(held)\n"));
  PyObject* set = EvalTarget("wset");
  PyObject* member = EvalTarget("target");
  PyObject* fn = EvalTarget("_ne_fn");
  PyObject* closure = EvalTarget("_ne_fn.__closure__");
  PyObject* cell = EvalTarget("_ne_fn.__closure__[0]");
  ASSERT_TRUE(set && member && fn && closure && cell);
  Edge edge;
  Path path;
  long allocations = 0;
  {
    AllocationCounter counter;
    edge = DescribeEdge(set, member);
    path = DescribePath("x", {fn, closure, cell});
    allocations = counter.count;
  }
  EXPECT_EQ(edge.text, "<member>");
  ASSERT_EQ(path.edges.size(), 2u);
  EXPECT_EQ(path.edges[1].kind, EdgeKind::kClosureCell);
  EXPECT_EQ(path.edges[1].name, "v");
  EXPECT_EQ(allocations, 0);
  for (PyObject* o : {set, member, fn, closure, cell}) Py_DECREF(o);
  ASSERT_TRUE(RunTargetCode("del _ne_fn\n"));
}

TEST_F(EdgeNamesTest, FormatPathRendersRootNames) {
  Path p{"sys.modules",
         {{EdgeKind::kDictValue, "['app']", ""},
          {EdgeKind::kDict, ".__dict__", ""}}};
  EXPECT_EQ(FormatPath(p), "%R.sys.modules['app'].__dict__");
  p.root_name = "thread 12 frame";
  EXPECT_EQ(FormatPath(p), "%R['thread 12 frame']['app'].__dict__");
}

}  // namespace
}  // namespace annex::heap
