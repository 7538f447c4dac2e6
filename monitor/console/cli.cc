// `annex ps`, `annex attach`, `annex exec`. See cli.h.
//
// These run in the short-lived `annex` command, never in the host, so
// installing a SIGINT handler here (for Ctrl-C) is fine; the server side
// uses no signals at all.
#include "monitor/console/cli.h"

#include <editline/readline.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "glue/heap_record.h"
#include "glue/stat.h"
#include "monitor/console/internal/runtime_dir.h"
#include "monitor/console/top_view.h"

namespace annex::console {
namespace {

// ---- Ctrl-C as a readable pipe ----------------------------------------------

// Write end of the active SigintPipe; the handler may only touch this.
volatile sig_atomic_t g_sigint_write_fd = -1;

extern "C" void OnSigint(int) {
  int saved = errno;
  int fd = g_sigint_write_fd;
  if (fd >= 0) (void)!::write(fd, "i", 1);
  errno = saved;
}

// Turns SIGINT into bytes on a pipe for the scope, so a poll loop can wait
// for "reply or Ctrl-C" without races. Restores the previous handler.
class SigintPipe {
 public:
  SigintPipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return;
    read_.Reset(fds[0]);
    write_.Reset(fds[1]);
    g_sigint_write_fd = write_.get();
    struct sigaction sa {};
    sa.sa_handler = OnSigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: poll() must return on Ctrl-C
    installed_ = ::sigaction(SIGINT, &sa, &previous_) == 0;
  }
  ~SigintPipe() {
    if (installed_) ::sigaction(SIGINT, &previous_, nullptr);
    g_sigint_write_fd = -1;
  }
  SigintPipe(const SigintPipe&) = delete;
  SigintPipe& operator=(const SigintPipe&) = delete;

  int read_fd() const { return read_.get(); }
  // Empties the pipe; true when a Ctrl-C was pending.
  bool Drain() {
    char buf[64];
    bool any = false;
    while (read_.valid() && ::read(read_.get(), buf, sizeof(buf)) > 0) {
      any = true;
    }
    return any;
  }

 private:
  internal::UniqueFd read_, write_;
  struct sigaction previous_ {};
  bool installed_ = false;
};

// ---- Shared pieces ----------------------------------------------------------

absl::StatusOr<std::unique_ptr<Client>> ConnectOrReport(
    pid_t pid, const ClientOptions& options, std::ostream& err) {
  absl::StatusOr<std::unique_ptr<Client>> c =
      Client::ConnectToPid(pid, options);
  if (!c.ok()) {
    err << "annex: cannot attach to pid " << pid << ": " << c.status() << "\n";
    // No console socket: say whether the process exists, and how to give
    // it an Annex.
    if (absl::IsNotFound(c.status()) && options.tcp_port <= 0) {
      if (::kill(pid, 0) == 0 || errno == EPERM) {
        err << "annex: process " << pid
            << " runs but has no Annex console. Start the program with "
               "'annex run app.py' (or 'python3 -m annex run app.py'), or "
               "call 'import annex; annex.start(console=True)' in it (C++ "
               "hosts: annex::Monitor with Options::console = true).\n";
      } else {
        err << "annex: there is no process " << pid
            << " ('annex ps' lists the attachable ones).\n";
      }
    }
  }
  return c;
}

void PrintReply(const ReplyMessage& r, std::ostream& out, std::ostream& err) {
  out << r.output;
  out.flush();
  std::string error = r.error;
  if (error.empty() && r.status == ReplyStatus::kInterrupted) {
    error = "KeyboardInterrupt";
  }
  if (!error.empty()) {
    err << error;
    if (error.back() != '\n') err << "\n";
    err.flush();
  }
}

// After a command's timeout, how long its interrupted reply is awaited.
constexpr absl::Duration kTimeoutGrace = absl::Seconds(3);

// Client::Call with options.command_timeout: when it passes, the command is
// interrupted as by Ctrl-C and its reply (saying what kept the annex, e.g.
// the thread that holds the GIL) awaited kTimeoutGrace more; `*timed_out`
// says so. DeadlineExceeded when not even that reply came.
absl::StatusOr<ReplyMessage> CallWithTimeout(
    Client& client, RequestKind kind, const std::string& text, int interrupt_fd,
    const ClientOptions& options, std::ostream& err, bool* timed_out) {
  *timed_out = false;
  absl::StatusOr<ReplyMessage> r =
      client.Call(kind, text, interrupt_fd, options.command_timeout);
  if (!absl::IsDeadlineExceeded(r.status())) return r;
  *timed_out = true;
  err << "annex: no reply within "
      << absl::FormatDuration(options.command_timeout)
      << " (--timeout); interrupting the command\n";
  InterruptMessage intr;  // request_id 0: whatever runs for this client
  if (absl::Status s = client.SendBytes(EncodeInterrupt(intr)); !s.ok()) {
    return s;
  }
  const absl::Time deadline = absl::Now() + kTimeoutGrace;
  while (true) {
    absl::StatusOr<Frame> f = client.ReadFrame(
        std::max(absl::ZeroDuration(), deadline - absl::Now()));
    if (absl::IsDeadlineExceeded(f.status())) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no reply even ", absl::FormatDuration(kTimeoutGrace),
          " after the interrupt (the process may be stopped or its console "
          "thread stuck)"));
    }
    if (!f.ok()) return f.status();
    if (f->type == static_cast<uint8_t>(FrameType::kError)) {
      absl::StatusOr<ErrorMessage> e = DecodeError(f->payload);
      if (!e.ok()) return e.status();
      return ErrorToStatus(*e);
    }
    if (f->type == static_cast<uint8_t>(FrameType::kReply))
      return DecodeReply(f->payload);
  }
}

