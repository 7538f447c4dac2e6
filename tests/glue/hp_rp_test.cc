// hp's reference pattern (x.rp, x.get_rp(...)): Heapy's rows, names and
// selection over a target heap whose pattern is known, the options (er=,
// imdom=, nocyc=, bf=, src=, stopkind=, depth=), and that asking creates
// nothing in the target.

#include <string>

#include "gtest/gtest.h"
#include "tests/glue/hp_fixture.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::DefineTargetModule;
using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;
using ::annex::testing::TargetStr;

// Module `rpmod` holds each leak in a known way:
//   leak:  the module's dict, three Holders (kept in the list `holders`)
//          and a tuple (held by the module's dict and the list `tuples`);
//   deep:  only by a list in a list in a list held by the module's dict;
//   fork:  by two lists, `left` and `right`, both only in the list `both`;
//   ring:  two Nodes holding each other, one held by the module's dict;
//   boxed: by a Box instance whose attributes are held inline (no dict
//          object: asking for one would make it in the target);
//   wide:  by 15 lists.
constexpr char kRpmod[] = R"py(
class Leak:
    pass

class Deep:
    pass

class Fork:
    pass

class Boxed:
    pass

class Holder:
    __slots__ = ('item',)

class Node:
    __slots__ = ('peer',)

class Box:
    pass

def _hold(x, n):
    out = []
    for i in range(n):
        h = Holder()
        h.item = x
        out.append(h)
    return out

leak = Leak()
holders = _hold(leak, 3)
tup = (leak,)
tuples = [tup]
chain = [[[Deep()]]]

def _fork():
    f = Fork()
    return [[f], [f]]
both = _fork()

def _ring():
    a, b = Node(), Node()
    a.peer, b.peer = b, a
    return a
ring = _ring()

box = Box()
box.item = Boxed()

class Wide:
    pass
wide = Wide()
wide_holders = [[wide] for i in range(15)]

# Held only by a dict of strs, which the gc does not track.
gcless = {'k': ''.join(['rpgc', '-unique'])}
)py";

// Annex-side helpers: the set of the one heap row of kind `k`; a
// pattern's rows as (name, mark, seen, count, kind); its lines up to each
// row's size (addresses and sizes vary).
constexpr char kPrelude[] = R"py(
def row(k):
    h = hp.heap()
    n = len(h.all.splitlines()) - 2
    found = [h[i] for i in range(n) if h[i].kind == k]
    assert len(found) == 1, (k, len(found))
    return found[0]
def rows(p):
    return [(r.name, r.mark, r.seen, r.count, r.kind) for r in p.rows]
def lines(p):
    import re
    return [re.sub(r' \(\d+ bytes\).*', '', l) for l in str(p).splitlines()]
def show(f):
    try:
        return repr(f())
    except Exception as e:
        return type(e).__name__ + ': ' + str(e)
)py";

class HpRpTest : public testing::HpFixture {
 protected:
  HpRpTest() : HpFixture(kPrelude) {}
  static void SetUpTestSuite() {
    ASSERT_TRUE(DefineTargetModule("rpmod", kRpmod));
  }
};

TEST_F(HpRpTest, PrintsRowsAsHeapyWithLabelsAndMarks) {
  // Depth first; kinds by total size (the module's dict, the three
  // Holders, the tuple); the module's dict is a stop kind and later rows
  // of it repeat row 1.
  EXPECT_EQ(Exec("for l in lines(row('rpmod.Leak').rp): print(l)"),
            "Reference Pattern by <Kind (class / dict of class)>.\n"
            " 0: _ --- [-] 1 rpmod.Leak\n"
            " 1: a      [S] 1 dict of module\n"
            " 2: b ---- [-] 3 rpmod.Holder\n"
            " 3: ba      [-] 1 list\n"
            " 4: baa ---- [^ 1] 1 dict of module\n"
            " 5: c      [-] 1 tuple\n"
            " 6: ca ---- [^ 1] 1 dict of module\n"
            " 7: cb      [-] 1 list\n"
            " 8: cba ---- [^ 1] 1 dict of module\n");
  // A row's line ends with its size and first addresses.
  EXPECT_EQ(Exec("p = row('rpmod.Leak').rp\n"
                 "r = p.get_row('c')\n"
                 "print(repr(r).endswith('1 tuple (%d bytes): %#x' % (\n"
                 "    r.size, r._preview[0])))\n"
                 "print(r.size == p.c.size, r.index, r.depth, r.parent)\n"),
            "True\nTrue 5 1 0\n");
}

