// Annex's public API for C++ hosts that embed CPython.
//
// A Monitor starts a second interpreter (the annex) in the host's process,
// on its own thread, that watches the host's interpreter (the target)
// without disturbing it: heap questions, threads and stacks, and an optional
// console that a developer can attach to (`annex attach PID`).
//
//   Py_Initialize();
//   annex::Monitor monitor;
//   annex::Options options;
//   options.console = true;                 // `annex attach <pid>` works
//   if (absl::Status s = monitor.Start(options); !s.ok()) { ... }
//   ... run the host's Python ...
//   monitor.Stop();                         // before Py_FinalizeEx()
//   Py_FinalizeEx();
//
// If the host finalizes without Stop(), the monitor stops itself first (an
// atexit callback in the target): no hang, no crash. Its console then
// refuses commands, saying the program is exiting, until the end of
// Py_FinalizeEx() closes it. Nothing Annex does
// ever raises into, or aborts, the host; errors come back as absl::Status.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "glue/memory_budget.h"
#include "glue/stat.h"
#include "monitor/watchdog/watchdog.h"

namespace annex {

namespace glue {
class Session;
}

// The watchdog's heap walk interval when the Prometheus endpoint is on and
// Options::watchdog_heap_interval is zero: the usual scrape interval, so
// each scrape sees a recent walk (a 1M-object heap pauses the program
// about 20-30 ms per walk, 0.2% of the time).
inline constexpr absl::Duration kDefaultMetricsHeapInterval = absl::Seconds(15);

struct Options {
  // The developer console (monitor/console): a Unix socket in a per-user
  // directory only the owner can enter; `annex ps/attach/exec` find it.
  bool console = false;
  // Overrides the socket directory ($XDG_RUNTIME_DIR/annex or
  // /tmp/annex-<uid> by default).
  std::string console_socket_dir;
  // Optional TCP listener on 127.0.0.1 with a token (off unless asked for).
  bool console_tcp = false;
  int console_tcp_port = 0;  // 0 = any free port
  // Whether console clients may run code in the target itself
  // (`.exec-target`) and raise in target threads (`.interrupt`).
  bool allow_exec_target = false;
  // How long annex Python code may hold the GIL before it hands it to the
  // target (docs/design.md rule 2).
  std::chrono::microseconds annex_yield_interval = std::chrono::milliseconds(5);
  // The annex's memory budget for kept sets (the annex's memory is the
  // host's): bytes one `hp` object (each console client has its own) may
  // keep, and all of them together. A set that would pass either is refused
  // with MemoryError saying what that hp keeps (hp.memory() lists it). 0:
  // the defaults, 512 MiB per hp and 1 GiB in total, each at most an
  // eighth / a quarter of the machine's physical memory.
  glue::MemoryLimits annex_memory;
  // How long one heap question (hp.heap(), a table, paths, retained
  // sizes, HeapSummary, ...) may hold the target: past it the question
  // stops with a clear error (DeadlineExceeded; in the console a
  // TimeoutError saying what to narrow) and the target runs again. Each
  // console client may set its own (hp.pause_limit). The watchdog's and
  // the recorder's heap walks have this one. InfiniteDuration: no limit.
  // Must be positive.
  absl::Duration question_pause_limit = absl::Seconds(5);
  // How many threads one heap question's long passes may use, the annex
  // thread included (docs/heap-engine.md, "Helper threads inside a
  // question"): a helper runs beside the annex thread only within a pass
  // over every object, so the target's pause is shorter. 0 (the
  // default): two where this process may run on two or more CPUs (its
  // CPU affinity, and its cgroup's CPU quota when it has one), else one.
  // 1: every question on the annex thread alone. At most
  // heap::Lanes::kMaxLanes (4).
  int question_threads = 0;
  // Name shown by `annex ps` (default: the process's command line).
  std::string program_name;
  // The in-process watchdog (monitor/watchdog): stalls, memory limits,
  // stack dumps and actions, without ever taking the GIL to detect them.
  // Annex's own thread states in the target are left out of its dumps
  // (added to watchdog_options.hidden_thread_idents).
  bool watchdog = false;
  watchdog::Options watchdog_options;
  // The heap engine's figures for the watchdog: every interval the annex
  // walks the target's heap (a stop-the-world pause of about 20-30 ms per
  // million objects, docs/heap-engine.md) and the watchdog's memory sample
  // (limits, Metrics(), the Prometheus endpoint) takes object count, bytes
  // and the largest kinds from the last walk while it is fresh; otherwise
  // from the allocator's counters. Each walk's pause goes into
  // Metrics().heap_walk_pauses (annex_heap_walk_pause_seconds).
  // Zero (the default): kDefaultMetricsHeapInterval when the Prometheus
  // endpoint is on (watchdog_options.metrics_port >= 0), so that it serves
  // object figures without more settings, else no periodic walks.
  // InfiniteDuration: no periodic walks, endpoint or not.
  absl::Duration watchdog_heap_interval = absl::ZeroDuration();
  size_t watchdog_top_kinds = 10;  // kinds in samples and report tables
  // Most kinds with series of their own in the endpoint's
  // annex_python_kind_* (MemorySample::tracked_kinds): a kind among a
  // walk's watchdog_top_kinds largest is tracked from then on while fewer
  // are; all other kinds add up in kind="other". Must be positive.
  size_t watchdog_tracked_kinds = 20;
  // Reports (watchdog_options.report_path / report_fd) get a heap partition
  // by type and the top growth since the last reference point, from one
  // walk per written report, waited for at most
  // watchdog_options.heap_report_timeout.
  bool watchdog_report_heap = true;
  // Heap recording (docs/recording.md): when record_path is set, a thread
  // has the annex walk the heap every record_interval (the first at once)
  // and appends a heap record to the file: the partitions by Clodo and by
  // type (the record_top_kinds largest rows, the rest "<Other>"), totals,
  // the walk's pause, RSS and labels, as Heapy stat records ("stat", read
  // by hp.loadall()) or JSON lines ("jsonl"). At record_max_bytes the file
  // is renamed FILE.1 and a new one begins. Each record holds the target
  // for one walk; tabulating and writing happen off the annex thread.
  std::string record_path;
  absl::Duration record_interval = absl::Seconds(10);
  std::string record_format = "stat";
  uint64_t record_max_bytes = uint64_t{64} << 20;
  size_t record_top_kinds = 20;
  // Each record also holds the dominator tree's top retainers by kind (the
  // report's icicle, docs/recording.md): the walk records the heap's edges
  // too (about twice the pause) and the tree is built on the recorder's
  // thread after the walk, with the target running. From the second record
  // on, each also holds the shortest paths to new objects of the 3 kinds
  // that grew most since the record before, found in the walk's pause.
  bool record_retainers = false;
};

class Monitor {
 public:
  Monitor();
  // Stops the monitor if running. Where: as Stop().
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Starts the annex (and the console when enabled) and returns once it is
  // ready. Where: any thread, after Py_Initialize*(); the caller may hold
  // the GIL. Errors: FailedPrecondition when Python is not initialized,
  // when its exact version (major.minor.micro; on 3.13 also the layouts in
  // _Py_DebugOffsets) differs from the headers Annex was built with, or
  // when this monitor is already started; Unavailable/Internal when the annex
  // or the console could not be started (nothing is left running then).
  absl::Status Start(const Options& options = Options());

