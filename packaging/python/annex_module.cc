// The `annex` Python module's C part (_annex): annex::Monitor for a plain
// python3 process, so that `import annex; annex.start(console=True)` makes
// it attachable (`annex attach PID`). annex/__init__.py wraps it.
//
// Built against the same Python as the rest of Annex (one module per
// version, installed with that version's extension suffix); linked without
// libpython (the interpreter that imports it provides the C API, and
// Debian's python3.11 has libpython linked into its executable).
#include <Python.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "glue/heap_record.h"
#include "monitor/cli/run_flags.h"
#include "monitor/monitor.h"

namespace {

// The process's one monitor, never destroyed: it stops itself at Python's
// finalization (atexit), and a static destructor would run after that.
// Where: main interpreter, GIL held (every function below).
annex::Monitor* g_monitor = nullptr;

// True when called from the main interpreter; otherwise sets RuntimeError
// (the annex's own interpreter, or a sub-interpreter, must not start or
// stop the process's monitor).
bool InMainInterpreter(const char* what) {
  if (PyInterpreterState_Get() == PyInterpreterState_Main()) return true;
  PyErr_Format(PyExc_RuntimeError,
               "annex.%s() works only in the main interpreter", what);
  return false;
}

PyObject* RaiseStatus(const absl::Status& s) {
  PyObject* type = PyExc_RuntimeError;
  if (absl::IsInvalidArgument(s)) type = PyExc_ValueError;
  if (absl::IsDeadlineExceeded(s)) type = PyExc_TimeoutError;
  PyErr_SetString(type, std::string{s.message()}.c_str());
  return nullptr;
}

// Seconds (a positive real, at most a day) from `obj`, or -1 with an error.
double Seconds(PyObject* obj, const char* name) {
  double v = PyFloat_AsDouble(obj);
  if (v == -1.0 && PyErr_Occurred()) return -1;
  if (!(v > 0) || v > 86400) {
    PyErr_Format(PyExc_ValueError, "%s must be seconds > 0 (at most a day)",
                 name);
    return -1;
  }
  return v;
}

// Starts the process's monitor with `options`; None, or NULL with
// RuntimeError when it runs already or cannot start.
PyObject* StartMonitor(const annex::Options& options) {
  if (g_monitor == nullptr) g_monitor = new annex::Monitor();
  if (g_monitor->running()) {
    PyErr_SetString(PyExc_RuntimeError, "annex is already started");
    return nullptr;
  }
  if (absl::Status s = g_monitor->Start(options); !s.ok()) {
    return RaiseStatus(s);
  }
  Py_RETURN_NONE;
}

PyObject* Start(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"console",
                                 "watchdog",
                                 "metrics_port",
                                 "console_dir",
                                 "tcp_port",
                                 "allow_exec_target",
                                 "heap_interval",
                                 "program_name",
                                 "metrics_address",
                                 "record",
                                 "record_interval",
                                 "record_format",
                                 "record_max_bytes",
                                 "record_top",
                                 "record_retainers",
                                 "on_stall",
                                 "watchdog_report",
                                 "report_blocked_main",
                                 "report_busy_workers",
                                 nullptr};
  int console = 1, allow_exec_target = 0;
  PyObject* watchdog = Py_None;
  PyObject* metrics_port = Py_None;
  PyObject* tcp_port = Py_None;
  PyObject* heap_interval = Py_None;
  const char* console_dir = nullptr;
  const char* program_name = nullptr;
  const char* metrics_address = nullptr;
  PyObject* record = Py_None;
  PyObject* record_interval = Py_None;
  const char* record_format = nullptr;
  PyObject* record_max_bytes = Py_None;
  PyObject* record_top = Py_None;
  int record_retainers = 0;
  const char* on_stall = nullptr;
  PyObject* watchdog_report = Py_None;
  int report_blocked_main = 0, report_busy_workers = 0;
  if (!PyArg_ParseTupleAndKeywords(
          args, kwargs, "|$pOOzOpOzzOOzOOpzOpp:start",
          const_cast<char**>(kwlist), &console, &watchdog, &metrics_port,
          &console_dir, &tcp_port, &allow_exec_target, &heap_interval,
          &program_name, &metrics_address, &record, &record_interval,
          &record_format, &record_max_bytes, &record_top, &record_retainers,
          &on_stall, &watchdog_report, &report_blocked_main,
          &report_busy_workers)) {
    return nullptr;
  }
  if (!InMainInterpreter("start")) return nullptr;
  annex::Options options;
  // Heap recording, as `annex run --record FILE --record-interval ...`
  // (docs/recording.md): record is a path (str or os.PathLike).
  if (record != Py_None) {
    PyObject* path = nullptr;
    if (!PyUnicode_FSConverter(record, &path)) return nullptr;
    options.record_path = PyBytes_AS_STRING(path);
    Py_DECREF(path);
    if (options.record_path.empty()) {
      PyErr_SetString(PyExc_ValueError, "record must be a file path");
      return nullptr;
    }
  }
  if (record_interval != Py_None) {
    double s = Seconds(record_interval, "record_interval");
    if (s < 0) return nullptr;
    options.record_interval = absl::Seconds(s);
  }
  if (record_format != nullptr) {
    if (!annex::glue::ParseRecordFormat(record_format).ok()) {
      PyErr_SetString(PyExc_ValueError, "record_format is 'stat' or 'jsonl'");
      return nullptr;
    }
    options.record_format = record_format;
  }
  if (record_max_bytes != Py_None) {
    long long n = PyLong_AsLongLong(record_max_bytes);
    if (n == -1 && PyErr_Occurred()) return nullptr;
    if (n < 4096 || n > 1000000000000000LL) {
      PyErr_SetString(PyExc_ValueError,
                      "record_max_bytes must be 4096 bytes to 1 PB");
      return nullptr;
    }
    options.record_max_bytes = static_cast<uint64_t>(n);
  }
  if (record_top != Py_None) {
    long n = PyLong_AsLong(record_top);
    if (n == -1 && PyErr_Occurred()) return nullptr;
    if (n < 1 || n > 100000) {
      PyErr_SetString(PyExc_ValueError, "record_top must be 1 to 100000");
      return nullptr;
    }
    options.record_top_kinds = static_cast<size_t>(n);
  }
  options.record_retainers = record_retainers != 0;
  if (options.record_path.empty() &&
      (record_interval != Py_None || record_format != nullptr ||
       record_max_bytes != Py_None || record_top != Py_None ||
       record_retainers != 0)) {
    PyErr_SetString(PyExc_ValueError,
                    "record_interval, record_format, record_max_bytes, "
                    "record_top and record_retainers need record=PATH");
    return nullptr;
  }
  options.console = console != 0;
  options.allow_exec_target = allow_exec_target != 0;
  if (console_dir != nullptr) options.console_socket_dir = console_dir;
  if (program_name != nullptr) options.program_name = program_name;
  // watchdog: None/False off, True the default stall timeout (5 s), a
  // number of seconds the stall timeout; reports go to stderr.
  if (watchdog != Py_None && watchdog != Py_False) {
    options.watchdog = true;
    options.watchdog_options.report_fd = 2;
    if (watchdog != Py_True) {
      double s = Seconds(watchdog, "watchdog");
      if (s < 0) return nullptr;
      options.watchdog_options.stall_timeout = absl::Seconds(s);
    }
  }
  // The stall settings of `annex run` (--on-stall, --watchdog-report,
  // --report-blocked-main, --report-busy-workers): stall detection only.
  const bool stall_settings =
      on_stall != nullptr || watchdog_report != Py_None ||
      report_blocked_main != 0 || report_busy_workers != 0;
  if (stall_settings && !options.watchdog) {
    PyErr_SetString(PyExc_ValueError,
                    "on_stall, watchdog_report, report_blocked_main and "
                    "report_busy_workers need watchdog=SECONDS (or True)");
    return nullptr;
  }
  if (on_stall != nullptr) {
    const std::string action = on_stall;
    if (action != "dump" && action != "exception" && action != "abort") {
      PyErr_SetString(PyExc_ValueError,
                      "on_stall is 'dump', 'exception' or 'abort'");
      return nullptr;
    }
    options.watchdog_options.raise_exception = action == "exception";
    options.watchdog_options.abort = action == "abort";
  }
  if (watchdog_report != Py_None) {
    PyObject* path = nullptr;
    if (!PyUnicode_FSConverter(watchdog_report, &path)) return nullptr;
    options.watchdog_options.report_path = PyBytes_AS_STRING(path);
    Py_DECREF(path);
    if (options.watchdog_options.report_path.empty()) {
      PyErr_SetString(PyExc_ValueError, "watchdog_report must be a file path");
      return nullptr;
    }
  }
  options.watchdog_options.report_blocked_main = report_blocked_main != 0;
  options.watchdog_options.report_busy_workers = report_busy_workers != 0;
  if (metrics_port != Py_None) {
    long port = PyLong_AsLong(metrics_port);
    if (port == -1 && PyErr_Occurred()) return nullptr;
    if (port < 0 || port > 65535) {
      PyErr_SetString(PyExc_ValueError, "metrics_port must be 0..65535");
      return nullptr;
    }
    if (!options.watchdog) {  // metrics only, as `annex run --metrics-port`
      options.watchdog = true;
      options.watchdog_options.stall_timeout = absl::ZeroDuration();
    }
    options.watchdog_options.metrics_port = static_cast<int>(port);
  }
  if (metrics_address != nullptr) {
    if (metrics_address[0] == '\0') {
      PyErr_SetString(PyExc_ValueError, "metrics_address is empty");
      return nullptr;
    }
    options.watchdog_options.metrics_address = metrics_address;
  }
  if (tcp_port != Py_None) {
    long port = PyLong_AsLong(tcp_port);
    if (port == -1 && PyErr_Occurred()) return nullptr;
    if (port < 0 || port > 65535) {
      PyErr_SetString(PyExc_ValueError, "tcp_port must be 0..65535");
      return nullptr;
    }
    options.console_tcp = true;
    options.console_tcp_port = static_cast<int>(port);
  }
  if (heap_interval != Py_None) {
    double s = Seconds(heap_interval, "heap_interval");
    if (s < 0) return nullptr;
    options.watchdog_heap_interval = absl::Seconds(s);
  }
  if (options.program_name.empty()) {
    // As `annex ps` shows for `annex run`: the program's sys.argv.
    PyObject* argv = PySys_GetObject("argv");  // borrowed
    if (argv != nullptr && PyList_Check(argv)) {
      for (Py_ssize_t i = 0; i < PyList_GET_SIZE(argv); ++i) {
        const char* a = PyUnicode_AsUTF8(PyList_GET_ITEM(argv, i));
        if (a == nullptr) {
          PyErr_Clear();
          continue;
        }
        if (!options.program_name.empty()) options.program_name += ' ';
        options.program_name += a;
      }
    }
    if (options.program_name.empty()) options.program_name = "python";
  }
  return StartMonitor(options);
}

