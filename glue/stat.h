// Stat: the rows of a partition without its objects (Heapy's Stat), as plain
// data: kind, count and size per row, the totals, and the classifier's name
// and table header. Stats print as Heapy's partition table, subtract into
// Heapy's difference table, and travel as text records (Heapy's dump
// format, one line per field or row) that read back exactly.
//
//   Stat a = set_before.ToStat();          // glue/heap_view.h
//   Stat b = set_after.ToStat();
//   absl::StatusOr<Stat> d = Stat::Diff(b, a);   // what grew, what shrank
//   std::string table = d->Table();
//   std::string record = b.Record();       // append to a file ...
//   auto back = Stat::ParseRecords(text);  // ... and read it back
//
// Nothing here touches Python: any thread, no GIL needed. A Stat holds no
// object address, so it stays valid however long it is kept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace annex::glue {

// How much a StatReader may take (see there).
struct StatLimits {
  size_t max_line_bytes = size_t{1} << 20;     // 1 MiB
  size_t max_record_bytes = size_t{32} << 20;  // 32 MiB
  size_t max_total_bytes = size_t{32} << 20;   // 32 MiB
  bool keep_last_only = false;
  // No limit at all: for texts already in memory in full.
  static constexpr StatLimits Unbounded() {
    return StatLimits{SIZE_MAX, SIZE_MAX, SIZE_MAX, false};
  }
};

struct StatRow {
  std::string kind;
  int64_t count = 0;  // negative in a difference
  int64_t size = 0;   // bytes; negative in a difference

  bool operator==(const StatRow& o) const {
    return kind == o.kind && count == o.count && size == o.size;
  }
  bool operator!=(const StatRow& o) const { return !(*this == o); }
};

struct Stat {
  enum class Format {
    kPartition,  // Heapy's SetFormat: a partition of a set
    kDiff,       // Heapy's DiffFormat: A - B, row by row
  };

  Format format = Format::kPartition;
  std::string er = "Clodo";  // the classifier's name ("Type&Size")
  std::string kind_header;   // the table's kind column header
  std::string kind_name;     // Heapy's kindname ("" for partitions)
  int64_t count = 0;         // objects (sum of the rows' counts)
  int64_t size = 0;          // bytes (sum of the rows' sizes)
  int64_t b_count = 0;       // kDiff: the totals of B
  int64_t b_size = 0;
  int64_t time_made_us = 0;   // when it was made, µs since the Unix epoch
  std::vector<StatRow> rows;  // largest first (|size| for a difference)
  // Rows after `rows` that a stat made only to print its first page
  // leaves out (KindedSet::PartitionTable): Table's hint counts them.
  // 0 in every stat kept, loaded, dumped or compared.
  size_t rows_left_out = 0;
  // Other fields of the record, in order: labels a heap record adds
  // (docs/recording.md: pid, host, rss, pause_us, ...). Names are
  // [a-z0-9_]+; Heapy's loader keeps such fields too. Record() writes them,
  // the reader keeps the ones it does not know.
  std::vector<std::pair<std::string, std::string>> fields;

  size_t numrows() const { return rows.size(); }

  // Heapy's table: the label ("Partition of a set of ..." or the summary
  // of a difference) when `label`, the row header, rows [first, first +
  // max_rows), and "<N more rows. Type e.g. '_.more' to view.>" when two or
  // more rows are left (one row left is printed instead). A page with no
  // rows has no row header. Lines end with '\n'.
  std::string Table(size_t first = 0, size_t max_rows = 10,
                    bool label = true) const;
  // Where the page that Table(first, max_rows) shows ends: the first row
  // of the next page (Heapy's `.more`).
  size_t PageEnd(size_t first, size_t max_rows = 10) const;

  // The rows at `indexes` (in that order) as a stat of their own, totals
  // recomputed, as Heapy's stat[i] and stat[a:b]. Indexes must be valid.
  Stat Select(const std::vector<size_t>& indexes) const;
  // The largest `max_rows` rows, the others folded into one row of kind
  // "<Other>" placed by its size (Heapy's get_rows_n_and_other); totals
  // unchanged. 0: all rows.
  Stat Limited(size_t max_rows) const;

  // Heapy's A - B: per kind the differences of count and size (kinds with
  // none left out, kinds only in B negative), largest absolute size
  // difference first; totals are the differences, b_count/b_size B's.
  // InvalidArgument when the kind headers differ (different classifiers).
  static absl::StatusOr<Stat> Diff(const Stat& a, const Stat& b,
                                   int64_t time_made_us);

  // The text record (Heapy's dump format, see docs/hp.md "Stats"): lines
  // ".name: value", one ".r: count size kind" per row, ".end: ...".
  // Backslash, line feed and carriage return in texts are written as
  // \\, \n and \r, so any kind reads back exactly.
  std::string Record() const;
  // Every record in `text` (records follow each other; empty lines between
  // them are skipped). InvalidArgument naming the line for a malformed or
  // incomplete record, or one past `limits` (see StatReader).
  static absl::StatusOr<std::vector<Stat>> ParseRecords(
      absl::string_view text, StatLimits limits = StatLimits::Unbounded());

  // Equal contents: everything but time_made_us and fields.
  bool operator==(const Stat& o) const;
  bool operator!=(const Stat& o) const { return !(*this == o); }
};

// Reads stat records as a stream with bounds, so that what it is fed
// (a file, a device, a pipe) never decides how much memory it takes: a
// line longer than `max_line_bytes` is refused as soon as it is seen, a
// record that would need more than `max_record_bytes` (its rows and texts
// as held in memory) is refused at the row that passes the limit, and
// the first malformed line ends the reading (every later call returns the
// same error). With `keep_last_only` only the last complete record is
// kept (hp.load), otherwise all of them up to `max_total_bytes`
// (hp.loadall).
//
//   StatLimits limits;
//   limits.keep_last_only = true;
//   StatReader reader(limits);
//   absl::Status status;
//   while (status.ok() && more) status = reader.Feed(next_chunk);
//   if (status.ok()) status = reader.Finish();
//   std::vector<Stat> last = reader.TakeRecords();
//
// Plain data: any thread, no GIL.
class StatReader {
 public:
  using Limits = StatLimits;

  explicit StatReader(Limits limits);
  StatReader(const StatReader&) = delete;
  StatReader& operator=(const StatReader&) = delete;

  // The next bytes of the input (any split: lines may span calls).
  // InvalidArgument naming the line for a malformed or oversized record.
  absl::Status Feed(absl::string_view bytes);
  // The end of the input: the last line may lack its '\n'; a record
  // without its '.end:' line is an error.
  absl::Status Finish();
  // The complete records read (all, or the last one), oldest first.
  std::vector<Stat> TakeRecords();
  // How many complete records are held (TakeRecords would return them).
  size_t complete_records() const { return records_.size(); }
  size_t lines() const { return line_no_; }

 private:
  absl::Status Line(absl::string_view line);
  absl::Status Fail(absl::Status status);

  Limits limits_;
  absl::Status failed_;
  std::string pending_;  // a line not ended yet
  size_t line_no_ = 0;
  std::vector<Stat> records_;
  size_t kept_bytes_ = 0;
  // The record being read.
  bool in_record_ = false;
  size_t record_line_ = 0;
  size_t record_bytes_ = 0;
  Stat stat_;
  bool has_format_ = false, has_count_ = false, has_size_ = false,
       has_numrows_ = false, has_header_ = false, has_b_count_ = false,
       has_b_size_ = false;
  int64_t numrows_ = 0;
};

}  // namespace annex::glue
