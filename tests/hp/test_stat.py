"""hp's stats: x.stat against the target's own counts, differences, dump
files read back exactly, JSON and Heapy's paging (.more).

Runs inside the annex (tests/testing/annex_unittest_main.cc): `hp` is the
console's, new for each test; `annex_test` runs code in the target's
__main__, which persists across the tests of the binary. HeapView::Summary
for hosts, a C++ API, stays in tests/glue/hp_stat_test.cc.
"""

import contextlib
import gc
import io
import json
import os
import pathlib
import tempfile
import traceback
import unittest

import annex_test
from annex_test import err

# Objects of kinds whose names have spaces, quotes, a backslash, a line feed
# and non-ASCII letters; `odd_ids` are their ids. Each kind has its own
# count, so the rows are known.
ODD_KINDS = r"""
_odd_names = ['with space', 'it\'s "quoted"', 'back\\slash',
              'line\nfeed', 'Größe ∑ 名前']
odd_objs = []
for _i, _n in enumerate(_odd_names):
    _t = type(_n, (), {'__slots__': ('v',)})
    _t.__module__ = 'odd mod'
    odd_objs += [_t() for _ in range(_i + 1)]
odd_ids = [id(o) for o in odd_objs]
def expected_rows(objs):
    import sys
    rows = {}
    for o in objs:
        k = type(o).__module__ + '.' + type(o).__name__
        c, s = rows.get(k, (0, 0))
        rows[k] = (c + 1, s + sys.getsizeof(o))
    return sorted((k, c, s) for k, (c, s) in rows.items())
"""

# The first and last line of a stat record in a dump.
LOADER = '.loader: _load_stat'
END = '.end: .loader: _load_stat'


def odd_set():
    """The IdSet of the fixture's objects."""
    return hp.idset(annex_test.target_eval('odd_ids'))