TEST_F(HpRpTest, RowsSelectExactlyTheirObjects) {
  EXPECT_EQ(
      Exec(
          "x = row('rpmod.Leak')\n"
          "p = x.rp\n"
          // Heapy's own example's identities.
          "print(p._ == p[0] == x, p._.referrers == p.a | p.b | p.c)\n"
          "print(p.b == x.referrers & hp.Type('rpmod.Holder'))\n"
          "print(p.a == hp.iso('rpmod.__dict__'), p.c == hp.iso('rpmod.tup'))\n"
          "print(p.ba == hp.iso('rpmod.holders') == p.b.referrers)\n"
          "print(p.cb == hp.iso('rpmod.tuples') == p[7], len(p))\n"
          "print(p.baa == p.a, p.get_row('baa').seen, p.get_row(4).name)\n"
          "print([s.count for s in p][:4], p[-1] == p.cba)\n"),
      "True True\nTrue\nTrue True\nTrue\nTrue 9\nTrue 1 baa\n"
      "[1, 1, 3, 1] True\n");
  // Names of more than two equal letters are written with a count, and
  // either spelling selects the row.
  EXPECT_EQ(Exec("p = row('rpmod.Deep').rp\n"
                 "print(rows(p))\n"
                 "print(p.a3 == p.aaa == hp.iso('rpmod.chain'))\n"
                 "print(p.a == hp.iso('rpmod.chain[0][0]'))\n"),
            "[('_', '-', None, 1, 'rpmod.Deep'), ('a', '-', None, 1, 'list'), "
            "('aa', '-', None, 1, 'list'), ('a3', '-', None, 1, 'list'), "
            "('a4', 'S', None, 1, 'dict of module')]\n"
            "True\nTrue\n");
  // An empty set (or one whose members all died) has no rows.
  EXPECT_EQ(Exec("p = hp.Nothing.rp\nprint(p)\nprint(len(p))\n"),
            "Reference Pattern by <Kind (class / dict of class)>.\n"
            "(no member of the set is alive now)\n0\n");
  // Bad selections say what is wrong.
  EXPECT_EQ(Exec("p = row('rpmod.Deep').rp\n"
                 "print(show(lambda: p.zz))\n"
                 "print(show(lambda: p[5]))\n"
                 "print(show(lambda: p['a']))\n"
                 "print(show(lambda: p.get_row('a9')))\n"
                 "print(show(lambda: p.get_row(1.5)))\n"),
            "AttributeError: the reference pattern has no row named 'zz'\n"
            "IndexError: row 5 out of range: the pattern has 5 rows\n"
            "TypeError: rp[i] takes a row number; a row by name is rp.a or "
            "rp.get_row('a')\n"
            "KeyError: \"the reference pattern has no row named 'a9'\"\n"
            "TypeError: reference pattern rows are selected by number (int) "
            "or name (str), not float\n");
}

TEST_F(HpRpTest, ErChoosesTheKindsOfTheRows) {
  EXPECT_EQ(Exec("p = row('rpmod.Leak').get_rp(er='Type', depth=1)\n"
                 "for l in lines(p): print(l)\n"
                 "q = row('rpmod.Leak').get_rp(er=hp.Type, depth=1)\n"
                 "print(rows(p) == rows(q), p.a == q.a)\n"),
            "Reference Pattern by <Type>.\n"
            " 0: _ --- [-] 1 rpmod.Leak\n"
            " 1: a      [S] 1 dict\n"
            " 2: b ---- [+] 3 rpmod.Holder\n"
            " 3: c      [+] 1 tuple\n"
            "True True\n");
  // A classifier that needs live objects: how each referrer is held.
  EXPECT_EQ(Exec("p = row('rpmod.Deep').get_rp(er='Via', depth=2)\n"
                 "print(rows(p))\n"),
            "[('_', '-', None, 1, \"'[0]'\"), ('a', '-', None, 1, \"'[0]'\"), "
            "('aa', '+', None, 1, \"'[0]'\")]\n");
  EXPECT_EQ(Exec("e = show(lambda: row('rpmod.Deep').get_rp(er='Nope'))\n"
                 "print(e.startswith('ValueError: '), 'Nope' in e)\n"
                 "print(show(lambda: row('rpmod.Deep').get_rp(er=3)))\n"),
            "True True\nTypeError: get_rp(er=): an equivalence relation name "
            "expected, e.g. 'Type', 'Clodo', 'Type&Size', or hp.Type, hp.Type "
            "& hp.Size\n");
}

