"""annex_test: what an hp test module (tests/hp/test_*.py) imports.

The Python half of the module tests/testing/annex_test_module.cc defines
(compiled into the test driver, run in each annex that imports it). Runs
in the annex only, on the annex thread.

    target_exec(code)  run statements in the target's __main__
    target_eval(expr)  a literal value computed in the target's __main__
    monitor_option(n)  an option the driver started the Monitor with
    TargetError        what the target raised, with its traceback as text
    err(f), err_type(f)  what f() raises, as text (for tables of cases)

While a module loads and runs, its own directory is first on sys.path (as
Python does for a script), so tests/hp's helper modules import.

_list() and _run() are the driver's: they load the module under test into
the console namespace they are given (so `hp` is a global of the module)
and report through _report(kind, text), which the driver reads.
"""

import ast
import os
import sys
import traceback
import types
import unittest


class TargetError(Exception):
    """Code run in the target raised (the message is its traceback), or a
    target_eval value has no literal repr."""


def _target_error(type_name, message, frames):
    """The TargetError for what the target raised: its traceback written
    from text the C half took apart there (frames as (file, line,
    function), outermost first)."""
    lines = ['Traceback (most recent call last):\n']
    lines += ['  File "%s", line %d, in %s\n' % f for f in frames]
    lines.append(type_name + (': ' + message if message else '') + '\n')
    return TargetError(''.join(lines))


def target_exec(code):
    """Runs `code` (statements) in the target's __main__, the target
    current for the call only. Raises TargetError when the code raises."""
    _target_exec(code)


def target_eval(expr):
    """Evaluates `expr` in the target's __main__ and returns the value as
    ast.literal_eval of its repr, made in the annex (ints, floats, str,
    bytes, bool, None and containers of those)."""
    text = _target_repr(expr)
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        shown = text if len(text) <= 200 else text[:200] + '...'
        raise TargetError('target_eval(%r): the value %s is not a literal'
                          % (expr, shown)) from None


def err(f):
    """'TypeName: message' of the Exception f() raises, or 'no error'."""
    try:
        f()
    except Exception as e:  # pylint: disable=broad-except
        return '%s: %s' % (type(e).__name__, e)
    return 'no error'


def err_type(f):
    """The name of the Exception type f() raises, or 'no error'."""
    try:
        f()
    except Exception as e:  # pylint: disable=broad-except
        return type(e).__name__
    return 'no error'


class _ModuleDirOnPath:
    """The module's directory first on sys.path for the scope."""

    def __init__(self, path):
        self._dir = os.path.dirname(os.path.abspath(path))

    def __enter__(self):
        sys.path.insert(0, self._dir)

    def __exit__(self, *exc):
        try:
            sys.path.remove(self._dir)
        except ValueError:
            pass


def _module_name(path):
    return os.path.splitext(os.path.basename(path))[0]


def _load(ns, path):
    """Runs the module at `path` in `ns` (compiled under its path, so
    tracebacks name its lines); returns a module object for unittest whose
    dict holds the same names."""
    name = _module_name(path)
    with open(path, encoding='utf-8') as f:
        source = f.read()
    ns['__name__'] = name
    ns['__file__'] = path
    exec(compile(source, path, 'exec'), ns)
    module = types.ModuleType(name)
    module.__dict__.update(ns)
    return module


def _cases(module):
    """(class name, method name, first line) of each test, classes in the
    order the module defines them, methods in unittest's order."""
    loader = unittest.TestLoader()
    out = []
    for obj in list(vars(module).values()):
        if (isinstance(obj, type) and issubclass(obj, unittest.TestCase)
                and obj.__module__ == module.__name__):
            for method in loader.getTestCaseNames(obj):
                code = getattr(getattr(obj, method), '__code__', None)
                line = code.co_firstlineno if code is not None else 0
                out.append((obj.__name__, method, line))
    return out


def _format_exc():
    return ''.join(traceback.format_exception(*sys.exc_info()))


def _list(ns):
    """Reports ('list', lines 'Class.method line') or ('error', the
    traceback of a module that does not load)."""
    path = _current()[0]
    try:
        with _ModuleDirOnPath(path):
            module = _load(ns, path)
            cases = _cases(module)
    except BaseException:
        _report('error', _format_exc())
        return
    _report('list', ''.join('%s.%s %d\n' % c for c in cases))


def _run(ns):
    """Runs the one test the driver names in a fresh namespace `ns`, with
    unittest's fixtures (setUp/tearDown, setUpClass, setUpModule), and
    reports 'pass', 'skip' (the reason) or 'fail' (the tracebacks)."""
    path, cls_name, method = _current()
    with _ModuleDirOnPath(path):
        _run_loaded(ns, path, cls_name, method)


def _run_loaded(ns, path, cls_name, method):
    try:
        module = _load(ns, path)
    except BaseException:
        _report('fail', 'the module did not load:\n' + _format_exc())
        return
    cls = ns.get(cls_name)
    if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase)):
        _report('fail', 'no TestCase class %r in %s' % (cls_name, path))
        return
    result = unittest.TestResult()
    suite = unittest.TestSuite([cls(method)])
    name = module.__name__
    sys.modules[name] = module  # for setUpModule/tearDownModule
    try:
        suite.run(result)
    finally:
        sys.modules.pop(name, None)
    # Each problem under the test's description: a failed subTest names
    # its parameters there ("test_x (m.C) [name='big']").
    problems = ['%s\n%s' % (test, text)
                for test, text in result.errors + result.failures]
    problems += ['unexpected success: %s' % t.id()
                 for t in result.unexpectedSuccesses]
    if problems:
        _report('fail', '\n'.join(problems))
    elif result.skipped:
        _report('skip', '; '.join(reason for _, reason in result.skipped))
    elif result.testsRun == 1 and result.wasSuccessful():
        _report('pass', '')
    else:
        _report('fail', 'the test did not run (%d run)' % result.testsRun)
