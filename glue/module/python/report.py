"""The page of `annex report` (docs/recording.md).

Run by monitor/cli/report.cc in an isolated interpreter of the `annex`
command, which embeds this file at build time. The records come from the
built-in module _annex_report (bounded readers, glue/heap_record.h) as JSON
lines of schema annex.record/1; the tables are glue::Stat's (Heapy's
layouts). The page is self-contained: inline SVG drawn here, inline CSS,
two inline scripts (ERRORS_SCRIPT, SCRIPT) and the records' partitions as
inline JSON, no resource from anywhere else. SCRIPT recomputes the growth
table between any two records chosen in the page with a copy of
glue::Stat::Diff and Stat::Table; the default choice (first to last) is
printed here by glue::Stat too (tests/cli:report_browser_test compares the
two in Chromium).
"""

import datetime
import html
import json

import _annex_report

MAX_POINTS = 800  # records drawn at most (evenly chosen, first and last kept)
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
           "#b07aa1", "#ff9da7", "#9c755f", "#86bcb6", "#d37295", "#a0cbe8",
           "#8cd17d", "#b6992d", "#499894", "#fabfd2", "#79706e", "#d4a6c8",
           "#9d7660", "#f1ce63", "#b9a08c", "#ffbe7d", "#6a9f58", "#e8a0a0",
           "#5b8db8", "#c47a5a", "#7eb0d5", "#bcbd22", "#17becf", "#aec7e8"]
OTHER_COLOR = "#c8c8c8"


def _load(files):
    records = []
    for path in files:
        for n, line in enumerate(_annex_report.read_records(path), 1):
            try:
                rec = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{path} record {n}: not JSON ({e})") from None
            if not isinstance(rec, dict) or rec.get("schema") != "annex.record/1":
                raise ValueError(f"{path} record {n}: not a heap record "
                                 "(schema annex.record/1)")
            part = rec.get("clodo")
            if (not isinstance(part, dict) or not isinstance(part.get("rows"), list)
                    or not isinstance(rec.get("time"), (int, float))):
                raise ValueError(f"{path} record {n}: no partition or time")
            records.append(rec)
    records.sort(key=lambda r: r["time"])
    return records


