"""A small service for the README's demo: worker threads fill a cache that
is never evicted (a slow leak), and the program runs until told to stop.

    annex run examples/demo/service.py [STOP_FILE]
"""
import os
import sys
import threading
import time

STOP = sys.argv[1] if len(sys.argv) > 1 else None
registry = {"handlers": [], "cache": {}}


class Session:
    def __init__(self, n):
        self.n = n
        self.payload = "x" * 100


def handle_requests():
    n = 0
    while not (STOP and os.path.exists(STOP)):
        registry["cache"][n] = Session(n)   # never evicted
        n += 1
        time.sleep(0.002)


workers = [threading.Thread(target=handle_requests, name=f"worker-{i}")
           for i in range(2)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(f"service stopped with {len(registry['cache'])} cached sessions")
