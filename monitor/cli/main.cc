// The `annex` command: host a Python program with the monitor on, and talk
// to running monitors (ps, attach, exec).
//
//   annex run app.py arg...      like `python3 app.py arg...`, monitored
//   annex run -m pkg.mod arg...  / annex run -c 'code' arg...
//   annex ps                     attachable processes of this user
//   annex attach PID             interactive console in PID's annex
//   annex exec PID 'code' | -    run code in PID's annex, print its output
//   annex stacks PID             the Python stacks of PID's threads
//   annex record PID FILE        heap records of PID, appended to FILE
//   annex top PID                PID's heap by kind and its growth, live
//   annex report FILE... -o OUT  memory over time as one HTML page
#include <Python.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "annex_python_build.h"
#include "glue/heap_record.h"
#include "monitor/cli/report.h"
#include "monitor/cli/run_flags.h"
#include "monitor/console/cli.h"
#include "monitor/monitor.h"

namespace {

constexpr char kUsage[] = R"(usage: annex <command> [options] [args]

Annex watches a Python program's heap, threads and stacks from a second
interpreter in the same process.

commands:
  run [options] (script.py | -m module | -c code | -) [args...]
                     run a Python program like python3, with the monitor on
  ps                 list the processes of this user that can be attached
  attach PID         interactive console in the annex of process PID
  exec PID CODE      run CODE (or '-' for stdin) in PID's annex and print
                     its output; exit status 1 when it raised
  stacks PID         the Python stack of every thread of PID, answered
                     within a second even while a thread keeps the GIL
  record PID FILE    append a heap record of PID to FILE every interval
                     ('annex record --help'; docs/recording.md)
  top PID            the heap of PID by kind and its growth, refreshed
                     like top ('annex top --help')
  report FILE... -o OUT.html
                     memory over time from recorded files, as one
                     self-contained HTML page (growth between any two
                     records chosen in the page)
  help               show this help

attach, exec, stacks, record and top take --timeout SECONDS (before PID): a
command with no reply by then is interrupted (default: none; 10 s for
stacks).

exit status of attach/exec/stacks: 0 ok; 1 the code raised (SystemExit(n):
n); 2 usage; 3 no such process / cannot connect / connection lost;
4 refused by the server; 5 reply over the size limit (cut, with a note);
124 no reply within --timeout; 130 interrupted (Ctrl-C).

Run 'annex run --help' for the options of run.
)";

constexpr char kRunUsageHead[] =
    R"(usage: annex run [options] (script.py | -m module | -c code | -) [args...]

Runs a Python program in this process's interpreter (Python %s), exactly as
'python%s' would: same sys.argv, __main__, tracebacks and exit status. The
Annex monitor runs beside it; attach with 'annex attach <pid>'. An active
venv ($VIRTUAL_ENV) is honoured as python3 honours it: its prefix and
site-packages are the program's.

options:
  --python PATH         use the prefix and site-packages of this interpreter
                        (e.g. a venv's bin/python) instead of $VIRTUAL_ENV's
                        or the build's; it must be Python %s
)";
// After kRunUsageHead and the shared options (run_flags.h).
constexpr char kRunUsageTail[] =
    "Python's own options (-u, -X, -W, ...) may precede the script.\n";

// The console's files, removed by the SIGTERM handler (fixed buffers: a
// signal handler may not allocate).
char g_endpoint_files[3][4096];
// The process whose files they are: a child made by fork() (e.g. a
// multiprocessing worker, which its pool ends with SIGTERM) inherits the
// handler but must not remove its parent's socket.
volatile pid_t g_endpoint_owner = 0;