int ExitCodeFor(const ReplyMessage& r) {
  switch (r.status) {
    case ReplyStatus::kOk:
      return r.exit_code;  // SystemExit(0) or plain success
    case ReplyStatus::kError:
    case ReplyStatus::kIncomplete:
      return r.exit_code != 0 ? r.exit_code : kExitRaised;
    case ReplyStatus::kInterrupted:
      return kExitInterrupted;
    case ReplyStatus::kRefused:
      return kExitRefused;
  }
  return kExitRaised;
}

std::string FormatDuration(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return absl::StrCat(seconds, "s");
  if (seconds < 3600) {
    return absl::StrFormat("%dm%02ds", seconds / 60, seconds % 60);
  }
  if (seconds < 86400) {
    return absl::StrFormat("%dh%02dm", seconds / 3600, (seconds % 3600) / 60);
  }
  return absl::StrFormat("%dd%02dh", seconds / 86400, (seconds % 86400) / 3600);
}

// VmRSS from /proc/PID/status, in KiB; -1 when unreadable.
int64_t RssKib(pid_t pid) {
  absl::StatusOr<std::string> status = internal::ReadSmallFile(
      absl::StrCat("/proc/", pid, "/status"), size_t{64} * 1024);
  if (!status.ok()) return -1;
  size_t at = status->find("VmRSS:");
  if (at == std::string::npos) return -1;
  std::istringstream line(status->substr(at + 6));
  int64_t kib = -1;
  line >> kib;
  return kib;
}

std::string FormatKib(int64_t kib) {
  if (kib < 0) return "?";
  if (kib < 1024) return absl::StrCat(kib, " KiB");
  if (kib < int64_t{1024} * 1024)
    return absl::StrFormat("%.1f MiB", kib / 1024.0);
  return absl::StrFormat("%.2f GiB", kib / (1024.0 * 1024.0));
}

// The console's line discipline, shared by the terminal and script modes:
// dot commands, multi-line accumulation, printing.
class Repl {
 public:
  Repl(Client& client, std::ostream& out, std::ostream& err, int interrupt_fd,
       const ClientOptions& options)
      : client_(client),
        out_(out),
        err_(err),
        interrupt_fd_(interrupt_fd),
        options_(options) {}

  bool continuation() const { return !buffer_.empty(); }
  bool lost() const { return lost_; }
  // The statement just completed, for the history; empty if none.
  std::string TakeCompleted() { return std::exchange(completed_, ""); }
  void Discard() { buffer_.clear(); }

