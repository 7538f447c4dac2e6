// Stats: Heapy's tables, differences and dump records over plain rows.
#include "glue/stat.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace annex::glue {
namespace {

constexpr char kLoader[] = "_load_stat";
constexpr char kOtherKind[] = "<Other>";

// Heapy's percentages: '%.0f' of the exact ratio (round half to even).
int Percent(int64_t part, int64_t whole) {
  if (whole == 0) return 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f",
                static_cast<double>(part) * 100.0 / static_cast<double>(whole));
  return std::atoi(buf);
}

// Heapy's "% of B" column of a difference: '%9.3g', or "(n.a.)" when B is
// empty.
std::string PercentOfB(int64_t size, int64_t b_size) {
  if (b_size == 0) return "   (n.a.)";
  char buf[64];
  std::snprintf(
      buf, sizeof buf, "%9.3g",
      static_cast<double>(size) * 100.0 / static_cast<double>(b_size));
  return buf;
}

std::string Escape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The inverse of Escape; any other backslash is kept as it is (Heapy's own
// records do not escape, e.g. a Windows path in a Prod kind).
std::string Unescape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char n = s[i + 1];
      if (n == '\\' || n == 'n' || n == 'r') {
        out += n == '\\' ? '\\' : n == 'n' ? '\n' : '\r';
        ++i;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::string FormatTime(int64_t us) {
  const bool negative = us < 0;
  const uint64_t a =
      negative ? 0 - static_cast<uint64_t>(us) : static_cast<uint64_t>(us);
  return absl::StrFormat("%s%d.%06d", negative ? "-" : "", a / 1000000,
                         a % 1000000);
}

// "1718000000.123456" (Heapy's '%f') to microseconds; more than six
// decimals are cut off.
bool ParseTime(absl::string_view s, int64_t* us) {
  s = absl::StripAsciiWhitespace(s);
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  absl::string_view whole = s, frac;
  if (size_t dot = s.find('.'); dot != absl::string_view::npos) {
    whole = s.substr(0, dot);
    frac = s.substr(dot + 1);
  }
  if (whole.empty() && frac.empty()) return false;
  uint64_t w = 0;
  if (!whole.empty() &&
      (whole.find_first_not_of("0123456789") != absl::string_view::npos ||
       !absl::SimpleAtoi(whole, &w))) {
    return false;
  }
  if (frac.find_first_not_of("0123456789") != absl::string_view::npos) {
    return false;
  }
  uint64_t f = 0;
  for (size_t i = 0; i < 6; ++i) {
    f = f * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  }
  if (w > static_cast<uint64_t>(INT64_MAX) / 1000000 - 1) return false;
  const int64_t v = static_cast<int64_t>(w * 1000000 + f);
  *us = negative ? -v : v;
  return true;
}

bool ParseInt(absl::string_view s, int64_t* v) {
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(s), v);
}

std::string Shown(absl::string_view line) {
  if (line.size() > 60) return absl::StrCat(line.substr(0, 57), "...");
  return std::string{line};
}

}  // namespace

size_t Stat::PageEnd(size_t first, size_t max_rows) const {
  const size_t n = rows.size() + rows_left_out;
  if (first >= n) return n;
  // As Heapy: a hint replaces two or more rows; one more row is shown.
  if (n - first <= max_rows || n - first - max_rows == 1) return n;
  return first + max_rows;
}