extern "C" void OnSigterm(int sig) {
  if (::getpid() == g_endpoint_owner) {
    for (const char* path : g_endpoint_files) {
      if (path[0] != '\0') ::unlink(path);
    }
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// A SIGTERM kills the process without Python's atexit (default action), so
// the monitor cannot remove its socket: this does, then dies of the signal
// as before. A program that installs its own SIGTERM handler replaces this
// one and exits through the usual path, which stops the monitor.
void CleanUpOnSigterm(const std::string& socket_path) {
  const std::string suffix = ".sock";
  if (socket_path.size() <= suffix.size() ||
      socket_path.size() >= sizeof(g_endpoint_files[0]) ||
      socket_path.compare(socket_path.size() - suffix.size(), suffix.size(),
                          suffix) != 0) {
    return;
  }
  const std::string base = socket_path.substr(0, socket_path.size() - 5);
  const std::string files[3] = {socket_path, base + ".info", base + ".token"};
  for (int i = 0; i < 3; ++i) {
    std::snprintf(g_endpoint_files[i], sizeof(g_endpoint_files[i]), "%s",
                  files[i].c_str());
  }
  g_endpoint_owner = ::getpid();
  struct sigaction sa {};
  sa.sa_handler = OnSigterm;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
}

// The options of one subcommand (`annex record`, `annex top`), as a table:
// each entry names an option and how its value is read and kept. Parse
// walks the arguments once; a bad value prints "annex CMD: FLAG needs ..."
// and an unknown option the command's usage, both with exit status 2.
// Where: main thread, before any Python.
class OptionTable {
 public:
  OptionTable(const char* cmd, const char* usage) : cmd_(cmd), usage_(usage) {}

  // An option without a value.
  void Flag(const char* name, bool* out) {
    options_.push_back({name, false, [out](const char*) {
                          *out = true;
                          return true;
                        }});
  }
  // Seconds, more than 0 and at most a day.
  void Seconds(const char* name, absl::Duration* out) {
    const std::string flag = name;
    const char* cmd = cmd_;
    options_.push_back(
        {name, true, [=](const char* value) {
           char* end = nullptr;
           double seconds = std::strtod(value, &end);
           if (*end != '\0' || !(seconds > 0) || seconds > 86400) {
             std::fprintf(stderr, "annex %s: %s needs seconds > 0\n", cmd,
                          flag.c_str());
             return false;
           }
           *out = absl::Seconds(seconds);
           return true;
         }});
  }
  // A whole number >= 1, and <= `max` unless it is 0.
  void Count(const char* name, long long max,
             const std::function<void(long long)>& set) {
    const std::string flag = name;
    const char* cmd = cmd_;
    options_.push_back(
        {name, true, [=](const char* value) {
           char* end = nullptr;
           long long n = std::strtoll(value, &end, 10);
           if (*end == '\0' && n >= 1 && (max == 0 || n <= max)) {
             set(n);
             return true;
           }
           if (max > 0) {
             std::fprintf(stderr,
                          "annex %s: %s needs a number from 1 to %lld\n", cmd,
                          flag.c_str(), max);
           } else {
             std::fprintf(stderr, "annex %s: %s needs a number >= 1\n", cmd,
                          flag.c_str());
           }
           return false;
         }});
  }
  // Any other value: `read` reports a bad one itself and returns false.
  void Value(const char* name, std::function<bool(const char*)> read) {
    options_.push_back({name, true, std::move(read)});
  }

  // Reads argv; the arguments that are not options go to `positional`.
  // Returns -1 to go on, or the exit status: 0 after -h/--help (the usage
  // printed), 2 after a usage error (printed).
  int Parse(int argc, char** argv, std::vector<std::string>* positional) const {
    for (int i = 0; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        std::fputs(usage_, stdout);
        return 0;
      }
      const Option* option = nullptr;
      for (const Option& o : options_) {
        if (a == o.name) option = &o;
      }
      if (option != nullptr && (!option->takes_value || i + 1 < argc)) {
        if (!option->read(option->takes_value ? argv[++i] : nullptr)) {
          return 2;
        }
      } else if (a.size() > 1 && a[0] == '-') {
        std::fprintf(stderr,
                     "annex %s: unknown option or missing value: %s\n%s", cmd_,
                     a.c_str(), usage_);
        return 2;
      } else {
        positional->push_back(a);
      }
    }
    return -1;
  }

 private:
  struct Option {
    std::string name;
    bool takes_value;
    std::function<bool(const char*)> read;
  };
  const char* cmd_;
  const char* usage_;
  std::vector<Option> options_;
};

// The PID argument of `annex CMD`; prints why and returns an error status.
absl::StatusOr<pid_t> ParsePidOption(const char* cmd, const std::string& arg) {
  auto pid = annex::console::ParsePidArg(arg);
  if (!pid.ok()) {
    std::fprintf(stderr, "annex %s: %s\n", cmd,
                 std::string{pid.status().message()}.c_str());
  }
  return pid;
}

constexpr char kRecordUsage[] =
    R"(usage: annex record [options] PID FILE

Asks the annex of process PID for one heap record per interval (one walk of
its heap each: the partition by Clodo and by type, totals, the walk's pause,
RSS and labels) and appends it to FILE. Ctrl-C ends the recording; the
records written stay. See docs/recording.md.

options:
  --interval SECONDS   time between records (default 10)
  --count N            stop after N records (default: until Ctrl-C)
  --format stat|jsonl  Heapy stat records, read by hp.loadall() (default),
                       or JSON lines
  --max-bytes N        rename FILE to FILE.1 past N bytes (K, M, G
                       suffixes; default 64M)
  --top N              rows kept per partition, the rest folded (default 20)
  --timeout SECONDS    a record not answered by then is interrupted
)";

