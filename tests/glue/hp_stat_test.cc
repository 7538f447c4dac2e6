// hp's stats through the public API: x.stat against the target's own
// counts, differences, dump files read back exactly, JSON, Heapy's paging
// (.more), and HeapView::Summary for hosts.
#include <Python.h>

#include <string>

#include "glue/annex_access.h"
#include "glue/heap_view.h"
#include "glue/session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/testing/python_main.h"
#include "tests/testing/python_snippets.h"

namespace annex {
namespace {

using ::annex::testing::kErrPrelude;
using ::annex::testing::RunTargetCode;
using ::annex::testing::TargetLong;
using ::annex::testing::TargetStr;

std::string Exec(Monitor& m, const std::string& code) {
  auto out = m.ExecInAnnex(code);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

// Objects of kinds whose names have spaces, quotes, a backslash, a line
// feed and non-ASCII letters; `odd_ids` are their ids. Each kind has its
// own count, so the rows are known.
constexpr char kOddKinds[] = R"py(
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
)py";

class HpStatTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(RunTargetCode(kOddKinds)); }
  void SetUp() override { ASSERT_TRUE(monitor_.Start().ok()); }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }
  std::string OddIds() { return TargetStr("repr(odd_ids)"); }
  Monitor monitor_;
};

TEST_F(HpStatTest, StatHasTheRowsOfThePartitionAndTheTargetsCounts) {
  std::string out =
      Exec(monitor_, "x = hp.idset(" + OddIds() +
                         ")\n"
                         "s = x.stat\n"
                         "print(type(s).__name__, repr(s) == repr(x), "
                         "s.count == len(x), s.size == x.size, len(s), s.er)\n"
                         "print(repr(sorted(s.rows)))\n"
                         "print(x.bytype.stat.kindheader, x.bysize.stat.er)\n");
  std::string expected_rows = TargetStr("repr(expected_rows(odd_objs))");
  EXPECT_EQ(out,
            "Stat True True True 5 Clodo\n" + expected_rows + "\nType Size\n");
}

TEST_F(HpStatTest, StatRowsIndexAndCompare) {
  std::string out = Exec(
      monitor_,
      "x = hp.idset(" + OddIds() +
          ")\n"
          "s = x.stat\n"
          "print(s[0].rows == s.rows[:1], s[0].count == s.rows[0][1],\n"
          "      s[-1].rows == s.rows[-1:], s[1:3].rows == s.rows[1:3],\n"
          "      s[1:3].size == s.rows[1][2] + s.rows[2][2], len(s[::2]))\n"
          "print(s == x.stat, s == hp.idset(" +
          OddIds() +
          ").stat, s != s[1:],\n"
          "      s == x.bytype.stat, s == 1)\n"
          "for bad in (100, 'a'):\n"
          "    try:\n"
          "        s[bad]\n"
          "    except (IndexError, TypeError) as e:\n"
          "        print(type(e).__name__, e)\n"
          "try:\n"
          "    hash(s)\n"
          "except TypeError:\n"
          "    print('unhashable')\n");
  EXPECT_EQ(out,
            "True True True True True 3\n"
            "True True True False False\n"
            "IndexError Stat index out of range.\n"
            "TypeError Stat indices must be integers or slices.\n"
            "unhashable\n");
}

