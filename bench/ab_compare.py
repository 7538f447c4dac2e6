"""Compares the two builds of a same-run A/B (bench/ab.sh output).

usage: python3 bench/ab_compare.py AB.jsonl... [--key=heap,byvia]

--key: only these questions (e.g. heap_pause for the target's pauses,
which are left out otherwise).

Reads the JSON lines bench/ab.sh prints (tagged "build": "a" or "b" and
"round"; lines starting with '#' are skipped) from benches whose lines
hold per-run lists under keys ending in "_ms" (bench/questions:
"heap_ms", "byvia_ms", ..., with "_faults" and "_cpu_ms" beside them).
Lines of several requested sizes, Python versions or targets (ticking,
idle) are compared apart.

A process's first run of a question and its later runs are shown apart:
the first pays for memory the process has not used before, as a user's
first question does, and a change can help the later runs while costing
the first (session 22's pool trial, docs/heap-engine.md). Per build:

  first   the median over rounds of each round's first run;
  later   the median over rounds of each round's median of its other
          runs (with one run per round there are none: '-');
  best    the median over rounds of each round's fastest later run:
          host noise only ever adds time, so on a machine whose speed
          swings within a run (this VM's bare walk took 16-29 ms in one
          minute) the fastest runs show a change that medians bury;
  faults  the same two for the question's minor page faults;
  cpu     later runs' CPU milliseconds (every thread), which other work
          on the machine stretches less than wall time.

b/a is the ratio of b's figure to a's. On a shared machine only builds
measured in the same run compare, and only by such medians.
"""
import collections
import json
import statistics
import sys


def _median(values):
    return statistics.median(values) if values else None


def _fmt(v):
    if v is None:
        return "-"
    return "%.1f" % v if v < 100 else "%.0f" % v


def _ratio(a, b):
    return "-" if a in (None, 0) or b is None else "%.3f" % (b / a)


def main(argv):
    keys = None
    files = []
    for arg in argv[1:]:
        if arg.startswith("--key="):
            keys = arg[len("--key="):].split(",")
        else:
            files.append(arg)
    if not files:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    # (group, question) -> build -> figure -> one value per round
    rounds = collections.defaultdict(
        lambda: collections.defaultdict(lambda: collections.defaultdict(list)))
    for path in files:
        with open(path) as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                d = json.loads(line)
                build = d.get("build")
                if build not in ("a", "b"):
                    continue
                group = "python %s, %s objects, %s" % (
                    d.get("python", "?"),
                    d.get("requested_objects", d.get("objects", "?")),
                    d.get("target", "ticking"))
                for key, runs in d.items():
                    if not key.endswith("_ms") or key.endswith("_cpu_ms"):
                        continue
                    if not isinstance(runs, list) or not runs:
                        continue
                    q = key[:-len("_ms")]
                    # The target's pauses ("heap_pause_ms") only when asked.
                    if (keys is None and q.endswith("_pause")) or (
                            keys is not None and q not in keys):
                        continue
                    fig = rounds[(group, q)][build]
                    fig["first"].append(runs[0])
                    if len(runs) > 1:
                        fig["later"].append(statistics.median(runs[1:]))
                        fig["best"].append(min(runs[1:]))
                    faults = d.get(q + "_faults")
                    if isinstance(faults, list) and faults:
                        fig["faults first"].append(faults[0])
                        if len(faults) > 1:
                            fig["faults later"].append(
                                statistics.median(faults[1:]))
                    cpu = d.get(q + "_cpu_ms")
                    if isinstance(cpu, list) and len(cpu) > 1:
                        fig["cpu later"].append(statistics.median(cpu[1:]))
    if not rounds:
        print("no A/B lines (tagged build a and b) in " + ", ".join(files),
              file=sys.stderr)
        return 1
    figures = ["first", "later", "best", "faults first", "faults later", "cpu later"]
    last_group = None
    for (group, q), by_build in rounds.items():
        if group != last_group:
            print("# %s (rounds: a %d, b %d)" % (
                group, len(by_build["a"]["first"]), len(by_build["b"]["first"])))
            print("%-14s %-13s %9s %9s %7s" % ("question", "figure", "a", "b",
                                               "b/a"))
            last_group = group
        for name in figures:
            a = _median(by_build["a"][name])
            b = _median(by_build["b"][name])
            if a is None and b is None:
                continue
            print("%-14s %-13s %9s %9s %7s" % (q, name, _fmt(a), _fmt(b),
                                               _ratio(a, b)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
