// The screen of `annex top`. See top_view.h.
#include "monitor/console/top_view.h"

#include <algorithm>
#include <cstdlib>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace annex::console {
namespace {

std::string Bytes(int64_t n) {
  const double a = std::llabs(n);
  if (a < 1024) return absl::StrCat(n, " B");
  if (a < 1024.0 * 1024) return absl::StrFormat("%.1f KiB", n / 1024.0);
  if (a < 1024.0 * 1024 * 1024) {
    return absl::StrFormat("%.1f MiB", n / (1024.0 * 1024));
  }
  return absl::StrFormat("%.2f GiB", n / (1024.0 * 1024 * 1024));
}

std::string SignedBytes(int64_t n) {
  return n >= 0 ? absl::StrCat("+", Bytes(n)) : Bytes(n);
}

std::string Seconds(double s) {
  if (s < 10) return absl::StrFormat("%.1fs", s);
  if (s < 120) return absl::StrFormat("%.0fs", s);
  if (s < 7200) return absl::StrFormat("%.0fm", s / 60);
  return absl::StrFormat("%.1fh", s / 3600);
}

// `line` cut to `columns` characters (UTF-8 code points; 0: any length).
std::string Cut(const std::string& line, int columns) {
  if (columns <= 0) return line;
  int chars = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    if (chars == columns) return line.substr(0, i);
    ++chars;
  }
  return line;
}

struct Row {
  std::string kind;
  int64_t count = 0, size = 0;    // now
  int64_t dcount = 0, dsize = 0;  // since the first record
};

}  // namespace

std::string RenderTop(const TopFrame& f) {
  std::vector<std::string> head;
  std::string title = absl::StrCat("annex top - pid ", f.pid);
  if (!f.program.empty()) absl::StrAppend(&title, "  ", f.program);
  if (!f.python.empty()) absl::StrAppend(&title, "  Python ", f.python);
  head.push_back(title);
  std::string totals = absl::StrFormat(
      "record %d, %s since the first (every %s)   objects %d (%+d)   heap %s "
      "(%s)",
      f.frame, Seconds(f.since_start_s), Seconds(f.interval_s), f.now.count,
      f.now.count - f.first.count, Bytes(f.now.size),
      SignedBytes(f.now.size - f.first.size));
  head.push_back(totals);
  std::string process = "RSS ";
  absl::StrAppend(&process, f.rss_bytes >= 0 ? Bytes(f.rss_bytes) : "?",
                  "   walk pause ");
  if (f.pause_us >= 0) {
    absl::StrAppendFormat(&process, "%.1f ms", f.pause_us / 1000.0);
  } else {
    process += "?";
  }
  absl::StrAppend(&process, "   by Clodo, ",
                  f.by_growth ? "largest growth first" : "largest size first",
                  "; +: growth since the first record");
  head.push_back(process);
  if (f.keys) head.push_back("keys: q quit, g order by growth / by size");
  head.push_back("");

  // Growth of each kind: Heapy's difference now - first.
  std::vector<Row> rows;
  std::unordered_map<std::string, size_t> row_of;
  for (const glue::StatRow& r : f.now.rows) {
    if (row_of.emplace(r.kind, rows.size()).second) {
      rows.push_back({r.kind, r.count, r.size, 0, 0});
    } else {
      rows[row_of[r.kind]].count += r.count;
      rows[row_of[r.kind]].size += r.size;
    }
  }
  absl::StatusOr<glue::Stat> diff = glue::Stat::Diff(f.now, f.first, 0);
  std::vector<std::string> growth_order;
  if (diff.ok()) {
    for (const glue::StatRow& d : diff->rows) {
      auto it = row_of.find(d.kind);
      if (it == row_of.end()) {  // gone since the first record
        it = row_of.emplace(d.kind, rows.size()).first;
        rows.push_back({d.kind, 0, 0, 0, 0});
      }
      rows[it->second].dcount += d.count;
      rows[it->second].dsize += d.size;
      growth_order.push_back(d.kind);
    }
  }
  if (f.by_growth) {
    // The diff's order (largest absolute size change first), then the
    // kinds that did not change, by size.
    std::vector<Row> ordered;
    ordered.reserve(rows.size());
    for (const std::string& k : growth_order)
      ordered.push_back(rows[row_of[k]]);
    for (const Row& r : rows) {
      if (r.dcount == 0 && r.dsize == 0) ordered.push_back(r);
    }
    rows = std::move(ordered);
  } else {
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
      return a.size > b.size;
    });
  }

  const std::string kind_header =
      f.now.kind_header.empty() ? "Kind" : f.now.kind_header;
  head.push_back(absl::StrCat(
      " Index    Count       Size    +Count      +Size ", kind_header));
  size_t fit = static_cast<size_t>(std::max(f.max_rows, 1));
  if (f.rows > 0) {
    // The header, the rows, and one line left free so nothing scrolls.
    const int left = f.rows - static_cast<int>(head.size()) - 1;
    fit = static_cast<size_t>(std::max(left, 1));
  }
  std::string out;
  for (const std::string& h : head)
    absl::StrAppend(&out, Cut(h, f.columns), "\n");
  // On a terminal the "more" line takes the last row that fits.
  const bool cut = rows.size() > fit;
  const size_t shown = !cut ? rows.size() : f.rows > 0 ? fit - 1 : fit;
  for (size_t i = 0; i < shown; ++i) {
    const Row& r = rows[i];
    absl::StrAppend(
        &out,
        Cut(absl::StrFormat("%6d %8d %10d %+9d %+10d %s", i, r.count, r.size,
                            r.dcount, r.dsize, r.kind),
            f.columns),
        "\n");
  }
  if (cut) {
    absl::StrAppend(
        &out,
        Cut(absl::StrCat("<", rows.size() - shown, " more kinds>"), f.columns),
        "\n");
  }
  return out;
}

}  // namespace annex::console