TEST_F(HpRpTest, ImdomFollowsImmediateDominators) {
  // Referrers: the two lists, then `both`; dominators: `both` at once.
  EXPECT_EQ(Exec("x = row('rpmod.Fork')\n"
                 "print(rows(x.rp))\n"
                 "p = x.get_rp(imdom=True)\n"
                 "print(rows(p))\n"
                 "print(p.a == x.imdom == hp.iso('rpmod.both'))\n"),
            "[('_', '-', None, 1, 'rpmod.Fork'), ('a', '-', None, 2, 'list'), "
            "('aa', '-', None, 1, 'list'), ('a3', 'S', None, 1, 'dict of "
            "module')]\n"
            "[('_', '-', None, 1, 'rpmod.Fork'), ('a', '-', None, 1, 'list'), "
            "('aa', 'S', None, 1, 'dict of module')]\n"
            "True\n");
}

TEST_F(HpRpTest, NocycLeavesOutTheRowsAbove) {
  // The two Nodes refer to each other: their referrers include the set
  // itself, a repeat of row 0; nocyc leaves it out.
  EXPECT_EQ(Exec("x = row('rpmod.Node')\n"
                 "print(rows(x.rp))\n"
                 "print(rows(x.get_rp(nocyc=True)))\n"),
            "[('_', '-', None, 2, 'rpmod.Node'), ('a', 'S', None, 1, 'dict of "
            "module'), ('b', '^', 0, 2, 'rpmod.Node')]\n"
            "[('_', '-', None, 2, 'rpmod.Node'), ('a', 'S', None, 1, 'dict of "
            "module')]\n");
}

TEST_F(HpRpTest, DepthBreadthFirstAndStopkind) {
  EXPECT_EQ(Exec("x = row('rpmod.Deep')\n"
                 "print(rows(x.get_rp(depth=1)))\n"
                 "print(rows(x.get_rp(0)))\n"),
            "[('_', '-', None, 1, 'rpmod.Deep'), ('a', '+', None, 1, "
            "'list')]\n"
            "[('_', '+', None, 1, 'rpmod.Deep')]\n");
  EXPECT_EQ(
      Exec("p = row('rpmod.Leak').get_rp(bf=True)\n"
           "print([r.name for r in p.rows])\n"
           "print(p.get_row('baa').seen, p.ba == row('rpmod.Leak').rp.ba)\n"),
      "['_', 'a', 'b', 'c', 'ba', 'ca', 'cb', 'baa', 'cba']\n"
      "1 True\n");
  // stopkind: a kind, a name, names; () stops nowhere (the module's dict
  // is followed to the module and sys.modules).
  EXPECT_EQ(
      Exec(
          "x = row('rpmod.Deep')\n"
          "print(rows(x.get_rp(stopkind=hp.Type('list')))[1])\n"
          "print(rows(x.get_rp(stopkind='list'))[1])\n"
          "print(rows(x.get_rp(stopkind=['tuple', 'list']))[1])\n"
          "p = x.get_rp(depth=5, stopkind=())\n"
          "m = [r for r in p.rows if r.kind == 'module'][0]\n"
          "print(rows(p)[4][:2], m.depth, m.mark, m.set == hp.iso('rpmod'))\n"),
      "('a', 'S', None, 1, 'list')\n"
      "('a', 'S', None, 1, 'list')\n"
      "('a', 'S', None, 1, 'list')\n"
      "('a4', '-') 5 + True\n");
  // A kind whose classifier reads live objects (Module) walks again inside
  // the pattern's question.
  EXPECT_EQ(Exec("p = row('rpmod.Deep').get_rp(depth=6, "
                 "stopkind=hp.Module(name='rpmod'))\n"
                 "print([(r.name[:2], r.depth, r.mark) for r in p.rows "
                 "if r.kind == 'module'])\n"),
            "[('a4', 5, 'S')]\n");
}

