# A worker thread loops forever in Python while the main thread waits for it,
# waking up now and then. The watchdog's exception action ends the loop with
# TimeoutError; the program then prints ['stopped'] and exits normally
# (tests/cli:run_watchdog_flags_test). Without that action it runs until the
# test's timeout: no deadline of its own, which a loaded machine could pass.
import threading
import time

outcome = []


def runaway():
    n = 0
    try:
        while True:
            n += 1
    except TimeoutError:
        outcome.append("stopped")


t = threading.Thread(target=runaway)
t.start()
while t.is_alive():
    time.sleep(1)
print(outcome)