std::string Stat::Table(size_t first, size_t max_rows, bool label) const {
  // Built as Heapy prints it (label, row header, rows, hint: each a line),
  // then trailing white space cut, as Heapy's printer does.
  std::string out;
  const bool diff = format == Format::kDiff;
  if (label) {
    if (diff) {
      absl::StrAppendFormat(&out,
                            "Summary of difference operation (A-B).\n"
                            "        Count     Size\n"
                            "  A    %6d %8d\n"
                            "  B    %6d %8d\n"
                            "  A-B  %6d %8d  = %s %% of B\n",
                            count + b_count, size + b_size, b_count, b_size,
                            count, size, PercentOfB(size, b_size));
      if (count != 0 || size != 0) {
        out += "\nDifferences by kind, largest absolute size diffs first.";
      }
      out += "\n";
    } else {
      absl::StrAppendFormat(
          &out, "Partition of a set of %d object%s. Total size = %d bytes.\n",
          count, count == 1 ? "" : "s", size);
    }
  }
  if (first < rows.size()) {
    if (count != 0 || size != 0) {
      out += diff ? " Index  Count     Size  Cumulative  % of B "
                  : " Index  Count   %     Size   % Cumulative  % ";
      out += kind_header;
    }
    out += "\n";
    int64_t cumulative = 0;
    for (size_t i = 0; i < first; ++i) cumulative += rows[i].size;
    const size_t end = PageEnd(first, max_rows);
    for (size_t i = first; i < end; ++i) {
      const StatRow& r = rows[i];
      cumulative += r.size;
      if (diff) {
        absl::StrAppendFormat(&out, "%6d %6d %8d %9d %s %s\n", i, r.count,
                              r.size, cumulative,
                              PercentOfB(cumulative, b_size), r.kind);
      } else {
        absl::StrAppendFormat(&out, "%6d %6d %3d %8d %3d %9d %3d %s\n", i,
                              r.count, Percent(r.count, count), r.size,
                              Percent(r.size, size), cumulative,
                              Percent(cumulative, size), r.kind);
      }
    }
    if (end < rows.size() + rows_left_out) {
      absl::StrAppendFormat(&out,
                            "<%d more rows. Type e.g. '_.more' to view.>\n",
                            rows.size() + rows_left_out - end);
    }
  }
  while (!out.empty() &&
         absl::ascii_isspace(static_cast<unsigned char>(out.back()))) {
    out.pop_back();
  }
  if (!out.empty()) out += "\n";
  return out;
}

Stat Stat::Select(const std::vector<size_t>& indexes) const {
  Stat out = *this;
  out.rows.clear();
  out.count = 0;
  out.size = 0;
  for (size_t i : indexes) {
    out.rows.push_back(rows[i]);
    out.count += rows[i].count;
    out.size += rows[i].size;
  }
  return out;
}

Stat Stat::Limited(size_t max_rows) const {
  if (max_rows == 0 || rows.size() <= max_rows) return *this;
  Stat out = *this;
  out.rows.assign(rows.begin(), rows.begin() + max_rows);
  StatRow other{kOtherKind, count, size};
  for (const StatRow& r : out.rows) {
    other.count -= r.count;
    other.size -= r.size;
  }
  auto at = std::find_if(out.rows.begin(), out.rows.end(),
                         [&](const StatRow& r) { return r.size < other.size; });
  out.rows.insert(at, std::move(other));
  return out;
}

absl::StatusOr<Stat> Stat::Diff(const Stat& a, const Stat& b,
                                int64_t time_made_us) {
  if (a.kind_header != b.kind_header) {
    return absl::InvalidArgumentError(
        absl::StrCat("Mismatching table kind header, '", a.kind_header,
                     "' vs '", b.kind_header,
                     "': take the difference of stats by the same "
                     "classifier (x.stat - y.by(x.er).stat, or x.diff(y))"));
  }
  // B's rows by kind (duplicates merged, first position kept).
  struct Other {
    StatRow row;
    size_t index;
    bool used = false;
  };
  std::vector<Other> others;
  std::unordered_map<std::string, size_t> other_of;
  for (size_t i = 0; i < b.rows.size(); ++i) {
    auto [it, added] = other_of.emplace(b.rows[i].kind, others.size());
    if (added) {
      others.push_back({b.rows[i], i});
    } else {
      others[it->second].row.count += b.rows[i].count;
      others[it->second].row.size += b.rows[i].size;
    }
  }
  std::vector<StatRow> out_rows;
  std::unordered_map<std::string, size_t> out_of;
  for (const StatRow& r : a.rows) {
    StatRow d = r;
    if (auto it = other_of.find(r.kind); it != other_of.end()) {
      Other& o = others[it->second];
      if (!o.used) {
        o.used = true;
        d.count -= o.row.count;
        d.size -= o.row.size;
      }
    }
    if (d.count == 0 && d.size == 0) continue;
    auto [it, added] = out_of.emplace(d.kind, out_rows.size());
    if (added) {
      out_rows.push_back(std::move(d));
    } else {
      out_rows[it->second].count += d.count;
      out_rows[it->second].size += d.size;
    }
  }
  for (const Other& o : others) {  // in B's order
    if (!o.used) out_rows.push_back({o.row.kind, -o.row.count, -o.row.size});
  }
  std::stable_sort(out_rows.begin(), out_rows.end(),
                   [](const StatRow& x, const StatRow& y) {
                     return std::llabs(x.size) > std::llabs(y.size);
                   });
  Stat out;
  out.format = Format::kDiff;
  out.er = a.er;
  out.kind_header = a.kind_header;
  out.kind_name = a.kind_name;
  out.b_count = b.count;
  out.b_size = b.size;
  out.time_made_us = time_made_us;
  for (const StatRow& r : out_rows) {
    out.count += r.count;
    out.size += r.size;
  }
  out.rows = std::move(out_rows);
  return out;
}

