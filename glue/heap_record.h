// Heap records: one moment of the target's heap for recording over time
// (`annex record`, `annex run --record`, docs/recording.md). A record holds
// the partition by Clodo and by type (the largest rows, the rest folded into
// "<Other>"), the totals, how long the walk held the target, the process's
// RSS and labels (pid, host, program, Python version, wall time). It is
// written either as Heapy stat records (two per moment, Clodo then Type,
// each with the labels as extra fields, so hp.loadall() and Heapy's loader
// read them) or as one JSON line.
//
//   HeapRecord r = MakeHeapRecord(heap_set, 20, pause_us);  // heap_view.h
//   r.labels = ProcessLabels("app.py", PY_VERSION);
//   RecordFile file("/tmp/app.rec", 64 << 20);
//   absl::Status s = file.Append(r.Text(RecordFormat::kStat));
//
// Plain data, no Python: any thread.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "glue/stat.h"

namespace annex::glue {

enum class RecordFormat {
  kStat,   // Heapy's stat records (Stat::Record), with the labels as fields
  kJsonl,  // one JSON object per line, schema "annex.record/1"
};

// "stat" or "jsonl"; InvalidArgument otherwise.
absl::StatusOr<RecordFormat> ParseRecordFormat(absl::string_view name);

struct RecordLabels {
  int64_t pid = 0;
  std::string host;
  std::string program;
  std::string python;  // "3.11.2"
};

// This process's labels: pid, host name, `program` (the command line from
// /proc/self/cmdline when empty) and `python_version`.
RecordLabels ProcessLabels(absl::string_view program,
                           absl::string_view python_version);
// This process's resident set size in bytes (/proc/self/statm); -1 when
// it cannot be read.
int64_t ResidentBytes();

struct HeapRecord {
  Stat clodo;              // partition by Clodo (largest rows, "<Other>")
  Stat type;               // partition by Type, likewise
  int64_t time_us = 0;     // wall time, µs since the Unix epoch
  int64_t pause_us = 0;    // how long the walk held the target
  int64_t rss_bytes = -1;  // the process's RSS when recorded
  RecordLabels labels;
  // The dominator tree's top retainers as a JSON array (glue/retainers.h),
  // or "" when not recorded. Stat format: the Clodo record's field
  // ".retainers:"; JSON lines: "retainers".
  std::string retainers_json;
  // The shortest paths to the kinds that grew most since the previous
  // record, as a JSON array (glue/growth_paths.h), or "" when not recorded.
  // Stat format: the Clodo record's field ".growth_paths:"; JSON lines:
  // "growth_paths".
  std::string growth_paths_json;

  // The record in `format`, ending with '\n'.
  std::string Text(RecordFormat format) const;
};

// A file records are appended to, rotated when it would pass `max_bytes`:
// FILE is renamed FILE.1 (replacing an older FILE.1) and a new FILE begins,
// so at most about twice `max_bytes` stay on disk. A record is written
// whole, with one write(2) on a file opened with O_APPEND. Created with mode
// 0600 (records name the program's kinds). Where: any thread; one writer.
class RecordFile {
 public:
  RecordFile(std::string path, uint64_t max_bytes);

  // Appends `text` (one or more whole records). Errors: the file cannot be
  // opened, renamed or written (the path in the message).
  absl::Status Append(absl::string_view text);
  const std::string& path() const { return path_; }
  int rotations() const { return rotations_; }

 private:
  std::string path_;
  uint64_t max_bytes_;
  int rotations_ = 0;
};

// How much ReadRecordFile may take.
struct RecordReadLimits {
  size_t max_line_bytes = size_t{16} << 20;    // one JSON line, one stat line
  size_t max_total_bytes = size_t{256} << 20;  // all records of one file
};

// The heap records of a recorded file, in either format (told by its first
// byte: '.' stat, '{' JSON lines), each as one JSON line: stat records are
// read by StatReader (bounded) and given as HeapRecord::Text(kJsonl) (a
// Clodo record followed by its Type record of the same time is one record;
// a stat record without labels, as x.dump() writes, is a record with only
// its partition, under "clodo"); JSON lines are returned as they are, not
// parsed here. Errors, naming the path: NotFound (no such file),
// FailedPrecondition (not a regular file: a device, FIFO or directory),
// InvalidArgument (neither format, a malformed record, or past `limits`).
absl::StatusOr<std::vector<std::string>> ReadRecordFile(
    const std::string& path, RecordReadLimits limits = RecordReadLimits());

// Default size limit of a record file before it rotates.
inline constexpr uint64_t kDefaultRecordMaxBytes = uint64_t{64} << 20;

}  // namespace annex::glue