int RecordCommand(int argc, char** argv) {
  annex::console::RecordOptions record;
  annex::console::ClientOptions client;
  OptionTable table("record", kRecordUsage);
  table.Seconds("--interval", &record.interval);
  table.Seconds("--timeout", &client.command_timeout);
  table.Count("--count", 0, [&](long long n) { record.count = n; });
  table.Count("--top", 100000, [&](long long n) { record.top = n; });
  table.Value("--format", [&](const char* value) {
    record.format = value;
    if (annex::glue::ParseRecordFormat(record.format).ok()) return true;
    std::fputs("annex record: --format is stat or jsonl\n", stderr);
    return false;
  });
  table.Value("--max-bytes", [&](const char* value) {
    absl::StatusOr<uint64_t> n = annex::cli::ParseSize(value);
    if (n.ok()) {
      record.max_bytes = *n;
      return true;
    }
    std::fprintf(stderr, "annex record: --max-bytes: %s\n",
                 std::string{n.status().message()}.c_str());
    return false;
  });
  std::vector<std::string> positional;
  if (int rc = table.Parse(argc, argv, &positional); rc >= 0) return rc;
  if (positional.size() != 2) {
    std::fputs(kRecordUsage, stderr);
    return 2;
  }
  auto pid = ParsePidOption("record", positional[0]);
  if (!pid.ok()) return 2;
  return annex::console::RunRecord(*pid, positional[1], record, client,
                                   std::cerr);
}

constexpr char kTopUsage[] =
    R"(usage: annex top [options] PID

A terminal view of the heap of process PID, refreshed every interval like
top: the partition by Clodo (count and bytes per kind) and each kind's
growth since the first record ('+' columns), with the objects, heap bytes,
RSS and the walk's pause. Each refresh is one heap record, the request
'annex record' makes (one walk; the program waits for it). Keys: q quits,
g orders the kinds by growth or by size; Ctrl-C quits. When stdout is not
a terminal, one frame is printed per interval.

options:
  --interval SECONDS   time between records (default 2)
  --count N            stop after N frames (default: until q or Ctrl-C)
  --growth             start with the kinds ordered by growth
  --rows N             kinds per frame when stdout is not a terminal
                       (default 20; a terminal shows as many as fit)
  --kinds N            kinds kept per record, the rest folded into <Other>
                       (default 200)
  --timeout SECONDS    a record not answered by then is interrupted
)";

int TopCommand(int argc, char** argv) {
  annex::console::TopOptions top;
  annex::console::ClientOptions client;
  OptionTable table("top", kTopUsage);
  table.Flag("--growth", &top.by_growth);
  table.Seconds("--interval", &top.interval);
  table.Seconds("--timeout", &client.command_timeout);
  table.Count("--count", 0, [&](long long n) { top.count = n; });
  table.Count("--kinds", 100000, [&](long long n) { top.kinds = n; });
  table.Count("--rows", 100000,
              [&](long long n) { top.rows = static_cast<int>(n); });
  std::vector<std::string> positional;
  if (int rc = table.Parse(argc, argv, &positional); rc >= 0) return rc;
  if (positional.size() != 1) {
    std::fputs(kTopUsage, stderr);
    return 2;
  }
  auto pid = ParsePidOption("top", positional[0]);
  if (!pid.ok()) return 2;
  return annex::console::RunTop(*pid, top, client);
}

// "3.11" for the interpreter at `path`, asked by running it (it may be a
// venv's, whose pyvenv.cfg it reads itself).
absl::StatusOr<std::string> InterpreterVersion(const std::string& path) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) dup2(devnull, 0);
    const char* argv[] = {path.c_str(), "-I", "-c",
                          "import sys; print('%d.%d' % sys.version_info[:2])",
                          nullptr};
    execv(path.c_str(), const_cast<char**>(argv));
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[64];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) text.append(buf, n);
  close(out[0]);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " did not run as a Python interpreter"));
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.pop_back();
  }
  return text;
}

