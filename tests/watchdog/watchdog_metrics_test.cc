// The watchdog's Prometheus endpoint end to end: a Monitor with the heap
// engine feeding the watchdog, scraped over a plain socket; the served
// numbers are the ones Monitor::Metrics() reports, and the stall counter
// moves after a provoked stall; the endpoint has object figures as soon as
// it is on.
#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "monitor/monitor.h"
#include "tests/testing/http.h"
#include "tests/testing/python_main.h"
#include "tests/watchdog/test_support.h"

namespace annex {
namespace {

using ::annex::testing::HttpGet;
using ::annex::testing::MetricValue;
using ::annex::testing::RunTargetCode;
using ::annex::watchdog::testing::EventRecorder;
using ::annex::watchdog::testing::InstallTestModule;
using ::annex::watchdog::testing::Release;
using ::annex::watchdog::testing::RunUntilGateOpens;
using ::annex::watchdog::testing::WaitUntil;

TEST(WatchdogMetricsTest, EndpointIsOffUnlessAskedFor) {
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_options.stall_timeout = absl::Seconds(5);
  ASSERT_TRUE(monitor.Start(options).ok());
  EXPECT_EQ(monitor.metrics_port(), -1);
  ASSERT_TRUE(monitor.Stop().ok());
}

TEST(WatchdogMetricsTest, TheEndpointHasObjectFiguresWithoutAHeapInterval) {
  // watchdog_heap_interval left at zero: with the endpoint on, the default
  // interval applies, and the first walk is made at once.
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_options.stall_timeout = absl::ZeroDuration();
  options.watchdog_options.memory_interval = absl::Milliseconds(20);
  options.watchdog_options.metrics_port = 0;
  ASSERT_TRUE(monitor.Start(options).ok());
  WaitUntil(
      [&] {
        return monitor.Metrics().memory.source ==
               watchdog::MemorySource::kHeapEngine;
      },
      "the first heap walk");
  const std::string text = HttpGet(monitor.metrics_port(), "/metrics");
  EXPECT_GT(MetricValue(text, "annex_python_objects{source=\"heap_engine\"}"),
            1000)
      << text;
  EXPECT_GE(MetricValue(text, "annex_heap_walk_pause_seconds_count"), 1)
      << text;
  ASSERT_TRUE(monitor.Stop().ok());

  // InfiniteDuration: no periodic walks, so no heap figures and no
  // histogram (no walk service at all without reports).
  options.watchdog_heap_interval = absl::InfiniteDuration();
  ASSERT_TRUE(monitor.Start(options).ok());
  WaitUntil([&] { return monitor.Metrics().memory.rss_bytes > 0; },
            "the first memory sample");
  const std::string off = HttpGet(monitor.metrics_port(), "/metrics");
  EXPECT_EQ(MetricValue(off, "annex_python_objects{source=\"heap_engine\"}"),
            -1)
      << off;
  EXPECT_EQ(off.find("annex_heap_walk_pause_seconds"), std::string::npos);
  ASSERT_TRUE(monitor.Stop().ok());
}

TEST(WatchdogMetricsTest, RejectsABadPort) {
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_options.metrics_port = 70000;
  absl::Status status = monitor.Start(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_FALSE(monitor.running());
}

TEST(WatchdogMetricsTest, RejectsAnAddressThatIsNotAnIpAddress) {
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_options.metrics_port = 0;
  options.watchdog_options.metrics_address = "localhost";
  absl::Status status = monitor.Start(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("IP address"), absl::string_view::npos)
      << status;
  EXPECT_FALSE(monitor.running());
}

TEST(WatchdogMetricsTest, ServesHeapFiguresAndStallsOnLoopback) {
  InstallTestModule();
  ASSERT_TRUE(
      RunTargetCode("class Widget:\n    pass\n"
                    "widgets = [Widget() for _ in range(20000)]\n"));
  EventRecorder recorder;
  Monitor monitor;
  Options options;
  options.watchdog = true;
  options.watchdog_heap_interval = absl::Milliseconds(100);
  options.watchdog_options.stall_timeout = absl::Milliseconds(300);
  options.watchdog_options.memory_interval = absl::Milliseconds(20);
  options.watchdog_options.metrics_port = 0;  // any free port
  // The spin below ends on the stall it is there to provoke, not on any
  // earlier event (a loaded machine can make the test's own GIL holds read
  // as a busy main thread).
  std::function<void(const watchdog::Event&)> record = recorder.Callback(false);
  options.watchdog_options.on_event = [record](const watchdog::Event& e) {
    record(e);
    if (e.type == watchdog::EventType::kStall &&
        e.stall_kind == watchdog::StallKind::kStuckInC) {
      Release();
    }
  };
  ASSERT_TRUE(monitor.Start(options).ok());
  const int port = monitor.metrics_port();
  ASSERT_GT(port, 0);

  // Wait for a sample taken from a heap walk.
  WaitUntil(
      [&] {
        return monitor.Metrics().memory.source ==
               watchdog::MemorySource::kHeapEngine;
      },
      "the first heap walk");
  // The main thread serves heartbeats only while it runs Python: it does
  // (sleeping in steps) until one was served, however long a loaded machine
  // takes. (Not WaitUntil: PyGILState_Check says yes on any thread once a
  // sub-interpreter existed, and the opener has no thread state.)
  const bool served = RunUntilGateOpens(
      [&monitor] { return monitor.Metrics().heartbeats_served >= 1; },
      [] {
        return RunTargetCode(
            "import _wdtest, time\n"
            "while not _wdtest.gate():\n"
            "    time.sleep(0.01)\n");
      });
  ASSERT_TRUE(served);
  watchdog::Metrics metrics = monitor.Metrics();
  std::string text = HttpGet(port, "/metrics");
  ASSERT_FALSE(text.empty());

  const double objects =
      MetricValue(text, "annex_python_objects{source=\"heap_engine\"}");
  const double bytes =
      MetricValue(text, "annex_python_object_bytes{source=\"heap_engine\"}");
  // At least the 20000 widgets and their list; the same order as the C++
  // figures (a later walk may have run in between).
  EXPECT_GT(objects, 20000) << text;
  EXPECT_GT(objects, metrics.memory.object_count / 2.0) << text;
  EXPECT_LT(objects, metrics.memory.object_count * 2.0) << text;
  EXPECT_GT(bytes, metrics.memory.python_bytes / 2.0) << text;
  EXPECT_LT(bytes, metrics.memory.python_bytes * 2.0) << text;
  // The widgets are among the largest kinds, with their real count.
  EXPECT_EQ(
      MetricValue(text, "annex_python_kind_objects{kind=\"__main__.Widget\"}"),
      20000)
      << text;
  EXPECT_GT(MetricValue(text, "annex_python_kind_bytes{kind=\"dict\"}"), 0)
      << text;
  bool widget_in_cpp = false;
  for (const watchdog::KindFigures& k : metrics.memory.top_kinds) {
    if (k.kind == "__main__.Widget") widget_in_cpp = k.count == 20000;
  }
  EXPECT_TRUE(widget_in_cpp);
  EXPECT_GT(MetricValue(text, "process_resident_memory_bytes"), 0);
  EXPECT_GT(MetricValue(text, "process_start_time_seconds"), 0);
  EXPECT_GE(MetricValue(text, "process_cpu_seconds_total"), 0);
  EXPECT_GT(MetricValue(text, "process_open_fds"), 0);
  // The walks' pauses: at least the one behind the figures above.
  EXPECT_GE(MetricValue(text, "annex_heap_walk_pause_seconds_count"), 1)
      << text;
  EXPECT_EQ(
      MetricValue(text, "annex_heap_walk_pause_seconds_count"),
      MetricValue(text, "annex_heap_walk_pause_seconds_bucket{le=\"+Inf\"}"));
  EXPECT_GT(MetricValue(text, "annex_heap_walk_pause_seconds_sum"), 0);
  // Every other kind adds up in "other".
  EXPECT_GT(MetricValue(text, "annex_python_kind_objects{kind=\"other\"}"), 0)
      << text;
  EXPECT_GT(MetricValue(text, "annex_watchdog_heartbeats_served_total"), 0);
  EXPECT_GE(MetricValue(text, "annex_watchdog_heartbeat_latency_seconds"), 0);
  EXPECT_EQ(MetricValue(text, "annex_watchdog_up"), 1);
  EXPECT_EQ(
      MetricValue(text, "annex_watchdog_stalls_total{kind=\"stuck_in_c\"}"), 0)
      << text;

  // A stall: the main thread spins in C holding the GIL until the
  // watchdog's callback releases it.
  ASSERT_TRUE(RunTargetCode("import _wdtest\n_wdtest.spin_in_c()\n"));
  recorder.WaitFor(1);
  text = HttpGet(port, "/metrics");
  EXPECT_EQ(
      MetricValue(text, "annex_watchdog_stalls_total{kind=\"stuck_in_c\"}"), 1)
      << text;
  EXPECT_EQ(
      monitor.Metrics()
          .stalls_by_kind[static_cast<int>(watchdog::StallKind::kStuckInC)],
      1);
  ASSERT_TRUE(monitor.Stop().ok());
  EXPECT_EQ(HttpGet(port, "/metrics"), "");  // the endpoint is gone
  ASSERT_TRUE(RunTargetCode("del widgets, Widget\n"));
}

}  // namespace
}  // namespace annex
