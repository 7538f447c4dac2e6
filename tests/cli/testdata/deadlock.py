# The main thread takes a Lock it already holds: blocked for good, without
# the GIL (tests/cli:run_watchdog_flags_test).
import threading

lock = threading.Lock()


def deadlock():
    with lock:
        with lock:
            pass


deadlock()
