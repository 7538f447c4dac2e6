// The exact runtime version check: Annex refuses to start on a Python
// whose version (major.minor.micro) differs from the headers it was built
// with, with a message naming both, and starts on the matching one (on
// 3.13 also checking the runtime's _Py_DebugOffsets). A different patch
// release is pretended with SetBuildVersionForTesting(); no second Python
// is needed.
#include <Python.h>

#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "monitor/python/version.h"
#include "tests/testing/python_main.h"

namespace {

std::string Dotted(unsigned long hex) {
  return absl::StrFormat("%d.%d.%d", hex >> 24, (hex >> 16) & 0xff,
                         (hex >> 8) & 0xff);
}

class VersionCheckTest : public ::testing::Test {
 protected:
  void TearDown() override { annex::python::SetBuildVersionForTesting(0); }
};

TEST_F(VersionCheckTest, MatchingVersionStarts) {
  EXPECT_TRUE(annex::python::CheckRuntimeVersion().ok())
      << annex::python::CheckRuntimeVersion();
  annex::Monitor monitor;
  ASSERT_TRUE(monitor.Start().ok());
  EXPECT_TRUE(monitor.running());
  EXPECT_TRUE(monitor.Stop().ok());
}

TEST_F(VersionCheckTest, OtherPatchReleaseIsRefusedWithTheMessage) {
  const unsigned long runtime = Py_Version;
  // One patch release later, and (where there is one) earlier.
  std::vector<unsigned long> pretended = {runtime + 0x100};
  if (((runtime >> 8) & 0xff) > 0) pretended.push_back(runtime - 0x100);
  for (unsigned long build : pretended) {
    annex::python::SetBuildVersionForTesting(build);
    annex::Monitor monitor;
    absl::Status s = monitor.Start();
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    const std::string message(s.message());
    EXPECT_NE(message.find("built with the headers of Python " + Dotted(build)),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("runs on Python " + Dotted(runtime)),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("use an Annex built for Python " + Dotted(runtime)),
              std::string::npos)
        << message;
    EXPECT_FALSE(monitor.running());
    // Nothing was left behind: the target still runs code.
    EXPECT_EQ(annex::testing::TargetLong("1 + 1"), 2);
  }
  annex::python::SetBuildVersionForTesting(0);
  annex::Monitor monitor;
  EXPECT_TRUE(monitor.Start().ok());
  EXPECT_TRUE(monitor.Stop().ok());
}

}  // namespace
