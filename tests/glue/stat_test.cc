// glue::Stat on fixed rows: Heapy's partition and difference tables column
// for column, paging (.more), row selection, "<Other>" folding, the dump
// record's exact round trip, and clear errors for malformed records.
#include "glue/stat.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace annex::glue {
namespace {

Stat Make(std::vector<StatRow> rows,
          const std::string& header = "Kind (class / dict of class)") {
  Stat s;
  s.kind_header = header;
  for (const StatRow& r : rows) {
    s.count += r.count;
    s.size += r.size;
  }
  s.rows = std::move(rows);
  s.time_made_us = 1718000000123456;
  return s;
}

// A and B of the difference tests: A has more dicts and lists, fewer ints,
// and no str.
Stat A() {
  return Make({{"dict (no owner)", 3, 744}, {"list", 2, 144}, {"int", 1, 28}});
}
Stat B() { return Make({{"list", 1, 72}, {"int", 2, 56}, {"str", 1, 50}}); }

TEST(StatTest, PartitionTableIsHeapys) {
  EXPECT_EQ(A().Table(),
            "Partition of a set of 6 objects. Total size = 916 bytes.\n"
            " Index  Count   %     Size   % Cumulative  % Kind (class / dict "
            "of class)\n"
            "     0      3  50      744  81       744  81 dict (no owner)\n"
            "     1      2  33      144  16       888  97 list\n"
            "     2      1  17       28   3       916 100 int\n");
}

TEST(StatTest, DifferenceIsHeapysLayoutAndOrder) {
  absl::StatusOr<Stat> d = Stat::Diff(A(), B(), 42);
  ASSERT_TRUE(d.ok()) << d.status();
  // Rows by absolute size difference; kinds only in B are negative.
  EXPECT_EQ(d->Table(),
            "Summary of difference operation (A-B).\n"
            "        Count     Size\n"
            "  A         6      916\n"
            "  B         4      178\n"
            "  A-B       2      738  =       415 % of B\n"
            "\n"
            "Differences by kind, largest absolute size diffs first.\n"
            " Index  Count     Size  Cumulative  % of B Kind (class / dict "
            "of class)\n"
            "     0      3      744       744       418 dict (no owner)\n"
            "     1      1       72       816       458 list\n"
            "     2     -1      -50       766       430 str\n"
            "     3     -1      -28       738       415 int\n");
  EXPECT_EQ(d->format, Stat::Format::kDiff);
  EXPECT_EQ(d->count, A().count - B().count);
  EXPECT_EQ(d->size, A().size - B().size);
  EXPECT_EQ(d->b_count, 4);
  EXPECT_EQ(d->b_size, 178);
  EXPECT_EQ(d->time_made_us, 42);
}

TEST(StatTest, DifferenceOfEqualStatsHasNoRows) {
  absl::StatusOr<Stat> d = Stat::Diff(A(), A(), 0);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->rows.empty());
  EXPECT_EQ(d->Table(),
            "Summary of difference operation (A-B).\n"
            "        Count     Size\n"
            "  A         6      916\n"
            "  B         6      916\n"
            "  A-B       0        0  =         0 % of B\n");
  // B empty: no percentage of it.
  d = Stat::Diff(A(), Make({}), 0);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->Table().find("  A-B       6      916  =    (n.a.) % of B\n"),
            std::string::npos)
      << d->Table();
}

TEST(StatTest, DifferenceNeedsTheSameClassifier) {
  absl::StatusOr<Stat> d = Stat::Diff(A(), Make({{"int", 1, 28}}, "Type"), 0);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("Mismatching table kind header"),
            std::string::npos);
}

Stat ManyRows(int n) {
  std::vector<StatRow> rows;
  rows.reserve(n);
  for (int i = 0; i < n; ++i)
    rows.push_back({"k" + std::to_string(i), 1, 1000 - i});
  return Make(rows);
}

