"""hp's heap surface on leaks planted at known places in the target: the
partition after setref, shortest paths, domisize, set algebra, heapu, and
questions while target threads churn frames. (Was tests/glue/hp_heap_test.)

Runs with PYTHONMALLOC=debug: freed memory is overwritten, so a question
that reads an object freed after its walk crashes instead of reading stale
memory."""

import unittest

from annex_test import target_eval, target_exec


def rows(h):
    """The rows of a partition, as h[i]."""
    return [h[i] for i in range(len(h.all.splitlines()) - 2)]


def row_of(h, kind):
    return [r for r in rows(h) if r.kind == kind][0]


class HeapTest(unittest.TestCase):

    def test_setref_then_heap_shows_exactly_the_planted_leak(self):
        target_exec('class LeakedSession:\n'
                    '    __slots__ = ("n",)\n'
                    '    def __init__(self, n): self.n = n\n'
                    'registry = {"handlers": [], "cache": {}}\n')
        self.addCleanup(target_exec, 'del LeakedSession, registry')
        hp.setref()
        target_exec('for i in range(100):\n'
                    '    registry["cache"][i + 1000] = LeakedSession(i + 1000)\n')
        table = str(hp.heap())
        self.assertIn('Partition of a set of', table)
        self.assertIn('__main__.LeakedSession', table)
        # The row of the leaked class counts exactly the planted objects.
        leak = row_of(hp.heap(), '__main__.LeakedSession')
        size = target_eval('sum(__import__("sys").getsizeof(v) for v in '
                           'registry["cache"].values())')
        self.assertEqual((leak.count, leak.size), (100, size))

    def test_shortest_path_names_the_planted_place(self):
        target_exec('class Handler:\n'
                    '    pass\n'
                    'class Holder:\n'
                    '    pass\n'
                    'app_registry = {"handlers": [None, None, None, Holder()]}\n'
                    'app_registry["handlers"][3].cache = Handler()\n')
        self.addCleanup(target_exec, 'del Handler, Holder, app_registry')
        handler = row_of(hp.heap(), '__main__.Handler')
        self.assertEqual(handler.count, 1)
        paths = str(handler.sp)
        self.assertIn("%R.sys.modules['__main__'].__dict__['app_registry']"
                      "['handlers'][3]", paths)
        self.assertIn('cache', paths)

    def test_domisize_equals_the_targets_own_sizes(self):
        # Each Blob alone holds its bytearray: freeing the Blobs frees both.
        target_exec('class Blob:\n'
                    '    __slots__ = ("data",)\n'
                    'owned = [Blob() for _ in range(3)]\n'
                    'for b in owned:\n'
                    '    b.data = bytearray(1000)\n'
                    'del b\n')
        self.addCleanup(target_exec, 'del Blob, owned')
        expected = target_eval(
            'sum(__import__("sys").getsizeof(b)'
            ' + __import__("sys").getsizeof(b.data) for b in owned)')
        blobs = row_of(hp.heap(), '__main__.Blob')
        self.assertEqual((blobs.count, blobs.domisize), (3, expected))

    def test_set_algebra_and_heapu(self):
        a = hp.heap()
        b = hp.heap()
        self.assertEqual(len(a - a), 0)
        self.assertEqual(len(a & a), len(a))
        self.assertEqual(len(a | hp.Nothing), len(a))
        self.assertEqual(len(a ^ a), 0)
        self.assertLessEqual((a - b).count, a.count)
        target_exec('import gc\n'
                    'gc.disable()\n'
                    'class Cyc:\n'
                    '    pass\n'
                    '_c = Cyc(); _c.me = _c; del _c\n')
        self.addCleanup(target_exec, 'del Cyc\ngc.enable(); gc.collect()')
        self.assertIn('__main__.Cyc', hp.heapu().all)

    def test_heapu_shows_nothing_of_annex_itself(self):
        # This binary's target never imported atexit; the annex's safety
        # net did (and left sys.modules as it was, holding the module
        # itself). Neither that module nor its functions may show in
        # heapu().
        self.assertIs(target_eval("'atexit' in __import__('sys').modules"),
                      False, 'the test needs a host without atexit')
        target_exec('import gc; gc.collect()')
        self.assertNotIn('module', hp.heapu().all.split())

    def test_idle_annex_sees_the_same_heap_each_time(self):
        self.assertEqual(len({len(hp.heap()) for _ in range(20)}), 1)

    def test_questions_while_target_threads_churn_frames(self):
        # On 3.12 and later every thread-state swap may hand the GIL to a
        # waiting target thread (heap_engine.h). Threads that call and
        # return from Python functions all the time free the frame objects
        # a walk found as roots as soon as they run again, so a question
        # must read what its walk found before any swap. (Before
        # HeapEngine::Question this crashed the host on 3.12/3.13.)
        target_exec('import threading\n'
                    'churn_stop = threading.Event()\n'
                    'def churn_down(n):\n'
                    '    view = memoryview(bytearray(32))\n'
                    '    if n == 0: return [bytearray(64), {"k": view}]\n'
                    '    return churn_down(n - 1)\n'
                    'def churn():\n'
                    '    while not churn_stop.is_set():\n'
                    '        churn_down(30)\n'
                    'churners = [threading.Thread(target=churn)'
                    ' for _ in range(2)]\n'
                    'for t in churners: t.start()\n')
        self.addCleanup(target_exec,
                        'churn_stop.set()\n'
                        'for t in churners: t.join()\n'
                        'del churners, churn_stop, churn, churn_down, t\n')
        ok = 0
        for _ in range(30):
            h = hp.heap()
            ok += len(h) > 1000 and h.size > 0
            h[0].byid
            h[0].sp
            hp.heapu()
        self.assertEqual(ok, 30)


if __name__ == '__main__':
    unittest.main()
