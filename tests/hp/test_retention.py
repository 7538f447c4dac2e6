"""hp's retention surface.

x.sp, get_shpaths, referrers, referents, dominos, domisize, imdom,
pathsin/pathsout and hp.Root (rp has test_rp.py), on leaks planted at known
places in the target. glue::RetentionView, the C++ face for hosts, is
tested in tests/glue/hp_retention_test.cc.

Everything here runs in the annex, on its thread with the GIL held (the hp
driver, tests/testing:annex_unittest_main); the target is reached only
through annex_test.target_exec/target_eval.
"""

import os
import unittest

import annex_test
from annex_test import err, err_type
from hp_helpers import row


def setUpModule():
    # Where: the annex (GIL held). The fixture (retention_fixture.py, beside
    # this file) runs in the target's __main__ once per process: the target
    # is shared by every test of the binary, and the driver runs
    # setUpModule before each test.
    path = os.path.join(os.path.dirname(__file__), 'retention_fixture.py')
    with open(path, encoding='utf-8') as f:
        source = f.read()
    annex_test.target_exec("if 'leakmod' not in __import__('sys').modules:\n"
                           '    exec(%r, globals())\n' % source)


def target(expr):
    return annex_test.target_eval(expr)


class RetentionTest(unittest.TestCase):

    def test_shortest_path_is_exactly_the_planted_one(self):
        self.assertEqual(
            str(row(hp, 'leakmod.ModuleLeak').sp),
            " 0: %R.sys.modules['leakmod'].__dict__['registry']['handlers'][3]"
            '.cache')
        self.assertEqual(
            str(row(hp, 'leakmod.ClosureLeak').sp),
            " 0: %R.sys.modules['leakmod'].__dict__['handler'].__closure__[0]"
            '.cell_contents')
        self.assertEqual(
            str(row(hp, 'leakmod.ClassAttrLeak').sp),
            " 0: %R.sys.modules['leakmod'].__dict__['Config'].__dict__"
            "['cache']")
        ident = target("sys.modules['sleepmod'].thread.ident")
        self.assertEqual(str(row(hp, 'sleepmod.SleepLocal').sp),
                         " 0: %%R['thread %d frame 0'].f_locals['x']" % ident)
        # The cycle: its nearest member is the one the module holds.
        self.assertEqual(str(row(hp, 'leakmod.Node').sp),
                         " 0: %R.sys.modules['leakmod'].__dict__['keep']")
        # sp is an annex.Paths: structured too.
        p = row(hp, 'leakmod.ClassAttrLeak').sp
        self.assertEqual(p.numpaths, 1)
        self.assertEqual(p.paths[0][0], 'sys.modules')
        self.assertEqual([e[:2] for e in p.paths[0][1]],
                         [('dict_value', "['leakmod']"),
                          ('dict', '.__dict__'),
                          ('dict_value', "['Config']"),
                          ('dict', '.__dict__'),
                          ('dict_value', "['cache']")])

    def test_domisize_equals_the_targets_getsizeof(self):
        x = row(hp, 'leakmod.Node')
        self.assertEqual((x.count, x.domisize, x.dominos.count),
                         (2, target("sys.modules['leakmod'].cycle_size"), 4))
        # Two Leaf instances, each with its values block.
        plist = (target(
            '(lambda l: sys.getsizeof(l) + sum(sys.getsizeof(o) for o in l))'
            "(sys.modules['leakmod'].plist)") +
                 2 * target("values_block(sys.modules['leakmod'].Leaf)"))
        self.assertGreater(plist, 0)
        x = row(hp, 'leakmod.PlantedList')
        d = x.dominos
        self.assertEqual((x.domisize, d.size, d.count), (plist, plist, 5))
        self.assertEqual(
            row(hp, 'leakmod.ModuleLeak').domisize,
            target("sys.getsizeof(sys.modules['leakmod'].registry['handlers']"
                   "[3].cache) + values_block(sys.modules['leakmod']"
                   '.ModuleLeak)'))

    def test_referrers_and_referents_agree_with_gc(self):
        # Computed in the target by gc, as sorted ids.
        annex_test.target_exec(
            'import gc\n'
            "_p = sys.modules['leakmod'].plist\n"
            'gc_referrers = sorted(id(r) for r in gc.get_referrers(_p)\n'
            '                      if r is not globals())\n'
            'gc_referents = sorted(id(r) for r in gc.get_referents(_p))\n'
            'del _p\n')
        try:
            expected_in = target('gc_referrers')
            expected_out = target('gc_referents')
        finally:
            annex_test.target_exec('del gc_referrers, gc_referents')
        self.assertNotEqual(expected_in, [])
        self.assertNotEqual(expected_out, [])

        def ids(s):
            return sorted(
                int(l.split()[0], 16) for l in s.byid.all.splitlines())

        x = row(hp, 'leakmod.PlantedList')
        self.assertEqual(ids(x.referrers), expected_in)
        self.assertEqual(ids(x.referents), expected_out)
        x = row(hp, 'leakmod.PlantedList')
        self.assertEqual((x.referrers.count, x.referents.count), (2, 5))
        self.assertEqual(x.imdom.kind, 'dict of module')
        x = row(hp, 'leakmod.Node')
        self.assertEqual(x.imdom.kind, 'dict of module')
        self.assertEqual(x.imdom.count, 1)

    def test_avoiding_finds_the_second_route(self):
        first = " 0: %R.sys.modules['leakmod'].__dict__['two_ways']['first']"
        second = (" 0: %R.sys.modules['leakmod'].__dict__['two_ways']"
                  "['second'][0]")
        self.assertEqual(str(row(hp, 'leakmod.Twice').sp), first)
        self.assertEqual(str(row(hp, 'leakmod.Twice').sp.avoided(-1)), second)
        p = row(hp, 'leakmod.Twice').sp
        self.assertEqual(
            str(
                row(hp, 'leakmod.Twice').get_shpaths(
                    avoid_edges=p.edges_at(-1))),
            second)
        # Avoiding the two_ways dict itself leaves no route at all.
        x = row(hp, 'leakmod.Twice')
        d = x.referrers - row(hp, 'list')
        self.assertEqual(d.count, 1)
        self.assertEqual(str(x.get_shpaths(avoid_nodes=d)),
                         '(no path from the roots)')
        # ... and avoiding nodes given as addresses works the same.
        x = row(hp, 'leakmod.Twice')
        p = x.sp
        self.assertEqual(
            str(x.get_shpaths(avoid_nodes=[p.paths[0][1][-1][2]])),
            '(no path from the roots)')

    def test_limit_caps_the_paths(self):
        # Three equal routes; paths come in node order, so compare as sets.
        prefix = " %R.sys.modules['leakmod'].__dict__['three_ways']"
        p = row(hp, 'leakmod.Thrice').get_shpaths(limit=0)
        self.assertEqual((p.numpaths, p.truncated, len(p)), (3, False, 3))
        self.assertEqual(sorted(' ' + path.text for path in p), [
            prefix + "['a'][0]", prefix + "['b'][0]", prefix + "['c'][0]"
        ])
        # numpaths counts all three; two are fetched.
        x = row(hp, 'leakmod.Thrice')
        full = str(x.get_shpaths(limit=0)).splitlines()
        p = x.get_shpaths(limit=2)
        lines = str(p).splitlines()
        self.assertEqual((p.numpaths, p.truncated, len(p), len(lines)),
                         (3, True, 2, 3))
        self.assertEqual(lines[:2], full[:2])
        self.assertEqual(
            lines[2], '<1 more path not fetched (limit=2; '
            'get_shpaths(limit=...) fetches more)>')
        p = row(hp, 'leakmod.Thrice').get_shpaths(limit=3)
        self.assertEqual((p.numpaths, p.truncated), (3, False))
        # The default limit is 20.
        self.assertEqual(row(hp, 'leakmod.Thrice').sp.limit, 20)

    def test_paths_in_and_out_name_each_reference(self):
        in_ = str(row(hp, 'leakmod.PlantedList').pathsin)
        self.assertIn("['plist'] -> <leakmod.PlantedList at 0x", in_)
        self.assertIn('>[0] -> <leakmod.PlantedList at 0x', in_)
        self.assertEqual(in_.count('\n') + 1, 3, in_)  # print's newline too
        out = str(row(hp, 'leakmod.PlantedList').pathsout)
        for edge in ('>[0] -> <leakmod.Leaf', '>[1] -> <leakmod.Leaf',
                     '>[2] -> <str', '>[3] -> <int', '>.__class__ -> <type'):
            self.assertIn(edge, out)

    def test_bad_arguments_raise_clear_exceptions(self):
        x = row(hp, 'leakmod.Twice')
        calls = [
            ('ValueError', lambda: x.get_shpaths(limit=-1)),
            ('TypeError', lambda: x.get_shpaths(limit='3')),
            ('TypeError', lambda: x.get_shpaths(avoid_edges=[1])),
            ('TypeError', lambda: x.get_shpaths(avoid_edges=[(1, 2, 3)])),
            ('TypeError', lambda: x.get_shpaths(avoid_nodes=1.5)),
            ('TypeError', lambda: x.get_shpaths(avoid_nodes=[-1])),
            ('TypeError', lambda: x.get_shpaths(5)),
            ('ValueError', lambda: x.get_rp(depth=-1)),
            ('TypeError', lambda: x.get_rp(depth='deep')),
            ('TypeError', lambda: x.get_rp(stopkind=3)),
            ('TypeError', lambda: x.get_rp(stopkind=[3])),
            ('TypeError', lambda: x.sp.avoided()),
            ('TypeError', lambda: x.sp.edges_at('last')),
            ('TypeError', lambda: x.get_shpaths(src=1.5)),
            ('TypeError', lambda: x.get_shpaths(src=['a'])),
            ('TypeError', lambda: x.get_shpaths(avoid_levels=['last'])),
            ('IndexError', lambda: x.sp[5]),
            ('TypeError', lambda: x.sp['a']),
            ('TypeError', lambda: x.sp.avoided('last')),
        ]
        lines = [err(f) for _, f in calls]
        for line, (want, _) in zip(lines, calls):
            self.assertNotIn('\n', line)
            self.assertEqual(line.partition(':')[0], want, line)
        self.assertIn('limit must be >= 0', lines[0])
        self.assertIn('(from, to) address pairs', lines[2])
        self.assertIn('avoid_nodes must be an IdSet', lines[4])
        self.assertIn('depth must be between', lines[7])
        self.assertIn('src must be an IdSet', lines[13])
        self.assertIn('src must hold addresses', lines[14])
        self.assertIn('avoid_levels must hold ints', lines[15])
        self.assertEqual(
            lines[16], 'IndexError: path 5 out of range: 1 of 1 paths fetched')

    def test_path_is_an_object_with_its_edges(self):
        p = row(hp, 'leakmod.ModuleLeak').sp
        text = ("%R.sys.modules['leakmod'].__dict__['registry']['handlers'][3]"
                '.cache')
        self.assertEqual((len(p), p.depth(), p.numpaths, p.truncated),
                         (1, 6, 1, False))
        self.assertEqual(repr(p[0]), ' 0: ' + text)
        self.assertEqual(
            (p[0].text, len(p[0]), p[0].depth(), p[0].root),
            (text, 6, 6, 'sys.modules'))
        self.assertEqual([e[:2] for e in p[0].edges],
                         [('dict_value', "['leakmod']"),
                          ('dict', '.__dict__'),
                          ('dict_value', "['registry']"),
                          ('dict_value', "['handlers']"),
                          ('index', '[3]'),
                          ('attribute', '.cache')])
        self.assertEqual(list(p), p.aslist())
        self.assertEqual(p.aslist(), [p[0]])
        self.assertEqual([p[0]], p[-1:])
        # Paths are made on first use, once: p[-1] is p[0].
        self.assertIs(p[-1], p[0])
        self.assertEqual(p[-1].index, 0)
        with self.assertRaises(IndexError) as cm:
            p[1]
        self.assertEqual(str(cm.exception),
                         'path 1 out of range: 1 of 1 paths fetched')
        # The edges chain from the modules dict to the leak, by address.
        leak = target("id(sys.modules['leakmod'].registry['handlers'][3]"
                      '.cache)')
        modules = target('id(sys.modules)')
        e = row(hp, 'leakmod.ModuleLeak').sp[0].edges
        self.assertTrue(all(a[3] == b[2] for a, b in zip(e, e[1:])))
        self.assertEqual((e[0][2], e[-1][3]), (modules, leak))
        # No path: depth() is None.
        x = row(hp, 'leakmod.Twice')
        p = x.get_shpaths(avoid_nodes=x.referrers)
        self.assertEqual((len(p), p.depth(), p.numpaths, str(p)),
                         (0, None, 0, '(no path from the roots)'))

    def test_numpaths_counts_all_paths_through_diamonds(self):
        # 2**100 shortest paths, 3 + 2 * 100 steps each: counted, 20
        # fetched.
        big = "%R.sys.modules['diamod'].__dict__['big']"
        p = row(hp, 'diamod.DiamondEnd').sp
        self.assertEqual((p.numpaths, len(p), p.depth(), p.truncated),
                         (2**100, 20, 203, True))
        self.assertTrue(all(q.text.startswith(big) for q in p))
        self.assertEqual((len({q.text for q in p}), p.limit), (20, 20))
        end = target("id(sys.modules['diamod'].big" + '[0][0]' * 100 + ')')
        e = row(hp, 'diamod.DiamondEnd').sp[7].edges
        self.assertEqual((len(e), {k for k, *_ in e[3:]}, e[-1][3]),
                         (203, {'index'}, end))
        # Ten a page; the page after the fetched ones says how many were
        # not.
        not_fetched = ('<1267650600228229401496703205356 more paths not '
                       'fetched (limit=20; get_shpaths(limit=...) fetches '
                       'more)>')
        p = row(hp, 'diamod.DiamondEnd').sp
        first, second = str(p).splitlines(), str(p.more).splitlines()
        self.assertEqual(len(first), 11)
        self.assertEqual(first[-1],
                         "<10 more paths. Type e.g. '_.more' to view.>")
        self.assertEqual([l[:4] for l in first[:10]],
                         [repr(q)[:4] for q in p[:10]])
        self.assertEqual((len(second), second[0][:4], second[-1]),
                         (11, '10: ', not_fetched))
        self.assertEqual(str(p.more.more), '<No more paths>\n' + not_fetched)
        self.assertEqual(len(p.all.splitlines()), 21)
        self.assertEqual(p.all.splitlines()[-1], not_fetched)
        # Eight paths through three diamonds, exactly these.
        expected = [
            "%R.sys.modules['diamod'].__dict__['small']" + a + '[0]' + b +
            '[0]' + c + '[0]'
            for a in ('[0]', '[1]')
            for b in ('[0]', '[1]')
            for c in ('[0]', '[1]')
        ]
        p = row(hp, 'diamod.SmallEnd').get_shpaths(limit=0)
        self.assertEqual((p.numpaths, len(p), p.depth(), p.truncated),
                         (8, 8, 9, False))
        self.assertEqual(sorted(q.text for q in p), expected)

    def test_avoiding_levels_covers_paths_not_fetched(self):
        # One path fetched, but the last steps of all eight are avoided: the
        # route through `alt` is next.
        alt = (" 0: %R.sys.modules['diamod'].__dict__['alt'][0][0][0][0][0][0]"
               '[0][0][0][0]')
        p = row(hp, 'diamod.SmallEnd').get_shpaths(limit=1)
        self.assertEqual((len(p.edges_at(-1)), p.numpaths), (1, 8))
        q = p.copy_but_avoid_edges_at_levels(-1)
        self.assertEqual((len(q.avoid_edges), q.numpaths, q.depth(), q.limit),
                         (2, 1, 13, 1))
        self.assertEqual(str(q), alt)
        self.assertEqual(str(p.avoided(-1).avoided(-1)),
                         '(no path from the roots)')

    def test_src_starts_the_paths_at_given_objects(self):
        start = '<list at %#x>' % target("id(sys.modules['diamod'].small[1])")
        expected = [
            start + '[0]' + b + '[0]' + c + '[0]'
            for b in ('[0]', '[1]')
            for c in ('[0]', '[1]')
        ]
        # From the top diamond's second side: two diamonds left, 4 paths.
        a = hp.iso('diamod.small[1]')
        p = row(hp, 'diamod.SmallEnd').get_shpaths(src=a)
        self.assertEqual((p.numpaths, len(p), p.depth(), repr(p[0].root)),
                         (4, 4, 5, "''"))
        self.assertEqual(sorted(q.text for q in p), expected)
        # The same given as an id; hp.Root is the roots.
        x = row(hp, 'diamod.SmallEnd')
        i = int(str(hp.iso('diamod.small[1]').byid).split()[0], 16)
        self.assertEqual(sorted(q.text for q in x.get_shpaths(src=[i])),
                         sorted(q.text for q in x.get_shpaths(src=hp.iso(i))))
        self.assertEqual(
            (x.get_shpaths(src=hp.Root).numpaths, x.sp.numpaths), (8, 8))
        self.assertEqual(str(x.get_shpaths(src=hp.iso('leakmod.two_ways'))),
                         '(no path from src)')
        self.assertEqual(str(x.get_shpaths(src=[8])),
                         '(no path: no object of src is alive now)')
        self.assertEqual(
            x.get_shpaths(src=hp.iso('diamod.small[1]'),
                          limit=1).avoided(0).numpaths, 0)

    def test_frames_running_module_code_give_one_path_from_the_module(self):
        # frmod's globals are held by two frames (three references): one
        # path, spelled from sys.modules.
        p = row(hp, 'frmod.Held').sp
        self.assertEqual((p.numpaths, p.depth()), (1, 3))
        self.assertEqual(str(p),
                         " 0: %R.sys.modules['frmod'].__dict__['held']")
        # A plain dict as globals: one path, from the innermost frame.
        ns_thread = target('ns_thread.ident')
        p = row(hp, 'nsmod.Held').sp
        self.assertEqual((p.numpaths, p.depth()), (1, 1))
        self.assertEqual(
            str(p),
            " 0: %%R['thread %d frame 0'].f_globals['held']" % ns_thread)

    def test_a_module_reached_from_a_threads_frames_gives_one_path(self):
        # tgtmod's dict is two steps from sys.modules and two from the frame
        # local `self` of threading's run (self._target.__globals__): the
        # path enters it from the module only.
        p = row(hp, 'tgtmod.Held').sp
        self.assertEqual((p.numpaths, p.depth()), (1, 4))
        self.assertEqual(str(p),
                         " 0: %R.sys.modules['tgtmod'].__dict__['held'][0]")

    def test_root_lists_the_roots_and_what_each_holds(self):
        fr = target('frmod_thread.ident')
        ns = target('ns_thread.ident')
        root = str(hp.Root) + '\n'  # as printed
        for part in (
                '\n %R.sys.modules ',
                ' sys_modules ',
                '\n %R.builtins ',
                "\n %%R['thread %d frame 0']" % fr,
                ' thread_%d_frame_0\n' % fr,
                "(paths: %R.sys.modules['frmod'].__dict__)",
                "(paths: %%R['thread %d frame 0'].f_globals)" % ns,
                " .f_locals['self'] ",
                ' (fallback)\n',
        ):
            self.assertIn(part, root)
        # Attributes and names give what a root holds now, as IdSets.
        self.assertEqual(
            (hp.Root.sys_modules.count, hp.Root['sys.modules'].count), (1, 1))
        f = getattr(hp.Root, 'thread_%d_frame_0' % fr)
        self.assertEqual((f & hp.iso('frmod.__dict__')).count, 1)
        self.assertGreater(f.count, 1)
        self.assertIn('sys_modules', dir(hp.Root))
        self.assertIn('builtins', dir(hp.Root))
        self.assertEqual(hp.Root['thread %d frame 0' % fr].count, f.count)
        self.assertEqual([
            err_type(lambda: hp.Root['no such root']),
            err_type(lambda: hp.Root.nothing_here),
            err_type(lambda: hp.Root[3])
        ], ['KeyError', 'AttributeError', 'TypeError'])

    # annex.Paths, annex.Path and annex.Root are Python compiled into the
    # binary from glue/module/python/paths.py: their code and tracebacks
    # name it.
    def test_paths_classes_name_their_py_file(self):
        import annex
        import traceback
        self.assertEqual(annex.Paths.depth.__code__.co_filename,
                         'glue/module/python/paths.py')
        try:  # not assertRaises: it drops the traceback
            hp.Root.nothing_here
        except AttributeError as e:
            tb = traceback.extract_tb(e.__traceback__)[-1]
        else:
            self.fail('hp.Root.nothing_here raised nothing')
        self.assertEqual((tb.filename, tb.name),
                         ('glue/module/python/paths.py', '__getattr__'))