TEST_F(HpRpTest, SrcStopsAtTheSources) {
  // Only referrers reachable from `holders` count: the Holders, then the
  // list itself, where the pattern ends ([R]).
  EXPECT_EQ(Exec("x = row('rpmod.Leak')\n"
                 "p = x.get_rp(src=hp.iso('rpmod.holders'))\n"
                 "print(rows(p))\n"
                 "print(show(lambda: x.get_rp(src=hp.iso('rpmod.holders'), "
                 "imdom=True)))\n"),
            "[('_', '-', None, 1, 'rpmod.Leak'), ('a', '-', None, 3, "
            "'rpmod.Holder'), ('aa', 'R', None, 1, 'list')]\n"
            "ValueError: get_rp(imdom=True) follows the dominators from the "
            "roots: not with src\n");
}

TEST_F(HpRpTest, PagesTenRowsAndCutsAtMaxRows) {
  EXPECT_EQ(Exec("x = hp.iso('rpmod.chain[0][0][0]')\n"
                 "p = x.get_rp(depth=30, stopkind=(), max_rows=3)\n"
                 "print(len(p), p.truncated)\n"
                 "print(str(p).splitlines()[-1])\n"),
            "3 True\n"
            "<pattern cut at 3 rows (max_rows=3; get_rp(max_rows=...) makes "
            "more)>\n");
  // A pattern of more than eleven rows: ten, then the next page.
  EXPECT_EQ(Exec("p = row('rpmod.Wide').get_rp(er='Id', depth=1, "
                 "max_children=26)\n"
                 "n = len(p)\n"
                 "first = str(p).splitlines()\n"
                 "print(n > 11, len(first), first[-1] == \"<%d more rows. "
                 "Type e.g. '_.more' to view.>\" % (n - 10))\n"
                 "print(str(p.more).splitlines()[0].startswith('10: '))\n"
                 "print(len(str(p.all).splitlines()) >= n + 1)\n"),
            "True 12 True\nTrue\nTrue\n");
  EXPECT_EQ(Exec("print(len(row('rpmod.Wide').get_rp(er='Id', depth=1)))\n"
                 "print(str(row('rpmod.Wide').get_rp(er='Id', depth=1))"
                 ".splitlines()[2])\n"),
            "11\n"
            "          <6 more kinds of referrers: max_children>\n");
}

TEST_F(HpRpTest, PastThePauseLimitThePatternStops) {
  EXPECT_EQ(Exec("x = row('rpmod.Leak')\n"
                 "hp.pause_limit = 1e-6\n"
                 "e = show(lambda: x.rp)\n"
                 "del hp.pause_limit\n"
                 "print(e.split(':')[0], 'hp.pause_limit' in e)\n"
                 "print(len(x.rp))\n"),
            "TimeoutError True\n9\n");
}

TEST_F(HpRpTest, PathsFollowARowDownToTheSet) {
  // deep: Deep in a list in a list in a list held by the module's dict.
  const std::string deep = TargetStr(
      "'%#x' % id(__import__('sys').modules['rpmod'].chain[0][0][0])");
  EXPECT_EQ(Exec("p = row('rpmod.Deep').rp\n"
                 "print(rows(p)[3][:2])\n"
                 "print(p.paths('aaa'))\n"  // Heapy spells it a3
                 "print(p.paths(3).source, len(p.paths('_')))\n"),
            "('a3', '-')\n"
            "Paths from source 'a3' to target '_'.\n"
            " 0: a3 [0] @ [0]\n"
            " 1: aa [0]  @ [0]\n"
            " 2: a  [0]   @ [0]\n"
            " 3: _  [0]    = <1 rpmod.Deep: " +
                deep +
                ">\n"
                "a3 1\n");
  // fork: one Fork in two lists, both in the list `both`; the second
  // route ends at the line that followed the Fork first.
  const std::string order = TargetStr(
      "' '.join('[%d]' % i for i in sorted(range(2), key=lambda i: "
      "id(__import__('sys').modules['rpmod'].both[i])))");
  const std::string first = order.substr(0, 3), second = order.substr(4, 3);
  const std::string fork =
      TargetStr("'%#x' % id(__import__('sys').modules['rpmod'].both[0][0])");
  EXPECT_EQ(
      Exec("p = row('rpmod.Fork').rp\n"
           "print(p.paths('aa'))\n"
           "print(p.paths('aa', andsets={'a': hp.iso('rpmod.both[1]')}))\n"
           "print(p.paths('aa', andsets=[None, hp.iso('rpmod.both[1]')])"
           ".all == p.paths('aa', andsets={'a': "
           "hp.iso('rpmod.both[1]')}).all)\n"),
      "Paths from source 'aa' to target '_'.\n"
      " 0: aa [0] @ " +
          first +
          "\n"
          " 1: a  [0]  @ [0]\n"
          " 2: _  [0]   = <1 rpmod.Fork: " +
          fork +
          ">\n"
          " 3: aa [0] @ " +
          second +
          "\n"
          " 4: a  [1]  @ [0] -> #2\n"
          "Paths from source 'aa' to target '_'.\n"
          " 0: aa [0] @ [1]\n"
          " 1: a  [0]  @ [0]\n"
          " 2: _  [0]   = <1 rpmod.Fork: " +
          fork +
          ">\n"
          "True\n");
  EXPECT_EQ(
      Exec("p = row('rpmod.Fork').rp\n"
           "print(show(lambda: p.paths('zz')))\n"
           "print(show(lambda: p.paths('aa', variant=1)))\n"
           "print(show(lambda: p.paths('aa', andsets=5)))\n"
           "print(show(lambda: p.paths('a', andsets={'b': hp.Nothing})))\n"),
      "KeyError: \"the reference pattern has no row named 'zz'\"\n"
      "ValueError: rp.paths(variant=1): only Heapy's default variant 2 "
      "is drawn\n"
      "TypeError: andsets argument must be dict, tuple, or list\n"
      "ValueError: andsets names row 'b', which is not on the path from "
      "'a' to '_'\n");
}

