// hp's retention surface (x.sp, get_shpaths, referrers, referents, dominos,
// domisize, imdom, pathsin/pathsout; rp has hp_rp_test) and
// glue::RetentionView for hosts, on leaks planted at known places in the
// target.
#include <Python.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "glue/annex_access.h"
#include "glue/retention_view.h"
#include "glue/session.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/glue/hp_fixture.h"
#include "tests/testing/python_main.h"
#include "tests/testing/python_snippets.h"

namespace annex {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::kErrPrelude;
using ::annex::testing::RunTargetCode;

// The leaky application: module `leakmod` holds the leaks; a thread of
// module `sleepmod` (whose globals hold none of them, so its frames give no
// shortcut) sleeps with a local.
//
// Sizes count an instance's attribute values block, which sys.getsizeof
// leaves out: `values_block` measures it independently, as what the
// allocator gives a new instance beyond sys.getsizeof. On 3.11/3.12 a
// class's first ~30 instances get larger blocks than later ones, so the
// classes whose sizes are checked make 64 instances first (`_warm`).
constexpr char kSetup[] = R"py(
import sys, types
def values_block(make):
    import tracemalloc
    tracemalloc.start()
    o = make()
    n = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return n - sys.getsizeof(o)
def _module(name, source):
    m = types.ModuleType(name)
    sys.modules[name] = m
    exec(source, m.__dict__)
    return m

_module('leakmod', '''
import sys

class ModuleLeak:
    pass

class ClosureLeak:
    pass

class ClassAttrLeak:
    pass

class Handler:
    pass

class Config:
    cache = ClassAttrLeak()

class Node:
    __slots__ = ('peer', 'blob')

class Leaf:
    pass

class PlantedList(list):
    __slots__ = ()

class Twice:
    pass

class Thrice:
    pass

def _warm(c):
    for i in range(64):
        c()
_warm(ModuleLeak)
_warm(Leaf)
del _warm

def make_handler():
    cache = ClosureLeak()
    def handler():
        return cache
    return handler

registry = {'handlers': [Handler() for i in range(5)]}
registry['handlers'][3].cache = ModuleLeak()
alias = {'deep': {'deeper': registry['handlers']}}   # the longer route
handler = make_handler()

a, b = Node(), Node()
a.peer, b.peer = b, a
a.blob, b.blob = bytearray(300), bytearray(700)
keep = a
del a, b
cycle_size = sum(sys.getsizeof(o) for o in
                 [keep, keep.peer, keep.blob, keep.peer.blob])

plist = PlantedList([Leaf(), Leaf(), 'x' * 1000, 12345678901])
held_by = [plist]

_t = Twice()
two_ways = {'first': _t, 'second': [_t]}
_t = Thrice()
three_ways = {'a': [_t], 'b': [_t], 'c': [_t]}
del _t
''')

_module('sleepmod', '''
import threading, time

class SleepLocal:
    pass

stop = False
ready = threading.Event()

def sleeper():
    x = SleepLocal()
    ready.set()
    while not stop:
        time.sleep(0.002)

thread = threading.Thread(target=sleeper, daemon=True)
thread.start()
ready.wait()
''')

# Diamonds: `big` reaches its DiamondEnd by 2**100 shortest paths (each
# diamond [[x], [x]] doubles them), `small` its SmallEnd by 8, and `alt` by
# a longer route of 10 lists.
_module('diamod', '''
class DiamondEnd:
    pass

class SmallEnd:
    pass

def diamonds(k, end):
    x = end
    for i in range(k):
        x = [[x], [x]]
    return x

def nested(k, end):
    x = end
    for i in range(k):
        x = [x]
    return x

big = diamonds(100, DiamondEnd())
small = diamonds(3, SmallEnd())
alt = nested(10, small[0][0][0][0][0][0])
''')

# Module code running in a thread: frames 0 (wait) and 1 (the module's
# code) both hold its globals (frame 1 as f_locals too). `frmod` is a module
# in sys.modules; `nsmod`'s globals are a plain dict. Nothing else holds
# either dict (the thread's job is taken before exec runs).
import threading
class _ModuleThread(threading.Thread):
    def __init__(self, code, g):
        super().__init__(daemon=True)
        self._job = (code, g)
    def _take(self):
        job, self._job = self._job, None
        return job
    def run(self):
        exec(*self._take())

_MODULE_CODE = '''
import time
class Held:
    pass
held = Held()
def wait():
    ready.set()
    while not stop:
        time.sleep(0.002)
wait()
'''

def _run_in_thread(name, g):
    g.update(ready=threading.Event(), stop=False)
    t = _ModuleThread(compile(_MODULE_CODE, name + '.py', 'exec'), g)
    t.start()
    g['ready'].wait()
    return t

_frmod = types.ModuleType('frmod')
sys.modules['frmod'] = _frmod
frmod_thread = _run_in_thread('frmod', _frmod.__dict__)
_ns = {'__name__': 'nsmod'}
ns_thread = _run_in_thread('nsmod', _ns)
del _frmod

# A thread running a module's function: threading's frames hold the
# Thread (`self`), whose `_target` is the function, whose `__globals__`
# is the module's dict; as short a way into that dict as sys.modules'.
_tg = types.ModuleType('tgtmod')
sys.modules['tgtmod'] = _tg
exec('''
import threading, time
class Held:
    pass
held = [Held()]
ready = threading.Event()
stop = False
def work():
    ready.set()
    while not stop:
        time.sleep(0.002)
thread = threading.Thread(target=work, daemon=True)
thread.start()
ready.wait()
''', _tg.__dict__)
del _tg
)py";

