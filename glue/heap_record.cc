// Heap records and their files. See heap_record.h.
#include "glue/heap_record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glue/json.h"

namespace annex::glue {
namespace {

void AppendJsonRows(std::string* out, const Stat& stat) {
  out->append("{\"classifier\":");
  AppendJsonString(out, stat.er);
  out->append(",\"kind_header\":");
  AppendJsonString(out, stat.kind_header);
  absl::StrAppend(out, ",\"count\":", stat.count, ",\"size\":", stat.size,
                  ",\"rows\":[");
  for (size_t i = 0; i < stat.rows.size(); ++i) {
    const StatRow& r = stat.rows[i];
    absl::StrAppend(out, i == 0 ? "" : ",", "{\"kind\":");
    AppendJsonString(out, r.kind);
    absl::StrAppend(out, ",\"count\":", r.count, ",\"size\":", r.size, "}");
  }
  out->append("]}");
}

// The labels as stat record fields.
Stat WithFields(Stat stat, const HeapRecord& r) {
  stat.time_made_us = r.time_us;
  stat.fields = {
      {"record", "annex.record/1"},
      {"pid", absl::StrCat(r.labels.pid)},
      {"host", r.labels.host},
      {"program", r.labels.program},
      {"python", r.labels.python},
      {"rss", absl::StrCat(r.rss_bytes)},
      {"pause_us", absl::StrCat(r.pause_us)},
  };
  if (stat.er == "Clodo" && !r.retainers_json.empty()) {
    stat.fields.emplace_back("retainers", r.retainers_json);
  }
  if (stat.er == "Clodo" && !r.growth_paths_json.empty()) {
    stat.fields.emplace_back("growth_paths", r.growth_paths_json);
  }
  return stat;
}

absl::Status Errno(absl::string_view what, const std::string& path) {
  const int e = errno;
  return absl::UnavailableError(
      absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(e)));
}

const std::string* Field(const Stat& s, absl::string_view name) {
  for (const auto& [n, v] : s.fields) {
    if (n == name) return &v;
  }
  return nullptr;
}

int64_t IntField(const Stat& s, absl::string_view name, int64_t otherwise) {
  const std::string* v = Field(s, name);
  int64_t n = 0;
  return v != nullptr && absl::SimpleAtoi(*v, &n) ? n : otherwise;
}

// A HeapRecord from a stat record's labels (those it has).
HeapRecord FromStat(const Stat& s) {
  HeapRecord r;
  r.time_us = s.time_made_us;
  r.pause_us = IntField(s, "pause_us", 0);
  r.rss_bytes = IntField(s, "rss", -1);
  r.labels.pid = IntField(s, "pid", 0);
  if (const std::string* v = Field(s, "host")) r.labels.host = *v;
  if (const std::string* v = Field(s, "program")) r.labels.program = *v;
  if (const std::string* v = Field(s, "python")) r.labels.python = *v;
  // Passed on as it is; the report checks its shape.
  if (const std::string* v = Field(s, "retainers")) r.retainers_json = *v;
  if (const std::string* v = Field(s, "growth_paths")) {
    r.growth_paths_json = *v;
  }
  return r;
}

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadRecordFile(
    const std::string& path, RecordReadLimits limits) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int e = errno;
    const std::string msg =
        absl::StrCat("cannot open ", path, ": ", std::strerror(e));
    return e == ENOENT ? absl::NotFoundError(msg)
                       : absl::FailedPreconditionError(msg);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is ", FileKind(st.st_mode),
                     ", not a regular file of heap records"));
  }
  StatLimits stat_limits;
  stat_limits.max_line_bytes = limits.max_line_bytes;
  stat_limits.max_record_bytes = limits.max_total_bytes;
  stat_limits.max_total_bytes = limits.max_total_bytes;
  StatReader reader(stat_limits);
  enum { kUnknown, kStat, kJsonl } format = kUnknown;
  std::vector<std::string> lines;
  std::string pending;
  size_t line_no = 0, total = 0;
  absl::Status status;
  char buf[65536];
  auto json_line = [&](absl::string_view line) -> absl::Status {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return absl::OkStatus();
    if (line.front() != '{') {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " line ", line_no, ": not a JSON record (expected '{')"));
    }
    total += line.size() + sizeof(std::string);
    if (total > limits.max_total_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the records need more than ",
                       limits.max_total_bytes, " bytes (the limit)"));
    }
    lines.emplace_back(line);
    return absl::OkStatus();
  };
  while (status.ok()) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = Errno("read", path);
      break;
    }
    if (n == 0) break;
    absl::string_view chunk(buf, static_cast<size_t>(n));
    if (format == kUnknown) {
      const size_t first = chunk.find_first_not_of(" \t\r\n");
      if (first == absl::string_view::npos) continue;
      if (chunk[first] == '.') {
        format = kStat;
      } else if (chunk[first] == '{') {
        format = kJsonl;
      } else {
        status = absl::InvalidArgumentError(absl::StrCat(
            path,
            " holds no heap records (neither Heapy stat records nor "
            "JSON lines)"));
        break;
      }
    }
    if (format == kStat) {
      status = reader.Feed(chunk);
      continue;
    }
    while (status.ok() && !chunk.empty()) {
      const size_t nl = chunk.find('\n');
      const size_t take = nl == absl::string_view::npos ? chunk.size() : nl;
      if (pending.size() + take > limits.max_line_bytes) {
        status = absl::InvalidArgumentError(
            absl::StrCat(path, " line ", line_no + 1, " is longer than ",
                         limits.max_line_bytes, " bytes (the limit)"));
        break;
      }
      if (nl == absl::string_view::npos) {
        pending.append(chunk.data(), chunk.size());
        break;
      }
      pending.append(chunk.data(), nl);
      status = json_line(pending);
      pending.clear();
      chunk.remove_prefix(nl + 1);
    }
  }
  ::close(fd);
  if (status.ok() && format == kJsonl && !pending.empty()) {
    status = json_line(pending);
  }
  if (status.ok() && format == kStat) {
    status = reader.Finish();
    if (!status.ok()) {
      status = absl::InvalidArgumentError(
          absl::StrCat(path, ": ", status.message()));
    }
  } else if (!status.ok() && format == kStat &&
             absl::IsInvalidArgument(status)) {
    status =
        absl::InvalidArgumentError(absl::StrCat(path, ": ", status.message()));
  }
  if (!status.ok()) return status;
  if (format == kStat) {
    std::vector<Stat> stats = reader.TakeRecords();
    for (size_t i = 0; i < stats.size(); ++i) {
      HeapRecord r = FromStat(stats[i]);
      r.clodo = std::move(stats[i]);
      if (r.clodo.er == "Clodo" && i + 1 < stats.size() &&
          stats[i + 1].er == "Type" &&
          stats[i + 1].time_made_us == r.clodo.time_made_us) {
        r.type = std::move(stats[++i]);
      }
      lines.push_back(r.Text(RecordFormat::kJsonl));
      lines.back().pop_back();  // the '\n'
    }
  }
  if (lines.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds no heap records (empty)"));
  }
  return lines;
}

