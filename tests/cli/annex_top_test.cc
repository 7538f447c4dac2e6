// `annex top PID` through a pseudo-terminal (forkpty) of a known size, as a
// person would run it, against a program that grows a known kind when the
// test asks: the screen shows the kind with its growth since the first
// record, fits the terminal's rows and columns (and a new size after the
// window changes), `g` reorders, `q` quits and restores the screen. Without a
// terminal it prints one frame per interval.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace {

using ::annex::testing::AnnexBinary;
using ::annex::testing::BackgroundProcess;
using ::annex::testing::RunProcess;
using ::annex::testing::TerminalProcess;
using ::annex::testing::WaitForAnnexPs;
using ::annex::testing::WaitForFile;
using Result = ::annex::testing::ProcessResult;

std::string TempDir(const char* name) {
  std::string templ = absl::StrCat("/tmp/annex-", name, "-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) return "";
  return templ;
}

// The lines of the last whole frame in `out` (a frame starts with the
// cursor going home and ends with "clear to the end of the screen").
std::vector<std::string> LastFrame(const std::string& out) {
  const size_t end = out.rfind("\x1b[J");
  if (end == std::string::npos) return {};
  const size_t start = out.rfind("\x1b[H", end);
  if (start == std::string::npos) return {};
  std::string frame = out.substr(start + 3, end - start - 3);
  frame.erase(std::remove(frame.begin(), frame.end(), '\r'), frame.end());
  std::vector<std::string> lines = absl::StrSplit(frame, "\x1b[K\n");
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// Whether a line of `out` is the row of __main__.Leaky with 10000 objects,
// all of them grown since the first record: "index count size +count +size
// kind" (std::regex is avoided: GCC 12 warns inside it under ASan).
bool ShowsGrownLeaky(const std::string& out) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() == 6 && f[1] == "10000" && f[3] == "+10000" &&
        absl::StartsWith(f[4], "+") &&
        absl::StartsWith(f[5], "__main__.Leaky\x1b")) {
      return true;
    }
  }
  return false;
}

// A program that grows __main__.Leaky by 10000 objects per go-K file
// (enough bytes to be among the largest kinds).
std::string Program(const std::string& dir) {
  return absl::StrCat(
      "import os, time\n"
      "class Leaky:\n"
      "    pass\n"
      "keep = []\n"
      "for k in range(1, 3):\n"
      "    while not os.path.exists('",
      dir,
      "/go-%d' % k):\n"
      "        time.sleep(0.01)\n"
      "    keep.extend(Leaky() for _ in range(10000))\n"
      "    open('",
      dir,
      "/done-%d' % k, 'w').close()\n"
      "while not os.path.exists('",
      dir,
      "/stop'):\n"
      "    time.sleep(0.02)\n");
}

TEST(AnnexTopTest, TerminalShowsTheGrowingKindAndQuitsOnQ) {
  const std::string dir = TempDir("top");
  ASSERT_FALSE(dir.empty());
  const std::string env = absl::StrCat("XDG_RUNTIME_DIR=", dir);
  const std::string app = dir + "/growing_top.py";
  std::ofstream(app) << Program(dir);
  BackgroundProcess service({AnnexBinary(), "run", app}, "", {env});
  const pid_t pid = WaitForAnnexPs(env, "growing_top.py", service);
  ASSERT_GT(pid, 0) << service.Join().err;

  constexpr int kRows = 16, kColumns = 70;
  TerminalProcess top(
      {AnnexBinary(), "top", "--interval", "0.1", std::to_string(pid)}, {env},
      kRows, kColumns);
  ASSERT_TRUE(top.started());
  std::string out = top.WaitForText(0, "record 2,");
  ASSERT_NE(out.find("record 2,"), std::string::npos) << out;
  EXPECT_NE(out.find("\x1b[?1049h"), std::string::npos);  // alternate screen

  // The program grows; a later frame shows Leaky: 10000 objects, all of
  // them growth since the first record.
  std::ofstream(dir + "/go-1") << "go";
  WaitForFile(dir + "/done-1");
  out = top.WaitFor(0, ShowsGrownLeaky);
  ASSERT_TRUE(ShowsGrownLeaky(out)) << out;

  // The frame fits the terminal: rows less one, lines cut at the columns,
  // the kinds that do not fit counted on the last line.
  std::vector<std::string> frame = LastFrame(out);
  ASSERT_FALSE(frame.empty()) << out;
  EXPECT_EQ(frame.size(), static_cast<size_t>(kRows - 1));
  for (const std::string& line : frame) {
    EXPECT_LE(line.size(), static_cast<size_t>(kColumns)) << line;
  }
  EXPECT_TRUE(absl::StartsWith(frame.back(), "<")) << frame.back();
  EXPECT_TRUE(absl::EndsWith(frame.back(), " more kinds>")) << frame.back();

  // g orders by growth: Leaky is the first kind.
  size_t mark = top.size();
  top.Type("g");
  out = top.WaitFor(mark, [](const std::string& s) {  // a whole frame
    const size_t at = s.find("largest growth");
    return at != std::string::npos && s.find("\x1b[J", at) != std::string::npos;
  });
  frame = LastFrame(out);
  bool first_kind_is_leaky = false;
  for (const std::string& line : frame) {
    if (absl::StartsWith(line, "     0 ")) {
      first_kind_is_leaky = absl::EndsWith(line, "__main__.Leaky");
    }
  }
  EXPECT_TRUE(first_kind_is_leaky) << out.substr(out.rfind("\x1b[H"));

  // A larger window (SIGWINCH): the frames grow to fill it.
  mark = top.size();
  top.Resize(24, 100);
  out = top.WaitFor(
      mark, [](const std::string& s) { return LastFrame(s).size() == 23; });
  EXPECT_EQ(LastFrame(out.substr(mark)).size(), 23u) << out.substr(mark);

  top.Type("q");
  EXPECT_EQ(top.Wait(), 0);
  out = top.WaitFor(0, [](const std::string&) { return false; });  // closed
  EXPECT_NE(out.find("\x1b[?1049l"), std::string::npos);  // screen restored

  // Without a terminal: one frame per interval, no escape sequences.
  std::ofstream(dir + "/go-2") << "go";
  WaitForFile(dir + "/done-2");
  Result plain = RunProcess({AnnexBinary(), "top", "--count", "2", "--interval",
                             "0.05", "--rows", "3", std::to_string(pid)},
                            "", {env});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out.find('\x1b'), std::string::npos);
  std::vector<std::string> frames = absl::StrSplit(plain.out, "\n\nannex top");
  EXPECT_EQ(frames.size(), 2u) << plain.out;
  EXPECT_NE(plain.out.find(" 20000 "), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("more kinds>"), std::string::npos) << plain.out;

  // Usage errors.
  EXPECT_EQ(RunProcess({AnnexBinary(), "top"}).exit_code, 2);
  EXPECT_EQ(
      RunProcess({AnnexBinary(), "top", "--interval", "0", "1"}).exit_code, 2);
  std::ofstream(dir + "/stop") << "stop";
  EXPECT_EQ(service.Join().exit_code, 0) << service.Join().err;
  // The process is gone: exit status 3 and a message.
  Result gone = RunProcess(
      {AnnexBinary(), "top", "--count", "1", std::to_string(pid)}, "", {env});
  EXPECT_EQ(gone.exit_code, 3) << gone.err;
}

}  // namespace
