// Recording memory over time, end to end through the real `annex` binary:
// `annex run --record` (in-process) and `annex record PID` (client) record a
// program that grows a known kind step by step, hp.loadall() and Python's
// json read the files back with the counts the program allocated, the file
// rotates at its limit, and `annex report` turns the records into a
// self-contained page (or refuses bad input with a clear message).
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "annex_python_build.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace {

using ::annex::testing::AnnexBinary;
using ::annex::testing::BackgroundProcess;
using ::annex::testing::FileExists;
using ::annex::testing::ReadFile;
using ::annex::testing::RunProcess;
using ::annex::testing::WaitForAnnexPs;
using ::annex::testing::WaitForFile;
using Result = ::annex::testing::ProcessResult;

int64_t FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// A temporary directory with a short path (console sockets are limited).
std::string TempDir(const char* name) {
  std::string templ = absl::StrCat("/tmp/annex-", name, "-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) return "";
  return templ;
}

// The program recorded: it grows the known kind Leaky by 1000 objects per
// step, three steps, waiting for the test's go-K file before step K and
// writing done-K after it; then it waits for `stop`. With `wait_records`
// (the path of an in-process stat record file) each step instead waits
// until two more Clodo records were written since the last one, so that a
// record taken wholly after each step exists.
std::string GrowingProgram(const std::string& dir, bool wait_records,
                           const std::string& record_path) {
  return absl::StrCat(
      "import os, time\n"
      "class Leaky:\n"
      "    pass\n"
      "keep = []\n"
      "def records():\n"
      "    try:\n"
      "        with open('",
      record_path,
      "') as f:\n"
      "            return sum(1 for l in f if l == '.er: Clodo\\n')\n"
      "    except FileNotFoundError:\n"
      "        return 0\n"
      "def wait_records(n):\n"
      "    while records() < n:\n"
      "        time.sleep(0.02)\n"
      "for k in range(1, 4):\n",
      wait_records ? "    wait_records(records() + 2)\n"
                   : absl::StrCat("    while not os.path.exists('", dir,
                                  "/go-%d' % k):\n"
                                  "        time.sleep(0.01)\n"),
      "    keep.extend(Leaky() for _ in range(1000))\n"
      "    open('",
      dir, "/done-%d' % k, 'w').close()\n",
      wait_records ? "wait_records(records() + 2)\n" : "", "open('", dir,
      "/grown', 'w').close()\n"
      "while not os.path.exists('",
      dir,
      "/stop'):\n"
      "    time.sleep(0.02)\n");
}

// Python's json, in the build's interpreter: the Leaky count of each JSON
// line of `path` (0 when it is not among the rows), space-separated.
std::string JsonLeakyCounts(const std::string& path) {
  Result r = RunProcess(
      {ANNEX_PYTHON_EXECUTABLE, "-I", "-c",
       absl::StrCat("import json\n"
                    "out = []\n"
                    "for line in open('",
                    path,
                    "'):\n"
                    "    d = json.loads(line)\n"
                    "    assert d['schema'] == 'annex.record/1'\n"
                    "    assert d['pid'] > 0 and d['rss_bytes'] > 0\n"
                    "    assert d['pause_s'] >= 0 and d['python']\n"
                    "    assert d['count'] == d['clodo']['count']\n"
                    "    rows = {r['kind']: r['count'] for r in "
                    "d['clodo']['rows']}\n"
                    "    assert d['type']['classifier'] == 'Type'\n"
                    "    out.append(rows.get('__main__.Leaky', 0))\n"
                    "print(*out)\n")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string counts = r.out;
  if (!counts.empty() && counts.back() == '\n') counts.pop_back();
  return counts;
}

// `annex run --record`: records every interval from inside; hp.loadall()
// reads the file back, with labels, and the Leaky counts went 0, 1000,
// 2000, 3000, never down.
// Runs `annex report` on `file` into `html` and returns the page's growth
// table (empty, with failures recorded, when the page lacks one). The page
// must draw an SVG chart with the Leaky series and load nothing else.
std::string ReportGrowthTable(const std::string& file,
                              const std::string& html) {
  Result report = RunProcess({AnnexBinary(), "report", file, "-o", html});
  EXPECT_EQ(report.exit_code, 0) << report.err;
  const std::string page = ReadFile(html);
  EXPECT_NE(page.find("<svg"), std::string::npos);
  EXPECT_NE(page.find("data-kind=\"__main__.Leaky\""), std::string::npos);
  // Self-contained: nothing fetched from the network or another file.
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_EQ(page.find("<script src"), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  // The growth table's two selectors (the page's script recomputes it;
  // tests/cli:report_browser_test runs it in Chromium).
  EXPECT_NE(page.find("<select id=\"pick-from\">"), std::string::npos);
  EXPECT_NE(page.find("<select id=\"pick-to\">"), std::string::npos);
  EXPECT_NE(page.find("<script type=\"application/json\" id=\"records-data\">"),
            std::string::npos);
  const size_t growth = page.find("<pre id=\"growth\">");
  EXPECT_NE(growth, std::string::npos);
  if (growth == std::string::npos) return "";
  return page.substr(growth, page.find("</pre>", growth) - growth);
}

TEST(AnnexRecordTest, RunRecordWritesRecordsHpLoadallReads) {
  const std::string dir = TempDir("rec");
  ASSERT_FALSE(dir.empty());
  const std::string env = absl::StrCat("XDG_RUNTIME_DIR=", dir);
  const std::string file = dir + "/heap.stat";
  const std::string app = dir + "/growing_run.py";
  std::ofstream(app) << GrowingProgram(dir, /*wait_records=*/true, file);
  BackgroundProcess service({AnnexBinary(), "run", "--record", file,
                             "--record-interval", "0.05", app},
                            "", {env});
  const pid_t pid = WaitForAnnexPs(env, "growing_run.py", service);
  ASSERT_GT(pid, 0) << service.Join().err;
  WaitForFile(dir + "/grown");
  Result read = RunProcess(
      {AnnexBinary(), "exec", std::to_string(pid),
       absl::StrCat(
           "stats = hp.loadall('", file,
           "')\n"
           "clodo = [s for s in stats if s.er == 'Clodo']\n"
           "types = [s for s in stats if s.er == 'Type']\n"
           "assert len(clodo) == len(types) >= 8, (len(clodo), len(types))\n"
           "import os\n"
           "f = clodo[-1].fields\n"
           "assert f['record'] == 'annex.record/1', f\n"
           "assert f['pid'] == str(os.getpid()), f\n"
           "assert int(f['rss']) > 0 and int(f['pause_us']) > 0, f\n"
           "assert 'growing_run.py' in f['program'], f\n"
           "import sys\n"
           "assert f['python'] == sys.version.split()[0], f\n"
           "def leaky(s):\n"
           "    return sum(c for k, c, _ in s.rows if k == '__main__.Leaky')\n"
           "print(*sorted(set(leaky(s) for s in clodo)))\n"
           "counts = [leaky(s) for s in clodo]\n"
           "print(counts == sorted(counts))\n"
           "print(clodo[-1].count > clodo[0].count)\n")},
      "", {env});
  EXPECT_EQ(read.exit_code, 0) << read.err;
  // Every level was recorded; a walk during a step may see a count between.
  std::vector<std::string> lines = absl::StrSplit(read.out, '\n');
  ASSERT_GE(lines.size(), 3u) << read.out;
  for (const char* level : {"0", "1000", "2000", "3000"}) {
    std::vector<std::string> seen = absl::StrSplit(lines[0], ' ');
    EXPECT_NE(std::find(seen.begin(), seen.end(), level), seen.end())
        << level << " not in " << lines[0];
  }
  EXPECT_EQ(lines[1], "True") << read.out;  // never down
  EXPECT_EQ(lines[2], "True") << read.out;
  std::ofstream(dir + "/stop") << "stop";
  EXPECT_EQ(service.Join().exit_code, 0) << service.Join().err;

  // The report of that file.
  const std::string html = dir + "/report.html";
  const std::string table = ReportGrowthTable(file, html);
  ASSERT_FALSE(table.empty());
  EXPECT_NE(table.find("Summary of difference operation (A-B)."),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("3000"), std::string::npos) << table;
  EXPECT_NE(table.find("__main__.Leaky"), std::string::npos) << table;
}

// `annex record PID`: one record per call while the program grows between
// them (JSON lines, read by Python's json), then a run of records with
// rotation at a small --max-bytes, then the report of JSON lines.
TEST(AnnexRecordTest, RecordClientJsonlRotationAndReport) {
  const std::string dir = TempDir("recc");
  ASSERT_FALSE(dir.empty());
  const std::string env = absl::StrCat("XDG_RUNTIME_DIR=", dir);
  const std::string app = dir + "/growing_client.py";
  std::ofstream(app) << GrowingProgram(dir, /*wait_records=*/false, "");
  BackgroundProcess service({AnnexBinary(), "run", app}, "", {env});
  const pid_t pid = WaitForAnnexPs(env, "growing_client.py", service);
  ASSERT_GT(pid, 0) << service.Join().err;
  const std::string p = std::to_string(pid);
  const std::string jsonl = dir + "/heap.jsonl";
  for (int k = 0; k <= 3; ++k) {
    if (k > 0) {
      std::ofstream(absl::StrCat(dir, "/go-", k)) << "go";
      WaitForFile(absl::StrCat(dir, "/done-", k));
    }
    Result r = RunProcess({AnnexBinary(), "record", "--count", "1", "--format",
                           "jsonl", p, jsonl},
                          "", {env});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("1 record written"), std::string::npos) << r.err;
  }
  EXPECT_EQ(JsonLeakyCounts(jsonl), "0 1000 2000 3000");

  // Rotation: records of about 2 KiB each into files of at most 4 KiB.
  const std::string rot = dir + "/rot.stat";
  Result many =
      RunProcess({AnnexBinary(), "record", "--count", "6", "--interval", "0.01",
                  "--max-bytes", "4096", p, rot},
                 "", {env});
  ASSERT_EQ(many.exit_code, 0) << many.err;
  EXPECT_NE(many.err.find("6 records written"), std::string::npos) << many.err;
  EXPECT_NE(many.err.find("rotated"), std::string::npos) << many.err;
  ASSERT_TRUE(FileExists(rot + ".1"));
  EXPECT_LE(FileSize(rot), 4096);
  EXPECT_LE(FileSize(rot + ".1"), 4096);
  Result back = RunProcess(
      {AnnexBinary(), "exec", p,
       absl::StrCat("a = hp.loadall('", rot, ".1') + hp.loadall('", rot,
                    "')\nprint(len(a) % 2, 2 <= len(a) <= 12, "
                    "all(s.fields['pid'] == '",
                    p, "' for s in a))\n")},
      "", {env});
  EXPECT_EQ(back.out, "0 True True\n") << back.err;

  // Usage errors.
  EXPECT_EQ(RunProcess({AnnexBinary(), "record", "--format", "xml", p, rot})
                .exit_code,
            2);
  EXPECT_EQ(RunProcess({AnnexBinary(), "record", p}).exit_code, 2);
  std::ofstream(dir + "/stop") << "stop";
  EXPECT_EQ(service.Join().exit_code, 0) << service.Join().err;

  // The report of the JSON lines, and of both rotated parts together.
  const std::string html = dir + "/report.html";
  const std::string table = ReportGrowthTable(jsonl, html);
  ASSERT_FALSE(table.empty());
  // Heapy's difference row: index, +3000 objects, their bytes, the kind.
  EXPECT_NE(table.find("  3000 "), std::string::npos) << table;
  EXPECT_NE(table.find("__main__.Leaky"), std::string::npos) << table;
  Result both =
      RunProcess({AnnexBinary(), "report", rot + ".1", rot, "-o", html});
  EXPECT_EQ(both.exit_code, 0) << both.err;
}

TEST(AnnexRecordTest, ReportRefusesBadInputClearly) {
  const std::string dir = TempDir("rep");
  ASSERT_FALSE(dir.empty());
  const std::string out = dir + "/out.html";
  struct Case {
    std::string file;
    std::string says;
  };
  const std::string garbage = dir + "/garbage";
  {
    std::ofstream g(garbage);
    for (int i = 0; i < 4096; ++i) g << static_cast<char>((i * 131) % 251 + 1);
  }
  const std::string not_json = dir + "/bad.jsonl";
  std::ofstream(not_json) << "{\"schema\": \"annex.record/1\", \n";
  const std::string no_schema = dir + "/other.jsonl";
  std::ofstream(no_schema) << "{\"a\": 1}\n";
  const std::string long_line = dir + "/long.jsonl";
  std::ofstream(long_line) << "{" << std::string(17 << 20, 'x');
  for (const Case& c : std::vector<Case>{
           {dir + "/missing", "No such file"},
           {"/dev/zero", "character device"},
           {dir, "a directory"},
           {garbage, "holds no heap records"},
           {not_json, "not JSON"},
           {no_schema, "schema annex.record/1"},
           {long_line, "longer than"},
       }) {
    Result r = RunProcess({AnnexBinary(), "report", c.file, "-o", out});
    EXPECT_EQ(r.exit_code, 1) << c.file << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.file << ": " << r.err;
    EXPECT_EQ(r.err.find("Traceback"), std::string::npos) << r.err;
    EXPECT_FALSE(FileExists(out)) << c.file;
  }
  EXPECT_EQ(RunProcess({AnnexBinary(), "report", garbage}).exit_code, 2);
  EXPECT_EQ(RunProcess({AnnexBinary(), "report", "-o", out}).exit_code, 2);
}

}  // namespace
