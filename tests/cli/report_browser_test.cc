// The page of `annex report` in a real browser: a program that grows a
// known kind is recorded (`annex run --record`) for a few records, the page
// is made, and headless Chromium (Debian's `chromium`, installed by
// tools/install_deps.sh) opens it from a file with the network off. The
// rendered DOM must show the chart (the SVG with one series per kind drawn
// plus the folded rest), the page's script must have run without an error
// (no console message, an empty #script-errors), the growth table the
// script computes for two records chosen in the URL must be the table
// glue::Stat prints for the same two records, and the dominator tree's top
// retainers (recorded with --record-retainers) show the list that holds
// the grown objects. A screenshot of the page is
// left in the test's outputs (docs/images/report.png is one).
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace {

using ::annex::testing::AnnexBinary;
using ::annex::testing::BackgroundProcess;
using ::annex::testing::FileExists;
using ::annex::testing::ReadFile;
using ::annex::testing::RunProcess;
using Result = ::annex::testing::ProcessResult;

constexpr char kChromium[] = "/usr/bin/chromium";

std::string TempDir(const char* name) {
  std::string templ = absl::StrCat("/tmp/annex-", name, "-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) return "";
  return templ;
}

// The text of the first element that starts with `open` (e.g. `<pre
// id="growth">`) up to `close`, HTML entities of the tables decoded; ""
// when absent.
std::string Element(const std::string& page, const std::string& open,
                    const std::string& close) {
  const size_t at = page.find(open);
  if (at == std::string::npos) return "";
  const size_t start = page.find('>', at) + 1;
  const size_t end = page.find(close, start);
  if (end == std::string::npos) return "";
  return absl::StrReplaceAll(page.substr(start, end - start), {{"&lt;", "<"},
                                                               {"&gt;", ">"},
                                                               {"&quot;", "\""},
                                                               {"&#x27;", "'"},
                                                               {"&#39;", "'"},
                                                               {"&amp;", "&"}});
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// Headless Chromium with everything that could reach a network or a
// profile turned off, in a fresh profile directory under `dir`.
Result Chromium(const std::string& dir, const std::vector<std::string>& what,
                const std::string& url) {
  static int runs = 0;
  const std::string profile = absl::StrCat(dir, "/chromium-profile-", ++runs);
  mkdir(profile.c_str(), 0700);
  std::vector<std::string> argv = {kChromium,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-quic",
                                   "--no-first-run",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--disable-extensions",
                                   "--hide-scrollbars",
                                   "--enable-logging=stderr",
                                   "--v=0",
                                   "--user-data-dir=" + profile};
  argv.insert(argv.end(), what.begin(), what.end());
  argv.push_back(url);
  return RunProcess(argv, "", {"HOME=" + dir});
}

TEST(ReportBrowserTest, ChromiumShowsTheChartAndTheChosenGrowth) {
  ASSERT_TRUE(FileExists(kChromium))
      << kChromium
      << " is missing: tools/install_deps.sh installs Debian's chromium";
  const std::string dir = TempDir("browser");
  ASSERT_FALSE(dir.empty());
  const std::string env = absl::StrCat("XDG_RUNTIME_DIR=", dir);
  const std::string file = dir + "/heap.jsonl";
  // Grows __main__.Leaky by 1000 objects four times; before each step and
  // at the end it waits for two more records, so that one record is taken
  // wholly between two steps.
  const std::string app = dir + "/growing_page.py";
  std::ofstream(app) << absl::StrCat(
      "import os, time\n"
      "class Leaky:\n"
      "    pass\n"
      "keep = []\n"
      "def records():\n"
      "    try:\n"
      "        with open('",
      file,
      "') as f:\n"
      "            return sum(1 for _ in f)\n"
      "    except FileNotFoundError:\n"
      "        return 0\n"
      "def wait_records(n):\n"
      "    while records() < n:\n"
      "        time.sleep(0.02)\n"
      "wait_records(1)\n"
      "for k in range(4):\n"
      "    keep.extend(Leaky() for _ in range(1000))\n"
      "    wait_records(records() + 2)\n");
  BackgroundProcess program(
      {AnnexBinary(), "run", "--no-console", "--record", file,
       "--record-format", "jsonl", "--record-interval", "0.05",
       "--record-retainers", app},
      "", {env});
  const Result& ran = program.Join();
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  std::vector<std::string> lines =
      absl::StrSplit(ReadFile(file), '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 9u);
  const size_t last = lines.size() - 1;

  // The whole recording, and records 1 to last - 1 alone: the second
  // page's default table (glue::Stat's, from its first record to its last)
  // is what the first page's script must compute for #from=1&to=last-1.
  const std::string page = dir + "/report.html";
  Result report = RunProcess(
      {AnnexBinary(), "report", "--top", "3", file, "-o", page}, "", {});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  const std::string part = dir + "/part.jsonl";
  {
    std::ofstream f(part);
    for (size_t i = 1; i < last; ++i) f << lines[i] << "\n";
  }
  const std::string part_page = dir + "/part.html";
  ASSERT_EQ(
      RunProcess({AnnexBinary(), "report", part, "-o", part_page}).exit_code,
      0);
  const std::string expected =
      Element(ReadFile(part_page), "<pre id=\"growth\"", "</pre>");
  ASSERT_NE(expected.find("__main__.Leaky"), std::string::npos) << expected;

  const std::string url =
      absl::StrCat("file://", page, "#from=1&to=", last - 1);
  Result dom = Chromium(dir, {"--dump-dom"}, url);
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  // No console message: no script error, no failed load.
  for (absl::string_view line : absl::StrSplit(dom.err, '\n')) {
    EXPECT_FALSE(absl::StrContains(line, ":CONSOLE")) << line;
  }
  EXPECT_NE(dom.out.find("<body data-script=\"ready\">"), std::string::npos)
      << "the page's script did not run to its end";
  EXPECT_NE(dom.out.find("<ul id=\"script-errors\"></ul>"), std::string::npos)
      << Element(dom.out, "<ul id=\"script-errors\"", "</ul>");
  // The chart: an SVG with the 3 largest kinds and the folded rest.
  const std::string chart =
      Element(dom.out, "<svg id=\"memory-chart\"", "</svg>");
  ASSERT_FALSE(chart.empty()) << dom.out.substr(0, 2000);
  EXPECT_EQ(Count(chart, "<path class=\"series\""), 4u) << chart;
  EXPECT_NE(chart.find("data-kind=\"__main__.Leaky\""), std::string::npos);
  EXPECT_NE(chart.find("data-kind=\"other (every other kind, folded)\""),
            std::string::npos);
  EXPECT_EQ(Count(chart, "class=\"marker\""), 2u);
  // The dominator tree's top retainers of the last record: the program's
  // 4000 Leaky objects, under the list that holds them (merged with other
  // lists when the last record was taken after the main frame returned:
  // then sys.modules roots the module's dict, next to other modules').
  const std::string icicle =
      Element(dom.out, "<svg id=\"retainers-chart\"", "</svg>");
  EXPECT_GT(Count(icicle, "<rect class=\"retainer\""), 3u) << icicle;
  EXPECT_NE(icicle.find("<title>__main__.Leaky \u00d74000: "),
            std::string::npos)
      << icicle;
  EXPECT_NE(icicle.find(" \u2190 list \u00d7"), std::string::npos) << icicle;
  // Why the growing kinds are kept: the Leaky objects, by the shortest path
  // to a new one, which ends in the module's list.
  const std::string paths =
      Element(dom.out, "<table class=\"records growth-paths\"", "</table>");
  EXPECT_NE(paths.find("<td>__main__.Leaky</td>"), std::string::npos) << paths;
  EXPECT_NE(paths.find("['keep']["), std::string::npos) << paths;
  // The selectors: one option per record, the chosen ones selected.
  const std::string from =
      Element(dom.out, "<select id=\"pick-from\"", "</select>");
  EXPECT_EQ(Count(from, "<option"), lines.size());
  // The growth the script computed is glue::Stat's.
  EXPECT_EQ(Element(dom.out, "<pre id=\"growth\"", "</pre>"), expected);
  EXPECT_EQ(Element(dom.out, "<span id=\"growth-span\"", "</span>"),
            absl::StrCat("record 1 (B) to record ", last - 1, " (A)"));

  // The screenshot: a PNG of the window's size.
  const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  const std::string png =
      absl::StrCat(outputs != nullptr ? outputs : dir.c_str(), "/report.png");
  Result shot =
      Chromium(dir, {"--window-size=1040,1000", "--screenshot=" + png}, url);
  ASSERT_EQ(shot.exit_code, 0) << shot.err;
  const std::string image = ReadFile(png);
  ASSERT_GE(image.size(), 24u);
  EXPECT_EQ(image.substr(0, 8), "\x89PNG\r\n\x1a\n");
  auto be32 = [&](size_t at) {
    return (static_cast<unsigned char>(image[at]) << 24) |
           (static_cast<unsigned char>(image[at + 1]) << 16) |
           (static_cast<unsigned char>(image[at + 2]) << 8) |
           static_cast<unsigned char>(image[at + 3]);
  };
  EXPECT_EQ(be32(16), 1040);  // IHDR width
  EXPECT_EQ(be32(20), 1000);  // IHDR height
  std::printf("screenshot: %s (%zu bytes)\n", png.c_str(), image.size());
}

}  // namespace
