// hp's values surface (issue 19): x.theone, x.byid (a table whose rows are
// sets), x.brief, x.maprox and x.prod. Expected values come from the
// fixture's construction (repr, ids and names computed in the target by
// Python), never from Annex's own output; asking creates nothing in the
// target and runs none of its code.

#include <string>

#include "gtest/gtest.h"
#include "tests/glue/hp_fixture.h"
#include "tests/testing/python_main.h"
#include "tests/testing/python_snippets.h"

namespace annex {
namespace {

using ::annex::testing::DefineTargetModule;
using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;
using ::annex::testing::TargetStr;

// Module `valmod`: one object of each kind whose value or name a table
// shows, containers, records for maprox and a class whose attribute
// lookups count their calls (reading must make none).
constexpr char kValmod[] = R"py(
import sys
class Cache:
    def get(self):
        pass
    class Inner:
        pass
def top():
    pass
text = 'hello'
quote = "it's\n"
long_text = 'x' * 100
blob = b'ab\x00'
big = 2 ** 100
num = 12345
ratio = 1.5
flag = True
nothing = None
cplx = 1 + 2j
items = [1, 2, 3]
table = {'a': 1}
cache = Cache()
bound = cache.get
code = top.__code__
builtin = len
appender = items.append
module = sys
inner = Cache.Inner
ints = [1000 + i for i in range(25)]
class Point:
    __slots__ = ('x', 'y')
    def __init__(self, x):
        self.x = x
points = [Point('px%d' % i) for i in range(3)]
points.append(Point.__new__(Point))  # no x: left out by maprox
records = [{'name': 'ra'}, {'name': 'rb'}, {'other': 1}]
calls = 0
class Counted:
    @property
    def p(self):
        global calls
        calls += 1
        return []
counted = Counted()
)py";

// How a table shows each named object, from the objects themselves.
constexpr char kExpected[] = R"py(
import sys
valmod = sys.modules['valmod']
def _shown(name):
    import os, sys, types
    o = getattr(sys.modules['valmod'], name)
    if isinstance(o, (str, bytes, int, float, complex)) or o is None:
        return repr(o)
    if isinstance(o, types.ModuleType):
        return o.__name__
    if isinstance(o, type):
        return o.__module__ + '.' + o.__qualname__
    if isinstance(o, types.FunctionType):
        return o.__module__ + '.' + o.__qualname__
    if isinstance(o, types.MethodType):
        s = o.__self__
        return '<%s.%s at %#x>.%s' % (type(s).__module__,
                                      type(s).__qualname__, id(s),
                                      o.__func__.__name__)
    if isinstance(o, types.BuiltinFunctionType):
        s = o.__self__
        if s is None or isinstance(s, types.ModuleType):
            return o.__name__
        return '<%s at %#x>.%s' % (type(s).__name__, id(s), o.__name__)
    if isinstance(o, types.CodeType):
        return '%s:%d:%s' % (os.path.basename(o.co_filename),
                             o.co_firstlineno, o.co_name)
    return 'len=%d' % len(o)
)py";

constexpr char kPrelude[] = R"py(
def value(expr):
    line = str(hp.iso(expr).theone)
    return line.split(' ', 4)[4]
)py";

class HpValuesTest : public testing::HpFixture {
 protected:
  HpValuesTest() : HpFixture(std::string(testing::kErrPrelude) + kPrelude) {}
  static void SetUpTestSuite() {
    ASSERT_TRUE(DefineTargetModule("valmod", kValmod));
    ASSERT_TRUE(RunTargetCode(kExpected));
  }
};

constexpr const char* kNames[] = {
    "text", "quote",   "blob",     "big",    "num",   "ratio",
    "flag", "nothing", "cplx",     "items",  "table", "bound",
    "code", "builtin", "appender", "module", "inner", "top",
};

