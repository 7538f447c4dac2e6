"""hp's values surface (issue 19): x.theone, x.byid (a table whose rows are
sets), x.brief, x.maprox and x.prod.

Expected values come from the fixture's construction (repr, ids and names
computed in the target by Python), never from Annex's own output; asking
creates nothing in the target and runs none of its code.

Runs inside the annex (tests/testing/annex_unittest_main.cc): `hp` is the
console's, new for each test; `annex_test` runs code in the target's
__main__, which persists across the tests of the binary.
"""

import unittest

import annex_test
from annex_test import err

# Module `valmod`: one object of each kind whose value or name a table
# shows, containers, records for maprox and a class whose attribute lookups
# count their calls (reading must make none).
VALMOD = r"""
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
"""

# Makes module `valmod` in the target's sys.modules, once per binary.
DEFINE_VALMOD = """
import sys, types
if 'valmod' not in sys.modules:
    _m = types.ModuleType('valmod')
    sys.modules['valmod'] = _m
    exec(%r, _m.__dict__)
    del _m
""" % VALMOD

# How a table shows each named object, from the objects themselves.
EXPECTED = """
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
"""

NAMES = [
    'text', 'quote', 'blob', 'big', 'num', 'ratio', 'flag', 'nothing', 'cplx',
    'items', 'table', 'bound', 'code', 'builtin', 'appender', 'module',
    'inner', 'top'
]


def value(expr):
    """The value column of the one object `expr` names in the target."""
    line = str(hp.iso(expr).theone)
    return line.split(' ', 4)[4]