  // Stops the console and ends the annex. Code still running in the annex
  // (host-submitted or a console client's) is interrupted, again every
  // 100 ms until it ends, so a Python loop does not keep Stop() waiting
  // (code that catches KeyboardInterrupt every time, or a long C call,
  // still does). Host calls made from other threads (ExecInAnnex,
  // ReleaseAnnexNamespace, HeapSummary, Interrupt, running()) are refused
  // from the start of Stop(); those in flight return an error, and Stop()
  // waits for them before it frees what they use. Harmless when not
  // running (OK).
  // Where: any thread but the annex's, before Py_FinalizeEx(); the caller
  // may hold the GIL. Start() and Stop() may be called from several threads
  // at once: each waits for the one in progress, with the GIL released.
  absl::Status Stop();

  // Where: any thread.
  bool running() const;

  // Runs Python `code` in the annex in a fresh namespace and returns what it
  // printed. Where: any thread; the caller may hold the GIL. Errors:
  // Unavailable when not running; InvalidArgument with the traceback when
  // the code raised; DeadlineExceeded after `timeout`: the code is then
  // interrupted (KeyboardInterrupt, which also ends the annex's
  // time.sleep), and when it does not end within a second (C code, or a
  // target thread keeps the GIL, which the message names) the call returns
  // anyway and the code ends later in the background.
  absl::StatusOr<std::string> ExecInAnnex(const std::string& code);
  absl::StatusOr<std::string> ExecInAnnex(const std::string& code,
                                          absl::Duration timeout);
  // One console line (a complete statement; an expression's value is
  // printed, as at `annex attach`) in a namespace kept between calls with
  // the same `namespace_id` (1 or more; the host's own namespaces,
  // separate from console clients'), so that `h = hp.heap()` in one call can
  // be used by the next. It lives until ReleaseAnnexNamespace(namespace_id),
  // Stop(), or a fork() of the process (which ends the annex interpreter,
  // see README). Errors: as ExecInAnnex(code); InvalidArgument for
  // namespace 0. Where: as ExecInAnnex(code).
  absl::StatusOr<std::string> ExecInAnnex(
      const std::string& code, uint64_t namespace_id,
      absl::Duration timeout = absl::InfiniteDuration());
  // Makes the Python code running in the annex now (from ExecInAnnex, a
  // console client, anything) raise KeyboardInterrupt; the annex's
  // time.sleep ends too, and so does a heap question it is asking (its C++
  // loops poll for this; Options::question_pause_limit). Harmless when
  // nothing runs. Where: any thread.
  void Interrupt();
  // Drops the namespace `namespace_id` of ExecInAnnex(code, namespace_id)
  // (harmless when it does not exist). Where: any thread; the caller may
  // hold the GIL. Unavailable when not running.
  absl::Status ReleaseAnnexNamespace(uint64_t namespace_id);