class HpStatTest(unittest.TestCase):

    def setUp(self):
        if not annex_test.target_eval("'odd_ids' in globals()"):
            annex_test.target_exec(ODD_KINDS)

    def temp_dir(self):
        """A new directory, removed with its files when the test ends."""
        # pylint: disable-next=consider-using-with
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        return d.name

    def test_stat_has_the_rows_of_the_partition_and_the_targets_counts(self):
        x = odd_set()
        s = x.stat
        self.assertEqual(type(s).__name__, 'Stat')
        self.assertEqual(repr(s), repr(x))
        self.assertEqual(s.count, len(x))
        self.assertEqual(s.size, x.size)
        self.assertEqual(len(s), 5)
        self.assertEqual(str(s.er), 'Clodo')
        self.assertEqual(
            repr(sorted(s.rows)),
            annex_test.target_eval('repr(expected_rows(odd_objs))'))
        self.assertEqual(x.bytype.stat.kindheader, 'Type')
        self.assertEqual(str(x.bysize.stat.er), 'Size')

    def test_stat_rows_index_and_compare(self):
        x = odd_set()
        s = x.stat
        self.assertEqual(s[0].rows, s.rows[:1])
        self.assertEqual(s[0].count, s.rows[0][1])
        self.assertEqual(s[-1].rows, s.rows[-1:])
        self.assertEqual(s[1:3].rows, s.rows[1:3])
        self.assertEqual(s[1:3].size, s.rows[1][2] + s.rows[2][2])
        self.assertEqual(len(s[::2]), 3)
        self.assertTrue(s == x.stat)
        self.assertTrue(s == odd_set().stat)
        self.assertTrue(s != s[1:])
        self.assertFalse(s == x.bytype.stat)
        self.assertFalse(s == 1)
        self.assertEqual(err(lambda: s[100]),
                         'IndexError: Stat index out of range.')
        self.assertEqual(err(lambda: s['a']),
                         'TypeError: Stat indices must be integers or slices.')
        with self.assertRaises(TypeError):
            hash(s)

    def test_difference_shows_what_grew_by_kind(self):
        # 64 warm-up instances first: on 3.11/3.12 a class's first ones get
        # larger attribute values blocks (docs/hp.md, "Sizes").
        annex_test.target_exec(r"""
exec(compile('''
class Grown:
    def __init__(self, i): self.i = i
def grow(out, n):
    for k in range(n):
        out[k] = Grown(k)  # a cached small int: no int is allocated
grow([None] * 64, 64)
grow_keep = []
''', 'grow_fixture.py', 'exec'))
""")
        h1 = hp.heap()
        # The 150 new instances, made while tracemalloc traces: the
        # allocator's bytes for them beyond their sys.getsizeof are their
        # attribute values blocks, which their sizes count.
        annex_test.target_exec("""
import sys, tracemalloc
grow_batch = [None] * 150
tracemalloc.start()
grow(grow_batch, 150)
grow_snap = tracemalloc.take_snapshot()
tracemalloc.stop()
grow_blocks = (
    sum(t.size for t in grow_snap.filter_traces(
        [tracemalloc.Filter(True, 'grow_fixture.py')]).traces)
    - sum(sys.getsizeof(g) for g in grow_batch))
grow_keep.extend(grow_batch)
del grow_batch, grow_snap
""")
        blocks = annex_test.target_eval('grow_blocks')
        self.assertGreaterEqual(blocks, 150 * 2 * 8)  # the attribute's slots
        size = annex_test.target_eval(
            "sum(__import__('sys').getsizeof(g) for g in grow_keep)") + blocks
        h2 = hp.heap()
        d = h2.stat - h1.stat
        self.assertEqual(type(d).__name__, 'Stat')
        self.assertEqual(d.format, 'DiffFormat')
        self.assertEqual(repr(d).splitlines()[0],
                         'Summary of difference operation (A-B).')
        row = [r for r in d.rows if r[0] == '__main__.Grown'][0]
        self.assertEqual((row[1], row[2]), (150, size))
        self.assertEqual(d.b_count, h1.count)
        self.assertEqual(d.b_size, h1.size)
        self.assertEqual(d.count, h2.count - h1.count)
        self.assertEqual(d.size, h2.size - h1.size)
        self.assertTrue(h2.diff(h1) == d)
        self.assertIsNone(h1.stat.b_count)
        # Rows by absolute size, largest first.
        self.assertEqual([abs(r[2]) for r in d.rows],
                         sorted((abs(r[2]) for r in d.rows), reverse=True))
        with self.assertRaises(ValueError) as cm:
            h2.stat - h1.bytype.stat  # pylint: disable=expression-not-assigned
        self.assertEqual(str(cm.exception)[:29],
                         'Mismatching table kind header')
        with self.assertRaises(TypeError) as cm:
            h2.stat - 1  # pylint: disable=expression-not-assigned
        self.assertEqual(str(cm.exception)[:49],
                         'Can only take difference with other Stat instance')

    def test_dump_and_load_read_back_exactly(self):
        path = os.path.join(self.temp_dir(), 'stats.txt')
        x = odd_set()
        s1 = x.stat
        s2 = x[1:3].bytype.stat
        s1.dump(path)
        x[1:3].bytype.dump(path)  # the IdSet shorthand
        diff = s1 - x[0:2].stat
        diff.dump(pathlib.Path(path))
        self.assertTrue(hp.load(path) == diff)
        self.assertEqual(hp.load(path).format, 'DiffFormat')
        all3 = hp.loadall(path)
        self.assertEqual(len(all3), 3)
        self.assertTrue(all3[0] == s1)
        self.assertTrue(all3[1] == s2)
        self.assertTrue(all3[2] == diff)
        self.assertEqual(all3[0].rows, s1.rows)
        self.assertEqual(all3[0].timemade, s1.timemade)
        self.assertEqual(all3[0].kindheader, s1.kindheader)
        self.assertEqual(str(all3[1].er), 'Type')
        self.assertEqual(all3[2].b_size, diff.b_size)
        # An open file (from its position), the text, a bytes path.
        with open(path, encoding='utf-8', errors='surrogateescape') as f:
            text = f.read()
        with open(path, 'rb') as f:
            self.assertTrue(hp.load(f) == s1)
            self.assertEqual(len(hp.loadall(f)), 2)
        self.assertTrue(hp.load(text) == diff)
        self.assertEqual(len(hp.loadall(text)), 3)
        self.assertTrue(hp.load(os.fsencode(path)) == diff)
        # The text is Heapy's format: one line per field and row.
        lines = text.split('\n')
        self.assertEqual(lines.count(LOADER), 3)
        self.assertEqual(lines.count(END), 3)
        self.assertIn('\\n', text)
        self.assertNotIn('line\nfeed', text)
        s1.dump(path, 'w')
        self.assertEqual(len(hp.loadall(path)), 1)
        self.assertTrue(hp.load(path) == s1)

    def test_pb_writes_the_report_page_of_the_records(self):
        # hp.pb(file): Heapy's profile browser as `annex report`'s page,
        # written next to the records (or to out=), from the records x.dump
        # wrote.
        d = self.temp_dir()
        path = os.path.join(d, 'stats.txt')
        x = odd_set()
        x.bytype.dump(path)
        x[0:2].bytype.dump(path)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertIsNone(hp.pb(path))
        self.assertEqual(out.getvalue(),
                         'annex report: 2 records -> %s.html\n' % path)
        with open(path + '.html', encoding='utf-8') as f:
            page = f.read()
        self.assertTrue(page.startswith('<!DOCTYPE html>'))
        self.assertIn('records-data', page)
        self.assertGreater(page.count('<svg'), 0)
        other = os.path.join(d, 'page.html')
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            hp.pb([path], out=other, title='T<1>', top=3)
        self.assertEqual(out.getvalue(),
                         'annex report: 2 records -> %s\n' % other)
        with open(other, encoding='utf-8') as f:
            self.assertIn('T&lt;1&gt;', f.read())
        self.assertEqual(
            err(lambda: hp.pb(3)),
            'TypeError: hp.pb: file must be a path (str) or a list of paths'
            ' of record files (x.dump, annex record)')
        self.assertEqual(err(lambda: hp.pb([])),
                         'ValueError: hp.pb: no record file given')
        self.assertEqual(err(lambda: hp.pb(path, top=0)),
                         'ValueError: hp.pb: top must be 1 to 30')
        with self.assertRaises(Exception) as cm:
            hp.pb(os.path.join(d, 'none.txt'))
        self.assertIn('none.txt', str(cm.exception))

    def test_load_of_an_open_file_reads_one_record_per_call(self):
        # hp.load(f) of an open file reads its next record and leaves the
        # file just after that record's '.end:' line, as Heapy's load does:
        # a loop of load(f) walks a file written by several dumps, whatever
        # its mode, and a pipe too.
        path = os.path.join(self.temp_dir(), 'walk.txt')
        x = odd_set()
        stats = [x.stat, x[1:3].bytype.stat, x.stat - x[0:2].stat]
        enc = dict(encoding='utf-8', errors='surrogateescape')
        with open(path, 'w', **enc) as f:
            for i, s in enumerate(stats):
                s.dump(f)
                f.write('\n' * i)  # blank lines between records
        # Where each record's '.end:' line ends, from the bytes.
        with open(path, 'rb') as f:
            data = f.read()
        end = (END + '\n').encode()
        ends, pos = [], 0
        for _ in stats:
            pos = data.index(end, pos) + len(end)
            ends.append(pos)
        for mode, kw in (('r', enc), ('rb', {})):
            with self.subTest(mode=mode), open(path, mode, **kw) as f:
                got = []
                while True:
                    try:
                        got.append(hp.load(f))
                    except EOFError as e:
                        self.assertIn('no more stat records', str(e))
                        break
                    self.assertEqual(f.tell(), ends[len(got) - 1])
                self.assertTrue(got == stats)
                self.assertEqual([s.format for s in got],
                                 ['SetFormat', 'SetFormat', 'DiffFormat'])
        # A path keeps its meaning: the last record.
        self.assertTrue(hp.load(path) == stats[2])
        self.assertEqual(len(hp.loadall(path)), 3)
        # A pipe, read as it comes.
        r, w = os.pipe()
        with os.fdopen(w, 'w', **enc) as wf:
            stats[0].dump(wf)
            stats[1].dump(wf)
        with os.fdopen(r, 'rb') as rf:
            self.assertTrue(hp.load(rf) == stats[0])
            self.assertTrue(hp.load(rf) == stats[1])
        # A record cut short after a complete one; a malformed line; a
        # reader without readline().
        buf = io.StringIO()
        stats[0].dump(buf)
        stats[1].dump(buf)
        cut = io.StringIO(buf.getvalue()[:-40])
        self.assertTrue(hp.load(cut) == stats[0])
        with self.assertRaises(ValueError) as cm:
            hp.load(cut)
        self.assertIn("has no '.end:' line", str(cm.exception))
        with self.assertRaises(ValueError) as cm:
            hp.load(io.StringIO('\n\nx\n'))
        self.assertIn('at line 3', str(cm.exception))

        class OnlyRead:

            def read(self, n=-1):  # pylint: disable=unused-argument
                return ''

        with self.assertRaises(TypeError) as cm:
            hp.load(OnlyRead())
        self.assertIn('readline', str(cm.exception))

    def test_load_and_dump_errors_are_clear(self):
        d = self.temp_dir()
        p = os.path.join(d, 'f.txt')
        s = hp.heap().stat

        def raised(f, *a):
            """The type of what f(*a) raises and its message."""
            try:
                f(*a)
            except Exception as e:  # pylint: disable=broad-except
                return type(e).__name__, str(e)
            return 'no error', ''

        def check(want_type, fragment, f, *a):
            got_type, message = raised(f, *a)
            self.assertEqual(got_type, want_type, message)
            self.assertIn(fragment, message)

        check('FileNotFoundError', 'missing', hp.load,
              os.path.join(d, 'missing'))
        open(p, 'w').close()  # pylint: disable=consider-using-with
        check('ValueError', 'no stat record found', hp.load, p)
        with open(p, 'w') as f:
            f.write('.loader: _load_stat\n.format: SetFormat\n.count: x\n')
        check(
            'ValueError', "malformed stat record at line 3: '.count:' needs a"
            " number, got 'x' (in '" + p + "')", hp.load, p)
        s.dump(p, 'w')
        with open(p) as f:
            cut = f.read()[:-30]
        with open(p, 'w') as f:
            f.write(cut)
        check('ValueError',
              "the record that starts at line 1 has no '.end:' line", hp.load,
              p)
        check('TypeError', 'load() takes a path', hp.load, 42)
        check('TypeError', 'load() takes a path', hp.loadall, None)
        check('IsADirectoryError', 'Is a directory', s.dump, d)
        check('ValueError', "mode is 'a' (append, the default) or 'w'", s.dump,
              p, 'x')
        check('TypeError', 'dump() takes a path', s.dump, 3.5)
        check('TypeError', 'to_json() takes a path', s.to_json, 3.5)

    def test_file_errors_name_their_py_file_and_say_what_went_wrong(self):
        # The files are Python compiled into the binary from
        # glue/module/python/stat_files.py, whose tracebacks name it; its
        # messages are those of the C++ it replaced, to the letter.
        d = self.temp_dir()
        p = os.path.join(d, 'f.txt')
        s = hp.heap().stat
        # Not assertRaises: it drops the exception's traceback.
        frames = None
        try:
            hp.load(os.path.join(d, 'missing'))
        except FileNotFoundError as e:
            frames = traceback.extract_tb(e.__traceback__)
        self.assertIsNotNone(frames, 'hp.load raised no FileNotFoundError')
        self.assertEqual((frames[-1].filename, frames[-1].name),
                         ('glue/module/python/stat_files.py', 'path_chunks'))

        class NoReadline:

            def read(self, n=-1):  # pylint: disable=unused-argument
                return ''

        class BadPath:

            def __fspath__(self):
                raise RuntimeError('no path')

        def shown(f):
            return err(f).replace(d, 'D')

        b = io.BytesIO()
        cases = [
            (lambda: hp.load(os.path.join(d, 'missing')),
             "FileNotFoundError: [Errno 2] No such file or directory:"
             " 'D/missing'"),
            (lambda: hp.load(os.fsencode(os.path.join(d, 'missing'))),
             "FileNotFoundError: [Errno 2] No such file or directory:"
             " b'D/missing'"),
            (lambda: hp.load(d),
             "IsADirectoryError: [Errno 21] Is a directory: 'D'"),
            (lambda: s.dump(d),
             "IsADirectoryError: [Errno 21] Is a directory: 'D'"),
            (lambda: hp.load('/dev/null'),
             "ValueError: load(): '/dev/null' is a character device, not a"
             " regular file; load(..., special=True) reads it anyway"
             " (bounded: stops at the first line or record past the"
             " limits)"),
            (lambda: hp.load('a\0b'), 'ValueError: embedded null byte'),
            (lambda: hp.load(42),
             "TypeError: load() takes a path (str, bytes, os.PathLike), an"
             " open file, or the text of a dump (starting '.loader:'), not"
             " int"),
            (lambda: hp.loadall(BadPath()),
             "TypeError: load() takes a path (str, bytes, os.PathLike), an"
             " open file, or the text of a dump (starting '.loader:'), not"
             " BadPath"),
            (lambda: s.dump(3.5),
             'TypeError: dump() takes a path (str, bytes, os.PathLike) or an'
             ' open file, not float'),
            (lambda: s.to_json(s),
             'TypeError: to_json() takes a path (str, bytes, os.PathLike) or'
             ' an open file, not annex.Stat'),
            (lambda: hp.load(NoReadline()),
             'TypeError: load() reads an open file one record at a time with'
             ' readline(), which NoReadline lacks; hp.loadall(f) reads it'
             ' whole'),
            (lambda: hp.load(io.BytesIO()),
             'EOFError: load(): no more stat records in the file (it is at'
             ' its end)'),
            (lambda: hp.loadall(io.StringIO('.loader: x')),
             "ValueError: malformed stat record at line 1: unknown loader 'x'"
             " (stats use _load_stat) (in the file)"),
            (lambda: s.dump(b), 'no error'),
            (lambda: s.dump(pathlib.Path(p), 'w'), 'no error'),
        ]
        self.assertEqual([shown(f) for f, _ in cases],
                         [want for _, want in cases])
        self.assertEqual(hp.load(io.BytesIO(b.getvalue())).count, s.count)
        self.assertEqual(hp.load(pathlib.Path(p)).count, s.count)
        with open(p, 'w') as f:
            f.write('.loader: _load_stat\n.count: x\n')
        self.assertEqual(
            shown(lambda: hp.loadall(p)),
            "ValueError: malformed stat record at line 2: '.count:' needs a"
            " number, got 'x' (in 'D/f.txt')")

    def test_load_of_huge_or_endless_input_stays_within_a_fixed_memory_bound(
            self):
        # hp.load reads as a stream with bounds: devices and FIFOs are
        # refused unless asked for, a line or a record past the limits ends
        # the reading with a clear error, and the process's peak RSS (VmHWM,
        # reset through /proc/self/clear_refs before each case) grows by far
        # less than the input, whatever its size. Sparse files make the huge
        # inputs cheap. ASan's allocator adds redzones to every block and
        # keeps freed blocks in quarantine, so the same reads peak higher
        # there.
        with open('/proc/self/maps') as f:
            asan = 'libasan' in f.read()
        bound = (96 if asan else 48) << 20
        d = self.temp_dir()
        page = os.sysconf('SC_PAGE_SIZE')

        def rss():
            with open('/proc/self/statm') as f:
                return int(f.read().split()[1]) * page

        def peak():
            with open('/proc/self/status') as f:
                for line in f:
                    if line.startswith('VmHWM:'):
                        return int(line.split()[1]) * 1024
            raise AssertionError('no VmHWM in /proc/self/status')

        def reset_peak():
            try:
                with open('/proc/self/clear_refs', 'w') as f:
                    f.write('5')
                return True
            except OSError:
                return False

        def check(name, want_type, fragment, f, *a, **k):
            with self.subTest(case=name):
                gc.collect()
                has_peak = reset_peak()
                before = rss()
                try:
                    f(*a, **k)
                    got_type, message = 'no error', ''
                except Exception as e:  # pylint: disable=broad-except
                    got_type, message = type(e).__name__, str(e)
                grew = (peak() if has_peak else rss()) - before
                self.assertEqual(got_type, want_type, message)
                self.assertIn(fragment, message)
                self.assertLess(grew, bound)

        check(
            'device', 'ValueError', 'a character device, not a regular file;'
            ' load(..., special=True)', hp.load, '/dev/zero')
        check('device asked', 'ValueError',
              'the line is longer than 1048576 bytes', hp.load, '/dev/zero',
              special=True)
        fifo = os.path.join(d, 'fifo')
        os.mkfifo(fifo)
        check('fifo', 'ValueError', 'a FIFO (named pipe), not a regular file',
              hp.loadall, fifo)
        # No writer: the read ends at once (no hang), the input is empty.
        check('fifo asked', 'ValueError', 'no stat record found', hp.load,
              fifo, special=True)
        big = os.path.join(d, 'big')
        with open(big, 'w') as f:
            f.write('x' * 100)
            f.truncate(4 << 30)  # one 4 GiB line, sparse
        check('one line', 'ValueError',
              'malformed stat record at line 1: the line is longer', hp.load,
              big)
        with open(big, 'w') as f:
            f.write('x\n')
            f.truncate(4 << 30)  # invalid at once, then 4 GiB
        check(
            'bad first line', 'ValueError',
            "malformed stat record at line 1: expected '.loader: _load_stat'"
            " to start a record, got 'x'", hp.load, big)
        head = ('.loader: _load_stat\n.format: SetFormat\n.count: 1\n'
                '.size: 1\n.kindheader: Type\n.numrows: 100000000\n')
        with open(big, 'w') as f:
            f.write(head)
            f.write('.r: 1 1 k\n' * (2 << 20))  # 20 MiB of valid rows
        check(
            'rows', 'ValueError', 'the record that starts at line 1 needs'
            ' more than 33554432 bytes (the record size limit)', hp.load, big)
        one = (head.replace('100000000', '1') + '.r: 1 1 k\n' + END + '\n')
        with open(big, 'w') as f:
            f.write(one * 200000)  # 30 MB of complete records
        loaded = []
        check('records', 'no error', '', lambda: loaded.append(hp.load(big)))
        self.assertEqual(loaded[0].rows, [('k', 1, 1)])
        check('all records', 'ValueError', 'for all records of one source',
              hp.loadall, big)
        check('text', 'ValueError', 'the line is longer', hp.load,
              '.loader: _load_stat\n' + 'y' * (2 << 20))

    def test_json_export_parses_with_the_schema(self):
        x = odd_set()
        s = x.stat
        j = json.loads(s.json())
        self.assertEqual(
            (j['schema'], j['format'], j['classifier'], j['kind_header']),
            ('annex.stat/1', 'partition', 'Clodo',
             'Kind (class / dict of class)'))
        self.assertEqual(j['count'], s.count)
        self.assertEqual(j['size'], s.size)
        self.assertEqual(
            [(r['kind'], r['count'], r['size']) for r in j['rows']], s.rows)
        self.assertEqual([r['index'] for r in j['rows']], list(range(len(s))))
        self.assertEqual(j['rows'][-1]['cumulative_size'], s.size)
        self.assertEqual(j['rows'][-1]['cumulative_count'], s.count)
        self.assertEqual(j['rows'][1]['cumulative_size'],
                         s.rows[0][2] + s.rows[1][2])
        self.assertLess(abs(j['time_made'] - s.timemade), 1e-3)
        self.assertNotIn('b_count', j)
        diff = json.loads((s - s[1:]).json())
        self.assertEqual(diff['format'], 'diff')
        self.assertEqual(diff['b_count'], s[1:].count)
        self.assertEqual(len(diff['rows']), 1)
        p = os.path.join(self.temp_dir(), 'x.json')
        s.to_json(p)
        with open(p) as f:
            self.assertEqual(json.load(f), j)
        self.assertTrue(s.json().isascii())

    def test_more_pages_ten_rows_at_a_time_as_heapy(self):
        # 25 kinds of different sizes: Heapy pages them 10 at a time.
        annex_test.target_exec("""
page_objs = []
for _i in range(25):
    _t = type('Page%02d' % _i, (), {'__slots__': ('v',)})
    page_objs += [_t() for _ in range(_i + 1)]
page_ids = [id(o) for o in page_objs]
""")
        x = hp.idset(annex_test.target_eval('page_ids'))
        lines = x.all.splitlines()
        label, header, rows = lines[0], lines[1], lines[2:]
        hint = "<%d more rows. Type e.g. '_.more' to view.>"
        self.assertEqual(len(rows), 25)
        self.assertEqual(repr(x),
                         '\n'.join([label, header] + rows[:10] + [hint % 15]))
        self.assertEqual(repr(x.more),
                         '\n'.join([header] + rows[10:20] + [hint % 5]))
        self.assertEqual(repr(x.more.more), '\n'.join([header] + rows[20:]))
        self.assertEqual(repr(x.more.more.more), '')
        self.assertEqual(type(x.more).__name__, 'More')
        self.assertEqual(repr(x.stat.more), repr(x.more))
        self.assertTrue(x.more.all == x.all)
        self.assertTrue(x.stat.all == x.all)
        self.assertTrue(x.more.stat == x.stat)
