"""hp's reference pattern (x.rp, x.get_rp(...)).

Heapy's rows, names and selection over a target heap whose pattern is
known, the options (er=, imdom=, nocyc=, bf=, src=, stopkind=, depth=),
and that asking creates nothing in the target.

Everything here runs in the annex, on its thread with the GIL held (the hp
driver, tests/testing:annex_unittest_main); the target is reached only
through annex_test.target_exec/target_eval.
"""

import re
import unittest

import annex_test
from annex_test import err
from hp_helpers import row

# Module `rpmod` holds each leak in a known way:
#   leak:  the module's dict, three Holders (kept in the list `holders`)
#          and a tuple (held by the module's dict and the list `tuples`);
#   deep:  only by a list in a list in a list held by the module's dict;
#   fork:  by two lists, `left` and `right`, both only in the list `both`;
#   ring:  two Nodes holding each other, one held by the module's dict;
#   boxed: by a Box instance whose attributes are held inline (no dict
#          object: asking for one would make it in the target);
#   wide:  by 15 lists.
RPMOD = '''
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
'''

# Where: the annex (GIL held); the code runs in the target's __main__.
# Makes `rpmod` in the target's sys.modules once per process (tests share
# the target), so its classes and functions belong to that module; nothing
# else in the target refers to it.
_DEFINE = '''
def _rp_define(source):
    import sys, types
    if 'rpmod' in sys.modules:
        return
    m = types.ModuleType('rpmod')
    sys.modules['rpmod'] = m
    exec(source, m.__dict__)
_rp_define(%r)
del _rp_define
'''


def setUpModule():
    annex_test.target_exec(_DEFINE % RPMOD)


# A pattern's rows as (name, mark, seen, count, kind); its lines up to each
# row's size (addresses and sizes vary).
def rp_rows(p):
    return [(r.name, r.mark, r.seen, r.count, r.kind) for r in p.rows]


def lines(p):
    return [re.sub(r' \(\d+ bytes\).*', '', l) for l in str(p).splitlines()]