TEST_F(HpStatTest, DifferenceShowsWhatGrewByKind) {
  // 64 warm-up instances first: on 3.11/3.12 a class's first ones get
  // larger attribute values blocks (docs/hp.md, "Sizes").
  ASSERT_TRUE(RunTargetCode(R"(
exec(compile('''
class Grown:
    def __init__(self, i): self.i = i
def grow(out, n):
    for k in range(n):
        out[k] = Grown(k)  # a cached small int: no int is allocated
grow([None] * 64, 64)
grow_keep = []
''', 'grow_fixture.py', 'exec'))
)"));
  // Kept between the two calls in the annex's builtins (each call has a
  // fresh namespace; the annex ends with the test).
  Exec(monitor_, "import builtins\nbuiltins.stat_h1 = hp.heap()\n");
  // The 150 new instances, made while tracemalloc traces: the allocator's
  // bytes for them beyond their sys.getsizeof are their attribute values
  // blocks, which their sizes count.
  ASSERT_TRUE(RunTargetCode(R"(
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
)"));
  const long blocks = TargetLong("grow_blocks");
  EXPECT_GE(blocks, 150 * 2 * 8);  // at least the one attribute's slots
  const long size =
      TargetLong("sum(__import__('sys').getsizeof(g) for g in grow_keep)") +
      blocks;
  std::string out = Exec(
      monitor_,
      "h1 = stat_h1\n"
      "h2 = hp.heap()\n"
      "d = h2.stat - h1.stat\n"
      "print(type(d).__name__, d.format, repr(d).splitlines()[0])\n"
      "row = [r for r in d.rows if r[0] == '__main__.Grown'][0]\n"
      "print(row[1], row[2])\n"
      "print(d.b_count == h1.count, d.b_size == h1.size,\n"
      "      d.count == h2.count - h1.count, d.size == h2.size - h1.size)\n"
      "print(h2.diff(h1) == d, h1.stat.b_count)\n"
      // Rows by absolute size, largest first.
      "print([abs(r[2]) for r in d.rows] == "
      "sorted((abs(r[2]) for r in d.rows), reverse=True))\n"
      "try:\n"
      "    h2.stat - h1.bytype.stat\n"
      "except ValueError as e:\n"
      "    print('ValueError', str(e)[:29])\n"
      "try:\n"
      "    h2.stat - 1\n"
      "except TypeError as e:\n"
      "    print('TypeError', str(e)[:49])\n"
      "import builtins\n"
      "del builtins.stat_h1\n");
  EXPECT_EQ(
      out,
      "Stat DiffFormat Summary of difference operation (A-B).\n"
      "150 " +
          std::to_string(size) +
          "\n"
          "True True True True\n"
          "True None\n"
          "True\n"
          "ValueError Mismatching table kind header\n"
          "TypeError Can only take difference with other Stat instance\n");
}

TEST_F(HpStatTest, DumpAndLoadReadBackExactly) {
  std::string out = Exec(
      monitor_,
      "import os, pathlib, tempfile\n"
      "d = tempfile.mkdtemp()\n"
      "path = os.path.join(d, 'stats.txt')\n"
      "x = hp.idset(" +
          OddIds() +
          ")\n"
          "s1 = x.stat\n"
          "s2 = x[1:3].bytype.stat\n"
          "s1.dump(path)\n"
          "x[1:3].bytype.dump(path)\n"  // the IdSet shorthand
          "diff = s1 - x[0:2].stat\n"
          "diff.dump(pathlib.Path(path))\n"
          "print(hp.load(path) == diff, hp.load(path).format)\n"
          "all3 = hp.loadall(path)\n"
          "print(len(all3), all3[0] == s1, all3[1] == s2, all3[2] == diff)\n"
          "print(all3[0].rows == s1.rows, all3[0].timemade == s1.timemade,\n"
          "      all3[0].kindheader == s1.kindheader, all3[1].er, "
          "all3[2].b_size == "
          "diff.b_size)\n"
          // An open file (from its position), the text, a bytes path.
          "with open(path, encoding='utf-8', errors='surrogateescape') as f:\n"
          "    text = f.read()\n"
          "with open(path, 'rb') as f:\n"
          "    print(hp.load(f) == s1, len(hp.loadall(f)))\n"
          "print(hp.load(text) == diff, len(hp.loadall(text)),\n"
          "      hp.load(os.fsencode(path)) == diff)\n"
          // The text is Heapy's format: one line per field and row.
          "lines = text.split('\\n')\n"
          "print(lines.count('.loader: _load_stat'), "
          "lines.count('.end: .loader: _load_stat'),\n"
          "      '\\\\n' in text, 'line\\nfeed' in text)\n"
          "s1.dump(path, 'w')\n"
          "print(len(hp.loadall(path)), hp.load(path) == s1)\n"
          "os.remove(path)\n"
          "os.rmdir(d)\n");
  EXPECT_EQ(out,
            "True DiffFormat\n"
            "3 True True True\n"
            "True True True Type True\n"
            "True 2\n"
            "True 3 True\n"
            "3 3 True False\n"
            "1 True\n");
}

// hp.pb(file): Heapy's profile browser as `annex report`'s page, written
// next to the records (or to out=), from the records x.dump wrote.
TEST_F(HpStatTest, PbWritesTheReportPageOfTheRecords) {
  std::string out = Exec(
      monitor_,
      "import os, tempfile\n"
      "d = tempfile.mkdtemp()\n"
      "path = os.path.join(d, 'stats.txt')\n"
      "x = hp.idset(" +
          OddIds() +
          ")\n"
          "x.bytype.dump(path)\n"
          "x[0:2].bytype.dump(path)\n"
          "print(hp.pb(path) is None)\n"
          "page = open(path + '.html', encoding='utf-8').read()\n"
          "print(page.startswith('<!DOCTYPE html>'), 'records-data' in page,\n"
          "      page.count('<svg') > 0)\n"
          "other = os.path.join(d, 'page.html')\n"
          "hp.pb([path], out=other, title='T<1>', top=3)\n"
          "print('T&lt;1&gt;' in open(other, encoding='utf-8').read())\n"
          "def show(f):\n"
          "    try: f()\n"
          "    except Exception as e: print(type(e).__name__ + ':', e)\n"
          "show(lambda: hp.pb(3))\n"
          "show(lambda: hp.pb([]))\n"
          "show(lambda: hp.pb(path, top=0))\n"
          "show(lambda: hp.pb(os.path.join(d, 'none.txt')))\n"
          "for f in os.listdir(d): os.remove(os.path.join(d, f))\n"
          "os.rmdir(d)\n");
  EXPECT_THAT(out, ::testing::StartsWith("annex report: 2 records -> "));
  EXPECT_THAT(out, ::testing::HasSubstr(
                       "True\nTrue True True\nannex report: 2 records -> "));
  EXPECT_THAT(out, ::testing::HasSubstr(
                       "page.html\nTrue\n"
                       "TypeError: hp.pb: file must be a path (str) or a list "
                       "of paths of record files (x.dump, annex record)\n"
                       "ValueError: hp.pb: no record file given\n"
                       "ValueError: hp.pb: top must be 1 to 30\n"));
  EXPECT_THAT(out, ::testing::HasSubstr("none.txt"));
}

// hp.load(f) of an open file reads its next record and leaves the file
// just after that record's '.end:' line, as Heapy's load does: a loop of
// load(f) walks a file written by several dumps, whatever its mode, and a
// pipe too.
TEST_F(HpStatTest, LoadOfAnOpenFileReadsOneRecordPerCall) {
  std::string out =
      Exec(monitor_,
           "import io, os, tempfile\n"
           "d = tempfile.mkdtemp()\n"
           "path = os.path.join(d, 'walk.txt')\n"
           "x = hp.idset(" +
               OddIds() +
               ")\n"
               "stats = [x.stat, x[1:3].bytype.stat, x.stat - x[0:2].stat]\n"
               "enc = dict(encoding='utf-8', errors='surrogateescape')\n"
               "with open(path, 'w', **enc) as f:\n"
               "    for i, s in enumerate(stats):\n"
               "        s.dump(f)\n"
               "        f.write('\\n' * i)\n"  // blank lines between records
               // Where each record's '.end:' line ends, from the bytes.
               "data = open(path, 'rb').read()\n"
               "end = b'.end: .loader: _load_stat\\n'\n"
               "ends, pos = [], 0\n"
               "for _ in stats:\n"
               "    pos = data.index(end, pos) + len(end)\n"
               "    ends.append(pos)\n"
               "for mode, kw in (('r', enc), ('rb', {})):\n"
               "    with open(path, mode, **kw) as f:\n"
               "        got = []\n"
               "        while True:\n"
               "            try:\n"
               "                got.append(hp.load(f))\n"
               "            except EOFError as e:\n"
               "                print('EOFError', 'no more stat records' in "
               "str(e))\n"
               "                break\n"
               "            print(f.tell() == ends[len(got) - 1], end=' ')\n"
               "        print(got == stats, [s.format for s in got])\n"
               // A path keeps its meaning: the last record.
               "print(hp.load(path) == stats[2], len(hp.loadall(path)))\n"
               // A pipe, read as it comes.
               "r, w = os.pipe()\n"
               "with os.fdopen(w, 'w', **enc) as wf:\n"
               "    stats[0].dump(wf)\n"
               "    stats[1].dump(wf)\n"
               "with os.fdopen(r, 'rb') as rf:\n"
               "    print(hp.load(rf) == stats[0], hp.load(rf) == stats[1])\n"
               // A record cut short after a complete one; a malformed line; a
               // reader without readline().
               "buf = io.StringIO()\n"
               "stats[0].dump(buf)\n"
               "stats[1].dump(buf)\n"
               "cut = io.StringIO(buf.getvalue()[:-40])\n"
               "print(hp.load(cut) == stats[0], end=' ')\n"
               "try:\n"
               "    hp.load(cut)\n"
               "except ValueError as e:\n"
               "    print('ValueError', \"has no '.end:' line\" in str(e))\n"
               "try:\n"
               "    hp.load(io.StringIO('\\n\\nx\\n'))\n"
               "except ValueError as e:\n"
               "    print('ValueError', 'at line 3' in str(e))\n"
               "class OnlyRead:\n"
               "    def read(self, n=-1): return ''\n"
               "try:\n"
               "    hp.load(OnlyRead())\n"
               "except TypeError as e:\n"
               "    print('TypeError', 'readline' in str(e))\n"
               "os.remove(path)\n"
               "os.rmdir(d)\n");
  EXPECT_EQ(out,
            "True True True EOFError True\n"
            "True ['SetFormat', 'SetFormat', 'DiffFormat']\n"
            "True True True EOFError True\n"
            "True ['SetFormat', 'SetFormat', 'DiffFormat']\n"
            "True 3\n"
            "True True\n"
            "True ValueError True\n"
            "ValueError True\n"
            "TypeError True\n");
}

TEST_F(HpStatTest, LoadAndDumpErrorsAreClear) {
  std::string out = Exec(
      monitor_,
      "import os, tempfile\n"
      "d = tempfile.mkdtemp()\n"
      "p = os.path.join(d, 'f.txt')\n"
      "s = hp.heap().stat\n"
      "def show(fragment, f, *a):\n"
      "    try:\n"
      "        f(*a)\n"
      "        print('no error')\n"
      "    except Exception as e:\n"
      "        print(type(e).__name__, fragment in str(e) or str(e))\n"
      "show('missing', hp.load, os.path.join(d, 'missing'))\n"
      "open(p, 'w').close()\n"
      "show('no stat record found', hp.load, p)\n"
      "with open(p, 'w') as f:\n"
      "    f.write('.loader: _load_stat\\n.format: SetFormat\\n.count: x\\n')\n"
      "show(\"malformed stat record at line 3: '.count:' needs a number, \"\n"
      "     \"got 'x' (in '\" + p + \"')\", hp.load, p)\n"
      "s.dump(p, 'w')\n"
      "with open(p) as f:\n"
      "    cut = f.read()[:-30]\n"
      "with open(p, 'w') as f:\n"
      "    f.write(cut)\n"
      "show(\"the record that starts at line 1 has no '.end:' line\", hp.load, "
      "p)\n"
      "show('load() takes a path', hp.load, 42)\n"
      "show('load() takes a path', hp.loadall, None)\n"
      "show('Is a directory', s.dump, d)\n"
      "show(\"mode is 'a' (append, the default) or 'w'\", s.dump, p, 'x')\n"
      "show('dump() takes a path', s.dump, 3.5)\n"
      "show('to_json() takes a path', s.to_json, 3.5)\n"
      "os.remove(p)\n"
      "os.rmdir(d)\n");
  EXPECT_EQ(out,
            "FileNotFoundError True\n"
            "ValueError True\n"
            "ValueError True\n"
            "ValueError True\n"
            "TypeError True\n"
            "TypeError True\n"
            "IsADirectoryError True\n"
            "ValueError True\n"
            "TypeError True\n"
            "TypeError True\n");
}

// The files are Python compiled into the binary from
// glue/module/python/stat_files.py, whose tracebacks name it; its messages are
// those of the C++ it replaced, to the letter.
TEST_F(HpStatTest, FileErrorsNameTheirPyFileAndSayWhatWentWrong) {
  std::string out = Exec(
      monitor_,
      std::string(kErrPrelude) +
          "import annex, io, os, pathlib, tempfile, traceback\n"
          "d = tempfile.mkdtemp()\n"
          "p = os.path.join(d, 'f.txt')\n"
          "s = hp.heap().stat\n"
          "def show(f):\n"
          "    print(err(f).replace(d, 'D'))\n"
          "try:\n"
          "    hp.load(os.path.join(d, 'missing'))\n"
          "except FileNotFoundError as e:\n"
          "    tb = traceback.extract_tb(e.__traceback__)[-1]\n"
          "    print(tb.filename, tb.name)\n"
          "class NoReadline:\n"
          "    def read(self, n=-1):\n"
          "        return ''\n"
          "class BadPath:\n"
          "    def __fspath__(self):\n"
          "        raise RuntimeError('no path')\n"
          "show(lambda: hp.load(os.path.join(d, 'missing')))\n"
          "show(lambda: hp.load(os.fsencode(os.path.join(d, 'missing'))))\n"
          "show(lambda: hp.load(d))\n"
          "show(lambda: s.dump(d))\n"
          "show(lambda: hp.load('/dev/null'))\n"
          "show(lambda: hp.load('a\\0b'))\n"
          "show(lambda: hp.load(42))\n"
          "show(lambda: hp.loadall(BadPath()))\n"
          "show(lambda: s.dump(3.5))\n"
          "show(lambda: s.to_json(s))\n"
          "show(lambda: hp.load(NoReadline()))\n"
          "show(lambda: hp.load(io.BytesIO()))\n"
          "show(lambda: hp.loadall(io.StringIO('.loader: x')))\n"
          "b = io.BytesIO()\n"
          "show(lambda: s.dump(b))\n"
          "print(hp.load(io.BytesIO(b.getvalue())).count == s.count)\n"
          "show(lambda: s.dump(pathlib.Path(p), 'w'))\n"
          "print(hp.load(pathlib.Path(p)).count == s.count)\n"
          "with open(p, 'w') as f:\n"
          "    f.write('.loader: _load_stat\\n.count: x\\n')\n"
          "show(lambda: hp.loadall(p))\n"
          "os.remove(p)\n"
          "os.rmdir(d)\n");
  EXPECT_EQ(
      out,
      "glue/module/python/stat_files.py path_chunks\n"
      "FileNotFoundError: [Errno 2] No such file or directory: 'D/missing'\n"
      "FileNotFoundError: [Errno 2] No such file or directory: b'D/missing'\n"
      "IsADirectoryError: [Errno 21] Is a directory: 'D'\n"
      "IsADirectoryError: [Errno 21] Is a directory: 'D'\n"
      "ValueError: load(): '/dev/null' is a character device, not a regular "
      "file; load(..., special=True) reads it anyway (bounded: stops at the "
      "first line or record past the limits)\n"
      "ValueError: embedded null byte\n"
      "TypeError: load() takes a path (str, bytes, os.PathLike), an open "
      "file, or the text of a dump (starting '.loader:'), not int\n"
      "TypeError: load() takes a path (str, bytes, os.PathLike), an open "
      "file, or the text of a dump (starting '.loader:'), not BadPath\n"
      "TypeError: dump() takes a path (str, bytes, os.PathLike) or an open "
      "file, not float\n"
      "TypeError: to_json() takes a path (str, bytes, os.PathLike) or an "
      "open file, not annex.Stat\n"
      "TypeError: load() reads an open file one record at a time with "
      "readline(), which NoReadline lacks; hp.loadall(f) reads it whole\n"
      "EOFError: load(): no more stat records in the file (it is at its "
      "end)\n"
      "ValueError: malformed stat record at line 1: unknown loader 'x' "
      "(stats use _load_stat) (in the file)\n"
      "no error\nTrue\nno error\nTrue\n"
      "ValueError: malformed stat record at line 2: '.count:' needs a "
      "number, got 'x' (in 'D/f.txt')\n");
}

// hp.load reads as a stream with bounds: devices and FIFOs are refused
// unless asked for, a line or a record past the limits ends the reading
// with a clear error, and the process's peak RSS (VmHWM, reset through
// /proc/self/clear_refs before each case) grows by far less than the
// input, whatever its size. Sparse files make the huge inputs cheap.
TEST_F(HpStatTest, LoadOfHugeOrEndlessInputStaysWithinAFixedMemoryBound) {
  // ASan's allocator adds redzones to every block and keeps freed blocks
  // in quarantine, so the same reads peak higher there.
#if defined(__SANITIZE_ADDRESS__)
  const std::string bound = "BOUND = 96 << 20\n";
#else
  const std::string bound = "BOUND = 48 << 20\n";
#endif
  std::string out = Exec(
      monitor_,
      bound +
          "import os, tempfile\n"
          "d = tempfile.mkdtemp()\n"
          "page = os.sysconf('SC_PAGE_SIZE')\n"
          "def rss():\n"
          "    with open('/proc/self/statm') as f:\n"
          "        return int(f.read().split()[1]) * page\n"
          "def peak():\n"
          "    with open('/proc/self/status') as f:\n"
          "        for line in f:\n"
          "            if line.startswith('VmHWM:'):\n"
          "                return int(line.split()[1]) * 1024\n"
          "def reset_peak():\n"
          "    try:\n"
          "        with open('/proc/self/clear_refs', 'w') as f:\n"
          "            f.write('5')\n"
          "        return True\n"
          "    except OSError:\n"
          "        return False\n"
          "def show(name, fragment, f, *a, **k):\n"
          "    import gc; gc.collect()\n"
          "    has_peak = reset_peak()\n"
          "    before = rss()\n"
          "    try:\n"
          "        f(*a, **k)\n"
          "        result = 'no error'\n"
          "    except Exception as e:\n"
          "        result = type(e).__name__ + ' ' + str(fragment in str(e) or "
          "str(e))\n"
          "    grew = (peak() if has_peak else rss()) - before\n"
          "    print(name, result, grew < BOUND or grew)\n"
          "show('device', 'a character device, not a regular file; load(..., "
          "special=True)', hp.load, '/dev/zero')\n"
          "show('device asked', 'the line is longer than 1048576 bytes',\n"
          "     hp.load, '/dev/zero', special=True)\n"
          "fifo = os.path.join(d, 'fifo')\n"
          "os.mkfifo(fifo)\n"
          "show('fifo', 'a FIFO (named pipe), not a regular file', hp.loadall, "
          "fifo)\n"
          // No writer: the read ends at once (no hang), the input is empty.
          "show('fifo asked', 'no stat record found', hp.load, fifo, "
          "special=True)\n"
          "big = os.path.join(d, 'big')\n"
          "with open(big, 'w') as f:\n"
          "    f.write('x' * 100)\n"
          "    f.truncate(4 << 30)\n"  // one 4 GiB line, sparse
          "show('one line', 'malformed stat record at line 1: the line is "
          "longer', hp.load, big)\n"
          "with open(big, 'w') as f:\n"
          "    f.write('x\\n')\n"
          "    f.truncate(4 << 30)\n"  // invalid at once, then 4 GiB
          "show('bad first line', \"malformed stat record at line 1: expected "
          "'.loader: _load_stat' to start a record, got 'x'\", hp.load, big)\n"
          "head = ('.loader: _load_stat\\n.format: SetFormat\\n.count: 1\\n'\n"
          "        '.size: 1\\n.kindheader: Type\\n.numrows: 100000000\\n')\n"
          "with open(big, 'w') as f:\n"
          "    f.write(head)\n"
          "    f.write('.r: 1 1 k\\n' * (2 << 20))\n"  // 20 MiB of valid rows
          "show('rows', 'the record that starts at line 1 needs more than "
          "33554432 bytes (the record size limit)', hp.load, big)\n"
          "one = (head.replace('100000000', '1') + '.r: 1 1 k\\n' +\n"
          "       '.end: .loader: _load_stat\\n')\n"
          "with open(big, 'w') as f:\n"
          "    f.write(one * 200000)\n"  // 30 MB of complete records
          "show('records', 'no', lambda: print(hp.load(big).rows, end=' '))\n"
          "show('all records', 'for all records of one source', hp.loadall, "
          "big)\n"
          "show('text', 'the line is longer', hp.load,\n"
          "     '.loader: _load_stat\\n' + 'y' * (2 << 20))\n"
          "for p in (fifo, big):\n"
          "    os.remove(p)\n"
          "os.rmdir(d)\n");
  EXPECT_EQ(out,
            "device ValueError True True\n"
            "device asked ValueError True True\n"
            "fifo ValueError True True\n"
            "fifo asked ValueError True True\n"
            "one line ValueError True True\n"
            "bad first line ValueError True True\n"
            "rows ValueError True True\n"
            "[('k', 1, 1)] records no error True\n"
            "all records ValueError True True\n"
            "text ValueError True True\n");
}

TEST_F(HpStatTest, JsonExportParsesWithTheSchema) {
  std::string out = Exec(
      monitor_,
      "import json, os, tempfile\n"
      "x = hp.idset(" +
          OddIds() +
          ")\n"
          "s = x.stat\n"
          "j = json.loads(s.json())\n"
          "print(j['schema'], j['format'], j['classifier'], j['kind_header'])\n"
          "print(j['count'] == s.count, j['size'] == s.size,\n"
          "     [(r['kind'], r['count'], r['size']) for r in j['rows']] == "
          "s.rows,\n"
          "     [r['index'] for r in j['rows']] == list(range(len(s))),\n"
          "     j['rows'][-1]['cumulative_size'] == s.size,\n"
          "     j['rows'][-1]['cumulative_count'] == s.count,\n"
          "     j['rows'][1]['cumulative_size'] == s.rows[0][2] + "
          "s.rows[1][2],\n"
          "     abs(j['time_made'] - s.timemade) < 1e-3, 'b_count' in j)\n"
          "d = json.loads((s - s[1:]).json())\n"
          "print(d['format'], d['b_count'] == s[1:].count, len(d['rows']))\n"
          "p = os.path.join(tempfile.mkdtemp(), 'x.json')\n"
          "s.to_json(p)\n"
          "with open(p) as f:\n"
          "    print(json.load(f) == j)\n"
          "os.remove(p)\n"
          "os.rmdir(os.path.dirname(p))\n"
          "print(s.json().isascii())\n");
  EXPECT_EQ(out,
            "annex.stat/1 partition Clodo Kind (class / dict of class)\n"
            "True True True True True True True True False\n"
            "diff True 1\n"
            "True\n"
            "True\n");
}

// 25 kinds of different sizes: Heapy pages them 10 at a time.
TEST_F(HpStatTest, MorePagesTenRowsAtATimeAsHeapy) {
  ASSERT_TRUE(RunTargetCode(
      "page_objs = []\n"
      "for _i in range(25):\n"
      "    _t = type('Page%02d' % _i, (), {'__slots__': ('v',)})\n"
      "    page_objs += [_t() for _ in range(_i + 1)]\n"
      "page_ids = [id(o) for o in page_objs]\n"));
  std::string out =
      Exec(monitor_,
           "x = hp.idset(" + TargetStr("repr(page_ids)") +
               ")\n"
               "lines = x.all.splitlines()\n"
               "label, header, rows = lines[0], lines[1], lines[2:]\n"
               "hint = \"<%d more rows. Type e.g. '_.more' to view.>\"\n"
               "print(len(rows))\n"
               "print(repr(x) == '\\n'.join([label, header] + rows[:10] + "
               "[hint % 15]))\n"
               "print(repr(x.more) == '\\n'.join([header] + rows[10:20] + "
               "[hint % 5]))\n"
               "print(repr(x.more.more) == '\\n'.join([header] + rows[20:]))\n"
               "print(repr(x.more.more.more) == '', type(x.more).__name__)\n"
               "print(repr(x.stat.more) == repr(x.more), x.more.all == x.all,\n"
               "      x.stat.all == x.all, x.more.stat == x.stat)\n");
  EXPECT_EQ(out, "25\nTrue\nTrue\nTrue\nTrue More\nTrue True True True\n");
}

// HeapView::Summary, as a host asks it through the session on the annex
// thread: rows by kind against the target's own counts.
TEST_F(HpStatTest, SummaryForHostsCountsAsTheTarget) {
  ASSERT_TRUE(
      RunTargetCode("class SummaryKind:\n"
                    "    __slots__ = ('a', 'b')\n"
                    "summary_keep = [SummaryKind() for _ in range(321)]\n"));
  const long size =
      TargetLong("sum(__import__('sys').getsizeof(o) for o in summary_keep)");
  glue::Session* session = monitor_.session();
  ASSERT_NE(session, nullptr);
  auto access = session->Get<glue::AnnexAccess>();
  ASSERT_TRUE(access.ok()) << access.status();
  absl::StatusOr<glue::Stat> by_type = absl::UnknownError("not run");
  absl::StatusOr<glue::Stat> top = absl::UnknownError("not run");
  absl::StatusOr<glue::Stat> prod = absl::UnknownError("not run");
  ASSERT_TRUE(
      (*access)
          ->runtime()
          .Run([&](const python::ThreadStates&) {
            auto view = session->Get<glue::HeapView>();
            if (!view.ok()) return;
            by_type =
                (*view)->Summary(glue::Classifier(glue::Classifier::kType));
            top = (*view)->Summary(glue::Classifier(), 3);
            prod = (*view)->Summary(glue::Classifier(glue::Classifier::kProd));
          })
          .ok());
  ASSERT_TRUE(by_type.ok()) << by_type.status();
  EXPECT_EQ(by_type->er, "Type");
  EXPECT_EQ(by_type->kind_header, "Type");
  int64_t count = 0, bytes = 0;
  bool found = false;
  for (const glue::StatRow& r : by_type->rows) {
    count += r.count;
    bytes += r.size;
    if (r.kind == "__main__.SummaryKind") {
      found = true;
      EXPECT_EQ(r.count, 321);
      EXPECT_EQ(r.size, size);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(count, by_type->count);
  EXPECT_EQ(bytes, by_type->size);
  EXPECT_GT(by_type->time_made_us, 0);
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->er, "Clodo");
  ASSERT_EQ(top->rows.size(), 4u);  // three and <Other>
  int other = 0;
  for (const glue::StatRow& r : top->rows) other += r.kind == "<Other>";
  EXPECT_EQ(other, 1);
  // The whole heap (a second walk): totals of the same order.
  EXPECT_GT(top->count, 1000);
  EXPECT_EQ(prod.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace annex
