// Heapy's partition table layout, column for column, on fixed sets whose
// counts and sizes are known: the two tables of guppy3's README (one with
// 99 rows, printed as 10 and a hint), and the edge cases of its printer.
#include <string>
#include <utility>
#include <vector>

#include "glue/heap_view.h"
#include "gtest/gtest.h"

namespace annex::glue {
namespace {

// A set with one kind per row: `count` objects whose sizes add up to
// `size`. Addresses are made up (the table never dereferences them).
KindedSet Make(const std::vector<std::tuple<std::string, int, int>>& rows) {
  KindedSet set;
  uintptr_t address = 0x1000;
  for (const auto& [kind, count, size] : rows) {
    uint32_t k = set.kind_names->size();
    set.kind_names->push_back(kind);
    for (int i = 0; i < count; ++i) {
      set.addresses.push_back(address += 16);
      set.kinds.push_back(k);
      set.sizes.push_back(i + 1 < count ? size / count
                                        : size - (count - 1) * (size / count));
    }
  }
  return set;
}

TEST(PartitionTableTest, MatchesHeapysSmallTable) {
  KindedSet set =
      Make({{"list", 1, 72}, {"int", 1, 28}, {"dict (no owner)", 1, 248}});
  EXPECT_EQ(set.PartitionTable(),
            "Partition of a set of 3 objects. Total size = 348 bytes.\n"
            " Index  Count   %     Size   % Cumulative  % Kind (class / dict "
            "of class)\n"
            "     0      1  33      248  71       248  71 dict (no owner)\n"
            "     1      1  33       72  21       320  92 list\n"
            "     2      1  33       28   8       348 100 int\n");
}

TEST(PartitionTableTest, MatchesHeapysLargeTableWithRoundedPercentages) {
  std::vector<std::tuple<std::string, int, int>> rows = {
      {"str", 8292, 739022},
      {"tuple", 7834, 625624},
      {"types.CodeType", 2079, 300624},
      {"type", 400, 297088},
      {"bytes", 4168, 279278},
      {"function", 1869, 269136},
      {"dict of type", 400, 228464},
      {"dict of module", 79, 139704},
      {"types.WrapperDescriptorType", 1061, 93368},
      {"dict (no owner)", 172, 81712},
  };
  // 89 more rows holding the rest of README's totals.
  for (int i = 0; i < 89; ++i) {
    rows.emplace_back("other" + std::to_string(i), i < 88 ? 52 : 46,
                      i < 88 ? 5508 : 5496);
  }
  EXPECT_EQ(Make(rows).PartitionTable(),
            "Partition of a set of 30976 objects. Total size = 3544220 bytes.\n"
            " Index  Count   %     Size   % Cumulative  % Kind (class / dict "
            "of class)\n"
            "     0   8292  27   739022  21    739022  21 str\n"
            "     1   7834  25   625624  18   1364646  39 tuple\n"
            "     2   2079   7   300624   8   1665270  47 types.CodeType\n"
            "     3    400   1   297088   8   1962358  55 type\n"
            "     4   4168  13   279278   8   2241636  63 bytes\n"
            "     5   1869   6   269136   8   2510772  71 function\n"
            "     6    400   1   228464   6   2739236  77 dict of type\n"
            "     7     79   0   139704   4   2878940  81 dict of module\n"
            "     8   1061   3    93368   3   2972308  84 "
            "types.WrapperDescriptorType\n"
            "     9    172   1    81712   2   3054020  86 dict (no owner)\n"
            "<89 more rows. Type e.g. '_.more' to view.>\n");
}

TEST(PartitionTableTest, OneMoreRowIsPrintedNotHinted) {
  std::vector<std::tuple<std::string, int, int>> rows;
  rows.reserve(11);
  for (int i = 0; i < 11; ++i)
    rows.emplace_back("k" + std::to_string(i), 1, 100 - i);
  std::string table = Make(rows).PartitionTable();
  EXPECT_NE(table.find("    10      1"), std::string::npos) << table;
  EXPECT_EQ(table.find("more rows"), std::string::npos) << table;
  rows.emplace_back("k11", 1, 50);
  EXPECT_NE(Make(rows).PartitionTable().find("<2 more rows."),
            std::string::npos);
}

TEST(PartitionTableTest, SingularAndEmpty) {
  EXPECT_EQ(Make({{"int", 1, 28}}).PartitionTable().substr(0, 57),
            "Partition of a set of 1 object. Total size = 28 bytes.\n I");
  EXPECT_EQ(KindedSet().PartitionTable(),
            "Partition of a set of 0 objects. Total size = 0 bytes.\n");
}

TEST(PartitionTableTest, HeaderFollowsTheClassifier) {
  KindedSet set = Make({{"int", 2, 56}});
  auto header = [&](const char* spec) {
    KindedSet s = set.WithStoredClassifier(*Classifier::Parse(spec));
    std::string t = s.PartitionTable();
    size_t a = t.find('\n') + 1;
    return t.substr(a + 45, t.find('\n', a) - a - 45);
  };
  EXPECT_EQ(header("Type"), "Type");
  EXPECT_EQ(header("Clodo"), "Kind (class / dict of class)");
  EXPECT_EQ(header("Size"), "Individual Size");
  EXPECT_EQ(header("Unity"), "<unclassified>");
  EXPECT_EQ(header("Id"), "Object Identity");
  EXPECT_EQ(header("Type&Size"), "Type & Individual Size");
  EXPECT_EQ(Classifier::Parse("Rcs")->Header(),
            "Referrers by Kind (class / dict of class)");
  EXPECT_EQ(Classifier::Parse("Via")->Header(), "Referred Via:");
  EXPECT_EQ(Classifier::Parse("Type&Via&Rcs")->Header(),
            "Type & {Referred Via} & {Referrers by Kind (class / dict of "
            "class)}");
  // Size rows are right-aligned numbers; in a combination, plain.
  EXPECT_NE(set.WithStoredClassifier(*Classifier::Parse("Size"))
                .PartitionTable()
                .find("100        28\n"),
            std::string::npos);
  EXPECT_NE(set.WithStoredClassifier(*Classifier::Parse("Type&Size"))
                .PartitionTable()
                .find(" int & 28\n"),
            std::string::npos);
  EXPECT_FALSE(Classifier::Parse("type").ok());
}

// x.parts splits in one pass; each part equals the row selected alone,
// for kinds recorded by the walk and for per-member labels (Size).
TEST(PartitionTableTest, SplitByLabelsEqualsOneRowAtATime) {
  KindedSet set = Make({{"str", 7, 700}, {"int", 3, 84}, {"list", 5, 400}});
  // Interleave the kinds, as addresses of a real heap are.
  std::vector<size_t> order;
  for (size_t i = 0; i < set.count(); ++i) order.push_back(i);
  KindedSet mixed = set.Subset(order);
  PackedAddresses interleaved;
  for (size_t i = 0; i < mixed.count(); ++i) {
    interleaved.push_back(0x1000 + 16 * ((i * 7) % mixed.count()));
  }
  mixed.addresses = std::move(interleaved);
  for (const char* spec : {"Clodo", "Type", "Size", "Type&Size"}) {
    KindedSet by = mixed.WithStoredClassifier(*Classifier::Parse(spec));
    std::vector<uint32_t> labels;
    for (const KindedSet::Row& r : by.Rows()) labels.push_back(r.label);
    std::vector<KindedSet> parts = by.SplitByLabels(labels);
    ASSERT_EQ(parts.size(), labels.size()) << spec;
    size_t total = 0;
    for (size_t p = 0; p < parts.size(); ++p) {
      KindedSet one = by.OfLabels({labels[p]});
      EXPECT_EQ(parts[p].addresses, one.addresses) << spec << p;
      EXPECT_EQ(parts[p].kinds, one.kinds) << spec << p;
      EXPECT_EQ(parts[p].sizes, one.sizes) << spec << p;
      EXPECT_EQ(parts[p].labels.of, one.labels.of) << spec << p;
      EXPECT_EQ(parts[p].PartitionTable(), one.PartitionTable()) << spec << p;
      total += parts[p].count();
    }
    EXPECT_EQ(total, by.count()) << spec;
  }
}

// The table orders and names only the rows of its page: it must print
// what the whole stat prints, for every page size around the row count
// (a hint for two or more rows left, one more row instead of a hint for
// one), with rows that tie on size and count ordered by name, and the
// row order of Rows(limit) the start of Rows()'s.
TEST(PartitionTableTest, FirstPageEqualsTheWholeStatsPage) {
  std::vector<std::tuple<std::string, int, int>> rows;
  rows.reserve(14);
  for (int i = 0; i < 14; ++i) {
    // Pairs that tie on size and count, named out of order.
    rows.emplace_back("kind" + std::to_string((i * 7) % 14), 1 + i / 4,
                      64 * (1 + i / 2));
  }
  KindedSet set = Make(rows);
  for (size_t max_rows :
       {size_t{0}, size_t{1}, size_t{5}, size_t{10}, size_t{12}, size_t{13},
        size_t{14}, size_t{15}, SIZE_MAX}) {
    SCOPED_TRACE(max_rows);
    EXPECT_EQ(set.PartitionTable(max_rows),
              set.ToStat().Table(0, max_rows, /*label=*/true));
  }
  const std::vector<KindedSet::Row> all = set.Rows();
  ASSERT_EQ(all.size(), 14u);
  size_t counted = 0;
  const std::vector<KindedSet::Row> first = set.Rows(4, &counted);
  EXPECT_EQ(counted, 14u);
  ASSERT_EQ(first.size(), 4u);
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].kind, all[i].kind);
    EXPECT_EQ(first[i].size, all[i].size);
  }
  EXPECT_EQ(set.PartitionTable(10).find("<4 more rows."),
            set.PartitionTable(10).rfind('<'));
}

}  // namespace
}  // namespace annex::glue
