// The watchdog's view of the target's heap, from the annex's heap engine.
//
// The watchdog thread never takes the GIL (docs/design.md rule 6), so it cannot
// walk the heap. This service runs a thread of its own that asks the annex
// (AnnexRuntime::Run, which gets the GIL through the hand-off) for a walk
// every `interval` and keeps the result as a snapshot; the watchdog's
// MemoryProvider copies the snapshot under a short mutex and never waits for
// the annex. When the snapshot is stale (the annex could not get the GIL:
// the target keeps it), the provider adds nothing and the watchdog falls
// back to the allocator's counters.
//
// Reports: Report(timeout) asks the same thread for a partition by type and
// the top growth since the last reference point, and waits at most
// `timeout`; a request that does not finish in time says why it is absent.
//
//   WatchdogHeap heap(runtime, session, {absl::Seconds(5), 10});
//   heap.Start();
//   options.memory_provider = [&](MemorySample& s) { heap.Fill(s); };
//   options.heap_reporter = [&](absl::Duration t) { return heap.Report(t); };
//   ...
//   heap.Stop();   // after the watchdog stopped, before the runtime stops
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "glue/classifiers.h"
#include "monitor/heap/lanes.h"
#include "monitor/services/periodic_thread.h"
#include "monitor/watchdog/internal/kind_tracker.h"
#include "monitor/watchdog/watchdog.h"

namespace annex {

namespace glue {
class Session;
}
namespace heap {
class HeapEngine;
}
namespace python {
class AnnexRuntime;
}

namespace services {

class WatchdogHeap {
 public:
  struct Config {
    // Period of the walks behind Fill(); zero: none (Fill adds nothing).
    absl::Duration interval = absl::ZeroDuration();
    // Kinds kept in samples and shown in reports.
    size_t top_kinds = 10;
    // How long one walk may hold the target (Options::question_pause_limit);
    // a walk past it stops, and that sample or report is absent.
    absl::Duration pause_limit = absl::InfiniteDuration();
    // The threads one walk's long passes may use
    // (Options::question_threads).
    heap::Lanes lanes = heap::Lanes::ForMachine();
    // Most kinds with series of their own in the samples' tracked_kinds
    // (watchdog/internal/kind_tracker.h); each walk's `top_kinds` largest
    // enter while there is room.
    size_t tracked_kinds = 20;
  };

  // Upper bounds (seconds) of the walk pause histogram's buckets.
  static std::vector<double> PauseBucketBounds();

  // `runtime` and `session` must outlive this object. Where: any thread.
  WatchdogHeap(python::AnnexRuntime* runtime, glue::Session* session,
               Config config);
  // Stops. Where: as Stop().
  ~WatchdogHeap();
  WatchdogHeap(const WatchdogHeap&) = delete;
  WatchdogHeap& operator=(const WatchdogHeap&) = delete;

  // Starts the thread; its first walk is the reference point for growth.
  // Where: any thread.
  void Start();
  // Joins the thread (a walk in flight finishes first; a caller holding the
  // GIL releases it meanwhile). Where: any thread but the annex's, before the
  // runtime stops.
  void Stop();

  // Copies the last walk's figures into `sample` when it is fresh (at most
  // two intervals and a second old); leaves `sample` alone otherwise.
  // Where: any thread (the watchdog thread); no GIL, never waits for the
  // annex.
  void Fill(watchdog::MemorySample& sample) ABSL_LOCKS_EXCLUDED(thread_.mu());

  // Adds the pauses of the walks so far (annex_heap_walk_pause_seconds).
  // Where: any thread; no GIL, never waits for the annex.
  void FillMetrics(watchdog::Metrics& metrics) const
      ABSL_LOCKS_EXCLUDED(thread_.mu());

  // The heap section of a report, or a line saying why there is none.
  // Where: any thread (the watchdog thread); no GIL; returns within
  // `timeout` (plus a walk's bookkeeping).
  std::string Report(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(thread_.mu());

  // Walks done so far. Where: any thread.
  int64_t walks() const ABSL_LOCKS_EXCLUDED(thread_.mu());

 private:
  struct Rows;
  void ThreadMain() ABSL_LOCKS_EXCLUDED(thread_.mu());
  // One walk, and the report text when `report`. Where: annex thread, GIL
  // held, annex current.
  void Walk(bool report, std::string* report_text)
      ABSL_LOCKS_EXCLUDED(thread_.mu());
  // Counts a walk's pause. Where: any thread.
  void AddPause(absl::Duration pause) ABSL_LOCKS_EXCLUDED(thread_.mu());

  python::AnnexRuntime* runtime_;
  glue::Session* session_;
  const Config config_;
  std::unique_ptr<heap::HeapEngine> engine_;  // annex thread only
  std::optional<glue::TypeNamer> namer_;      // annex thread only

  // Its mu() guards the state below, shared with its thread.
  PeriodicThread thread_;
  int64_t requested_ ABSL_GUARDED_BY(thread_.mu()) = 0;  // requests made
  int64_t served_ ABSL_GUARDED_BY(thread_.mu()) = 0;     // requests answered
  std::string report_ ABSL_GUARDED_BY(thread_.mu());     // the last answer
  bool have_snapshot_ ABSL_GUARDED_BY(thread_.mu()) = false;
  absl::Time snapshot_time_ ABSL_GUARDED_BY(thread_.mu());
  // Python figures.
  watchdog::MemorySample snapshot_ ABSL_GUARDED_BY(thread_.mu());
  int64_t walks_ ABSL_GUARDED_BY(thread_.mu()) = 0;
  // Time the annex held the GIL for each walk (walk, tabulation, report).
  watchdog::DurationHistogram pauses_ ABSL_GUARDED_BY(thread_.mu());
  watchdog::internal::KindTracker tracker_ ABSL_GUARDED_BY(thread_.mu());
  // The first walk's rows.
  std::shared_ptr<Rows> reference_ ABSL_GUARDED_BY(thread_.mu());
  absl::Time reference_time_ ABSL_GUARDED_BY(thread_.mu());
};

}  // namespace services
}  // namespace annex