std::string Stat::Record() const {
  const bool diff = format == Format::kDiff;
  std::string out =
      absl::StrCat(".loader: ", kLoader, "\n",
                   ".format: ", diff ? "DiffFormat" : "SetFormat", "\n",
                   ".timemade: ", FormatTime(time_made_us), "\n");
  if (diff) {
    absl::StrAppend(&out, ".b_count: ", b_count, "\n", ".b_size: ", b_size,
                    "\n");
  }
  absl::StrAppend(&out, ".count: ", count, "\n", ".size: ", size, "\n",
                  ".kindname: ", Escape(kind_name), "\n",
                  ".kindheader: ", Escape(kind_header), "\n",
                  ".er: ", Escape(er), "\n");
  for (const auto& [name, value] : fields) {
    absl::StrAppend(&out, ".", name, ": ", Escape(value), "\n");
  }
  absl::StrAppend(&out, ".numrows: ", rows.size(), "\n");
  for (const StatRow& r : rows) {
    absl::StrAppend(&out, ".r: ", r.count, " ", r.size, " ", Escape(r.kind),
                    "\n");
  }
  absl::StrAppend(&out, ".end: .loader: ", kLoader, "\n");
  return out;
}

StatReader::StatReader(Limits limits) : limits_(limits) {}

absl::Status StatReader::Fail(absl::Status status) {
  failed_ = status;
  pending_.clear();
  pending_.shrink_to_fit();
  records_.clear();
  stat_ = Stat();
  return status;
}

absl::Status StatReader::Feed(absl::string_view bytes) {
  if (!failed_.ok()) return failed_;
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    const size_t take = nl == absl::string_view::npos ? bytes.size() : nl;
    if (pending_.size() + take > limits_.max_line_bytes) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("malformed stat record at line ", line_no_ + 1,
                       ": the line is longer than ", limits_.max_line_bytes,
                       " bytes (the limit; is this a stat dump?)")));
    }
    if (nl == absl::string_view::npos) {
      pending_.append(bytes.data(), bytes.size());
      return absl::OkStatus();
    }
    absl::Status s;
    if (pending_.empty()) {
      s = Line(bytes.substr(0, nl));
    } else {
      pending_.append(bytes.data(), nl);
      s = Line(pending_);
      pending_.clear();
    }
    if (!s.ok()) return Fail(s);
    bytes.remove_prefix(nl + 1);
  }
  return absl::OkStatus();
}

absl::Status StatReader::Finish() {
  if (!failed_.ok()) return failed_;
  if (!pending_.empty()) {
    std::string last = std::move(pending_);
    pending_.clear();
    absl::Status s = Line(last);
    if (!s.ok()) return Fail(s);
  }
  if (in_record_) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "incomplete stat record: the record that starts at line ", record_line_,
        " has no '.end:' line (was the file cut short?)")));
  }
  return absl::OkStatus();
}

