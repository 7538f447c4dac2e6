// Heap records as files: the labels survive a stat record's round trip,
// both formats read back through ReadRecordFile, rotation keeps the file
// under its limit, and bad files get clear errors within the limits.
#include "glue/heap_record.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace annex::glue {
namespace {

HeapRecord Sample(int64_t leaks) {
  HeapRecord r;
  r.time_us = 1700000000000000 + leaks;
  r.pause_us = 1234;
  r.rss_bytes = 5 << 20;
  r.labels = {4242, "host-a", "app.py --flag \"q\"\n", "3.11.2"};
  for (Stat* s : {&r.clodo, &r.type}) {
    s->kind_header = s == &r.clodo ? "Kind (class / dict of class)" : "Kind";
    s->er = s == &r.clodo ? "Clodo" : "Type";
    s->rows = {{"__main__.Leak", leaks, leaks * 56}, {"str", 10, 600}};
    s->count = leaks + 10;
    s->size = leaks * 56 + 600;
    s->time_made_us = r.time_us;
  }
  return r;
}

std::string TempPath(const std::string& name) {
  std::string path = absl::StrCat(::testing::TempDir(), "/", name);
  ::unlink(path.c_str());
  ::unlink((path + ".1").c_str());
  return path;
}

int64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

TEST(HeapRecordTest, StatTextCarriesLabelsAsFieldsThatReadBack) {
  const std::string text = Sample(7).Text(RecordFormat::kStat);
  absl::StatusOr<std::vector<Stat>> stats = Stat::ParseRecords(text);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->size(), 2u);
  EXPECT_EQ((*stats)[0].er, "Clodo");
  EXPECT_EQ((*stats)[1].er, "Type");
  EXPECT_EQ((*stats)[0].rows, Sample(7).clodo.rows);
  std::vector<std::pair<std::string, std::string>> want = {
      {"record", "annex.record/1"}, {"pid", "4242"},
      {"host", "host-a"},           {"program", "app.py --flag \"q\"\n"},
      {"python", "3.11.2"},         {"rss", absl::StrCat(5 << 20)},
      {"pause_us", "1234"}};
  EXPECT_EQ((*stats)[0].fields, want);
  // Written again, the record is the same text (fields kept in order).
  EXPECT_EQ((*stats)[0].Record() + (*stats)[1].Record(), text);
}

