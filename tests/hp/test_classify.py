"""hp's classifiers and kinds, checked against what the target itself
computes over the same objects.

Runs inside the annex (tests/testing/annex_unittest_main.cc): `hp` is the
console's, new for each test; `annex_test` runs code in the target's
__main__, which persists across the tests of the binary.
"""

import unittest

import annex_test
from annex_test import err, err_type

# The oracle, run in the target: Heapy's names of types, and for a dict the
# type of the object whose attribute dict it is, over the objects in
# `objs`. One line per kind, "name|count|size", sorted. A size is
# sys.getsizeof plus, for an instance listed in `objs_values` (id -> bytes),
# its attribute values block, which sys.getsizeof leaves out and Annex
# counts; `values_block` measures one independently: what the allocator
# gives a new instance of `cls` (object.__new__ makes the block; no
# __init__ runs) beyond sys.getsizeof.
ORACLE = r"""
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
"""

# Each builds `objs` in the target: the objects to classify.
WORKLOADS = [
    ("dicts", """
objs = [{'k%d' % i: i + 1000, 'v': [i]} for i in range(50)]
objs += [d['v'] for d in objs] + [{} for _ in range(7)]
"""),
    ("instances_with_dict", """
class WInst:
    def __init__(self, v): self.v = v; self.w = [v]
# 3.11/3.12 give a class's first ~30 instances larger values blocks.
for _ in range(64): WInst(0)
insts = [WInst(i) for i in range(40)]
objs = insts + [vars(o) for o in insts[:25]] + [o.w for o in insts]
# With a __dict__ object, 3.11/3.12 keep the values in the dict (sized as a
# dict); 3.13 keeps the inline area in the instance.
w_block = values_block(WInst)
objs_values = {id(o): w_block for o in
    (insts if sys.version_info >= (3, 13) else insts[25:])}
"""),
    ("slots", """
class WSlots:
    __slots__ = ('a', 'b')
    def __init__(self, v): self.a = v; self.b = (v, v + 1)
objs = [WSlots(i + 5000) for i in range(30)]
objs += [o.b for o in objs] + [o.a for o in objs]
"""),
    ("nested_types_modules", """
import types as _t
class WBase:
    x = 1
class WSub(WBase):
    def f(self): return 1
wmod = _t.ModuleType('wmod')
wmod.data = {'a': {'b': {'c': [1, 2, (3, 4)]}}}
def wfunc(): pass
wfunc.attr = 7
objs = [WBase, WSub, wmod, vars(wmod), wmod.data, wmod.data['a'],
        wmod.data['a']['b'], wmod.data['a']['b']['c'], wfunc,
        wfunc.__dict__]
objs += [d for c in (WBase, WSub) for d in __import__('gc').get_referents(c)
         if type(d) is dict]
"""),
]

REGISTRY = """
import sys, types
class Held:
    pass
wreg = types.ModuleType('wreg')
sys.modules['wreg'] = wreg
wreg.registry = {}
wreg.registry['k'] = Held()
"""
DEL_REGISTRY = "del sys.modules['wreg'], wreg"

# Heapy's kinds and classifiers as objects, over a heap built here: 7
# instances each owning a real __dict__, 4 instances of another class, 3
# dicts without owner and a module object, so every count is known.
OWNERS = """
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
"""
DEL_OWNERS = ("del sys.modules['kmod'], k_mod, k_owners, k_others, k_plain,"
              " k_hidden")


def rows(x):
    """The rows of IdSet `x` in the oracle's format."""
    return '\n'.join(
        sorted('%s|%d|%d' % (p.kind.brief, p.count, p.size) for p in x.parts))


def plant(test, code, cleanup):
    """Runs `code` in the target and `cleanup` there when the test ends."""
    annex_test.target_exec(code)
    test.addCleanup(annex_test.target_exec, cleanup)


