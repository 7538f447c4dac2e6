"""annex.Path, annex.Paths and annex.Root: Heapy's shortest-paths surface.

Compiled into the binary (//tools:embed_file.bzl) and run by
glue/module/hp_retention.cc in the annex when the `annex` module is made, in a
namespace that holds `Text` (annex.Text); the classes then move into the
module. They only arrange data that C++ found inside one heap question
(addresses are ints, kinds and names are str) and call back into C++
(x.get_shpaths, the root lookup) for anything that needs the heap again.
"""

PAGE = 10  # paths per page, as Heapy's


def _spelled(name):
    """%R.name for a dotted identifier, else %R['name'] (as paths print)."""
    if name and all(part.isidentifier() for part in name.split('.')):
        return '%R.' + name
    return '%R[' + repr(name) + ']'


class Paged:
    """Heapy's pages of a listing: ten items a page (an eleventh is shown
    rather than announced), x.more the next page, x.all every item.
    A subclass gives _count() (the items) and _lines(first, end) (the text
    of items first to end, with what it says around them)."""

    _first = 0

    def _page_end(self, first):
        """Where the page from `first` ends."""
        n = self._count()
        if first >= n or n - first <= PAGE + 1:
            return n
        return first + PAGE

    def __repr__(self):
        return self._lines(self._first, self._page_end(self._first))

    def __str__(self):
        return self.__repr__()

    @property
    def more(self):
        """The next page."""
        page = object.__new__(type(self))
        page.__dict__.update(self.__dict__)
        page._first = self._page_end(self._first)
        return page

    @property
    def all(self):
        """Every item (annex.Text)."""
        return Text(self._lines(0, self._count()))


class Path:
    """One path of a Paths (p[i]): prints as its line, e.g.

     3: %R.sys.modules['app'].__dict__['cache'][7]

    text is the path alone; index its position in the Paths; root the
    named root it starts at and root_edge how that root holds the first
    object ('' when the root is that object; both '' for a path from a
    src object, whose text then starts '<kind at 0x...>'); edges, one per
    step, (kind, label, from, to): the kind of reference ('attribute',
    'dict_value', 'index', 'frame_local', 'internal', ...), its Python
    spelling and the two objects' addresses. len(path) and path.depth()
    are the number of steps.
    """

    __slots__ = ('index', 'text', 'root', 'root_edge', 'edges')

    def __init__(self, index, text, root, root_edge, edges):
        self.index = index
        self.text = text
        self.root = root
        self.root_edge = root_edge
        self.edges = edges

    def __repr__(self):
        return '%2d: %s' % (self.index, self.text)

    __str__ = __repr__

    def __len__(self):
        return len(self.edges)

    def depth(self):
        return len(self.edges)


