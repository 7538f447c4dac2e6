// In-process watchdog for the target interpreter: stall detection, memory
// limits, stack dumps and actions, from its own thread that never takes the
// GIL (docs/design.md rule 6; docs/watchdog.md).
//
//   annex::watchdog::Options options;
//   options.stall_timeout = absl::Seconds(2);
//   options.report_path = "/var/tmp/app.watchdog";
//   options.on_event = [](const annex::watchdog::Event& e) { Log(e.summary); };
//   annex::watchdog::Watchdog watchdog;
//   absl::Status status = watchdog.Start(options);  // after Py_Initialize()
//   ...
//   watchdog.Stop();                                 // before Py_FinalizeEx()
//
// A Watchdog that is not started costs nothing: no thread, no pending calls,
// no hooks in the target. Once started, the target pays for one pending call
// per heartbeat interval (10 per second by default) and nothing else.
#pragma once

#include <Python.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "monitor/watchdog/stall_kind.h"

namespace annex::watchdog {

namespace internal {
class MetricsEndpoint;
}

struct Metrics;

enum class EventType { kStall, kMemoryLimit, kMemoryGrowth };

// "stall", "memory_limit", "memory_growth".
const char* EventTypeName(EventType type);

// Where a sample's Python figures come from.
enum class MemorySource {
  kNone,        // no Python figures
  kHeapEngine,  // a recent heap walk (the annex, GIL held): exact
  kAllocator,   // the allocator's counters, read without the GIL
};

// "none", "heap_engine", "allocator".
const char* MemorySourceName(MemorySource source);

// Objects of one kind (type) in the heap engine's last walk.
struct KindFigures {
  std::string kind;
  int64_t count = 0;
  int64_t bytes = 0;
};

// Memory figures; -1 means unknown. The watchdog fills `rss_bytes`; a
// provider (below) may fill the Python figures; when it fills neither, the
// watchdog fills `python_bytes` from the allocator's counters where CPython
// exposes them (3.12+: bytes in pymalloc arenas; 3.11: unknown) and leaves
// `object_count` unknown.
struct MemorySample {
  int64_t rss_bytes = -1;
  int64_t python_bytes = -1;  // bytes in Python objects
  int64_t object_count = -1;  // live (reachable) Python objects
  MemorySource source = MemorySource::kNone;
  absl::Duration age;  // how old the Python figures are (heap engine)
  std::vector<KindFigures> top_kinds;  // heap engine: largest kinds by bytes
  // Heap engine: the figures of a stable set of kinds, for series that do
  // not come and go as the largest kinds change: every kind tracked so far
  // (in the order they became tracked; a kind enters while it is among the
  // largest and the set has room, and stays, with zeros when it is gone),
  // then kTrackedOther with the sum of every other kind.
  std::vector<KindFigures> tracked_kinds;
};

// The kind name under which tracked_kinds sums the kinds not tracked.
inline constexpr char kTrackedOther[] = "other";

// A histogram of durations, Prometheus style. Where: any thread (plain data).
struct DurationHistogram {
  // Upper bounds in seconds, ascending; a last bucket (+Inf) is implied.
  std::vector<double> upper_bounds;
  // Observations per bucket (not cumulative): upper_bounds.size() + 1.
  std::vector<int64_t> bucket_counts;
  int64_t count = 0;
  double sum_seconds = 0;