std::vector<Stat> StatReader::TakeRecords() {
  kept_bytes_ = 0;
  return std::move(records_);
}

absl::Status StatReader::Line(absl::string_view line) {
  const size_t line_no = ++line_no_;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF
  auto error = [line_no](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed stat record at line ", line_no, ": ", what));
  };
  if (!in_record_) {
    if (line.empty()) return absl::OkStatus();
    if (!absl::ConsumePrefix(&line, ".loader:")) {
      return error(absl::StrCat("expected '.loader: ", kLoader,
                                "' to start a record, got '", Shown(line),
                                "'"));
    }
    if (absl::StripAsciiWhitespace(line) != kLoader) {
      return error(absl::StrCat("unknown loader '",
                                Shown(absl::StripAsciiWhitespace(line)),
                                "' (stats use ", kLoader, ")"));
    }
    in_record_ = true;
    record_line_ = line_no;
    stat_ = Stat();
    stat_.er.clear();  // Heapy's own records name no classifier
    has_format_ = has_count_ = has_size_ = has_numrows_ = has_header_ =
        has_b_count_ = has_b_size_ = false;
    numrows_ = 0;
    // The record, and what holding it costs besides (allocator headers,
    // the Python object a loader wraps it in).
    record_bytes_ = sizeof(Stat) + 128;
    return absl::OkStatus();
  }
  // What the record will hold in memory, counted as it grows: a row costs
  // its StatRow and its kind's characters.
  auto grow = [&](size_t bytes) -> absl::Status {
    record_bytes_ += bytes;
    if (record_bytes_ > limits_.max_record_bytes) {
      return error(absl::StrCat("the record that starts at line ", record_line_,
                                " needs more than ", limits_.max_record_bytes,
                                " bytes (the record size limit)"));
    }
    return absl::OkStatus();
  };
  if (absl::ConsumePrefix(&line, ".r: ")) {
    // "count size kind": the kind is the rest of the line.
    size_t s1 = line.find(' ');
    size_t s2 = s1 == absl::string_view::npos ? s1 : line.find(' ', s1 + 1);
    StatRow row;
    if (s2 == absl::string_view::npos ||
        !absl::SimpleAtoi(line.substr(0, s1), &row.count) ||
        !absl::SimpleAtoi(line.substr(s1 + 1, s2 - s1 - 1), &row.size)) {
      return error(
          absl::StrCat("expected '.r: <count> <size> <kind>', got "
                       "'.r: ",
                       Shown(line), "'"));
    }
    if (static_cast<int64_t>(stat_.rows.size()) >= numrows_ && has_numrows_) {
      return error(
          absl::StrCat("more '.r:' lines than '.numrows: ", numrows_, "'"));
    }
    // The row vector doubles when full: the new block is counted (beside
    // the old one, still counted, that it is copied from) before it is
    // taken, so the limit bounds the peak.
    const size_t cap = stat_.rows.capacity();
    size_t cost = line.size() - s2 - 1;
    if (stat_.rows.size() == cap) {
      cost += (cap == 0 ? 1 : 2 * cap) * sizeof(StatRow);
    }
    absl::Status s = grow(cost);
    if (!s.ok()) return s;
    if (stat_.rows.size() == cap) record_bytes_ -= cap * sizeof(StatRow);
    row.kind = Unescape(line.substr(s2 + 1));
    stat_.rows.push_back(std::move(row));
    return absl::OkStatus();
  }
  if (absl::StartsWith(line, ".end:")) {
    if (!has_format_) return error("the record has no '.format:'");
    if (!has_count_ || !has_size_) {
      return error("the record has no '.count:' or '.size:'");
    }
    if (!has_header_) return error("the record has no '.kindheader:'");
    if (!has_numrows_) return error("the record has no '.numrows:'");
    if (stat_.format == Stat::Format::kDiff && !(has_b_count_ && has_b_size_)) {
      return error("a DiffFormat record needs '.b_count:' and '.b_size:'");
    }
    if (numrows_ != static_cast<int64_t>(stat_.rows.size())) {
      return error(absl::StrCat(".numrows: ", numrows_, " but ",
                                stat_.rows.size(), " '.r:' lines"));
    }
    stat_.rows.shrink_to_fit();
    if (limits_.keep_last_only) {
      records_.clear();
      kept_bytes_ = 0;
    }
    if (kept_bytes_ + record_bytes_ > limits_.max_total_bytes) {
      return error(absl::StrCat(
          "the records read so far need more than ", limits_.max_total_bytes,
          " bytes (the limit for all records of one source)"));
    }
    kept_bytes_ += record_bytes_;
    records_.push_back(std::move(stat_));
    stat_ = Stat();
    in_record_ = false;
    return absl::OkStatus();
  }
  if (!stat_.rows.empty()) {
    return error(absl::StrCat("expected '.r:' or '.end:' after the rows, got '",
                              Shown(line), "'"));
  }
  size_t colon = line.find(':');
  if (line.empty() || line[0] != '.' || colon == absl::string_view::npos) {
    return error(
        absl::StrCat("expected '.<name>: <value>', got '", Shown(line), "'"));
  }
  absl::string_view name = line.substr(1, colon - 1);
  absl::string_view value = line.substr(colon + 1);
  absl::string_view text = value;
  absl::ConsumePrefix(&text, " ");
  bool ok = true;
  if (name == "format") {
    absl::string_view f = absl::StripAsciiWhitespace(value);
    if (f == "SetFormat") {
      stat_.format = Stat::Format::kPartition;
    } else if (f == "DiffFormat") {
      stat_.format = Stat::Format::kDiff;
    } else {
      return error(absl::StrCat("unknown format '", Shown(f),
                                "' (SetFormat or DiffFormat)"));
    }
    has_format_ = true;
  } else if (name == "timemade") {
    ok = ParseTime(value, &stat_.time_made_us);
  } else if (name == "count") {
    ok = has_count_ = ParseInt(value, &stat_.count);
  } else if (name == "size") {
    ok = has_size_ = ParseInt(value, &stat_.size);
  } else if (name == "b_count") {
    ok = has_b_count_ = ParseInt(value, &stat_.b_count);
  } else if (name == "b_size") {
    ok = has_b_size_ = ParseInt(value, &stat_.b_size);
  } else if (name == "numrows") {
    ok = has_numrows_ = ParseInt(value, &numrows_);
    if (ok && numrows_ < 0) {
      return error(absl::StrCat("'.numrows:' is negative: ", numrows_));
    }
  } else if (name == "kindname" || name == "kindheader" || name == "er") {
    absl::Status s = grow(text.size());
    if (!s.ok()) return s;
    if (name == "kindname") {
      stat_.kind_name = Unescape(text);
    } else if (name == "kindheader") {
      stat_.kind_header = Unescape(text);
      has_header_ = true;
    } else {
      stat_.er = Unescape(text);
    }
  } else if (name != "loader") {
    // Other names (a heap record's labels) are kept, as Heapy's loader
    // keeps unknown fields; counted against the record's limit.
    absl::Status s = grow(name.size() + text.size() + 2 * sizeof(std::string));
    if (!s.ok()) return s;
    stat_.fields.emplace_back(std::string{name}, Unescape(text));
  }
  if (!ok) {
    return error(absl::StrCat("'.", name, ":' needs a number, got '",
                              Shown(absl::StripAsciiWhitespace(value)), "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Stat>> Stat::ParseRecords(absl::string_view text,
                                                     StatLimits limits) {
  StatReader reader(limits);
  absl::Status s = reader.Feed(text);
  if (s.ok()) s = reader.Finish();
  if (!s.ok()) return s;
  return reader.TakeRecords();
}

bool Stat::operator==(const Stat& o) const {
  return format == o.format && er == o.er && kind_header == o.kind_header &&
         kind_name == o.kind_name && count == o.count && size == o.size &&
         b_count == o.b_count && b_size == o.b_size && rows == o.rows;
}

}  // namespace annex::glue
