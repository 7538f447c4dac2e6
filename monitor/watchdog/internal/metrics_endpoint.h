// The watchdog's opt-in Prometheus endpoint: prometheus-cpp's Exposer (an
// HTTP server on civetweb threads) serving GET /metrics, with the families
// built from a Metrics snapshot at each scrape, so nothing is updated (and
// nothing costs) between scrapes.
//
//   auto endpoint = MetricsEndpoint::Start("127.0.0.1", 0, [&] {
//     return watchdog.GetMetrics();
//   });
//   (*endpoint)->port();   // the port actually bound
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "monitor/watchdog/watchdog.h"

namespace prometheus {
class Exposer;
struct MetricFamily;
}  // namespace prometheus

namespace annex::watchdog::internal {

// The metric families for one snapshot. Where: any thread, no Python.
std::vector<prometheus::MetricFamily> MetricFamilies(const Metrics& m);

class MetricsEndpoint {
 public:
  // Listens on `address`:`port` (0: any free port). `snapshot` is called on
  // the server's threads at each scrape; it must be thread-safe and must
  // not take the GIL. Errors: InvalidArgument for a bad port; Unavailable
  // when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& address, int port, std::function<Metrics()> snapshot);

  // Stops the server; waits for scrapes in flight.
  ~MetricsEndpoint();

  int port() const { return port_; }

 private:
  class Collector;
  MetricsEndpoint() = default;

  std::shared_ptr<Collector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = -1;
};

}  // namespace annex::watchdog::internal
