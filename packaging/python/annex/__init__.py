"""Annex for a plain python3 process.

    import annex
    annex.start(console=True)        # now `annex attach <pid>` works
    ...
    annex.stop()                     # optional: stops itself at exit

start(console=True, watchdog=None, metrics_port=None, console_dir=None,
      tcp_port=None, allow_exec_target=False, heap_interval=None,
      program_name=None, metrics_address=None)
    Starts the monitor in this process (the C++ annex::Monitor, see
    docs/cpp-api.md): a second interpreter that watches this one. console:
    the Unix-socket console `annex attach/exec PID` reach. watchdog: None or
    False (off), True (stall reports after 5 s), or seconds; reports go to
    stderr. metrics_port: serve Prometheus metrics on 127.0.0.1:PORT (0: any
    free port, see metrics_port()); turns the watchdog on, with a heap
    walk every 15 s for the object figures. metrics_address: listen there
    instead of 127.0.0.1 (no authentication). heap_interval: seconds
    between heap walks for the watchdog's figures. Raises
    RuntimeError when it cannot start (e.g. a Python version other than the
    one this module was built for), or when already started.
stop()       stops it (harmless when not running).
running()    whether it runs.
console_socket_path(), metrics_port()   where to reach it, or None.
exec(code, timeout=None)   runs code in the annex (the `hp` session) and
    returns what it printed.

`python3 -m annex run app.py args...` runs a program with the monitor on,
like `annex run app.py args...` (see `python3 -m annex --help`).
"""

from annex._annex import (
    console_socket_path,
    exec,
    metrics_port,
    python_version,
    running,
    start,
    stop,
)

__all__ = [
    "console_socket_path",
    "exec",
    "metrics_port",
    "python_version",
    "running",
    "start",
    "stop",
]