class RpTest(unittest.TestCase):

    def test_prints_rows_as_heapy_with_labels_and_marks(self):
        # Depth first; kinds by total size (the module's dict, the three
        # Holders, the tuple); the module's dict is a stop kind and later
        # rows of it repeat row 1.
        self.assertEqual(lines(row(hp, 'rpmod.Leak').rp), [
            'Reference Pattern by <Kind (class / dict of class)>.',
            ' 0: _ --- [-] 1 rpmod.Leak',
            ' 1: a      [S] 1 dict of module',
            ' 2: b ---- [-] 3 rpmod.Holder',
            ' 3: ba      [-] 1 list',
            ' 4: baa ---- [^ 1] 1 dict of module',
            ' 5: c      [-] 1 tuple',
            ' 6: ca ---- [^ 1] 1 dict of module',
            ' 7: cb      [-] 1 list',
            ' 8: cba ---- [^ 1] 1 dict of module',
        ])
        # A row's line ends with its size and first addresses.
        p = row(hp, 'rpmod.Leak').rp
        r = p.get_row('c')
        self.assertTrue(
            repr(r).endswith('1 tuple (%d bytes): %#x' %
                             (r.size, r._preview[0])), repr(r))
        self.assertEqual(r.size, p.c.size)
        self.assertEqual((r.index, r.depth, r.parent), (5, 1, 0))

    def test_rows_select_exactly_their_objects(self):
        x = row(hp, 'rpmod.Leak')
        p = x.rp
        # Heapy's own example's identities.
        self.assertEqual(p._, p[0])
        self.assertEqual(p[0], x)
        self.assertEqual(p._.referrers, p.a | p.b | p.c)
        self.assertEqual(p.b, x.referrers & hp.Type('rpmod.Holder'))
        self.assertEqual(p.a, hp.iso('rpmod.__dict__'))
        self.assertEqual(p.c, hp.iso('rpmod.tup'))
        self.assertEqual(p.ba, hp.iso('rpmod.holders'))
        self.assertEqual(p.ba, p.b.referrers)
        self.assertEqual(p.cb, hp.iso('rpmod.tuples'))
        self.assertEqual(p.cb, p[7])
        self.assertEqual(len(p), 9)
        self.assertEqual(p.baa, p.a)
        self.assertEqual(p.get_row('baa').seen, 1)
        self.assertEqual(p.get_row(4).name, 'baa')
        self.assertEqual([s.count for s in p][:4], [1, 1, 3, 1])
        self.assertEqual(p[-1], p.cba)
        # Names of more than two equal letters are written with a count,
        # and either spelling selects the row.
        p = row(hp, 'rpmod.Deep').rp
        self.assertEqual(rp_rows(p), [
            ('_', '-', None, 1, 'rpmod.Deep'),
            ('a', '-', None, 1, 'list'),
            ('aa', '-', None, 1, 'list'),
            ('a3', '-', None, 1, 'list'),
            ('a4', 'S', None, 1, 'dict of module'),
        ])
        self.assertEqual(p.a3, p.aaa)
        self.assertEqual(p.aaa, hp.iso('rpmod.chain'))
        self.assertEqual(p.a, hp.iso('rpmod.chain[0][0]'))
        # An empty set (or one whose members all died) has no rows.
        p = hp.Nothing.rp
        self.assertEqual(
            str(p), 'Reference Pattern by <Kind (class / dict of class)>.\n'
            '(no member of the set is alive now)')
        self.assertEqual(len(p), 0)
        # Bad selections say what is wrong.
        p = row(hp, 'rpmod.Deep').rp
        self.assertEqual(
            err(lambda: p.zz),
            "AttributeError: the reference pattern has no row named 'zz'")
        self.assertEqual(
            err(lambda: p[5]),
            'IndexError: row 5 out of range: the pattern has 5 rows')
        self.assertEqual(
            err(lambda: p['a']),
            "TypeError: rp[i] takes a row number; a row by name is rp.a or "
            "rp.get_row('a')")
        self.assertEqual(
            err(lambda: p.get_row('a9')),
            'KeyError: "the reference pattern has no row named \'a9\'"')
        self.assertEqual(
            err(lambda: p.get_row(1.5)),
            'TypeError: reference pattern rows are selected by number (int) '
            'or name (str), not float')

    def test_er_chooses_the_kinds_of_the_rows(self):
        p = row(hp, 'rpmod.Leak').get_rp(er='Type', depth=1)
        self.assertEqual(lines(p), [
            'Reference Pattern by <Type>.',
            ' 0: _ --- [-] 1 rpmod.Leak',
            ' 1: a      [S] 1 dict',
            ' 2: b ---- [+] 3 rpmod.Holder',
            ' 3: c      [+] 1 tuple',
        ])
        q = row(hp, 'rpmod.Leak').get_rp(er=hp.Type, depth=1)
        self.assertEqual(rp_rows(p), rp_rows(q))
        self.assertEqual(p.a, q.a)
        # A classifier that needs live objects: how each referrer is held.
        p = row(hp, 'rpmod.Deep').get_rp(er='Via', depth=2)
        self.assertEqual(rp_rows(p), [
            ('_', '-', None, 1, "'[0]'"),
            ('a', '-', None, 1, "'[0]'"),
            ('aa', '+', None, 1, "'[0]'"),
        ])
        e = err(lambda: row(hp, 'rpmod.Deep').get_rp(er='Nope'))
        self.assertTrue(e.startswith('ValueError: '), e)
        self.assertIn('Nope', e)
        self.assertEqual(
            err(lambda: row(hp, 'rpmod.Deep').get_rp(er=3)),
            "TypeError: get_rp(er=): an equivalence relation name expected, "
            "e.g. 'Type', 'Clodo', 'Type&Size', or hp.Type, hp.Type & "
            "hp.Size")

    def test_imdom_follows_immediate_dominators(self):
        # Referrers: the two lists, then `both`; dominators: `both` at once.
        x = row(hp, 'rpmod.Fork')
        self.assertEqual(rp_rows(x.rp), [
            ('_', '-', None, 1, 'rpmod.Fork'),
            ('a', '-', None, 2, 'list'),
            ('aa', '-', None, 1, 'list'),
            ('a3', 'S', None, 1, 'dict of module'),
        ])
        p = x.get_rp(imdom=True)
        self.assertEqual(rp_rows(p), [
            ('_', '-', None, 1, 'rpmod.Fork'),
            ('a', '-', None, 1, 'list'),
            ('aa', 'S', None, 1, 'dict of module'),
        ])
        self.assertEqual(p.a, x.imdom)
        self.assertEqual(x.imdom, hp.iso('rpmod.both'))

    def test_nocyc_leaves_out_the_rows_above(self):
        # The two Nodes refer to each other: their referrers include the
        # set itself, a repeat of row 0; nocyc leaves it out.
        x = row(hp, 'rpmod.Node')
        self.assertEqual(rp_rows(x.rp), [
            ('_', '-', None, 2, 'rpmod.Node'),
            ('a', 'S', None, 1, 'dict of module'),
            ('b', '^', 0, 2, 'rpmod.Node'),
        ])
        self.assertEqual(rp_rows(x.get_rp(nocyc=True)), [
            ('_', '-', None, 2, 'rpmod.Node'),
            ('a', 'S', None, 1, 'dict of module'),
        ])

    def test_depth_breadth_first_and_stopkind(self):
        x = row(hp, 'rpmod.Deep')
        self.assertEqual(rp_rows(x.get_rp(depth=1)), [
            ('_', '-', None, 1, 'rpmod.Deep'),
            ('a', '+', None, 1, 'list'),
        ])
        self.assertEqual(rp_rows(x.get_rp(0)),
                         [('_', '+', None, 1, 'rpmod.Deep')])
        p = row(hp, 'rpmod.Leak').get_rp(bf=True)
        self.assertEqual([r.name for r in p.rows],
                         ['_', 'a', 'b', 'c', 'ba', 'ca', 'cb', 'baa', 'cba'])
        self.assertEqual(p.get_row('baa').seen, 1)
        self.assertEqual(p.ba, row(hp, 'rpmod.Leak').rp.ba)
        # stopkind: a kind, a name, names; () stops nowhere (the module's
        # dict is followed to the module and sys.modules).
        x = row(hp, 'rpmod.Deep')
        a_stopped = ('a', 'S', None, 1, 'list')
        self.assertEqual(rp_rows(x.get_rp(stopkind=hp.Type('list')))[1],
                         a_stopped)
        self.assertEqual(rp_rows(x.get_rp(stopkind='list'))[1], a_stopped)
        self.assertEqual(rp_rows(x.get_rp(stopkind=['tuple', 'list']))[1],
                         a_stopped)
        p = x.get_rp(depth=5, stopkind=())
        m = [r for r in p.rows if r.kind == 'module'][0]
        self.assertEqual(rp_rows(p)[4][:2], ('a4', '-'))
        self.assertEqual((m.depth, m.mark), (5, '+'))
        self.assertEqual(m.set, hp.iso('rpmod'))
        # A kind whose classifier reads live objects (Module) walks again
        # inside the pattern's question.
        p = row(hp, 'rpmod.Deep').get_rp(depth=6,
                                     stopkind=hp.Module(name='rpmod'))
        self.assertEqual([(r.name[:2], r.depth, r.mark)
                          for r in p.rows
                          if r.kind == 'module'], [('a4', 5, 'S')])

    def test_src_stops_at_the_sources(self):
        # Only referrers reachable from `holders` count: the Holders, then
        # the list itself, where the pattern ends ([R]).
        x = row(hp, 'rpmod.Leak')
        p = x.get_rp(src=hp.iso('rpmod.holders'))
        self.assertEqual(rp_rows(p), [
            ('_', '-', None, 1, 'rpmod.Leak'),
            ('a', '-', None, 3, 'rpmod.Holder'),
            ('aa', 'R', None, 1, 'list'),
        ])
        self.assertEqual(
            err(lambda: x.get_rp(src=hp.iso('rpmod.holders'), imdom=True)),
            'ValueError: get_rp(imdom=True) follows the dominators from the '
            'roots: not with src')

    def test_pages_ten_rows_and_cuts_at_max_rows(self):
        x = hp.iso('rpmod.chain[0][0][0]')
        p = x.get_rp(depth=30, stopkind=(), max_rows=3)
        self.assertEqual((len(p), p.truncated), (3, True))
        self.assertEqual(
            str(p).splitlines()[-1],
            '<pattern cut at 3 rows (max_rows=3; get_rp(max_rows=...) makes '
            'more)>')
        # A pattern of more than eleven rows: ten, then the next page.
        p = row(hp, 'rpmod.Wide').get_rp(er='Id', depth=1, max_children=26)
        n = len(p)
        first = str(p).splitlines()
        self.assertGreater(n, 11)
        self.assertEqual(len(first), 12)
        self.assertEqual(first[-1],
                         "<%d more rows. Type e.g. '_.more' to view.>" %
                         (n - 10))
        self.assertTrue(str(p.more).splitlines()[0].startswith('10: '))
        self.assertGreaterEqual(len(str(p.all).splitlines()), n + 1)
        p = row(hp, 'rpmod.Wide').get_rp(er='Id', depth=1)
        self.assertEqual(len(p), 11)
        self.assertEqual(
            str(p).splitlines()[2],
            '          <6 more kinds of referrers: max_children>')

    def test_past_the_pause_limit_the_pattern_stops(self):
        x = row(hp, 'rpmod.Leak')
        hp.pause_limit = 1e-6
        try:
            e = err(lambda: x.rp)
        finally:
            del hp.pause_limit
        self.assertEqual(e.split(':')[0], 'TimeoutError')
        self.assertIn('hp.pause_limit', e)
        self.assertEqual(len(x.rp), 9)

    def test_paths_follow_a_row_down_to_the_set(self):
        # deep: Deep in a list in a list in a list held by the module's
        # dict.
        deep = annex_test.target_eval(
            "'%#x' % id(__import__('sys').modules['rpmod'].chain[0][0][0])")
        p = row(hp, 'rpmod.Deep').rp
        self.assertEqual(rp_rows(p)[3][:2], ('a3', '-'))
        self.assertEqual(
            str(p.paths('aaa')),  # Heapy spells it a3
            "Paths from source 'a3' to target '_'.\n"
            ' 0: a3 [0] @ [0]\n'
            ' 1: aa [0]  @ [0]\n'
            ' 2: a  [0]   @ [0]\n'
            ' 3: _  [0]    = <1 rpmod.Deep: ' + deep + '>')
        self.assertEqual(p.paths(3).source, 'a3')
        self.assertEqual(len(p.paths('_')), 1)
        # fork: one Fork in two lists, both in the list `both`; the second
        # route ends at the line that followed the Fork first.
        first, second = annex_test.target_eval(
            "['[%d]' % i for i in sorted(range(2), key=lambda i: "
            "id(__import__('sys').modules['rpmod'].both[i]))]")
        fork = annex_test.target_eval(
            "'%#x' % id(__import__('sys').modules['rpmod'].both[0][0])")
        p = row(hp, 'rpmod.Fork').rp
        self.assertEqual(
            str(p.paths('aa')), "Paths from source 'aa' to target '_'.\n"
            ' 0: aa [0] @ ' + first + '\n'
            ' 1: a  [0]  @ [0]\n'
            ' 2: _  [0]   = <1 rpmod.Fork: ' + fork + '>\n'
            ' 3: aa [0] @ ' + second + '\n'
            ' 4: a  [1]  @ [0] -> #2')
        self.assertEqual(
            str(p.paths('aa', andsets={'a': hp.iso('rpmod.both[1]')})),
            "Paths from source 'aa' to target '_'.\n"
            ' 0: aa [0] @ [1]\n'
            ' 1: a  [0]  @ [0]\n'
            ' 2: _  [0]   = <1 rpmod.Fork: ' + fork + '>')
        self.assertEqual(
            p.paths('aa', andsets=[None, hp.iso('rpmod.both[1]')]).all,
            p.paths('aa', andsets={
                'a': hp.iso('rpmod.both[1]')
            }).all)
        self.assertEqual(
            err(lambda: p.paths('zz')),
            'KeyError: "the reference pattern has no row named \'zz\'"')
        self.assertEqual(
            err(lambda: p.paths('aa', variant=1)),
            "ValueError: rp.paths(variant=1): only Heapy's default variant 2 "
            'is drawn')
        self.assertEqual(
            err(lambda: p.paths('aa', andsets=5)),
            'TypeError: andsets argument must be dict, tuple, or list')
        self.assertEqual(
            err(lambda: p.paths('a', andsets={'b': hp.Nothing})),
            "ValueError: andsets names row 'b', which is not on the path from "
            "'a' to '_'")

    def test_ref_gc_keeps_the_referrers_the_gc_reports(self):
        self.assertIs(
            annex_test.target_eval(
                "__import__('gc').is_tracked("
                "__import__('sys').modules['rpmod'].gcless)"), False,
            'the premise: a dict of strs is not tracked')
        x = hp.iso("rpmod.gcless['k']")
        self.assertEqual(rp_rows(x.rp)[1][4], 'dict (no owner)')
        self.assertEqual(rp_rows(x.get_rp(ref='gc')),
                         [('_', 'R', None, 1, 'str')])
        self.assertEqual(rp_rows(x.get_rp(ref='gcx')),
                         rp_rows(x.get_rp(ref='gc')))
        y = row(hp, 'rpmod.Leak')
        self.assertEqual(rp_rows(y.get_rp(ref='gc')), rp_rows(y.rp))
        self.assertEqual(rp_rows(y.get_rp(ref='imdom')),
                         rp_rows(y.get_rp(imdom=True)))
        self.assertEqual(
            err(lambda: y.get_rp(ref='gc', imdom=True)),
            "ValueError: get_rp(ref='gc') follows the gc's referrers: not "
            'with imdom=True')
        self.assertEqual(
            err(lambda: y.get_rp(ref=len)),
            'TypeError: get_rp(ref=callable) is not offered: the pattern is '
            'made inside one heap question, where no Python code runs; ref '
            "is None (referrers), 'gc', 'gcx' or 'imdom'")
        self.assertEqual(
            err(lambda: y.get_rp(ref='all')),
            "ValueError: get_rp(ref='all'): ref is None (referrers), 'gc' or "
            "'gcx' (the referrers the target's gc reports) or 'imdom'")

    def test_asking_creates_nothing_in_the_target(self):
        # Every kind of question the pattern asks (referrers, dominators, a
        # classifier reading edges, Heapy's default stop kinds) over an
        # instance whose attributes are inline: the target's gc sees no new
        # object.
        annex_test.target_exec(
            'import gc\n_rp_before = len(gc.get_objects())\n')
        x = row(hp, 'rpmod.Boxed')
        self.assertEqual(rp_rows(x.rp)[1][4], 'rpmod.Box')
        row(hp, 'rpmod.Fork').rp.paths('aa')
        x.get_rp(ref='gc')
        x.get_rp(imdom=True)
        x.get_rp(er='Via')
        x.get_rp(nocyc=True)
        x.get_rp(bf=True, stopkind=())
        x.get_rp(er='Rcs')
        row(hp, 'rpmod.Leak').get_rp(src=hp.iso('rpmod.holders'))
        annex_test.target_exec('_rp_after = len(gc.get_objects())\n')
        self.assertEqual(annex_test.target_eval('_rp_after - _rp_before'), 0)

