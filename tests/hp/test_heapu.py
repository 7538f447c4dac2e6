"""hp.heapu() members answer referrers, referents and paths, and
hp.heapu(garbage=True/False) separates cyclic garbage from what C
references hold, without collecting; hp.heap() counts the instances'
attribute values blocks (values=False: sys.getsizeof alone). Expectations
come from how the fixtures are built. (Was tests/glue/hp_heapu_test.)"""

import unittest

from annex_test import target_eval, target_exec


class HeapuTest(unittest.TestCase):

    def setUp(self):
        target_exec('import gc; gc.disable()')
        self.addCleanup(target_exec, 'gc.enable(); gc.collect()')

    def test_cycle_held_by_a_c_reference_and_plain_garbage_cycle(self):
        # a <-> b, kept alive only by a C reference to a (a reference count
        # that no object holds, taken with Py_IncRef); g -> g, kept by
        # nothing (cyclic garbage).
        target_exec('class HuNode:\n'
                    '    pass\n'
                    'hu_a = HuNode(); hu_b = HuNode()\n'
                    'hu_a.peer = hu_b; hu_b.peer = hu_a\n'
                    'hu_g = HuNode(); hu_g.me = hu_g\n'
                    'hu_ids = (id(hu_a), id(hu_b), id(hu_g), id(HuNode))\n'
                    'import ctypes\n'
                    'ctypes.pythonapi.Py_IncRef(ctypes.py_object(hu_a))\n'
                    'del hu_a, hu_b, hu_g\n')
        self.addCleanup(target_exec,
                        'ctypes.pythonapi.Py_DecRef(ctypes.c_void_p(hu_ids[0]))\n'
                        'del hu_ids, HuNode\n')
        ia, ib, ig, icls = target_eval('hu_ids')
        u = hp.heapu()
        held = hp.heapu(garbage=False)
        garb = hp.heapu(garbage=True)
        A, B, G = hp.idset([ia]), hp.idset([ib]), hp.idset([ig])
        self.assertEqual((len(A), len(B), len(G)), (1, 1, 1))
        self.assertEqual(
            (len(A & u), len(B & u), len(G & u), len(A & hp.heap())),
            (1, 1, 1, 0))
        self.assertEqual((len(A & held), len(B & held), len(G & held)),
                         (1, 1, 0))
        self.assertEqual((len(A & garb), len(B & garb), len(G & garb)),
                         (0, 0, 1))
        self.assertTrue((held | garb) == u)
        self.assertEqual(len(held & garb), 0)
        self.assertTrue(A.referrers == B)
        self.assertTrue(B.referrers == A)
        self.assertTrue(G.referrers == G)
        self.assertTrue(A.referents == B | hp.idset([icls]))
        self.assertTrue((A | B).referrers == A | B)
        self.assertTrue(A.byrcs.kind == '__main__.HuNode')
        # Paths start at a root: a heapu member has none, and says why.
        self.assertIn('no path from the roots: the 1 live member is not '
                      'reachable from them (heapu', str(hp.idset([ia]).sp))

    def test_static_type_slot_wrapper_is_in_heap_not_heapu(self):
        # The target's own int.__add__ (on 3.12+ the dict of a static type
        # is per interpreter, so the annex's would be another object).
        add = target_eval("id(int.__dict__['__add__'])")
        x = hp.idset([add])
        self.assertEqual((len(x), len(x & hp.heap()), len(x & hp.heapu())),
                         (1, 1, 0))

    def test_bad_garbage_argument_is_a_type_error(self):
        with self.assertRaises(TypeError) as cm:
            hp.heapu(garbage=1)
        self.assertIn('True (cyclic garbage)', str(cm.exception))

    def test_heap_sizes_count_the_attribute_blocks_as_allocated(self):
        # 50 instances of a 3-attribute class after 64 warm-up ones,
        # created while tracemalloc traces only that loop: what the
        # allocator was asked for beyond their sys.getsizeof is their
        # values blocks.
        target_exec('''exec(compile(\'\'\'
import sys, tracemalloc
class HvNode:
    def __init__(self):
        self.a = None; self.b = None; self.c = None
hv_warm = [HvNode() for _ in range(64)]
hv_idx = list(range(50))
hv_batch = [None] * 50
tracemalloc.start()
for i in hv_idx:
    hv_batch[i] = HvNode()
hv_snap = tracemalloc.take_snapshot()
tracemalloc.stop()
hv_mine = hv_snap.filter_traces([tracemalloc.Filter(True, 'hv_fixture.py')])
hv_real = (sum(t.size for t in hv_mine.traces)
           - sum(sys.getsizeof(o) for o in hv_batch))
hv_ids = [id(o) for o in hv_batch]
del hv_snap, hv_mine
\'\'\', 'hv_fixture.py', 'exec'))
''')
        self.addCleanup(target_exec, 'del HvNode, hv_warm, hv_idx, hv_batch, '
                        'hv_real, hv_ids, i')
        real = target_eval('hv_real')
        self.assertGreater(real, 0)
        getsizeof = target_eval('sum(sys.getsizeof(o) for o in hv_batch)')
        x = hp.idset(target_eval('hv_ids'))
        # The default sizes (hp.heap(), hp.idset(), a partition's rows)
        # count the blocks; values=False gives sys.getsizeof's.
        exact = getsizeof + real
        self.assertEqual(
            (len(x), x.size, (hp.heap() & x).size,
             (hp.heap(values=True) & x).size,
             (hp.heap(values=False) & x).size, (hp.heap() & x).byrcs.size,
             (hp.heap(values=False) & x).byrcs.size),
            (50, exact, exact, exact, getsizeof, exact, getsizeof))
        # Nothing was materialized to find them.
        self.assertEqual(
            target_eval('sum(1 for o in hv_batch for r in '
                        'gc.get_referents(o) if type(r) is dict)'), 0)


if __name__ == '__main__':
    unittest.main()