  // Handles one input line. Returns false when the attach should end.
  bool Feed(const std::string& line) {
    absl::string_view stripped = absl::StripAsciiWhitespace(line);
    if (buffer_.empty()) {
      if (stripped.empty()) return true;
      if (absl::StartsWith(stripped, ".")) return DotCommand(stripped);
      buffer_ = line;
    } else {
      absl::StrAppend(&buffer_, "\n", line);
    }
    absl::StatusOr<ReplyMessage> r = Call(RequestKind::kInteractive, buffer_);
    if (!r.ok()) return false;
    if (r->status == ReplyStatus::kIncomplete) return true;
    completed_ = std::exchange(buffer_, "");
    PrintReply(*r, out_, err_);
    return true;
  }

 private:
  absl::StatusOr<ReplyMessage> Call(RequestKind kind, const std::string& text) {
    bool timed_out = false;
    absl::StatusOr<ReplyMessage> r = CallWithTimeout(
        client_, kind, text, interrupt_fd_, options_, err_, &timed_out);
    if (!r.ok()) {
      err_ << "annex: connection lost: " << r.status() << "\n";
      lost_ = true;
    }
    return r;
  }

  bool DotCommand(absl::string_view line) {
    completed_ = static_cast<std::string>(line);
    absl::string_view arg;
    absl::string_view cmd = line;
    if (size_t space = line.find_first_of(" \t");
        space != absl::string_view::npos) {
      cmd = line.substr(0, space);
      arg = absl::StripAsciiWhitespace(line.substr(space));
    }
    RequestKind kind;
    if (cmd == ".quit" || cmd == ".exit") return false;
    if (cmd == ".help") {
      kind = RequestKind::kHelp;
    } else if (cmd == ".threads") {
      kind = RequestKind::kThreads;
    } else if (cmd == ".stacks") {
      kind = RequestKind::kStacks;
    } else if (cmd == ".interrupt") {
      kind = RequestKind::kInterruptThread;
      if (arg.empty()) {
        err_ << "usage: .interrupt THREAD_ID\n";
        return true;
      }
    } else if (cmd == ".exec-target") {
      kind = RequestKind::kExecTarget;
      if (arg.empty()) {
        err_ << "usage: .exec-target CODE\n";
        return true;
      }
    } else {
      err_ << "unknown command " << cmd << "; try .help\n";
      return true;
    }
    absl::StatusOr<ReplyMessage> r = Call(kind, static_cast<std::string>(arg));
    if (!r.ok()) return false;
    PrintReply(*r, out_, err_);
    if (kind == RequestKind::kHelp) {
      out_ << "  .quit                leave (or Ctrl-D)\n";
    }
    return true;
  }

  Client& client_;
  std::ostream& out_;
  std::ostream& err_;
  int interrupt_fd_;
  const ClientOptions& options_;
  std::string buffer_;
  std::string completed_;
  bool lost_ = false;
};

// ---- libedit front end ------------------------------------------------------

// What libedit's line callback delivers. libedit's callback interface takes
// a plain function, so the loop publishes its state through this pointer
// (a trivially destructible global, set only inside InteractiveLoop).
struct LineState {
  std::optional<std::string> line;
  bool eof = false;
};
LineState* g_line_state = nullptr;

extern "C" void OnLine(char* line) {
  if (g_line_state == nullptr) {
    std::free(line);
    return;
  }
  if (line == nullptr) {
    g_line_state->eof = true;
  } else {
    g_line_state->line = std::string(line);
    std::free(line);
  }
  // Stop reading until the line is handled, so command output never
  // interleaves with a fresh prompt.
  rl_callback_handler_remove();
}

std::string HistoryPath() {
  if (const char* env = std::getenv("ANNEX_HISTORY"); env && *env) return env;
  if (const char* home = std::getenv("HOME"); home && *home) {
    return absl::StrCat(home, "/.annex_history");
  }
  return "";
}

