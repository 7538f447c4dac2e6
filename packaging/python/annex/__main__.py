"""python3 -m annex run [options] (script.py | -m module | -c code) [args...]

A second spelling of `annex run` for a plain python3: this interpreter runs
the program (same sys.argv, __main__ and exit status as python3 would give
it) with the Annex monitor started first. The options are annex run's own,
read by the same parser as the annex command's (annex._annex.parse_run).
"""

import runpy
import sys

from annex import _annex

USAGE_HEAD = """usage: python3 -m annex run [options] (script.py | -m module | -c code) [args...]

Runs a Python program in this interpreter with the Annex monitor on; attach
with 'annex attach <pid>'. (The `annex` command has attach, exec, ps, stacks.)

options:
"""


def _usage():
    return USAGE_HEAD + _annex.RUN_OPTIONS_HELP


def _fail(message):
    sys.stderr.write("annex run: %s\n" % message)
    sys.exit(2)


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(_usage())
        return 0 if argv else 2
    if argv[0] != "run":
        sys.stderr.write(
            "python3 -m annex: only 'run' is spelled this way; use the annex "
            "command for '%s'\n\n%s" % (argv[0], _usage()))
        return 2
    args = argv[1:]
    try:
        n = _annex.parse_run(args)
    except ValueError as e:
        _fail(e)
    if n is None:
        sys.stdout.write(_usage())
        return 0
    options, args = args[:n], args[n:]
    if args and args[0].startswith("-") and args[0] not in ("-m", "-c"):
        _fail("unknown option %s" % args[0])
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
    try:
        _annex.start_run(options, " ".join(args))
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