  // The target's heap as rows by kind, without Python on the host's side:
  // what `hp.heap().by(classifier).stat` shows (objects reachable from the
  // target's roots), each row a kind with its object count and bytes, the
  // largest first, plus the totals and the table header; stat.Table()
  // prints it as Heapy's partition table. `classifier` is a Heapy name
  // ("Clodo", "Type", "Size", "Module", "Rcs", "Via", "Prod", "Type&Size",
  // ...). With `max_rows` > 0 only the largest rows are kept and the rest
  // is one "<Other>" row. The walk pauses the target as hp.heap() does.
  // Where: any thread; the caller may hold the GIL (released while the
  // annex works). Errors: Unavailable when not running; InvalidArgument
  // for an unknown classifier; FailedPrecondition for "Prod" when the
  // target's tracemalloc is not tracing; DeadlineExceeded when no answer
  // came within `timeout` (a walk that started then ends in the
  // background; one that had not started is dropped).
  // With `reference_namespace` (a host namespace of ExecInAnnex(code,
  // namespace_id)) only what its hp.setref() reference point does not hold:
  // objects created since and alive (the whole heap when that namespace has
  // no reference point or does not exist). Console clients' and other
  // namespaces' reference points never apply.
  absl::StatusOr<glue::Stat> HeapSummary(
      const std::string& classifier = "Clodo", size_t max_rows = 0,
      uint64_t reference_namespace = 0,
      absl::Duration timeout = absl::InfiniteDuration());

  // The watchdog's counters and last memory sample (all zero when it is
  // off): the numbers the Prometheus endpoint serves. Where: any thread.
  watchdog::Metrics Metrics() const;

  // The port of the watchdog's Prometheus endpoint, or -1 when it is off.
  // Where: any thread.
  int metrics_port() const;

  // The console's Unix socket path, or "" when the console is off.
  std::string console_socket_path() const;

  // The session that owns this monitor's services (glue model); valid while
  // running. Where: any thread.
  glue::Session* session();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace annex