def _human(n):
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _clock(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


def _thin(records):
    if len(records) <= MAX_POINTS:
        return records
    step = (len(records) - 1) / (MAX_POINTS - 1)
    return [records[round(i * step)] for i in range(MAX_POINTS)]


def _ticks(top, count=5):
    if top <= 0:
        return [0]
    raw = top / count
    mag = 1
    while mag * 10 <= raw:
        mag *= 10
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(top // step) + 1)]


class _Frame:
    """Plot area of one chart: maps time and value to SVG coordinates."""

    def __init__(self, t0, t1, vmax, width=960, height=320):
        self.w, self.h = width, height
        self.left, self.right, self.top, self.bottom = 80, 20, 14, 36
        self.t0, self.t1 = t0, (t1 if t1 > t0 else t0 + 1)
        self.vmax = vmax if vmax > 0 else 1

    def x(self, t):
        span = self.w - self.left - self.right
        return self.left + (t - self.t0) / (self.t1 - self.t0) * span

    def y(self, v):
        span = self.h - self.top - self.bottom
        return self.top + span - v / self.vmax * span

    def axes(self, fmt):
        out = []
        for v in _ticks(self.vmax):
            y = self.y(v)
            out.append(f'<line class="grid" x1="{self.left}" x2="{self.w - self.right}" '
                       f'y1="{y:.1f}" y2="{y:.1f}"/>')
            out.append(f'<text class="ylabel" x="{self.left - 6}" y="{y + 4:.1f}">'
                       f'{html.escape(fmt(v))}</text>')
        span = self.t1 - self.t0
        for i in range(6):
            t = self.t0 + span * i / 5
            x = self.x(t)
            out.append(f'<text class="xlabel" x="{x:.1f}" y="{self.h - 12}">'
                       f'+{_duration(t - self.t0)}</text>')
        return out


def _duration(s):
    if s < 120:
        return f"{s:.0f}s" if s >= 10 or s == int(s) else f"{s:.1f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


def _stacked(records, kinds):
    """The stacked area by kind: one <path class="series"> per kind."""
    t0, t1 = records[0]["time"], records[-1]["time"]
    f = _Frame(t0, t1, max(r["clodo"]["size"] for r in records) * 1.05)
    values = []  # per record: sizes of kinds, then the folded rest
    for r in records:
        by_kind = {row["kind"]: row["size"] for row in r["clodo"]["rows"]}
        sizes = [max(0, by_kind.get(k, 0)) for k in kinds]
        sizes.append(max(0, r["clodo"]["size"] - sum(sizes)))
        values.append(sizes)
    names = kinds + ["other (every other kind, folded)"]
    colors = PALETTE[:len(kinds)] + [OTHER_COLOR]
    # data-t0/t1/x0/x1: the time axis, for the script's record markers.
    out = [f'<svg id="memory-chart" class="chart" width="{f.w}" height="{f.h}" '
           f'viewBox="0 0 {f.w} {f.h}" role="img" '
           f'data-t0="{f.t0!r}" data-t1="{f.t1!r}" data-x0="{f.x(f.t0):.1f}" '
           f'data-x1="{f.x(f.t1):.1f}" aria-label="heap bytes over time by kind">']
    out += f.axes(_human)
    base = [0.0] * len(records)
    for i, name in enumerate(names):
        upper = [base[j] + values[j][i] for j in range(len(records))]
        xs = [f.x(r["time"]) for r in records]
        if len(records) == 1:  # one record: a thin band
            xs = [xs[0] - 2, xs[0] + 2]
            up, lo = upper * 2, base * 2
        else:
            up, lo = upper, base
        pts = [f"{x:.1f},{f.y(v):.1f}" for x, v in zip(xs, up)]
        pts += [f"{x:.1f},{f.y(v):.1f}" for x, v in reversed(list(zip(xs, lo)))]
        last = values[-1][i]
        out.append(f'<path class="series" data-kind="{html.escape(name)}" '
                   f'fill="{colors[i]}" d="M{" L".join(pts)} Z">'
                   f'<title>{html.escape(name)}: {_human(last)} at the end</title></path>')
        base = upper
    # The two records the growth table compares (moved by the script).
    for mid, t in (("marker-from", t0), ("marker-to", t1)):
        x = f.x(t)
        out.append(f'<line id="{mid}" class="marker" x1="{x:.1f}" x2="{x:.1f}" '
                   f'y1="{f.top}" y2="{f.h - f.bottom}"/>')
    out.append("</svg>")
    legend = ['<ul class="legend">']
    for name, color in reversed(list(zip(names, colors))):
        legend.append(f'<li><span class="swatch" style="background:{color}"></span>'
                      f'{html.escape(name)}</li>')
    legend.append("</ul>")
    return "\n".join(out + legend)


def _lines(records, series, chart_id, fmt, label):
    """A line chart of (name, color, value-of-record) series."""
    t0, t1 = records[0]["time"], records[-1]["time"]
    vmax = max((v(r) for _, _, v in series for r in records), default=0) * 1.05
    f = _Frame(t0, t1, vmax, height=220)
    out = [f'<svg id="{chart_id}" class="chart" width="{f.w}" height="{f.h}" '
           f'viewBox="0 0 {f.w} {f.h}" role="img" aria-label="{html.escape(label)}">']
    out += f.axes(fmt)
    legend = ['<ul class="legend">']
    for name, color, value in series:
        pts = [f"{f.x(r['time']):.1f},{f.y(max(0, value(r))):.1f}" for r in records]
        out.append(f'<polyline class="line" data-series="{html.escape(name)}" '
                   f'stroke="{color}" points="{" ".join(pts)}"/>')
        legend.append(f'<li><span class="swatch" style="background:{color}"></span>'
                      f'{html.escape(name)}</li>')
    out.append("</svg>")
    legend.append("</ul>")
    return "\n".join(out + legend)


def _valid_retainers(nodes, depth=0):
    """Whether `nodes` has the shape glue/retainers.h writes."""
    if not isinstance(nodes, list) or depth > 16:
        return False
    for n in nodes:
        if not (isinstance(n, dict) and isinstance(n.get("kind"), str)
                and isinstance(n.get("count"), int)
                and isinstance(n.get("retained"), int) and n["retained"] >= 0
                and _valid_retainers(n.get("children", []), depth + 1)):
            return False
    return True


def _icicle(tree, width=960, row=30):
    """The dominator tree's top retainers as an icicle: one row per level,
    each kind as wide as the bytes it retains, its children below it."""
    total = sum(n["retained"] for n in tree) or 1
    rects = []

    def depth_of(nodes):
        return 1 + max((depth_of(n.get("children", [])) for n in nodes), default=-1)

    def place(nodes, x0, span, level, path):
        x = x0
        for n in nodes:
            w = n["retained"] / total * width
            if w < 0.5:
                x += w
                continue
            name = n["kind"]
            color = (OTHER_COLOR if name == "<Other>" else
                     PALETTE[sum(map(ord, name.split(" (")[-1])) % len(PALETTE)])
            label = f"{name} \u00d7{n['count']}: {_human(n['retained'])}"
            full = " \u2190 ".join([label] + path)
            rects.append(
                f'<g><rect class="retainer" x="{x:.1f}" y="{level * row}" '
                f'width="{max(w - 1, 0.5):.1f}" height="{row - 2}" fill="{color}">'
                f"<title>{html.escape(full)}</title></rect>"
                + (f'<text x="{x + 4:.1f}" y="{level * row + 19}">'
                   f"{html.escape(_fit(label, w))}</text>" if w > 48 else "")
                + "</g>")
            place(n.get("children", []), x, w, level + 1, [label] + path)
            x += w

    place(tree, 0, width, 0, [])
    height = max(depth_of(tree), 1) * row
    return (f'<svg id="retainers-chart" class="chart icicle" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            'aria-label="top retainers of the dominator tree">'
            + "".join(rects) + "</svg>")


def _valid_growth_paths(entries):
    """Whether `entries` has the shape glue/growth_paths.h writes."""
    if not isinstance(entries, list):
        return False
    for g in entries:
        if not (isinstance(g, dict) and isinstance(g.get("kind"), str)
                and all(isinstance(g.get(k), int) for k in
                        ("count", "size", "count_growth", "size_growth"))
                and (g.get("path") is None or isinstance(g.get("path"), str))):
            return False
    return True


def _growth_paths_table(records, rows=30):
    """The recorded paths to the growing kinds, newest record first: when,
    which kind, by how much, and the shortest path that keeps a new one."""
    lines = []
    for r in reversed(records):
        entries = r.get("growth_paths")
        if not _valid_growth_paths(entries):
            continue
        for g in entries:
            if len(lines) >= rows:
                break
            path = g["path"] if g["path"] is not None else (
                "(not searched: the walk reached its pause limit)"
                if g.get("stopped") else "(not reachable)")
            note = "" if g.get("new", True) else " (to an older object: every new one reused an address)"
            lines.append(
                f"<tr><td>{html.escape(_clock(r['time']))}</td><td>{html.escape(g['kind'])}</td>"
                f"<td>{g['count_growth']:+d}</td><td>{html.escape('+' + _human(g['size_growth']))}</td>"
                f'<td class="path">{html.escape(path)}{html.escape(note)}</td></tr>')
    if not lines:
        return ""
    return ('<table class="records growth-paths"><tr><th>time</th><th>kind</th>'
            "<th>objects</th><th>bytes</th><th>shortest path from a root</th></tr>"
            + "".join(lines) + "</table>")


def _fit(text, px):
    """`text` cut to about `px` pixels of 11px text."""
    n = max(int(px / 6.6) - 1, 1)
    return text if len(text) <= n else text[:max(n - 1, 1)] + "\u2026"


CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
.chart { display: block; background: #fff; border: 1px solid #ddd; }
.chart .grid { stroke: #eee; } .chart .line { fill: none; stroke-width: 2; }
.chart text { font-size: 11px; fill: #555; }
.chart .ylabel { text-anchor: end; } .chart .xlabel { text-anchor: middle; }
.chart path.series { stroke: #fff; stroke-width: 0.5; }
.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px;
          vertical-align: -1px; }
pre { background: #f7f7f7; padding: 10px; overflow-x: auto; }
.chart .marker { stroke: #222; stroke-width: 1.5; stroke-dasharray: 4 3; }
.pick { margin: 6px 0; } .pick select { font: inherit; margin: 0 12px 0 4px; }
#script-errors { color: #b00; }
.icicle text { font-size: 11px; fill: #111; pointer-events: none; }
.icicle rect { fill-opacity: 0.8; }
.growth-paths td.path { font-family: monospace; word-break: break-all; }
table.records td, table.records th { padding: 2px 10px; text-align: right; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { color: #666; }
"""


# Runs first, in a script of its own (so that even a syntax error of the
# main script is caught): writes the page's errors into #script-errors.
ERRORS_SCRIPT = r"""
(function () {
  function report(text) {
    var li = document.createElement("li");
    li.textContent = text;
    document.getElementById("script-errors").appendChild(li);
  }
  window.addEventListener("error", function (e) {
    report("error: " + e.message + " (line " + e.lineno + ")");
  });
  window.addEventListener("unhandledrejection", function (e) {
    report("unhandled rejection: " + e.reason);
  });
})();
"""

# The page's main script. It collects its own errors into #script-errors
# (a test reads them from the DOM), and recomputes the growth table
# between the two records chosen in #pick-from / #pick-to (or given in the
# URL as #from=I&to=J) from the JSON in #records-data, and marks them in
# the first chart; body[data-script=ready] says it ran to the end. diff() is
# glue::Stat::Diff and table() glue::Stat::Table of a difference (20 rows),
# line for line: the page for first-to-last shows the same text as the one
# glue::Stat printed here.
SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("records-data").textContent);
  var ROWS = 20;

  function stat(i) {  // record i's partition: count, size, [kind, count, size]
    var r = data.records[i];
    return {count: r[1], size: r[2], rows: r[3].map(function (x) {
      return [data.kinds[x[0]], x[1], x[2]];
    })};
  }
  // glue::Stat::Diff(a, b): a - b by kind.
  function diff(a, b) {
    var others = [], otherOf = new Map(), out = [], outOf = new Map();
    b.rows.forEach(function (r) {
      var i = otherOf.get(r[0]);
      if (i === undefined) {
        otherOf.set(r[0], others.length);
        others.push({kind: r[0], count: r[1], size: r[2], used: false});
      } else {
        others[i].count += r[1];
        others[i].size += r[2];
      }
    });
    a.rows.forEach(function (r) {
      var d = [r[0], r[1], r[2]], i = otherOf.get(r[0]);
      if (i !== undefined && !others[i].used) {
        others[i].used = true;
        d[1] -= others[i].count;
        d[2] -= others[i].size;
      }
      if (d[1] === 0 && d[2] === 0) return;
      var j = outOf.get(d[0]);
      if (j === undefined) {
        outOf.set(d[0], out.length);
        out.push(d);
      } else {
        out[j][1] += d[1];
        out[j][2] += d[2];
      }
    });
    others.forEach(function (o) {
      if (!o.used) out.push([o.kind, -o.count, -o.size]);
    });
    out.sort(function (x, y) { return Math.abs(y[2]) - Math.abs(x[2]); });
    var count = 0, size = 0;
    out.forEach(function (r) { count += r[1]; size += r[2]; });
    return {count: count, size: size, bCount: b.count, bSize: b.size,
            rows: out};
  }
  function pad(v, n) { return String(v).padStart(n); }
  // C's "%9.3g".
  function g3(v) {
    var text;
    if (v === 0) {
      text = "0";
    } else {
      var e = v.toExponential(2), exp = parseInt(e.split("e")[1], 10);
      if (exp < -4 || exp >= 3) {
        var m = e.split("e")[0].replace(/\.?0+$/, "");
        text = m + "e" + (exp < 0 ? "-" : "+") +
               String(Math.abs(exp)).padStart(2, "0");
      } else {
        text = v.toFixed(2 - exp);
        if (text.indexOf(".") >= 0) text = text.replace(/\.?0+$/, "");
      }
    }
    return pad(text, 9);
  }
  function percentOfB(size, bSize) {
    return bSize === 0 ? "   (n.a.)" : g3(size * 100 / bSize);
  }
  // glue::Stat::Table(0, ROWS, true) of a difference.
  function table(d) {
    var out = "Summary of difference operation (A-B).\n" +
        "        Count     Size\n" +
        "  A    " + pad(d.count + d.bCount, 6) + " " + pad(d.size + d.bSize, 8) + "\n" +
        "  B    " + pad(d.bCount, 6) + " " + pad(d.bSize, 8) + "\n" +
        "  A-B  " + pad(d.count, 6) + " " + pad(d.size, 8) + "  = " +
        percentOfB(d.size, d.bSize) + " % of B\n";
    if (d.count !== 0 || d.size !== 0) {
      out += "\nDifferences by kind, largest absolute size diffs first.";
    }
    out += "\n";
    var n = d.rows.length;
    if (n > 0) {
      if (d.count !== 0 || d.size !== 0) {
        out += " Index  Count     Size  Cumulative  % of B " + data.kind_header;
      }
      out += "\n";
      var end = (n <= ROWS || n - ROWS === 1) ? n : ROWS, cumulative = 0;
      for (var i = 0; i < end; ++i) {
        var r = d.rows[i];
        cumulative += r[2];
        out += pad(i, 6) + " " + pad(r[1], 6) + " " + pad(r[2], 8) + " " +
               pad(cumulative, 9) + " " + percentOfB(cumulative, d.bSize) +
               " " + r[0] + "\n";
      }
      if (end < n) {
        out += "<" + (n - end) + " more rows. Type e.g. '_.more' to view.>\n";
      }
    }
    out = out.replace(/\s+$/, "");
    return out === "" ? "" : out + "\n";
  }

  var from = document.getElementById("pick-from");
  var to = document.getElementById("pick-to");
  var chart = document.getElementById("memory-chart");
  function mark(id, i) {
    var line = document.getElementById(id);
    if (!line || !chart) return;
    var t0 = parseFloat(chart.dataset.t0), t1 = parseFloat(chart.dataset.t1);
    var x0 = parseFloat(chart.dataset.x0), x1 = parseFloat(chart.dataset.x1);
    var x = x0 + (data.records[i][0] - t0) / (t1 - t0) * (x1 - x0);
    line.setAttribute("x1", x.toFixed(1));
    line.setAttribute("x2", x.toFixed(1));
  }
  function update() {
    var a = parseInt(to.value, 10), b = parseInt(from.value, 10);
    document.getElementById("growth").textContent = table(diff(stat(a), stat(b)));
    document.getElementById("growth-span").textContent =
        "record " + b + " (B) to record " + a + " (A)";
    mark("marker-from", b);
    mark("marker-to", a);
  }
  // #from=I&to=J picks the records (a link to one comparison).
  var wanted = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
    var p = kv.split("=");
    if (p.length === 2 && /^[0-9]+$/.test(p[1])) wanted[p[0]] = parseInt(p[1], 10);
  });
  var last = data.records.length - 1;
  if ("from" in wanted) from.value = String(Math.min(wanted.from, last));
  if ("to" in wanted) to.value = String(Math.min(wanted.to, last));
  from.addEventListener("change", update);
  to.addEventListener("change", update);
  if ("from" in wanted || "to" in wanted) update();
  document.body.dataset.script = "ready";
})();
"""


def _records_json(records, kind_header):
    """The partitions for the script: kinds once, rows as index triples."""
    kinds, index = [], {}
    rows = []
    for r in records:
        part = []
        for row in r["clodo"]["rows"]:
            k = row["kind"]
            if k not in index:
                index[k] = len(kinds)
                kinds.append(k)
            part.append([index[k], row["count"], row["size"]])
        rows.append([r["time"], r["clodo"]["count"], r["clodo"]["size"], part])
    text = json.dumps({"kind_header": kind_header, "kinds": kinds,
                       "records": rows}, separators=(",", ":"))
    # Inside <script>: no "</" (or "<!--") may end it early.
    return text.replace("<", "\\u003c")


def _picker(records):
    """The two selectors of the growth table: B (from) and A (to)."""
    t0 = records[0]["time"]
    labels = [f'{i}: {_clock(r["time"])[11:19]} (+{_duration(r["time"] - t0)}), '
              f'{r["clodo"]["count"]} objects, {html.escape(_human(r["clodo"]["size"]))}'
              for i, r in enumerate(records)]

    def select(sid, chosen):
        opts = "".join(f'<option value="{i}"{" selected" if i == chosen else ""}>'
                       f"{label}</option>" for i, label in enumerate(labels))
        return f'<select id="{sid}">{opts}</select>'
    return ('<div class="pick"><label>from (B)' + select("pick-from", 0) +
            "</label><label>to (A)" + select("pick-to", len(records) - 1) +
            "</label></div>")


def render(records, title="", top=8):
    first, last = records[0], records[-1]
    drawn = _thin(records)
    peak = {}
    for r in records:
        for row in r["clodo"]["rows"]:
            if row["kind"] != "<Other>":
                peak[row["kind"]] = max(peak.get(row["kind"], 0), row["size"])
    kinds = sorted(peak, key=lambda k: (-peak[k], k))[:top]
    growth, partition = _annex_report.tables(first["clodo"], last["clodo"], 20)
    program = last.get("program") or "?"
    title = title or f"Memory over time: {program}"
    esc = html.escape
    labels = [("program", program), ("pid", str(last.get("pid", "?"))),
              ("host", last.get("host") or "?"),
              ("Python", last.get("python") or "?"),
              ("from", _clock(first["time"])), ("to", _clock(last["time"])),
              ("records", f"{len(records)}" + (
                  f" ({len(drawn)} drawn)" if len(drawn) < len(records) else "")),
              ("objects", f"{first['clodo']['count']} \u2192 {last['clodo']['count']}"),
              ("heap bytes", f"{_human(first['clodo']['size'])} \u2192 "
                             f"{_human(last['clodo']['size'])}")]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(title)}</title>", f"<style>{CSS}</style></head><body>",
             f"<h1>{esc(title)}</h1>", "<dl>"]
    parts += [f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in labels]
    parts.append("</dl>")
    parts.append(f"<h2>Heap bytes by kind (Clodo; the {len(kinds)} largest "
                 "kinds, the rest folded)</h2>")
    parts.append(_stacked(drawn, kinds))
    parts.append("<h2>Growth between two records</h2>")
    parts.append('<p>Heapy\'s difference table, A - B: <span id="growth-span">'
                 f'record 0 (B) to record {len(records) - 1} (A)</span>. '
                 "Choose the records (dashed lines in the first chart):</p>")
    parts.append(_picker(records))
    parts.append(f'<pre id="growth">{esc(growth)}</pre>')
    parts.append("<h2>Process RSS and heap bytes</h2>")
    parts.append(_lines(drawn, [
        ("RSS", "#e15759", lambda r: r.get("rss_bytes", -1)),
        ("heap bytes (reachable objects)", "#4e79a7", lambda r: r["clodo"]["size"]),
    ], "rss-chart", _human, "RSS and heap bytes over time"))
    parts.append("<h2>Pause of each heap walk</h2>")
    parts.append(_lines(drawn, [
        ("walk pause", "#59a14f", lambda r: r.get("pause_s", 0) * 1000),
    ], "pause-chart", lambda v: f"{v:g} ms", "heap walk pauses in milliseconds"))
    with_tree = [r for r in records if _valid_retainers(r.get("retainers"))
                 and r.get("retainers")]
    if with_tree:
        r = with_tree[-1]
        parts.append("<h2>Top retainers (dominator tree)</h2>")
        parts.append(
            f"<p>At {esc(_clock(r['time']))}: what keeps the most bytes alive. "
            "Each box is the objects of one kind that the box above "
            "immediately dominates (the top row: those only the roots "
            "dominate, a root named first), as wide as the bytes freed "
            "with them; hover for the chain.</p>")
        parts.append(_icicle(r["retainers"]))
    paths = _growth_paths_table(records)
    if paths:
        parts.append("<h2>Why the growing kinds are kept</h2>")
        parts.append("<p>For each record, the kinds whose bytes grew most since "
                     "the record before it, and the shortest reference path "
                     "from a root to one of their new objects (as "
                     "<code>x.sp</code> prints it), found while the walk held "
                     "the program.</p>")
        parts.append(paths)
    parts.append(f'<pre id="partition">{esc(partition)}</pre>')
    parts.append('<h2>Records</h2><table class="records"><tr><th>time</th>'
                 "<th>objects</th><th>heap bytes</th><th>RSS</th><th>pause</th></tr>")
    shown = records if len(records) <= 200 else records[:100] + records[-100:]
    for i, r in enumerate(shown):
        if len(records) > 200 and i == 100:
            parts.append(f'<tr><td colspan="5">({len(records) - 200} more)</td></tr>')
        rss = r.get("rss_bytes", -1)
        parts.append(f"<tr><td>{esc(_clock(r['time']))}</td><td>{r['clodo']['count']}</td>"
                     f"<td>{esc(_human(r['clodo']['size']))}</td>"
                     f"<td>{esc(_human(rss)) if rss >= 0 else '?'}</td>"
                     f"<td>{r.get('pause_s', 0) * 1000:.1f} ms</td></tr>")
    parts.append("</table>")
    parts.append('<ul id="script-errors"></ul>')
    parts.append(f"<script>{ERRORS_SCRIPT}</script>")
    kind_header = last["clodo"].get("kind_header") or "Kind (class / dict of class)"
    parts.append('<script type="application/json" id="records-data">'
                 f"{_records_json(records, kind_header)}</script>")
    parts.append(f"<script>{SCRIPT}</script>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def main(files, out, title, top):
    records = _load(files)
    page = render(records, title, top)
    with open(out, "w", encoding="utf-8") as f:
        f.write(page)
    print(f"annex report: {len(records)} records -> {out}")
