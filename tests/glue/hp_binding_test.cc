// The `annex` module's binding toolkit (glue/module, issue #18): its types
// and classes come from the module's state, not from names looked up at
// run time.
#include <string>

#include "gtest/gtest.h"
#include "tests/glue/hp_fixture.h"
#include "tests/testing/python_main.h"

namespace annex {
namespace {

using ::annex::testing::RunTargetCode;

class HpBindingTest : public testing::HpFixture {
 protected:
  HpBindingTest() : HpFixture("") {}
};

TEST_F(HpBindingTest, TypesComeFromTheModuleStateNotItsNames) {
  ASSERT_TRUE(RunTargetCode("hb_list = [1, 2, 3]\n"));
  // Python in the annex renames, replaces and deletes what the module
  // shows; the binding keeps working with its own types.
  EXPECT_EQ(Exec("import annex, sys\n"
                 "IdSet = annex.IdSet\n"
                 "del annex.IdSet\n"
                 "annex.Text = None\n"
                 "annex.Paths = None\n"
                 "annex.ById = None\n"
                 "annex._stat_files = None\n"
                 "sys.modules['annex'] = object()\n"
                 "x = hp.iso('hb_list')\n"
                 "print(type(x) is IdSet, len(x), x.count)\n"
                 "print(type(hp.doc).__name__, type(x.sp).__name__,\n"
                 "      type(x.byid).__name__)\n"
                 "print(type(x & hp.Type('list')) is IdSet)\n"
                 "import io\n"
                 "f = io.StringIO()\n"
                 "x.dump(f)\n"
                 "print(hp.load(f.getvalue()).count)\n"
                 "del sys.modules['annex']\n"
                 "print(len(hp.iso('hb_list')))\n"),
            "True 1 1\n"
            "Text Paths ById\n"
            "True\n"
            "1\n"
            "1\n");
}

TEST_F(HpBindingTest, ANewAnnexGetsANewModule) {
  ASSERT_TRUE(RunTargetCode("hb_list = [1, 2, 3]\n"));
  EXPECT_EQ(Exec("import annex\n"
                 "print(len(hp.iso('hb_list')), id(annex) > 0)\n"),
            "1 True\n");
  // The annex interpreter ends and a new one starts: its module is made
  // anew (the old one went with its interpreter), and works.
  ASSERT_TRUE(monitor_.Stop().ok());
  ASSERT_TRUE(monitor_.Start().ok());
  EXPECT_EQ(Exec("import annex\n"
                 "print(len(hp.iso('hb_list')), type(hp) is annex.Hp)\n"),
            "1 True\n");
}

}  // namespace
}  // namespace annex
