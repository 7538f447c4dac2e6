// hp's classifiers and kinds through the public API, checked against what
// the target itself computes over the same objects.
#include <Python.h>

#include <string>

#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"
#include "tests/testing/python_snippets.h"

namespace annex {
namespace {

using ::annex::testing::EvalTarget;
using ::annex::testing::kErrPrelude;
using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetStr;

std::string Exec(Monitor& m, const std::string& code) {
  auto out = m.ExecInAnnex(code);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

// The oracle, run in the target: Heapy's names of types, and for a dict the
// type of the object whose attribute dict it is (found through
// gc.get_referrers), over the objects in `objs`. One line per kind,
// "name|count|size", sorted. A size is sys.getsizeof plus, for an instance
// listed in `objs_values` (id -> bytes), its attribute values block, which
// sys.getsizeof leaves out and Annex counts; `values_block` measures one
// independently: what the allocator gives a new instance of `cls`
// (object.__new__ makes the block; no __init__ runs) beyond sys.getsizeof.
constexpr char kOracle[] = R"(
import builtins, gc, sys, types
objs_values = {}
def values_block(cls):
    import tracemalloc
    tracemalloc.start()
    o = cls.__new__(cls)
    n = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return n - sys.getsizeof(o)
def _heapy_names():
    t = {}
    for k, v in sorted(vars(types).items()):
        if isinstance(v, type) and not v.__flags__ & (1 << 9):
            t[v] = 'types.' + k
    for k, v in sorted(vars(builtins).items()):
        if isinstance(v, type) and not v.__flags__ & (1 << 9):
            t[v] = k
    t[types.ModuleType] = 'module'
    t[types.FunctionType] = 'function'
    return t
_NAMES = _heapy_names()
def oracle_name(t):
    return _NAMES.get(t) or '%s.%s' % (t.__module__, t.__name__)
def oracle_owners(dicts):
    # Not gc.get_referrers: on 3.13 an instance whose inline values are
    # still valid does not visit its materialized dict in tp_traverse.
    want = {id(d) for d in dicts}
    owners = {}
    for r in gc.get_objects():
        if isinstance(r, type):
            for x in gc.get_referents(r):
                if type(x) is dict and id(x) in want:
                    owners.setdefault(id(x), r)
        elif type(r) is not dict:
            try:
                d = object.__getattribute__(r, '__dict__')
            except (AttributeError, TypeError):
                continue
            if id(d) in want:
                owners.setdefault(id(d), r)
    return owners
def oracle_rows(objs, clodo):
    rows = {}
    owners = oracle_owners([o for o in objs if type(o) is dict]) if clodo else {}
    for o in objs:
        name = oracle_name(type(o))
        if clodo and type(o) is dict:
            owner = owners.get(id(o))
            name = 'dict (no owner)' if owner is None else 'dict of ' + oracle_name(type(owner))
        c, s = rows.get(name, (0, 0))
        rows[name] = (c + 1, s + sys.getsizeof(o) + objs_values.get(id(o), 0))
    return '\n'.join(sorted('%s|%d|%d' % (k, c, s) for k, (c, s) in rows.items()))
)";

// Prints the rows of `expr` (an IdSet) in the oracle's format.
std::string AnnexRows(const std::string& expr) {
  return "print('\\n'.join(sorted('%s|%d|%d' % (p.kind.brief, p.count, p.size)"
         " for p in (" +
         expr + ").parts)))\n";
}

class HpClassifyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(RunTargetCode(kOracle)); }
  void SetUp() override { ASSERT_TRUE(monitor_.Start().ok()); }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }
  Monitor monitor_;
};

struct Workload {
  const char* name;
  const char* code;  // builds `objs`: the objects to classify
};

