"""Annex for a plain python3 process.

    import annex
    annex.start(console=True)        # now `annex attach <pid>` works
    ...
    annex.stop()                     # optional: stops itself at exit

start(console=True, watchdog=None, metrics_port=None, console_dir=None,
      tcp_port=None, allow_exec_target=False, heap_interval=None,
      program_name=None, metrics_address=None, record=None,
      record_interval=None, record_format=None, record_max_bytes=None,
      record_top=None, record_retainers=False, on_stall=None,
      watchdog_report=None, report_blocked_main=False,
      report_busy_workers=False)
    Starts the monitor in this process (the C++ annex::Monitor, see
    docs/cpp-api.md): a second interpreter that watches this one. console:
    the Unix-socket console `annex attach/exec PID` reach. watchdog: None or
    False (off), True (stall reports after 5 s), or seconds; reports go to
    stderr. metrics_port: serve Prometheus metrics on 127.0.0.1:PORT (0: any
    free port, see metrics_port()); turns the watchdog on, with a heap
    walk every 15 s for the object figures. metrics_address: listen there
    instead of 127.0.0.1 (no authentication). heap_interval: seconds
    between heap walks for the watchdog's figures. record: a file
    path; a heap record (partition by Clodo and type, totals, the walk's
    pause, RSS, labels) is appended to it every record_interval seconds
    (default 10, the first at once), as Heapy stat records
    (record_format='stat', the default; hp.loadall() reads them) or JSON
    lines ('jsonl'); the file is renamed FILE.1 past record_max_bytes
    (default 64 MiB); record_top rows per partition (default 20);
    record_retainers adds the dominator tree's top retainers and the
    shortest paths to the kinds that grow (the walk takes about twice as
    long). The same
    as `annex run --record FILE --record-interval ...` (docs/recording.md);
    `annex report FILE -o report.html` draws the file. With a watchdog
    (seconds or True), as `annex run`'s flags of the same names
    (docs/watchdog.md): on_stall 'dump' (only the report, the default),
    'exception' (raise TimeoutError in a thread busy in Python) or 'abort'
    (abort() after the report); watchdog_report: a file path each report
    is also appended to (created 0600); report_blocked_main: report the
    main thread blocked without the GIL (a deadlock, or an idle main);
    report_busy_workers: report any thread that keeps the GIL in Python
    (a runaway worker); without a watchdog they raise ValueError. Raises
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
