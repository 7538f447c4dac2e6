"""annex.ById, annex.MappingProxy and x.prod's text: Heapy's values surface.

Compiled into the binary (//tools:embed_file.bzl) and run by
glue/module/hp_retention.cc in the annex when the `annex` module is made, after
paths.py and in its namespace (`Text`, annex.Text, and paths.py's `Paged`
pages); the classes then move into the module. They arrange what C++
(glue/module/hp_values.cc) read inside heap questions: members are annex IdSets,
lines are str; target objects never reach the annex.
"""

BYID_PAGE = 20  # lines a page, as x.byid printed before it was a table


class ById(Paged):
    """x.byid: the members of x alive when it was made, one line each:
    address, kind, size and the value or name (str, bytes, int, float,
    bool, None values; module, function, class, method and code names;
    len= of a list, tuple, dict or set), read in the target without
    running its code. Twenty lines a page: t.more the next, t.all every
    line (read again: a member that died since says so).

    Its rows are sets: t[i] is member i as a one-object IdSet, t[a:b] those
    members as one IdSet, iter(t) each in turn, len(t) how many;
    t.members all of them (an IdSet partitioned by Id).
    """

    def __init__(self, members, lines):
        self.members = members
        self._first_lines = tuple(lines)

    def __len__(self):
        return self.members.count

    def _index(self, i):
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError('byid rows are selected by int or slice, not %s'
                            % type(i).__name__)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError('byid row %d out of range: %d members'
                             % (i, n))
        return i

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError('byid slices take no step (rows a:b)')
            return self.members._members(start, max(start, stop))
        i = self._index(index)
        return self.members._members(i, i + 1)

    def __iter__(self):
        for i in range(len(self)):
            yield self.members._members(i, i + 1)

    def _count(self):
        return len(self)

    def _page_end(self, first):
        n = self._count()
        return n if n - first <= BYID_PAGE else first + BYID_PAGE

    def _lines(self, first, end):
        n = self._count()
        if n == 0:
            return '(no member of the set is alive now)'
        if first == 0 and end <= len(self._first_lines):
            lines = list(self._first_lines[:end])
        else:
            lines = list(self.members._byid_lines(first, end))
        if first >= n:
            lines.append('<No more objects>')
        elif end < n:
            lines.append("<%d more objects. Type e.g. '_.more' to view.>"
                         % (n - end))
        return '\n'.join(lines)


class MappingProxy:
    """x.maprox (Heapy's): x.maprox.attr, x.maprox['key'], x.maprox[3] and
    x.maprox('.a.b["k"]') are the objects those steps reach from each
    member of x, as one IdSet (a member they do not apply to is left out,
    as Heapy leaves out its exceptions). The steps are read in the target
    as hp.iso('expr') reads them: no target code runs, nothing is made
    there. x.maprox.__class__.maprox.__name__.byid shows the members'
    class names.
    """

    __slots__ = ('_set_',)

    def __init__(self, members):
        object.__setattr__(self, '_set_', members)

    def __getattribute__(self, name):
        members = object.__getattribute__(self, '_set_')
        if name == '_set_':
            return members
        if not name.isidentifier():
            raise AttributeError('maprox: %r is no attribute name' % name)
        return members._maprox('.' + name)

    def __setattr__(self, name, value):
        raise AttributeError('maprox is read only')

    def __getitem__(self, key):
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise TypeError('maprox[key]: a str or int key (dict keys, '
                            'list and tuple indexes), not %s'
                            % type(key).__name__)
        return object.__getattribute__(self, '_set_')._maprox(
            '[%r]' % (key,))

    def __call__(self, steps):
        return object.__getattribute__(self, '_set_')._maprox(steps)

    def __repr__(self):
        return ('<annex.MappingProxy of %d objects: .attr, [key] or '
                '(".a.b") give their values as a set>'
                % object.__getattribute__(self, '_set_').count)


def prod_text(frames):
    """x.prod's text: the allocation traceback `frames` ((file, line), most
    recent first), as Heapy prints it, with each line's source read in the
    annex (linecache: files, no target code)."""
    import linecache
    lines = ['Traceback (most recent call first):']
    for filename, lineno in frames:
        lines.append('  File "%s", line %d' % (filename, lineno))
        source = linecache.getline(filename, lineno).strip()
        if source:
            lines.append('    ' + source)
    if not frames:
        lines.append('  (no traceback: the allocation was made before '
                     'tracemalloc started)')
    return Text('\n'.join(lines))