constexpr Workload kWorkloads[] = {
    {"dicts",
     "objs = [{'k%d' % i: i + 1000, 'v': [i]} for i in range(50)]\n"
     "objs += [d['v'] for d in objs] + [{} for _ in range(7)]\n"},
    {"instances_with_dict",
     "class WInst:\n"
     "    def __init__(self, v): self.v = v; self.w = [v]\n"
     // 3.11/3.12 give a class's first ~30 instances larger values blocks.
     "for _ in range(64): WInst(0)\n"
     "insts = [WInst(i) for i in range(40)]\n"
     "objs = insts + [vars(o) for o in insts[:25]] + [o.w for o in insts]\n"
     // With a __dict__ object, 3.11/3.12 keep the values in the dict (sized
     // as a dict); 3.13 keeps the inline area in the instance.
     "w_block = values_block(WInst)\n"
     "objs_values = {id(o): w_block for o in\n"
     "    (insts if sys.version_info >= (3, 13) else insts[25:])}\n"},
    {"slots",
     "class WSlots:\n"
     "    __slots__ = ('a', 'b')\n"
     "    def __init__(self, v): self.a = v; self.b = (v, v + 1)\n"
     "objs = [WSlots(i + 5000) for i in range(30)]\n"
     "objs += [o.b for o in objs] + [o.a for o in objs]\n"},
    {"nested_types_modules",
     "import types as _t\n"
     "class WBase:\n"
     "    x = 1\n"
     "class WSub(WBase):\n"
     "    def f(self): return 1\n"
     "wmod = _t.ModuleType('wmod')\n"
     "wmod.data = {'a': {'b': {'c': [1, 2, (3, 4)]}}}\n"
     "def wfunc(): pass\n"
     "wfunc.attr = 7\n"
     "objs = [WBase, WSub, wmod, vars(wmod), wmod.data, wmod.data['a'],\n"
     "        wmod.data['a']['b'], wmod.data['a']['b']['c'], wfunc,\n"
     "        wfunc.__dict__]\n"
     "objs += [d for c in (WBase, WSub) for d in __import__('gc')"
     ".get_referents(c) if type(d) is dict]\n"},
};

TEST_F(HpClassifyTest, ByTypeAndByClodoAgreeWithTheTargetsOwnCount) {
  for (const Workload& w : kWorkloads) {
    SCOPED_TRACE(w.name);
    ASSERT_TRUE(RunTargetCode("objs_values = {}"));
    ASSERT_TRUE(RunTargetCode(w.code));
    ASSERT_TRUE(RunTargetCode("ids = [id(o) for o in objs]"));
    std::string ids = TargetStr("repr(ids)");
    std::string annex =
        Exec(monitor_, "s = hp.idset(" + ids +
                           ")\n"
                           "print(len(s))\n" +
                           AnnexRows("s.bytype") + "print('--')\n" +
                           AnnexRows("s.byclodo") + "print('--')\n" +
                           // The default partition is by Clodo.
                           AnnexRows("s"));
    std::string expected = TargetStr(
        "str(len(objs)) + '\\n' + oracle_rows(objs, False) + "
        "'\\n--\\n' + oracle_rows(objs, True) + '\\n--\\n' + "
        "oracle_rows(objs, True) + '\\n'");
    EXPECT_EQ(annex, expected);
  }
  ASSERT_TRUE(RunTargetCode("del objs, ids"));
}

TEST_F(HpClassifyTest, HeapIsPartitionedByClodoWithHeapysHeader) {
  ASSERT_TRUE(RunTargetCode(
      "class Owner:\n"
      "    pass\n"
      "owner = Owner()\n"
      "owner.__dict__['x'] = 1\n"
      // Held here too: on 3.13 an instance with valid inline values does
      // not report its materialized dict to tp_traverse (nor to the walk).
      "owner_dict = owner.__dict__\n"));
  std::string out = Exec(monitor_,
                         "h = hp.heap()\n"
                         "print(repr(h).splitlines()[1])\n"
                         "print(h.er)\n"
                         "print('dict of __main__.Owner' in h.all)\n"
                         "print('dict of module' in h.all)\n"
                         "print(repr(h.bytype).splitlines()[1])\n");
  EXPECT_EQ(out,
            " Index  Count   %     Size   % Cumulative  % Kind (class / dict "
            "of class)\nhp.Clodo\nTrue\nTrue\n"
            " Index  Count   %     Size   % Cumulative  % Type\n");
}

constexpr char kRegistry[] =
    "import sys, types\n"
    "class Held:\n"
    "    pass\n"
    "wreg = types.ModuleType('wreg')\n"
    "sys.modules['wreg'] = wreg\n"
    "wreg.registry = {}\n"
    "wreg.registry['k'] = Held()\n";