TEST_F(HpValuesTest, TheOneShowsValuesAndNamesReadInPlace) {
  for (const char* name : kNames) {
    std::string want = TargetStr(std::string("_shown('") + name + "')");
    if (std::string(name) == "big") want = "<int of 101 bits>";
    EXPECT_EQ(Exec(std::string("print(value('valmod.") + name + "'))"),
              want + "\n")
        << name;
  }
  // A long str is cut; the line starts with the address, kind and size.
  EXPECT_EQ(Exec("print(value('valmod.long_text'))"),
            "'" + std::string(57, 'x') + "...'\n");
  const std::string head = TargetStr(
      "'%#x str %d bytes' % (id(valmod.text), sys.getsizeof(valmod.text))");
  EXPECT_EQ(Exec("print(str(hp.iso('valmod.text').theone).startswith(" +
                 std::string("'") + head + "'))"),
            "True\n");
  EXPECT_EQ(Exec("print(err(lambda: hp.iso('valmod.text, valmod.num')"
                 ".theone))"),
            "ValueError: theone requires a singleton set\n");
}

TEST_F(HpValuesTest, ByIdIsATableWhoseRowsAreSets) {
  const std::string ids =
      TargetStr("' '.join(str(i) for i in sorted(id(o) for o in valmod.ints))");
  EXPECT_EQ(Exec("want = [int(i) for i in '" + ids +
                 "'.split()]\n"
                 "x = hp.iso('valmod.ints').referents\n"
                 "t = x.byid\n"
                 "print(len(t), len(t) == len(want))\n"
                 "print(t[0] == hp.iso(want[0]), t[-1] == hp.iso(want[-1]))\n"
                 "print(t[1:3] == hp.iso(want[1], want[2]), t[0].count)\n"
                 "print(all(s == hp.iso(i) for s, i in zip(t, want)))\n"
                 "print(t.members == x)\n"
                 "lines = str(t).splitlines()\n"
                 "print(len(lines), lines[-1])\n"
                 "print([int(l.split()[0], 16) for l in lines[:20]] == "
                 "want[:20])\n"
                 "print(sorted(int(l.split()[-1]) for l in "
                 "str(t.all).splitlines()) == list(range(1000, 1025)))\n"
                 "more = str(t.more).splitlines()\n"
                 "print(len(more), more == str(t.all).splitlines()[20:])\n"
                 "print(len(str(t.all).splitlines()))\n"
                 "print(err(lambda: t[25]))\n"
                 "print(err(lambda: t['a']))\n"),
            "25 True\nTrue True\nTrue 1\nTrue\nTrue\n"
            "21 <5 more objects. Type e.g. '_.more' to view.>\nTrue\nTrue\n"
            "5 True\n25\n"
            "IndexError: byid row 25 out of range: 25 members\n"
            "TypeError: byid rows are selected by int or slice, not str\n");
}

TEST_F(HpValuesTest, BriefRendersValuesAsHeapy) {
  const std::string items = TargetStr("'%#x' % id(valmod.items)");
  EXPECT_EQ(Exec("print(hp.iso('valmod.text').brief)\n"
                 "print(hp.iso('valmod.text, valmod.num').brief)\n"
                 "print(hp.iso('valmod.items').brief)\n"
                 "print(hp.iso('valmod.module').brief)\n"
                 "print(hp.Nothing.brief)\n"),
            "<1 str: 'hello'>\n"
            "<2 (int | str): <1 int: 12345> | <1 str: 'hello'>>\n"
            "<1 list: " +
                items +
                "*3>\n"
                "<1 module: sys>\n"
                "<Nothing>\n");
}

