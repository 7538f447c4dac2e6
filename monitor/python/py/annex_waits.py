"""Interruptible waits for the annex (never run in the target).

Run in the annex by annex_waits_watch.py when the annex first imports one
of the modules below; `slice_seconds` is set in the namespace first.

A blocking wait in C (a lock's acquire, a socket's poll, select, waitpid)
retries after EINTR and never returns to Python on a thread that is not
main, so the annex's yield hook could not end it. These waits wait in
slices instead: between two slices Python code runs, the hook sees an
Interrupt() and raises KeyboardInterrupt. Only the annex's own modules are
changed (the target's are other objects). Locks become instances of a
Python class (so isinstance(x, _thread.LockType) is False for them in the
annex).
"""
import _thread, time
_real_allocate = _thread.allocate_lock
_monotonic = time.monotonic


def _steps(timeout):
    """Slice lengths (seconds) until `timeout` seconds (None: forever)
    have passed; the last one may be 0."""
    end = None if timeout is None else _monotonic() + max(timeout, 0)
    while True:
        if end is None:
            yield slice_seconds
            continue
        left = end - _monotonic()
        if left <= slice_seconds:
            yield max(left, 0)
            return
        yield slice_seconds


class lock:
    """A lock whose blocking acquire waits in slices (interruptible)."""
    __slots__ = ('_lock', '__weakref__')

    def __init__(self):
        self._lock = _real_allocate()

    def acquire(self, blocking=True, timeout=-1):
        if (not blocking or 0 <= timeout <= slice_seconds or
                (timeout < 0 and timeout != -1)):
            return self._lock.acquire(blocking, timeout)  # or its error
        end = None if timeout < 0 else _monotonic() + timeout
        while True:
            step = slice_seconds
            if end is not None:
                step = min(step, end - _monotonic())
                if step <= 0:
                    return self._lock.acquire(False)
            if self._lock.acquire(True, step):
                return True

    acquire_lock = acquire
    __enter__ = acquire

    def release(self):
        self._lock.release()

    release_lock = release

    def __exit__(self, *exc):
        self._lock.release()

    def locked(self):
        return self._lock.locked()

    locked_lock = locked

    def _at_fork_reinit(self):
        self._lock._at_fork_reinit()

    def __repr__(self):
        return '<annex interruptible %r>' % (self._lock,)


def before_threading():
    # threading's body copies _thread.allocate_lock into its globals.
    _thread.allocate_lock = lock


def after_threading(threading):
    threading._allocate_lock = lock
    threading.Lock = lock
    threading._CRLock = None  # threading.RLock: Python's, on `lock`