TEST_F(HpClassifyTest, ByviaAndByrcsNameHowTheObjectIsHeld) {
  ASSERT_TRUE(RunTargetCode(kRegistry));
  std::string out = Exec(monitor_,
                         "h = hp.heap()\n"
                         "held = h & hp.Type('__main__.Held')\n"
                         "print(len(held))\n"
                         "print(held.byvia.kind.brief)\n"
                         "print(held.byrcs.kind.brief)\n"
                         "reg = h & hp.Via(\"['registry']\")\n"
                         "print(reg.byrcs.kind.brief, '|', reg.kind.brief)\n"
                         "print(repr(held.byvia).splitlines()[1])\n"
                         "print(repr(held.byrcs).splitlines()[1])\n"
                         // Kinds of these classifiers select the same objects.
                         "print((h & hp.Via(\"['k']\")) == held,"
                         " len(held & hp.Rcs(hp.Clodo(dictof=()))),"
                         " len(held & hp.Rcs('dict of module')))\n");
  EXPECT_EQ(out,
            // Heapy's briefs of Via and Rcs kinds.
            "1\n<via \"['k']\">\n<referred by: dict (no owner)>\n"
            "<referred by: dict of module> | dict (no owner)\n"
            " Index  Count   %     Size   % Cumulative  % Referred Via:\n"
            " Index  Count   %     Size   % Cumulative  % Referrers by Kind "
            "(class / dict of class)\n"
            "True 1 0\n");
  ASSERT_TRUE(RunTargetCode("del sys.modules['wreg'], wreg"));
}

// Members held by several kinds of referrer get the set of those kinds;
// members with the same set share one row, alone and inside a
// combination.
TEST_F(HpClassifyTest, ByrcsGroupsMembersBySetsOfReferrerKinds) {
  ASSERT_TRUE(
      RunTargetCode("class Rk:\n"
                    "    pass\n"
                    "def _rk():\n"
                    "    a, b, c, e = Rk(), Rk(), Rk(), Rk()\n"
                    "    return [a, b, c, e], {'b': b, 'c': c, 'e': e}, (c,)\n"
                    "rk_list, rk_dict, rk_tuple = _rk()\n"));
  std::string out =
      Exec(monitor_,
           "s = hp.heap() & hp.Type('__main__.Rk')\n"
           "print(sorted((p.kind.brief, len(p)) for p in s.byrcs.parts))\n"
           "print(sorted((p.kind.brief, len(p)) for p in "
           "s.by('Type&Rcs').parts))\n");
  EXPECT_EQ(out,
            "[('<referred by: dict (no owner), list, tuple>', 1), "
            "('<referred by: dict (no owner), list>', 2), "
            "('<referred by: list>', 1)]\n"
            "[('__main__.Rk & {dict (no owner), list, tuple}', 1), "
            "('__main__.Rk & {dict (no owner), list}', 2), "
            "('__main__.Rk & {list}', 1)]\n");
  ASSERT_TRUE(RunTargetCode("del rk_list, rk_dict, rk_tuple"));
}

// Referrers that hold many members (a list, a dict's values and keys) are
// scanned once for all of them; each member still gets its own edge, and
// one held twice gets both.
TEST_F(HpClassifyTest, ByviaNamesEachMemberOfABigContainer) {
  ASSERT_TRUE(
      RunTargetCode("class Bv:\n"
                    "    __slots__ = ('n',)\n"
                    "    def __hash__(self): return 7\n"
                    "bv_list = [Bv() for _ in range(12)]\n"
                    "bv_dict = {'k%d' % i: Bv() for i in range(10)}\n"
                    "bv_keys = {Bv(): None for _ in range(9)}\n"
                    "bv_list.append(bv_dict['k4'])\n"));
  std::string out = Exec(
      monitor_,
      "s = hp.heap() & hp.Type('__main__.Bv')\n"
      "v = s.byvia\n"
      // A Via kind's brief is Heapy's "<via ...>".
      "kinds = sorted(p.kind.brief[5:-1] for p in v.parts)\n"
      "print(len(s), len(kinds), sum(len(p) for p in v.parts))\n"
      "print(sum(k.startswith(\"'[\") and k.endswith(\"]'\") for k in kinds),"
      " sum(k.startswith('\"[\\'k') for k in kinds),"
      " sum(k.startswith(\"'.keys()[\") for k in kinds))\n"
      "print([k for k in kinds if ', ' in k])\n");
  EXPECT_EQ(out,
            "31 31 31\n"
            "12 10 9\n"  // k4 is in the list too: its kind starts with ['k4']
            "['\"[\\'k4\\']\", \\'[12]\\'']\n");
  ASSERT_TRUE(RunTargetCode("del bv_list, bv_dict, bv_keys"));
}

