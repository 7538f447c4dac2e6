"""Identity over time through hp: reference points and kept sets never take
a new object at a reused address for an old one. (Was the hp-only cases of
tests/glue/hp_identity_test, which keeps those of several sessions and of
Monitor::Stop.)"""

import unittest

from annex_test import target_eval, target_exec


class IdentityTest(unittest.TestCase):

    def test_setref_then_heap_shows_every_new_object_at_reused_addresses(self):
        # Heapy's workflow: setref, the program frees N objects and
        # allocates N of the same size (most at the freed addresses),
        # heap() shows all N new ones and the list that holds them.
        target_exec('class HpIdItem:\n'
                    '    def __init__(self, v):\n'
                    '        self.v = v\n'
                    'hid_old = [HpIdItem(i) for i in range(500)]\n'
                    'hid_old_ids = frozenset(id(o) for o in hid_old)\n')
        hp.setref()
        target_exec('del hid_old\n'
                    'hid_new = [HpIdItem(i) for i in range(500)]\n'
                    'hid_new_ids = [id(o) for o in hid_new]\n'
                    'hid_reused = sum(1 for a in hid_new_ids'
                    ' if a in hid_old_ids)\n'
                    'hid_holder_id = id(hid_new)\n')
        self.addCleanup(target_exec,
                        'del hid_new, hid_new_ids, hid_old_ids, HpIdItem,'
                        ' hid_reused, hid_holder_id')
        # 3.11: about 480 of 500; 3.12 (inline values): about 160.
        self.assertGreaterEqual(target_eval('hid_reused'), 100,
                                'the premise: addresses reused')
        ids = target_eval('hid_new_ids')
        holder = target_eval('hid_holder_id')
        h = hp.heap()
        self.assertEqual(sum(1 for a in ids if a in h), 500)
        self.assertIn(holder, h)
        self.assertIn('__main__.HpIdItem', str(h.byclodo))

    def test_setref_takes_a_reachable_set_and_setrelheap(self):
        # setref(reachable=x): x's live members are the reference;
        # setrelheap() alone moves heap()'s reference.
        target_exec('hpr_one = [1.5, 2.5]\nhpr_one_id = id(hpr_one)\n')
        self.addCleanup(target_exec, 'del hpr_one, hpr_one_id')
        one = target_eval('hpr_one_id')
        # The reference is everything except hpr_one: heap() shows it again.
        everything = hp.heap()
        hp.setref(reachable=everything - hp.idset([one]))
        self.assertIn(one, hp.heap())
        hp.setrelheap()
        self.assertNotIn(one, hp.heap())

    def test_kept_set_of_dead_members_reaches_nothing(self):
        # A kept set whose members all died answers for no member: count 0,
        # the dead counted and noted, and .sp/.domisize/.byid reach none of
        # the new objects now at the members' addresses.
        target_exec('hpk_objs = [[i, i] for i in range(300)]\n'
                    'hpk_ids = [id(o) for o in hpk_objs]\n')
        k = hp.idset(target_eval('hpk_ids'))
        self.assertEqual((k.count, k.dead), (300, 0))
        target_exec('hpk_set = frozenset(hpk_ids)\n'
                    'del hpk_objs\n'
                    'hpk_new = [[i, i] for i in range(300)]\n'
                    'hpk_reused = sum(1 for o in hpk_new if id(o) in hpk_set)\n')
        self.addCleanup(target_exec,
                        'del hpk_new, hpk_set, hpk_ids, hpk_reused')
        self.assertGreaterEqual(target_eval('hpk_reused'), 150,
                                'the premise: addresses reused')
        self.assertEqual((k.count, k.dead, len(k), k.size), (0, 300, 0, 0))
        self.assertIn('(no member of the set is reachable now)', str(k.sp))
        self.assertEqual(k.domisize, 0)
        self.assertIn('(no member of the set is alive now)', str(k.byid))
        self.assertIn('300 members died since the set was made', str(k))

    def test_referrer_tables_of_a_kept_set_leave_out_its_dead(self):
        # byrcs and byvia of a kept set whose members partly died label the
        # living members only: new objects of the same type at the dead
        # members' addresses are not members.
        target_exec('hpr_objs = [[i] for i in range(40)]\n'
                    'hpr_hold = list(hpr_objs)\n'
                    'hpr_ids = [id(o) for o in hpr_objs]\n')
        k = hp.idset(target_eval('hpr_ids'))
        target_exec('del hpr_objs\n'
                    'hpr_hold = hpr_hold[:10]\n'
                    'hpr_new = [[i] for i in range(30)]\n')
        self.addCleanup(target_exec, 'del hpr_hold, hpr_new, hpr_ids')
        self.assertEqual([(p.kind.brief, len(p)) for p in k.byrcs.parts],
                         [('<referred by: list>', 10)])
        v = sorted((p.kind.brief, len(p)) for p in k.byvia.parts)
        self.assertEqual((len(v), v[0], v[-1]),
                         (10, ("<via '[0]'>", 1), ("<via '[9]'>", 1)))

    def test_a_row_whose_members_died_is_out_of_range_with_the_reason(self):
        # A row of a kept set's partition goes when all its members die:
        # asking for it says how many rows are left and why, instead of a
        # bare "out of range".
        target_exec('hpr_lists = [[i] for i in range(100)]\n'
                    'hpr_dicts = [{i: i} for i in range(20)]\n'
                    'hpr_ids = [id(o) for o in hpr_lists + hpr_dicts]\n')
        self.addCleanup(target_exec, 'del hpr_lists, hpr_ids')
        k = hp.idset(target_eval('hpr_ids'))
        self.assertEqual((len(k.stat), k[1].count), (2, 20))
        target_exec('del hpr_dicts')
        with self.assertRaises(IndexError) as cm:
            k[1]
        self.assertEqual(
            str(cm.exception),
            'partition row 1 out of range: the set has 1 rows now (20 members '
            'died since it was made; x.dead)')
        self.assertEqual(k.dead, 20)

    def test_few_deaths_in_a_large_kept_set_leave_exactly_those_members(self):
        # A kept set of the whole heap where a few members die and new
        # objects take their addresses: exactly those members leave it (the
        # set looks only at the members whose blocks saw a death since its
        # last look), the new objects are not members, and every other
        # member stays.
        target_exec('hpf_objs = [[i, i] for i in range(20000)]\n'
                    'hpf_gone = hpf_objs[::100]\n'
                    'hpf_gone_ids = frozenset(id(o) for o in hpf_gone)\n'
                    'hpf_kept_ids = [id(o) for o in hpf_objs[1::100]]\n')
        k = hp.heap()
        k.count
        # A first look after some deaths elsewhere, so the set has looked
        # once.
        n1 = k.count
        target_exec('hpf_objs = [o for o in hpf_objs'
                    ' if id(o) not in hpf_gone_ids]\n'
                    'del hpf_gone\n'
                    'hpf_new = [[i, i] for i in range(200)]\n'
                    'hpf_new_ids = [id(o) for o in hpf_new]\n'
                    'hpf_reused = sum(1 for a in hpf_new_ids'
                    ' if a in hpf_gone_ids)\n'
                    'hpf_gone_list = sorted(hpf_gone_ids)\n')
        self.addCleanup(target_exec,
                        'del hpf_objs, hpf_kept_ids, hpf_new_ids, hpf_reused,'
                        ' hpf_gone_list')
        self.assertGreaterEqual(target_eval('hpf_reused'), 100,
                                'the premise: addresses reused')
        gone = target_eval('hpf_gone_list')
        fresh = target_eval('hpf_new_ids')
        kept = target_eval('hpf_kept_ids')
        self.assertGreaterEqual(k.dead, 200)
        self.assertLess(k.count, n1)
        self.assertEqual(len(k & hp.idset(fresh)), 0)
        self.assertEqual(len(hp.idset(kept) & k), 200)
        # Many deaths since the last look: the set checks every member, with
        # the same verdicts.
        target_exec('del hpf_new, hpf_gone_ids\nhpf_objs = None')
        self.assertGreater(k.dead, 20000)
        self.assertEqual(len(k & hp.idset(gone)), 0)


if __name__ == '__main__':
    unittest.main()