TEST_F(HpRpTest, RefGcKeepsTheReferrersTheGcReports) {
  ASSERT_EQ(TargetLong("int(__import__('gc').is_tracked("
                       "__import__('sys').modules['rpmod'].gcless))"),
            0)
      << "the premise: a dict of strs is not tracked";
  EXPECT_EQ(
      Exec("x = hp.iso(\"rpmod.gcless['k']\")\n"
           "print(rows(x.rp)[1][4])\n"
           "print(rows(x.get_rp(ref='gc')))\n"
           "print(rows(x.get_rp(ref='gcx')) == rows(x.get_rp(ref='gc')))\n"
           "y = row('rpmod.Leak')\n"
           "print(rows(y.get_rp(ref='gc')) == rows(y.rp))\n"
           "print(rows(y.get_rp(ref='imdom')) == "
           "rows(y.get_rp(imdom=True)))\n"
           "print(show(lambda: y.get_rp(ref='gc', imdom=True)))\n"
           "print(show(lambda: y.get_rp(ref=len)))\n"
           "print(show(lambda: y.get_rp(ref='all')))\n"),
      "dict (no owner)\n"
      "[('_', 'R', None, 1, 'str')]\n"
      "True\nTrue\nTrue\n"
      "ValueError: get_rp(ref='gc') follows the gc's referrers: not with "
      "imdom=True\n"
      "TypeError: get_rp(ref=callable) is not offered: the pattern is "
      "made inside one heap question, where no Python code runs; ref is "
      "None (referrers), 'gc', 'gcx' or 'imdom'\n"
      "ValueError: get_rp(ref='all'): ref is None (referrers), 'gc' or "
      "'gcx' (the referrers the target's gc reports) or 'imdom'\n");
}

TEST_F(HpRpTest, AskingCreatesNothingInTheTarget) {
  // Every kind of question the pattern asks (referrers, dominators, a
  // classifier reading edges, Heapy's default stop kinds) over an instance
  // whose attributes are inline: the target's gc sees no new object.
  ASSERT_TRUE(RunTargetCode("import gc\n_rp_before = len(gc.get_objects())\n"));
  EXPECT_EQ(
      Exec("x = row('rpmod.Boxed')\n"
           "print(rows(x.rp)[1][4])\n"
           "row('rpmod.Fork').rp.paths('aa'); x.get_rp(ref='gc')\n"
           "x.get_rp(imdom=True); x.get_rp(er='Via'); x.get_rp(nocyc=True)\n"
           "x.get_rp(bf=True, stopkind=()); x.get_rp(er='Rcs')\n"
           "row('rpmod.Leak').get_rp(src=hp.iso('rpmod.holders'))\n"),
      "rpmod.Box\n");
  ASSERT_TRUE(RunTargetCode("_rp_after = len(gc.get_objects())\n"));
  EXPECT_EQ(TargetLong("_rp_after - _rp_before"), 0);
}

}  // namespace
}  // namespace annex