// The same edge text from different referrers counts once ("[5]": a
// list's item and a dict's value under the int key 5); a member held
// several ways gets all of them, sorted.
TEST_F(HpClassifyTest, ByviaJoinsTheDistinctTextsOfEachMember) {
  ASSERT_TRUE(RunTargetCode(
      "class Vi:\n"
      "    pass\n"
      "def _vi():\n"
      "    a, b, c = Vi(), Vi(), Vi()\n"
      "    return [None] * 5 + [a, b], {5: a, 'x': b, 'y': c}, (c, b)\n"
      "vi_list, vi_dict, vi_tuple = _vi()\n"));
  std::string out = Exec(monitor_,
                         "v = (hp.heap() & hp.Type('__main__.Vi')).byvia\n"
                         "for k in sorted(p.kind.brief for p in v.parts):\n"
                         "    print(k)\n");
  EXPECT_EQ(out,
            "<via \"['x']\", '[1]', '[6]'>\n"
            "<via \"['y']\", '[0]'>\n"
            "<via '[5]'>\n");
  ASSERT_TRUE(RunTargetCode("del vi_list, vi_dict, vi_tuple"));
}

TEST_F(HpClassifyTest, TypeAndSizeCombination) {
  ASSERT_TRUE(
      RunTargetCode("class Pair:\n"
                    "    __slots__ = ('a', 'b')\n"
                    "pairs = [Pair() for _ in range(4)]\n"));
  long size = 0;
  {
    PyObject* v = EvalTarget("__import__('sys').getsizeof(pairs[0])");
    size = PyLong_AsLong(v);
    Py_XDECREF(v);
  }
  std::string out = Exec(monitor_,
                         "p = hp.heap() & hp.Type('__main__.Pair')\n"
                         "t = repr(p.by('Type&Size')).splitlines()\n"
                         "print(t[1])\n"
                         "print(t[2][45:])\n"
                         "print(p.by('Type&Size').er)\n");
  EXPECT_EQ(out,
            " Index  Count   %     Size   % Cumulative  % Type & "
            "Individual Size\n__main__.Pair & " +
                std::to_string(size) + "\n(hp.Type & hp.Size)\n");
}

TEST_F(HpClassifyTest, KindAlgebraSelectsWhatTheTargetSees) {
  ASSERT_TRUE(RunTargetCode(kRegistry));
  ASSERT_TRUE(RunTargetCode(
      "blobs = [bytes(n * 10) for n in range(1, 30)]\n"
      "ids = [id(b) for b in blobs]\n"
      "big = sum(1 for b in blobs if sys.getsizeof(b) >= 200)\n"));
  std::string ids = TargetStr("repr(ids)");
  std::string big = TargetStr("str(big)");
  std::string out = Exec(
      monitor_, "s = hp.idset(" + ids +
                    ")\n"
                    "h = hp.heap()\n"
                    "print(len(s & hp.Size(200).alt('>=')), len(s - "
                    "hp.Size(200).alt('>=')) "
                    "+ len(s & hp.Size(200).alt('>=')) == len(s))\n"
                    "d = h & hp.Type(dict)\n"
                    "print(all(k == 'dict' for k in [p.kind.brief for p in "
                    "d.bytype.parts]))\n"
                    "print(len(h - hp.Type(int) & hp.Type.Int), hp.Type.Dict "
                    "== hp.Type(dict))\n"
                    "print(d <= h, d < h, h >= d, h > d, d == h, (h & "
                    "~hp.Type(dict)) == (h - d))\n"
                    "both = h & (hp.Type(dict) | hp.Type(list))\n"
                    "print(len(both) == len(h & hp.Type(dict)) + len(h & "
                    "hp.Type(list)))\n"
                    "print(len(h & hp.Module(name='wreg')), len(h & "
                    "hp.Module(name='nope')))\n"
                    "print(len(h & hp.Clodo(dictof='__main__.Held')) == 0,"
                    " len(h & hp.Clodo(dictof='module')) > 10)\n"
                    "print(len(s & (hp.Type(bytes) & hp.Size(200).alt('<'))) + "
                    "len(s & hp.Size(200).alt('>=')) == len(s))\n");
  EXPECT_EQ(out, big +
                     " True\nTrue\n0 True\nTrue True True True False True\n"
                     "True\n1 0\nTrue True\nTrue\n");
  ASSERT_TRUE(RunTargetCode("del sys.modules['wreg'], wreg, blobs, ids"));
}

