"""python3 -m annex run [options] (script.py | -m module | -c code) [args...]

A second spelling of `annex run` for a plain python3: this interpreter runs
the program (same sys.argv, __main__ and exit status as python3 would give
it) with the Annex monitor started first.
"""

import runpy
import sys

import annex

USAGE = """usage: python3 -m annex run [options] (script.py | -m module | -c code) [args...]

Runs a Python program in this interpreter with the Annex monitor on; attach
with 'annex attach <pid>'. (The `annex` command has attach, exec, ps, stacks.)

options:
  --no-console          do not open the console socket
  --allow-exec-target   let console clients run code in the program itself
  --console-dir DIR     directory for the console socket
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
  --metrics-port PORT   serve Prometheus metrics on 127.0.0.1:PORT, with a
                        heap walk every 15 s for the object figures
  --metrics-address ADDR
                        serve them on ADDR instead (no authentication)
  --heap-interval SECS  walk the heap every SECS seconds for the watchdog
  -h, --help            show this help

--on-stall, --watchdog-report, --report-blocked-main and
--report-busy-workers need --watchdog SECONDS.
"""


def _fail(message):
    sys.stderr.write("annex run: %s\n" % message)
    sys.exit(2)


def _number(flag, value, kind):
    try:
        return kind(value)
    except ValueError:
        _fail("%s needs a number, not %r" % (flag, value))


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 2
    if argv[0] != "run":
        sys.stderr.write(
            "python3 -m annex: only 'run' is spelled this way; use the annex "
            "command for '%s'\n\n%s" % (argv[0], USAGE))
        return 2
    args = argv[1:]
    options = {"console": True}
    takes_value = {"--console-dir", "--tcp", "--watchdog", "--metrics-port",
                   "--metrics-address", "--heap-interval", "--on-stall",
                   "--watchdog-report"}
    stall_flags = []  # need --watchdog, as in `annex run`
    while args and args[0].startswith("-") and args[0] not in ("-m", "-c", "-"):
        flag = args.pop(0)
        if flag == "--":
            break
        if flag in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if flag == "--no-console":
            options["console"] = False
        elif flag == "--allow-exec-target":
            options["allow_exec_target"] = True
        elif flag == "--report-blocked-main":
            options["report_blocked_main"] = True
            stall_flags.append(flag)
        elif flag == "--report-busy-workers":
            options["report_busy_workers"] = True
            stall_flags.append(flag)
        elif flag in takes_value:
            if not args:
                _fail("%s needs a value" % flag)
            value = args.pop(0)
            if flag == "--console-dir":
                options["console_dir"] = value
            elif flag == "--tcp":
                options["tcp_port"] = _number(flag, value, int)
            elif flag == "--watchdog":
                options["watchdog"] = _number(flag, value, float)
                if not 0 < options["watchdog"] <= 86400:
                    _fail("--watchdog needs seconds > 0")
            elif flag == "--on-stall":
                if value not in ("dump", "exception", "abort"):
                    _fail("--on-stall is dump, exception or abort")
                options["on_stall"] = value
                stall_flags.append(flag)
            elif flag == "--watchdog-report":
                options["watchdog_report"] = value
                stall_flags.append(flag)
            elif flag == "--metrics-port":
                options["metrics_port"] = _number(flag, value, int)
            elif flag == "--metrics-address":
                options["metrics_address"] = value
            else:
                options["heap_interval"] = _number(flag, value, float)
        else:
            _fail("unknown option %s" % flag)
    if stall_flags and "watchdog" not in options:
        _fail("%s needs --watchdog SECONDS" % stall_flags[0])
    if not args:
        _fail("give a script, -m module or -c code")

    if args[0] == "-m":
        if len(args) < 2:
            _fail("-m needs a module name")
        target, rest, kind = args[1], args[2:], "module"
        sys.argv = [target] + rest  # runpy sets argv[0] to the file
    elif args[0] == "-c":
        if len(args) < 2:
            _fail("-c needs code")
        target, rest, kind = args[1], args[2:], "code"
        sys.argv = ["-c"] + rest
    else:
        target, rest, kind = args[0], args[1:], "path"
        sys.argv = [target] + rest
    options.setdefault("program_name", " ".join(args))
    try:
        annex.start(**options)
    except (RuntimeError, ValueError) as e:
        sys.stderr.write("annex: monitor not started: %s\n" % e)
    if kind == "module":
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    elif kind == "code":
        sys.path.insert(0, "")
        code = compile(target, "<string>", "exec")
        # A fresh __main__-like namespace, as python3 -c gives.
        namespace = {"__name__": "__main__", "__builtins__": __builtins__,
                     "__doc__": None, "__spec__": None}
        exec(code, namespace)
    else:
        # As python3 script.py: the script's directory first on sys.path.
        import os
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
        runpy.run_path(target, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
