"""hp's classifiers as Heapy's equivalence relations beyond the plain ones:
er.refdby on every classifier, er.sokind(...), kind.alt(cmp) orders
(subtype, inclusion), the Type.dictof partition, and x.kind / x.er as Heapy
prints them. Expected values come from the target module `kmods` below,
whose referrers are known by construction. (Was tests/glue/hp_kinds_test.)
"""

import unittest

from annex_test import target_eval, target_exec

# Module `kmods`; in-heap referrers of each object:
#   a:     the module's dict and the list `trio`
#   b:     the module's dict, `trio` and the Holder `h1`
#   c:     the module's dict and `trio`
#   solo:  the module's dict only
#   trio:  the module's dict and the dict `shared` (no owner)
#   owned: an A whose __dict__ (`owned_d`, held too) exists.
# A < B < C by subclassing.
KMODS = '''
class A:
    pass

class B(A):
    pass

class C(B):
    pass

class Holder:
    __slots__ = ('item',)

a = A()
b = B()
c = C()
solo = C()
trio = [a, b, c]
shared = {'x': trio}
h1 = Holder()
h1.item = b
owned = A()
owned.x = 1
owned_d = owned.__dict__
'''

NAMES = ('a', 'b', 'c', 'solo', 'trio', 'shared', 'h1', 'owned', 'owned_d')


def setUpModule():
    # Once per binary: the target's `kmods` lasts, as a module made with
    # the source run in its dict.
    target_exec('def _kmods_define(src):\n'
                '    import sys, types\n'
                '    if "kmods" in sys.modules:\n'
                '        return\n'
                '    m = types.ModuleType("kmods")\n'
                '    sys.modules["kmods"] = m\n'
                '    exec(src, m.__dict__)\n'
                '_kmods_define(%r)\n'
                'del _kmods_define\n' % KMODS)


_ids = {}  # name -> id of kmods' objects, read once per test


def I(*names):
    """The IdSet of those objects of kmods."""
    if not _ids:
        _ids.update(target_eval(
            '{n: id(getattr(__import__("kmods"), n)) for n in %r}'
            % (NAMES,)))
    return hp.iso(*[_ids[n] for n in names])


def rows(x):
    return sorted((p.kind.brief, p.count) for p in x.parts)


def roundtrip(s, er):
    # Heapy's test of an er: each row's kind selects exactly that row.
    p = s.by(er)
    return all((s & p[i].kind) == p[i] for i in range(len(p.parts)))


def err(f):
    """What f() raises as 'TypeName: message' ('no error' when nothing)."""
    try:
        f()
    except Exception as e:
        return type(e).__name__ + ': ' + str(e)
    return 'no error'


def err_type(f):
    return err(f).partition(':')[0]


