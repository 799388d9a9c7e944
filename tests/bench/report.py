#!/usr/bin/env python3
"""report.py OUT - the table and the targets from a tests/bench/compare.sh run folder.

Reads OUT/runs.tsv (one row per wrk run, with the server's and wrk's CPU time), the raw
wrk outputs it names, OUT/accepts.tsv (per-worker accepted connections of preforkd during
each run) and OUT/rss.tsv (worker RSS after the run). Prints, per scenario and server: the
median req/s over the rounds, the spread ((max - min) / median), the medians of wrk's p50
and p99, the errors summed over the rounds (socket errors + non-2xx/3xx), the ratio to the
best peer of that scenario (nginx, lighttpd or Apache; Apache alone for the strict prefork
scenario e), the server's CPU time per request and wrk's CPU share. Then each target of
the performance issue, met or missed and by how much.
"""

import csv
import os
import re
import statistics
import sys

PEERS = ("nginx", "lighttpd", "apache")
WHAT = {
    "a": "keep-alive, 1 KiB, 50 conns",
    "b": "keep-alive, 1 KiB, 256 conns",
    "c": "new conn per request, 1 KiB, 50 conns",
    "d": "keep-alive, 1 MiB, 10 conns",
    "e/a": "strict prefork, workload a",
    "e/c": "strict prefork, workload c",
    "f": "workload c, preforkd with 4 workers",
}
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNIT_MS[m.group(2)] if m else None


