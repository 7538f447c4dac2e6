"""annex.ReferencePattern: Heapy's reference pattern (x.rp, x.get_rp()).

Compiled into the binary (//tools:embed_file.bzl) and run by
glue/module/hp_retention.cc in the annex when the `annex` module is made, after
paths.py and in its namespace (`Text`, annex.Text, and paths.py's `Paged`
pages); the classes then move into the module. They only arrange rows that C++ made inside one heap question:
each row's objects are already an annex IdSet, addresses are ints and
kinds are str.
"""

LINE = 80  # a row's line is cut to this width, as Heapy's


def _letters(name):
    """The child indexes a row name spells ('a3b' -> [0, 0, 0, 1]), or
    None when it is no row name."""
    if name == '_':
        return []
    out = []
    i = 0
    while i < len(name):
        c = name[i]
        if not 'a' <= c <= 'z':
            return None
        i += 1
        j = i
        while j < len(name) and name[j].isdigit():
            j += 1
        count = int(name[i:j]) if j > i else 1
        if count < 1 or count > 10000:
            return None
        out.extend([ord(c) - ord('a')] * count)
        i = j
    return out if out else None


def _name(indexes):
    """Heapy's spelling of a row name: runs of more than two equal letters
    as the letter and the count ([0, 0, 0, 1] -> 'a3b')."""
    if not indexes:
        return '_'
    parts = []
    i = 0
    while i < len(indexes):
        j = i
        while j < len(indexes) and indexes[j] == indexes[i]:
            j += 1
        letter = chr(ord('a') + indexes[i])
        parts.append(letter + str(j - i) if j - i > 2 else letter * (j - i))
        i = j
    return ''.join(parts)


class RefPatRow:
    """One row of a ReferencePattern (rp.get_row(key), rp.rows[i]).

    index its number, name its tree name ('_', 'a', 'ab', 'a3b'), depth its
    level (0: the set itself), parent the index of the row above (None for
    row 0), mark how it ends: '-' followed on the lines below, '+' more
    past the depth, 'S' a stop kind, '^' the same objects as row `seen`,
    'R' nothing refers to it. kind, count and size describe its objects,
    set is them (an IdSet). dropped counts the kinds of its next level
    left out by max_children.
    """

    __slots__ = ('index', 'name', 'depth', 'parent', 'mark', 'seen', 'kind',
                 'count', 'size', 'set', 'dropped', '_preview')

    def __init__(self, index, name, depth, parent, mark, seen, kind, count,
                 size, members, dropped, preview):
        self.index = index
        self.name = name
        self.depth = depth
        self.parent = None if parent < 0 else parent
        self.mark = mark
        self.seen = None if seen < 0 else seen
        self.kind = kind
        self.count = count
        self.size = size
        self.set = members
        self.dropped = dropped
        self._preview = preview

    def _summary(self, width):
        head = '%d %s (%d bytes): ' % (self.count, self.kind, self.size)
        shown = []
        used = len(head)
        for address in self._preview:
            text = '%#x' % address
            if shown and used + len(text) + 2 > width:
                break
            shown.append(text)
            used += len(text) + 2
        text = head + ', '.join(shown)
        if len(shown) < self.count:
            text += '...'
        if len(text) > width:
            text = text[:max(width - 3, 0)] + '...'
        return text

    def __repr__(self):
        start = '%2d: %s ' % (self.index, self.name)
        fill = ('-' if self.index % 2 == 0 else ' ') * max(
            0, 9 + self.depth - len(start))
        if self.mark == '^':
            mark = '[^ %d]' % self.seen
        else:
            mark = '[%s]' % self.mark
        prefix = '%s%s %s ' % (start, fill, mark)
        return prefix + self._summary(LINE - len(prefix))

    __str__ = __repr__