// Annex-side helper: the set of the one heap row of kind `k`.
constexpr char kPrelude[] =
    "def row(k):\n"
    "    h = hp.heap()\n"
    "    n = len(h.all.splitlines()) - 2\n"
    "    found = [h[i] for i in range(n) if h[i].kind == k]\n"
    "    assert len(found) == 1, (k, len(found))\n"
    "    return found[0]\n";

long TargetLong(const std::string &expr) {
  PyObject *v = EvalTarget(expr);
  long r = v ? PyLong_AsLong(v) : -1;
  Py_XDECREF(v);
  return r;
}

class HpRetentionTest : public testing::HpFixture {
 protected:
  HpRetentionTest() : HpFixture(kPrelude) {}
  static void SetUpTestSuite() { ASSERT_TRUE(RunTargetCode(kSetup)); }
  static void TearDownTestSuite() {
    RunTargetCode(
        "sys.modules['sleepmod'].stop = True\n"
        "sys.modules['sleepmod'].thread.join()\n"
        "sys.modules['frmod'].stop = _ns['stop'] = True\n"
        "frmod_thread.join()\n"
        "ns_thread.join()\n"
        "sys.modules['tgtmod'].stop = True\n"
        "sys.modules['tgtmod'].thread.join()\n");
  }
};

TEST_F(HpRetentionTest, ShortestPathIsExactlyThePlantedOne) {
  EXPECT_EQ(Exec("print(row('leakmod.ModuleLeak').sp)"),
            " 0: %R.sys.modules['leakmod'].__dict__['registry']['handlers'][3]"
            ".cache\n");
  EXPECT_EQ(Exec("print(row('leakmod.ClosureLeak').sp)"),
            " 0: %R.sys.modules['leakmod'].__dict__['handler'].__closure__[0]"
            ".cell_contents\n");
  EXPECT_EQ(Exec("print(row('leakmod.ClassAttrLeak').sp)"),
            " 0: %R.sys.modules['leakmod'].__dict__['Config'].__dict__['cache']"
            "\n");
  const long ident = TargetLong("sys.modules['sleepmod'].thread.ident");
  EXPECT_EQ(
      Exec("print(row('sleepmod.SleepLocal').sp)"),
      " 0: %R['thread " + std::to_string(ident) + " frame 0'].f_locals['x']\n");
  // The cycle: its nearest member is the one the module holds.
  EXPECT_EQ(Exec("print(row('leakmod.Node').sp)"),
            " 0: %R.sys.modules['leakmod'].__dict__['keep']\n");
  // sp is an annex.Paths: structured too.
  EXPECT_EQ(
      Exec(
          "p = row('leakmod.ClassAttrLeak').sp\n"
          "print(p.numpaths, p.paths[0][0], [e[:2] for e in p.paths[0][1]])\n"),
      "1 sys.modules [('dict_value', \"['leakmod']\"), ('dict', "
      "'.__dict__'), ('dict_value', \"['Config']\"), ('dict', "
      "'.__dict__'), ('dict_value', \"['cache']\")]\n");
}

