// Runs examples/embed_minimal as a child process and checks its output: the
// annex runs the same Python as the host but is a separate interpreter.
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace annex::examples {
namespace {

using ::annex::testing::ProcessResult;
using ::annex::testing::Runfile;
using ::annex::testing::RunProcess;

constexpr char kBinary[] = "examples/embed_minimal/embed_minimal";

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The version line the given side printed ("target: Python 3.11.2").
std::string VersionOf(const std::string& out, const std::string& prefix) {
  size_t at = out.find(prefix + "Python ");
  if (at == std::string::npos) return "";
  at += prefix.size() + 7;
  return out.substr(at, out.find('\n', at) - at);
}

TEST(EmbedMinimalTest, AnnexIsASeparateInterpreterOfTheSamePython) {
  ProcessResult r = RunProcess({Runfile(kBinary)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // The host's script ran in the target and sees its own imports.
  EXPECT_TRUE(Contains(r.out, "target: 'colorsys' in sys.modules: True\n"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "target: 'host_app' in sys.modules: True\n"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "target: __main__ has 'orders': True\n"))
      << r.out;
  // Same CPython build in the annex...
  std::string target_version = VersionOf(r.out, "target: ");
  ASSERT_FALSE(target_version.empty()) << r.out;
  EXPECT_EQ(VersionOf(r.out, "annex:  "), target_version) << r.out;
  // ...but its own sys.modules and __main__.
  EXPECT_TRUE(Contains(r.out, "annex:  'colorsys' in sys.modules: False\n"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "annex:  'host_app' in sys.modules: False\n"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "annex:  __main__ has 'orders': False\n"))
      << r.out;
  // And the annex's imports stay out of the host's sys.modules.
  EXPECT_TRUE(
      Contains(r.out, "annex:  imported wave; 'wave' in sys.modules: True\n"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "target: 'wave' in sys.modules: False\n"))
      << r.out;
  // Stop() came before Py_FinalizeEx(), and the annex answered after the
  // host's script.
  EXPECT_TRUE(Contains(r.out, "host: monitor stopped, finalizing\n")) << r.out;
  EXPECT_LT(r.out.find("target: "), r.out.find("annex: ")) << r.out;
  EXPECT_EQ(r.err, "");
}

TEST(EmbedMinimalTest, AMissingScriptFailsButStillStopsCleanly) {
  ProcessResult r = RunProcess({Runfile(kBinary), "/nonexistent/app.py"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(Contains(r.err, "/nonexistent/app.py")) << r.err;
  // The annex still answers and the monitor still stops.
  EXPECT_TRUE(Contains(r.out, "annex:  'colorsys' in sys.modules: False\n"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "host: monitor stopped, finalizing\n")) << r.out;
}

}  // namespace
}  // namespace annex::examples
