"""The rest of Heapy's surface on hp (issue 19).

x.disjoint, x.indisize, x.get_examples, x.byidset, x.owners, ~x and
x | kind, hp.Anything, hp.iso, hp.doc / x.doc, the Stat row methods, and
unknown hp names. Expected values come from how the fixture is built (ids,
sys.getsizeof and types read in the target, or a stat record written
here), never from Annex's own output.

Everything here runs in the annex, on its thread with the GIL held (the hp
driver, tests/testing:annex_unittest_main); the target is reached only
through annex_test.target_exec/target_eval.
"""

import unittest

import annex_test
from annex_test import err_type

# The fixture, in the target: three instances with a __dict__ object, three
# long lists (the largest row), two small dicts without owner.
FIXTURE = '''
import sys
class HsOwner:
    pass
hs_owners = [HsOwner() for _ in range(3)]
for i, o in enumerate(hs_owners):
    # A dict of its own (on 3.13 a dict made over still-valid inline
    # values is not reached by the walk; docs/hp.md, Performance).
    o.__dict__ = {'v': i}
hs_lists = [list(range(100 + i)) for i in range(3)]
hs_dicts = [{'a': 1}, {'b': 2}]
def hs_ids(objs):
    return [id(o) for o in objs]
# For hp.iso('expr'): slots, inline attributes sharing a value, a dict
# with str and int keys, and two classes whose attributes run code (they
# count the calls: reading must make none).
hs_calls = 0
class HsNode:
    __slots__ = ('left', 'right')
hs_node = HsNode()
hs_node.left = hs_lists[0]
class HsPlain:
    def __init__(self):
        self.a = None
        self.b = None
        self.c = hs_dicts
hs_plain = HsPlain()
hs_table = {'k': hs_lists, 3: hs_dicts}
class HsProp:
    @property
    def p(self):
        global hs_calls
        hs_calls += 1
        return []
class HsGetattribute:
    def __getattribute__(self, name):
        global hs_calls
        hs_calls += 1
        return []
hs_prop, hs_ga = HsProp(), HsGetattribute()
'''


def setUpModule():
    # Where: the annex (GIL held). Once per process: the target is shared
    # by every test of the binary.
    annex_test.target_exec("if 'hs_owners' not in globals():\n"
                           '    exec(%r, globals())\n' % FIXTURE)


def fixture_sets():
    """The IdSets of the fixture's lists, dicts, owners and owners' dicts."""

    def iso(expr):
        return hp.iso(*annex_test.target_eval(expr))  # hp: console global

    return (iso('hs_ids(hs_lists)'), iso('hs_ids(hs_dicts)'),
            iso('hs_ids(hs_owners)'), iso('hs_ids([vars(o) for o in '
                                          'hs_owners])'))