TEST(StatTest, PagesTenRowsAtATimeAsHeapysMore) {
  Stat s = ManyRows(25);
  std::string top = s.Table();
  EXPECT_NE(top.find("     9      1"), std::string::npos);
  EXPECT_EQ(top.find("    10      1"), std::string::npos);
  EXPECT_NE(top.find("<15 more rows. Type e.g. '_.more' to view.>\n"),
            std::string::npos);
  ASSERT_EQ(s.PageEnd(0), 10u);
  // The second page: no label, the row header, rows 10..19 with their
  // indexes and cumulative sizes, and a hint for the rest.
  std::string page = s.Table(10, 10, /*label=*/false);
  int64_t cumulative = 0;
  for (int i = 0; i <= 10; ++i) cumulative += 1000 - i;
  EXPECT_EQ(page.substr(0, page.find('\n')),
            " Index  Count   %     Size   % Cumulative  % Kind (class / dict "
            "of class)");
  EXPECT_NE(page.find("    10      1   4      990   4 " +
                      std::string(9 - std::to_string(cumulative).size(), ' ') +
                      std::to_string(cumulative)),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("    19      1"), std::string::npos);
  EXPECT_EQ(page.find("    20      1"), std::string::npos);
  EXPECT_NE(page.find("<5 more rows."), std::string::npos);
  EXPECT_EQ(page.find("Partition of"), std::string::npos);
  ASSERT_EQ(s.PageEnd(10), 20u);
  // The last page: five rows, no hint; after it, nothing.
  std::string last = s.Table(20, 10, false);
  EXPECT_NE(last.find("    24      1"), std::string::npos);
  EXPECT_EQ(last.find("more rows"), std::string::npos);
  EXPECT_EQ(s.PageEnd(20), 25u);
  EXPECT_EQ(s.Table(25, 10, false), "");
  // Eleven rows left: the eleventh is shown rather than a hint for one.
  Stat eleven = ManyRows(21);
  EXPECT_EQ(eleven.PageEnd(10), 21u);
  EXPECT_NE(eleven.Table(10, 10, false).find("    20      1"),
            std::string::npos);
  // Everything at once.
  EXPECT_EQ(s.Table(0, ~size_t{0}).find("more rows"), std::string::npos);
}

TEST(StatTest, SelectedRowsMakeAStatOfTheirOwn) {
  Stat s = A().Select({1, 2});
  ASSERT_EQ(s.rows.size(), 2u);
  EXPECT_EQ(s.rows[0], (StatRow{"list", 2, 144}));
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.size, 172);
  EXPECT_EQ(s.kind_header, A().kind_header);
  EXPECT_NE(s.Table().find("Partition of a set of 3 objects. Total size = 172 "
                           "bytes.\n"),
            std::string::npos);
}

TEST(StatTest, LimitedFoldsTheRestIntoOtherBySize) {
  Stat s = Make({{"a", 1, 500}, {"b", 4, 300}, {"c", 10, 200}, {"d", 10, 200}});
  Stat l = s.Limited(1);
  ASSERT_EQ(l.rows.size(), 2u);
  // <Other> (700 bytes) is larger than "a", so it comes first.
  EXPECT_EQ(l.rows[0], (StatRow{"<Other>", 24, 700}));
  EXPECT_EQ(l.rows[1], (StatRow{"a", 1, 500}));
  EXPECT_EQ(l.count, s.count);
  EXPECT_EQ(l.size, s.size);
  Stat l3 = s.Limited(3);
  ASSERT_EQ(l3.rows.size(), 4u);
  EXPECT_EQ(l3.rows[3], (StatRow{"<Other>", 10, 200}));
  EXPECT_EQ(s.Limited(0), s);
  EXPECT_EQ(s.Limited(4), s);
}

