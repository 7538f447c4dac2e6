// hp's retention surface (x.sp, get_shpaths, referrers, referents, dominos,
// domisize, imdom, rp, pathsin/pathsout) and glue::RetentionView for hosts,
// on leaks planted at known places in the target.
#include <Python.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "glue/annex_access.h"
#include "glue/retention_view.h"
#include "glue/session.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::EvalTarget;
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

class HpRetentionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(RunTargetCode(kSetup)); }
  static void TearDownTestSuite() {
    RunTargetCode(
        "sys.modules['sleepmod'].stop = True\n"
        "sys.modules['sleepmod'].thread.join()\n");
  }
  void SetUp() override { ASSERT_TRUE(monitor_.Start().ok()); }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }

  std::string Exec(const std::string &code) {
    auto out = monitor_.ExecInAnnex(std::string(kPrelude) + code);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : "";
  }

  Monitor monitor_;
};

TEST_F(HpRetentionTest, ShortestPathIsExactlyThePlantedOne) {
  EXPECT_EQ(Exec("print(row('leakmod.ModuleLeak').sp)"),
            " 0: %R.sys.modules['leakmod'].__dict__['registry']['handlers'][3]"
            ".cache\n\n");
  EXPECT_EQ(Exec("print(row('leakmod.ClosureLeak').sp)"),
            " 0: %R.sys.modules['leakmod'].__dict__['handler'].__closure__[0]"
            ".cell_contents\n\n");
  EXPECT_EQ(Exec("print(row('leakmod.ClassAttrLeak').sp)"),
            " 0: %R.sys.modules['leakmod'].__dict__['Config'].__dict__['cache']"
            "\n\n");
  const long ident = TargetLong("sys.modules['sleepmod'].thread.ident");
  EXPECT_EQ(Exec("print(row('sleepmod.SleepLocal').sp)"),
            " 0: %R['thread " + std::to_string(ident) +
                " frame 0'].f_locals['x']\n\n");
  // The cycle: its nearest member is the one the module holds.
  EXPECT_EQ(Exec("print(row('leakmod.Node').sp)"),
            " 0: %R.sys.modules['leakmod'].__dict__['keep']\n\n");
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
      "    return sorted(int(l.split()[0], 16) for l in s.byid.splitlines())\n";
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
      " 0: %R.sys.modules['leakmod'].__dict__['two_ways']['first']\n\n";
  const std::string second =
      " 0: %R.sys.modules['leakmod'].__dict__['two_ways']['second'][0]\n\n";
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
            "1 (no path from the roots)\n\n");
  // ... and avoiding nodes given as addresses works the same.
  EXPECT_EQ(Exec("x = row('leakmod.Twice')\n"
                 "p = x.sp\n"
                 "print(x.get_shpaths(avoid_nodes=[p.paths[0][1][-1][2]]))\n"),
            "(no path from the roots)\n\n");
}

TEST_F(HpRetentionTest, LimitCapsThePaths) {
  // Three equal routes; paths come in node order, so compare as sets.
  const std::string prefix =
      " %R.sys.modules['leakmod'].__dict__['three_ways']";
  const std::string all = Exec(
      "p = row('leakmod.Thrice').get_shpaths(limit=0)\n"
      "print(p.numpaths, p.truncated)\n"
      "print('\\n'.join(sorted(l.split(':', 1)[1] for l in "
      "p.splitlines())))\n");
  EXPECT_EQ(all, "3 False\n" + prefix + "['a'][0]\n" + prefix + "['b'][0]\n" +
                     prefix + "['c'][0]\n");
  EXPECT_EQ(Exec("x = row('leakmod.Thrice')\n"
                 "full = x.get_shpaths(limit=0).splitlines()\n"
                 "p = x.get_shpaths(limit=2)\n"
                 "lines = p.splitlines()\n"
                 "print(p.numpaths, p.truncated, len(lines))\n"
                 "print(lines[:2] == full[:2], lines[2])\n"),
            "2 True 3\nTrue <more paths: x.get_shpaths(limit=0) shows all>\n");
  EXPECT_EQ(Exec("p = row('leakmod.Thrice').get_shpaths(limit=3)\n"
                 "print(p.numpaths, p.truncated)\n"),
            "3 False\n");
  // The default limit is 20.
  EXPECT_EQ(Exec("print(row('leakmod.Thrice').sp.limit)"), "20\n");
}

TEST_F(HpRetentionTest, ReferencePatternStopsAtModules) {
  EXPECT_EQ(Exec("print(row('leakmod.PlantedList').get_rp(depth=1))"),
            "0: 1 leakmod.PlantedList\n1: 1   dict\n2: 1   list\n\n");
  const std::string rp = Exec("print(row('leakmod.PlantedList').rp)");
  EXPECT_NE(rp.find("module [stop]"), std::string::npos) << rp;
  const std::string all =
      Exec("print(row('leakmod.PlantedList').get_rp(depth=3, stopkind=()))");
  EXPECT_EQ(all.find("[stop]"), std::string::npos) << all;
  EXPECT_NE(all.find(" module\n"), std::string::npos) << all;
  const std::string lists =
      Exec("print(row('leakmod.PlantedList').get_rp(stopkind='dict'))");
  EXPECT_NE(lists.find("1: 1   dict [stop]\n"), std::string::npos) << lists;
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
  const std::string out = Exec(
      "x = row('leakmod.Twice')\n"
      "def err(f):\n"
      "    try:\n"
      "        f()\n"
      "    except Exception as e:\n"
      "        return type(e).__name__ + ': ' + str(e)\n"
      "    return 'no error'\n"
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
      "print(err(lambda: x.sp.edges_at('last')))\n");
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos;
       start = nl + 1) {
    lines.push_back(out.substr(start, nl - start));
  }
  ASSERT_EQ(lines.size(), 13u) << out;
  const char *expected_types[] = {
      "ValueError", "TypeError", "TypeError",  "TypeError", "TypeError",
      "TypeError",  "TypeError", "ValueError", "TypeError", "TypeError",
      "TypeError",  "TypeError", "TypeError"};
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].substr(0, lines[i].find(':')), expected_types[i])
        << lines[i];
  }
  EXPECT_NE(lines[0].find("limit must be >= 0"), std::string::npos);
  EXPECT_NE(lines[2].find("(from, to) address pairs"), std::string::npos);
  EXPECT_NE(lines[4].find("avoid_nodes must be an IdSet"), std::string::npos);
  EXPECT_NE(lines[7].find("depth must be between"), std::string::npos);
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
                  })
                  .ok());
  ASSERT_TRUE(paths.ok()) << paths.status();
  ASSERT_EQ(paths->paths.size(), 1u);
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
