# The leaky application of the retention tests, run once in the target's
# __main__ (tests/hp/test_retention.py through annex_test.target_exec,
# tests/glue/hp_retention_test.cc through RunTargetCode): module `leakmod`
# holds the leaks; a thread of module `sleepmod` (whose globals hold none
# of them, so its frames give no shortcut) sleeps with a local.
#
# Sizes count an instance's attribute values block, which sys.getsizeof
# leaves out: `values_block` measures it independently, as what the
# allocator gives a new instance beyond sys.getsizeof. On 3.11/3.12 a
# class's first ~30 instances get larger blocks than later ones, so the
# classes whose sizes are checked make 64 instances first (`_warm`).
#
# The threads it starts stop when the target ends (atexit), not after a
# test: the Python driver runs tearDownModule after every test.
import sys, types
def values_block(make):
    import tracemalloc
    tracemalloc.start()
    o = make()
    n = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return n - sys.getsizeof(o)
def _module(name, source):
    m = types.ModuleType(name)
    sys.modules[name] = m
    exec(source, m.__dict__)
    return m

_module('leakmod', '''
import sys

class ModuleLeak:
    pass

class ClosureLeak:
    pass

class ClassAttrLeak:
    pass

class Handler:
    pass

class Config:
    cache = ClassAttrLeak()

class Node:
    __slots__ = ('peer', 'blob')

class Leaf:
    pass

class PlantedList(list):
    __slots__ = ()

class Twice:
    pass

class Thrice:
    pass

def _warm(c):
    for i in range(64):
        c()
_warm(ModuleLeak)
_warm(Leaf)
del _warm

def make_handler():
    cache = ClosureLeak()
    def handler():
        return cache
    return handler

registry = {'handlers': [Handler() for i in range(5)]}
registry['handlers'][3].cache = ModuleLeak()
alias = {'deep': {'deeper': registry['handlers']}}   # the longer route
handler = make_handler()

a, b = Node(), Node()
a.peer, b.peer = b, a
a.blob, b.blob = bytearray(300), bytearray(700)
keep = a
del a, b
cycle_size = sum(sys.getsizeof(o) for o in
                 [keep, keep.peer, keep.blob, keep.peer.blob])

plist = PlantedList([Leaf(), Leaf(), 'x' * 1000, 12345678901])
held_by = [plist]

_t = Twice()
two_ways = {'first': _t, 'second': [_t]}
_t = Thrice()
three_ways = {'a': [_t], 'b': [_t], 'c': [_t]}
del _t
''')

_module('sleepmod', '''
import threading, time

class SleepLocal:
    pass

stop = False
ready = threading.Event()

def sleeper():
    x = SleepLocal()
    ready.set()
    while not stop:
        time.sleep(0.002)

thread = threading.Thread(target=sleeper, daemon=True)
thread.start()
ready.wait()
''')

# Diamonds: `big` reaches its DiamondEnd by 2**100 shortest paths (each
# diamond [[x], [x]] doubles them), `small` its SmallEnd by 8, and `alt` by
# a longer route of 10 lists.
_module('diamod', '''
class DiamondEnd:
    pass

class SmallEnd:
    pass

def diamonds(k, end):
    x = end
    for i in range(k):
        x = [[x], [x]]
    return x

def nested(k, end):
    x = end
    for i in range(k):
        x = [x]
    return x

big = diamonds(100, DiamondEnd())
small = diamonds(3, SmallEnd())
alt = nested(10, small[0][0][0][0][0][0])
''')

# Module code running in a thread: frames 0 (wait) and 1 (the module's
# code) both hold its globals (frame 1 as f_locals too). `frmod` is a module
# in sys.modules; `nsmod`'s globals are a plain dict. Nothing else holds
# either dict (the thread's job is taken before exec runs).
import threading
class _ModuleThread(threading.Thread):
    def __init__(self, code, g):
        super().__init__(daemon=True)
        self._job = (code, g)
    def _take(self):
        job, self._job = self._job, None
        return job
    def run(self):
        exec(*self._take())

_MODULE_CODE = '''
import time
class Held:
    pass
held = Held()
def wait():
    ready.set()
    while not stop:
        time.sleep(0.002)
wait()
'''

def _run_in_thread(name, g):
    g.update(ready=threading.Event(), stop=False)
    t = _ModuleThread(compile(_MODULE_CODE, name + '.py', 'exec'), g)
    t.start()
    g['ready'].wait()
    return t

_frmod = types.ModuleType('frmod')
sys.modules['frmod'] = _frmod
frmod_thread = _run_in_thread('frmod', _frmod.__dict__)
_ns = {'__name__': 'nsmod'}
ns_thread = _run_in_thread('nsmod', _ns)
del _frmod

# A thread running a module's function: threading's frames hold the
# Thread (`self`), whose `_target` is the function, whose `__globals__`
# is the module's dict; as short a way into that dict as sys.modules'.
_tg = types.ModuleType('tgtmod')
sys.modules['tgtmod'] = _tg
exec('''
import threading, time
class Held:
    pass
held = [Held()]
ready = threading.Event()
stop = False
def work():
    ready.set()
    while not stop:
        time.sleep(0.002)
thread = threading.Thread(target=work, daemon=True)
thread.start()
ready.wait()
''', _tg.__dict__)
del _tg

def _retention_stop():
    sys.modules['sleepmod'].stop = True
    sys.modules['sleepmod'].thread.join()
    sys.modules['frmod'].stop = _ns['stop'] = True
    frmod_thread.join()
    ns_thread.join()
    sys.modules['tgtmod'].stop = True
    sys.modules['tgtmod'].thread.join()

import atexit
atexit.register(_retention_stop)
del atexit