absl::StatusOr<RecordFormat> ParseRecordFormat(absl::string_view name) {
  if (name == "stat") return RecordFormat::kStat;
  if (name == "jsonl") return RecordFormat::kJsonl;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown record format '", name, "' (stat or jsonl)"));
}

RecordLabels ProcessLabels(absl::string_view program,
                           absl::string_view python_version) {
  RecordLabels labels;
  labels.pid = static_cast<int64_t>(::getpid());
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) == 0) labels.host = host;
  labels.python = std::string{python_version};
  labels.program = std::string{program};
  if (labels.program.empty()) {
    // The command line, arguments joined by spaces (at most 4 KiB).
    int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[4096];
      ssize_t n = ::read(fd, buf, sizeof(buf));
      ::close(fd);
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] == '\0') {
          if (i + 1 < n) labels.program.push_back(' ');
        } else {
          labels.program.push_back(buf[i]);
        }
      }
    }
  }
  return labels;
}

int64_t ResidentBytes() {
  int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  long long size_pages = 0, resident_pages = 0;
  if (std::sscanf(buf, "%lld %lld", &size_pages, &resident_pages) != 2) {
    return -1;
  }
  return static_cast<int64_t>(resident_pages) * ::sysconf(_SC_PAGESIZE);
}

std::string HeapRecord::Text(RecordFormat format) const {
  if (format == RecordFormat::kStat) {
    return absl::StrCat(WithFields(clodo, *this).Record(),
                        WithFields(type, *this).Record());
  }
  std::string out = "{\"schema\":\"annex.record/1\",\"time\":";
  absl::StrAppendFormat(&out, "%.6f", static_cast<double>(time_us) / 1e6);
  absl::StrAppend(&out, ",\"pid\":", labels.pid, ",\"host\":");
  AppendJsonString(&out, labels.host);
  out.append(",\"program\":");
  AppendJsonString(&out, labels.program);
  out.append(",\"python\":");
  AppendJsonString(&out, labels.python);
  absl::StrAppend(&out, ",\"rss_bytes\":", rss_bytes, ",\"pause_s\":");
  absl::StrAppendFormat(&out, "%.6f", static_cast<double>(pause_us) / 1e6);
  absl::StrAppend(&out, ",\"count\":", clodo.count, ",\"size\":", clodo.size,
                  ",\"clodo\":");
  AppendJsonRows(&out, clodo);
  out.append(",\"type\":");
  AppendJsonRows(&out, type);
  if (!retainers_json.empty()) {
    absl::StrAppend(&out, ",\"retainers\":", retainers_json);
  }
  if (!growth_paths_json.empty()) {
    absl::StrAppend(&out, ",\"growth_paths\":", growth_paths_json);
  }
  out.append("}\n");
  return out;
}

RecordFile::RecordFile(std::string path, uint64_t max_bytes)
    : path_(std::move(path)), max_bytes_(max_bytes) {}

absl::Status RecordFile::Append(absl::string_view text) {
  int fd =
      ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("open", path_);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    absl::Status s = Errno("stat", path_);
    ::close(fd);
    return s;
  }
  // Only a regular file rotates (a pipe or /dev/null is written as it is).
  if (S_ISREG(st.st_mode) && st.st_size > 0 &&
      static_cast<uint64_t>(st.st_size) + text.size() > max_bytes_) {
    ::close(fd);
    const std::string older = absl::StrCat(path_, ".1");
    if (::rename(path_.c_str(), older.c_str()) != 0) {
      return Errno(absl::StrCat("rename to ", older), path_);
    }
    ++rotations_;
    fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return Errno("open", path_);
  }
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status s = Errno("write", path_);
      ::close(fd);
      return s;
    }
    text.remove_prefix(static_cast<size_t>(n));
  }
  if (::close(fd) != 0) return Errno("close", path_);
  return absl::OkStatus();
}

}  // namespace annex::glue
