"""Soak: asks heap questions of every kind of a churning target under
`annex run` and fails on any crash, hang or internal error.

Usage:
  soak.py --annex PATH [--questions N] [--kinds k1,k2] [--hang-seconds S]
          [--workload PATH] [--dir DIR]

Starts `annex run WORKLOAD HEARTBEAT`, waits for its first heartbeat, then
asks N questions round-robin over the kinds through `annex exec PID CODE`
(the console's own path). A question fails when `annex exec` exits non-zero
(the annex raised: an internal error, never expected here), does not answer
within --hang-seconds (a hang: generous, a loaded machine must not trip
it), or the target is gone afterwards. At the end the target is asked to
stop and must exit 0. Prints one line per failure, then one JSON summary
line; exits 0 only when every question answered and the target survived.
Runs with any Python 3 (it only drives processes).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# A random row of the current heap, small enough that per-row questions stay
# cheap (the churn keeps hundreds of thousands of objects).
ROW = ("import random\n"
       "h = hp.heap()\n"
       "rows = [i for i, (_, count, _) in enumerate(h.stat.rows)\n"
       "        if count <= 2000] or [0]\n"
       "i = random.choice(rows)\n"
       "r = h[i]\n")
QUESTIONS = {
    "heap": "h = hp.heap()\nprint(h.count, h.size)\nprint(h)\n",
    "bytype": "print(hp.heap().bytype)\n",
    "byrcs": "print(hp.heap().byrcs)\n",
    "byvia": "print(hp.heap().byvia)\n",
    "heapu": "u = hp.heapu()\nprint(u.count, u.size)\nprint(u)\n",
    "sp": ROW + "print('row', i, r.count, r.kind)\nprint(r.sp)\n",
    "shpaths": ROW + "print(r.get_shpaths(limit=0).numpaths)\n",
    "domisize": ROW + "print('row', i, r.count, r.size, 'domisize', r.domisize)\n",
    "referrers": ROW + "print(r.referrers.count, r.referents.count)\n",
    "dominos": ROW + "print(r.dominos.count)\n",
    "setref": "hp.setref()\nprint(hp.heap().count)\n",
    "threads": "print(hp.threads())\nprint(hp.stacks())\n",
}


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def heartbeat(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--annex", required=True)
    p.add_argument("--questions", type=int, default=len(QUESTIONS) * 6)
    p.add_argument("--kinds", default=",".join(QUESTIONS))
    p.add_argument("--hang-seconds", type=float, default=600)
    p.add_argument("--workload", default=os.path.join(HERE, "churn_workload.py"))
    p.add_argument("--dir", default=None)
    args = p.parse_args()
    kinds = args.kinds.split(",")
    for k in kinds:
        if k not in QUESTIONS:
            sys.exit("unknown kind %r; known: %s" % (k, ",".join(QUESTIONS)))
    work = args.dir or tempfile.mkdtemp(prefix="annex-soak-")
    hb = os.path.join(work, "heartbeat")
    log = open(os.path.join(work, "target.log"), "w")
    target = subprocess.Popen([args.annex, "run", args.workload, hb],
                              stdout=log, stderr=subprocess.STDOUT)
    failures = []
    counts = {k: 0 for k in kinds}
    seconds = {k: 0.0 for k in kinds}
    started = time.time()
    # The first heartbeat: the program runs and its annex has started.
    while heartbeat(hb) == 0:
        if target.poll() is not None:
            failures.append("target exited with %s before its first heartbeat"
                            % target.returncode)
            break
        time.sleep(0.05)
    first_tick = heartbeat(hb)
    asked = 0
    for n in range(args.questions if not failures else 0):
        kind = kinds[n % len(kinds)]
        t0 = time.time()
        try:
            r = subprocess.run([args.annex, "exec", str(target.pid),
                                QUESTIONS[kind]],
                               capture_output=True, text=True, errors="replace",
                               timeout=args.hang_seconds)
            if r.returncode != 0:
                failures.append("question %d (%s): exit %d: %s" % (
                    n, kind, r.returncode,
                    (r.stderr + r.stdout)[-600:].replace("\n", " | ")))
        except subprocess.TimeoutExpired:
            failures.append("question %d (%s): no answer in %.0f s (hang)"
                            % (n, kind, args.hang_seconds))
        asked += 1
        counts[kind] += 1
        seconds[kind] += time.time() - t0
        if target.poll() is not None or not alive(target.pid):
            failures.append("target died after question %d (%s): status %s"
                            % (n, kind, target.poll()))
            break
        if failures and len(failures) >= 5:
            break
    last_tick = heartbeat(hb)
    if target.poll() is None:
        open(hb + ".stop", "w").close()
        try:
            target.wait(timeout=args.hang_seconds)
        except subprocess.TimeoutExpired:
            failures.append("target did not stop within %.0f s" % args.hang_seconds)
            target.kill()
            target.wait()
        if target.returncode != 0:
            failures.append("target exited with status %s" % target.returncode)
    log.close()
    if last_tick <= first_tick and asked > 0:
        failures.append("the target's heartbeat did not advance (%d)" % last_tick)
    for f in failures:
        print("FAIL", f, flush=True)
    print(json.dumps({"soak": "churn", "questions": asked, "by_kind": counts,
                      "seconds_by_kind": {k: round(v, 1)
                                          for k, v in seconds.items()},
                      "failures": len(failures),
                      "heartbeats": last_tick - first_tick,
                      "seconds": round(time.time() - started, 1),
                      "target_status": target.returncode,
                      "dir": work}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