TEST_F(HpValuesTest, MaproxReadsAttributesAndItemsOfEachMember) {
  const std::string names =
      TargetStr("' '.join(str(id(r['name'])) for r in valmod.records[:2])");
  const std::string xs =
      TargetStr("' '.join(str(id(p.x)) for p in valmod.points[:3])");
  EXPECT_EQ(
      Exec("names = [int(i) for i in '" + names +
           "'.split()]\n"
           "xs = [int(i) for i in '" +
           xs +
           "'.split()]\n"
           "r = hp.iso('valmod.records').referents\n"
           "p = hp.iso('valmod.points').referents\n"
           "print(r.maprox['name'] == hp.iso(*names))\n"
           "print(p.maprox.x == hp.iso(*xs), p.maprox('.x') == p.maprox.x, "
           "p.maprox('x') == p.maprox.x)\n"
           "print(p.maprox.__class__ == hp.iso('valmod.Point'))\n"
           "print(p.maprox.__class__.maprox.__name__.brief)\n"
           "print(p.maprox('.__class__.__name__').brief)\n"
           "print(hp.iso('valmod.items').maprox[-1].brief)\n"
           "print(hp.iso('valmod.bound').maprox.__self__ == "
           "hp.iso('valmod.cache'))\n"
           "print(hp.iso('valmod.code').maprox.co_name.brief)\n"
           "c = hp.iso('valmod.counted')\n"
           "print(c.maprox.p.count, c.maprox.nope.count)\n"
           "print(err(lambda: p.maprox[1.5]))\n"
           "print(err(lambda: p.maprox('x + 1')))\n"
           "print(err(lambda: p.maprox(3)))\n"),
      "True\nTrue True True\nTrue\n<1 str: 'Point'>\n<1 str: 'Point'>\n"
      "<1 int: 3>\nTrue\n<1 str: 'top'>\n0 0\n"
      "TypeError: maprox[key]: a str or int key (dict keys, list and tuple "
      "indexes), not float\n"
      "ValueError: maprox(expr): 'x + 1' is not .attribute and [str or int "
      "constant] steps (e.g. '.__class__.__name__', \"['key'].attr\"): "
      "no target code runs\n"
      "TypeError: maprox(expr): expr is a str of .attribute and [constant] "
      "steps, e.g. '.__class__.__name__', not int\n");
  // The property was never run.
  EXPECT_EQ(TargetLong("valmod.calls"), 0);
}

TEST_F(HpValuesTest, AskingCreatesNothingInTheTarget) {
  // Every values question over members of each kind read: the target's gc
  // sees no new object, and its heap (strs and ints too) is the same.
  ASSERT_TRUE(RunTargetCode("import gc\n_v_before = len(gc.get_objects())\n"));
  EXPECT_EQ(Exec("h0 = hp.heap()\n"
                 "x = hp.iso('valmod.records, valmod.points, valmod.bound, "
                 "valmod.code, valmod.text, valmod.module, valmod.big, "
                 "valmod.ratio, valmod.cplx, valmod.inner')\n"
                 "for _ in range(3):\n"
                 "    x.brief; str(x.byid); x.byid[0].theone\n"
                 "    x.maprox.__class__.maprox.__name__\n"
                 "    x.referents.maprox['name']; x.maprox('.co_name')\n"
                 "h1 = hp.heap()\n"
                 "print((h1 - h0).count, (h0 - h1).count)\n"),
            "0 0\n");
  ASSERT_TRUE(RunTargetCode("_v_after = len(gc.get_objects())\n"));
  EXPECT_EQ(TargetLong("_v_after - _v_before"), 0);
}

TEST_F(HpValuesTest, ProdIsTheAllocationTraceback) {
  EXPECT_EQ(Exec("print(err(lambda: hp.iso('valmod.cache').prod))"),
            "RuntimeError: prod needs the target's tracemalloc: it is not "
            "tracing now. Start it in the target (tracemalloc.start(), or "
            "PYTHONTRACEMALLOC=1) before the objects of interest are "
            "allocated.\n");
  ASSERT_TRUE(
      RunTargetCode("import tracemalloc\n"
                    "tracemalloc.start(5)\n"
                    "def make_one():\n"
                    "    return valmod.Cache()\n"  // not from a free list
                    "def outer():\n"
                    "    return make_one()\n"
                    "made = outer()\n"));
  std::string out = Exec(
      "print(hp.iso('made').prod)\n"
      "print(err(lambda: hp.iso('made, valmod.text').prod))\n");
  ASSERT_TRUE(RunTargetCode("tracemalloc.stop(); del made"));
  EXPECT_EQ(out,
            "Traceback (most recent call first):\n"
            "  File \"<string>\", line 4\n"
            "  File \"<string>\", line 6\n"
            "  File \"<string>\", line 7\n"
            "ValueError: prod requires a singleton set (x.byid[i].prod, "
            "x.byprod for a set)\n");
}

}  // namespace
}  // namespace annex