class HpValuesTest(unittest.TestCase):

    def setUp(self):
        annex_test.target_exec(DEFINE_VALMOD)
        if not annex_test.target_eval("'_shown' in globals()"):
            annex_test.target_exec(EXPECTED)

    def test_the_one_shows_values_and_names_read_in_place(self):
        for name in NAMES:
            with self.subTest(name=name):
                want = annex_test.target_eval("_shown('%s')" % name)
                if name == 'big':
                    want = '<int of 101 bits>'
                self.assertEqual(value('valmod.' + name), want)
        # A long str is cut; the line starts with the address, kind and
        # size.
        self.assertEqual(value('valmod.long_text'), "'" + 'x' * 57 + "...'")
        head = annex_test.target_eval(
            "'%#x str %d bytes' % (id(valmod.text),"
            " sys.getsizeof(valmod.text))")
        self.assertTrue(str(hp.iso('valmod.text').theone).startswith(head))
        self.assertEqual(
            err(lambda: hp.iso('valmod.text, valmod.num').theone),
            'ValueError: theone requires a singleton set')

    def test_by_id_is_a_table_whose_rows_are_sets(self):
        want = annex_test.target_eval('sorted(id(o) for o in valmod.ints)')
        x = hp.iso('valmod.ints').referents
        t = x.byid
        self.assertEqual(len(t), 25)
        self.assertEqual(len(t), len(want))
        self.assertTrue(t[0] == hp.iso(want[0]))
        self.assertTrue(t[-1] == hp.iso(want[-1]))
        self.assertTrue(t[1:3] == hp.iso(want[1], want[2]))
        self.assertEqual(t[0].count, 1)
        self.assertTrue(all(s == hp.iso(i) for s, i in zip(t, want)))
        self.assertTrue(t.members == x)
        lines = str(t).splitlines()
        self.assertEqual(len(lines), 21)
        self.assertEqual(lines[-1],
                         "<5 more objects. Type e.g. '_.more' to view.>")
        self.assertEqual([int(l.split()[0], 16) for l in lines[:20]],
                         want[:20])
        self.assertEqual(
            sorted(int(l.split()[-1]) for l in str(t.all).splitlines()),
            list(range(1000, 1025)))
        more = str(t.more).splitlines()
        self.assertEqual(len(more), 5)
        self.assertEqual(more, str(t.all).splitlines()[20:])
        self.assertEqual(len(str(t.all).splitlines()), 25)
        self.assertEqual(err(lambda: t[25]),
                         'IndexError: byid row 25 out of range: 25 members')
        self.assertEqual(
            err(lambda: t['a']),
            'TypeError: byid rows are selected by int or slice, not str')

    def test_brief_renders_values_as_heapy(self):
        items = annex_test.target_eval("'%#x' % id(valmod.items)")
        self.assertEqual(hp.iso('valmod.text').brief, "<1 str: 'hello'>")
        self.assertEqual(hp.iso('valmod.text, valmod.num').brief,
                         "<2 (int | str): <1 int: 12345> | <1 str: 'hello'>>")
        self.assertEqual(hp.iso('valmod.items').brief,
                         '<1 list: %s*3>' % items)
        self.assertEqual(hp.iso('valmod.module').brief, '<1 module: sys>')
        self.assertEqual(hp.Nothing.brief, '<Nothing>')

    def test_maprox_reads_attributes_and_items_of_each_member(self):
        names = annex_test.target_eval(
            "[id(r['name']) for r in valmod.records[:2]]")
        xs = annex_test.target_eval('[id(p.x) for p in valmod.points[:3]]')
        r = hp.iso('valmod.records').referents
        p = hp.iso('valmod.points').referents
        self.assertTrue(r.maprox['name'] == hp.iso(*names))
        self.assertTrue(p.maprox.x == hp.iso(*xs))
        self.assertTrue(p.maprox('.x') == p.maprox.x)
        self.assertTrue(p.maprox('x') == p.maprox.x)
        self.assertTrue(p.maprox.__class__ == hp.iso('valmod.Point'))
        self.assertEqual(p.maprox.__class__.maprox.__name__.brief,
                         "<1 str: 'Point'>")
        self.assertEqual(p.maprox('.__class__.__name__').brief,
                         "<1 str: 'Point'>")
        self.assertEqual(hp.iso('valmod.items').maprox[-1].brief,
                         '<1 int: 3>')
        self.assertTrue(
            hp.iso('valmod.bound').maprox.__self__ == hp.iso('valmod.cache'))
        self.assertEqual(hp.iso('valmod.code').maprox.co_name.brief,
                         "<1 str: 'top'>")
        c = hp.iso('valmod.counted')
        self.assertEqual(c.maprox.p.count, 0)
        self.assertEqual(c.maprox.nope.count, 0)
        self.assertEqual(
            err(lambda: p.maprox[1.5]),
            'TypeError: maprox[key]: a str or int key (dict keys, list and'
            ' tuple indexes), not float')
        self.assertEqual(
            err(lambda: p.maprox('x + 1')),
            "ValueError: maprox(expr): 'x + 1' is not .attribute and [str or"
            " int constant] steps (e.g. '.__class__.__name__',"
            " \"['key'].attr\"): no target code runs")
        self.assertEqual(
            err(lambda: p.maprox(3)),
            'TypeError: maprox(expr): expr is a str of .attribute and'
            " [constant] steps, e.g. '.__class__.__name__', not int")
        # The property was never run.
        self.assertEqual(annex_test.target_eval('valmod.calls'), 0)

    def test_asking_creates_nothing_in_the_target(self):
        # Every values question over members of each kind read: the
        # target's gc sees no new object, and its heap (strs and ints too)
        # is the same.
        annex_test.target_exec('import gc\n_v_before = len(gc.get_objects())')
        h0 = hp.heap()
        x = hp.iso('valmod.records, valmod.points, valmod.bound, valmod.code,'
                   ' valmod.text, valmod.module, valmod.big, valmod.ratio,'
                   ' valmod.cplx, valmod.inner')
        # pylint: disable=expression-not-assigned
        for _ in range(3):
            x.brief
            str(x.byid)
            x.byid[0].theone
            x.maprox.__class__.maprox.__name__
            x.referents.maprox['name']
            x.maprox('.co_name')
        # pylint: enable=expression-not-assigned
        h1 = hp.heap()
        self.assertEqual((h1 - h0).count, 0)
        self.assertEqual((h0 - h1).count, 0)
        annex_test.target_exec('_v_after = len(gc.get_objects())')
        self.assertEqual(annex_test.target_eval('_v_after - _v_before'), 0)

    def test_prod_is_the_allocation_traceback(self):
        self.assertEqual(
            err(lambda: hp.iso('valmod.cache').prod),
            "RuntimeError: prod needs the target's tracemalloc: it is not"
            ' tracing now. Start it in the target (tracemalloc.start(), or'
            ' PYTHONTRACEMALLOC=1) before the objects of interest are'
            ' allocated.')
        annex_test.target_exec("""import tracemalloc
tracemalloc.start(5)
def make_one():
    return valmod.Cache()  # not from a free list
def outer():
    return make_one()
made = outer()
""")
        self.addCleanup(annex_test.target_exec, 'tracemalloc.stop(); del made')
        filename = annex_test.target_eval('make_one.__code__.co_filename')
        self.assertEqual(
            str(hp.iso('made').prod), 'Traceback (most recent call first):\n'
            '  File "%s", line 4\n'
            '  File "%s", line 6\n'
            '  File "%s", line 7' % (filename, filename, filename))
        self.assertEqual(
            err(lambda: hp.iso('made, valmod.text').prod),
            'ValueError: prod requires a singleton set (x.byid[i].prod,'
            ' x.byprod for a set)')