TEST_F(HpRetentionTest, DomisizeEqualsTheTargetsGetsizeof) {
  EXPECT_EQ(
      Exec("x = row('leakmod.Node')\n"
           "print(x.count, x.domisize, x.dominos.count)\n"),
      "2 " + std::to_string(TargetLong("sys.modules['leakmod'].cycle_size")) +
          " 4\n");
  // Two Leaf instances, each with its values block.
  const long plist =
      TargetLong(
          "(lambda l: sys.getsizeof(l) + sum(sys.getsizeof(o) for o in l))"
          "(sys.modules['leakmod'].plist)") +
      2 * TargetLong("values_block(sys.modules['leakmod'].Leaf)");
  EXPECT_GT(plist, 0);
  EXPECT_EQ(Exec("x = row('leakmod.PlantedList')\n"
                 "d = x.dominos\n"
                 "print(x.domisize, d.size, d.count)\n"),
            std::to_string(plist) + " " + std::to_string(plist) + " 5\n");
  EXPECT_EQ(Exec("print(row('leakmod.ModuleLeak').domisize)"),
            std::to_string(TargetLong(
                "sys.getsizeof(sys.modules['leakmod'].registry['handlers'][3]"
                ".cache) + values_block(sys.modules['leakmod'].ModuleLeak)")) +
                "\n");
}

TEST_F(HpRetentionTest, ReferrersAndReferentsAgreeWithGc) {
  // Computed in the target by gc, as sorted ids.
  ASSERT_TRUE(RunTargetCode(
      "import gc\n"
      "_p = sys.modules['leakmod'].plist\n"
      "gc_referrers = sorted(id(r) for r in gc.get_referrers(_p)\n"
      "                      if r is not globals())\n"
      "gc_referents = sorted(id(r) for r in gc.get_referents(_p))\n"
      "del _p\n"));
  const std::string expected_in = [] {
    PyObject *v = EvalTarget("repr(gc_referrers)");
    std::string r = v ? PyUnicode_AsUTF8(v) : "";
    Py_XDECREF(v);
    return r;
  }();
  const std::string expected_out = [] {
    PyObject *v = EvalTarget("repr(gc_referents)");
    std::string r = v ? PyUnicode_AsUTF8(v) : "";
    Py_XDECREF(v);
    return r;
  }();
  ASSERT_NE(expected_in, "[]");
  ASSERT_NE(expected_out, "[]");
  const std::string ids =
      "def ids(s):\n"
      "    return sorted(int(l.split()[0], 16) for l in "
      "s.byid.all.splitlines())\n";
  EXPECT_EQ(Exec(ids + "x = row('leakmod.PlantedList')\n"
                       "print(ids(x.referrers))\n"
                       "print(ids(x.referents))\n"),
            expected_in + "\n" + expected_out + "\n");
  EXPECT_EQ(Exec("x = row('leakmod.PlantedList')\n"
                 "print(x.referrers.count, x.referents.count, "
                 "x.imdom.kind == 'dict of module')\n"),
            "2 5 True\n");
  EXPECT_EQ(Exec("x = row('leakmod.Node')\n"
                 "print(x.imdom.kind == 'dict of module', x.imdom.count)\n"),
            "True 1\n");
  ASSERT_TRUE(RunTargetCode("del gc_referrers, gc_referents"));
}

TEST_F(HpRetentionTest, AvoidingFindsTheSecondRoute) {
  const std::string first =
      " 0: %R.sys.modules['leakmod'].__dict__['two_ways']['first']\n";
  const std::string second =
      " 0: %R.sys.modules['leakmod'].__dict__['two_ways']['second'][0]\n";
  EXPECT_EQ(Exec("print(row('leakmod.Twice').sp)"), first);
  EXPECT_EQ(Exec("print(row('leakmod.Twice').sp.avoided(-1))"), second);
  EXPECT_EQ(Exec("p = row('leakmod.Twice').sp\n"
                 "print(row('leakmod.Twice').get_shpaths("
                 "avoid_edges=p.edges_at(-1)))\n"),
            second);
  // Avoiding the two_ways dict itself leaves no route at all.
  EXPECT_EQ(Exec("x = row('leakmod.Twice')\n"
                 "d = x.referrers - row('list')\n"
                 "print(d.count, x.get_shpaths(avoid_nodes=d))\n"),
            "1 (no path from the roots)\n");
  // ... and avoiding nodes given as addresses works the same.
  EXPECT_EQ(Exec("x = row('leakmod.Twice')\n"
                 "p = x.sp\n"
                 "print(x.get_shpaths(avoid_nodes=[p.paths[0][1][-1][2]]))\n"),
            "(no path from the roots)\n");
}

