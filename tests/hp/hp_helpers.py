"""Helpers the hp test modules share (tests/hp/test_*.py import them: the
driver puts a module's own directory first on sys.path). Run in the annex,
on the annex thread; `hp` is passed in, since it is a global of each test
module's namespace."""


def rows(h):
    """The rows of partition `h`, in its table's order."""
    return [h[i] for i in range(len(h.all.splitlines()) - 2)]


def row(hp, kind):
    """The set of the one row of kind `kind` in hp.heap(); AssertionError
    when there is not exactly one."""
    found = [r for r in rows(hp.heap()) if r.kind == kind]
    if len(found) != 1:
        raise AssertionError('%d heap rows of kind %r' % (len(found), kind))
    return found[0]