// The interpreter `annex run` presents itself as, like `python3` would be
// found: --python PATH, else an active venv's bin/python ($VIRTUAL_ENV),
// else the build's own. Another version than the build's is refused (its
// standard library and site-packages do not fit this libpython).
absl::StatusOr<std::string> ChooseInterpreter(const std::string& python) {
  std::string path = python;
  std::string why = "--python";
  if (path.empty()) {
    const char* venv = std::getenv("VIRTUAL_ENV");
    if (venv == nullptr || venv[0] == '\0') return ANNEX_PYTHON_EXECUTABLE;
    why = absl::StrCat("the active venv (VIRTUAL_ENV=", venv, ")");
    path = absl::StrCat(venv, "/bin/python");
    if (access(path.c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          why, " has no bin/python; deactivate it or pass --python PATH"));
    }
  }
  if (path.find('/') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--python needs a path to an interpreter, not '", path, "'"));
  }
  if (path[0] != '/') {  // absolute, as python3 makes sys.executable
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == nullptr) {
      return absl::InternalError("getcwd failed");
    }
    path = absl::StrCat(cwd, "/", path);
  }
  if (access(path.c_str(), X_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(why, ": no executable interpreter at ", path));
  }
  absl::StatusOr<std::string> version = InterpreterVersion(path);
  if (!version.ok()) return version.status();
  if (*version != ANNEX_PYTHON_VERSION) {
    return absl::FailedPreconditionError(absl::StrCat(
        why, ": ", path, " is Python ", *version,
        ", but this annex is built for Python ", ANNEX_PYTHON_VERSION,
        " (install Annex for ", *version, " and run annex-py", *version, ")"));
  }
  return path;
}

int RunCommand(int argc, char** argv) {
  absl::StatusOr<annex::cli::RunFlags> flags =
      annex::cli::ParseRunFlags(std::vector<std::string>(argv, argv + argc));
  if (!flags.ok()) {
    std::fprintf(stderr, "annex run: %s\n",
                 std::string{flags.status().message()}.c_str());
    return 2;
  }
  if (flags->help) {
    std::printf(kRunUsageHead, ANNEX_PYTHON_VERSION, ANNEX_PYTHON_VERSION,
                ANNEX_PYTHON_VERSION);
    std::fputs(annex::cli::kRunOptionsHelp, stdout);
    std::fputs(kRunUsageTail, stdout);
    return 0;
  }
  annex::Options& options = flags->options;
  const std::string& python = flags->python;
  int i = static_cast<int>(flags->program);
  // The interpreter whose prefix and site-packages the program gets.
  absl::StatusOr<std::string> program = ChooseInterpreter(python);
  if (!program.ok()) {
    std::fprintf(stderr, "annex run: %s\n",
                 std::string{program.status().message()}.c_str());
    return 2;
  }
  // Python parses the rest exactly as `python3 ARGS...` would.
  std::vector<std::string> python_args = {*program};
  for (; i < argc; ++i) python_args.push_back(argv[i]);
  std::string shown;
  for (size_t k = 1; k < python_args.size(); ++k) {
    shown += (k > 1 ? " " : "") + python_args[k];
  }
  options.program_name = shown.empty() ? "python (interactive)" : shown;

  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  // The build's interpreter (or the venv's, or --python's) as program
  // name, so the matching standard library, sys.executable and a venv's
  // pyvenv.cfg are found as that interpreter finds them (never the python3
  // on PATH).
  PyStatus status =
      PyConfig_SetBytesString(&config, &config.program_name, program->c_str());
  std::vector<char*> cargs;
  cargs.reserve(python_args.size());
  for (auto& s : python_args) cargs.push_back(s.data());
  if (!PyStatus_Exception(status)) {
    status = PyConfig_SetBytesArgv(
        &config, static_cast<Py_ssize_t>(cargs.size()), cargs.data());
  }
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    if (PyStatus_IsExit(status)) return status.exitcode;  // e.g. --version
    Py_ExitStatusException(status);
  }
  annex::Monitor monitor;
  if (absl::Status s = monitor.Start(options); !s.ok()) {
    std::fprintf(stderr, "annex: monitor not started: %s\n",
                 std::string{s.message()}.c_str());
  } else {
    if (options.watchdog_options.metrics_port >= 0) {
      const std::string& address = options.watchdog_options.metrics_address;
      const bool v6 = address.find(':') != std::string::npos;
      absl::Duration walks = options.watchdog_heap_interval;
      if (walks == absl::ZeroDuration()) {
        walks = annex::kDefaultMetricsHeapInterval;
      }
      std::fprintf(
          stderr, "annex: metrics at http://%s%s%s:%d/metrics (%s)\n",
          v6 ? "[" : "", address.c_str(), v6 ? "]" : "", monitor.metrics_port(),
          walks == absl::InfiniteDuration()
              ? "no heap walks: no object figures"
              : absl::StrCat("a heap walk every ", absl::FormatDuration(walks),
                             ", pausing the program: "
                             "annex_heap_walk_pause_seconds")
                    .c_str());
    }
  }
  if (monitor.running() && !monitor.console_socket_path().empty()) {
    CleanUpOnSigterm(monitor.console_socket_path());
  }
  if (std::getenv("ANNEX_VERBOSE") != nullptr && monitor.running()) {
    std::fprintf(stderr, "annex: monitoring pid %d; console at %s\n",
                 static_cast<int>(getpid()),
                 monitor.console_socket_path().c_str());
  }
  // Runs the program and finalizes Python; the monitor's atexit callback
  // stops it first, after the program's own atexit callbacks.
  int rc = Py_RunMain();
  monitor.Stop().IgnoreError();  // already stopped: harmless
  return rc;
}

