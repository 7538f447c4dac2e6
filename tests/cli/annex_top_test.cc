// `annex top PID` through a pseudo-terminal (forkpty) of a known size, as a
// person would run it, against a program that grows a known kind when the
// test asks: the screen shows the kind with its growth since the first
// record, fits the terminal's rows and columns (and a new size after the
// window changes), `g` reorders, `q` quits and restores the screen. Without a
// terminal it prints one frame per interval.
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
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
using ::annex::testing::WaitForAnnexPs;
using ::annex::testing::WaitForFile;
using Result = ::annex::testing::ProcessResult;

std::string TempDir(const char* name) {
  std::string templ = absl::StrCat("/tmp/annex-", name, "-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) return "";
  return templ;
}

// A program run on the slave side of a new pseudo-terminal of `rows` x
// `columns`; a thread keeps what it writes.
class PtyProcess {
 public:
  PtyProcess(const std::vector<std::string>& argv, const std::string& env,
             int rows, int columns) {
    struct winsize ws {};
    ws.ws_row = static_cast<unsigned short>(rows);
    ws.ws_col = static_cast<unsigned short>(columns);
    pid_ = ::forkpty(&master_, nullptr, nullptr, &ws);
    if (pid_ == 0) {
      ::putenv(const_cast<char*>(env.c_str()));
      std::vector<char*> args;
      for (const std::string& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    reader_ = std::thread([this] {
      char buf[4096];
      while (true) {
        const ssize_t n = ::read(master_, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        std::lock_guard<std::mutex> lock(mu_);
        if (n <= 0) {  // EIO once the slave side is closed by all
          closed_ = true;
          cv_.notify_all();
          return;
        }
        screen_.append(buf, static_cast<size_t>(n));
        cv_.notify_all();
      }
    });
  }
  ~PtyProcess() {
    if (pid_ > 0 && status_ < 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
    if (reader_.joinable()) reader_.join();
    if (master_ >= 0) ::close(master_);
  }

  bool started() const { return pid_ > 0; }
  // A new window size; the kernel sends SIGWINCH to the program.
  void Resize(int rows, int columns) {
    struct winsize ws {};
    ws.ws_row = static_cast<unsigned short>(rows);
    ws.ws_col = static_cast<unsigned short>(columns);
    ::ioctl(master_, TIOCSWINSZ, &ws);
  }
  void Type(const std::string& keys) {
    (void)!::write(master_, keys.data(), keys.size());
  }
  // Waits until what was written since `from` satisfies `done`, or the
  // program ended; returns all of it.
  template <typename F>
  std::string WaitFor(size_t from, F done) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] {
      return closed_ || done(screen_.substr(std::min(from, screen_.size())));
    });
    return screen_;
  }
  std::string WaitForText(size_t from, const std::string& text) {
    return WaitFor(from, [&](const std::string& s) {
      return s.find(text) != std::string::npos;
    });
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return screen_.size();
  }
  // The exit status (128 + N when killed by signal N).
  int Wait() {
    if (status_ >= 0) return status_;
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  int status_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string screen_;
  bool closed_ = false;
  std::thread reader_;
};

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
  PtyProcess top(
      {AnnexBinary(), "top", "--interval", "0.1", std::to_string(pid)}, env,
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
