"""A target that churns awkward objects on 8 threads, for soak tests.

Usage: churn_workload.py HEARTBEAT_PATH
Writes "tick time allocations alive_threads" to HEARTBEAT_PATH every 0.1 s
and exits 0 once HEARTBEAT_PATH + ".stop" exists.

The mix is the one that crashed a host before roots were read in place:
frame objects kept from deep recursion, suspended generators (and
generators created while finalizers run), weakref callbacks and finalizers,
__del__ that resurrects, objects whose dunder methods raise or lie, a
metaclass whose __name__ raises, classes made at run time, and collections
started by the program itself. Every 2 s a thread also frees a chain of
200 000 nested lists, tuples or dicts (directly, or through the gc from a
cycle): CPython frees such a chain through its trashcan, which a wrapped
deallocator of the death watch once disabled (the host then overflowed its
C stack; asked questions such as since_ref arm the watch here).
"""
import gc
import os
import random
import sys
import threading
import time
import weakref

path = sys.argv[1]
stop = False
counters = [0] * 8
resurrected = []


class Plain:
    def __init__(self, i):
        self.i = i
        self.d = {"k": i}
        self.l = [i, str(i)]


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a):
        self.a = a
        self.b = (a,)


class Raiser:
    def __eq__(self, o): raise RuntimeError("eq raises")
    def __hash__(self): raise RuntimeError("hash raises")
    def __getattr__(self, n): raise RuntimeError("getattr raises " + n)

    def __getattribute__(self, n):
        if n in ("__class__", "__dict__"):
            return object.__getattribute__(self, n)
        raise RuntimeError("getattribute raises " + n)

    def __repr__(self): raise RuntimeError("repr raises")
    def __sizeof__(self): raise RuntimeError("sizeof raises")
    def __len__(self): raise RuntimeError("len raises")


class LyingSizeof:
    def __sizeof__(self): return -5


class HugeSizeof:
    def __sizeof__(self): return 2 ** 62


class Lazarus:
    def __init__(self, i):
        self.i = i
        self.cycle = self

    def __del__(self):
        if len(resurrected) < 1000:
            resurrected.append(self)
        elif resurrected:
            resurrected.pop(0)


class GenInDel:
    """Creates and advances a generator from inside a finalizer."""
    def __init__(self):
        self.cycle = self

    def __del__(self):
        g = gen(3)
        next(g)


class WeirdMeta(type):
    def __getattribute__(cls, n):
        if n == "__name__":
            raise RuntimeError("meta name raises")
        return type.__getattribute__(cls, n)

    def __repr__(cls): raise RuntimeError("meta repr raises")


class WeirdClass(metaclass=WeirdMeta):
    pass


def gen(n):
    x = [n] * 3
    for i in range(n):
        yield i, x


def deep(n):
    if n == 0:
        time.sleep(0.001)
        return sys._getframe()
    local_obj = Plain(n)
    return deep(n - 1)


def cb(ref):
    pass


class ChainCycle:
    pass


def chain(rnd):
    """Builds a deep chain of nested containers and frees it."""
    kind = rnd.randrange(3)
    x = None
    for _ in range(200000):
        x = [x] if kind == 0 else (x,) if kind == 1 else {"k": x}
    if rnd.random() < 0.5:
        c = ChainCycle()
        c.me = c
        c.chain = x
        del c
    del x


def worker(k):
    rnd = random.Random(k)
    keep = []
    next_chain = time.time() + 1
    while not stop:
        r = rnd.random()
        if r < 0.15:
            keep.append({str(i): [i] * 3 for i in range(rnd.randrange(50))})
        elif r < 0.3:
            keep.append([Plain(i) for i in range(rnd.randrange(50))])
        elif r < 0.4:
            keep.append([Slotted(i) for i in range(rnd.randrange(50))])
        elif r < 0.5:
            g = gen(100)
            next(g)
            keep.append(g)
        elif r < 0.55:
            keep.append(deep(rnd.randrange(30)))
        elif r < 0.65:
            o = Plain(k)
            keep.append((o, weakref.ref(o, cb), weakref.finalize(o, cb, None)))
        elif r < 0.72:
            for i in range(20):
                Lazarus(i)
            GenInDel()
        elif r < 0.8:
            keep.append([Raiser(), LyingSizeof(), HugeSizeof(), WeirdClass()])
        elif r < 0.85:
            cls = type("Dyn%d" % rnd.randrange(1000), (Plain,), {"x": rnd.random()})
            keep.append(cls(1))
        elif r < 0.97:
            s = set(range(rnd.randrange(100)))
            keep.append(s)
            keep.append(frozenset(s))
        else:
            del keep[: rnd.randrange(40)]
        if len(keep) > 2500:
            del keep[:1250]
        if rnd.random() < 0.001:
            gc.collect()
        if k == 0 and time.time() >= next_chain:
            chain(rnd)
            next_chain = time.time() + 2
        counters[k] += 1
        if counters[k] % 200 == 0:
            time.sleep(0.001)


threads = [threading.Thread(target=worker, args=(k,), name="churn-%d" % k,
                            daemon=True) for k in range(8)]
for t in threads:
    t.start()
tick = 0
while not os.path.exists(path + ".stop"):
    tick += 1
    with open(path + ".tmp", "w") as f:
        f.write("%d %.3f %d %d\n" % (tick, time.time(), sum(counters),
                                     sum(t.is_alive() for t in threads)))
    os.replace(path + ".tmp", path)
    time.sleep(0.1)
stop = True
for t in threads:
    t.join()
