"""A small Python "service" to attach the Annex console to.

Run it with the monitor on:

    annex run --allow-exec-target examples/console/service.py

Two worker threads ("fetcher-1", "fetcher-2") fill a cache that only grows;
a "janitor" thread pretends to look after it. A worker that gets
KeyboardInterrupt (`.interrupt fetcher-1` in `annex attach`) says so and
ends; the rest go on. Ctrl-C (SIGINT) stops the service; so does the end of
the optional run time in seconds given as the first argument.
"""

import os
import sys
import threading
import time

cache = {}  # (worker name, n) -> payload; grows for as long as it runs
stop = threading.Event()


def fetch_prices(name):
    """A worker: "fetches" a price every 10 ms into the cache."""
    n = 0
    try:
        while not stop.is_set():
            n += 1
            cache[(name, n)] = "price-%d" % n * 8
            time.sleep(0.01)
    except KeyboardInterrupt:
        print(f"service: {name} got KeyboardInterrupt after {n} fetches, "
              "stopping", flush=True)


def janitor():
    """Wakes up now and then and does nothing useful (the leak stays)."""
    while not stop.wait(0.5):
        pass


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3600.0
    threads = [threading.Thread(target=fetch_prices, args=(f"fetcher-{i}",),
                                name=f"fetcher-{i}") for i in (1, 2)]
    threads.append(threading.Thread(target=janitor, name="janitor"))
    for t in threads:
        t.start()
    print(f"service: pid {os.getpid()} running "
          f"{', '.join(t.name for t in threads)}", flush=True)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(0.1)
    except KeyboardInterrupt:
        print("service: Ctrl-C, shutting down", flush=True)
    stop.set()
    for t in threads:
        t.join()
    print(f"service: stopped with {len(cache)} cache entries", flush=True)


if __name__ == "__main__":
    main()
