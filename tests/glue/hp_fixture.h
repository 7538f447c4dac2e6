// A GoogleTest fixture for tests of hp in the annex: a Monitor started for
// each test, and Exec() of annex code after the test file's prelude (the
// helpers its tests share). The target (tests/testing:python_main's
// interpreter) is the test file's to set up.
//
//   class HpFooTest : public testing::HpFixture {
//    protected:
//     HpFooTest() : HpFixture(kPrelude) {}
//   };
//   TEST_F(HpFooTest, Bar) { EXPECT_EQ(Exec("print(1)"), "1\n"); }
#pragma once

#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "monitor/monitor.h"

namespace annex::testing {

class HpFixture : public ::testing::Test {
 protected:
  explicit HpFixture(std::string prelude) : prelude_(std::move(prelude)) {}
  void SetUp() override { ASSERT_TRUE(monitor_.Start().ok()); }
  void TearDown() override { EXPECT_TRUE(monitor_.Stop().ok()); }

  // What the prelude and `code` print in a fresh annex namespace; "" (and
  // a test failure) when they raise. Where: the test's thread (it may
  // hold the GIL).
  std::string Exec(const std::string &code) {
    auto out = monitor_.ExecInAnnex(prelude_ + code);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : "";
  }

  Monitor monitor_;

 private:
  std::string prelude_;
};

}  // namespace annex::testing