TEST_F(HpRetentionTest, LimitCapsThePaths) {
  // Three equal routes; paths come in node order, so compare as sets.
  const std::string prefix =
      " %R.sys.modules['leakmod'].__dict__['three_ways']";
  const std::string all = Exec(
      "p = row('leakmod.Thrice').get_shpaths(limit=0)\n"
      "print(p.numpaths, p.truncated, len(p))\n"
      "print('\\n'.join(sorted(' ' + path.text for path in p)))\n");
  EXPECT_EQ(all, "3 False 3\n" + prefix + "['a'][0]\n" + prefix + "['b'][0]\n" +
                     prefix + "['c'][0]\n");
  // numpaths counts all three; two are fetched.
  EXPECT_EQ(Exec("x = row('leakmod.Thrice')\n"
                 "full = str(x.get_shpaths(limit=0)).splitlines()\n"
                 "p = x.get_shpaths(limit=2)\n"
                 "lines = str(p).splitlines()\n"
                 "print(p.numpaths, p.truncated, len(p), len(lines))\n"
                 "print(lines[:2] == full[:2], lines[2])\n"),
            "3 True 2 3\nTrue <1 more path not fetched (limit=2; "
            "get_shpaths(limit=...) fetches more)>\n");
  EXPECT_EQ(Exec("p = row('leakmod.Thrice').get_shpaths(limit=3)\n"
                 "print(p.numpaths, p.truncated)\n"),
            "3 False\n");
  // The default limit is 20.
  EXPECT_EQ(Exec("print(row('leakmod.Thrice').sp.limit)"), "20\n");
}

TEST_F(HpRetentionTest, PathsInAndOutNameEachReference) {
  const std::string in = Exec("print(row('leakmod.PlantedList').pathsin)");
  EXPECT_NE(in.find("['plist'] -> <leakmod.PlantedList at 0x"),
            std::string::npos)
      << in;
  EXPECT_NE(in.find(">[0] -> <leakmod.PlantedList at 0x"), std::string::npos)
      << in;
  EXPECT_EQ(std::count(in.begin(), in.end(), '\n'), 3) << in;
  const std::string out = Exec("print(row('leakmod.PlantedList').pathsout)");
  for (const char *edge :
       {">[0] -> <leakmod.Leaf", ">[1] -> <leakmod.Leaf", ">[2] -> <str",
        ">[3] -> <int", ">.__class__ -> <type"}) {
    EXPECT_NE(out.find(edge), std::string::npos) << edge << "\n" << out;
  }
}

TEST_F(HpRetentionTest, BadArgumentsRaiseClearExceptions) {
  const std::string out =
      Exec(std::string("x = row('leakmod.Twice')\n") + kErrPrelude +
           "print(err(lambda: x.get_shpaths(limit=-1)))\n"
           "print(err(lambda: x.get_shpaths(limit='3')))\n"
           "print(err(lambda: x.get_shpaths(avoid_edges=[1])))\n"
           "print(err(lambda: x.get_shpaths(avoid_edges=[(1, 2, 3)])))\n"
           "print(err(lambda: x.get_shpaths(avoid_nodes=1.5)))\n"
           "print(err(lambda: x.get_shpaths(avoid_nodes=[-1])))\n"
           "print(err(lambda: x.get_shpaths(5)))\n"
           "print(err(lambda: x.get_rp(depth=-1)))\n"
           "print(err(lambda: x.get_rp(depth='deep')))\n"
           "print(err(lambda: x.get_rp(stopkind=3)))\n"
           "print(err(lambda: x.get_rp(stopkind=[3])))\n"
           "print(err(lambda: x.sp.avoided()))\n"
           "print(err(lambda: x.sp.edges_at('last')))\n"
           "print(err(lambda: x.get_shpaths(src=1.5)))\n"
           "print(err(lambda: x.get_shpaths(src=['a'])))\n"
           "print(err(lambda: x.get_shpaths(avoid_levels=['last'])))\n"
           "print(err(lambda: x.sp[5]))\n"
           "print(err(lambda: x.sp['a']))\n"
           "print(err(lambda: x.sp.avoided('last')))\n");
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos;
       start = nl + 1) {
    lines.push_back(out.substr(start, nl - start));
  }
  ASSERT_EQ(lines.size(), 19u) << out;
  const char *expected_types[] = {
      "ValueError", "TypeError",  "TypeError",  "TypeError", "TypeError",
      "TypeError",  "TypeError",  "ValueError", "TypeError", "TypeError",
      "TypeError",  "TypeError",  "TypeError",  "TypeError", "TypeError",
      "TypeError",  "IndexError", "TypeError",  "TypeError"};
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].substr(0, lines[i].find(':')), expected_types[i])
        << lines[i];
  }
  EXPECT_NE(lines[0].find("limit must be >= 0"), std::string::npos);
  EXPECT_NE(lines[2].find("(from, to) address pairs"), std::string::npos);
  EXPECT_NE(lines[4].find("avoid_nodes must be an IdSet"), std::string::npos);
  EXPECT_NE(lines[7].find("depth must be between"), std::string::npos);
  EXPECT_NE(lines[13].find("src must be an IdSet"), std::string::npos);
  EXPECT_NE(lines[14].find("src must hold addresses"), std::string::npos);
  EXPECT_NE(lines[15].find("avoid_levels must hold ints"), std::string::npos);
  EXPECT_EQ(lines[16], "IndexError: path 5 out of range: 1 of 1 paths fetched");
}