class ReferencePattern(Paged):
    """The reference pattern of a set (x.rp, x.get_rp(...)), as Heapy's.

    Row 0 ('_') is the set; below it its referrers grouped by kind (rows
    'a', 'b', ...), their referrers ('aa', 'ab', ...), and so on, printed
    depth first, ten rows a page: rp.more is the next page, rp.all every
    row. A row shows its number, name, how it ends ([-] followed below,
    [+] more past the depth, [S] a stop kind, [^ n] the same objects as
    row n, [R] nothing refers to it) and its objects' count, kind, size and
    first addresses.

    rp[i] and rp.<name> (rp._, rp.a, rp.ab, rp.a3b) are a row's objects as
    an IdSet; rp.get_row(i or name) the row itself (a RefPatRow);
    len(rp) counts the rows, iter(rp) gives their sets; rp.rows holds them
    all. rp.truncated says max_rows cut the pattern short.
    """

    def __init__(self, target, header, rows, truncated, max_rows,
                 empty_text):
        self.target = target
        self.header = header
        self.rows = tuple(RefPatRow(i, *row) for i, row in enumerate(rows))
        self.truncated = truncated
        self.max_rows = max_rows
        self._empty_text = empty_text
        self._by_name = {row.name: row for row in self.rows}

    # --- rows

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return (row.set for row in self.rows)

    def get_row(self, key):
        """The row numbered `key` (an int) or named `key` ('_', 'a', 'a3b')."""
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise TypeError('reference pattern rows are selected by number '
                            '(int) or name (str), not %s'
                            % type(key).__name__)
        if isinstance(key, int):
            try:
                return self.rows[key]
            except IndexError:
                raise IndexError('row %d out of range: the pattern has %d '
                                 'rows' % (key, len(self.rows))) from None
        indexes = _letters(key)
        row = None if indexes is None else self._by_name.get(_name(indexes))
        if row is None:
            raise KeyError('the reference pattern has no row named %r'
                           % key)
        return row

    def __getitem__(self, index):
        if isinstance(index, str):
            raise TypeError('rp[i] takes a row number; a row by name is '
                            'rp.%s or rp.get_row(%r)' % (index, index))
        return self.get_row(index).set

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        indexes = _letters(name)
        row = None if indexes is None else self._by_name.get(_name(indexes))
        if row is None:
            raise AttributeError('the reference pattern has no row named %r'
                                 % name)
        return row.set

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(self._by_name))

    # --- pages

    def _count(self):
        return len(self.rows)

    def _lines(self, first, end):
        lines = []
        if first == 0:
            lines.append('Reference Pattern by <%s>.' % self.header)
        if not self.rows:
            lines.append(self._empty_text)
            return '\n'.join(lines)
        for row in self.rows[first:end]:
            lines.append(repr(row))
            if row.dropped:
                lines.append('%s<%d more kind%s of referrers: max_children>'
                             % (' ' * (10 + row.depth), row.dropped,
                                's' if row.dropped != 1 else ''))
        n = len(self.rows)
        if first >= n:
            lines.append('<No more rows>')
        elif end < n:
            lines.append("<%d more rows. Type e.g. '_.more' to view.>"
                         % (n - end))
        elif self.truncated:
            lines.append('<pattern cut at %d rows (max_rows=%d; '
                         'get_rp(max_rows=...) makes more)>'
                         % (n, self.max_rows))
        return '\n'.join(lines)

    # --- paths from a row to the set

    def paths(self, key, extended=True, andsets=(), variant=2):
        """Heapy's rp.paths(key): how the objects of row `key` (a name or
        number) refer, row by row, to the objects of the set (row '_'),
        one line per reference (an annex.RefPatPaths). andsets restricts
        the rows' objects: a dict {row name: IdSet or kind} or a sequence
        from row `key` upwards (None: no restriction). Read in one heap
        question: nothing is made in the target. `extended` is Heapy's
        option of its first variant, which Annex does not draw."""
        if variant != 2:
            raise ValueError('rp.paths(variant=%r): only Heapy\'s default '
                             'variant 2 is drawn' % (variant,))
        row = self.get_row(key)
        chain = []
        while row is not None:
            chain.append(row)
            row = None if row.parent is None else self.rows[row.parent]
        names = [r.name for r in chain]
        if isinstance(andsets, dict):
            for name in andsets:
                if name not in names:
                    raise ValueError('andsets names row %r, which is not on '
                                     'the path from %r to %r'
                                     % (name, names[0], '_'))
            restrict = [andsets.get(name) for name in names]
        elif isinstance(andsets, (tuple, list)):
            if len(andsets) > len(chain):
                raise ValueError('andsets argument is too long: the path '
                                 'from %r has %d rows' % (names[0],
                                                          len(chain)))
            restrict = list(andsets) + [None] * (len(chain) - len(andsets))
        else:
            raise TypeError('andsets argument must be dict, tuple, or list')
        sets = [r.set if a is None else r.set & a
                for r, a in zip(chain, restrict)]
        links, last = self.target._rp_links(sets)
        return RefPatPaths(chain, sets, links, last)


class RefPatPaths(Paged):
    """rp.paths(key) (Heapy's Paths of a reference pattern, its variant 2):
    one line per reference from an object of row `key` to one of the row
    above, down to the set's objects (row '_'), which end with their
    brief: `n: row [i] @ ['k']` is the reference ['k'] from object i of
    that row (in address order) to the object on the next line; `-> #m`
    an object already followed on line m. Ten lines a page: .more, .all.
    """

    def __init__(self, chain, sets, links, last):
        self.source = chain[0].name
        self._text = self._draw(chain, sets, links, dict(last))

    @staticmethod
    def _draw(chain, sets, links, last):
        # References out of each object, per pair of rows, by address.
        out = []
        for pair in links:
            by_from = {}
            for frm, to, text in pair:
                by_from.setdefault(frm, []).append((to, text))
            out.append(by_from)
        name_width = max(len(r.name) for r in chain)
        count_width = max(len(str(r.count)) for r in chain)
        top = chain[0].depth
        lines = []
        seen = {}

        def label(k, index):
            row = chain[k]
            idx = '[%d]' % index
            text = row.name + ' ' * max(
                0, 3 + count_width + name_width - len(row.name) - len(idx))
            return text + idx + ' ' * (top + 1 - row.depth)

        def draw(k, address, index):
            seen[(address, k)] = len(lines)
            sidx = label(k, index)
            if k == len(chain) - 1:
                lines.append('%2s: %s= %s' % (
                    len(lines), sidx, last.get(address, '%#x' % address)))
                return
            targets = sorted(out[k].get(address, ()))
            for i, (to, text) in enumerate(targets):
                line = '%2s: %s@ %s' % (len(lines), sidx, text)
                earlier = seen.get((to, k + 1))
                if earlier is not None:
                    lines.append(line + ' -> #%d' % earlier)
                else:
                    lines.append(line)
                    draw(k + 1, to, i)

        # The source row's members with a reference up (row '_': its own).
        members = sorted(out[0]) if out else sorted(last)
        for i, address in enumerate(members):
            draw(0, address, i)
        return lines

    def __len__(self):
        return len(self._text)

    def _count(self):
        return len(self._text)

    def _lines(self, first, end):
        lines = []
        if first == 0:
            lines.append('Paths from source %r to target %r.'
                         % (self.source, '_'))
        if not self._text:
            lines.append('(no reference from the row\'s live objects to '
                         'the set)')
        lines.extend(self._text[first:end])
        n = len(self._text)
        if end < n:
            lines.append("<%d more lines. Type e.g. '_.more' to view.>"
                         % (n - end))
        return '\n'.join(lines)