int InteractiveLoop(Client& client, SigintPipe& sigint,
                    const ClientOptions& options) {
  std::string history = HistoryPath();
  rl_catch_signals = 0;  // SIGINT is ours (SigintPipe), not libedit's
  using_history();
  stifle_history(2000);
  if (!history.empty()) read_history(history.c_str());

  Repl repl(client, std::cout, std::cerr, sigint.read_fd(), options);
  LineState state;
  g_line_state = &state;
  bool running = true;
  while (running) {
    state.line.reset();
    state.eof = false;
    rl_callback_handler_install(repl.continuation() ? "... " : ">>> ", OnLine);
    while (!state.line && !state.eof) {
      pollfd p[2] = {{STDIN_FILENO, POLLIN, 0}, {sigint.read_fd(), POLLIN, 0}};
      if (::poll(p, 2, -1) < 0 && errno != EINTR) {
        state.eof = true;
        break;
      }
      if (sigint.Drain()) {
        // Ctrl-C at the prompt: drop the input, like Python's REPL.
        rl_callback_handler_remove();
        std::cout << "\nKeyboardInterrupt\n" << std::flush;
        repl.Discard();
        rl_callback_handler_install(">>> ", OnLine);
        continue;
      }
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) rl_callback_read_char();
    }
    rl_callback_handler_remove();
    if (state.eof) {
      std::cout << "\n";
      break;
    }
    sigint.Drain();  // a Ctrl-C from before this command does not count
    running = repl.Feed(*state.line);
    std::string done = repl.TakeCompleted();
    if (!done.empty()) add_history(done.c_str());
  }
  g_line_state = nullptr;
  if (!history.empty()) {
    // History may hold secrets typed at the prompt: owner-only.
    int fd = ::open(history.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
    write_history(history.c_str());
    ::chmod(history.c_str(), 0600);
  }
  return repl.lost() ? kExitUnavailable : kExitOk;
}

}  // namespace

absl::StatusOr<pid_t> ParsePidArg(absl::string_view arg) {
  int pid = 0;
  if (!absl::SimpleAtoi(arg, &pid) || pid <= 0 ||
      arg.find_first_not_of("0123456789") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a process id: '", arg, "'"));
  }
  return static_cast<pid_t>(pid);
}

int RunPs(std::ostream& out, const ClientOptions& options) {
  std::string dir = options.socket_dir;
  if (dir.empty()) {
    absl::StatusOr<std::string> d = internal::DefaultRuntimeDir();
    if (!d.ok()) return kExitUnavailable;
    dir = *d;
  }
  internal::CleanStaleEndpoints(dir, /*keep_pid=*/-1);
  std::vector<internal::ProcessInfo> procs = internal::ListEndpoints(dir);
  if (procs.empty()) {
    out << "no attachable processes (looked in " << dir << ")\n";
    return kExitOk;
  }
  int64_t now = absl::ToUnixSeconds(absl::Now());
  out << absl::StrFormat("%-8s %-8s %-10s %-10s %s\n", "PID", "UPTIME", "RSS",
                         "PYTHON", "PROGRAM");
  for (const internal::ProcessInfo& p : procs) {
    out << absl::StrFormat(
        "%-8d %-8s %-10s %-10s %s%s\n", p.pid,
        FormatDuration(now - p.start_time), FormatKib(RssKib(p.pid)),
        p.python_version.empty() ? "?" : p.python_version, p.program,
        p.tcp_port != 0 ? absl::StrCat(" [tcp ", p.tcp_port, "]") : "");
  }
  return kExitOk;
}

int RunExec(pid_t pid, const std::string& code_or_dash,
            const ClientOptions& options, bool in_target, std::istream& in,
            std::ostream& out, std::ostream& err) {
  std::string code = code_or_dash;
  if (code_or_dash == "-") {
    code.assign(std::istreambuf_iterator<char>(in),
                std::istreambuf_iterator<char>());
  }
  absl::StatusOr<std::unique_ptr<Client>> client =
      ConnectOrReport(pid, options, err);
  if (!client.ok()) return kExitUnavailable;
  SigintPipe sigint;
  bool timed_out = false;
  absl::StatusOr<ReplyMessage> r = CallWithTimeout(
      **client, in_target ? RequestKind::kExecTarget : RequestKind::kExec, code,
      sigint.read_fd(), options, err, &timed_out);
  if (!r.ok()) {
    err << "annex: " << r.status() << "\n";
    return timed_out ? kExitTimeout : kExitUnavailable;
  }
  PrintReply(*r, out, err);
  return timed_out ? kExitTimeout : ExitCodeFor(*r);
}

int RunStacks(pid_t pid, const ClientOptions& options, std::ostream& out,
              std::ostream& err) {
  absl::StatusOr<std::unique_ptr<Client>> client =
      ConnectOrReport(pid, options, err);
  if (!client.ok()) return kExitUnavailable;
  bool timed_out = false;
  absl::StatusOr<ReplyMessage> r =
      CallWithTimeout(**client, RequestKind::kStacks, "", /*interrupt_fd=*/-1,
                      options, err, &timed_out);
  if (!r.ok()) {
    err << "annex: " << r.status() << "\n";
    return timed_out ? kExitTimeout : kExitUnavailable;
  }
  PrintReply(*r, out, err);
  return timed_out ? kExitTimeout : ExitCodeFor(*r);
}

