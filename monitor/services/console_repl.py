"""The console's REPL semantics: run(ns, source, interactive).

Compiled into the binary (//tools:embed_file.bzl) and run by
monitor/services/annex_console.cc in the annex, never in the target, in a
namespace of its own that only it uses; each command then calls run() with
the client's namespace. Standard library only (docs/design.md rule 8).
"""

import codeop
import io
import sys
import traceback


def _format(exc):
    tb = exc.__traceback__
    if tb is not None:
        tb = tb.tb_next  # hide run() itself
    return ''.join(traceback.format_exception(type(exc), exc, tb))


def run(ns, source, interactive):
    """Runs `source` in `ns` as the console does.

    Returns (status, output, error, exit_code), status one of 'ok',
    'error', 'incomplete' (an interactive line that needs more) and
    'interrupted'. Output and errors of the code are captured, and an
    interactive expression's value is shown (and kept in `_`) as the
    interactive interpreter does.
    """
    try:
        if interactive:
            code = codeop.compile_command(source, '<console>', 'single')
            if code is None:
                return ('incomplete', '', '', 0)
        else:
            code = compile(source, '<console>', 'exec')
    except (SyntaxError, OverflowError, ValueError) as e:
        return ('error', '',
                ''.join(traceback.format_exception_only(type(e), e)), 1)
    out = io.StringIO()

    def display(value):
        if value is None:
            return
        ns['_'] = value
        out.write(repr(value) + '\n')

    saved = sys.stdout, sys.stderr, sys.displayhook
    sys.stdout = sys.stderr = out
    sys.displayhook = display
    try:
        exec(code, ns)
    except SystemExit as e:
        c = e.code
        if c is None:
            return ('ok', out.getvalue(), '', 0)
        if isinstance(c, int):
            return ('ok' if c == 0 else 'error', out.getvalue(), '', c)
        return ('error', out.getvalue(), str(c) + '\n', 1)
    except KeyboardInterrupt:
        return ('interrupted', out.getvalue(), 'KeyboardInterrupt\n', 130)
    except BaseException as e:
        return ('error', out.getvalue(), _format(e), 1)
    finally:
        sys.stdout, sys.stderr, sys.displayhook = saved
    return ('ok', out.getvalue(), '', 0)
