// The watchdog's Prometheus endpoint: see metrics_endpoint.h.
#include "monitor/watchdog/internal/metrics_endpoint.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "civetweb.h"
#include "monitor/watchdog/annex_build_info.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace annex::watchdog::internal {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(const char* name, const char* help, MetricType type) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

void Add(MetricFamily& f, double value,
         std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

// The whole of a small /proc file, or "" when it cannot be read.
std::string ReadSmallFile(const char* path) {
  std::string out;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1 << 20)) break;
  }
  close(fd);
  return out;
}

}  // namespace

ProcessFigures ReadProcessFigures() {
  ProcessFigures p;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  // /proc/self/stat: the command name is in parentheses and may hold
  // spaces; fields count from 3 after the last ')' (proc(5)).
  const std::string stat = ReadSmallFile("/proc/self/stat");
  const size_t paren = stat.rfind(')');
  if (paren != std::string::npos && ticks > 0) {
    std::vector<absl::string_view> f = absl::StrSplit(
        absl::string_view(stat).substr(paren + 1), ' ', absl::SkipEmpty());
    // f[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23,
    // rss 24.
    double utime, stime, starttime, vsize, rss;
    if (f.size() > 21 && absl::SimpleAtod(f[11], &utime) &&
        absl::SimpleAtod(f[12], &stime) &&
        absl::SimpleAtod(f[19], &starttime) &&
        absl::SimpleAtod(f[20], &vsize) && absl::SimpleAtod(f[21], &rss)) {
      p.cpu_seconds = (utime + stime) / ticks;
      p.virtual_bytes = vsize;
      p.resident_bytes = rss * page;
      // Boot time (/proc/stat's btime) plus the start in ticks after boot.
      const std::string proc_stat = ReadSmallFile("/proc/stat");
      for (absl::string_view line : absl::StrSplit(proc_stat, '\n')) {
        double btime;
        if (absl::ConsumePrefix(&line, "btime ") &&
            absl::SimpleAtod(line, &btime)) {
          p.start_time_seconds = btime + starttime / ticks;
          break;
        }
      }
    }
  }
  if (DIR* dir = opendir("/proc/self/fd")) {
    const int own = dirfd(dir);
    int64_t n = 0;
    while (const dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      int fd;
      if (absl::SimpleAtoi(e->d_name, &fd) && fd == own) continue;
      ++n;
    }
    closedir(dir);
    p.open_fds = static_cast<double>(n);
  }
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    p.max_fds = limit.rlim_cur == RLIM_INFINITY
                    ? std::numeric_limits<double>::infinity()
                    : static_cast<double>(limit.rlim_cur);
  }
  return p;
}

BuildInfo ThisBuild() {
  return BuildInfo{ANNEX_VERSION, PY_VERSION, ANNEX_COMMIT};
}

