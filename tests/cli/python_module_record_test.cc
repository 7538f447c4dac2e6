// `import annex; annex.start(record=...)`: the Python module (this build's
// _annex.so and annex/__init__.py, laid out as tools/install.sh installs
// them) in a plain python3 process records the heap as `annex run
// --record` does, with the same settings; bad settings raise ValueError.
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "annex_python_build.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace {

using ::annex::testing::PythonModuleDir;
using ::annex::testing::RunProcess;
using ::annex::testing::WithSanitizerRuntime;
using Result = ::annex::testing::ProcessResult;

// Python defining records(), the number of complete records (lines) in
// `file` so far, and wait_records(n), which returns once there are n. The
// script needs `import time`.
std::string RecordWaits(const std::string& file) {
  return absl::StrCat(
      "def records():\n"
      "    try:\n"
      "        with open('",
      file,
      "') as f:\n"
      "            return sum(1 for l in f if l.endswith('\\n'))\n"
      "    except FileNotFoundError:\n"
      "        return 0\n"
      "def wait_records(n):\n"
      "    while records() < n:\n"
      "        time.sleep(0.02)\n");
}

TEST(PythonModuleRecordTest, StartWithRecordWritesRecordsLikeAnnexRun) {
  const std::string dir = PythonModuleDir("pyrec");
  ASSERT_FALSE(dir.empty());
  const std::string file = dir + "/heap.jsonl";
  // Grows __main__.Leaky by 1000 per step, waiting for a new record after
  // each, then stops the monitor and reads the records with json.
  const std::string script = absl::StrCat(
      "import json, os, time\n"
      "import annex\n"
      "class Leaky:\n"
      "    pass\n",
      RecordWaits(file),
      "for bad in (dict(record_interval=1), dict(record_retainers=True),\n"
      "            dict(record='x', "
      "record_format='xml'),\n"
      "            dict(record='x', record_interval=0), dict(record='x', "
      "record_top=0),\n"
      "            dict(record='x', record_max_bytes=10)):\n"
      "    try:\n"
      "        annex.start(console=False, **bad)\n"
      "    except ValueError as e:\n"
      "        print('refused:', e)\n"
      "    else:\n"
      "        raise SystemExit('accepted %r' % (bad,))\n"
      "assert not annex.running()\n"
      "annex.start(console=False, record='",
      file,
      "', record_interval=0.05,\n"
      "            record_format='jsonl', record_top=5, "
      "record_max_bytes=1 << 20,\n"
      "            record_retainers=True)\n"
      "keep = []\n"
      "wait_records(1)\n"
      "for k in range(3):\n"
      "    keep.extend(Leaky() for _ in range(1000))\n"
      "    wait_records(records() + 2)\n"
      "annex.stop()\n"
      "counts = []\n"
      "for line in open('",
      file,
      "'):\n"
      "    r = json.loads(line)\n"
      "    assert r['schema'] == 'annex.record/1' and r['pid'] == "
      "os.getpid(), r\n"
      "    assert len(r['clodo']['rows']) <= 6, r['clodo']['rows']  # 5 + "
      "<Other>\n"
      "    rows = {x['kind']: x['count'] for x in r['clodo']['rows']}\n"
      "    assert r['retainers'][0]['retained'] > 0, r['retainers']\n"
      "    counts.append(rows.get('__main__.Leaky', 0))\n"
      "print('leaky', counts[-1], counts == sorted(counts))\n"
      "print('mode', oct(os.stat('",
      file, "').st_mode & 0o777))\n");
  Result r = RunProcess(
      {ANNEX_PYTHON_EXECUTABLE, "-c", script}, "",
      WithSanitizerRuntime({"PYTHONPATH=" + dir, "PYTHONNOUSERSITE=1"}));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("refused: record_interval, record_format, "
                       "record_max_bytes, record_top and record_retainers "
                       "need record=PATH"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("refused: record_format is 'stat' or 'jsonl'"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("refused: record_interval must be seconds > 0"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("refused: record_top must be 1 to 100000"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("refused: record_max_bytes must be"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("leaky 3000 True\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mode 0o600\n"), std::string::npos) << r.out;
}

// Retainers on: from the second record on, each record holds the shortest
// path to the kinds that grew most since the previous one. The program
// adds 1000 objects of its own class (1 KB each) to a module-level list at
// a time, in one C call (no bytecode boundary, so no record can fall in
// the middle); the record after each step names that class with exactly
// +1000 objects and a path that ends in the list.
TEST(PythonModuleRecordTest, RecordsNameThePathsToTheGrowingKinds) {
  const std::string dir = PythonModuleDir("pypaths");
  ASSERT_FALSE(dir.empty());
  const std::string file = dir + "/heap.jsonl";
  const std::string script = absl::StrCat(
      "import json, re, time\n"
      "import annex\n"
      "class Leaky(bytes):\n"
      "    pass\n"
      "cache = []\n"
      "pads = [b'x' * 1000] * 1000\n",
      RecordWaits(file), "annex.start(console=False, record='", file,
      "', record_interval=0.05,\n"
      "            record_format='jsonl', record_retainers=True)\n"
      "wait_records(2)\n"
      "for k in range(3):\n"
      "    cache.extend(map(Leaky, pads))\n"
      "    wait_records(records() + 2)\n"
      "annex.stop()\n"
      "records = [json.loads(line) for line in open('",
      file,
      "')]\n"
      "print('first', records[0].get('growth_paths'))\n"
      "steps = []\n"
      "for r in records[1:]:\n"
      "    for g in r['growth_paths']:\n"
      "        if g['kind'] != '__main__.Leaky':\n"
      "            continue\n"
      "        assert g['size_growth'] >= 1000 * 1000, g\n"
      "        assert g['length'] >= 2, g\n"
      "        assert re.search(r\"\\['cache'\\]\\[\\d+\\]$\", g['path']), g\n"
      "        assert g['path'].startswith('%R') and g['new'] is True, g\n"
      "        steps.append((g['count_growth'], g['count']))\n"
      "print('steps', steps)\n");
  Result r = RunProcess(
      {ANNEX_PYTHON_EXECUTABLE, "-c", script}, "",
      WithSanitizerRuntime({"PYTHONPATH=" + dir, "PYTHONNOUSERSITE=1"}));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // The first record has nothing to compare with.
  EXPECT_NE(r.out.find("first []\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("steps [(1000, 1000), (1000, 2000), (1000, 3000)]\n"),
            std::string::npos)
      << r.out;
}

}  // namespace