TEST(StatTest, RecordReadsBackExactly) {
  Stat s = Make({{"with space", 1, 10},
                 {"it's \"quoted\"", 2, 20},
                 {"back\\slash \\n not a newline", 3, 30},
                 {"line\nfeed and\r return", 4, 40},
                 {"Größe ∑ 名前", 5, 50},
                 {"      248", 6, 60},  // Size kinds lead with spaces
                 {"trailing ", 7, 70},
                 {"", 8, 80}},
                "Type & Individual Size");
  s.er = "Type&Size";
  Stat b = s.Select({0, 4});
  absl::StatusOr<Stat> d = Stat::Diff(s, b, 1718000000000001);
  ASSERT_TRUE(d.ok());
  std::string text = s.Record() + b.Record() + "\n" + d->Record();
  absl::StatusOr<std::vector<Stat>> back = Stat::ParseRecords(text);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 3u);
  EXPECT_EQ((*back)[0], s);
  EXPECT_EQ((*back)[0].time_made_us, s.time_made_us);
  EXPECT_EQ((*back)[0].er, "Type&Size");
  EXPECT_EQ((*back)[1], b);
  EXPECT_EQ((*back)[2], *d);
  EXPECT_EQ((*back)[2].time_made_us, 1718000000000001);
  EXPECT_EQ((*back)[2].b_size, b.size);
  // One line per field and row: the line feed in a kind is escaped.
  const std::string record = s.Record();
  EXPECT_EQ(std::count(record.begin(), record.end(), '\n'),
            static_cast<long>(10 + s.rows.size()));
  // Equality ignores only the time.
  Stat later = s;
  later.time_made_us += 5;
  EXPECT_EQ(later, s);
  later.rows[2].size += 1;
  EXPECT_NE(later, s);
}

TEST(StatTest, ReadsHeapysOwnRecords) {
  // As guppy3's Stat.dump writes it (no .er line, CRLF tolerated).
  const char* heapy =
      ".loader: _load_stat\n"
      ".format: SetFormat\n"
      ".timemade: 1718000000.500000\n"
      ".count: 3\n"
      ".size: 348\n"
      ".kindname: \n"
      ".kindheader: Kind (class / dict of class)\r\n"
      ".numrows: 2\n"
      ".r: 1 248 dict (no owner)\n"
      ".r: 2 100 C:\\tmp\\x.py:12\n"
      ".end: .loader: _load_stat\n";
  absl::StatusOr<std::vector<Stat>> r = Stat::ParseRecords(heapy);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  const Stat& s = (*r)[0];
  EXPECT_EQ(s.count, 3);
  EXPECT_EQ(s.time_made_us, 1718000000500000);
  EXPECT_EQ(s.kind_header, "Kind (class / dict of class)");
  EXPECT_EQ(s.kind_name, "");
  EXPECT_EQ(s.er, "");
  EXPECT_EQ(s.rows[1].kind, "C:\\tmp\\x.py:12");  // unknown escapes kept
}

TEST(StatTest, MalformedRecordsAreClearErrors) {
  const std::string good = A().Record();
  struct Case {
    std::string text;
    std::string message;
  } cases[] = {
      {"hello\n", "line 1: expected '.loader: _load_stat'"},
      {".loader: _load_other\n", "unknown loader '_load_other'"},
      {good.substr(0, good.size() - 30), "has no '.end:' line"},
      {good.substr(0, good.find(".r: ")) + ".r: x 2 int\n" +
           good.substr(good.find(".r: ")),
       "expected '.r: <count> <size> <kind>'"},
      {good.substr(0, good.find(".r: ")) + ".r: 1 2\n.end:\n", "expected '.r:"},
      {".loader: _load_stat\n.format: Bogus\n", "unknown format 'Bogus'"},
      {".loader: _load_stat\n.format: SetFormat\n.count: many\n",
       "'.count:' needs a number, got 'many'"},
      {".loader: _load_stat\n.format: SetFormat\n.count: 1\n.size: 1\n"
       ".kindheader: Type\n.numrows: 2\n.r: 1 1 int\n.end: x\n",
       ".numrows: 2 but 1 '.r:' lines"},
      {".loader: _load_stat\n.format: DiffFormat\n.count: 1\n.size: 1\n"
       ".kindheader: Type\n.numrows: 0\n.end: x\n",
       "needs '.b_count:' and '.b_size:'"},
      {".loader: _load_stat\n.count: 1\n.size: 1\n.numrows: 0\n.end: x\n",
       "no '.format:'"},
      {good + "garbage\n", "line 14: expected '.loader:"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<Stat>> r = Stat::ParseRecords(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << r.status().message() << "\nwanted: " << c.message;
  }
  absl::StatusOr<std::vector<Stat>> none = Stat::ParseRecords("\n\n");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace annex::glue