std::vector<MetricFamily> MetricFamilies(const Metrics& m,
                                         const ProcessFigures& process,
                                         const BuildInfo& build) {
  std::vector<MetricFamily> out;
  auto add_one = [&](const char* name, const char* help, MetricType type,
                     double value) {
    out.push_back(Family(name, help, type));
    Add(out.back(), value);
  };
  {
    std::vector<ClientMetric::Label> labels = {
        {"version", build.version}, {"python_version", build.python_version}};
    if (!build.commit.empty()) labels.push_back({"commit", build.commit});
    out.push_back(Family("annex_build_info",
                         "Annex build (always 1): version, Python version, "
                         "commit when known",
                         MetricType::Gauge));
    Add(out.back(), 1, std::move(labels));
  }

  // The standard process metrics (the names of Prometheus's client
  // libraries), so fleet dashboards and alerts made for them work as is.
  if (process.cpu_seconds >= 0) {
    add_one("process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds",
            MetricType::Counter, process.cpu_seconds);
  }
  if (process.start_time_seconds >= 0) {
    add_one("process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            MetricType::Gauge, process.start_time_seconds);
  }
  if (process.resident_bytes >= 0) {
    add_one("process_resident_memory_bytes", "Resident memory size in bytes",
            MetricType::Gauge, process.resident_bytes);
  }
  if (process.virtual_bytes >= 0) {
    add_one("process_virtual_memory_bytes", "Virtual memory size in bytes",
            MetricType::Gauge, process.virtual_bytes);
  }
  if (process.open_fds >= 0) {
    add_one("process_open_fds", "Number of open file descriptors",
            MetricType::Gauge, process.open_fds);
  }
  if (process.max_fds >= 0) {
    add_one("process_max_fds", "Maximum number of open file descriptors",
            MetricType::Gauge, process.max_fds);
  }

  add_one("annex_watchdog_up", "1 while the watchdog thread runs",
          MetricType::Gauge, m.running ? 1 : 0);
  add_one("annex_watchdog_heartbeats_sent_total",
          "Heartbeats queued to the target's main thread", MetricType::Counter,
          static_cast<double>(m.heartbeats_sent));
  add_one("annex_watchdog_heartbeats_served_total",
          "Heartbeats the target's main thread served", MetricType::Counter,
          static_cast<double>(m.heartbeats_served));
  add_one("annex_watchdog_heartbeat_latency_seconds",
          "Latency of the last heartbeat (queued to served)", MetricType::Gauge,
          absl::ToDoubleSeconds(m.heartbeat_latency_last));
  add_one("annex_watchdog_heartbeat_latency_max_seconds",
          "Largest heartbeat latency seen", MetricType::Gauge,
          absl::ToDoubleSeconds(m.heartbeat_latency_max));
  add_one("annex_watchdog_heartbeat_overdue_seconds",
          "Age of the outstanding heartbeat (0 when none)", MetricType::Gauge,
          absl::ToDoubleSeconds(m.heartbeat_overdue));

  out.push_back(Family("annex_watchdog_stalls_total",
                       "Stalls detected, by kind", MetricType::Counter));
  for (StallKind kind : {StallKind::kStuckInC, StallKind::kBusyPython,
                         StallKind::kBlockedWithoutGil}) {
    Add(out.back(),
        static_cast<double>(m.stalls_by_kind[static_cast<int>(kind)]),
        {{"kind", StallKindName(kind)}});
  }
  out.push_back(Family("annex_watchdog_memory_events_total",
                       "Memory events, by type", MetricType::Counter));
  Add(out.back(), static_cast<double>(m.memory_limit_events),
      {{"type", EventTypeName(EventType::kMemoryLimit)}});
  Add(out.back(), static_cast<double>(m.memory_growth_events),
      {{"type", EventTypeName(EventType::kMemoryGrowth)}});
  add_one("annex_watchdog_actions_suppressed_total",
          "Events whose actions the rate limit skipped", MetricType::Counter,
          static_cast<double>(m.actions_suppressed));
  add_one("annex_watchdog_exceptions_raised_total",
          "Thread states the exception action raised in", MetricType::Counter,
          static_cast<double>(m.exceptions_raised));
  add_one("annex_watchdog_exceptions_dropped_total",
          "Exception actions not raised because their stall had ended when "
          "the main thread could run them",
          MetricType::Counter, static_cast<double>(m.exceptions_dropped));

  const std::vector<ClientMetric::Label> source = {
      {"source", MemorySourceName(m.memory.source)}};
  if (m.memory.object_count >= 0) {
    out.push_back(Family("annex_python_objects",
                         "Live Python objects in the target (last sample)",
                         MetricType::Gauge));
    Add(out.back(), static_cast<double>(m.memory.object_count), source);
  }
  if (m.memory.python_bytes >= 0) {
    out.push_back(Family("annex_python_object_bytes",
                         "Bytes in the target's Python objects (last sample)",
                         MetricType::Gauge));
    Add(out.back(), static_cast<double>(m.memory.python_bytes), source);
  }
  if (m.memory.source == MemorySource::kHeapEngine) {
    add_one("annex_python_sample_age_seconds",
            "Age of the heap walk the Python figures come from",
            MetricType::Gauge, absl::ToDoubleSeconds(m.memory.age));
  }
  if (!m.memory.tracked_kinds.empty()) {
    out.push_back(Family("annex_python_kind_objects",
                         "Objects per kind (heap engine; a stable set of "
                         "tracked kinds, the rest in kind=\"other\")",
                         MetricType::Gauge));
    for (const KindFigures& k : m.memory.tracked_kinds) {
      Add(out.back(), static_cast<double>(k.count), {{"kind", k.kind}});
    }
    out.push_back(Family("annex_python_kind_bytes",
                         "Bytes per kind (heap engine; a stable set of "
                         "tracked kinds, the rest in kind=\"other\")",
                         MetricType::Gauge));
    for (const KindFigures& k : m.memory.tracked_kinds) {
      Add(out.back(), static_cast<double>(k.bytes), {{"kind", k.kind}});
    }
  }
  const DurationHistogram& pauses = m.heap_walk_pauses;
  if (!pauses.upper_bounds.empty() &&
      pauses.bucket_counts.size() == pauses.upper_bounds.size() + 1) {
    out.push_back(Family("annex_heap_walk_pause_seconds",
                         "How long each of the watchdog's heap walks paused "
                         "the target",
                         MetricType::Histogram));
    ClientMetric h;
    h.histogram.sample_count = static_cast<uint64_t>(pauses.count);
    h.histogram.sample_sum = pauses.sum_seconds;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < pauses.bucket_counts.size(); ++i) {
      cumulative += static_cast<uint64_t>(pauses.bucket_counts[i]);
      h.histogram.bucket.push_back(
          {cumulative, i < pauses.upper_bounds.size()
                           ? pauses.upper_bounds[i]
                           : std::numeric_limits<double>::infinity()});
    }
    out.back().metric.push_back(std::move(h));
  }
  return out;
}

