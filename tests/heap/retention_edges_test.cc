// DescribeEdge for each kind of reference, safe key rendering, and proof
// that naming never runs the objects' Python code.
#include <Python.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

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
  // Case c of a target list of (from, [to, ...]) tuples: sets `from`
  // and returns the tos (borrowed, as the list holds them).
  static std::vector<PyObject*> CaseTos(PyObject* cases, Py_ssize_t c,
                                        PyObject** from) {
    PyObject* item = PyList_GET_ITEM(cases, c);
    *from = PyTuple_GET_ITEM(item, 0);
    PyObject* list = PyTuple_GET_ITEM(item, 1);
    std::vector<PyObject*> tos;
    tos.reserve(PyList_GET_SIZE(list));
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); ++i) {
      tos.push_back(PyList_GET_ITEM(list, i));
    }
    return tos;
  }
  // ForEachEdgeTextFrom(from, tos) of every case into `texts`: each
  // tos[i] exactly once, with the id of DescribeEdge's text; equal texts
  // (in any case, and in earlier calls sharing `ids_by_text`) get one id,
  // different texts different ids.
  static void ExpectTextsMatch(PyObject* cases, EdgeTexts& texts,
                               std::map<std::string, uint32_t>& ids_by_text) {
    for (Py_ssize_t c = 0; c < PyList_GET_SIZE(cases); ++c) {
      PyObject* from = nullptr;
      const std::vector<PyObject*> tos = CaseTos(cases, c, &from);
      std::vector<int> calls(tos.size(), 0);
      std::vector<uint32_t> id_of(tos.size(), 0);
      ForEachEdgeTextFrom(from, tos, texts, [&](size_t i, uint32_t id) {
        ASSERT_LT(i, tos.size());
        ++calls[i];
        id_of[i] = id;
      });
      EXPECT_FALSE(PyErr_Occurred()) << "case " << c;
      for (size_t i = 0; i < tos.size(); ++i) {
        ASSERT_EQ(calls[i], 1) << "case " << c << " item " << i;
        ASSERT_LT(id_of[i], texts.size()) << "case " << c << " item " << i;
        const std::string one = DescribeEdge(from, tos[i]).text;
        EXPECT_EQ(texts.Text(id_of[i]), one) << "case " << c << " item " << i;
        auto [it, added] = ids_by_text.emplace(one, id_of[i]);
        EXPECT_EQ(it->second, id_of[i])
            << "case " << c << " item " << i << ": " << one;
        if (added) {
          for (const auto& [text, id] : ids_by_text) {
            if (text != one) {
              EXPECT_NE(id, id_of[i]) << one << " and " << text;
            }
          }
        }
      }
    }
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

// DescribeEdgesFrom scans a container once for many referents; it must
// name each exactly as DescribeEdge does (the first match: the lowest
// index of an object held twice, a dict entry's value before its key),
// fall back for references that are not container storage (a dict
// subclass's attribute), and run no Python code (TearDown).
TEST_F(EdgeNamesTest, BulkNamingMatchesOneByOne) {
  ASSERT_TRUE(RunTargetCode(R"py(
class DSub(dict):
    pass
def _bulk_setup():
    global bulk_cases
    objs = [Recorder() for i in range(12)]  # hashable by identity
    lst = objs[:6] + [objs[2], weird, held] + objs[6:] + [objs[0]]
    tup = tuple(reversed(lst))
    a, b = objs[0], objs[1]
    d = {a: b, b: a}
    d.update((str(i), o) for i, o in enumerate(objs[2:]))
    d[weird] = target
    ds = DSub((str(i), o) for i, o in enumerate(objs[:9]))
    ds.attr = objs[11]
    bulk_cases = [
        (lst, objs + [weird, held]),
        (tup, objs + [weird, held]),
        (d, objs + [weird, target]),
        (ds, objs[:9] + [objs[11]]),
        (lst, objs[:3]),  # below the bulk threshold: one by one
        # In item order (as byvia asks): named without the hash set, all
        # of them, or up to the first item not asked for (objs[5]).
        (list(objs), objs),
        (tuple(objs), objs),
        (objs + [objs[0], weird], objs + [weird]),
        (list(objs), objs[:5] + objs[6:]),
        (objs[:4] + [weird] + objs[4:], objs + [weird]),
        # In reverse (as CPython's list and tuple traverse): without the
        # hash set only when every item is asked for; else the lowest
        # index of an object held twice still wins.
        (list(objs), objs[::-1]),
        (tuple(objs), objs[::-1]),
        (objs + [objs[0]], objs[::-1]),
        (objs[::-1] + objs[:1], objs[1:] + objs[:1]),
    ]
_bulk_setup()
del _bulk_setup
Recorder.calls.clear()
)py"));
  PyObject* cases = EvalTarget("bulk_cases");
  ASSERT_NE(cases, nullptr);
  std::vector<std::pair<PyObject*, PyObject*>> all_pairs;
  std::vector<Edge> all_expected;
  // The same names as ids (byvia's way): one EdgeTexts for every case.
  EdgeTexts texts;
  std::map<std::string, uint32_t> ids_by_text;
  ExpectTextsMatch(cases, texts, ids_by_text);
  for (Py_ssize_t c = 0; c < PyList_GET_SIZE(cases); ++c) {
    PyObject* from = nullptr;
    const std::vector<PyObject*> tos = CaseTos(cases, c, &from);
    std::vector<Edge> bulk;
    DescribeEdgesFrom(from, tos, &bulk);
    ASSERT_EQ(bulk.size(), tos.size());
    for (size_t i = 0; i < tos.size(); ++i) {
      const Edge one = DescribeEdge(from, tos[i]);
      EXPECT_EQ(bulk[i].text, one.text) << "case " << c << " item " << i;
      EXPECT_EQ(bulk[i].kind, one.kind) << "case " << c << " item " << i;
      EXPECT_EQ(bulk[i].name, one.name) << "case " << c << " item " << i;
      EXPECT_NE(one.kind, EdgeKind::kInternal) << "case " << c << " item " << i;
      // Each pair twice, holders interleaved: DescribeEdges names it once
      // and gives both copies, in the input's order.
      all_pairs.emplace_back(from, tos[i]);
      all_expected.push_back(one);
    }
  }
  const size_t n = all_pairs.size();
  for (size_t i = 0; i < n; ++i) {
    all_pairs.push_back(all_pairs[n - 1 - i]);
    all_expected.push_back(all_expected[n - 1 - i]);
  }
  std::vector<Edge> named = DescribeEdges(all_pairs);
  ASSERT_EQ(named.size(), all_pairs.size());
  for (size_t i = 0; i < named.size(); ++i) {
    EXPECT_EQ(named[i].text, all_expected[i].text) << i;
    EXPECT_EQ(named[i].kind, all_expected[i].kind) << i;
  }
  // The case that matters: the lowest index, the value before the key.
  EXPECT_EQ(Text("bulk_cases[0][0]", "bulk_cases[0][1][2]"), "[2]");
  EXPECT_EQ(Text("bulk_cases[2][0]", "bulk_cases[2][1][0]"), ".keys()[0]");
  Py_DECREF(cases);
  EXPECT_FALSE(PyErr_Occurred());
  ASSERT_TRUE(RunTargetCode("del bulk_cases, DSub"));
}

// ForEachEdgeTextFrom's own ways to a text: an instance's inline
// attributes by key object (cached per key, across instances; an
// attribute holding the class is named by its key), an
// instance dict's values, the type pointer, slots and the other built-in
// kinds through DescribeEdge, a small tuple's items by index; and the
// ids of items against the same texts interned as strings.
TEST_F(EdgeNamesTest, EdgeTextsMatchDescribeEdge) {
  ASSERT_TRUE(RunTargetCode(R"py(
class Plain:
    pass
def _texts_setup():
    global text_cases
    a, b, c = Recorder(), Recorder(), Recorder()
    p = Plain(); p.x = a; p.y = b; p.z = a  # a twice: the first key wins
    q = Plain(); q.y = c  # the same key in another instance
    n = Plain(); setattr(n, 'not id', a)
    w = Plain(); w.__dict__; w.x = c; setattr(w, 'not id', b)  # a dict
    k = Plain(); k.kind = Plain  # an attribute before the type pointer
    text_cases = [
        (k, [Plain]),
        (p, [a, b, Plain]),
        (q, [c]),
        (n, [a]),
        (w, [c, b, w.__dict__, Plain]),
        (slotted, [held]),
        (weird, [held, Weird]),
        ((c, b), [b, c]),
        ([a, b, c, a], [c, a]),
        ({5: a, 'y': b}, [a, b]),
        (cell, [held]),
    ]
_texts_setup()
del _texts_setup
Recorder.calls.clear()
)py"));
  PyObject* cases = EvalTarget("text_cases");
  ASSERT_NE(cases, nullptr);
  EdgeTexts texts;
  std::map<std::string, uint32_t> ids_by_text;
  ExpectTextsMatch(cases, texts, ids_by_text);
  EXPECT_EQ(ids_by_text.count(".x"), 1u);
  EXPECT_EQ(ids_by_text.count(".y"), 1u);
  EXPECT_EQ(ids_by_text.count(".__dict__['not id']"), 1u);
  EXPECT_EQ(ids_by_text.count(".__class__"), 1u);
  EXPECT_EQ(ids_by_text.count(".second"), 1u);
  EXPECT_EQ(ids_by_text.count(".val"), 1u);
  EXPECT_EQ(ids_by_text.count(".__dict__"), 1u);
  EXPECT_EQ(ids_by_text.count(".kind"), 1u);
  EXPECT_EQ(texts.size(), ids_by_text.size());
  // "[5]" as a dict's value (a string first) and as item 5: one id. A
  // large index is a string like any other text, by either way.
  EXPECT_EQ(texts.OfItem(5), ids_by_text.at("[5]"));
  EXPECT_EQ(texts.Intern("[5]"), texts.OfItem(5));
  EXPECT_NE(texts.Intern("[05]"), texts.OfItem(5));
  EXPECT_EQ(texts.Text(texts.Intern("[05]")), "[05]");
  const uint32_t big = texts.OfItem(kItemIds);
  EXPECT_EQ(texts.Intern("[" + std::to_string(kItemIds) + "]"), big);
  EXPECT_EQ(texts.Text(big), "[" + std::to_string(kItemIds) + "]");
  Py_DECREF(cases);
  EXPECT_FALSE(PyErr_Occurred());
  ASSERT_TRUE(RunTargetCode("del text_cases, Plain"));
}

// ForEachPlainEdgeFrom names without Python what it can, exactly as
// DescribeEdge names it (the lowest index of an item held twice, an
// attribute before the class pointer, inline or in a dict), and says no
// for a holder or an edge it cannot name: a dict's, a slot, a cell's, a
// list subclass's attribute, a type's.
TEST_F(EdgeNamesTest, PlainEdgesMatchDescribeEdge) {
  ASSERT_TRUE(RunTargetCode(R"py(
class Plain:
    pass
class LSub(list):
    pass
def _plain_setup():
    global plain_cases, plain_expected
    a, b, c = Recorder(), Recorder(), Recorder()
    p = Plain(); p.x = a; p.y = b; p.kind = Plain
    w = Plain(); w.__dict__; w.x = c; setattr(w, 'not id', b)  # a dict
    ls = LSub([a, b]); ls.extra = c
    plain_cases = [
        (p, [a, b, Plain]),
        (w, [c, b, w.__dict__, Plain]),
        ((c, b, c), [c, b]),
        ([a, b, a, c], [c, a, b]),
        (ls, [b, a]),
        (ls, [b, c]),
        ({5: a, 'y': b}, [a]),
        (slotted, [held]),
        (cell, [held]),
        (C, [held]),
        (p, [c]),
    ]
    plain_expected = [True, True, True, True, True,
                      False, False, False, False, False, False]
_plain_setup()
del _plain_setup
Recorder.calls.clear()
)py"));
  PyObject* cases = EvalTarget("plain_cases");
  PyObject* expected = EvalTarget("plain_expected");
  ASSERT_NE(cases, nullptr);
  ASSERT_NE(expected, nullptr);
  EdgeTexts texts;
  AttributesFirstTypes types;
  for (Py_ssize_t c = 0; c < PyList_GET_SIZE(cases); ++c) {
    PyObject* from = nullptr;
    const std::vector<PyObject*> tos = CaseTos(cases, c, &from);
    std::vector<std::string> text_of(tos.size());
    std::vector<int> calls(tos.size(), 0);
    const bool plain = ForEachPlainEdgeFrom(
        from, tos, types, [&](size_t i, const PlainEdge& edge) {
          ASSERT_LT(i, tos.size());
          ++calls[i];
          switch (edge.kind) {
            case PlainEdge::kItem:
              text_of[i] = "[" + std::to_string(edge.index) + "]";
              break;
            case PlainEdge::kAttribute:
              text_of[i] = texts.Text(texts.OfAttribute(edge.key));
              break;
            case PlainEdge::kClass:
              text_of[i] = ".__class__";
              break;
            case PlainEdge::kInstanceDict:
              text_of[i] = ".__dict__";
              break;
          }
        });
    EXPECT_EQ(plain, PyList_GET_ITEM(expected, c) == Py_True) << "case " << c;
    EXPECT_FALSE(PyErr_Occurred()) << "case " << c;
    for (size_t i = 0; plain && i < tos.size(); ++i) {
      EXPECT_EQ(calls[i], 1) << "case " << c << " item " << i;
      EXPECT_EQ(text_of[i], DescribeEdge(from, tos[i]).text)
          << "case " << c << " item " << i;
    }
  }
  Py_DECREF(cases);
  Py_DECREF(expected);
  EXPECT_FALSE(PyErr_Occurred());
  ASSERT_TRUE(RunTargetCode("del plain_cases, plain_expected, Plain, LSub"));
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