PyObject* Stop(PyObject*, PyObject*) {
  if (!InMainInterpreter("stop")) return nullptr;
  if (g_monitor == nullptr) Py_RETURN_NONE;
  if (absl::Status s = g_monitor->Stop(); !s.ok()) return RaiseStatus(s);
  Py_RETURN_NONE;
}

PyObject* Running(PyObject*, PyObject*) {
  return PyBool_FromLong(g_monitor != nullptr && g_monitor->running());
}

PyObject* ConsoleSocketPath(PyObject*, PyObject*) {
  if (g_monitor == nullptr || !g_monitor->running()) Py_RETURN_NONE;
  std::string path = g_monitor->console_socket_path();
  if (path.empty()) Py_RETURN_NONE;
  return PyUnicode_DecodeFSDefault(path.c_str());
}

PyObject* MetricsPort(PyObject*, PyObject*) {
  if (g_monitor == nullptr || !g_monitor->running()) Py_RETURN_NONE;
  int port = g_monitor->metrics_port();
  if (port < 0) Py_RETURN_NONE;
  return PyLong_FromLong(port);
}

// The strings of a list of str, or false with TypeError.
bool StringList(PyObject* list, std::vector<std::string>* out) {
  if (!PyList_Check(list)) {
    PyErr_SetString(PyExc_TypeError, "args must be a list of str");
    return false;
  }
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); ++i) {
    Py_ssize_t size = 0;
    const char* a = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(list, i), &size);
    if (a == nullptr) return false;
    out->emplace_back(a, static_cast<size_t>(size));
  }
  return true;
}