TEST_F(HpRetentionTest, PathIsAnObjectWithItsEdges) {
  EXPECT_EQ(Exec("p = row('leakmod.ModuleLeak').sp\n"
                 "print(len(p), p.depth(), p.numpaths, p.truncated)\n"
                 "print(repr(p[0]))\n"
                 "print(p[0].text, len(p[0]), p[0].depth(), p[0].root)\n"
                 "print([e[:2] for e in p[0].edges])\n"
                 "print(list(p) == p.aslist() == [p[0]] == p[-1:])\n"
                 // Paths are made on first use, once: p[-1] is p[0].
                 "print(p[-1] is p[0], p[-1].index)\n"
                 "try:\n    p[1]\nexcept IndexError as e:\n    print(e)\n"),
            "1 6 1 False\n"
            " 0: %R.sys.modules['leakmod'].__dict__['registry']['handlers'][3]"
            ".cache\n"
            "%R.sys.modules['leakmod'].__dict__['registry']['handlers'][3]"
            ".cache 6 6 sys.modules\n"
            "[('dict_value', \"['leakmod']\"), ('dict', '.__dict__'), "
            "('dict_value', \"['registry']\"), ('dict_value', "
            "\"['handlers']\"), ('index', '[3]'), ('attribute', '.cache')]\n"
            "True\nTrue 0\npath 1 out of range: 1 of 1 paths fetched\n");
  // The edges chain from the modules dict to the leak, by address.
  const long leak =
      TargetLong("id(sys.modules['leakmod'].registry['handlers'][3].cache)");
  const long modules = TargetLong("id(sys.modules)");
  EXPECT_EQ(
      Exec("e = row('leakmod.ModuleLeak').sp[0].edges\n"
           "print(all(a[3] == b[2] for a, b in zip(e, e[1:])))\n"
           "print(e[0][2], e[-1][3])\n"),
      "True\n" + std::to_string(modules) + " " + std::to_string(leak) + "\n");
  // No path: depth() is None.
  EXPECT_EQ(Exec("x = row('leakmod.Twice')\n"
                 "p = x.get_shpaths(avoid_nodes=x.referrers)\n"
                 "print(len(p), p.depth(), p.numpaths, p)\n"),
            "0 None 0 (no path from the roots)\n");
}

TEST_F(HpRetentionTest, NumpathsCountsAllPathsThroughDiamonds) {
  // 2**100 shortest paths, 3 + 2 * 100 steps each: counted, 20 fetched.
  const std::string big = "%R.sys.modules['diamod'].__dict__['big']";
  EXPECT_EQ(Exec("p = row('diamod.DiamondEnd').sp\n"
                 "print(p.numpaths == 2**100, len(p), p.depth(), p.truncated)\n"
                 "print(all(q.text.startswith(\"" +
                 big +
                 "\") for q in p))\n"
                 "print(len({q.text for q in p}), p.limit)\n"),
            "True 20 203 True\nTrue\n20 20\n");
  const long end = TargetLong("id(sys.modules['diamod'].big" + [] {
    std::string s;
    for (int i = 0; i < 100; ++i) s += "[0][0]";
    return s;
  }() + ")");
  EXPECT_EQ(Exec("e = row('diamod.DiamondEnd').sp[7].edges\n"
                 "print(len(e), {k for k, *_ in e[3:]}, e[-1][3])\n"),
            "203 {'index'} " + std::to_string(end) + "\n");
  // Ten a page; the page after the fetched ones says how many were not.
  const std::string not_fetched =
      "<1267650600228229401496703205356 more paths not fetched (limit=20; "
      "get_shpaths(limit=...) fetches more)>";
  EXPECT_EQ(
      Exec("p = row('diamod.DiamondEnd').sp\n"
           "first, second = str(p).splitlines(), str(p.more).splitlines()\n"
           "print(len(first), first[-1])\n"
           "print([l[:4] for l in first[:10]] == [repr(q)[:4] for q in "
           "p[:10]])\n"
           "print(len(second), second[0][:4], second[-1])\n"
           "print(str(p.more.more))\n"
           "print(len(p.all.splitlines()), p.all.splitlines()[-1])\n"),
      "11 <10 more paths. Type e.g. '_.more' to view.>\nTrue\n"
      "11 10:  " +
          not_fetched + "\n<No more paths>\n" + not_fetched + "\n21 " +
          not_fetched + "\n");
  // Eight paths through three diamonds, exactly these.
  std::string expected;
  for (const char *a : {"[0]", "[1]"}) {
    for (const char *b : {"[0]", "[1]"}) {
      for (const char *c : {"[0]", "[1]"}) {
        expected += std::string("%R.sys.modules['diamod'].__dict__['small']") +
                    a + "[0]" + b + "[0]" + c + "[0]\n";
      }
    }
  }
  EXPECT_EQ(Exec("p = row('diamod.SmallEnd').get_shpaths(limit=0)\n"
                 "print(p.numpaths, len(p), p.depth(), p.truncated)\n"
                 "print('\\n'.join(sorted(q.text for q in p)))\n"),
            "8 8 9 False\n" + expected);
}