int RunExec(pid_t pid, const std::string& code_or_dash,
            const ClientOptions& options) {
  return RunExec(pid, code_or_dash, options, /*in_target=*/false, std::cin,
                 std::cout, std::cerr);
}

int RunRecord(pid_t pid, const std::string& path, const RecordOptions& record,
              const ClientOptions& options, std::ostream& err) {
  absl::StatusOr<glue::RecordFormat> format =
      glue::ParseRecordFormat(record.format);
  if (!format.ok()) {
    err << "annex record: " << format.status().message() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<std::unique_ptr<Client>> client =
      ConnectOrReport(pid, options, err);
  if (!client.ok()) return kExitUnavailable;
  const std::string code =
      absl::StrCat("print(hp.record(format='", record.format,
                   "', top=", record.top, "), end='')");
  glue::RecordFile file(path, record.max_bytes);
  SigintPipe sigint;
  int64_t written = 0;
  int rc = kExitOk;
  while (record.count == 0 || written < record.count) {
    if (written > 0) {
      // Wait for the next interval, or Ctrl-C.
      pollfd p = {sigint.read_fd(), POLLIN, 0};
      const int ms = static_cast<int>(
          std::min<int64_t>(absl::ToInt64Milliseconds(record.interval),
                            int64_t{24} * 3600 * 1000));
      if (::poll(&p, 1, ms) > 0 || sigint.Drain()) break;
    }
    bool timed_out = false;
    absl::StatusOr<ReplyMessage> r =
        CallWithTimeout(**client, RequestKind::kExec, code, sigint.read_fd(),
                        options, err, &timed_out);
    if (!r.ok()) {
      err << "annex record: " << r.status() << "\n";
      rc = timed_out ? kExitTimeout : kExitUnavailable;
      break;
    }
    if (r->status == ReplyStatus::kInterrupted) break;  // Ctrl-C
    if (r->status != ReplyStatus::kOk) {
      PrintReply(*r, err, err);
      rc = ExitCodeFor(*r);
      break;
    }
    // Only whole records are written: a stat record pair that parses, or
    // one JSON line.
    bool whole = false;
    if (*format == glue::RecordFormat::kStat) {
      absl::StatusOr<std::vector<glue::Stat>> stats =
          glue::Stat::ParseRecords(r->output);
      whole = stats.ok() && stats->size() == 2;
    } else {
      whole = absl::StartsWith(r->output, "{") &&
              absl::EndsWith(r->output, "}\n") &&
              r->output.find('\n') == r->output.size() - 1;
    }
    if (!whole) {
      err << "annex record: the reply is not one whole record (cut at the "
             "console's reply limit? try a smaller --top); stopping\n";
      rc = kExitTooLong;
      break;
    }
    if (absl::Status s = file.Append(r->output); !s.ok()) {
      err << "annex record: " << s.message() << "\n";
      rc = kExitUnavailable;
      break;
    }
    ++written;
  }
  err << "annex record: " << written << " record" << (written == 1 ? "" : "s")
      << " written to " << path;
  if (file.rotations() > 0) {
    err << " (rotated " << file.rotations() << " time"
        << (file.rotations() == 1 ? "" : "s") << " to " << path << ".1)";
  }
  err << "\n";
  return rc;
}

namespace {

// ---- annex top: the terminal
// --------------------------------------------------

// Write end of the active window-size pipe (SIGWINCH handler).
volatile sig_atomic_t g_winch_write_fd = -1;

extern "C" void OnWinch(int) {
  int saved = errno;
  int fd = g_winch_write_fd;
  if (fd >= 0) (void)!::write(fd, "w", 1);
  errno = saved;
}

// For `annex top` on a terminal, for the scope: keys without Enter and
// without echo (stdin, when it is a terminal), the alternate screen and no
// cursor (stdout), and SIGWINCH as bytes on a pipe. Everything is restored
// at the end, also when the connection fails.
class TopTerminal {
 public:
  explicit TopTerminal(bool keys) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
      winch_read_.Reset(fds[0]);
      winch_write_.Reset(fds[1]);
      g_winch_write_fd = winch_write_.get();
      struct sigaction sa {};
      sa.sa_handler = OnWinch;
      sigemptyset(&sa.sa_mask);
      winch_installed_ = ::sigaction(SIGWINCH, &sa, &previous_winch_) == 0;
    }
    if (keys && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      struct termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      keys_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    Write("\x1b[?1049h\x1b[?25l");  // alternate screen, no cursor
  }
  ~TopTerminal() {
    Write("\x1b[?25h\x1b[?1049l");
    if (keys_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    if (winch_installed_) ::sigaction(SIGWINCH, &previous_winch_, nullptr);
    g_winch_write_fd = -1;
  }
  TopTerminal(const TopTerminal&) = delete;
  TopTerminal& operator=(const TopTerminal&) = delete;

  bool keys() const { return keys_; }
  int winch_fd() const { return winch_read_.get(); }
  bool DrainWinch() {
    char buf[64];
    bool any = false;
    while (winch_read_.valid() &&
           ::read(winch_read_.get(), buf, sizeof(buf)) > 0) {
      any = true;
    }
    return any;
  }
  // The terminal's rows and columns (24x80 when it does not say).
  static std::pair<int, int> Size() {
    struct winsize ws {};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 &&
        ws.ws_col > 0) {
      return {ws.ws_row, ws.ws_col};
    }
    return {24, 80};
  }
  static void Write(absl::string_view text) {
    while (!text.empty()) {
      ssize_t n = ::write(STDOUT_FILENO, text.data(), text.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      text.remove_prefix(static_cast<size_t>(n));
    }
  }

 private:
  internal::UniqueFd winch_read_, winch_write_;
  struct sigaction previous_winch_ {};
  bool winch_installed_ = false;
  struct termios saved_ {};
  bool keys_ = false;
};

int64_t FieldInt(const glue::Stat& s, absl::string_view name) {
  for (const auto& [k, v] : s.fields) {
    int64_t n = 0;
    if (k == name && absl::SimpleAtoi(v, &n)) return n;
  }
  return -1;
}

std::string FieldText(const glue::Stat& s, absl::string_view name) {
  for (const auto& [k, v] : s.fields) {
    if (k == name) return v;
  }
  return "";
}

}  // namespace

int RunTop(pid_t pid, const TopOptions& top, const ClientOptions& options) {
  absl::StatusOr<std::unique_ptr<Client>> client =
      ConnectOrReport(pid, options, std::cerr);
  if (!client.ok()) return kExitUnavailable;
  const std::string code = absl::StrCat(
      "print(hp.record(format='stat', top=", top.kinds, "), end='')");
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  std::optional<TopTerminal> terminal;
  if (tty) terminal.emplace(::isatty(STDIN_FILENO) == 1);
  SigintPipe sigint;
  TopFrame frame;
  frame.pid = pid;
  frame.interval_s = absl::ToDoubleSeconds(top.interval);
  frame.by_growth = top.by_growth;
  frame.keys = terminal && terminal->keys();
  frame.max_rows = top.rows;
  int64_t first_us = 0;
  int64_t frames = 0;
  std::string failure;  // printed after the terminal is restored
  int rc = kExitOk;
  auto draw = [&] {
    if (!terminal) {
      TopTerminal::Write(
          absl::StrCat(frames > 1 ? "\n" : "", RenderTop(frame)));
      return;
    }
    std::tie(frame.rows, frame.columns) = TopTerminal::Size();
    std::string screen = "\x1b[H";
    const std::string text = RenderTop(frame);  // lines ending with '\n'
    for (absl::string_view line : absl::StrSplit(
             absl::string_view(text).substr(0, text.size() - 1), '\n')) {
      absl::StrAppend(&screen, line, "\x1b[K\n");  // ONLCR adds \r
    }
    screen += "\x1b[J";
    TopTerminal::Write(screen);
  };
  bool quit = false;
  while (!quit) {
    const absl::Time asked = absl::Now();
    bool timed_out = false;
    absl::StatusOr<ReplyMessage> r =
        CallWithTimeout(**client, RequestKind::kExec, code, sigint.read_fd(),
                        options, std::cerr, &timed_out);
    if (!r.ok()) {
      failure = absl::StrCat("annex top: ", r.status().ToString(), "\n");
      rc = timed_out ? kExitTimeout : kExitUnavailable;
      break;
    }
    if (r->status == ReplyStatus::kInterrupted) break;  // Ctrl-C
    if (r->status != ReplyStatus::kOk) {
      failure = absl::StrCat(r->output, r->error);
      rc = ExitCodeFor(*r);
      break;
    }
    absl::StatusOr<std::vector<glue::Stat>> stats =
        glue::Stat::ParseRecords(r->output);
    if (!stats.ok() || stats->empty() || (*stats)[0].er != "Clodo") {
      failure =
          "annex top: the reply is not one whole heap record (cut at the "
          "console's reply limit? try a smaller --kinds)\n";
      rc = kExitTooLong;
      break;
    }
    glue::Stat& now = (*stats)[0];
    ++frames;
    if (frames == 1) {
      frame.first = now;
      first_us = now.time_made_us;
      frame.program = FieldText(now, "program");
      frame.python = FieldText(now, "python");
    }
    frame.frame = frames;
    frame.since_start_s = (now.time_made_us - first_us) / 1e6;
    frame.rss_bytes = FieldInt(now, "rss");
    frame.pause_us = FieldInt(now, "pause_us");
    frame.now = std::move(now);
    draw();
    if (top.count > 0 && frames >= top.count) break;
    // Until the next interval: keys, a new window size, or Ctrl-C.
    const absl::Time next = asked + top.interval;
    while (!quit) {
      const absl::Duration left = next - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      pollfd p[3] = {{sigint.read_fd(), POLLIN, 0},
                     {terminal ? terminal->winch_fd() : -1, POLLIN, 0},
                     {frame.keys ? STDIN_FILENO : -1, POLLIN, 0}};
      const int ms = static_cast<int>(std::min<int64_t>(
          absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))),
          int64_t{24} * 3600 * 1000));
      if (::poll(p, 3, ms) < 0 && errno != EINTR) break;
      if (sigint.Drain()) quit = true;
      if (terminal && terminal->DrainWinch()) draw();
      if (frame.keys && (p[2].revents & (POLLIN | POLLHUP))) {
        char keys[64];
        const ssize_t n = ::read(STDIN_FILENO, keys, sizeof(keys));
        if (n <= 0) frame.keys = false;  // end of input: no more keys
        for (ssize_t i = 0; i < n; ++i) {
          if (keys[i] == 'q' || keys[i] == 'Q') quit = true;
          if (keys[i] == 'g' || keys[i] == 'G') {
            frame.by_growth = !frame.by_growth;
            draw();
          }
        }
      }
    }
  }
  terminal.reset();
  if (!failure.empty()) {
    std::cerr << failure;
    if (failure.back() != '\n') std::cerr << "\n";
  }
  return rc;
}