  // Empty buckets with these bounds (seconds, ascending).
  static DurationHistogram WithBounds(std::vector<double> upper_bounds);
  void Add(absl::Duration d);
};

// Adds figures to a sample, e.g. the heap engine's object counts. Runs on the
// watchdog thread, which must never take the GIL: return cached values.
using MemoryProvider = std::function<void(MemorySample& sample)>;

// Adds figures to a Metrics snapshot (Options::metrics_provider).
using MetricsProvider = std::function<void(Metrics& metrics)>;

// The heap section of a report file: a partition of the target's heap by
// type and the top growth since the last reference point, or a line saying
// why there is none. Runs on the watchdog thread, which must never take the
// GIL: it may ask another thread (the annex) and must return within
// `timeout` either way.
using HeapReporter = std::function<std::string(absl::Duration timeout)>;

// What a kMemoryLimit event measured.
enum class MemoryMeasure { kRss, kObjectCount, kPythonBytes };

// "rss", "object_count", "python_bytes".
const char* MemoryMeasureName(MemoryMeasure measure);

// The target thread an event is about.
struct ThreadInfo {
  unsigned long ident = 0;      // threading.get_ident()
  unsigned long native_id = 0;  // Linux TID
  std::string name;             // OS thread name
  bool is_main = false;
  bool in_target = true;  // false: a thread of another interpreter (the annex)
  // threading's name (Thread.name), escaped as in dumps, as the main thread
  // last showed it with the GIL; "" when unknown (docs/watchdog.md).
  std::string python_name;
};

struct Event {
  EventType type = EventType::kStall;
  StallKind stall_kind = StallKind::kStuckInC;  // for kStall only
  absl::Time time;
  absl::Duration duration;  // how long the condition has held
  ThreadInfo thread;        // kStall: the stalled (or culprit) thread
  bool gil_wanted = false;  // kStall: target threads were waiting for the GIL
  MemorySample memory;
  MemoryMeasure measure = MemoryMeasure::kRss;  // kMemoryLimit: which limit
  int64_t memory_growth_bytes = 0;              // over Options::growth_window
  std::string summary;                          // one line
  std::string stack_dump;   // every target thread, at detection
  std::string report_path;  // where the report went, if anywhere
  std::string heap_report;  // the report's heap section, if written
};

// Which thread the exception action raises in.
enum class ExceptionTarget { kEventThread, kMainThread };

struct Options {
  // --- Stall detection (disabled when stall_timeout is zero).
  absl::Duration stall_timeout = absl::Seconds(5);
  // Heartbeat period; zero picks min(100 ms, stall_timeout / 20) so that a
  // stall is reported within stall_timeout + 10%. At most stall_timeout / 2.
  absl::Duration heartbeat_interval = absl::ZeroDuration();
  // Report the main thread keeping the GIL for a whole timeout while it
  // runs Python (kBusyPython): a long or endless loop.
  bool report_busy_main = true;
  // Report other threads keeping the GIL for a whole timeout (kBusyPython).
  // Regardless of this, a thread that runs Python and keeps the GIL while
  // target threads ask for it for a whole timeout is reported (on 3.11/3.12
  // a thread of another interpreter, such as the annex, does that).
  bool report_busy_workers = false;
  // Report the main thread blocked without the GIL (kBlockedWithoutGil),
  // e.g. in time.sleep; off because an idle host looks exactly like this.
  bool report_blocked_main = false;

  // --- Memory (disabled when memory_interval is zero or no limit is set).
  absl::Duration memory_interval = absl::Seconds(1);
  int64_t rss_limit_bytes = 0;     // kMemoryLimit at or above; 0: none
  int64_t rss_clear_bytes = 0;     // re-armed below; 0: 90% of the limit
  int64_t growth_limit_bytes = 0;  // kMemoryGrowth; 0: none
  absl::Duration growth_window = absl::Seconds(60);
  // Limits on the Python figures (the provider's, or the allocator's when
  // the provider has none; the event says which source). kMemoryLimit with
  // `measure` kObjectCount / kPythonBytes; re-armed below the clear level
  // (0: 90% of the limit). 0: none. A sample with the figure unknown
  // changes nothing.
  int64_t object_count_limit = 0;
  int64_t object_count_clear = 0;
  int64_t python_bytes_limit = 0;
  int64_t python_bytes_clear = 0;
  MemoryProvider memory_provider;  // optional
  // Adds figures to every Metrics snapshot (Metrics(), each scrape of the
  // endpoint), e.g. the Monitor's heap-walk pauses. Runs on whichever thread
  // asks for the snapshot, concurrently with itself: thread-safe, no GIL,
  // never waits for the annex. Optional.
  MetricsProvider metrics_provider;

