// The watchdog thread and its actions: see watchdog.h and docs/watchdog.md.
#include "monitor/watchdog/watchdog.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "monitor/python/cpython_peek.h"
#include "monitor/watchdog/internal/memory_monitor.h"
#include "monitor/watchdog/internal/metrics_endpoint.h"
#include "monitor/watchdog/internal/stack_dump.h"
#include "monitor/watchdog/internal/stall_detector.h"

namespace annex::watchdog {

const char* EventTypeName(EventType type) {
  switch (type) {
    case EventType::kStall:
      return "stall";
    case EventType::kMemoryLimit:
      return "memory_limit";
    case EventType::kMemoryGrowth:
      return "memory_growth";
  }
  return "unknown";
}

const char* MemorySourceName(MemorySource source) {
  switch (source) {
    case MemorySource::kNone:
      return "none";
    case MemorySource::kHeapEngine:
      return "heap_engine";
    case MemorySource::kAllocator:
      return "allocator";
  }
  return "unknown";
}

DurationHistogram DurationHistogram::WithBounds(
    std::vector<double> upper_bounds) {
  DurationHistogram h;
  h.bucket_counts.assign(upper_bounds.size() + 1, 0);
  h.upper_bounds = std::move(upper_bounds);
  return h;
}

void DurationHistogram::Add(absl::Duration d) {
  const double seconds = absl::ToDoubleSeconds(d);
  if (bucket_counts.size() != upper_bounds.size() + 1) {
    bucket_counts.resize(upper_bounds.size() + 1, 0);
  }
  size_t i = 0;
  while (i < upper_bounds.size() && seconds > upper_bounds[i]) ++i;
  ++bucket_counts[i];
  ++count;
  sum_seconds += seconds;
}

const char* MemoryMeasureName(MemoryMeasure measure) {
  switch (measure) {
    case MemoryMeasure::kRss:
      return "rss";
    case MemoryMeasure::kObjectCount:
      return "object_count";
    case MemoryMeasure::kPythonBytes:
      return "python_bytes";
  }
  return "unknown";
}

namespace {

// Where: any thread.
int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Where: any thread, no Python.
void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

void CloseIfOpen(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

struct Watchdog::Shared {
  Options options;
  int64_t timeout_ns = 0;
  int64_t heartbeat_ns = 0;
  int64_t tick_ns = 0;
  int report_fd = -1;  // owned, Options::report_path
  int dump_fd = -1;    // owned memfd: dumps are written here, then copied
  int statm_fd = -1;   // owned /proc/self/statm

  absl::Mutex mu;
  bool stop ABSL_GUARDED_BY(mu) = false;
  watchdog::Metrics metrics
      ABSL_GUARDED_BY(mu);  // heartbeat fields: atomics below
  std::atomic<bool> stopped{false};

  // Heartbeat: send time of the outstanding pending call, 0 if none.
  std::atomic<int64_t> heartbeat_since{0};
  std::atomic<int64_t> heartbeats_sent{0};
  std::atomic<int64_t> heartbeats_served{0};
  std::atomic<int64_t> latency_last_ns{0};
  std::atomic<int64_t> latency_max_ns{0};
  std::atomic<int64_t> exceptions_raised{0};
  std::atomic<int64_t> exceptions_dropped{0};
  // The main thread was outside Python (no Python frame, GIL not held) at
  // the last tick: its heartbeat waits without being overdue.
  std::atomic<bool> main_outside_python{false};
  // Progress probes (3.13): served count, and whether one is queued.
  std::atomic<int64_t> probes_served{0};
  std::atomic<bool> probe_outstanding{false};

  // Python thread names as the main thread last copied them with the GIL
  // (CopyPythonNames). Never held while waiting for the GIL.
  absl::Mutex names_mu;
  std::vector<internal::PythonThreadName> python_names
      ABSL_GUARDED_BY(names_mu);
  // A names-only pending call is queued (no stall detection: no heartbeat).
  std::atomic<bool> names_outstanding{false};

  // Last time actions ran, per EventType; watchdog thread only.
  int64_t last_action_ns[3] = {0, 0, 0};
};

namespace {

using SharedPtr = std::shared_ptr<Watchdog::Shared>;

// Copies threading's thread names into s.python_names
// (internal::CopyPythonThreadNames). Where: the target's main thread at a
// bytecode boundary, GIL held, main interpreter current.
void CopyPythonNames(Watchdog::Shared& s) {
  if (s.stopped.load()) return;
  std::vector<internal::PythonThreadName> names =
      internal::CopyPythonThreadNames();
  absl::MutexLock lock(&s.names_mu);
  s.python_names.swap(names);
}

// Names only, when no heartbeat runs. Where: as CopyPythonNames.
int NamesCallback(void* arg) {
  auto* holder = static_cast<SharedPtr*>(arg);
  CopyPythonNames(**holder);
  (*holder)->names_outstanding.store(false);
  delete holder;
  return 0;
}

// The heartbeat; it also copies the Python thread names. Where: the
// target's main thread at a bytecode boundary, GIL held, main interpreter
// current; only reads Python objects (CopyPythonNames), never fails.
int HeartbeatCallback(void* arg) {
  auto* holder = static_cast<SharedPtr*>(arg);
  Watchdog::Shared& s = **holder;
  CopyPythonNames(s);
  int64_t since = s.heartbeat_since.exchange(0);
  if (since != 0) {
    int64_t latency = MonotonicNs() - since;
    s.latency_last_ns.store(latency);
    int64_t max = s.latency_max_ns.load();
    while (latency > max &&
           !s.latency_max_ns.compare_exchange_weak(max, latency)) {
    }
    s.heartbeats_served.fetch_add(1);
  }
  delete holder;
  return 0;
}

// The progress probe. Where: any thread of the GIL holder's interpreter at a
// bytecode boundary, GIL held; touches no Python object, never fails.
int ProbeCallback(void* arg) {
  auto* holder = static_cast<SharedPtr*>(arg);
  (*holder)->probes_served.fetch_add(1);
  (*holder)->probe_outstanding.store(false);
  delete holder;
  return 0;
}

struct RaiseRequest {
  SharedPtr shared;
  unsigned long ident;
  PyObject* exception_type;  // borrowed, outlives the Watchdog (Options)
  // The stall it is about: its kind, whether its thread is main, and the
  // GIL's switch number when it was detected.
  StallKind kind;
  bool culprit_is_main;
  unsigned long switch_number;
};

// Whether the stall a RaiseRequest is about still goes on now that main
// runs the pending call. Only a busy-Python stall can: a thread stuck in C
// or main blocked has ended by the time main reaches a bytecode boundary
// (a stuck thread kept the GIL, a blocked main was not running), so an
// exception then would land in unrelated code. A busy run goes on if no
// other thread than its own (and Annex's) took the GIL since detection:
// for main, main kept it; for a worker, main took it straight from it.
// Where: the target's main thread, GIL held.
bool StallStillGoingOn(const RaiseRequest& r) {
  if (r.kind != StallKind::kBusyPython) return false;
  AnnexPeekGil gil;
  if (AnnexPeekGilState(PyInterpreterState_Main(), &gil) != 0) return false;
  return AnnexPeekSwitchesExplained(r.switch_number, gil.switch_number,
                                    r.culprit_is_main ? 0 : 1) != 0;
}

// The exception action. Where: the target's main thread at a bytecode
// boundary, GIL held, main interpreter current (PyThreadState_SetAsyncExc
// acts on the current interpreter's threads).
int RaiseCallback(void* arg) {
  auto* request = static_cast<RaiseRequest*>(arg);
  if (!request->shared->stopped.load()) {
    if (StallStillGoingOn(*request)) {
      int hit =
          PyThreadState_SetAsyncExc(request->ident, request->exception_type);
      if (hit > 0) request->shared->exceptions_raised.fetch_add(hit);
    } else {
      request->shared->exceptions_dropped.fetch_add(1);
    }
  }
  delete request;
  return 0;
}

// Where: watchdog thread, no GIL.
PyThreadState* FindMainThreadState(PyInterpreterState* interp) {
  const unsigned long main_ident = AnnexPeekMainThreadIdent();
  int budget = 1000;
  for (PyThreadState* ts = PyInterpreterState_ThreadHead(interp);
       ts != nullptr && --budget > 0; ts = PyThreadState_Next(ts)) {
    unsigned long ident = 0;
    unsigned long native_id = 0;
    AnnexPeekThreadIds(ts, &ident, &native_id);
    if (ident == main_ident) return ts;
  }
  return nullptr;
}

// Whether the memory sampling runs: an interval and something to watch or
// export. Where: any thread.
bool MemoryOn(const Options& o) {
  return o.memory_interval > absl::ZeroDuration() &&
         (o.rss_limit_bytes > 0 || o.growth_limit_bytes > 0 ||
          o.object_count_limit > 0 || o.python_bytes_limit > 0 ||
          o.memory_provider || o.metrics_port >= 0);
}

// The one-line summary and report text of an event. Where: any thread.
std::string Summary(const Event& e) {
  std::string text = absl::StrCat("annex watchdog: ", EventTypeName(e.type));
  if (e.type == EventType::kStall) {
    absl::StrAppend(
        &text, " kind=", StallKindName(e.stall_kind),
        absl::StrFormat(" thread=0x%lx native=%lu", e.thread.ident,
                        e.thread.native_id),
        e.thread.is_main ? " (main)" : "",
        e.thread.in_target ? "" : " (other interpreter)", " name=\"",
        e.thread.name, "\"",
        e.thread.python_name.empty()
            ? ""
            : absl::StrCat(" python_name=\"", e.thread.python_name, "\""),
        e.gil_wanted ? " gil_wanted" : "");
  }
  if (e.type == EventType::kMemoryLimit) {
    absl::StrAppend(&text, " measure=", MemoryMeasureName(e.measure));
  }
  absl::StrAppend(&text, " for ", absl::FormatDuration(e.duration));
  if (e.memory.rss_bytes >= 0) {
    absl::StrAppend(&text, " rss=", e.memory.rss_bytes);
  }
  if (e.type != EventType::kStall && e.memory.source != MemorySource::kNone) {
    absl::StrAppend(&text, " objects=", e.memory.object_count,
                    " python_bytes=", e.memory.python_bytes,
                    " source=", MemorySourceName(e.memory.source));
  }
  if (e.type == EventType::kMemoryGrowth) {
    absl::StrAppend(&text, " growth=", e.memory_growth_bytes);
  }
  return text;
}

}  // namespace

Watchdog::Watchdog() = default;

Watchdog::~Watchdog() {
  if (running()) Stop().IgnoreError();
}

bool Watchdog::running() const { return thread_.joinable(); }

absl::Status Watchdog::Start(const Options& options) {
  if (!Py_IsInitialized()) {
    return absl::FailedPreconditionError("Python is not initialized");
  }
  if (running()) {
    return absl::FailedPreconditionError("watchdog already running");
  }
  if (options.stall_timeout < absl::ZeroDuration() ||
      options.heartbeat_interval < absl::ZeroDuration() ||
      options.memory_interval < absl::ZeroDuration() ||
      options.min_action_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("durations must not be negative");
  }
  if (options.stall_timeout > absl::ZeroDuration() &&
      options.heartbeat_interval > options.stall_timeout / 2) {
    return absl::InvalidArgumentError(
        "heartbeat_interval exceeds stall_timeout / 2");
  }
  if (options.rss_limit_bytes < 0 || options.rss_clear_bytes < 0 ||
      options.growth_limit_bytes < 0 ||
      (options.rss_limit_bytes > 0 &&
       options.rss_clear_bytes > options.rss_limit_bytes)) {
    return absl::InvalidArgumentError("bad memory thresholds");
  }
  if (options.object_count_limit < 0 || options.object_count_clear < 0 ||
      options.python_bytes_limit < 0 || options.python_bytes_clear < 0 ||
      (options.object_count_limit > 0 &&
       options.object_count_clear > options.object_count_limit) ||
      (options.python_bytes_limit > 0 &&
       options.python_bytes_clear > options.python_bytes_limit)) {
    return absl::InvalidArgumentError("bad Python memory thresholds");
  }
  if (options.heap_report_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("heap_report_timeout is negative");
  }
  if (options.metrics_port < -1 || options.metrics_port > 65535) {
    return absl::InvalidArgumentError(
        "metrics_port must be -1 (off), 0 (any free port) or a port number");
  }
  if (options.growth_limit_bytes > 0 &&
      options.growth_window <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("growth_window must be positive");
  }
  if (options.max_stack_depth <= 0) {
    return absl::InvalidArgumentError("max_stack_depth must be positive");
  }
  if (options.exception_type != nullptr &&
      !PyExceptionClass_Check(options.exception_type)) {
    return absl::InvalidArgumentError(
        "exception_type is not an exception class");
  }

  auto shared = std::make_shared<Shared>();
  Watchdog::Shared& s = *shared;
  s.options = options;
  if (s.options.exception_type == nullptr) {
    s.options.exception_type = PyExc_TimeoutError;
  }
  s.timeout_ns = absl::ToInt64Nanoseconds(options.stall_timeout);
  if (s.timeout_ns > 0) {
    s.heartbeat_ns = options.heartbeat_interval > absl::ZeroDuration()
                         ? absl::ToInt64Nanoseconds(options.heartbeat_interval)
                         : std::min<int64_t>(100000000, s.timeout_ns / 20);
    // Worst case for "main stuck in C": the stall starts just after a
    // heartbeat was served, the next one goes out an interval (plus a tick)
    // later, and is seen overdue a tick after the timeout: timeout +
    // interval + 2 ticks, i.e. +10% with the defaults.
    s.tick_ns = std::min(s.heartbeat_ns, s.timeout_ns / 40);
  }
  const bool memory_on = MemoryOn(options);
  if (memory_on) {
    int64_t memory_ns = absl::ToInt64Nanoseconds(options.memory_interval);
    s.tick_ns = s.tick_ns > 0 ? std::min(s.tick_ns, memory_ns) : memory_ns;
  }
  if (s.tick_ns <= 0) return absl::InvalidArgumentError("nothing to watch");
  s.tick_ns = std::max<int64_t>(s.tick_ns, 1000000);

  if (!options.report_path.empty()) {
    s.report_fd = open(options.report_path.c_str(),
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s.report_fd < 0) {
      return absl::ErrnoToStatus(
          errno, absl::StrCat("cannot open report file ", options.report_path));
    }
  }
  s.dump_fd = memfd_create("annex-watchdog-dump", MFD_CLOEXEC);
  s.statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (s.dump_fd < 0 || s.statm_fd < 0) {
    absl::Status status =
        absl::ErrnoToStatus(errno, "cannot open watchdog files");
    CloseIfOpen(s.report_fd);
    CloseIfOpen(s.dump_fd);
    CloseIfOpen(s.statm_fd);
    return status;
  }
  {
    absl::MutexLock lock(&s.mu);  // not shared yet, but metrics needs mu
    s.metrics.running = true;
  }
  std::atomic_store(&shared_, std::move(shared));  // Metrics() may race

  if (options.metrics_port >= 0) {
    auto endpoint = internal::MetricsEndpoint::Start(
        options.metrics_address, options.metrics_port,
        [this] { return Metrics(); });
    if (!endpoint.ok()) {
      Shared& failed = *shared_;
      {
        // Published: Metrics() on another thread reads it under mu.
        absl::MutexLock lock(&failed.mu);
        failed.metrics.running = false;
      }
      CloseIfOpen(failed.report_fd);
      CloseIfOpen(failed.dump_fd);
      CloseIfOpen(failed.statm_fd);
      return endpoint.status();
    }
    endpoint_ = std::move(*endpoint);
    metrics_port_.store(endpoint_->port());
  }

  // The thread starts with every signal blocked, so none is ever delivered
  // to it (signals belong to the target's main thread).
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  thread_ = std::thread([this] { Run(); });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return absl::OkStatus();
}

absl::Status Watchdog::Stop() {
  if (!running()) return absl::FailedPreconditionError("watchdog not running");
  if (thread_.get_id() == std::this_thread::get_id()) {
    return absl::FailedPreconditionError(
        "Stop() called from the watchdog thread");
  }
  // First the endpoint (joins its threads: no scrape after this).
  endpoint_.reset();
  metrics_port_.store(-1);
  {
    absl::MutexLock lock(&shared_->mu);
    shared_->stop = true;
    shared_->metrics.running = false;
  }  // the unlock ends the watchdog thread's wait
  thread_.join();
  shared_->stopped.store(true);
  CloseIfOpen(shared_->report_fd);
  CloseIfOpen(shared_->dump_fd);
  CloseIfOpen(shared_->statm_fd);
  return absl::OkStatus();
}

watchdog::Metrics Watchdog::Metrics() const {
  std::shared_ptr<Shared> shared = std::atomic_load(&shared_);
  if (shared == nullptr) return watchdog::Metrics{};
  Shared& s = *shared;
  watchdog::Metrics m;
  {
    absl::MutexLock lock(&s.mu);
    m = s.metrics;
  }
  m.heartbeats_sent = s.heartbeats_sent.load();
  m.heartbeats_served = s.heartbeats_served.load();
  m.heartbeat_latency_last = absl::Nanoseconds(s.latency_last_ns.load());
  m.heartbeat_latency_max = absl::Nanoseconds(s.latency_max_ns.load());
  int64_t since = s.heartbeat_since.load();
  m.heartbeat_overdue = since != 0 && !s.main_outside_python.load()
                            ? absl::Nanoseconds(MonotonicNs() - since)
                            : absl::ZeroDuration();
  m.exceptions_raised = s.exceptions_raised.load();
  m.exceptions_dropped = s.exceptions_dropped.load();
  if (s.options.metrics_provider) s.options.metrics_provider(m);
  return m;
}

namespace {

// Everything the watchdog thread does per event. Where: watchdog thread, no
// GIL; Python state is read through cpython_peek only.
void HandleEvent(const SharedPtr& shared, Event& e, PyThreadState* gil_holder,
                 int64_t now_ns, bool dump_stacks,
                 unsigned long switch_number = 0) {
  Watchdog::Shared& s = *shared;
  e.time = absl::Now();
  // Dump every target thread into the memfd, then copy it into the event.
  if (dump_stacks && ftruncate(s.dump_fd, 0) == 0 &&
      lseek(s.dump_fd, 0, SEEK_SET) == 0) {
    internal::ScopedThreadListLock list_lock(20000);
    if (!list_lock.locked()) {
      WriteAll(s.dump_fd, "(thread list lock busy: read without it)\n");
    }
    std::vector<internal::PythonThreadName> names;
    {
      absl::MutexLock names_lock(&s.names_mu);
      names = s.python_names;
    }
    internal::WriteAllThreads(s.dump_fd, PyInterpreterState_Main(), gil_holder,
                              s.options.max_stack_depth,
                              s.options.hidden_thread_idents, names);
    struct stat st;
    if (fstat(s.dump_fd, &st) == 0 && st.st_size > 0) {
      e.stack_dump.resize(static_cast<size_t>(st.st_size));
      ssize_t n = pread(s.dump_fd, e.stack_dump.data(), e.stack_dump.size(), 0);
      e.stack_dump.resize(n > 0 ? static_cast<size_t>(n) : 0);
    }
  }
  e.summary = Summary(e);

  const int type = static_cast<int>(e.type);
  const int64_t min_interval =
      absl::ToInt64Nanoseconds(s.options.min_action_interval);
  const bool limited = s.last_action_ns[type] != 0 &&
                       now_ns - s.last_action_ns[type] < min_interval;
  {
    absl::MutexLock lock(&s.mu);
    if (e.type == EventType::kStall) {
      ++s.metrics.stalls;
      ++s.metrics.stalls_by_kind[static_cast<int>(e.stall_kind)];
    } else {
      ++s.metrics.memory_events;
      ++(e.type == EventType::kMemoryLimit ? s.metrics.memory_limit_events
                                           : s.metrics.memory_growth_events);
    }
    if (limited) ++s.metrics.actions_suppressed;
  }
  if (limited) return;
  s.last_action_ns[type] = now_ns;

  if (s.report_fd >= 0 || s.options.report_fd >= 0) {
    e.report_path = s.options.report_path;
    // The heap section: asked of the reporter (which may wait for the annex
    // to get the GIL, never this thread), or why there is none.
    if (!dump_stacks) {
      e.heap_report = "heap partition: absent (the target is finalizing)\n";
    } else if (s.options.heap_reporter) {
      e.heap_report = s.options.heap_reporter(s.options.heap_report_timeout);
    } else {
      e.heap_report =
          "heap partition: absent (no heap engine: the watchdog runs without "
          "an Annex monitor)\n";
    }
    std::string report =
        absl::StrCat("==== ", absl::FormatTime(e.time), " ", e.summary, "\n",
                     e.stack_dump, "\n", e.heap_report, "\n");
    if (s.report_fd >= 0) WriteAll(s.report_fd, report);
    if (s.options.report_fd >= 0) WriteAll(s.options.report_fd, report);
  }
  if (s.options.on_event) s.options.on_event(e);
  if (e.type == EventType::kStall && s.options.raise_exception) {
    unsigned long ident =
        s.options.exception_target == ExceptionTarget::kMainThread
            ? AnnexPeekMainThreadIdent()
            : e.thread.ident;
    auto* request = new RaiseRequest{
        shared,           ident,        s.options.exception_type, e.stall_kind,
        e.thread.is_main, switch_number};
    if (AnnexPeekAddMainPendingCall(&RaiseCallback, request) != 0) {
      delete request;
    }
  }
  if (s.options.abort) std::abort();
}

}  // namespace

void Watchdog::Run() {
  // Where: watchdog thread. Never takes the GIL and never calls into Python:
  // only cpython_peek reads, Py_AddPendingCall, and write(2).
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, nullptr);
  pthread_setname_np(pthread_self(), "annex-watchdog");

  SharedPtr shared = shared_;
  Watchdog::Shared& s = *shared;
  const bool stall_on = s.timeout_ns > 0;
  internal::StallDetector detector(
      {s.timeout_ns, s.options.report_busy_main, s.options.report_busy_workers,
       s.options.report_blocked_main, &AnnexPeekSwitchesExplained});
  const bool memory_on = MemoryOn(s.options);
  internal::MemoryMonitor memory(
      {s.options.rss_limit_bytes, s.options.rss_clear_bytes,
       s.options.growth_limit_bytes,
       absl::ToInt64Nanoseconds(s.options.growth_window)});
  internal::MemoryMonitor objects_limit(
      {s.options.object_count_limit, s.options.object_count_clear, 0, 0});
  internal::MemoryMonitor python_limit(
      {s.options.python_bytes_limit, s.options.python_bytes_clear, 0, 0});
  const int64_t memory_ns = absl::ToInt64Nanoseconds(s.options.memory_interval);
  int64_t next_memory = MonotonicNs();
  int64_t next_heartbeat = MonotonicNs();
  PyInterpreterState* interp = PyInterpreterState_Main();
  bool python_gone = false;
  // Probes need a queue any thread may serve (3.12+); see below.
  const bool probes = AnnexPeekAddProbeCall(nullptr, nullptr, nullptr) != -2;
  AnnexPeekFrame last_frame = {nullptr, nullptr};
  PyThreadState* last_holder = nullptr;

  s.mu.Lock();
  auto deadline = std::chrono::steady_clock::now();
  while (!s.stop) {
    deadline += std::chrono::nanoseconds(s.tick_ns);
    auto now_tp = std::chrono::steady_clock::now();
    if (deadline < now_tp) deadline = now_tp;  // fell behind: no bursts
    // The tick is kept on the steady clock; the wait is its remainder.
    s.mu.AwaitWithTimeout(absl::Condition(&s.stop),
                          absl::FromChrono(deadline - now_tp));
    if (s.stop) break;
    s.mu.Unlock();
    const int64_t now = MonotonicNs();
    // A host that forgets Stop() before Py_FinalizeEx(): once finalization
    // starts, thread states get freed, so never read them again.
    if (!python_gone && AnnexPeekIsFinalizing()) python_gone = true;

    if (stall_on && !python_gone) {
      if (now >= next_heartbeat && s.heartbeat_since.load() == 0) {
        // Ticks divide the interval; the slack keeps a tick that wakes a
        // little early from skipping a whole interval.
        next_heartbeat = now + s.heartbeat_ns - s.tick_ns / 2;
        s.heartbeat_since.store(now);
        auto* holder = new SharedPtr(shared);
        if (AnnexPeekAddMainPendingCall(&HeartbeatCallback, holder) == 0) {
          s.heartbeats_sent.fetch_add(1);
        } else {
          s.heartbeat_since.store(0);  // queue full: try again next tick
          delete holder;
        }
      }
      // Sample under the thread-list lock: a thread state confirmed live
      // cannot be freed while we read it. A tick without the lock (held
      // elsewhere for 20 ms) gives no evidence.
      internal::StallSample sample;
      sample.now_ns = now;
      std::optional<internal::StallVerdict> verdict;
      PyThreadState* holder = nullptr;
      PyInterpreterState* holder_interp = nullptr;
      Event e;
      {
        internal::ScopedThreadListLock list_lock(20000);
        if (list_lock.locked()) {
          PyThreadState* main_ts = FindMainThreadState(interp);
          sample.main_thread = main_ts;
          AnnexPeekGil gil;
          if (AnnexPeekGilState(interp, &gil) == 0 && gil.locked &&
              AnnexPeekIsLiveThreadState(gil.holder)) {
            holder = gil.holder;
            holder_interp = AnnexPeekThreadInterpreter(holder);
            AnnexPeekFrame frame;
            AnnexPeekCurrentFrame(holder, &frame);
            // Without probes (3.11) a still instruction pointer may be
            // aliasing: a loop dominated by one C call shows that call at
            // most samples. Look again, briefly, before calling it still.
            if (!probes && holder != main_ts && holder == last_holder &&
                frame.frame == last_frame.frame &&
                frame.instr == last_frame.instr) {
              const int64_t until = MonotonicNs() + 300000;  // 0.3 ms
              AnnexPeekFrame again;
              do {
                AnnexPeekCurrentFrame(holder, &again);
              } while (again.frame == frame.frame &&
                       again.instr == frame.instr && MonotonicNs() < until);
              frame = again;
            }
            last_holder = holder;
            last_frame = frame;
            // Annex's own thread states: a hidden ident (its thread states
            // in the target) or another interpreter (the annex's).
            unsigned long holder_ident = 0;
            unsigned long holder_native = 0;
            AnnexPeekThreadIds(holder, &holder_ident, &holder_native);
            const std::vector<unsigned long>& hidden =
                s.options.hidden_thread_idents;
            sample.holder_is_own = holder_interp != interp ||
                                   std::find(hidden.begin(), hidden.end(),
                                             holder_ident) != hidden.end();
            sample.gil_locked = true;
            sample.holder = holder;
            sample.switch_number = gil.switch_number;
            sample.holder_is_main = holder == main_ts;
            sample.holder_frame = frame.frame;
            sample.holder_instr = frame.instr;
            sample.gil_wanted = gil.drop_requested != 0;
            sample.holder_progress = s.probes_served.load();
          }
          // A main thread outside Python (no Python frame, GIL not held:
          // e.g. a C++ host between calls into Python) cannot serve a
          // heartbeat and is not stalled: the outstanding heartbeat's clock
          // starts again, so it is not overdue (docs/watchdog.md).
          AnnexPeekFrame main_frame = {nullptr, nullptr};
          if (main_ts != nullptr) AnnexPeekCurrentFrame(main_ts, &main_frame);
          const bool outside = main_frame.frame == nullptr &&
                               !(holder != nullptr && holder == main_ts);
          s.main_outside_python.store(outside);
          if (outside) {
            int64_t since = s.heartbeat_since.load();
            if (since != 0)
              s.heartbeat_since.compare_exchange_strong(since, now);
          }
          sample.heartbeat_outstanding_since_ns = s.heartbeat_since.load();
          verdict = detector.Update(sample);
          if (verdict) {
            auto* ts =
                static_cast<PyThreadState*>(const_cast<void*>(verdict->thread));
            if (ts != nullptr && AnnexPeekIsLiveThreadState(ts)) {
              internal::ThreadIds ids = internal::ReadThreadIds(ts);
              const std::vector<unsigned long>& hidden =
                  s.options.hidden_thread_idents;
              const bool own = std::find(hidden.begin(), hidden.end(),
                                         ids.ident) != hidden.end();
              std::string python_name;
              {
                absl::MutexLock names_lock(&s.names_mu);
                python_name = internal::PythonNameOf(s.python_names, ids.ident,
                                                     ids.native_id);
              }
              e.thread =
                  ThreadInfo{ids.ident,
                             ids.native_id,
                             ids.name,
                             verdict->is_main,
                             !own && AnnexPeekThreadInterpreter(ts) == interp,
                             std::move(python_name)};
            }
          }
        }
      }
      // Ask a holder other than main to prove it reaches bytecode
      // boundaries (3.12+). Its interpreter outlives its thread states.
      if (probes && holder != nullptr && !sample.holder_is_main &&
          !s.probe_outstanding.exchange(true)) {
        auto* probe_arg = new SharedPtr(shared);
        if (AnnexPeekAddProbeCall(holder_interp, &ProbeCallback, probe_arg) !=
            0) {
          delete probe_arg;
          s.probe_outstanding.store(false);
        }
      }
      if (verdict) {
        e.type = EventType::kStall;
        e.stall_kind = verdict->kind;
        e.duration = absl::Nanoseconds(verdict->duration_ns);
        e.gil_wanted = verdict->gil_wanted;
        e.memory.rss_bytes = internal::ReadRssBytes(s.statm_fd);
        HandleEvent(shared, e, holder, now, /*dump_stacks=*/true,
                    verdict->switch_number);
      }
    }

    if (memory_on && now >= next_memory) {
      next_memory = now + memory_ns;
      // Without stall detection no heartbeat copies the Python thread
      // names: one call per memory sample does, if none is queued.
      if (!stall_on && !python_gone && !s.names_outstanding.exchange(true)) {
        auto* names_arg = new SharedPtr(shared);
        if (AnnexPeekAddMainPendingCall(&NamesCallback, names_arg) != 0) {
          delete names_arg;
          s.names_outstanding.store(false);
        }
      }
      MemorySample sample;
      sample.rss_bytes = internal::ReadRssBytes(s.statm_fd);
      if (s.options.memory_provider) s.options.memory_provider(sample);
      if (sample.source == MemorySource::kNone && sample.python_bytes < 0 &&
          sample.object_count < 0 && !python_gone) {
        // No Python figures from the provider: the allocator's own counter.
        int64_t arena_bytes = AnnexPeekAllocatorArenaBytes(interp);
        if (arena_bytes >= 0) {
          sample.python_bytes = arena_bytes;
          sample.source = MemorySource::kAllocator;
        }
      }
      // (alarm, measure) pairs, RSS first.
      std::vector<std::pair<internal::MemoryAlarm, MemoryMeasure>> alarms;
      if (sample.rss_bytes >= 0) {
        for (internal::MemoryAlarm a : memory.Update(now, sample.rss_bytes)) {
          alarms.emplace_back(a, MemoryMeasure::kRss);
        }
      }
      if (s.options.object_count_limit > 0 && sample.object_count >= 0 &&
          !objects_limit.Update(now, sample.object_count).empty()) {
        alarms.emplace_back(internal::MemoryAlarm::kLimit,
                            MemoryMeasure::kObjectCount);
      }
      if (s.options.python_bytes_limit > 0 && sample.python_bytes >= 0 &&
          !python_limit.Update(now, sample.python_bytes).empty()) {
        alarms.emplace_back(internal::MemoryAlarm::kLimit,
                            MemoryMeasure::kPythonBytes);
      }
      {
        absl::MutexLock metrics_lock(&s.mu);
        s.metrics.memory = sample;
        s.metrics.rss_peak_bytes =
            std::max(s.metrics.rss_peak_bytes, sample.rss_bytes);
      }
      for (const auto& [alarm, measure] : alarms) {
        Event e;
        e.measure = measure;
        e.type = alarm == internal::MemoryAlarm::kLimit
                     ? EventType::kMemoryLimit
                     : EventType::kMemoryGrowth;
        e.memory = sample;
        e.memory_growth_bytes = memory.growth_bytes();
        e.duration = alarm == internal::MemoryAlarm::kGrowth
                         ? s.options.growth_window
                         : absl::ZeroDuration();
        HandleEvent(shared, e, nullptr, now, /*dump_stacks=*/!python_gone);
      }
    }
    s.mu.Lock();
  }
  s.mu.Unlock();
}

}  // namespace annex::watchdog