class HpClassifyTest(unittest.TestCase):

    def setUp(self):
        if not annex_test.target_eval("'oracle_rows' in globals()"):
            annex_test.target_exec(ORACLE)

    def test_by_type_and_by_clodo_agree_with_the_targets_own_count(self):
        self.addCleanup(annex_test.target_exec,
                        "objs = ids = None\ndel objs, ids")
        for name, code in WORKLOADS:
            with self.subTest(workload=name):
                annex_test.target_exec('objs_values = {}')
                annex_test.target_exec(code)
                annex_test.target_exec('ids = [id(o) for o in objs]')
                s = hp.idset(annex_test.target_eval('ids'))
                # The default partition is by Clodo.
                got = (len(s), rows(s.bytype), rows(s.byclodo), rows(s))
                want = annex_test.target_eval(
                    '(len(objs), oracle_rows(objs, False),'
                    ' oracle_rows(objs, True), oracle_rows(objs, True))')
                self.assertEqual(got, want)

    def test_heap_is_partitioned_by_clodo_with_heapys_header(self):
        annex_test.target_exec("""
class Owner:
    pass
owner = Owner()
owner.__dict__['x'] = 1
# Held here too: on 3.13 an instance with valid inline values does not
# report its materialized dict to tp_traverse (nor to the walk).
owner_dict = owner.__dict__
""")
        h = hp.heap()
        self.assertEqual(
            repr(h).splitlines()[1],
            ' Index  Count   %     Size   % Cumulative  % Kind (class / dict'
            ' of class)')
        self.assertEqual(str(h.er), 'hp.Clodo')
        self.assertIn('dict of __main__.Owner', h.all)
        self.assertIn('dict of module', h.all)
        self.assertEqual(repr(h.bytype).splitlines()[1],
                         ' Index  Count   %     Size   % Cumulative  % Type')

    def test_byvia_and_byrcs_name_how_the_object_is_held(self):
        plant(self, REGISTRY, DEL_REGISTRY)
        h = hp.heap()
        held = h & hp.Type('__main__.Held')
        self.assertEqual(len(held), 1)
        # Heapy's briefs of Via and Rcs kinds.
        self.assertEqual(held.byvia.kind.brief, '<via "[\'k\']">')
        self.assertEqual(held.byrcs.kind.brief,
                         '<referred by: dict (no owner)>')
        reg = h & hp.Via("['registry']")
        self.assertEqual(reg.byrcs.kind.brief,
                         '<referred by: dict of module>')
        self.assertEqual(reg.kind.brief, 'dict (no owner)')
        self.assertEqual(
            repr(held.byvia).splitlines()[1],
            ' Index  Count   %     Size   % Cumulative  % Referred Via:')
        self.assertEqual(
            repr(held.byrcs).splitlines()[1],
            ' Index  Count   %     Size   % Cumulative  % Referrers by Kind'
            ' (class / dict of class)')
        # Kinds of these classifiers select the same objects.
        self.assertTrue((h & hp.Via("['k']")) == held)
        self.assertEqual(len(held & hp.Rcs(hp.Clodo(dictof=()))), 1)
        self.assertEqual(len(held & hp.Rcs('dict of module')), 0)

    def test_byrcs_groups_members_by_sets_of_referrer_kinds(self):
        # Members held by several kinds of referrer get the set of those
        # kinds; members with the same set share one row, alone and inside
        # a combination.
        plant(
            self, """
class Rk:
    pass
def _rk():
    a, b, c, e = Rk(), Rk(), Rk(), Rk()
    return [a, b, c, e], {'b': b, 'c': c, 'e': e}, (c,)
rk_list, rk_dict, rk_tuple = _rk()
""", 'del rk_list, rk_dict, rk_tuple')
        s = hp.heap() & hp.Type('__main__.Rk')
        self.assertEqual(
            sorted((p.kind.brief, len(p)) for p in s.byrcs.parts),
            [('<referred by: dict (no owner), list, tuple>', 1),
             ('<referred by: dict (no owner), list>', 2),
             ('<referred by: list>', 1)])
        self.assertEqual(
            sorted((p.kind.brief, len(p)) for p in s.by('Type&Rcs').parts),
            [('__main__.Rk & {dict (no owner), list, tuple}', 1),
             ('__main__.Rk & {dict (no owner), list}', 2),
             ('__main__.Rk & {list}', 1)])

    def test_byvia_names_each_member_of_a_big_container(self):
        # Referrers that hold many members (a list, a dict's values and
        # keys) are scanned once for all of them; each member still gets its
        # own edge, and one held twice gets both.
        plant(
            self, """
class Bv:
    __slots__ = ('n',)
    def __hash__(self): return 7
bv_list = [Bv() for _ in range(12)]
bv_dict = {'k%d' % i: Bv() for i in range(10)}
bv_keys = {Bv(): None for _ in range(9)}
bv_list.append(bv_dict['k4'])
""", 'del bv_list, bv_dict, bv_keys')
        s = hp.heap() & hp.Type('__main__.Bv')
        v = s.byvia
        # A Via kind's brief is Heapy's "<via ...>".
        kinds = sorted(p.kind.brief[5:-1] for p in v.parts)
        self.assertEqual((len(s), len(kinds), sum(len(p) for p in v.parts)),
                         (31, 31, 31))
        self.assertEqual(
            (sum(k.startswith("'[") and k.endswith("]'") for k in kinds),
             sum(k.startswith('"[\'k') for k in kinds),
             sum(k.startswith("'.keys()[") for k in kinds)),
            (12, 10, 9))  # k4 is in the list too: its kind starts ['k4']
        self.assertEqual([k for k in kinds if ', ' in k],
                         ['"[\'k4\']", \'[12]\''])

    def test_byvia_joins_the_distinct_texts_of_each_member(self):
        # The same edge text from different referrers counts once ("[5]": a
        # list's item and a dict's value under the int key 5); a member held
        # several ways gets all of them, sorted.
        plant(
            self, """
class Vi:
    pass
def _vi():
    a, b, c = Vi(), Vi(), Vi()
    return [None] * 5 + [a, b], {5: a, 'x': b, 'y': c}, (c, b)
vi_list, vi_dict, vi_tuple = _vi()
""", 'del vi_list, vi_dict, vi_tuple')
        v = (hp.heap() & hp.Type('__main__.Vi')).byvia
        self.assertEqual(sorted(p.kind.brief for p in v.parts), [
            '<via "[\'x\']", \'[1]\', \'[6]\'>',
            '<via "[\'y\']", \'[0]\'>',
            "<via '[5]'>",
        ])

    def test_the_whole_heap_labels_each_member_as_a_part_does(self):
        # Classifying every object of the heap reads each referrer's member
        # straight from its node (member k is node k); a part of the heap
        # maps nodes to members through a table. Both must give a member
        # the same Rcs and Via kinds: the part's rows, selected from the
        # whole heap by their kinds, are the same objects.
        plant(
            self, """
class Wk:
    pass
def _wk():
    a, b, c, e = Wk(), Wk(), Wk(), Wk()
    return [a, b, c, e, e], {'b': b, 'c': c, 5: e}, (c, a), [None] * 3 + [b]
wk_list, wk_dict, wk_tuple, wk_tail = _wk()
wk_many = [Wk() for _ in range(200)]
""", 'del wk_list, wk_dict, wk_tuple, wk_tail, wk_many, _wk, Wk')
        h = hp.heap()
        part = h & hp.Type('__main__.Wk')
        self.assertEqual(len(part), 204)
        for name in 'Rcs', 'Via':
            rows = part.by(name).parts
            # Held in different ways: more than one row each.
            self.assertGreater(len(rows), 1, name)
            # Each Via row classifies the whole heap again: a dozen of
            # wk_many's 200 "[i]" rows tell as much as all of them.
            for row in rows[:16]:
                with self.subTest(classifier=name, kind=row.kind.brief):
                    self.assertTrue((h & row.kind) & part == row)

    def test_type_and_size_combination(self):
        annex_test.target_exec("""
class Pair:
    __slots__ = ('a', 'b')
pairs = [Pair() for _ in range(4)]
""")
        size = annex_test.target_eval(
            "__import__('sys').getsizeof(pairs[0])")
        p = hp.heap() & hp.Type('__main__.Pair')
        t = repr(p.by('Type&Size')).splitlines()
        self.assertEqual(
            t[1], ' Index  Count   %     Size   % Cumulative  % Type &'
            ' Individual Size')
        self.assertEqual(t[2][45:], '__main__.Pair & %d' % size)
        self.assertEqual(str(p.by('Type&Size').er), '(hp.Type & hp.Size)')

    def test_kind_algebra_selects_what_the_target_sees(self):
        plant(self, REGISTRY, DEL_REGISTRY)
        plant(
            self, """
blobs = [bytes(n * 10) for n in range(1, 30)]
ids = [id(b) for b in blobs]
big = sum(1 for b in blobs if sys.getsizeof(b) >= 200)
""", 'del blobs, ids')
        s = hp.idset(annex_test.target_eval('ids'))
        big = annex_test.target_eval('big')
        h = hp.heap()
        ge200 = hp.Size(200).alt('>=')
        self.assertEqual(len(s & ge200), big)
        self.assertEqual(len(s - ge200) + len(s & ge200), len(s))
        d = h & hp.Type(dict)
        self.assertTrue(all(k == 'dict'
                            for k in [p.kind.brief for p in d.bytype.parts]))
        self.assertEqual(len(h - hp.Type(int) & hp.Type.Int), 0)
        self.assertTrue(hp.Type.Dict == hp.Type(dict))
        self.assertTrue(d <= h)
        self.assertTrue(d < h)
        self.assertTrue(h >= d)
        self.assertTrue(h > d)
        self.assertFalse(d == h)
        self.assertTrue((h & ~hp.Type(dict)) == (h - d))
        both = h & (hp.Type(dict) | hp.Type(list))
        self.assertEqual(len(both),
                         len(h & hp.Type(dict)) + len(h & hp.Type(list)))
        self.assertEqual(len(h & hp.Module(name='wreg')), 1)
        self.assertEqual(len(h & hp.Module(name='nope')), 0)
        self.assertEqual(len(h & hp.Clodo(dictof='__main__.Held')), 0)
        self.assertGreater(len(h & hp.Clodo(dictof='module')), 10)
        self.assertEqual(
            len(s & (hp.Type(bytes) & hp.Size(200).alt('<'))) +
            len(s & ge200), len(s))

    def test_rows_slices_parts_and_the_one(self):
        h = hp.heap()
        parts = h.parts
        self.assertEqual(sum(len(r) for r in parts), len(h))
        self.assertTrue(h[0:2] == (parts[0] | parts[1]))
        self.assertTrue(h[-1] == parts[-1])
        self.assertEqual(len(h.bysize[0].bysize.parts), 1)
        one = hp.heap() & hp.Module(name='sys')
        self.assertEqual(len(one), 1)
        self.assertEqual(one.theone.split()[1], 'module')
        self.assertEqual(one.brief, '<1 module: sys>')
        self.assertEqual(len(h.byunity.parts), 1)
        self.assertEqual(h.byunity.kind.brief, '<Anything>')

    def test_byprod_names_the_allocation_line(self):
        with self.assertRaises(RuntimeError) as cm:
            hp.heap().byprod  # pylint: disable=expression-not-assigned
        self.assertIn('tracemalloc', str(cm.exception))
        # Compiled under a name of its own: line 5 allocates the objects.
        plant(
            self, """exec(compile('''import tracemalloc
tracemalloc.start()
class Made:
    __slots__ = ('n',)
made = [Made() for _ in range(6)]
''', 'made_fixture.py', 'exec'))
""", 'tracemalloc.stop(); del made')
        m = hp.heap() & hp.Type('__main__.Made')
        self.assertEqual(len(m), 6)
        self.assertEqual(m.byprod.kind.brief, 'made_fixture.py:5')
        # Prod kinds: that line, and no known producer.
        self.assertEqual(len(m & hp.Prod('made_fixture.py', 5)), 6)
        self.assertEqual(len(m & hp.Prod('made_fixture.py', 4)), 0)
        self.assertEqual(len(m & hp.Prod()), 0)
        # print(kind) prints its brief, as Heapy's.
        self.assertEqual(str(hp.Prod('made_fixture.py', 5).brief),
                         'made_fixture.py:5')
        self.assertEqual(str(hp.Prod()), 'unknown')

    def test_classifiers_and_kinds_as_heapy_objects(self):
        plant(self, OWNERS, DEL_OWNERS)
        owners = annex_test.target_eval('k_owner_ids')
        dicts = annex_test.target_eval('k_dict_ids')
        others = annex_test.target_eval('k_other_dict_ids')
        plain = annex_test.target_eval('k_plain_ids')
        s = hp.iso(*owners, *dicts, *plain)
        h = hp.heap()
        # er & er: a combined classifier, as by('Type&Size'); x.er is the
        # classifier object, printed as Heapy's.
        ts = hp.Type & hp.Size
        self.assertEqual(str(ts), '(hp.Type & hp.Size)')
        self.assertEqual(ts.name, 'Type&Size')
        self.assertEqual((hp.Type & hp.Type).name, 'Type')
        self.assertEqual((ts & hp.Clodo).name, 'Type&Size&Clodo')
        self.assertEqual(repr(s.by(ts)), repr(s.by('Type&Size')))
        self.assertEqual(str(s.by(ts).er), '(hp.Type & hp.Size)')
        self.assertEqual(err_type(lambda: ts(dict)), 'TypeError')
        # Unity, Id, Idset.
        self.assertTrue(hp.Unity() == hp.Anything)
        self.assertTrue((s & hp.Unity()) == s)
        self.assertEqual(str(s.by(hp.Unity).er), 'hp.Unity')
        self.assertEqual(len(s.by(hp.Unity).parts), 1)
        self.assertEqual(len(s & hp.Id(owners[0])), 1)
        self.assertTrue((s & hp.Id(owners[0])) == hp.iso(owners[0]))
        self.assertEqual(len(s - hp.Id(owners[0])), 16)
        self.assertEqual(len(s & (hp.Id(owners[0]) | hp.Id(plain[0]))), 2)
        self.assertEqual(len(hp.Idset(owners[0], plain[0])), 2)
        self.assertTrue(hp.Idset(*owners) == hp.iso(*owners))
        self.assertEqual(str(s.by(hp.Idset).er), 'hp.Id')
        self.assertEqual(str(hp.Idset), 'hp.Idset')
        # dictof: the dicts the instances own, by every spelling.
        K = '__main__.KOwner'
        mine = hp.iso(*dicts)
        self.assertTrue((h & hp.Type.dictof(K)) == mine)
        self.assertTrue((h & hp.Type(K).dictof) == mine)
        self.assertTrue((h & hp.Type.dictof(hp.Type(K))) == mine)
        self.assertTrue((h & hp.Clodo(K).dictof) == mine)
        self.assertTrue(
            (h & (hp.Type(K) | hp.Type('__main__.KOther')).dictof) ==
            hp.iso(*dicts, *others))
        self.assertEqual(len(s & hp.Type.dictof(())), 3)
        self.assertTrue((s & hp.Type.dictof(())) == hp.iso(*plain))
        self.assertTrue((s & hp.Type.dictof(None)) == hp.iso(*owners))
        self.assertEqual(repr(hp.Type(K).dictof),
                         "hp.Type('__main__.KOwner').dictof")
        self.assertEqual(str(hp.Type.dictof), 'hp.Type.dictof')
        self.assertEqual(str(hp.Clodo.refdby), 'hp.Clodo.refdby')
        self.assertEqual(err_type(lambda: hp.Size.dictof), 'AttributeError')
        self.assertEqual(err_type(lambda: hp.Size(3).dictof), 'TypeError')
        # Type.dictof partitions: dict of KOwner, no owner, ~dict.
        self.assertEqual(len(s.by(hp.Type.dictof).parts), 3)
        # alt: '==' is the kind, '!=' its complement, on every kind.
        self.assertTrue(hp.Type(dict).alt('==') == hp.Type(dict))
        self.assertTrue((s & hp.Type(K).alt('!=')) == (s - hp.Type(K)))
        self.assertEqual(len(s & hp.Clodo(dictof=()).alt('!=')), 14)
        self.assertEqual(err_type(lambda: hp.Module('sys').alt('<')),
                         'ValueError')
        # Module(at=...): the module object at that address.
        m = annex_test.target_eval('id(k_mod)')
        self.assertEqual(len(h & hp.Module(at=m)), 1)
        self.assertEqual(len(h & hp.Module(name='kmod', at=m)), 1)
        self.assertEqual(len(h & hp.Module(name='sys', at=m)), 0)
        self.assertEqual(len(h & hp.Module(at=owners[0])), 0)
        self.assertTrue(
            hp.Module(name='kmod', at=m) == hp.Module(name='kmod', at=m))

        # Unknown class names: an error with the close names.
        def first(e):  # the message, and the closest name
            return (e.split(' (')[0] + ' | ' +
                    e.split('did you mean ')[1].split('?')[0].split(', ')[0])

        self.assertEqual(
            first(err(lambda: hp.Type('__main__.KOwnr'))),
            "ValueError: hp.Type(): the target has no type named"
            " '__main__.KOwnr' | '__main__.KOwner'")
        self.assertEqual(
            first(err(lambda: hp.Clodo(dictof='__main__.KOthr'))),
            "ValueError: hp.Clodo(dictof=...): the target has no type named"
            " '__main__.KOthr' | '__main__.KOther'")
        self.assertEqual(len(h & hp.Type('__main__.KNoInstance')), 0)
        self.assertEqual(len(h & hp.Type('__main__.KHidden')), 0)
        self.assertGreater(len(h & hp.Type('types.CodeType')), 0)
        self.assertEqual(len(s & hp.Type('int')), 0)

    def test_partition_has_the_rows_and_their_sets(self):
        # x.partition: Heapy's Partition (rows with their sets), len() its
        # rows.
        plant(self, OWNERS, DEL_OWNERS)
        s = hp.iso(*annex_test.target_eval(
            'k_owner_ids + k_dict_ids + k_plain_ids'))
        p = s.partition
        self.assertEqual(type(p).__name__, 'Partition')
        self.assertEqual((len(p), p.numrows, p.count, len(s)), (3, 3, 17, 17))
        self.assertEqual(p.size, s.size)
        self.assertEqual(str(p.er), 'hp.Clodo')
        self.assertEqual(p.kindheader, 'Kind (class / dict of class)')
        self.assertEqual(repr(p.kindname), "''")
        self.assertIs(p.set, s)
        self.assertEqual(repr(p), repr(s))
        self.assertEqual(sorted((r.name, r.count) for r in p.rows),
                         [('__main__.KOwner', 7), ('dict (no owner)', 3),
                          ('dict of __main__.KOwner', 7)])
        self.assertEqual([r.index for r in p.rows], [0, 1, 2])
        self.assertEqual(p.rows[-1].cumulsize, s.size)
        self.assertTrue(all(r.set == s[r.index] for r in p.rows))
        self.assertTrue(all(r.kind == r.name for r in p.rows))
        noown = [r for r in p.rows if r.name == 'dict (no owner)'][0]
        self.assertEqual(noown.size, annex_test.target_eval('k_plain_size'))
        self.assertEqual(repr(noown.kind), 'hp.Clodo(dictof=())')
        self.assertTrue(list(p) == p.get_sets() == s.parts)
        self.assertTrue(p.get_set(slice(0, 2)) == s[0:2])
        self.assertTrue(p.get_set(-1) == s[-1])
        self.assertTrue(p.get_stat() == s.stat)
        self.assertEqual(p.get_row(-1).index, 2)
        self.assertEqual(len(p.get_rows(1)), 2)
        self.assertEqual(type(p.get_row(0)).__name__, 'PartRow')
        self.assertEqual(
            err(lambda: p.get_row(3)),
            'IndexError: Partition index out of range: the partition has 3'
            ' rows')
        self.assertEqual(len(s.bytype.partition), 2)
        self.assertEqual(str(s.bytype.partition.er), 'hp.Type')
        self.assertEqual(hp.Nothing.partition.numrows, 0)

    def test_bad_arguments_raise_clear_exceptions(self):
        h = hp.heap()
        cases = [
            (lambda: hp.Type(3), 'TypeError'),
            (lambda: hp.Type(), 'TypeError'),
            (lambda: h.by('Nope'), 'ValueError'),
            (lambda: h.by(3), 'TypeError'),
            (lambda: hp.Size(-1), 'TypeError'),
            (lambda: hp.Size(3).alt('~'), 'ValueError'),
            (lambda: hp.Module().alt('<'), 'ValueError'),
            (lambda: hp.Clodo(dict), 'TypeError'),
            (lambda: h & 3, 'TypeError'),
            (lambda: h ^ hp.Type(int), 'TypeError'),
            (lambda: hp.Via(), 'TypeError'),
            (lambda: h[10**6], 'IndexError'),
            (lambda: h['x'], 'TypeError'),
            (lambda: hp.idset(['x']), 'TypeError'),
            (lambda: hp.Type.Nonesuch, 'AttributeError'),
            (lambda: hp.Clodo(int, dictof=int), 'TypeError'),
            (lambda: h.kind, 'ValueError'),
        ]
        self.assertEqual([err_type(f) for f, _ in cases],
                         [want for _, want in cases])
        self.assertEqual(
            err(lambda: h.by('Type&Bogus')),
            "ValueError: by(): no such equivalence relation: 'Bogus'; known:"
            " Clodo, Type, Size, Module, Id, Unity, Rcs, Via, Prod,"
            " Type.dictof, X.refdby, combined with '&' (e.g. 'Type&Size',"
            " '(Type&Size).refdby')")

    def test_bad_names_from_the_issue_get_clear_errors(self):
        # The bad inputs of issue 21 that were accepted or misread: names
        # with a NUL character (C would end them there: 'Type\0Size' became
        # 'Type'), empty names and empty parts, lone surrogates. Each gets a
        # clear error.
        h = hp.heap()

        def shown(f, message=True):
            try:
                f()
            except Exception as e:  # pylint: disable=broad-except
                return (type(e).__name__ + ': ' +
                        (str(e).split('; known')[0] if message else ''))
            return 'no error'

        nul = " holds a NUL character ('\\0'); names never do"
        cases = [
            (lambda: h.by('Type\0Size'),
             "ValueError: by(): the name 'Type\\x00Size'" + nul),
            (lambda: h.by(''), "ValueError: by(): the name is empty (for one"
             " row of everything use 'Unity')"),
            (lambda: h.by('Type&'),
             "ValueError: by(): 'Type&' has an empty part (around '&')"),
            (lambda: h.by('&Type'),
             "ValueError: by(): '&Type' has an empty part (around '&')"),
            (lambda: h.by('Type&&Size'),
             "ValueError: by(): 'Type&&Size' has an empty part (around '&')"),
            (lambda: h.by('\udc80'),
             "UnicodeEncodeError: 'utf-8' codec can't encode character"
             " '\\udc80' in position 0: surrogates not allowed"),
            (lambda: hp.Type('a\0b'),
             "ValueError: kind name: the name 'a\\x00b'" + nul),
            (lambda: hp.Type(''), 'ValueError: kind name: the name is empty'),
            (lambda: hp.Clodo(dictof='x\0'),
             "ValueError: kind name: the name 'x\\x00'" + nul),
            (lambda: hp.Module(name='sys\0'),
             "ValueError: hp.Module(name=...): the name 'sys\\x00'" + nul),
            (lambda: hp.Via('.a\0'),
             "ValueError: hp.Via(): the name '.a\\x00'" + nul),
            (lambda: hp.Via(''), 'ValueError: hp.Via(): the name is empty'),
            (lambda: hp.Rcs('dict\0'),
             "ValueError: kind name: the name 'dict\\x00'" + nul),
            (lambda: hp.Size(3).alt('<\0'),
             "ValueError: alt(): the name '<\\x00'" + nul),
            (lambda: getattr(hp, 'heap\0'),
             "AttributeError: hp has no attribute 'heap\\x00'"),
            (lambda: h.get_rp(stopkind='dict\0'),
             "ValueError: stopkind: the name 'dict\\x00'" + nul),
            (lambda: h.get_rp(stopkind=['dict', '']),
             'ValueError: stopkind: the name is empty'),
            (lambda: hp.load('/dev/zero'),
             "ValueError: load(): '/dev/zero' is a character device, not a"
             " regular file; load(..., special=True) reads it anyway"
             " (bounded: stops at the first line or record past the limits)"),
        ]
        self.assertEqual([shown(f) for f, _ in cases],
                         [want for _, want in cases])
        # Python's own message (differs by version) for an unknown name.
        self.assertEqual(shown(lambda: getattr(h, 'bytype\0x'), False),
                         'AttributeError: ')
        self.assertGreater(len(h.by('Type&Size').parts), 1)
        self.assertEqual(str(h.by('Unity').er), 'hp.Unity')