TEST_F(HpClassifyTest, RowsSlicesPartsAndTheOne) {
  std::string out =
      Exec(monitor_,
           "h = hp.heap()\n"
           "rows = h.parts\n"
           "print(sum(len(r) for r in rows) == len(h))\n"
           "print(h[0:2] == (rows[0] | rows[1]), h[-1] == rows[-1])\n"
           "print(len(h.bysize[0].bysize.parts))\n"
           "one = hp.heap() & hp.Module(name='sys')\n"
           "print(len(one), one.theone.split()[1])\n"
           "print(one.brief)\n"
           "print(len(h.byunity.parts), h.byunity.kind.brief)\n");
  EXPECT_EQ(out,
            "True\nTrue True\n1\n1 module\n<1 module: sys>\n1 <Anything>\n");
}

TEST_F(HpClassifyTest, ByprodNamesTheAllocationLine) {
  std::string no = Exec(monitor_,
                        "try:\n"
                        "    hp.heap().byprod\n"
                        "except RuntimeError as e:\n"
                        "    print('tracemalloc' in str(e))\n");
  EXPECT_EQ(no, "True\n");
  ASSERT_TRUE(
      RunTargetCode("import tracemalloc\n"
                    "tracemalloc.start()\n"
                    "class Made:\n"
                    "    __slots__ = ('n',)\n"
                    "made = [Made() for _ in range(6)]\n"));
  std::string out = Exec(monitor_,
                         "m = hp.heap() & hp.Type('__main__.Made')\n"
                         "print(len(m), m.byprod.kind.brief)\n"
                         // Prod kinds: that line, and no known producer.
                         "print(len(m & hp.Prod('<string>', 5)),"
                         " len(m & hp.Prod('<string>', 4)), len(m & hp.Prod()),"
                         " hp.Prod('<string>', 5).brief, hp.Prod())\n");
  ASSERT_TRUE(RunTargetCode("tracemalloc.stop(); del made"));
  // print(kind) prints its brief, as Heapy's.
  EXPECT_EQ(out, "6 <string>:5\n6 0 0 <string>:5 unknown\n");
}

// Heapy's kinds and classifiers as objects, over a heap built here: 7
// instances each owning a real __dict__, 4 instances of another class, 3
// dicts without owner and a module object, so every count is known.
constexpr char kOwners[] = R"(
import sys, types
class KOwner:
    def __init__(self, i):
        self.__dict__ = {'i': i}  # a dict object of its own, on every version
class KOther:
    def __init__(self, i):
        self.__dict__ = {'j': i}
class KNoInstance:
    pass
k_hidden = [type('KHidden', (), {})]  # no module attribute of that name
k_owners = [KOwner(i) for i in range(7)]
k_others = [KOther(i) for i in range(4)]
k_plain = [{'p': i} for i in range(3)]
k_mod = types.ModuleType('kmod')
sys.modules['kmod'] = k_mod
k_owner_ids = [id(o) for o in k_owners]
k_dict_ids = [id(o.__dict__) for o in k_owners]
k_other_dict_ids = [id(o.__dict__) for o in k_others]
k_plain_ids = [id(d) for d in k_plain]
k_plain_size = sum(sys.getsizeof(d) for d in k_plain)
)";