class HeapySurfaceTest(unittest.TestCase):

    def setUp(self):
        self.L, self.D, self.O, self.OD = fixture_sets()

    def test_iso_selects_the_objects_with_those_ids(self):
        L, D, O, OD = self.L, self.D, self.O, self.OD
        self.assertEqual((L.count, D.count, O.count, OD.count), (3, 2, 3, 3))
        first = annex_test.target_eval('id(hs_lists[0])')
        self.assertEqual(hp.iso(first), hp.idset([first]))
        self.assertEqual(hp.iso(L), L)
        self.assertEqual(hp.iso(L, D), L | D)
        self.assertEqual(hp.iso().count, 0)
        raised = []
        for bad in ([1], 1.5, -1):
            try:
                hp.iso(bad)
            except (TypeError, ValueError) as e:
                raised.append(type(e).__name__)
        self.assertEqual(raised, ['TypeError', 'TypeError', 'ValueError'])

    def test_iso_reads_an_expression_without_running_target_code(self):
        want = annex_test.target_eval(
            '[id(o) for o in (hs_lists, hs_lists[0], hs_lists[2], '
            'hs_dicts, None, hs_owners[1].v, sys.modules, '
            "HsPlain.__dict__['__init__'], "
            "__import__('gc').get_referents(HsPlain.__dict__)[0], vars(sys), "
            'vars(hs_owners[0]), HsPlain)]')
        for expr, ids in (
            ('hs_lists', [want[0]]),
            ('hs_lists[0], hs_lists[-1]', [want[1], want[2]]),
            ('[hs_table["k"], hs_table[3]]', [want[0], want[3]]),
            ('hs_plain.c', [want[3]]),
            ('hs_plain.b', [want[4]]),
            ('hs_node.left', [want[1]]),
            ('hs_owners[1].v', [want[5]]),
            ('sys.modules', [want[6]]),
            ('HsPlain.__init__', [want[7]]),
            ('HsPlain.__dict__', [want[8]]),
            ('sys.__dict__', [want[9]]),
            ('hs_owners[0].__dict__', [want[10]]),
            ('hs_plain.__class__', [want[11]]),
        ):
            with self.subTest(expr=expr):
                self.assertEqual(hp.iso(expr), hp.idset(ids))
        for bad, reason in (
            ('hs_prop.p', 'it is a property or another data descriptor '
             '(reading it would run code)'),
            ('hs_ga.x', 'its type has its own attribute lookup (running it '
             'would run code)'),
            ('hs_node.right', 'the slot is not set'),
            ('len(hs_lists)', 'only names, .attributes and [constant] '
             'subscripts are read in the target (no target code runs); '
             'got Call'),
            ('hs_lists[0:1]', 'a subscript must be a str or int constant, '
             "e.g. cache['key'] or items[-1]"),
            ('hs_nosuch', 'no such global in __main__ nor module'),
            ('hs_table["nokey"]', 'the dict has no such key (only str and int '
             'keys are compared)'),
            ('hs_lists[9]', 'index out of range'),
            ('1 +', "'1 +' is not an expression"),
            ('hs_plain.__dict__', 'the object has no dict object (its '
             'attributes may be held inline; reading __dict__ would make '
             'one)'),
        ):
            with self.subTest(expr=bad):
                with self.assertRaises(ValueError) as cm:
                    hp.iso(bad)
                self.assertEqual(str(cm.exception).split(': ', 2)[-1], reason)
        self.assertEqual(annex_test.target_eval('hs_calls'), 0)

    def test_disjoint_and_indisize(self):
        L, D = self.L, self.D
        lists, lists_and_dicts = annex_test.target_eval(
            '(sum(map(sys.getsizeof, hs_lists)), '
            'sum(map(sys.getsizeof, hs_lists + hs_dicts)))')
        self.assertIs(L.disjoint(D), True)
        self.assertIs((L | D).disjoint(D), False)
        self.assertIs(L.disjoint(hp.Nothing), True)
        self.assertEqual(L.indisize, lists)
        self.assertEqual((L | D).indisize, lists_and_dicts)
        self.assertEqual(L.indisize, L.size)
        with self.assertRaises(TypeError):
            L.disjoint(1)

    def test_empty_sets_print_as_nothing(self):
        # As Heapy's: repr `hp.Nothing`, str `<Nothing>`, for hp.Nothing
        # and for any empty result.
        L, D = self.L, self.D
        self.assertEqual((repr(hp.Nothing), str(hp.Nothing)),
                         ('hp.Nothing', '<Nothing>'))
        e = L - L
        self.assertEqual((repr(e), str(e), str(e.brief), len(e)),
                         ('hp.Nothing', '<Nothing>', '<Nothing>', 0))
        self.assertEqual((repr(L & D), str(L & D)),
                         ('hp.Nothing', '<Nothing>'))
        self.assertTrue(str(L).startswith('Partition of a set of '), str(L))

    def test_get_examples_takes_one_per_row_in_turn(self):
        # Rows of L | D: the lists (about 900 bytes each) first, then the
        # dicts.
        L, D = self.L, self.D
        x = L | D
        ex = x.get_examples(3)
        self.assertEqual([e.count for e in ex], [1, 1, 1])
        self.assertEqual([e.kind for e in ex],
                         ['list', 'dict (no owner)', 'list'])
        self.assertTrue(ex[0] <= L)
        self.assertTrue(ex[1] <= D)
        self.assertTrue(ex[2] <= L)
        self.assertNotEqual(ex[0], ex[2])
        allx = x.get_examples(10)
        u = hp.Nothing
        for e in allx:
            u = u | e
        self.assertEqual(len(allx), 5)
        self.assertEqual(u, x)
        self.assertEqual(len(x.get_examples()), 2)
        with self.assertRaises(ValueError):
            x.get_examples(-1)

    def test_by_id_set_has_one_row_per_object(self):
        L, D = self.L, self.D
        b = (L | D).byidset
        self.assertEqual(str(b.er), 'hp.Id')
        self.assertEqual(len(b.parts), 5)
        self.assertEqual([p.count for p in b.parts], [1, 1, 1, 1, 1])
        self.assertEqual(b, L | D)

    def test_owners_are_the_objects_whose_dict_is_a_member(self):
        L, O, OD = self.L, self.O, self.OD
        main_dict = annex_test.target_eval("id(vars(sys.modules['__main__']))")
        main_module = annex_test.target_eval("id(sys.modules['__main__'])")
        self.assertEqual(OD.owners, O)
        self.assertEqual(OD.owners.count, 3)
        self.assertEqual(OD.owners.kind, '__main__.HsOwner')
        self.assertEqual((OD | L).owners, O)
        self.assertEqual(L.owners.count, 0)
        self.assertEqual(hp.Nothing.owners.count, 0)
        m = hp.iso(main_dict).owners
        self.assertEqual(m, hp.iso(main_module))
        self.assertEqual(m.kind, 'module')

    def test_complement_and_union_with_a_kind_are_kinds(self):
        L, D, O, OD = self.L, self.D, self.O, self.OD
        x = L | D | O
        self.assertEqual([
            type(~L).__name__,
            type(L | hp.Type(dict)).__name__,
            type(hp.Type(dict) | L).__name__
        ], ['Kind', 'Kind', 'Kind'])
        self.assertEqual(x & ~L, D | O)
        self.assertEqual(x - L, x & ~L)
        self.assertEqual(x & (L | hp.Type(dict)), L | D)
        self.assertEqual(x & (hp.Type(dict) | L), L | D)
        self.assertEqual(x & ~(L | D), O)
        self.assertEqual(x & ~hp.Nothing, x)
        self.assertEqual(x & hp.Anything, x)
        self.assertEqual((x & ~hp.Anything).count, 0)
        self.assertIs(~L == ~L, True)
        self.assertIs(~L == ~O, False)
        self.assertEqual(len({~L, ~L, ~O}), 2)
        k = hp.Type(dict) - D
        self.assertEqual(type(k).__name__, 'Kind')
        self.assertEqual((x & k).count, 0)
        self.assertEqual((D | OD) & k, OD)
        with self.assertRaises(TypeError):
            x ^ hp.Type(dict)

    def test_stat_rows_as_heapy_gives_them(self):
        # A stat record built here: rows a 5/500, b 1/300, c 10/290,
        # d 2/280.
        s = hp.load('.loader: _load_stat\n'
                    '.format: SetFormat\n'
                    '.timemade: 1718000000.0\n'
                    '.count: 18\n'
                    '.size: 1370\n'
                    '.kindname: \n'
                    '.kindheader: Kind (class / dict of class)\n'
                    '.er: Clodo\n'
                    '.numrows: 4\n'
                    '.r: 5 500 a\n'
                    '.r: 1 300 b\n'
                    '.r: 10 290 c\n'
                    '.r: 2 280 d\n'
                    '.end: .loader: _load_stat\n')

        def show(rows):
            return [
                None if r is None else
                (r.name, r.count, r.size, r.index, r.cumulsize) for r in rows
            ]

        a = ('a', 5, 500, 0, 500)
        b = ('b', 1, 300, 1, 800)
        c = ('c', 10, 290, 2, 1090)
        d = ('d', 2, 280, 3, 1370)
        self.assertEqual(show(s.get_rows()), [a, b, c, d])
        self.assertEqual(show(s.get_rows(3)), [d])
        self.assertEqual(show([s.get_row(1), s.get_row(-1)]), [b, d])
        self.assertEqual(show(s.get_rows_of_kinds(['c', 'zz', 'a'])),
                         [c, None, a])
        # The other rows (c, d: 12 objects, 570 bytes) are larger than a:
        # '<Other>' comes first, as Heapy places it.
        self.assertEqual(show(s.get_rows_n_and_other(2)),
                         [('<Other>', 12, 570, None, None), a, b])
        self.assertEqual(show(s.get_rows_n_and_other(1, 'Count')),
                         [c, ('<Other>', 8, 1080, None, None)])
        self.assertEqual(show(s.get_rows_n_and_other(3)),
                         [a, b, c, ('<Other>', 2, 280, None, None)])
        self.assertEqual(len(s.get_rows_n_and_other(4)), 4)
        self.assertEqual(s.firstheader, '')
        self.assertEqual([
            err_type(lambda: s.get_row(4)),
            err_type(lambda: s.get_rows_n_and_other(1, 'x')),
            err_type(lambda: s.get_rows_of_kinds(['a', 'a']))
        ], ['IndexError', 'ValueError', 'ValueError'])

    def test_doc_texts(self):
        L = self.L
        self.assertEqual(type(hp.doc).__name__, 'Text')
        self.assertIn('hp.iso(', hp.doc)
        self.assertIn('hp.stdlib', hp.doc)
        self.assertEqual(hp.doc, type(hp).__doc__)
        for n in ('owners', 'indisize', 'disjoint', 'get_examples'):
            self.assertIn('x.' + n + ':', L.doc)

    def test_unknown_names_raise_with_suggestions(self):
        import sys
        had_test = 'test' in sys.modules
        for n, message in (
            ('heep', "hp has no attribute 'heep'; did you mean 'hp.heap', "
             "'hp.heapu'?"),
            ('test', "hp has no attribute 'test'"),
            ('json', "hp has no attribute 'json'"),
        ):
            with self.subTest(name=n):
                with self.assertRaises(AttributeError) as cm:
                    getattr(hp, n)
                self.assertEqual(str(cm.exception).split(' (')[0], message)
        self.assertIs(had_test, False)
        self.assertNotIn('test', sys.modules)
        self.assertIs(hp.stdlib.json, __import__('json'))
        with self.assertRaises(AttributeError) as cm:
            hp.stdlib.no_such_module_here
        self.assertEqual(
            str(cm.exception),
            "the annex has no standard-library module 'no_such_module_here'")
