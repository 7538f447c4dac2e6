"""The files of annex.Stat: dump() and to_json() write, hp.load() and
hp.loadall() read.

Compiled into the binary (//tools:embed_file.bzl) and run by
glue/module/hp_stat.cc in the annex, never in the target, when the `annex` module
is made, in a namespace of its own that holds `type_name` (a type's name as
CPython's messages give it). This file only moves text: what a record is
(its text, the parser and its line and record limits, StatReader in
glue/stat.h) stays in C++, which reads the chunks these functions yield and
stops taking them when it has what it needs or a limit is passed.

Paths may be str, bytes or os.PathLike; errors are the usual OSError
subclasses, naming the path; the GIL is released while the file system
works (io and os release it). Texts are UTF-8; bytes that are not (a type
name from C) travel as surrogateescape, so every kind reads back exactly.
"""

import errno
import io
import os
import stat

CHUNK = 64 << 10  # bytes or characters per read, so memory stays bounded


def _has(obj, name):
    """Whether `obj` has attribute `name`; an attribute that fails is none."""
    try:
        getattr(obj, name)
    except Exception:
        return False
    return True


def _is_open_file(obj, method):
    return not isinstance(obj, (str, bytes)) and _has(obj, method)


def _write_to(f, text):
    """Writes `text` to an open file: as str, or as UTF-8 to a binary one."""
    try:
        f.write(text)
    except TypeError:
        f.write(text.encode('utf-8', 'surrogateescape'))


def write_text(dest, text, mode, what):
    """Appends (mode 'a') or writes (mode 'w') `text` to `dest`.

    `dest` is a path or an open file (written as it is, not closed); a path
    is opened in text mode, UTF-8 with surrogateescape, no newline
    translation, and created with the process's own permissions. `what`
    names the method in messages.
    """
    if _is_open_file(dest, 'write'):
        _write_to(dest, text)
        return
    try:
        path = os.fspath(dest)
    except Exception:
        raise TypeError(
            f'{what}() takes a path (str, bytes, os.PathLike) or an open '
            f'file, not {type_name(dest):.100}') from None
    f = io.open(path, mode, encoding='utf-8', errors='surrogateescape',
                newline='')
    try:
        _write_to(f, text)
    except BaseException:
        # The write's error is the one raised, not the close's.
        try:
            f.close()
        except Exception:
            pass
        raise
    f.close()


def _calls(read):
    """read(CHUNK), again and again: the caller stops at an empty result."""
    while True:
        yield read(CHUNK)


def record_lines(source):
    """For load(f) of an open file: its lines, or None for other sources.

    The lines come from f.readline(CHUNK), so the file is left just after
    the record that load() takes.
    """
    if isinstance(source, (str, bytes)):
        return None
    if _has(source, 'readline'):
        return _calls(source.readline)
    if _has(source, 'read'):
        raise TypeError(
            f'load() reads an open file one record at a time with '
            f'readline(), which {type_name(source):.100} lacks; '
            f'hp.loadall(f) reads it whole')
    return None


def load_source(source, special):
    """(where, chunks) of a load()/loadall() source that is no dump text.

    An open file gives what it has left to read; anything else is a path,
    whose file path_chunks() reads. `where` names it in messages.
    """
    if _is_open_file(source, 'read'):
        return 'the file', _calls(source.read)
    try:
        path = os.fspath(source)
    except Exception:
        raise TypeError(
            "load() takes a path (str, bytes, os.PathLike), an open file, "
            "or the text of a dump (starting '.loader:'), not "
            f'{type_name(source):.100}') from None
    try:
        where = repr(path)
    except Exception:
        where = 'the input'
    return where, path_chunks(path, special)


_SPECIAL_KINDS = (
    (stat.S_ISCHR, 'a character device'),
    (stat.S_ISBLK, 'a block device'),
    (stat.S_ISFIFO, 'a FIFO (named pipe)'),
    (stat.S_ISSOCK, 'a socket'),
)


def _file_kind(mode):
    """What a file is, for messages about files load() refuses."""
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return kind
    return 'not a regular file'


def path_chunks(path, special):
    """The bytes of the file at `path` (str or bytes), CHUNK at a time.

    Only a regular file, unless `special` (devices and FIFOs never end, or
    end when someone else decides). Opened with O_NONBLOCK, so that a FIFO
    without a writer is refused instead of blocking the annex. The file is
    closed when the chunks end or are closed.
    """
    # Refused here, as CPython's path conversion words it (os.open's own
    # message differs between versions); os.open names `path` in its
    # OSError.
    if b'\0' in os.fsencode(path):
        raise ValueError('embedded null byte')
    fd = os.open(path,
                 os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        try:
            mode = os.fstat(fd).st_mode
        except OSError as e:
            raise OSError(e.errno, e.strerror, path) from None
        if stat.S_ISDIR(mode):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(mode):
            if not special:
                raise ValueError(
                    f'load(): {path!r} is {_file_kind(mode)}, not a regular '
                    f'file; load(..., special=True) reads it anyway '
                    f'(bounded: stops at the first line or record past the '
                    f'limits)')
            try:
                os.set_blocking(fd, True)  # reads block, as asked for
            except OSError:
                pass
        while True:
            try:
                data = os.read(fd, CHUNK)
            except OSError as e:
                raise OSError(e.errno, e.strerror, path) from None
            yield data
            if not data:
                return
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
