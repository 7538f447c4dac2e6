// Runs examples/watchdog in both modes as child processes: the watchdog
// reports the stall with the right kind and a stack dump that shows the
// hanging function, the hang ends, and the host exits 0.
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace annex::examples {
namespace {

using ::annex::testing::ProcessResult;
using ::annex::testing::Runfile;
using ::annex::testing::RunProcess;

constexpr char kBinary[] = "examples/watchdog/watchdog_demo";

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The stack dump the demo printed: from "watchdog: stack dump:" to the
// blank line after it.
std::string StackDump(const std::string& out) {
  size_t start = out.find("watchdog: stack dump:\n");
  if (start == std::string::npos) return "";
  size_t end = out.find("\n\n", start);
  return out.substr(start, end == std::string::npos ? end : end - start);
}

TEST(WatchdogDemoTest, EndsALoopInPythonWithTheExceptionAction) {
  ProcessResult r = RunProcess({Runfile(kBinary), "python-loop"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out,
                       "watchdog: stall event, kind busy_python, main "
                       "thread"))
      << r.out;
  std::string dump = StackDump(r.out);
  EXPECT_TRUE(Contains(dump, "[main] [holds GIL]")) << r.out;
  // The line is the loop's head or its body, wherever the sample caught it.
  EXPECT_TRUE(
      Contains(dump, "File \"<python-loop>\", line 4 in crunch_forever") ||
      Contains(dump, "File \"<python-loop>\", line 5 in crunch_forever"))
      << r.out;
  // The report came while the loop ran; the exception then ended it.
  size_t reported = r.out.find("watchdog: stall event");
  size_t ended = r.out.find(
      "script: crunch_forever() ended by the watchdog's TimeoutError\n");
  ASSERT_NE(ended, std::string::npos) << r.out;
  EXPECT_LT(r.out.find("script: calling crunch_forever()"), reported);
  EXPECT_LT(reported, ended) << r.out;
  EXPECT_TRUE(Contains(r.out, "script: carrying on\n")) << r.out;
  EXPECT_TRUE(Contains(r.out,
                       "host: watchdog stopped: 1 stall(s), 1 "
                       "exception(s) raised"))
      << r.out;
}

TEST(WatchdogDemoTest, ReleasesCCodeThatHoldsTheGilThroughAFlag) {
  ProcessResult r = RunProcess({Runfile(kBinary), "c-spin"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(Contains(r.out,
                       "watchdog: stall event, kind stuck_in_c, main "
                       "thread"))
      << r.out;
  // The dump shows the Python function that called into C.
  std::string dump = StackDump(r.out);
  EXPECT_TRUE(Contains(dump, "[main] [holds GIL]")) << r.out;
  EXPECT_TRUE(Contains(dump, "File \"<c-spin>\", line 5 in checksum_in_c"))
      << r.out;
  size_t reported = r.out.find("watchdog: stall event");
  size_t ended = r.out.find(
      "script: checksum_in_c() ended: _spin.spin() stopped: the watchdog "
      "reported a stall\n");
  ASSERT_NE(ended, std::string::npos) << r.out;
  EXPECT_LT(reported, ended) << r.out;
  EXPECT_TRUE(Contains(r.out, "script: carrying on\n")) << r.out;
  // No exception action in this mode: the C code raised by itself.
  EXPECT_TRUE(Contains(r.out,
                       "host: watchdog stopped: 1 stall(s), 0 "
                       "exception(s) raised"))
      << r.out;
}

TEST(WatchdogDemoTest, RejectsAnUnknownMode) {
  ProcessResult r = RunProcess({Runfile(kBinary), "sleep"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(Contains(r.err, "usage: watchdog_demo")) << r.err;
}

}  // namespace
}  // namespace annex::examples