TEST_F(HpRetentionTest, AvoidingLevelsCoversPathsNotFetched) {
  // One path fetched, but the last steps of all eight are avoided: the
  // route through `alt` is next.
  const std::string alt =
      " 0: %R.sys.modules['diamod'].__dict__['alt'][0][0][0][0][0][0][0][0]"
      "[0][0]\n";
  EXPECT_EQ(Exec("p = row('diamod.SmallEnd').get_shpaths(limit=1)\n"
                 "print(len(p.edges_at(-1)), p.numpaths)\n"
                 "q = p.copy_but_avoid_edges_at_levels(-1)\n"
                 "print(len(q.avoid_edges), q.numpaths, q.depth(), "
                 "q.limit)\n"
                 "print(q)\n"
                 "print(p.avoided(-1).avoided(-1))\n"),
            "1 8\n2 1 13 1\n" + alt + "(no path from the roots)\n");
}

TEST_F(HpRetentionTest, SrcStartsThePathsAtGivenObjects) {
  char start[32];
  std::snprintf(start, sizeof(start), "<list at 0x%lx>",
                static_cast<unsigned long>(
                    TargetLong("id(sys.modules['diamod'].small[1])")));
  std::string expected;
  for (const char *b : {"[0]", "[1]"}) {
    for (const char *c : {"[0]", "[1]"}) {
      expected += std::string(start) + "[0]" + b + "[0]" + c + "[0]\n";
    }
  }
  // From the top diamond's second side: two diamonds left, 4 paths.
  EXPECT_EQ(Exec("a = hp.iso('diamod.small[1]')\n"
                 "p = row('diamod.SmallEnd').get_shpaths(src=a)\n"
                 "print(p.numpaths, len(p), p.depth(), repr(p[0].root))\n"
                 "print('\\n'.join(sorted(q.text for q in p)))\n"),
            "4 4 5 ''\n" + expected);
  // The same given as an id; hp.Root is the roots.
  EXPECT_EQ(Exec("x = row('diamod.SmallEnd')\n"
                 "i = int(str(hp.iso('diamod.small[1]').byid).split()[0], 16)\n"
                 "print(sorted(q.text for q in x.get_shpaths(src=[i])) == "
                 "sorted(q.text for q in x.get_shpaths(src=hp.iso(i))))\n"
                 "print(x.get_shpaths(src=hp.Root).numpaths, x.sp.numpaths)\n"
                 "print(x.get_shpaths(src=hp.iso('leakmod.two_ways')))\n"
                 "print(x.get_shpaths(src=[8]))\n"
                 "print(x.get_shpaths(src=hp.iso('diamod.small[1]'), limit=1)"
                 ".avoided(0).numpaths)\n"),
            "True\n8 8\n(no path from src)\n"
            "(no path: no object of src is alive now)\n0\n");
}

TEST_F(HpRetentionTest, FramesRunningModuleCodeGiveOnePathFromTheModule) {
  // frmod's globals are held by two frames (three references): one path,
  // spelled from sys.modules.
  EXPECT_EQ(Exec("p = row('frmod.Held').sp\n"
                 "print(p.numpaths, p.depth())\n"
                 "print(p)\n"),
            "1 3\n 0: %R.sys.modules['frmod'].__dict__['held']\n");
  // A plain dict as globals: one path, from the innermost frame.
  const std::string ns_thread = std::to_string(TargetLong("ns_thread.ident"));
  EXPECT_EQ(
      Exec("p = row('nsmod.Held').sp\n"
           "print(p.numpaths, p.depth())\n"
           "print(p)\n"),
      "1 1\n 0: %R['thread " + ns_thread + " frame 0'].f_globals['held']\n");
}