class Paths(Paged):
    """Shortest paths from the target's roots to a set (x.sp, x.get_shpaths()).

    Shows ten paths a page, as Heapy does: p.more is the next page (and
    p.more.more the one after), p.all every path fetched. p[i] is one path
    (a Path), len(p) the number fetched (at most the limit), iter(p) and
    p.aslist() give them. p.numpaths counts all shortest paths, fetched or
    not (counted in the shortest-path graph, never listed; saturates at
    2**128 - 1); p.truncated says some were not fetched. p.depth() is the
    paths' length in steps (all have the same; None without paths).

    p.edges_at(*levels) gives the (from, to) address pairs at those steps
    (0 the first, -1 the last) of the fetched paths;
    p.copy_but_avoid_edges_at_levels(*levels) (also p.avoided) searches
    again avoiding the references at those steps of all shortest paths,
    fetched or not: the next route. p.paths holds the raw data, per path
    (root_name, edges, root_edge).
    """

    def __init__(self, target, fetch, count, numpaths, avoid_nodes,
                 avoid_edges, limit, src, empty_text, note):
        # The paths stay in the answer's C++ data until asked for:
        # fetch(i) gives path i's (root, edges, root_edge, text), made into
        # a Path on first use (a page shows ten of maybe many thousands).
        self.target = target
        self._fetch = fetch
        self._n = count
        self._made = {}
        self.numpaths = numpaths
        self.truncated = numpaths > count
        self.avoid_nodes = avoid_nodes
        self.avoid_edges = avoid_edges
        self.limit = limit
        self.src = src
        self._empty_text = empty_text
        self._note = note
        self._first = 0

    # --- the paths as a sequence

    def _path(self, i):
        path = self._made.get(i)
        if path is None:
            root, edges, root_edge, text = self._fetch(i)
            path = self._made[i] = Path(i, text, root, root_edge, edges)
        return path

    @property
    def paths(self):
        """The raw data, per path (root_name, edges, root_edge)."""
        return tuple(self._fetch(i)[:3] for i in range(self._n))

    def __len__(self):
        return self._n

    def __iter__(self):
        return (self._path(i) for i in range(self._n))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._path(i) for i in range(*index.indices(self._n))]
        if not isinstance(index, int):
            raise TypeError('Paths indices are ints or slices, not %s'
                            % type(index).__name__)
        i = index + self._n if index < 0 else index
        if not 0 <= i < self._n:
            raise IndexError(
                'path %d out of range: %d of %d paths fetched%s'
                % (index, self._n, self.numpaths, self._fetch_hint()))
        return self._path(i)

    def aslist(self, maxpaths=None, firstpath=0):
        """The fetched paths from firstpath on (at most maxpaths), as Paths."""
        end = None if maxpaths is None else firstpath + maxpaths
        return self[firstpath:end]

    def depth(self):
        return len(self._path(0).edges) if self._n else None

    # --- pages

    def _fetch_hint(self):
        if not self.truncated:
            return ''
        return ' (limit=%d; get_shpaths(limit=...) fetches more)' % self.limit

    def _count(self):
        return self._n

    def _lines(self, first, end):
        n = self._n
        if not n:
            lines = [self._empty_text] if self._empty_text else []
        else:
            lines = [repr(p) for p in self[first:end]]
            if first >= n:
                lines.append('<No more paths>')
            if end < n:
                lines.append("<%d more paths. Type e.g. '_.more' to view.>"
                             % (n - end))
            elif self.truncated:
                left = self.numpaths - n
                lines.append('<%d more path%s not fetched%s>'
                             % (left, 's' if left != 1 else '',
                                self._fetch_hint()))
        if self._note:
            lines.append(self._note)
        return '\n'.join(lines)

    # --- the next route

    def edges_at(self, *levels):
        for level in levels:
            if not isinstance(level, int):
                raise TypeError('levels are ints: step positions along a '
                                'path, negative from the end')
        pairs = set()
        for i in range(self._n):
            edges = self._fetch(i)[1]
            for level in levels:
                if -len(edges) <= level < len(edges):
                    pairs.add(edges[level][2:4])
        return sorted(pairs)

    def copy_but_avoid_edges_at_levels(self, *levels):
        if not levels:
            raise TypeError('copy_but_avoid_edges_at_levels() needs a step, '
                            'e.g. p.avoided(-1) for the last one')
        self.edges_at(*levels)  # checks them
        return self.target.get_shpaths(
            avoid_nodes=self.avoid_nodes, avoid_edges=self.avoid_edges,
            limit=self.limit, src=self.src, avoid_levels=levels)

    avoided = copy_but_avoid_edges_at_levels


class Root:
    """hp.Root: the roots of the target's heap, the %R that paths start at.

    Prints the roots found when hp.Root was read: each named root with its
    attribute name and the kind of what it holds; a running frame holds
    several objects, one per line with the reference's name. What a frame
    holds that is not its own says how paths reach it instead: "paths:"
    and the spelling (a module's dict as %R.sys.modules['app'].__dict__,
    the builtins, what an earlier frame holds), or "fallback" for the
    function it runs and its code (paths start there only when no other
    root leads to the object). hp.Root.<attribute> or hp.Root['<name>'] is
    the IdSet of what that root holds now (looked up again: frames come
    and go), usable as get_shpaths(src=...).
    """

    def __init__(self, entries, objects):
        # entries: ((name, edge, use, alias, address, kind), ...) in
        # roots.h order; use is 'start', 'fallback' or 'alias'
        self._entries = entries
        self._objects = objects
        self._names = {}
        for entry in entries:
            self._names.setdefault(self._attribute(entry[0]), entry[0])

    @staticmethod
    def _attribute(name):
        return ''.join(c if c.isalnum() else '_' for c in name)

    def __getitem__(self, name):
        if not isinstance(name, str):
            raise TypeError('hp.Root[name]: a root name (str), not %s'
                            % type(name).__name__)
        return self._objects(self._names.get(name, name))

    def __getattr__(self, attribute):
        if attribute.startswith('_') or attribute not in self._names:
            raise AttributeError('hp.Root has no root %r (print hp.Root to '
                                 'list them)' % attribute)
        return self._objects(self._names[attribute])

    def __dir__(self):
        return sorted(self._names)

    def __repr__(self):
        lines = ['The roots paths start at (%R): hp.Root.<attribute> is what '
                 'one holds now']
        last = None
        for name, edge, use, alias, address, kind in self._entries:
            held = '%s at %#x' % (kind, address)
            if use == 'alias':
                held += ' (paths: %s)' % alias
            elif use == 'fallback':
                held += ' (fallback)'
            if not edge:
                lines.append(' %-30s %-22s %s'
                             % (_spelled(name), self._attribute(name), held))
                last = None
                continue
            if name != last:
                lines.append(' %-30s %s'
                             % (_spelled(name), self._attribute(name)))
                last = name
            lines.append('     %-26s %-22s %s' % (edge, '', held))
        return '\n'.join(lines)

    __str__ = __repr__