TEST(HeapRecordTest, BothFormatsReadBackAsTheSameJsonLines) {
  const std::string stat_path = TempPath("records.stat");
  const std::string json_path = TempPath("records.jsonl");
  RecordFile stat_file(stat_path, kDefaultRecordMaxBytes);
  RecordFile json_file(json_path, kDefaultRecordMaxBytes);
  // The last record carries retainers (glue/retainers.h), with a kind that
  // needs escaping in JSON and in the stat record's field.
  const std::string retainers =
      "[{\"kind\":\"a \\\"b\\\" \\\\ c\",\"count\":1,\"retained\":5,"
      "\"children\":[]}]";
  // The second and last carry growth paths (glue/growth_paths.h).
  const std::string growth =
      "[{\"kind\":\"__main__.Leak\",\"count\":1000,\"size\":56000,"
      "\"count_growth\":1000,\"size_growth\":56000,\"new\":true,"
      "\"length\":3,\"path\":\"%R.sys.modules['app'].__dict__['k'][0]\"}]";
  for (int64_t leaks : {0, 1000, 2000}) {
    HeapRecord r = Sample(leaks);
    if (leaks == 2000) r.retainers_json = retainers;
    if (leaks > 0) r.growth_paths_json = growth;
    ASSERT_TRUE(stat_file.Append(r.Text(RecordFormat::kStat)).ok());
    ASSERT_TRUE(json_file.Append(r.Text(RecordFormat::kJsonl)).ok());
  }
  absl::StatusOr<std::vector<std::string>> from_stat =
      ReadRecordFile(stat_path);
  absl::StatusOr<std::vector<std::string>> from_json =
      ReadRecordFile(json_path);
  ASSERT_TRUE(from_stat.ok()) << from_stat.status();
  ASSERT_TRUE(from_json.ok()) << from_json.status();
  ASSERT_EQ(from_stat->size(), 3u);
  EXPECT_EQ(*from_stat, *from_json);
  EXPECT_NE((*from_json)[2].find("{\"kind\":\"__main__.Leak\",\"count\":2000,"
                                 "\"size\":112000}"),
            std::string::npos)
      << (*from_json)[2];
  EXPECT_NE((*from_json)[2].find(absl::StrCat(",\"retainers\":", retainers)),
            std::string::npos)
      << (*from_json)[2];
  EXPECT_EQ((*from_json)[1].find("retainers"), std::string::npos);
  for (size_t i : {1, 2}) {
    EXPECT_NE((*from_json)[i].find(absl::StrCat(",\"growth_paths\":", growth)),
              std::string::npos)
        << (*from_json)[i];
  }
  EXPECT_EQ((*from_json)[0].find("growth_paths"), std::string::npos);
  EXPECT_NE((*from_json)[0].find("\"program\":\"app.py --flag \\\"q\\\"\\n\""),
            std::string::npos)
      << (*from_json)[0];
  struct stat st {};
  ASSERT_EQ(::stat(stat_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(HeapRecordTest, RotatesToDotOneAtTheLimit) {
  const std::string path = TempPath("rotating.jsonl");
  const std::string one = Sample(1).Text(RecordFormat::kJsonl);
  const uint64_t limit = one.size() * 3;  // three records a file
  RecordFile file(path, limit);
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(file.Append(Sample(1).Text(RecordFormat::kJsonl)).ok());
    EXPECT_LE(static_cast<uint64_t>(FileSize(path)), limit);
  }
  EXPECT_EQ(file.rotations(), 2);
  EXPECT_EQ(FileSize(path), static_cast<int64_t>(one.size()));  // 7 = 3+3+1
  EXPECT_EQ(FileSize(path + ".1"), static_cast<int64_t>(3 * one.size()));
  absl::StatusOr<std::vector<std::string>> older = ReadRecordFile(path + ".1");
  ASSERT_TRUE(older.ok()) << older.status();
  EXPECT_EQ(older->size(), 3u);
}

TEST(HeapRecordTest, BadFilesGetClearErrors) {
  absl::StatusOr<std::vector<std::string>> r =
      ReadRecordFile(TempPath("missing"));
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  r = ReadRecordFile("/dev/zero");
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "character device"));
  r = ReadRecordFile(::testing::TempDir());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "a directory"))
      << r.status();

  const std::string garbage = TempPath("garbage");
  std::ofstream(garbage) << "\x7f"
                            "ELF\x01\x02 not records\n";
  r = ReadRecordFile(garbage);
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "holds no heap records"));

  const std::string empty = TempPath("empty");
  std::ofstream(empty) << "\n\n";
  r = ReadRecordFile(empty);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "empty")) << r.status();

  // A stat file cut in the middle of a record.
  const std::string cut = TempPath("cut.stat");
  const std::string text = Sample(3).Text(RecordFormat::kStat);
  std::ofstream(cut) << text.substr(0, text.size() / 3);
  r = ReadRecordFile(cut);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "cut.stat"));
  EXPECT_TRUE(absl::StrContains(r.status().message(), "incomplete"))
      << r.status();

  // A line past the limit is refused when seen, not read whole.
  const std::string longline = TempPath("long.jsonl");
  std::ofstream(longline) << "{" << std::string(1 << 20, 'x');
  RecordReadLimits small;
  small.max_line_bytes = 4096;
  r = ReadRecordFile(longline, small);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "longer than 4096"))
      << r.status();
  // Many records past the total limit.
  const std::string many = TempPath("many.jsonl");
  {
    RecordFile file(many, kDefaultRecordMaxBytes);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(file.Append(Sample(i).Text(RecordFormat::kJsonl)).ok());
    }
  }
  small.max_total_bytes = 8192;
  r = ReadRecordFile(many, small);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "the limit"))
      << r.status();
}

TEST(HeapRecordTest, FormatNames) {
  EXPECT_EQ(*ParseRecordFormat("stat"), RecordFormat::kStat);
  EXPECT_EQ(*ParseRecordFormat("jsonl"), RecordFormat::kJsonl);
  EXPECT_FALSE(ParseRecordFormat("xml").ok());
}

}  // namespace
}  // namespace annex::glue