class ByrcsReferrersTest(unittest.TestCase):
    """byrcs and X.refdby read each member's referrers from the graph's
    forward edges (no reverse index): every referrer counts once per kind,
    whatever the order the edges come in, repeated edges and
    self-references included, and a member no live object refers to is
    <Nothing>. Expectations come from how the fixture is built."""

    def test_sets_of_referrer_kinds_from_every_edge(self):
        # `many` is held by three lists, a tuple and a slots instance;
        # `twice` by one list, twice; `me` by the module's dict and by
        # itself; `lone` by nothing but a C reference (Py_IncRef: a
        # reference count no object holds), so it has no referrer.
        annex_test.target_exec(
            'class Rf:\n'
            '    pass\n'
            'class RfSlot:\n'
            "    __slots__ = ('x',)\n"
            'def _rf():\n'
            '    many, twice, lone = Rf(), Rf(), Rf()\n'
            '    slot = RfSlot()\n'
            '    slot.x = many\n'
            '    me = []\n'
            '    me.append(me)\n'
            '    return ([many], [many], [many], (many,), slot,\n'
            '            [twice, twice], me, lone)\n'
            '(rf_l1, rf_l2, rf_l3, rf_tup, rf_slot, rf_pair, rf_self,\n'
            ' rf_lone) = _rf()\n'
            'rf_ids = (id(rf_l1[0]), id(rf_pair[0]), id(rf_self),\n'
            '          id(rf_lone))\n'
            'import ctypes\n'
            'ctypes.pythonapi.Py_IncRef(ctypes.py_object(rf_lone))\n'
            'del rf_lone, _rf\n')
        self.addCleanup(
            annex_test.target_exec,
            'ctypes.pythonapi.Py_DecRef(ctypes.c_void_p(rf_ids[3]))\n'
            'del rf_l1, rf_l2, rf_l3, rf_tup, rf_slot, rf_pair, rf_self,'
            ' rf_ids, Rf, RfSlot\n')
        im, it, ie, il = annex_test.target_eval('rf_ids')
        s = hp.idset([im, it, ie, il])
        self.assertEqual(len(s), 4)
        self.assertEqual(
            sorted((p.kind.brief, len(p)) for p in s.byrcs.parts),
            [('<referred by: <Nothing>>', 1),
             ('<referred by: __main__.RfSlot, list, tuple>', 1),
             ('<referred by: dict of module, list>', 1),
             ('<referred by: list>', 1)])
        self.assertEqual(
            sorted((p.kind.brief, len(p))
                   for p in s.by(hp.Type.refdby).parts),
            [('<referred by: <Nothing>>', 1),
             ('<referred by: __main__.RfSlot, list, tuple>', 1),
             ('<referred by: dict, list>', 1),
             ('<referred by: list>', 1)])
        v = hp.idset([im, it]).by(hp.Via.refdby)
        self.assertEqual(
            sorted((p.kind.brief, len(p)) for p in v.parts),
            [('<referred by: "[\'rf_l1\']", "[\'rf_l2\']", "[\'rf_l3\']", '
              '"[\'rf_slot\']", "[\'rf_tup\']">', 1),
             ('<referred by: "[\'rf_pair\']">', 1)])
