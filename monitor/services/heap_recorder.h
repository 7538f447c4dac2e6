// The in-process heap recorder behind `annex run --record FILE` and
// Options::record_path (docs/recording.md).
//
// A thread of its own asks the annex (AnnexRuntime::Run) for one walk of the
// target's heap every interval, with the session's HeapView, and appends a
// heap record (glue/heap_record.h) to the file. Only the walk runs on the
// annex thread with the target held; the partitions are tabulated and the
// file written on the recorder's thread, with no GIL.
//
//   HeapRecorder recorder(runtime, session, config);
//   recorder.Start();
//   ...
//   recorder.Stop();   // before the runtime stops
#pragma once

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "glue/heap_record.h"
#include "monitor/services/periodic_thread.h"

namespace annex {

namespace glue {
class Session;
}
namespace python {
class AnnexRuntime;
}

namespace services {

class HeapRecorder {
 public:
  struct Config {
    std::string path;
    absl::Duration interval = absl::Seconds(10);
    glue::RecordFormat format = glue::RecordFormat::kStat;
    uint64_t max_bytes = glue::kDefaultRecordMaxBytes;
    size_t top_rows = 20;
    // Also the dominator tree's top retainers (glue/retainers.h): the walk
    // records edges (about twice its pause) and the tree is built on this
    // thread afterwards, with the target running. And, from the second
    // record on, the shortest paths to the kinds that grew most since the
    // previous record (glue/growth_paths.h), found and named inside the
    // walk's question (one breadth-first search per kind, in the pause).
    bool retainers = false;
    int64_t max_records = 0;  // 0: until stopped
    std::string program;      // the program label
  };

  // `runtime` and `session` must outlive this object. Where: any thread.
  HeapRecorder(python::AnnexRuntime* runtime, glue::Session* session,
               Config config);
  // Stops. Where: as Stop().
  ~HeapRecorder();
  HeapRecorder(const HeapRecorder&) = delete;
  HeapRecorder& operator=(const HeapRecorder&) = delete;

  // Starts the thread; the first record is taken at once. Where: any thread.
  void Start();
  // Joins the thread (a walk in flight finishes first; a caller holding the
  // GIL releases it meanwhile). Where: any thread but the annex's, before
  // the runtime stops.
  void Stop();

  // Records written so far, and the last error (OK when none). A failed
  // record (the file cannot be written) is reported once on stderr and
  // recording goes on. Where: any thread.
  int64_t records() const ABSL_LOCKS_EXCLUDED(thread_.mu());
  absl::Status last_error() const ABSL_LOCKS_EXCLUDED(thread_.mu());

 private:
  void ThreadMain() ABSL_LOCKS_EXCLUDED(thread_.mu());

  python::AnnexRuntime* runtime_;
  glue::Session* session_;
  const Config config_;
  glue::RecordFile file_;  // recorder thread only

  PeriodicThread thread_;
  int64_t records_ ABSL_GUARDED_BY(thread_.mu()) = 0;
  absl::Status last_error_ ABSL_GUARDED_BY(thread_.mu());
};

}  // namespace services
}  // namespace annex