def after_select(select):
    """select.select, select.poll and select.epoll wait in slices. Runs
    before `selectors` (imported by socket and subprocess) binds poll and
    epoll, so its selectors use these too."""
    real_select = select.select

    def sliced_select(rlist, wlist, xlist, timeout=None):
        if timeout is not None and timeout <= slice_seconds:
            return real_select(rlist, wlist, xlist, timeout)
        for step in _steps(timeout):
            r, w, x = real_select(rlist, wlist, xlist, step)
            if r or w or x:
                return r, w, x
        return [], [], []

    sliced_select.__name__ = 'select'
    sliced_select.__doc__ = real_select.__doc__
    select.select = sliced_select

    real_poll = select.poll

    class _Registry:
        """What poll and epoll objects share: the registered fds, passed
        on to the real object in `_real`."""
        __slots__ = ()

        def register(self, fd, eventmask=None):
            if eventmask is None:
                return self._real.register(fd)
            return self._real.register(fd, eventmask)

        def modify(self, fd, eventmask):
            return self._real.modify(fd, eventmask)

        def unregister(self, fd):
            return self._real.unregister(fd)

    class poll(_Registry):
        """select.poll whose poll() waits in slices (interruptible)."""
        __slots__ = ('_real',)

        def __init__(self):
            self._real = real_poll()

        def poll(self, timeout=None):
            # milliseconds; None or negative: forever
            if timeout is not None and 0 <= timeout <= slice_seconds * 1000:
                return self._real.poll(timeout)
            seconds = None if timeout is None or timeout < 0 else timeout / 1000
            for step in _steps(seconds):
                ready = self._real.poll(int(step * 1000))
                if ready:
                    return ready
            return []

    select.poll = poll

    real_epoll = getattr(select, 'epoll', None)
    if real_epoll is None:
        return

    class epoll(_Registry):
        """select.epoll whose poll() waits in slices (interruptible)."""
        __slots__ = ('_real', '__weakref__')

        def __init__(self, sizehint=-1, flags=0):
            self._real = real_epoll(sizehint, flags)

        @classmethod
        def fromfd(cls, fd):
            self = cls.__new__(cls)
            self._real = real_epoll.fromfd(fd)
            return self

        @property
        def closed(self):
            return self._real.closed

        def close(self):
            self._real.close()

        def fileno(self):
            return self._real.fileno()

        def poll(self, timeout=None, maxevents=-1):
            # seconds; None or negative: forever
            if timeout is not None and 0 <= timeout <= slice_seconds:
                return self._real.poll(timeout, maxevents)
            seconds = None if timeout is None or timeout < 0 else timeout
            for step in _steps(seconds):
                ready = self._real.poll(step, maxevents)
                if ready:
                    return ready
            return []

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

    select.epoll = epoll


def after_socket(socket):
    import select  # socket imported it already (through selectors)
    base = socket.socket
    wait_in = select.POLLIN | select.POLLERR | select.POLLHUP
    wait_out = select.POLLOUT | select.POLLERR | select.POLLHUP

    def wait(sock, events):
        if sock.gettimeout() is not None or sock.fileno() < 0:
            return
        poller = select.poll()
        poller.register(sock, events)
        while not poller.poll(int(slice_seconds * 1000)):
            pass

    def waiting(name, events):
        method = getattr(base, name)
        def call(self, *args, **kwargs):
            wait(self, events)
            return method(self, *args, **kwargs)
        call.__name__ = name
        call.__doc__ = method.__doc__
        return call

    for name in ('recv', 'recv_into', 'recvfrom', 'recvfrom_into',
                 'recvmsg', 'recvmsg_into', 'accept'):
        setattr(base, name, waiting(name, wait_in))
    for name in ('send', 'sendall', 'sendto', 'sendmsg'):
        setattr(base, name, waiting(name, wait_out))


def after_subprocess(subprocess):
    """A blocking os.waitpid (Popen.wait() without a timeout, run, call)
    polls in slices with WNOHANG instead."""
    import os
    real_waitpid = os.waitpid
    no_hang = os.WNOHANG

    def waitpid(pid, options):
        if options & no_hang:
            return real_waitpid(pid, options)
        while True:
            done = real_waitpid(pid, options | no_hang)
            if done != (0, 0):
                return done
            time.sleep(slice_seconds)  # the annex's: interruptible

    waitpid.__doc__ = real_waitpid.__doc__
    os.waitpid = waitpid


def after_ssl(ssl):
    """A blocking TLS socket's reads and handshake run with the socket
    timeout set to a slice, and retry after each slice: OpenSSL keeps the
    partial state, and Python code runs between tries."""
    cls = ssl.SSLSocket

    def sliced(name):
        method = getattr(cls, name)

        def call(self, *args, **kwargs):
            if self.gettimeout() is not None:
                return method(self, *args, **kwargs)
            self.settimeout(slice_seconds)
            try:
                while True:
                    try:
                        return method(self, *args, **kwargs)
                    except TimeoutError:
                        continue
            finally:
                self.settimeout(None)
        call.__name__ = name
        call.__doc__ = method.__doc__
        return call

    for name in ('recv', 'recv_into', 'read', 'do_handshake'):
        setattr(cls, name, sliced(name))