TEST_F(HpRetentionTest, AModuleReachedFromAThreadsFramesGivesOnePath) {
  // tgtmod's dict is two steps from sys.modules and two from the frame
  // local `self` of threading's run (self._target.__globals__): the path
  // enters it from the module only.
  EXPECT_EQ(Exec("p = row('tgtmod.Held').sp\n"
                 "print(p.numpaths, p.depth())\n"
                 "print(p)\n"),
            "1 4\n 0: %R.sys.modules['tgtmod'].__dict__['held'][0]\n");
}

TEST_F(HpRetentionTest, RootListsTheRootsAndWhatEachHolds) {
  const std::string fr = std::to_string(TargetLong("frmod_thread.ident"));
  const std::string ns = std::to_string(TargetLong("ns_thread.ident"));
  const std::string root = Exec("print(hp.Root)");
  auto has = [&](const std::string &line_part) {
    return root.find(line_part) != std::string::npos;
  };
  EXPECT_TRUE(has("\n %R.sys.modules ")) << root;
  EXPECT_TRUE(has(" sys_modules ")) << root;
  EXPECT_TRUE(has("\n %R.builtins ")) << root;
  EXPECT_TRUE(has("\n %R['thread " + fr + " frame 0']")) << root;
  EXPECT_TRUE(has(" thread_" + fr + "_frame_0\n")) << root;
  EXPECT_TRUE(has("(paths: %R.sys.modules['frmod'].__dict__)")) << root;
  EXPECT_TRUE(has("(paths: %R['thread " + ns + " frame 0'].f_globals)"))
      << root;
  EXPECT_TRUE(has(" .f_locals['self'] ")) << root;
  EXPECT_TRUE(has(" (fallback)\n")) << root;
  // Attributes and names give what a root holds now, as IdSets.
  EXPECT_EQ(Exec("print(hp.Root.sys_modules.count, "
                 "hp.Root['sys.modules'].count)\n"
                 "f = hp.Root.thread_" +
                 fr +
                 "_frame_0\n"
                 "print((f & hp.iso('frmod.__dict__')).count, f.count > 1)\n"
                 "print('sys_modules' in dir(hp.Root), "
                 "'builtins' in dir(hp.Root))\n"
                 "print(hp.Root['thread " +
                 fr +
                 " frame 0'].count == "
                 "f.count)\n"),
            "1 1\n1 True\nTrue True\nTrue\n");
  const std::string errors =
      Exec(std::string(kErrPrelude) +
           "print(err_type(lambda: hp.Root['no such root']), "
           "err_type(lambda: hp.Root.nothing_here), "
           "err_type(lambda: hp.Root[3]))\n");
  EXPECT_EQ(errors, "KeyError AttributeError TypeError\n");
}

// annex.Paths, annex.Path and annex.Root are Python compiled into the
// binary from glue/module/python/paths.py: their code and tracebacks name it.
TEST_F(HpRetentionTest, PathsClassesNameTheirPyFile) {
  EXPECT_EQ(
      Exec("import annex, traceback\n"
           "print(annex.Paths.depth.__code__.co_filename)\n"
           "try:\n"
           "    hp.Root.nothing_here\n"
           "except AttributeError as e:\n"
           "    tb = traceback.extract_tb(e.__traceback__)[-1]\n"
           "    print(tb.filename, tb.name)\n"),
      "glue/module/python/paths.py\nglue/module/python/paths.py __getattr__\n");
}