def parse_wrk(path):
    """req/s, p50 ms, p99 ms, errors, requests of one wrk --latency output (None if absent)."""
    r = {"rps": None, "p50": None, "p99": None, "errors": 0, "requests": None}
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return r
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"^\s*(\d+) requests in", text, re.M)
    if m:
        r["requests"] = int(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        if m:
            r[key] = to_ms(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["errors"] += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["errors"] += int(m.group(1))
    if r["rps"] is None:
        r["errors"] += 1  # a run without a result counts as an error
    return r


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py OUT")
    out = sys.argv[1]
    duration = None  # seconds per run, from env.txt
    try:
        with open(os.path.join(out, "env.txt"), encoding="utf-8") as f:
            m = re.search(r"DURATION=(\d+)", f.read())
            duration = int(m.group(1)) if m else None
    except OSError:
        pass
    runs = {}  # (scenario, server) -> list of parsed runs
    order = []
    loads = []
    with open(os.path.join(out, "runs.tsv"), encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            key = (row["scenario"], row["server"])
            if key not in runs:
                runs[key] = []
                order.append(key)
            r = parse_wrk(row["file"])
            # Server CPU per request and wrk's CPU share: absent in older runs.tsv files.
            try:
                r["cpu_us"] = float(row["cpu_s"]) * 1e6 / r["requests"]
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                r["cpu_us"] = None
            try:
                r["wrk_cpu"] = float(row["wrk_cpu_s"]) / duration if duration else None
            except (KeyError, TypeError, ValueError):
                r["wrk_cpu"] = None
            runs[key].append(r)
            try:
                loads.append(float(row["loadavg"]))
            except ValueError:
                pass

    cells = {}
    for key, rs in runs.items():
        rps = [r["rps"] for r in rs if r["rps"] is not None]
        med = median(rps)
        cells[key] = {
            "rps": med,
            "spread": (max(rps) - min(rps)) / med if len(rps) > 1 and med else None,
            "p50": median(r["p50"] for r in rs),
            "p99": median(r["p99"] for r in rs),
            "errors": sum(r["errors"] for r in rs),
            "cpu_us": median(r["cpu_us"] for r in rs),
            "wrk_cpu": median(r["wrk_cpu"] for r in rs),
            "rounds": len(rs),
        }

    def best_peer(scenario):
        peers = ("apache",) if scenario.startswith("e/") else PEERS
        found = [(cells[(scenario, p)]["rps"], p) for p in peers
                 if (scenario, p) in cells and cells[(scenario, p)]["rps"] is not None]
        return max(found) if found else (None, None)

    header = ["scenario", "server", "req/s", "spread", "p50 ms", "p99 ms", "errors",
              "x best peer", "CPU us/req", "wrk CPU"]
    rows = []
    last = None
    for scenario, server in order:
        c = cells[(scenario, server)]
        best, best_name = best_peer(scenario)
        ratio = "-"
        if best and c["rps"] is not None and not scenario == "f":
            ratio = "%.2f (%s)" % (c["rps"] / best, best_name)
        label = "" if scenario == last else "%s %s" % (scenario, WHAT.get(scenario, ""))
        last = scenario
        rows.append([label, server, fmt(c["rps"], ".0f"),
                     "-" if c["spread"] is None else "%.0f%%" % (100 * c["spread"]),
                     fmt(c["p50"], ".3f"), fmt(c["p99"], ".3f"), str(c["errors"]), ratio,
                     fmt(c["cpu_us"], ".1f"),
                     "-" if c["wrk_cpu"] is None else "%.0f%%" % (100 * c["wrk_cpu"])])
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(cols):
        return "| " + " | ".join(
            col.ljust(w) if i < 2 else col.rjust(w)
            for i, (col, w) in enumerate(zip(cols, widths))) + " |"

    rounds = max((c["rounds"] for c in cells.values()), default=0)
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print("\nmedians of %d round(s), wrk -t1; spread = (max - min) / median of the rounds; "
          "errors = socket errors + non-2xx/3xx, summed" % rounds)
    print("CPU us/req = the server's CPU time (user + system, all its processes) per request, "
          "median; wrk CPU = wrk's CPU time / run time, median: near 100%, wrk's one thread "
          "is the bottleneck and req/s ties mean less than CPU us/req")
    if loads:
        print("load average (1 min) before the runs: min %.2f, median %.2f, max %.2f"
              % (min(loads), statistics.median(loads), max(loads)))

    # ---- per-worker accepted connections --------------------------------------------------
    accepts = {}  # (round, scenario, server) -> [accepted per worker]
    path = os.path.join(out, "accepts.tsv")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                accepts.setdefault((row["round"], row["scenario"], row["server"]), []).append(
                    int(row["accepted"]))
    fairness = {}  # (scenario, server) -> [max/min per round]
    shown = False
    for (rnd, scenario, server), counts in sorted(accepts.items()):
        if not scenario.endswith("c") and scenario != "f":
            continue  # keep-alive runs accept only their 50 connections once
        counts = sorted((n for n in counts if n >= 0), reverse=True)
        if not counts or sum(counts) == 0:
            continue
        if not shown:
            print("\naccepted connections per worker (status page), new-connection runs:")
            shown = True
        ratio = counts[0] / counts[-1] if counts[-1] else float("inf")
        fairness.setdefault((scenario, server), []).append(ratio)
        print("  round %s %-4s %-11s %s  busiest/least busy = %.2f"
              % (rnd, scenario, server, " ".join(str(n) for n in counts), ratio))

    # ---- worker RSS --------------------------------------------------------------------------
    rss = {}
    path = os.path.join(out, "rss.tsv")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                if row["rss_kib"]:
                    rss.setdefault(row["server"], []).append(int(row["rss_kib"]))
    if rss:
        print("\nworker RSS after the runs (MiB): " + ", ".join(
            "%s max %.1f median %.1f (%d)" % (s, max(v) / 1024, statistics.median(v) / 1024,
                                               len(v)) for s, v in rss.items()))

    # ---- targets -------------------------------------------------------------------------------
    print("\ntargets (issue: performance):")

    def verdict(ok):
        return "met   " if ok else "MISSED"

    for scenario in ("a", "b", "c", "d"):
        c = cells.get((scenario, "preforkd"))
        best, best_name = best_peer(scenario)
        if not c or c["rps"] is None or not best:
            continue
        bp99 = cells[(scenario, best_name)]["p99"]
        ratio = c["rps"] / best
        p99_ok = c["p99"] is not None and bp99 is not None and c["p99"] <= bp99
        print("  %s %s: preforkd %.2fx %s (>= 1.00), errors %d (0), p99 %s ms vs %s ms"
              % (verdict(ratio >= 1.0 and c["errors"] == 0 and p99_ok), scenario, ratio,
                 best_name, c["errors"], fmt(c["p99"], ".3f"), fmt(bp99, ".3f")))
    for scenario in ("e/a", "e/c"):
        c = cells.get((scenario, "preforkd-1"))
        a = cells.get((scenario, "apache"))
        if not c or not a or c["rps"] is None or not a["rps"]:
            continue
        ratio = c["rps"] / a["rps"]
        print("  %s %s: strict prefork preforkd %.2fx Apache prefork (>= 1.50), errors %d"
              % (verdict(ratio >= 1.5 and c["errors"] == 0), scenario, ratio, c["errors"]))
    for (scenario, server), ratios in fairness.items():
        if scenario != "f":
            continue
        m = statistics.median(ratios)
        c = cells.get(("f", server))
        base = cells.get(("c", "preforkd"))
        extra = ""
        if c and base and c["rps"] and base["rps"]:
            extra = ", %.0f req/s = %.2fx preforkd's (c)" % (c["rps"], c["rps"] / base["rps"])
        print("  %s f: accepts busiest/least busy worker %.2f (<= 1.50, median of rounds)%s"
              % (verdict(m <= 1.5), m, extra))
    if "preforkd" in rss and "nginx" in rss:
        p, n = max(rss["preforkd"]), max(rss["nginx"])
        print("  %s worker RSS: preforkd %.1f MiB vs nginx %.1f MiB" % (verdict(p <= n), p / 1024,
                                                                     n / 1024))


if __name__ == "__main__":
    main()
