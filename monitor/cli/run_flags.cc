// annex run's options: see run_flags.h.
#include "monitor/cli/run_flags.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "glue/heap_record.h"

namespace annex::cli {

const char kRunOptionsHelp[] =
    R"(  --no-console          do not open the console socket
  --allow-exec-target   let console clients run code in the program itself
                        (.exec-target) and raise in its threads (.interrupt)
  --console-dir DIR     directory for the console socket (default:
                        $XDG_RUNTIME_DIR/annex or /tmp/annex-<uid>)
  --tcp PORT            also listen on 127.0.0.1:PORT (token required)
  --watchdog SECONDS    report stalls longer than SECONDS (with the stack of
                        every thread) on stderr; docs/watchdog.md
  --on-stall ACTION     what the watchdog does besides the report: dump (only
                        the report, the default), exception (raise
                        TimeoutError in a thread busy in Python; a stall in C
                        or a blocked main thread is only reported) or abort
                        (abort() after the report: a core dump)
  --watchdog-report FILE
                        also append each report to FILE (created 0600)
  --report-blocked-main report the main thread blocked without the GIL for
                        SECONDS (waiting on a lock, I/O, sleep: a deadlock,
                        but also an idle main thread)
  --report-busy-workers report any thread that runs Python and keeps the GIL
                        for SECONDS (a runaway worker thread)
  --metrics-port PORT   serve Prometheus metrics on 127.0.0.1:PORT (0: any
                        free port, printed on stderr); turns the watchdog on,
                        with a heap walk every 15 s for the object figures
  --metrics-address ADDR
                        serve them on the IP address ADDR instead of
                        127.0.0.1 (0.0.0.0: every interface; IPv4 only with
                        Debian's civetweb; there is no authentication)
  --heap-interval SECS  walk the heap every SECS seconds for the watchdog's
                        object counts and metrics (default: 15 with
                        --metrics-port, else none; 0: none). Each walk
                        pauses the program, about 20 ms per million objects
                        (annex_heap_walk_pause_seconds)
  --record FILE         append a heap record (partition by Clodo and type,
                        totals, the walk's pause, RSS, labels) to FILE every
                        --record-interval (default 10 s); docs/recording.md
  --record-interval SECS, --record-format stat|jsonl (default stat),
  --record-max-bytes N (rotate to FILE.1 past N bytes, default 64 MiB),
  --record-top N (rows kept per partition, default 20),
  --record-retainers (also the dominator tree's top retainers by kind
                        and the paths to the kinds that grow, drawn by
                        'annex report'; the walk takes about twice as long)
  --memory-budget MB[,TOTAL_MB]
                        memory the sets one hp (a console client's) keeps
                        may take (default 512 MiB), and all hp objects
                        together (default 1 GiB); past it a set is refused with
                        MemoryError (hp.memory() lists what is kept)
  -h, --help            show this help

--on-stall, --watchdog-report, --report-blocked-main and
--report-busy-workers need --watchdog SECONDS.
)";

absl::StatusOr<uint64_t> ParseSize(const std::string& text) {
  char* end = nullptr;
  const double n = std::strtod(text.c_str(), &end);
  double unit = 1;
  const std::string suffix = end != nullptr ? end : "";
  if (suffix == "K" || suffix == "k") {
    unit = 1024.0;
  } else if (suffix == "M" || suffix == "m") {
    unit = 1024.0 * 1024;
  } else if (suffix == "G" || suffix == "g") {
    unit = 1024.0 * 1024 * 1024;
  } else if (!suffix.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a size (e.g. 1048576, 64M, 1G)"));
  }
  const double bytes = n * unit;
  if (!(bytes >= 4096) || bytes > 1e15) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': the size must be 4096 bytes to 1 PB"));
  }
  return static_cast<uint64_t>(bytes);
}

namespace {

// `text` as a number of seconds in [min, 86400] (min excluded when
// `above_min`), or false.
bool Seconds(const std::string& text, double min, bool above_min, double* out) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(above_min ? v > min : v >= min) ||
      v > 86400) {
    return false;
  }
  *out = v;
  return true;
}

// `text` as a port number 0..65535, or -1.
int Port(const std::string& text) {
  char* end = nullptr;
  const long port = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || port < 0 || port > 65535) return -1;
  return static_cast<int>(port);
}

bool TakesValue(const std::string& a) {
  for (const char* flag :
       {"--console-dir", "--tcp", "--watchdog", "--python", "--metrics-port",
        "--metrics-address", "--heap-interval", "--memory-budget", "--record",
        "--record-interval", "--record-format", "--record-max-bytes",
        "--record-top", "--on-stall", "--watchdog-report"}) {
    if (a == flag) return true;
  }
  return false;
}