// Parses `[--timeout SECONDS] PID`, leaving argv at PID.
int PidCommand(const char* name, int argc, char** argv,
               annex::console::ClientOptions& options,
               const std::function<int(pid_t)>& run) {
  if (argc >= 1 && std::strcmp(argv[0], "--timeout") == 0) {
    char* end = nullptr;
    double seconds = argc >= 2 ? std::strtod(argv[1], &end) : 0;
    if (argc < 2 || *end != '\0' || !(seconds > 0) || seconds > 1e6) {
      std::fprintf(stderr, "annex %s: --timeout needs seconds > 0\n", name);
      return 2;
    }
    options.command_timeout = absl::Seconds(seconds);
    argc -= 2;
    argv += 2;
  }
  if (argc < 1 || std::strcmp(argv[0], "-h") == 0 ||
      std::strcmp(argv[0], "--help") == 0) {
    std::fprintf(argc < 1 ? stderr : stdout,
                 "usage: annex %s [--timeout SECONDS] PID%s\n", name,
                 std::strcmp(name, "exec") == 0 ? " (CODE | -)" : "");
    return argc < 1 ? 2 : 0;
  }
  if (std::strcmp(name, "exec") == 0 &&
      !(argc == 2 || (argc == 1 && argv[0][0] == '-'))) {
    std::fputs("usage: annex exec [--timeout SECONDS] PID (CODE | -)\n",
               stderr);
    return 2;
  }
  if (std::strcmp(name, "exec") != 0 && argc != 1) {
    std::fprintf(stderr, "usage: annex %s [--timeout SECONDS] PID\n", name);
    return 2;
  }
  auto pid = annex::console::ParsePidArg(argv[0]);
  if (!pid.ok()) {
    std::fprintf(stderr, "annex %s: %s\n", name,
                 std::string{pid.status().message()}.c_str());
    return 2;
  }
  return run(*pid);
}

}  // namespace

int main(int argc, char** argv) {
  // `bazel run //monitor/cli:annex -- run app.py`: relative paths are the
  // caller's, not the runfiles directory Bazel starts us in.
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
      wd != nullptr && wd[0] != '\0' && chdir(wd) != 0) {
    std::fprintf(stderr, "annex: cannot enter %s\n", wd);
    return 2;
  }
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "--version") {
    std::printf("annex (Python %s)\n", ANNEX_PYTHON_VERSION);
    return 0;
  }
  if (command == "run") return RunCommand(argc - 2, argv + 2);
  if (command == "ps") return annex::console::RunPs(std::cout);
  annex::console::ClientOptions client;
  if (command == "attach") {
    return PidCommand("attach", argc - 2, argv + 2, client, [&](pid_t pid) {
      return annex::console::RunAttach(pid, client);
    });
  }
  if (command == "exec") {
    return PidCommand("exec", argc - 2, argv + 2, client, [&](pid_t pid) {
      // CODE is the last argument (PidCommand checked the count).
      return annex::console::RunExec(pid, argv[argc - 1], client);
    });
  }
  if (command == "record") return RecordCommand(argc - 2, argv + 2);
  if (command == "top") return TopCommand(argc - 2, argv + 2);
  if (command == "report") return annex::cli::RunReport(argc - 2, argv + 2);
  if (command == "stacks") {
    client.command_timeout = absl::Seconds(10);
    return PidCommand("stacks", argc - 2, argv + 2, client, [&](pid_t pid) {
      return annex::console::RunStacks(pid, client, std::cout, std::cerr);
    });
  }
  std::fprintf(stderr, "annex: unknown command '%s'\n\n%s", command.c_str(),
               kUsage);
  return 2;
}