// annex run's options in `list` (what follows `run`), read by the annex
// command's own parser (monitor/cli/run_flags.h); ValueError on a usage
// error, and on --python, which only the annex command takes.
absl::StatusOr<annex::cli::RunFlags> RunFlagsOf(PyObject* list) {
  std::vector<std::string> args;
  if (!StringList(list, &args)) return absl::UnknownError("");
  absl::StatusOr<annex::cli::RunFlags> flags = annex::cli::ParseRunFlags(args);
  if (flags.ok() && !flags->python.empty()) {
    flags = absl::InvalidArgumentError(
        "--python is for the annex command: python3 -m annex run runs the "
        "program in this interpreter");
  }
  if (!flags.ok()) {
    PyErr_SetString(PyExc_ValueError,
                    std::string{flags.status().message()}.c_str());
  }
  return flags;
}

// parse_run(args): how many of `args` (a list of str, what follows
// `python3 -m annex run`) are annex run's options, or None for -h/--help.
// Starts nothing. ValueError on a usage error.
PyObject* ParseRun(PyObject*, PyObject* list) {
  absl::StatusOr<annex::cli::RunFlags> flags = RunFlagsOf(list);
  if (!flags.ok()) return nullptr;
  if (flags->help) Py_RETURN_NONE;
  return PyLong_FromSize_t(flags->program);
}

