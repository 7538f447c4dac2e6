// The Prometheus families the endpoint serves, from synthetic snapshots (no
// Python, no server): names and types follow Prometheus's conventions, the
// kind series stay the same set as the largest kinds change, the walk pause
// histogram is cumulative, and the process figures come from /proc.
#include <unistd.h>

#include <cmath>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "monitor/watchdog/internal/kind_tracker.h"
#include "monitor/watchdog/internal/metrics_endpoint.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace annex::watchdog::internal {
namespace {

std::vector<KindFigures> Walk(
    const std::vector<std::pair<std::string, int64_t>>& bytes_by_kind) {
  std::vector<KindFigures> out;
  out.reserve(bytes_by_kind.size());
  for (const auto& [kind, bytes] : bytes_by_kind) {
    out.push_back({kind, 1, bytes});
  }
  return out;  // the caller lists them largest first
}

std::vector<std::string> Names(const std::vector<KindFigures>& rows) {
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (const KindFigures& k : rows) out.push_back(k.kind);
  return out;
}

TEST(KindTrackerTest, KeepsTheSameSeriesAsTheLargestKindsChange) {
  KindTracker tracker(/*per_walk=*/2, /*capacity=*/3);
  std::vector<KindFigures> rows =
      tracker.Update(Walk({{"a", 100}, {"b", 50}, {"c", 10}, {"d", 5}}));
  EXPECT_EQ(Names(rows), (std::vector<std::string>{"a", "b", "other"}));
  EXPECT_EQ(rows[2].bytes, 15);  // c and d
  EXPECT_EQ(rows[2].count, 2);

  // c grows past a and b: it enters (room for one more); a is gone from
  // this walk but keeps its series, at zero.
  rows = tracker.Update(Walk({{"c", 500}, {"d", 300}, {"b", 50}}));
  EXPECT_EQ(Names(rows), (std::vector<std::string>{"a", "b", "c", "other"}));
  EXPECT_EQ(rows[0].bytes, 0);
  EXPECT_EQ(rows[0].count, 0);
  EXPECT_EQ(rows[2].bytes, 500);
  EXPECT_EQ(rows[3].bytes, 300);  // d: no room left

  // Full: nothing new enters, ever; the rows still add up to the walk.
  rows = tracker.Update(Walk({{"e", 900}, {"d", 300}, {"a", 1}}));
  EXPECT_EQ(Names(rows), (std::vector<std::string>{"a", "b", "c", "other"}));
  int64_t total = 0;
  for (const KindFigures& k : rows) total += k.bytes;
  EXPECT_EQ(total, 1201);
  EXPECT_EQ(rows.back().bytes, 1200);
}

TEST(KindTrackerTest, AKindNamedOtherGoesIntoTheBucket) {
  KindTracker tracker(5, 5);
  std::vector<KindFigures> rows =
      tracker.Update(Walk({{"other", 100}, {"x", 50}}));
  EXPECT_EQ(Names(rows), (std::vector<std::string>{"x", "other"}));
  EXPECT_EQ(rows[1].bytes, 100);
}

TEST(KindTrackerTest, AnEmptyWalkGivesTheBucketAlone) {
  KindTracker tracker(5, 5);
  std::vector<KindFigures> rows = tracker.Update({});
  EXPECT_EQ(Names(rows), (std::vector<std::string>{"other"}));
  EXPECT_EQ(rows[0].bytes, 0);
}

TEST(DurationHistogramTest, CountsEachObservationInTheFirstBucketThatHoldsIt) {
  DurationHistogram h = DurationHistogram::WithBounds({0.01, 0.1});
  h.Add(absl::Milliseconds(10));   // le 0.01 (bounds are inclusive)
  h.Add(absl::Milliseconds(50));   // le 0.1
  h.Add(absl::Milliseconds(500));  // +Inf
  EXPECT_EQ(h.bucket_counts, (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(h.count, 3);
  EXPECT_NEAR(h.sum_seconds, 0.56, 1e-9);
}

std::string Text(const std::vector<prometheus::MetricFamily>& families) {
  return prometheus::TextSerializer().Serialize(families);
}

Metrics Snapshot() {
  Metrics m;
  m.running = true;
  m.heartbeats_sent = 7;
  m.exceptions_raised = 2;
  m.exceptions_dropped = 3;
  m.memory.source = MemorySource::kHeapEngine;
  m.memory.object_count = 1234;
  m.memory.python_bytes = 56789;
  m.memory.age = absl::Milliseconds(250);
  m.memory.tracked_kinds = {{"dict", 10, 1000}, {"other", 5, 50}};
  m.heap_walk_pauses = DurationHistogram::WithBounds({0.01, 0.1});
  m.heap_walk_pauses.Add(absl::Milliseconds(5));
  m.heap_walk_pauses.Add(absl::Milliseconds(20));
  return m;
}

TEST(MetricFamiliesTest, NamesFollowPrometheusConventions) {
  ProcessFigures process = ReadProcessFigures();
  std::vector<prometheus::MetricFamily> families =
      MetricFamilies(Snapshot(), process);
  std::set<std::string> names;
  for (const prometheus::MetricFamily& f : families) {
    EXPECT_TRUE(names.insert(f.name).second) << "twice: " << f.name;
    const bool standard = f.name.rfind("process_", 0) == 0;
    EXPECT_TRUE(standard || f.name.rfind("annex_", 0) == 0) << f.name;
    const bool total = f.name.size() > 6 &&
                       f.name.compare(f.name.size() - 6, 6, "_total") == 0;
    // _total exactly on counters.
    EXPECT_EQ(total, f.type == prometheus::MetricType::Counter) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
    for (const char* bad : {"millis", "micros", "nanos", "_ms", "kib", "mib"}) {
      EXPECT_EQ(f.name.find(bad), std::string::npos) << f.name;
    }
  }
  for (const char* name :
       {"annex_build_info", "process_cpu_seconds_total",
        "process_start_time_seconds", "process_resident_memory_bytes",
        "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
        "annex_python_objects", "annex_python_object_bytes",
        "annex_python_kind_objects", "annex_python_kind_bytes",
        "annex_heap_walk_pause_seconds", "annex_watchdog_stalls_total",
        "annex_watchdog_exceptions_raised_total",
        "annex_watchdog_exceptions_dropped_total"}) {
    EXPECT_EQ(names.count(name), 1u) << name;
  }
  // Renamed: the standard name replaces it.
  EXPECT_EQ(names.count("annex_process_resident_memory_bytes"), 0u);
}

TEST(MetricFamiliesTest, SerializesBuildInfoKindsAndTheHistogram) {
  ProcessFigures process;  // all unknown: no process_* family
  BuildInfo build{"1.2.3", "3.11.2", "abc123"};
  const std::string text = Text(MetricFamilies(Snapshot(), process, build));
  EXPECT_NE(text.find("annex_build_info{version=\"1.2.3\",python_version="
                      "\"3.11.2\",commit=\"abc123\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("process_"), std::string::npos) << text;
  EXPECT_NE(text.find("annex_python_kind_bytes{kind=\"dict\"} 1000\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("annex_python_kind_objects{kind=\"other\"} 5\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("annex_python_objects{source=\"heap_engine\"} 1234\n"),
            std::string::npos)
      << text;
  // The exception action's two outcomes, as counters.
  EXPECT_NE(text.find("# TYPE annex_watchdog_exceptions_dropped_total "
                      "counter\nannex_watchdog_exceptions_dropped_total 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("annex_watchdog_exceptions_raised_total 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE annex_heap_walk_pause_seconds histogram\n"),
            std::string::npos)
      << text;
  // Cumulative buckets, +Inf last, equal to the count.
  EXPECT_NE(text.find("annex_heap_walk_pause_seconds_bucket{le=\"0.01\"} 1\n"
                      "annex_heap_walk_pause_seconds_bucket{le=\"0.1\"} 2\n"
                      "annex_heap_walk_pause_seconds_bucket{le=\"+Inf\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("annex_heap_walk_pause_seconds_count 2\n"),
            std::string::npos);

  // Without a commit, no commit label.
  const std::string unstamped =
      Text(MetricFamilies(Snapshot(), process, {"1.2.3", "3.11.2", ""}));
  EXPECT_NE(unstamped.find("annex_build_info{version=\"1.2.3\","
                           "python_version=\"3.11.2\"} 1\n"),
            std::string::npos)
      << unstamped;
  // Without heap walks: neither the kinds nor the histogram.
  Metrics bare;
  const std::string none = Text(MetricFamilies(bare, process, build));
  EXPECT_EQ(none.find("annex_python_kind"), std::string::npos) << none;
  EXPECT_EQ(none.find("annex_heap_walk_pause_seconds"), std::string::npos);
  EXPECT_EQ(none.find("annex_python_sample_age_seconds"), std::string::npos);
}

TEST(MetricFamiliesTest, ThisBuildNamesItsVersions) {
  BuildInfo build = ThisBuild();
  EXPECT_FALSE(build.version.empty());
  EXPECT_EQ(build.python_version, PY_VERSION);
}

TEST(ProcessFiguresTest, ReadsThisProcess) {
  ProcessFigures p = ReadProcessFigures();
  EXPECT_GT(p.resident_bytes, 0);
  EXPECT_GE(p.virtual_bytes, p.resident_bytes);
  EXPECT_GE(p.cpu_seconds, 0);
  EXPECT_GT(p.max_fds, 0);
  // stdin, stdout and stderr at least, and not the directory read itself.
  EXPECT_GE(p.open_fds, 3);
  const int extra = dup(2);
  ASSERT_GE(extra, 0);
  EXPECT_EQ(ReadProcessFigures().open_fds, p.open_fds + 1);
  close(extra);
  // Started in the last day, not in the future (the clock's second).
  const double now = absl::ToUnixSeconds(absl::Now());
  EXPECT_LE(p.start_time_seconds, now + 1);
  EXPECT_GT(p.start_time_seconds, now - 86400);
}

}  // namespace
}  // namespace annex::watchdog::internal