absl::Status Usage(const std::string& message) {
  return absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<RunFlags> ParseRunFlags(const std::vector<std::string>& args) {
  RunFlags flags;
  Options& options = flags.options;
  options.console = true;
  // Watchdog flags that need --watchdog; checked once all are read.
  std::vector<std::string> stall_flags;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      flags.help = true;
      return flags;
    }
    if (a == "--") {
      ++i;
      break;
    }
    if (a == "--no-console") {
      options.console = false;
      continue;
    }
    if (a == "--allow-exec-target") {
      options.allow_exec_target = true;
      continue;
    }
    if (a == "--report-blocked-main") {
      options.watchdog_options.report_blocked_main = true;
      stall_flags.push_back(a);
      continue;
    }
    if (a == "--report-busy-workers") {
      options.watchdog_options.report_busy_workers = true;
      stall_flags.push_back(a);
      continue;
    }
    if (a == "--record-retainers") {
      options.record_retainers = true;
      continue;
    }
    if (!TakesValue(a)) break;  // the program, or Python's own options
    if (i + 1 >= args.size()) return Usage(a + " needs a value");
    const std::string& v = args[++i];
    double seconds = 0;
    if (a == "--watchdog") {
      if (!Seconds(v, 0, /*above_min=*/true, &seconds)) {
        return Usage("--watchdog needs seconds > 0");
      }
      options.watchdog = true;
      options.watchdog_options.stall_timeout = absl::Seconds(seconds);
      options.watchdog_options.report_fd = 2;
    } else if (a == "--on-stall") {
      if (v != "dump" && v != "exception" && v != "abort") {
        return Usage("--on-stall is dump, exception or abort");
      }
      options.watchdog_options.raise_exception = v == "exception";
      options.watchdog_options.abort = v == "abort";
      stall_flags.push_back(a);
    } else if (a == "--watchdog-report") {
      options.watchdog_options.report_path = v;
      stall_flags.push_back(a);
    } else if (a == "--metrics-port") {
      const int port = Port(v);
      if (port < 0) return Usage("--metrics-port needs a port number");
      if (!options.watchdog) {
        options.watchdog = true;
        options.watchdog_options.stall_timeout = absl::ZeroDuration();
      }
      options.watchdog_options.metrics_port = port;
    } else if (a == "--metrics-address") {
      in_addr v4;
      in6_addr v6;
      if (inet_pton(AF_INET, v.c_str(), &v4) != 1 &&
          inet_pton(AF_INET6, v.c_str(), &v6) != 1) {
        return Usage(
            absl::StrCat("--metrics-address needs an IP address, not '", v,
                         "' (e.g. 127.0.0.1, or 0.0.0.0 for every interface)"));
      }
      options.watchdog_options.metrics_address = v;
    } else if (a == "--heap-interval") {
      if (!Seconds(v, 0, /*above_min=*/false, &seconds)) {
        return Usage("--heap-interval needs seconds >= 0");
      }
      options.watchdog_heap_interval =
          seconds > 0 ? absl::Seconds(seconds) : absl::InfiniteDuration();
    } else if (a == "--memory-budget") {
      // strtod's end points into the text it read: each part is a named
      // string that outlives the check of its end.
      const size_t comma = v.find(',');
      const std::string per_hp_text = v.substr(0, comma);
      char* end = nullptr;
      const double per_hp_mb = std::strtod(per_hp_text.c_str(), &end);
      double total_mb = 0;
      bool ok = *end == '\0' && per_hp_mb > 0 && per_hp_mb < 1e9;
      if (ok && comma != std::string::npos) {
        const std::string total_text = v.substr(comma + 1);
        total_mb = std::strtod(total_text.c_str(), &end);
        ok = *end == '\0' && total_mb > 0 && total_mb < 1e9;
      }
      if (!ok) return Usage("--memory-budget needs MB[,TOTAL_MB] > 0");
      options.annex_memory.per_hp_bytes =
          static_cast<size_t>(per_hp_mb * 1024 * 1024);
      options.annex_memory.total_bytes =
          static_cast<size_t>(total_mb * 1024 * 1024);
    } else if (a == "--record") {
      options.record_path = v;
    } else if (a == "--record-interval") {
      if (!Seconds(v, 0, /*above_min=*/true, &seconds)) {
        return Usage("--record-interval needs seconds > 0");
      }
      options.record_interval = absl::Seconds(seconds);
    } else if (a == "--record-format") {
      if (!glue::ParseRecordFormat(v).ok()) {
        return Usage("--record-format is stat or jsonl");
      }
      options.record_format = v;
    } else if (a == "--record-max-bytes") {
      absl::StatusOr<uint64_t> n = ParseSize(v);
      if (!n.ok()) {
        return Usage(
            absl::StrCat("--record-max-bytes: ", n.status().message()));
      }
      options.record_max_bytes = *n;
    } else if (a == "--record-top") {
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 1 || n > 100000) {
        return Usage("--record-top needs 1 to 100000");
      }
      options.record_top_kinds = static_cast<size_t>(n);
    } else if (a == "--python") {
      flags.python = v;
    } else if (a == "--console-dir") {
      options.console_socket_dir = v;
    } else if (a == "--tcp") {
      const int port = Port(v);
      if (port < 0) return Usage("--tcp needs a port number");
      options.console_tcp = true;
      options.console_tcp_port = port;
    }
  }
  if (!stall_flags.empty() &&
      (!options.watchdog ||
       options.watchdog_options.stall_timeout <= absl::ZeroDuration())) {
    return Usage(stall_flags[0] + " needs --watchdog SECONDS");
  }
  flags.program = i;
  return flags;
}

}  // namespace annex::cli
