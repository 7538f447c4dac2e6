// The `annex` module's binding toolkit (glue/module, issue #18): its types
// and classes come from the module's state, not from names looked up at
// run time.
#include <cctype>
#include <set>
#include <string>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/glue/hp_fixture.h"
#include "tests/testing/child_process.h"
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

// The x.NAME attributes docs/hp.md's IdSet table (the one after "| attribute
// | meaning |" in "Sets and partitions") documents.
std::set<std::string> DocumentedIdSetAttributes() {
  const std::string doc = testing::ReadFile(testing::Runfile("docs/hp.md"));
  std::set<std::string> names;
  bool in_table = false;
  for (absl::string_view line : absl::StrSplit(doc, '\n')) {
    if (line == "| attribute | meaning |") {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    if (line.empty() || line[0] != '|') break;
    // The first column: `x.name`, `x.name(args)`, several per row.
    absl::string_view first = line.substr(1, line.find('|', 1) - 1);
    for (size_t at = first.find("x."); at != absl::string_view::npos;
         at = first.find("x.", at + 2)) {
      size_t end = at + 2;
      while (end < first.size() &&
             (std::isalnum(static_cast<unsigned char>(first[end])) ||
              first[end] == '_')) {
        ++end;
      }
      if (end > at + 2) names.emplace(first.substr(at + 2, end - at - 2));
    }
  }
  return names;
}

TEST_F(HpBindingTest, DirListsWhatASetAnswersAndTheDocsName) {
  ASSERT_TRUE(RunTargetCode("hb_list = [1, 2, 3]\n"));
  const std::set<std::string> documented = DocumentedIdSetAttributes();
  // The table is there and names what it should (a parse check).
  ASSERT_GT(documented.size(), 15u);
  ASSERT_EQ(documented.count("brief"), 1u);
  ASSERT_EQ(documented.count("get_examples"), 1u);
  // Every name dir() lists is an attribute (getattr raises no
  // AttributeError; it may raise another error, e.g. x.prod without
  // tracemalloc), and every documented one is listed.
  EXPECT_EQ(Exec("x = hp.iso('hb_list')\n"
                 "missing = []\n"
                 "for n in dir(x):\n"
                 "    try:\n"
                 "        getattr(x, n)\n"
                 "    except AttributeError:\n"
                 "        missing.append(n)\n"
                 "    except Exception:\n"
                 "        pass\n"
                 "print('not gettable:', missing)\n"
                 "documented = '" +
                 absl::StrJoin(documented, " ") +
                 "'.split()\n"
                 "print('not in dir:', [n for n in documented\n"
                 "                      if n not in dir(x)])\n"
                 "print(all(n in dir(x) for n in ('bytype', 'sp', 'byid', "
                 "'referrers', 'rp', 'get_shpaths', 'partition', 'by')))\n"),
            "not gettable: []\nnot in dir: []\nTrue\n");
}

TEST_F(HpBindingTest, HelpShowsTheAttributesDocs) {
  ASSERT_TRUE(RunTargetCode("hb_list = [1, 2, 3]\n"));
  EXPECT_EQ(Exec("import pydoc\n"
                 "x = hp.iso('hb_list')\n"
                 "text = pydoc.render_doc(x, renderer=pydoc.plaintext)\n"
                 "for n in ('bytype', 'referrers', 'brief', 'dump', 'by'):\n"
                 "    doc = getattr(type(x), n).__doc__\n"
                 "    print(n, bool(doc) and doc.split('\\n')[0] in text)\n"),
            "bytype True\nreferrers True\nbrief True\ndump True\nby True\n");
}

}  // namespace
}  // namespace annex