TEST_F(HpClassifyTest, ClassifiersAndKindsAsHeapyObjects) {
  ASSERT_TRUE(RunTargetCode(kOwners));
  auto ids = [](const std::string& name) {
    return TargetStr("repr(" + name + ")");
  };
  std::string out = Exec(
      monitor_,
      "owners, dicts = " + ids("k_owner_ids") + ", " + ids("k_dict_ids") +
          "\n"
          "others = " +
          ids("k_other_dict_ids") +
          "\n"
          "plain = " +
          ids("k_plain_ids") +
          "\n"
          "s = hp.iso(*owners, *dicts, *plain)\n"
          "h = hp.heap()\n" +
          kErrPrelude +
          // er & er: a combined classifier, as by('Type&Size').
          "ts = hp.Type & hp.Size\n"
          "print(ts, ts.name, (hp.Type & hp.Type).name,"
          " (ts & hp.Clodo).name, repr(s.by(ts)) == repr(s.by('Type&Size')),"
          " s.by(ts).er)\n"
          "print(err(lambda: ts(dict)).split(':')[0])\n"
          // Unity, Id, Idset.
          "print(hp.Unity() == hp.Anything, (s & hp.Unity()) == s,"
          " s.by(hp.Unity).er, len(s.by(hp.Unity).parts))\n"
          "print(len(s & hp.Id(owners[0])), (s & hp.Id(owners[0])) =="
          " hp.iso(owners[0]), len(s - hp.Id(owners[0])),"
          " len(s & (hp.Id(owners[0]) | hp.Id(plain[0]))))\n"
          "print(len(hp.Idset(owners[0], plain[0])), hp.Idset(*owners) =="
          " hp.iso(*owners), s.by(hp.Idset).er, hp.Idset)\n"
          // dictof: the dicts the instances own, by every spelling.
          "K = '__main__.KOwner'\n"
          "mine = hp.iso(*dicts)\n"
          "print((h & hp.Type.dictof(K)) == mine, (h & hp.Type(K).dictof) =="
          " mine, (h & hp.Type.dictof(hp.Type(K))) == mine,"
          " (h & hp.Clodo(K).dictof) == mine)\n"
          "print((h & (hp.Type(K) | hp.Type('__main__.KOther')).dictof) =="
          " hp.iso(*dicts, *others), len(s & hp.Type.dictof(())),"
          " (s & hp.Type.dictof(())) == hp.iso(*plain),"
          " (s & hp.Type.dictof(None)) == hp.iso(*owners))\n"
          "print(repr(hp.Type(K).dictof), hp.Type.dictof, hp.Clodo.refdby)\n"
          "print(err(lambda: hp.Size.dictof).split(':')[0],"
          " err(lambda: hp.Size(3).dictof).split(':')[0],"
          " len(s.by(hp.Type.dictof).parts))\n"
          // alt: '==' is the kind, '!=' its complement, on every kind.
          "print(hp.Type(dict).alt('==') == hp.Type(dict),"
          " (s & hp.Type(K).alt('!=')) == (s - hp.Type(K)),"
          " len(s & hp.Clodo(dictof=()).alt('!=')),"
          " err(lambda: hp.Module('sys').alt('<')).split(':')[0])\n"
          // Module(at=...): the module object at that address.
          "m = " +
          TargetStr("str(id(k_mod))") +
          "\n"
          "print(len(h & hp.Module(at=m)), len(h & hp.Module(name='kmod',"
          " at=m)), len(h & hp.Module(name='sys', at=m)),"
          " len(h & hp.Module(at=owners[0])), hp.Module(name='kmod', at=m) =="
          " hp.Module(name='kmod', at=m))\n"
          // Unknown class names: an error with the close names.
          "def first(e):\n"  // the message, and the closest name
          "    return e.split(' (')[0] + ' | ' + e.split('did you mean ')[1]"
          ".split('?')[0].split(', ')[0]\n"
          "print(first(err(lambda: hp.Type('__main__.KOwnr'))))\n"
          "print(first(err(lambda: hp.Clodo(dictof='__main__.KOthr'))))\n"
          "print(len(h & hp.Type('__main__.KNoInstance')),"
          " len(h & hp.Type('__main__.KHidden')),"
          " len(h & hp.Type('types.CodeType')) > 0, len(s & "
          "hp.Type('int')))\n");
  EXPECT_EQ(out,
            // x.er is the classifier object, printed as Heapy's.
            "(hp.Type & hp.Size) Type&Size Type Type&Size&Clodo True "
            "(hp.Type & hp.Size)\n"
            "TypeError\n"
            "True True hp.Unity 1\n"
            "1 True 16 2\n"
            "2 True hp.Id hp.Idset\n"
            "True True True True\n"
            "True 3 True True\n"
            "hp.Type('__main__.KOwner').dictof hp.Type.dictof "
            "hp.Clodo.refdby\n"
            // Type.dictof partitions: dict of KOwner, no owner, ~dict.
            "AttributeError TypeError 3\n"
            "True True 14 ValueError\n"
            "1 1 0 0 True\n"
            "ValueError: hp.Type(): the target has no type named "
            "'__main__.KOwnr' | '__main__.KOwner'\n"
            "ValueError: hp.Clodo(dictof=...): the target has no type named "
            "'__main__.KOthr' | '__main__.KOther'\n"
            "0 0 True 0\n");
  ASSERT_TRUE(RunTargetCode(
      "del sys.modules['kmod'], k_mod, k_owners, k_others, k_plain, k_hidden"));
}

