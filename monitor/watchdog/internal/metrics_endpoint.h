// The watchdog's opt-in Prometheus endpoint: an HTTP server (civetweb, two
// threads) serving GET /metrics, with the families built from a Metrics
// snapshot at each scrape and written in Prometheus's text format
// (prometheus-cpp's serializer), so nothing is updated (and nothing costs)
// between scrapes.
//
//   auto endpoint = MetricsEndpoint::Start("127.0.0.1", 0, [&] {
//     return watchdog.Metrics();
//   });
//   (*endpoint)->port();   // the port actually bound
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "monitor/watchdog/watchdog.h"

struct mg_connection;
struct mg_context;

namespace prometheus {
struct MetricFamily;
}  // namespace prometheus

namespace annex::watchdog::internal {

// The standard process figures every Prometheus client library exports
// (process_*), read from /proc/self at each scrape; -1 where unknown.
struct ProcessFigures {
  double cpu_seconds = -1;         // user + system CPU time
  double start_time_seconds = -1;  // since the Unix epoch
  double resident_bytes = -1;
  double virtual_bytes = -1;
  double open_fds = -1;
  double max_fds = -1;  // the soft RLIMIT_NOFILE
};

// Reads them. Where: any thread, no Python; a few small /proc reads.
ProcessFigures ReadProcessFigures();

// What annex_build_info says. `commit` may be empty (unknown: no label).
struct BuildInfo {
  std::string version;         // Annex's (packaging/version.txt)
  std::string python_version;  // the Python this build runs (PY_VERSION)
  std::string commit;
};

// This build's. Where: any thread.
BuildInfo ThisBuild();

// The metric families for one snapshot (docs/watchdog.md, Metrics). Where:
// any thread, no Python.
std::vector<prometheus::MetricFamily> MetricFamilies(
    const Metrics& m, const ProcessFigures& process = ProcessFigures(),
    const BuildInfo& build = ThisBuild());

class MetricsEndpoint {
 public:
  // Listens on `address`:`port` (0: any free port). `snapshot` is called on
  // the server's threads at each scrape; it must be thread-safe and must
  // not take the GIL. `address` is an IPv4 address (IPv6 when civetweb
  // has it: Debian 12's has not). Errors: InvalidArgument for a bad port or
  // something other than an IP address; Unavailable when the address
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& address, int port, std::function<Metrics()> snapshot);

  // Stops the server; waits for scrapes in flight.
  ~MetricsEndpoint();

  int port() const { return port_; }

 private:
  MetricsEndpoint() = default;
  // civetweb's handler for /metrics. Where: a civetweb worker thread, per
  // scrape; no Python.
  static int Handle(mg_connection* conn, void* endpoint);

  std::function<Metrics()> snapshot_;
  mg_context* server_ = nullptr;
  int port_ = -1;
};

}  // namespace annex::watchdog::internal
