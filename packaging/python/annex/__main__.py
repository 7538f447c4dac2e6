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
  --watchdog SECONDS    report stalls longer than SECONDS on stderr
  --metrics-port PORT   serve Prometheus metrics on 127.0.0.1:PORT, with a
                        heap walk every 15 s for the object figures
  --metrics-address ADDR
                        serve them on ADDR instead (no authentication)
  --heap-interval SECS  walk the heap every SECS seconds for the watchdog
  -h, --help            show this help
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
                   "--metrics-address", "--heap-interval"}
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
            elif flag == "--metrics-port":
                options["metrics_port"] = _number(flag, value, int)
            elif flag == "--metrics-address":
                options["metrics_address"] = value
            else:
                options["heap_interval"] = _number(flag, value, float)
        else:
            _fail("unknown option %s" % flag)
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