class KindsTest(unittest.TestCase):

    def test_refdby_classifies_by_the_referrers_kinds_under_any_classifier(
            self):
        dict_size = target_eval(
            '__import__("sys").getsizeof(__import__("kmods").__dict__)')
        s = I('a', 'b', 'c', 'solo')
        x = s.by(hp.Type.refdby)
        self.assertEqual(rows(x),
                         [('<referred by: dict, kmods.Holder, list>', 1),
                          ('<referred by: dict, list>', 2),
                          ('<referred by: dict>', 1)])
        self.assertEqual(repr(x).splitlines()[1][45:], 'Referrers by Type')
        self.assertEqual(str(x.er), 'hp.Type.refdby')
        self.assertTrue(rows(s.byrcs) == rows(s.by(hp.Clodo.refdby)))
        self.assertTrue(hp.Clodo.refdby == hp.Rcs)
        self.assertEqual(str(hp.Rcs), 'hp.Clodo.refdby')
        self.assertEqual(str(I('solo').by(hp.Size.refdby).kind.brief),
                         '<referred by: %9d>' % dict_size)
        t = s.by(hp.Type & hp.Type.refdby)
        self.assertEqual(repr(t).splitlines()[1][45:],
                         'Type & {Referrers by Type}')
        self.assertEqual(sorted(r.name for r in t.partition.rows),
                         ['kmods.A & {dict, list}',
                          'kmods.B & {dict, kmods.Holder, list}',
                          'kmods.C & {dict, list}', 'kmods.C & {dict}'])
        self.assertEqual(
            repr(s.by('Type.refdby.refdby')).splitlines()[1][45:],
            'Referrers by Referrers by Type')
        self.assertEqual(str(s.by('(Type&Size).refdby').er),
                         '(hp.Type & hp.Size).refdby')

    def test_every_classifiers_rows_and_their_refdbys_select_themselves(self):
        s = I('a', 'b', 'c', 'solo', 'trio', 'shared', 'owned', 'owned_d')
        ers = [hp.Type, hp.Clodo, hp.Size, hp.Module, hp.Unity, hp.Id,
               hp.Via, hp.Rcs, hp.Type.dictof, hp.Type & hp.Size]
        self.assertEqual([roundtrip(s, er) for er in ers], [True] * 10)
        self.assertEqual([roundtrip(s, er.refdby) for er in ers], [True] * 10)
        # Kinds whose repr is Heapy's spelling make the same kind.
        ks = [p.kind for er in (hp.Type, hp.Clodo, hp.Size, hp.Type.dictof,
                                hp.Rcs, hp.Type.refdby, hp.Size.refdby,
                                hp.Type.dictof.refdby)
              for p in s.by(er).parts]
        self.assertGreater(len(ks), 20)
        self.assertTrue(all(eval(repr(k)) == k for k in ks))

    def test_sokind_makes_refdby_kinds_from_kinds_of_the_base(self):
        s = I('a', 'b', 'c', 'solo', 'trio')
        sk = hp.Type.sokind(list)(dict)
        self.assertEqual(
            (str(sk), str(sk.refdby), str(sk.refdby.brief)),
            ("hp.Type.sokind('dict')('list')", '<referred by: dict, list>',
             '<referred by: dict, list>'))
        self.assertTrue((s & sk.refdby) == I('a', 'c'))
        self.assertTrue((s & hp.Type.refdby(sk)) == I('a', 'c'))
        self.assertTrue((s & hp.Type.refdby(list, 'dict')) == I('a', 'c'))
        cs = hp.Clodo.sokind(list)(dictof='module')
        self.assertEqual(repr(cs.refdby),
                         "hp.Clodo.sokind(dictof='module')('list').refdby")
        self.assertTrue((s & cs.refdby) == I('a', 'c'))
        self.assertTrue(hp.Rcs(cs) == cs.refdby)
        self.assertTrue(hp.Clodo.sokind(dictof='module')(list) == cs)
        self.assertTrue(
            (s & hp.Clodo.sokind(dictof=())(dictof='module').refdby)
            == I('trio'))
        self.assertTrue((s & hp.Size.sokind(3).refdby) == hp.Nothing)
        # Kinds in label order, so one set has one spelling.
        self.assertEqual(repr(hp.Type.dictof.sokind(None)('kmods.A').refdby),
                         "hp.Type.dictof.sokind('kmods.A')(None).refdby")

    def test_alt_orders_types_by_subtype_and_referrers_by_inclusion(self):
        names = ('a', 'b', 'c', 'solo')
        s = I(*names)

        def members(k):
            return [n for n in names if (I(n) & k) == I(n)]

        B = hp.Type('kmods.B')
        for cmp, brief, expected in (
                ('<=', '<subtype of kmods.B>', ['b', 'c', 'solo']),
                ('<', '<strict subtype of kmods.B>', ['c', 'solo']),
                ('>=', '<supertype of kmods.B>', ['a', 'b']),
                ('>', '<strict supertype of kmods.B>', ['a'])):
            k = B.alt(cmp)
            self.assertEqual((str(k.brief), sorted(members(k))),
                             (brief, expected), cmp)
        self.assertEqual(repr(B.alt('<')), "hp.Type('kmods.B').alt('<')")
        self.assertTrue(hp.Clodo('kmods.B') == B)
        self.assertTrue((s & hp.Clodo('kmods.B').alt('<='))
                        == (s & B.alt('<=')))
        k = hp.Rcs(hp.Clodo.sokind(list)(dictof='module'))
        for cmp, brief, expected in (
                ('==', '<referred by: dict of module, list>', ['a', 'c']),
                ('<=', '<referred by at most: dict of module, list>',
                 ['a', 'c', 'solo']),
                ('<', '<referred by less than: dict of module, list>',
                 ['solo']),
                ('>=', '<referred by at least: dict of module, list>',
                 ['a', 'b', 'c']),
                ('>', '<referred by more than: dict of module, list>',
                 ['b'])):
            kk = k.alt(cmp)
            self.assertEqual((str(kk.brief), members(kk)), (brief, expected),
                             cmp)
        t = hp.Type.sokind(list)(dict).refdby.alt('<')
        self.assertEqual(repr(t),
                         "hp.Type.sokind('dict')('list').refdby.alt('<')")
        self.assertEqual(members(t), ['solo'])

    def test_type_dictof_partitions_dicts_by_their_owners_type(self):
        s = I('owned', 'owned_d', 'shared', 'trio')
        x = s.by(hp.Type.dictof)
        self.assertEqual(rows(x), [('dict (no owner)', 1),
                                   ('dict of kmods.A', 1), ('~dict', 2)])
        self.assertEqual(repr(x).splitlines()[1][45:], 'Dict of Type')
        self.assertEqual(str(x.er), 'hp.Type.dictof')
        self.assertEqual(sorted(repr(p.kind) for p in x.parts),
                         ['hp.Clodo(dictof=())', "hp.Type('kmods.A').dictof",
                          "~hp.Type('dict')"])
        self.assertTrue(rows(s.by('Type.dictof')) == rows(x))
        self.assertTrue(rows(s.by(hp.Clodo.dictof)) == rows(x))
        self.assertEqual(str(I('trio').by(hp.Type.dictof.refdby).kind.brief),
                         '<referred by: dict (no owner), dict of module>')

    def test_kinds_and_ers_print_as_heapys(self):
        for n, text, spelled in (
                ('a', 'kmods.A', "hp.Type('kmods.A')"),
                ('owned_d', 'dict of kmods.A', "hp.Type('kmods.A').dictof"),
                ('shared', 'dict (no owner)', 'hp.Clodo(dictof=())')):
            k = I(n).kind
            self.assertEqual((str(k), repr(k)), (text, spelled))
            self.assertTrue(eval(repr(k)) == k)
        k = I('solo').byrcs.kind
        self.assertEqual((str(k), repr(k)),
                         ('<referred by: dict of module>',
                          "hp.Clodo.sokind(dictof='module').refdby"))
        self.assertTrue(eval(repr(k)) == k)
        k = I('a').bysize.kind
        self.assertTrue(str(k).startswith('<size = '))
        self.assertEqual(repr(k)[:8], 'hp.Size(')
        self.assertEqual(
            (str(I('a').er), str(I('a').bytype.er),
             str(I('a').by('Size&Type').er),
             str(I('a').by(hp.Size.refdby).er)),
            ('hp.Clodo', 'hp.Type', '(hp.Size & hp.Type)', 'hp.Size.refdby'))
        self.assertTrue(I('a').by(hp.Size.refdby).er == hp.Size.refdby)
        self.assertTrue(hp.Type != hp.Type.refdby)
        self.assertTrue(hash(hp.Type) == hash(hp.Type))

    def test_bad_input_gets_clear_errors(self):
        s = I('a')
        calls = (lambda: hp.Type.sokind('kmods.Nope'),
                 lambda: hp.Type.refdby(hp.Size(3)),
                 lambda: hp.Type.refdby(hp.Clodo.sokind(list)),
                 lambda: hp.Size.refdby('x'),
                 lambda: (hp.Type & hp.Size).sokind(int),
                 lambda: hp.Size.dictof,
                 lambda: s.by('Type.refdbyx'),
                 lambda: s.by('(Type&Size'),
                 lambda: hp.Module('kmods').alt('<'),
                 lambda: hp.Type(int).alt('<').alt('<'),
                 lambda: hp.Type(int).alt('=<'),
                 lambda: hp.Type(int).alt(3))
        self.assertEqual([err_type(f) for f in calls],
                         ['ValueError', 'ValueError', 'ValueError',
                          'TypeError', 'TypeError', 'AttributeError',
                          'ValueError', 'ValueError', 'ValueError',
                          'ValueError', 'ValueError', 'TypeError'])
        self.assertEqual(
            err(lambda: hp.Type.refdby(hp.Size(3))),
            "ValueError: hp.Size(3) is not a kind of hp.Type (compared with "
            "'=='): sokind and refdby take kinds of their base classifier")
        self.assertEqual(
            err(lambda: hp.Module('kmods').alt('<')).split('. ')[0],
            "ValueError: alt('<'): hp.Module(name='kmods') has no order")


if __name__ == '__main__':
    unittest.main()