// The C++ face for hosts: structured paths and retained size.
TEST_F(HpRetentionTest, HostApiGivesTypedPathsAndRetainedSize) {
  const uintptr_t leak = static_cast<uintptr_t>(
      TargetLong("id(sys.modules['leakmod'].registry['handlers'][3].cache)"));
  const uintptr_t modules =
      static_cast<uintptr_t>(TargetLong("id(sys.modules)"));
  const long leak_size = TargetLong(
      "sys.getsizeof(sys.modules['leakmod'].registry['handlers'][3].cache)"
      " + values_block(sys.modules['leakmod'].ModuleLeak)");
  glue::Session *session = monitor_.session();
  ASSERT_NE(session, nullptr);
  auto access = session->Get<glue::AnnexAccess>();
  ASSERT_TRUE(access.ok()) << access.status();
  absl::StatusOr<glue::PathsResult> paths = absl::UnknownError("not run");
  absl::StatusOr<uint64_t> retained = absl::UnknownError("not run");
  absl::StatusOr<glue::PathsResult> none = absl::UnknownError("not run");
  absl::StatusOr<glue::PathsResult> from = absl::UnknownError("not run");
  absl::StatusOr<std::vector<glue::RootEntry>> roots =
      absl::UnknownError("not run");
  const uintptr_t registry =
      static_cast<uintptr_t>(TargetLong("id(sys.modules['leakmod'].registry)"));
  ASSERT_TRUE((*access)
                  ->runtime()
                  .Run([&](const python::ThreadStates &) {
                    auto view = session->Get<glue::RetentionView>();
                    if (!view.ok()) return;
                    auto set = (*view)->Find({leak});
                    if (!set.ok() || set->count() != 1) return;
                    paths = (*view)->PathsTo(*set);
                    retained = (*view)->RetainedSize(*set);
                    auto dead = (*view)->Find({uintptr_t{8}});
                    if (dead.ok()) none = (*view)->PathsTo(*dead);
                    glue::PathsOptions options;
                    options.sources = std::vector<uintptr_t>{registry};
                    from = (*view)->PathsTo(*set, options);
                    roots = (*view)->Roots();
                  })
                  .ok());
  ASSERT_TRUE(from.ok()) << from.status();
  ASSERT_EQ(from->paths.size(), 1u);
  char start[48];
  std::snprintf(start, sizeof(start), "<dict at 0x%lx>",
                static_cast<unsigned long>(registry));
  EXPECT_EQ(from->paths[0].text, std::string(start) + "['handlers'][3].cache");
  EXPECT_EQ(from->paths[0].edges.front().from, registry);
  EXPECT_EQ(from->length, 3u);
  EXPECT_EQ(from->live_sources, 1u);
  ASSERT_TRUE(roots.ok()) << roots.status();
  ASSERT_GE(roots->size(), 3u);
  EXPECT_EQ((*roots)[0].name, "sys.modules");
  EXPECT_EQ((*roots)[0].address, modules);
  EXPECT_EQ((*roots)[0].use, heap::RootUse::kStart);
  // The sleeping thread's frame: its globals are reached through the
  // module, its local is a start.
  const std::string frame =
      "thread " +
      std::to_string(TargetLong("sys.modules['sleepmod'].thread.ident")) +
      " frame 0";
  int globals = 0, locals = 0;
  for (const glue::RootEntry &e : *roots) {
    if (e.name != frame) continue;
    if (e.edge == ".f_globals") {
      ++globals;
      EXPECT_EQ(e.use, heap::RootUse::kAlias);
      EXPECT_EQ(e.alias, "%R.sys.modules['sleepmod'].__dict__");
    }
    if (e.edge == ".f_locals['x']") {
      ++locals;
      EXPECT_EQ(e.use, heap::RootUse::kStart);
      EXPECT_EQ(e.kind, "sleepmod.SleepLocal");
    }
  }
  EXPECT_EQ(globals, 1);
  EXPECT_EQ(locals, 1);
  ASSERT_TRUE(paths.ok()) << paths.status();
  ASSERT_EQ(paths->paths.size(), 1u);
  EXPECT_EQ(paths->num_paths, 1u);
  EXPECT_EQ(paths->length, 6u);
  const glue::RetentionPath &p = paths->paths[0];
  EXPECT_EQ(p.root_name, "sys.modules");
  EXPECT_EQ(p.text,
            "%R.sys.modules['leakmod'].__dict__['registry']['handlers'][3]"
            ".cache");
  using heap::EdgeKind;
  const std::vector<std::pair<EdgeKind, std::string>> expected = {
      {EdgeKind::kDictValue, "['leakmod']"},
      {EdgeKind::kDict, ".__dict__"},
      {EdgeKind::kDictValue, "['registry']"},
      {EdgeKind::kDictValue, "['handlers']"},
      {EdgeKind::kIndex, "[3]"},
      {EdgeKind::kAttribute, ".cache"}};
  ASSERT_EQ(p.edges.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(p.edges[i].kind, expected[i].first) << i;
    EXPECT_EQ(p.edges[i].label, expected[i].second) << i;
    if (i > 0) {
      EXPECT_EQ(p.edges[i].from, p.edges[i - 1].to) << i;
    }
  }
  EXPECT_EQ(p.edges.back().name, "cache");
  EXPECT_EQ(p.edges.front().from, modules);
  EXPECT_EQ(p.edges.back().to, leak);
  ASSERT_TRUE(retained.ok()) << retained.status();
  EXPECT_EQ(*retained, static_cast<uint64_t>(leak_size));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->live_members, 0u);
  EXPECT_TRUE(none->paths.empty());
}

}  // namespace
}  // namespace annex
