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
# cheap (the churn keeps hundreds of thousands of objects). The rows are
# taken from one look at the set (h.parts): a kept set answers for its live
# members only, so its rows change as the target runs, and an index read
# from an earlier table (h.stat) may no longer exist.
ROW = ("import random\n"
       "h = hp.heap()\n"
       "parts = h.parts\n"
       "r = random.choice([p for p in parts if p.count <= 2000] or parts)\n")
# A kept row asked again after the target ran: the members that died in
# between are no longer counted, and its paths, referrers and retained size
# are those of the live members. x.count + x.dead is the same at any moment
# (the members seen), but the two attributes are read one after the other
# and members may die in between: dead read before count gives at most that
# total, count read before dead at least.
KEPT_AGAIN = ("d0 = {x}.dead\n"
              "n0 = {x}.count\n"
              "time.sleep(0.3)\n"
              "n1 = {x}.count\n"
              "d1 = {x}.dead\n"
              "assert n1 <= n0 and d1 >= d0 and n1 + d1 >= n0 + d0, "
              "(d0, n0, n1, d1)\n")
STALE_ROW = ROW + "import time\n" + KEPT_AGAIN.format(x="r")
QUESTIONS = {
    "heap": "h = hp.heap()\nprint(h.count, h.size)\nprint(h)\n",
    "bytype": "print(hp.heap().bytype)\n",
    "byrcs": "print(hp.heap().byrcs)\n",
    "byvia": "print(hp.heap().byvia)\n",
    "heapu": "u = hp.heapu()\nprint(u.count, u.size)\nprint(u)\n",
    "sp": ROW + "print(r.count, r.brief)\nprint(r.sp)\n",
    "shpaths": ROW + "print(r.get_shpaths(limit=0).numpaths)\n",
    "domisize": ROW + "print(r.count, r.size, 'domisize', r.domisize)\n",
    "referrers": ROW + "print(r.referrers.count, r.referents.count)\n",
    "dominos": ROW + "print(r.dominos.count)\n",
    "setref": "hp.setref()\nprint(hp.heap().count)\n",
    # Identity under churn (the death watch): objects new since a reference
    # point, while the target frees and reuses the addresses of objects of
    # the reference point. No object of the reference point still alive is
    # new; the reference point set from a kept set answers the same way.
    "since_ref": ("import time\n"
                  "hp.setref()\n"
                  "time.sleep(0.3)\n"
                  "new = hp.heap()\n"
                  "print(new.count, new.size)\n"
                  "print(new)\n"
                  "hp.clearref()\n"),
    "ref_from_set": ("import time\n"
                     "ref = hp.heap()\n"
                     "hp.setref(reachable=ref)\n"
                     "time.sleep(0.3)\n"
                     "new = hp.heap()\n"
                     "both = new & ref\n"
                     "assert both.count == 0, (both.count, both)\n"
                     "print(new.count, ref.count, ref.dead)\n"),
    "kept_again": ("import time\n"
                   "h = hp.heap()\n" + KEPT_AGAIN.format(x="h") +
                   "print(d0, n0, n1, d1)\n"
                   "print(h.bytype)\n"),
    "stale_sp": STALE_ROW + "print(n1, d1, r.brief)\nprint(r.sp)\n",
    "stale_referrers": STALE_ROW + ("print(n1, d1, r.referrers.count, "
                                    "r.referents.count)\n"),
    "stale_domisize": STALE_ROW + "print(n1, d1, 'domisize', r.domisize)\n",
    "threads": "print(hp.threads())\nprint(hp.stacks())\n",
    # Questions stopped at random points by a short pause limit (in the
    # walk, path search, classification or dominators) under churn, then a
    # whole one: a stopped question leaves nothing half-done behind.
    "stopped": ROW + ("stopped = 0\n"
                      "for ask in (lambda: h.byvia, lambda: h.byrcs,\n"
                      "            lambda: r.sp, lambda: r.domisize,\n"
                      "            lambda: hp.heap()):\n"
                      "    hp.pause_limit = random.uniform(0.001, 0.05)\n"
                      "    try:\n"
                      "        ask()\n"
                      "    except TimeoutError:\n"
                      "        stopped += 1\n"
                      "hp.pause_limit = None\n"
                      "print(stopped, hp.heap().count, r.sp)\n"),
}
# Questions run without a pause limit (hp.pause_limit): under a sanitizer
# a whole question may take longer than the default limit, and the soak is
# about whole questions under churn ("stopped" sets its own).
NO_LIMIT = "hp.pause_limit = None\n"


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
                                NO_LIMIT + QUESTIONS[kind]],
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