// x.partition: Heapy's Partition (rows with their sets), len() its rows.
TEST_F(HpClassifyTest, PartitionHasTheRowsAndTheirSets) {
  ASSERT_TRUE(RunTargetCode(kOwners));
  std::string out = Exec(
      monitor_,
      "s = hp.iso(*" +
          TargetStr("repr(k_owner_ids + k_dict_ids + k_plain_ids)") +
          ")\n"
          "p = s.partition\n"
          "print(type(p).__name__, len(p), p.numrows, p.count, len(s),"
          " p.size == s.size, p.er, p.kindheader, repr(p.kindname),"
          " p.set is s, repr(p) == repr(s))\n"
          "print(sorted((r.name, r.count) for r in p.rows))\n"
          "print([r.index for r in p.rows], p.rows[-1].cumulsize == s.size,"
          " all(r.set == s[r.index] for r in p.rows),"
          " all(r.kind == r.name for r in p.rows))\n"
          "noown = [r for r in p.rows if r.name == 'dict (no owner)'][0]\n"
          "print(noown.size == " +
          TargetStr("str(k_plain_size)") +
          ", repr(noown.kind))\n"
          "print(list(p) == p.get_sets() == s.parts, p.get_set(slice(0, 2)) =="
          " s[0:2], p.get_set(-1) == s[-1], p.get_stat() == s.stat,"
          " p.get_row(-1).index, len(p.get_rows(1)),"
          " type(p.get_row(0)).__name__)\n"
          "try:\n"
          "    p.get_row(3)\n"
          "except IndexError as e:\n"
          "    print('IndexError', e)\n"
          "print(len(s.bytype.partition), s.bytype.partition.er,"
          " hp.Nothing.partition.numrows)\n");
  EXPECT_EQ(out,
            "Partition 3 3 17 17 True hp.Clodo Kind (class / dict of class) '' "
            "True True\n"
            "[('__main__.KOwner', 7), ('dict (no owner)', 3), "
            "('dict of __main__.KOwner', 7)]\n"
            "[0, 1, 2] True True True\n"
            "True hp.Clodo(dictof=())\n"
            "True True True True 2 2 PartRow\n"
            "IndexError Partition index out of range: the partition has 3 "
            "rows\n"
            "2 hp.Type 0\n");
  ASSERT_TRUE(RunTargetCode(
      "del sys.modules['kmod'], k_mod, k_owners, k_others, k_plain, k_hidden"));
}

TEST_F(HpClassifyTest, BadArgumentsRaiseClearExceptions) {
  std::string out = Exec(
      monitor_,
      std::string("h = hp.heap()\n") + kErrPrelude +
          "print(err_type(lambda: hp.Type(3)), err_type(lambda: hp.Type()),"
          " err_type(lambda: h.by('Nope')), err_type(lambda: h.by(3)))\n"
          "print(err_type(lambda: hp.Size(-1)), err_type(lambda: "
          "hp.Size(3).alt('~')),"
          " err_type(lambda: hp.Module().alt('<')), err_type(lambda: "
          "hp.Clodo(dict)))\n"
          "print(err_type(lambda: h & 3), err_type(lambda: h ^ hp.Type(int)),"
          " err_type(lambda: hp.Via()), err_type(lambda: h[10**6]), "
          "err_type(lambda: h['x']))\n"
          "print(err_type(lambda: hp.idset(['x'])), err_type(lambda: "
          "hp.Type.Nonesuch),"
          " err_type(lambda: hp.Clodo(int, dictof=int)), err_type(lambda: "
          "h.kind))\n"
          "try:\n"
          "    h.by('Type&Bogus')\n"
          "except ValueError as e:\n"
          "    print(str(e))\n");
  EXPECT_EQ(out,
            "TypeError TypeError ValueError TypeError\n"
            "TypeError ValueError ValueError TypeError\n"
            "TypeError TypeError TypeError IndexError TypeError\n"
            "TypeError AttributeError TypeError ValueError\n"
            "by(): no such equivalence relation: 'Bogus'; known: Clodo, Type, "
            "Size, Module, Id, Unity, Rcs, Via, Prod, Type.dictof, X.refdby, "
            "combined with '&' (e.g. 'Type&Size', '(Type&Size).refdby')\n");
}