int MetricsEndpoint::Handle(mg_connection* conn, void* data) {
  auto* self = static_cast<MetricsEndpoint*>(data);
  const mg_request_info* request = mg_get_request_info(conn);
  const bool head = std::strcmp(request->request_method, "HEAD") == 0;
  if (!head && std::strcmp(request->request_method, "GET") != 0) {
    mg_printf(conn,
              "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
              "Content-Length: 0\r\nConnection: close\r\n\r\n");
    return 405;
  }
  const std::string body = prometheus::TextSerializer().Serialize(
      MetricFamilies(self->snapshot_(), ReadProcessFigures()));
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            body.size());
  if (!head) mg_write(conn, body.data(), body.size());
  return 200;
}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& address, int port, std::function<Metrics()> snapshot) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad metrics port ", port));
  }
  in_addr v4;
  in6_addr v6;
  const bool is_v4 = inet_pton(AF_INET, address.c_str(), &v4) == 1;
  const bool is_v6 = !is_v4 && inet_pton(AF_INET6, address.c_str(), &v6) == 1;
  if (!is_v4 && !is_v6) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad metrics address '", address,
        "': an IP address is needed (e.g. 127.0.0.1, or 0.0.0.0 for all)"));
  }
  // civetweb's listening_ports syntax: IPv6 addresses in brackets.
  const std::string bind = is_v6 ? absl::StrCat("[", address, "]:", port)
                                 : absl::StrCat(address, ":", port);
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  endpoint->snapshot_ = std::move(snapshot);
  // Two threads: a scrape and a health check may overlap. A client that
  // sends nothing is dropped after 10 s, so it cannot hold a thread.
  const char* options[] = {
      "listening_ports",    bind.c_str(), "num_threads", "2",
      "request_timeout_ms", "10000",      nullptr};
  mg_callbacks callbacks{};
  // civetweb's own messages go to the error below, not to the host's
  // stderr.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.configuration_options = options;
  char text[256] = "";
  unsigned code = 0;
  mg_error_data error{};
  error.code = &code;
  error.text = text;
  error.text_buffer_size = sizeof text;
  endpoint->server_ = mg_start2(&init, &error);
  if (endpoint->server_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", bind, ": ",
        text[0] != '\0' ? text : "civetweb did not start",
        is_v6 && !mg_check_feature(8)
            ? " (this civetweb has no IPv6 support; Debian 12's has none)"
            : ""));
  }
  mg_set_request_handler(endpoint->server_, "/metrics",
                         &MetricsEndpoint::Handle, endpoint.get());
  mg_server_port ports[4] = {};
  const int n = mg_get_server_ports(endpoint->server_, 4, ports);
  if (n < 1 || ports[0].port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", bind, ": no port bound"));
  }
  endpoint->port_ = ports[0].port;
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() {
  // Stops civetweb and joins its threads, so no scrape runs after this.
  if (server_ != nullptr) mg_stop(server_);
}

}  // namespace annex::watchdog::internal
