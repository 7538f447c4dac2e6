// The watchdog's Prometheus endpoint: see metrics_endpoint.h.
#include "monitor/watchdog/internal/metrics_endpoint.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"

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

}  // namespace

std::vector<MetricFamily> MetricFamilies(const Metrics& m) {
  std::vector<MetricFamily> out;
  auto add_one = [&](const char* name, const char* help, MetricType type,
                     double value) {
    out.push_back(Family(name, help, type));
    Add(out.back(), value);
  };
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

  if (m.memory.rss_bytes >= 0) {
    add_one("annex_process_resident_memory_bytes",
            "Resident set size of the process (last sample)", MetricType::Gauge,
            static_cast<double>(m.memory.rss_bytes));
  }
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
  if (!m.memory.top_kinds.empty()) {
    out.push_back(Family("annex_python_kind_objects",
                         "Objects of the largest kinds (heap engine)",
                         MetricType::Gauge));
    for (const KindFigures& k : m.memory.top_kinds) {
      Add(out.back(), static_cast<double>(k.count), {{"kind", k.kind}});
    }
    out.push_back(Family("annex_python_kind_bytes",
                         "Bytes in the largest kinds (heap engine)",
                         MetricType::Gauge));
    for (const KindFigures& k : m.memory.top_kinds) {
      Add(out.back(), static_cast<double>(k.bytes), {{"kind", k.kind}});
    }
  }
  return out;
}

class MetricsEndpoint::Collector : public prometheus::Collectable {
 public:
  explicit Collector(std::function<Metrics()> snapshot)
      : snapshot_(std::move(snapshot)) {}
  // Where: a civetweb worker thread, per scrape; no Python.
  std::vector<MetricFamily> Collect() const override {
    return MetricFamilies(snapshot_());
  }

 private:
  std::function<Metrics()> snapshot_;
};

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& address, int port, std::function<Metrics()> snapshot) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad metrics port ", port));
  }
  if (address.empty()) {
    return absl::InvalidArgumentError("empty metrics address");
  }
  // civetweb's listening_ports syntax: IPv6 addresses in brackets.
  const std::string bind = address.find(':') != std::string::npos
                               ? absl::StrCat("[", address, "]:", port)
                               : absl::StrCat(address, ":", port);
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  endpoint->collector_ = std::make_shared<Collector>(std::move(snapshot));
  try {
    // Two threads: a scrape and a health check may overlap.
    endpoint->exposer_ = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", bind, "num_threads", "2"});
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", bind, ": ", e.what()));
  }
  endpoint->exposer_->RegisterCollectable(endpoint->collector_);
  std::vector<int> ports = endpoint->exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", bind, ": no port bound"));
  }
  endpoint->port_ = ports[0];
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() {
  // The Exposer's destructor stops civetweb and joins its threads, so no
  // scrape runs after this.
  exposer_.reset();
}

}  // namespace annex::watchdog::internal
