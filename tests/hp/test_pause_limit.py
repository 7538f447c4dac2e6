"""hp.pause_limit seen from the annex: names of types the last walk met
need no walk. (Was the hp-only case of tests/glue/hp_pause_limit_test,
which keeps those of several sessions, the host's Options and
Monitor::Interrupt.)"""

import unittest

from annex_test import target_exec


class PauseLimitTest(unittest.TestCase):

    def setUp(self):
        # Over 40,000 objects: no walk keeps a 1 us limit.
        target_exec('pl_data = [[i, str(i)] for i in range(20000)]\n'
                    'pl_ticks = 0\n')
        self.addCleanup(target_exec, 'del pl_data, pl_ticks')

    def test_type_names_the_last_walk_met_need_no_walk(self):
        # hp.Type('name') checks a name against the types the last walk met
        # without walking again: under a limit no walk can keep, a name
        # hp.heap() saw is accepted and an unknown one walks (and stops)
        # once the target ran (before, the kept walk answers).
        target_exec('class PlSeen:\n'
                    '    pass\n'
                    'pl_seen = [PlSeen() for _ in range(3)]\n')
        self.addCleanup(target_exec, 'del pl_seen, PlSeen')
        h = hp.heap()
        self.assertEqual(len(h & hp.Type('__main__.PlSeen')), 3)
        hp.pause_limit = 1e-6
        self.assertEqual(len(h & hp.Type('__main__.PlSeen')), 3)
        target_exec('pl_ticks += 1')
        with self.assertRaises(TimeoutError):
            hp.Type('__main__.PlNever')
        hp.pause_limit = None
        with self.assertRaises(ValueError) as cm:
            hp.Type('__main__.PlNever')
        self.assertIn("no type named '__main__.PlNever'", str(cm.exception))


if __name__ == '__main__':
    unittest.main()