// start_run(options, program_name): starts the monitor with annex run's
// `options` (a list of str, all of them options: parse_run's first n).
PyObject* StartRun(PyObject*, PyObject* args) {
  PyObject* list = nullptr;
  const char* program_name = nullptr;
  if (!PyArg_ParseTuple(args, "Os:start_run", &list, &program_name)) {
    return nullptr;
  }
  if (!InMainInterpreter("start_run")) return nullptr;
  absl::StatusOr<annex::cli::RunFlags> flags = RunFlagsOf(list);
  if (!flags.ok()) return nullptr;
  if (flags->help ||
      flags->program != static_cast<size_t>(PyList_GET_SIZE(list))) {
    PyErr_SetString(PyExc_ValueError, "start_run takes options only");
    return nullptr;
  }
  flags->options.program_name = program_name;
  return StartMonitor(flags->options);
}

// exec(code, timeout=None): Monitor::ExecInAnnex; returns what it printed.
PyObject* Exec(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"code", "timeout", nullptr};
  const char* code = nullptr;
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|O:exec",
                                   const_cast<char**>(kwlist), &code,
                                   &timeout)) {
    return nullptr;
  }
  if (!InMainInterpreter("exec")) return nullptr;
  absl::Duration limit = absl::InfiniteDuration();
  if (timeout != Py_None) {
    double s = Seconds(timeout, "timeout");
    if (s < 0) return nullptr;
    limit = absl::Seconds(s);
  }
  if (g_monitor == nullptr || !g_monitor->running()) {
    PyErr_SetString(PyExc_RuntimeError, "annex is not started");
    return nullptr;
  }
  const std::string text = code;
  absl::StatusOr<std::string> out;
  // The annex needs the GIL to run the code: release it while waiting.
  Py_BEGIN_ALLOW_THREADS out = g_monitor->ExecInAnnex(text, limit);
  Py_END_ALLOW_THREADS if (!out.ok()) return RaiseStatus(out.status());
  return PyUnicode_DecodeUTF8(out->data(), static_cast<Py_ssize_t>(out->size()),
                              "replace");
}

PyMethodDef kMethods[] = {
    {"start",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Start)),
     METH_VARARGS | METH_KEYWORDS, "Starts the monitor (see annex.start)."},
    {"stop", Stop, METH_NOARGS, "Stops the monitor."},
    {"running", Running, METH_NOARGS, "Whether the monitor runs."},
    {"console_socket_path", ConsoleSocketPath, METH_NOARGS,
     "The console's Unix socket path, or None."},
    {"metrics_port", MetricsPort, METH_NOARGS,
     "The Prometheus endpoint's port, or None."},
    {"parse_run", ParseRun, METH_O,
     "How many of the args are annex run's options (None: --help)."},
    {"start_run", StartRun, METH_VARARGS,
     "Starts the monitor with annex run's options."},
    {"exec", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Exec)),
     METH_VARARGS | METH_KEYWORDS,
     "Runs code in the annex and returns what it printed."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {
    PyModuleDef_HEAD_INIT,
    "annex._annex",
    "Annex's monitor for this process (use the annex package).",
    -1,
    kMethods,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace

// Where: the importing interpreter, GIL held.
PyMODINIT_FUNC PyInit__annex() {
  PyObject* m = PyModule_Create(&kModule);
  if (m == nullptr) return nullptr;
  if (PyModule_AddStringConstant(m, "python_version", PY_VERSION) < 0 ||
      PyModule_AddStringConstant(m, "RUN_OPTIONS_HELP",
                                 annex::cli::kRunOptionsHelp) < 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