  // --- Actions, rate-limited per event type (suppressed ones are counted).
  absl::Duration min_action_interval = absl::Seconds(10);
  // Called on the watchdog thread, without the GIL: must not call Python.
  std::function<void(const Event&)> on_event;
  // Appends the event and the stack dump of every target thread to this
  // file (opened at Start, mode 0600); empty: no report file.
  std::string report_path;
  // Also writes each report to this descriptor (e.g. 2); -1: none.
  int report_fd = -1;
  // Adds a heap section to each report (optional; the Monitor installs one
  // backed by the annex's heap engine). Waited for at most
  // `heap_report_timeout`; a report without it says why.
  HeapReporter heap_reporter;
  absl::Duration heap_report_timeout = absl::Seconds(2);
  // Raises `exception_type` in a target thread with PyThreadState_SetAsyncExc,
  // from a pending call served by the main thread at its next bytecode
  // boundary (so not while the main thread is stuck or blocked). Stall
  // events only, and only into the stall it is about: a kBusyPython stall
  // whose thread still has the GIL run it was reported for (Annex's own takes
  // aside) when main runs the call; otherwise it is dropped and counted in
  // Metrics::exceptions_dropped (docs/watchdog.md, "Exception action"). A
  // borrowed reference that must outlive the Watchdog; null: TimeoutError.
  bool raise_exception = false;
  ExceptionTarget exception_target = ExceptionTarget::kEventThread;
  PyObject* exception_type = nullptr;
  // Calls abort() after the other actions (core dump per system settings).
  bool abort = false;
  int max_stack_depth = 100;
  // Threads (threading.get_ident() values) whose thread states in the
  // target belong to the host's tooling, not to its program (the Monitor
  // passes the annex's own): left out of stack dumps, which say how many
  // were left out, and marked `in_target = false` in events.
  std::vector<unsigned long> hidden_thread_idents;

  // --- Prometheus endpoint (civetweb), opt-in: GET /metrics on
  // `metrics_address`:`metrics_port`. -1: off; 0: any free port (see
  // Watchdog::metrics_port()). Loopback unless another IP address is given
  // (IPv4: Debian 12's civetweb has no IPv6; 0.0.0.0 for every interface;
  // there is no authentication). Start() fails with InvalidArgument for
  // something else. Families and naming: docs/watchdog.md, Metrics.
  int metrics_port = -1;
  std::string metrics_address = "127.0.0.1";
};

// A snapshot of the watchdog's counters.
struct Metrics {
  bool running = false;
  int64_t heartbeats_sent = 0;
  int64_t heartbeats_served = 0;
  absl::Duration heartbeat_latency_last;  // schedule → served on main thread
  absl::Duration heartbeat_latency_max;
  // Age of the outstanding heartbeat; zero while the main thread is outside
  // Python (no Python frame, GIL not held: it cannot serve one).
  absl::Duration heartbeat_overdue;
  int64_t stalls = 0;
  std::array<int64_t, 3> stalls_by_kind = {0, 0, 0};  // index: StallKind
  int64_t memory_events = 0;
  int64_t memory_limit_events = 0;
  int64_t memory_growth_events = 0;
  int64_t actions_suppressed =
      0;                          // events whose actions the rate limit skipped
  int64_t exceptions_raised = 0;  // thread states PyThreadState_SetAsyncExc hit
  // Exception actions not raised because their stall had ended when the
  // main thread could run them (see Options::raise_exception).
  int64_t exceptions_dropped = 0;
  MemorySample memory;  // last sample
  int64_t rss_peak_bytes = -1;
  // Pauses of the heap walks behind the memory samples (filled by a
  // Options::metrics_provider, e.g. a Monitor's; empty bounds: none).
  DurationHistogram heap_walk_pauses;
};

class Watchdog {
 public:
  Watchdog();
  // Stops the watchdog if running.
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts the watchdog thread. Errors: FailedPrecondition if Python is not
  // initialized or the watchdog already runs; InvalidArgument for bad
  // options; the errno's code if the report file cannot be opened.
  // Where: any thread, GIL not required (it does not touch Python objects).
  absl::Status Start(const Options& options);

  // Stops and joins the watchdog thread. A heartbeat still queued in the
  // target finds the watchdog gone and does nothing. Call before
  // Py_FinalizeEx(). Returns FailedPrecondition if not running.
  // Where: any thread, GIL held or not (the watchdog thread never waits for
  // it); not from `on_event`.
  absl::Status Stop();

  // Start() and Stop() are not to be called concurrently with each other.
  bool running() const;

  // A consistent snapshot of the last (or current) run. Where: any thread,
  // also concurrently with Start/Stop; no GIL needed.
  watchdog::Metrics Metrics() const;

  // The port the Prometheus endpoint listens on, or -1 when it is off.
  // Where: any thread.
  int metrics_port() const { return metrics_port_.load(); }

  struct Shared;  // state shared with pending calls (internal)

 private:
  void Run();

  std::shared_ptr<Shared> shared_;
  std::thread thread_;
  std::unique_ptr<internal::MetricsEndpoint> endpoint_;
  std::atomic<int> metrics_port_{-1};
};

}  // namespace annex::watchdog