int RunAttachScript(pid_t pid, const ClientOptions& options, std::istream& in,
                    std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::unique_ptr<Client>> client =
      ConnectOrReport(pid, options, err);
  if (!client.ok()) return kExitUnavailable;
  Repl repl(**client, out, err, /*interrupt_fd=*/-1, options);
  std::string line;
  bool running = true;
  while (running && std::getline(in, line)) running = repl.Feed(line);
  // Close a block left open at end of input, as Python does.
  if (running && repl.continuation()) repl.Feed("");
  return repl.lost() ? kExitUnavailable : kExitOk;
}

int RunAttach(pid_t pid, const ClientOptions& options) {
  if (!::isatty(STDIN_FILENO)) {
    return RunAttachScript(pid, options, std::cin, std::cout, std::cerr);
  }
  absl::StatusOr<std::unique_ptr<Client>> client =
      ConnectOrReport(pid, options, std::cerr);
  if (!client.ok()) return kExitUnavailable;
  const WelcomeMessage& w = (*client)->welcome();
  std::cout << "Annex console: pid " << pid << " (" << w.program << "), Python "
            << w.python_version << ", client " << w.client_id << ".\n"
            << ".help for commands, Ctrl-C interrupts, Ctrl-D leaves.\n";
  SigintPipe sigint;
  return InteractiveLoop(**client, sigint, options);
}

}  // namespace annex::console
