"""Prints the README's table of bench/questions results (Markdown).

usage: python3 bench/questions/table.py RESULTS.jsonl...

Each file holds the JSON lines `bazel run -c opt //bench/questions` prints
(one per Python version and size; lines starting with '#' are skipped).
Each column is one (version, size, target) line, the last one read for
that triple (target: "ticking", the default, or "idle" from --idle, shown
in the header);
each cell the median wall time in milliseconds and its ratio to the same
run's bare walk. A question a line did not ask is '-'.
"""
import json
import statistics
import sys

# (result key, what the user types), in the README's order.
ROWS = [
    ("walk", "walk (baseline)"),
    ("heap", "`h = hp.heap()`"),
    ("bytype", "`h.bytype`"),
    ("byclodo", "`h` (byclodo)"),
    ("byrcs", "`h.byrcs`"),
    ("byvia", "`h.byvia`"),
    ("row_sp", "`h[0].sp`"),
    ("row_domisize", "`r.domisize`"),
    ("row_referrers", "`r.referrers`"),
    ("shpaths_10k", "`get_shpaths(limit=0)` of 10 000"),
    ("heapu", "`hp.heapu()`"),
]


def _size(n):
    return "%dM" % (n // 1000000) if n % 1000000 == 0 else str(n)


def _ms(v):
    return str(round(v)) if v >= 10 else "%.1f" % v


def main(paths):
    columns = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                r = json.loads(line)
                if r.get("case") != "questions":
                    continue
                columns[(r["python"], r["requested_objects"],
                         r.get("target", "ticking"))] = r
    if not columns:
        sys.exit("table.py: no bench/questions results in %s" % paths)
    keys = sorted(columns, key=lambda k: (
        k[2] == "idle", k[1], tuple(map(int, k[0].split(".")))))
    print("| question | " + " | ".join(
        "%s %s%s" % (v, _size(n), " idle" if t == "idle" else "")
        for v, n, t in keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for key, label in ROWS:
        cells = []
        for k in keys:
            r = columns[k]
            walk = statistics.median(r["walk_ms"])
            if key + "_ms" not in r:
                cells.append("-")
                continue
            ms = statistics.median(r[key + "_ms"])
            cells.append(_ms(ms) if key == "walk" else
                         "%s (%.1fx)" % (_ms(ms), ms / walk))
        print("| %s | %s |" % (label, " | ".join(cells)))


if __name__ == "__main__":
    main(sys.argv[1:])
