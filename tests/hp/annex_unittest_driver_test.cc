// The hp test driver's failure paths (tests/testing/annex_unittest_main.cc),
// run as a child process on modules whose tests fail in every way unittest
// knows: each becomes a failed GoogleTest case with the .py file and line,
// a skip is a skip, a module that does not load is one failed case, and
// the driver exits non-zero. Only the passing test passes.
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"

namespace annex::testing {
namespace {

ProcessResult RunDriver(const std::string& module) {
  return RunProcess({Runfile("tests/testing/annex_unittest_driver"),
                     "tests/hp/testdata/" + module});
}

TEST(AnnexUnittestDriverTest, EveryFailureIsAFailedCaseWithFileAndLine) {
  ProcessResult r = RunDriver("driver_outcomes.py");
  const std::string& out = r.out;
  EXPECT_EQ(r.exit_code, 1) << out << r.err;
  const std::string file = "tests/hp/testdata/driver_outcomes.py";
  EXPECT_NE(out.find("[       OK ] Outcomes.test_passes"), std::string::npos)
      << out;
  EXPECT_NE(out.find("[  SKIPPED ] Outcomes.test_skips"), std::string::npos)
      << out;
  EXPECT_NE(out.find("drv not here"), std::string::npos) << out;
  for (const char* failed :
       {"Outcomes.test_fails", "Outcomes.test_errors",
        "Outcomes.test_target_raises", "Outcomes.test_reports_pass_then_fails",
        "Outcomes.test_unexpected_success", "Outcomes.test_prints_then_fails",
        "FailingSetUp.test_never_runs", "SubTests.test_one_subtest_fails"}) {
    EXPECT_NE(out.find(absl::StrCat("[  FAILED  ] ", failed, " (")),
              std::string::npos)
        << failed << "\n"
        << out;
  }
  EXPECT_NE(out.find("1 test, listed below"), std::string::npos) << out;
  EXPECT_NE(out.find("8 FAILED TESTS"), std::string::npos) << out;
  // A failed subTest is reported under its parameters.
  EXPECT_NE(out.find("test_one_subtest_fails (driver_outcomes.SubTests."
                     "test_one_subtest_fails) (name='big')"),
            std::string::npos)
      << out;
  // unittest's tracebacks, naming the .py file and line.
  for (const char* where :
       {"line 15, in test_fails", "line 18, in test_errors",
        "line 24, in test_target_raises",
        "line 28, in test_reports_pass_then_fails", "line 42, in setUp"}) {
    EXPECT_NE(out.find(absl::StrCat("File \"", file, "\", ", where)),
              std::string::npos)
        << where << "\n"
        << out;
  }
  EXPECT_NE(out.find("AssertionError: 3 != 4"), std::string::npos) << out;
  EXPECT_NE(out.find("RuntimeError: drv boom"), std::string::npos) << out;
  // What the target raised, with the target's own traceback.
  EXPECT_NE(out.find("TargetError: Traceback (most recent call last):\n"
                     "  File \"<annex_test.target_exec>\", line 1, in "
                     "<module>\nNameError: name 'drv_missing_name' is not "
                     "defined"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("unexpected success"), std::string::npos) << out;
  EXPECT_NE(out.find("The test printed:\ndrv printed this"), std::string::npos)
      << out;
  // GoogleTest places each failure at the test's deepest line in the module.
  for (const char* at : {":15: Failure", ":18: Failure", ":24: Failure",
                         ":28: Failure", ":42: Failure"}) {
    EXPECT_NE(out.find(file + at), std::string::npos) << at << "\n" << out;
  }
}

TEST(AnnexUnittestDriverTest, OneCaseSelectsOneTest) {
  ProcessResult r = RunProcess({Runfile("tests/testing/annex_unittest_driver"),
                                "tests/hp/testdata/driver_outcomes.py",
                                "--gtest_filter=Outcomes.test_passes"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[  PASSED  ] 1 test."), std::string::npos) << r.out;
  r = RunProcess({Runfile("tests/testing/annex_unittest_driver"),
                  "tests/hp/testdata/driver_outcomes.py",
                  "--gtest_list_tests"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out,
            "Outcomes.\n  test_errors\n  test_fails\n  test_passes\n"
            "  test_prints_then_fails\n  test_reports_pass_then_fails\n"
            "  test_skips\n  test_target_raises\n  test_unexpected_success\n"
            "FailingSetUp.\n  test_never_runs\n"
            "SubTests.\n  test_one_subtest_fails\n");
}

TEST(AnnexUnittestDriverTest, AModuleThatDoesNotLoadIsOneFailedCase) {
  ProcessResult r = RunDriver("driver_broken.py");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("[  FAILED  ] driver_broken.load ("), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("File \"tests/hp/testdata/driver_broken.py\", line 12"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("ImportError: drv broken module"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("1 FAILED TEST"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("NeverListed"), std::string::npos) << r.out;
}

TEST(AnnexUnittestDriverTest, AMissingModuleIsOneFailedCase) {
  ProcessResult r = RunDriver("driver_nonexistent.py");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("[  FAILED  ] driver_nonexistent.load ("),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("FileNotFoundError"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace annex::testing
