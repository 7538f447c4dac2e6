// `annex run --metrics-port` against Prometheus's own tools (Debian's
// `prometheus` package, installed by tools/install_deps.sh): `promtool check
// metrics` accepts a scrape with no warning, and a real Prometheus server
// scrapes the endpoint and answers PromQL with the program's object count,
// and every query of the Grafana dashboard (packaging/grafana/annex.json).
//
// Every wait is for a condition (a scrape shows the figures, the server has
// samples) and ends early when the process waited for has ended; every
// process is killed on any exit path (BackgroundProcess's destructor).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "tests/testing/http.h"

namespace annex {
namespace {

using ::annex::testing::AnnexBinary;
using ::annex::testing::BackgroundProcess;
using ::annex::testing::FileExists;
using ::annex::testing::FreeLoopbackPort;
using ::annex::testing::HttpGet;
using ::annex::testing::MetricValue;
using ::annex::testing::ProcessResult;
using ::annex::testing::RunProcess;

constexpr char kPromtool[] = "/usr/bin/promtool";
constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr char kMissing[] =
    " is not installed: Debian's prometheus package provides it "
    "(bash tools/install_deps.sh installs it)";

std::string TempDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/" + name + "-XXXXXX";
  return mkdtemp(dir.data()) != nullptr ? dir : "";
}

// A program with 20000 instances of one class that runs until `stop`
// exists.
std::string WriteProgram(const std::string& dir) {
  std::string path = dir + "/app.py";
  std::ofstream(path) << "import os, sys, time\n"
                         "class Widget:\n"
                         "    pass\n"
                         "widgets = [Widget() for _ in range(20000)]\n"
                         "while not os.path.exists(sys.argv[1]):\n"
                         "    time.sleep(0.02)\n";
  return path;
}

// Scrapes 127.0.0.1:`port` until the exposition contains `needle`; "" when
// `program` ended first.
std::string ScrapeUntil(int port, const std::string& needle,
                        const BackgroundProcess& program) {
  while (true) {
    const bool ended = program.ended();
    std::string text = HttpGet(port, "/metrics");
    if (text.find(needle) != std::string::npos) return text;
    if (ended) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Ends `annex run` through its program's stop file.
void Stop(BackgroundProcess& program, const std::string& stop_file) {
  std::ofstream(stop_file) << "stop\n";
  const ProcessResult& r = program.Join();
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(AnnexMetricsTest, PromtoolAcceptsAScrapeWithObjectFiguresByDefault) {
  if (!FileExists(kPromtool)) GTEST_SKIP() << kPromtool << kMissing;
  const std::string dir = TempDir("promtool");
  ASSERT_FALSE(dir.empty());
  const std::string stop = dir + "/stop";
  const int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  // No --heap-interval: with the endpoint on, walks run by default and the
  // first one is made at start.
  BackgroundProcess program({AnnexBinary(), "run", "--no-console", "--watchdog",
                             "30", "--metrics-port", std::to_string(port),
                             WriteProgram(dir), stop});
  const std::string text = ScrapeUntil(
      port, "annex_python_objects{source=\"heap_engine\"}", program);
  ASSERT_FALSE(text.empty()) << program.Join().err;
  EXPECT_GT(MetricValue(text, "annex_python_objects{source=\"heap_engine\"}"),
            1000)
      << text;
  EXPECT_GE(MetricValue(text, "annex_heap_walk_pause_seconds_count"), 1);
  EXPECT_NE(text.find("annex_build_info{"), std::string::npos) << text;
  EXPECT_GT(MetricValue(text, "process_resident_memory_bytes"), 0) << text;

  const ProcessResult check = RunProcess({kPromtool, "check", "metrics"}, text);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err << "\n" << text;
  EXPECT_EQ(check.out, "") << "promtool warned:\n" << check.out;
  EXPECT_EQ(check.err, "") << "promtool warned:\n" << check.err;
  Stop(program, stop);
  // The banner names the endpoint and its walks.
  EXPECT_NE(program.Join().err.find(
                absl::StrCat("annex: metrics at http://127.0.0.1:", port,
                             "/metrics (a heap walk every 15s")),
            std::string::npos)
      << program.Join().err;
}

TEST(AnnexMetricsTest, RefusesAMetricsAddressThatIsNotAnIpAddress) {
  const ProcessResult r =
      RunProcess({AnnexBinary(), "run", "--metrics-address", "localhost",
                  "--metrics-port", "0", "-c", "pass"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--metrics-address needs an IP address, not "
                       "'localhost'"),
            std::string::npos)
      << r.err;
}

// "%XX" for everything but unreserved characters.
std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// The body of Prometheus's /api/v1/query for `promql` ("" when the server
// refused it: a bad query is a 400).
std::string Query(int port, const std::string& promql) {
  return HttpGet(port, "/api/v1/query?query=" + UrlEncode(promql));
}

// The first sample value of a query's vector result, or -1 when there is
// none. The JSON is Prometheus's: "value":[<time>,"<number>"].
double FirstValue(const std::string& body) {
  size_t at = body.find("\"value\":[");
  if (at == std::string::npos) return -1;
  at = body.find(",\"", at);
  if (at == std::string::npos) return -1;
  return std::strtod(body.c_str() + at + 2, nullptr);
}

// The "expr" strings of a Grafana dashboard, JSON-unescaped (\" and \\).
std::vector<std::string> DashboardExpressions(const std::string& json) {
  std::vector<std::string> out;
  const std::string key = "\"expr\": \"";
  for (size_t at = json.find(key); at != std::string::npos;
       at = json.find(key, at)) {
    at += key.size();
    std::string expr;
    while (at < json.size() && json[at] != '"') {
      if (json[at] == '\\' && at + 1 < json.size()) ++at;
      expr += json[at++];
    }
    out.push_back(expr);
  }
  return out;
}

TEST(AnnexMetricsTest, PrometheusScrapesTheObjectCount) {
  if (!FileExists(kPrometheus)) GTEST_SKIP() << kPrometheus << kMissing;
  const std::string dir = TempDir("prometheus");
  ASSERT_FALSE(dir.empty());
  const std::string stop = dir + "/stop";
  const int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  BackgroundProcess program({AnnexBinary(), "run", "--no-console",
                             "--metrics-address", "127.0.0.1", "--metrics-port",
                             std::to_string(port), "--heap-interval", "0.2",
                             WriteProgram(dir), stop});
  // A walk that saw the widgets.
  const std::string text = ScrapeUntil(
      port, "annex_python_kind_objects{kind=\"__main__.Widget\"} 20000\n",
      program);
  ASSERT_FALSE(text.empty()) << program.Join().err;
  const double scraped =
      MetricValue(text, "annex_python_objects{source=\"heap_engine\"}");
  ASSERT_GT(scraped, 20000) << text;

  const std::string config = dir + "/prometheus.yml";
  std::ofstream(config) << "global:\n"
                           "  scrape_interval: 250ms\n"
                           "  scrape_timeout: 250ms\n"
                           "scrape_configs:\n"
                           "  - job_name: annex\n"
                           "    static_configs:\n"
                           "      - targets: ['127.0.0.1:"
                        << port << "']\n";
  const int web = FreeLoopbackPort();
  ASSERT_GT(web, 0);
  BackgroundProcess server(
      {kPrometheus, "--config.file=" + config,
       "--storage.tsdb.path=" + dir + "/data",
       absl::StrCat("--web.listen-address=127.0.0.1:", web),
       "--log.level=warn"});
  // Until the server holds a few samples of the endpoint (so rate() in the
  // dashboard's queries has two points at least), or it ended.
  const std::string widgets =
      "annex_python_kind_objects{kind=\"__main__.Widget\",job=\"annex\"}";
  while (FirstValue(Query(web, "count_over_time(" + widgets + "[1m])")) < 4) {
    ASSERT_FALSE(server.ended()) << "prometheus ended:\n" << server.Join().err;
    ASSERT_FALSE(program.ended()) << program.Join().err;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // The object count through PromQL: a positive number of the order of the
  // program's objects as the endpoint itself served them.
  const std::string answer =
      Query(web, "annex_python_objects{job=\"annex\",source=\"heap_engine\"}");
  ASSERT_NE(answer.find("\"status\":\"success\""), std::string::npos) << answer;
  const double objects = FirstValue(answer);
  EXPECT_GT(objects, 20000) << answer;
  EXPECT_GT(objects, scraped / 2) << answer;
  EXPECT_LT(objects, scraped * 2) << answer;
  EXPECT_EQ(FirstValue(Query(web, widgets)), 20000);
  EXPECT_GT(
      FirstValue(Query(web, "sum(annex_python_kind_bytes{job=\"annex\"})")), 0);

  // Every query of the dashboard parses and has data, with its variables
  // as Grafana would fill them for "All".
  std::ifstream in(std::string(std::getenv("TEST_SRCDIR")) +
                   "/annex/packaging/grafana/annex.json");
  std::stringstream json;
  json << in.rdbuf();
  const std::vector<std::string> exprs = DashboardExpressions(json.str());
  EXPECT_GE(exprs.size(), 10u);
  for (const std::string& expr : exprs) {
    const std::string promql = absl::StrReplaceAll(
        expr,
        {{"$__rate_interval", "1m"}, {"$job", ".*"}, {"$instance", ".*"}});
    const std::string body = Query(web, promql);
    EXPECT_NE(body.find("\"status\":\"success\""), std::string::npos)
        << promql << "\n"
        << body;
    EXPECT_EQ(body.find("\"result\":[]"), std::string::npos)
        << "no data: " << promql << "\n"
        << body;
  }

  server.Signal(SIGTERM);
  const ProcessResult& ended = server.Join();
  EXPECT_EQ(ended.exit_code, 0) << ended.err;
  Stop(program, stop);
}

}  // namespace
}  // namespace annex