// The bad inputs of issue 21 that were accepted or misread: names with a
// NUL character (C would end them there: 'Type\0Size' became 'Type'),
// empty names and empty parts, lone surrogates. Each gets a clear error.
TEST_F(HpClassifyTest, BadNamesFromTheIssueGetClearErrors) {
  std::string out =
      Exec(monitor_,
           "h = hp.heap()\n"
           "def show(f, message=True):\n"
           "    try:\n"
           "        f()\n"
           "        print('no error')\n"
           "    except Exception as e:\n"
           "        print(type(e).__name__ + ':',\n"
           "              str(e).split('; known')[0] if message else '')\n"
           "show(lambda: h.by('Type\\0Size'))\n"
           "show(lambda: h.by(''))\n"
           "show(lambda: h.by('Type&'))\n"
           "show(lambda: h.by('&Type'))\n"
           "show(lambda: h.by('Type&&Size'))\n"
           "show(lambda: h.by('\\udc80'))\n"
           "show(lambda: hp.Type('a\\0b'))\n"
           "show(lambda: hp.Type(''))\n"
           "show(lambda: hp.Clodo(dictof='x\\0'))\n"
           "show(lambda: hp.Module(name='sys\\0'))\n"
           "show(lambda: hp.Via('.a\\0'))\n"
           "show(lambda: hp.Via(''))\n"
           "show(lambda: hp.Rcs('dict\\0'))\n"
           "show(lambda: hp.Size(3).alt('<\\0'))\n"
           // Python's own message (differs by version) for an unknown name.
           "show(lambda: getattr(h, 'bytype\\0x'), False)\n"
           "show(lambda: getattr(hp, 'heap\\0'))\n"
           "show(lambda: h.get_rp(stopkind='dict\\0'))\n"
           "show(lambda: h.get_rp(stopkind=['dict', '']))\n"
           "show(lambda: hp.load('/dev/zero'))\n"
           "print(len(h.by('Type&Size').parts) > 1, h.by('Unity').er)\n");
  EXPECT_EQ(
      out,
      "ValueError: by(): the name 'Type\\x00Size' holds a NUL character "
      "('\\0'); names never do\n"
      "ValueError: by(): the name is empty (for one row of everything use "
      "'Unity')\n"
      "ValueError: by(): 'Type&' has an empty part (around '&')\n"
      "ValueError: by(): '&Type' has an empty part (around '&')\n"
      "ValueError: by(): 'Type&&Size' has an empty part (around '&')\n"
      "UnicodeEncodeError: 'utf-8' codec can't encode character '\\udc80' in "
      "position 0: surrogates not allowed\n"
      "ValueError: kind name: the name 'a\\x00b' holds a NUL character "
      "('\\0'); names never do\n"
      "ValueError: kind name: the name is empty\n"
      "ValueError: kind name: the name 'x\\x00' holds a NUL character "
      "('\\0'); names never do\n"
      "ValueError: hp.Module(name=...): the name 'sys\\x00' holds a NUL "
      "character ('\\0'); names never do\n"
      "ValueError: hp.Via(): the name '.a\\x00' holds a NUL character "
      "('\\0'); names never do\n"
      "ValueError: hp.Via(): the name is empty\n"
      "ValueError: kind name: the name 'dict\\x00' holds a NUL character "
      "('\\0'); names never do\n"
      "ValueError: alt(): the name '<\\x00' holds a NUL character ('\\0'); "
      "names never do\n"
      "AttributeError: \n"
      "AttributeError: hp has no attribute 'heap\\x00'\n"
      "ValueError: stopkind: the name 'dict\\x00' holds a NUL character "
      "('\\0'); names never do\n"
      "ValueError: stopkind: the name is empty\n"
      "ValueError: load(): '/dev/zero' is a character device, not a regular "
      "file; load(..., special=True) reads it anyway (bounded: stops at the "
      "first line or record past the limits)\n"
      "True hp.Unity\n");
}

}  // namespace
}  // namespace annex
