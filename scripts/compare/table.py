#!/usr/bin/env python3
"""Summarises a compare-uws.sh sitting: a markdown table of medians (and ranges) per
scenario and server, then the danmaku/uws ratios.

    table.py RESULTS_DIR

Reads RESULTS_DIR/runs/*.meta.json (one per bench run, written by compare-uws.sh) and the
bench JSON and rusage JSON each names; writes RESULTS_DIR/summary.md and summary.json and
prints the markdown. Exits 1 if any run failed (bench error, PROBLEMS, missing result).
"""

import json
import os
import statistics
import sys

SERVERS = ("danmaku", "uws")


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def metrics(meta, bench, ru):
    """The numbers of one run (None where the run has none)."""
    m = {"ok": bool(bench and bench.get("ok")) and meta["rc"] == 0}
    wall = meta["wall_s"] or None
    cpu = meta["server_cpu_s"]
    m["server_cpu_s"] = cpu
    m["server_cpu_pct"] = 100.0 * cpu / wall if (cpu is not None and wall) else None
    m["bench_cpu_s"] = (ru["user_s"] + ru["sys_s"]) if ru else None
    m["bench_cpu_pct"] = 100.0 * m["bench_cpu_s"] / ru["wall_s"] if ru and ru["wall_s"] else None
    if not bench:
        return m
    roles = bench.get("roles") or {}
    idle = bench.get("scenario") == "idle"
    m["deliveries_per_s"] = None if idle else bench.get("deliveries_per_s")
    m["p50_ms"] = max((r["p50_ms"] for r in roles.values()), default=None) if not idle else None
    m["p99_ms"] = max((r["p99_ms"] for r in roles.values()), default=None) if not idle else None
    m["ack_p99_ms"] = bench.get("ack_p99_ms") if bench.get("sent") else None
    rooms = sorted(bench.get("room_p99_ms") or [])
    m["room_p99_median_ms"] = rooms[len(rooms) // 2] if rooms else None
    m["missed"] = sum(r["missed"] for r in roles.values())
    m["duplicates"] = sum(r["duplicates"] for r in roles.values())
    m["leaks"] = sum(r["leaks"] for r in roles.values())
    m["send_errors"] = bench.get("send_errors", 0)
    # RSS per connection is only meaningful where nothing else grows (idle).
    m["rss_per_conn_bytes"] = bench.get("rss_per_conn_bytes") if idle else None
    # Bytes per delivery read by viewers: on the wire (after compression) and as JSON.
    m["wire_per_delivery"] = bench.get("wire_bytes_per_delivery")
    m["json_per_delivery"] = bench.get("payload_bytes_per_delivery")
    return m


def med(values):
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def cell(values, fmt, runs):
    v = [x for x in values if x is not None]
    if not v:
        return "—"
    s = fmt(statistics.median(v))
    if runs > 1 and len(v) > 1:
        s += f" ({fmt(min(v))}–{fmt(max(v))})"
    if len(v) < runs:
        s += f" [{len(v)}/{runs} runs]"
    return s


def num(x):
    return f"{x:,.0f}".replace(",", " ")


def ms(x):
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def pct(x):
    return f"{x:.0f}%"


def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b not in (None, 0) else "—"


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    root = sys.argv[1]
    sitting = load(os.path.join(root, "sitting.json")) or {}
    runs_dir = os.path.join(root, "runs")
    metas = sorted(
        (load(os.path.join(runs_dir, f)) for f in os.listdir(runs_dir) if f.endswith(".meta.json")),
        key=lambda m: (m["order"], m["run"]),
    )
    by = {}  # (scenario, server) -> [metrics]
    order = []
    failures = []
    loads = []
    for meta in metas:
        key = (meta["scenario"], meta["server"])
        if meta["scenario"] not in order:
            order.append(meta["scenario"])
        bench = load(os.path.join(root, meta["bench_json"]))
        ru = load(os.path.join(root, meta["rusage_json"]))
        m = metrics(meta, bench, ru)
        by.setdefault(key, []).append(m)
        loads += [x for x in (meta.get("load_before"), meta.get("load_after")) if x is not None]
        if not m["ok"]:
            why = "bench error (no result)" if not bench else f"exit {meta['rc']}, ok={bench.get('ok')}"
            failures.append(f"{meta['scenario']} / {meta['server']} run {meta['run']}: {why} (log: {meta['log']})")

    out = []
    head = sitting.get("header")
    if head:
        out += [head, ""]
    out.append(
        "| scenario | server | deliveries/s | p50 ms | p99 ms (worst role) | room p99 ms (median room) "
        "| ack p99 ms | missed/dups/leaks | server CPU | bench CPU | RSS/conn | bytes/delivery (wire / JSON) |"
    )
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | :---: | ---: | ---: | ---: | ---: |")
    summary = {"scenarios": {}, "failures": failures}
    for scen in order:
        summary["scenarios"][scen] = {}
        for server in SERVERS:
            ms_ = by.get((scen, server))
            if not ms_:
                continue
            n = len(ms_)
            col = lambda k: [m.get(k) for m in ms_]
            bad = [
                (m.get("missed"), m.get("duplicates"), m.get("leaks"))
                for m in ms_
                if m.get("missed") is not None
            ]
            worst = tuple(max(x[i] for x in bad) for i in range(3)) if bad else None
            mdl = "—" if worst is None else "/".join(map(str, worst))
            if worst and any(worst):
                mdl = f"**{mdl}**"
            cpu = cell(col("server_cpu_pct"), pct, n)
            cpu_s = med(col("server_cpu_s"))
            if cpu_s is not None:
                cpu += f", {cpu_s:.1f} s"
            bcpu = cell(col("bench_cpu_pct"), pct, n)
            bcpu_s = med(col("bench_cpu_s"))
            if bcpu_s is not None:
                bcpu += f", {bcpu_s:.1f} s"
            rss = cell(col("rss_per_conn_bytes"), lambda b: f"{b / 1000:.1f} KB", n)
            wire, js = med(col("wire_per_delivery")), med(col("json_per_delivery"))
            bpd = "—" if wire is None or js is None else f"{wire:.0f} / {js:.0f}"
            failed = sum(not m["ok"] for m in ms_)
            name = server + (f" ({failed} FAILED)" if failed else "")
            out.append(
                f"| {scen} | {name} | {cell(col('deliveries_per_s'), num, n)} | {cell(col('p50_ms'), ms, n)} "
                f"| {cell(col('p99_ms'), ms, n)} | {cell(col('room_p99_median_ms'), ms, n)} "
                f"| {cell(col('ack_p99_ms'), ms, n)} | {mdl} | {cpu} | {bcpu} | {rss} | {bpd} |"
            )
            summary["scenarios"][scen][server] = {
                k: med(col(k))
                for k in (
                    "deliveries_per_s", "p50_ms", "p99_ms", "room_p99_median_ms", "ack_p99_ms",
                    "server_cpu_s", "server_cpu_pct", "bench_cpu_s", "bench_cpu_pct",
                    "rss_per_conn_bytes",
                )
            } | {"runs": ms_}

    out += ["", "Ratios, danmaku / uws (medians; deliveries: higher is better, the rest: lower is better):", ""]
    out.append("| scenario | deliveries/s | p99 | room p99 | ack p99 | server CPU s | RSS/conn |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scen, s in summary["scenarios"].items():
        d, u = s.get("danmaku"), s.get("uws")
        if not d or not u:
            continue
        r = {k: ratio(d[k], u[k]) for k in ("deliveries_per_s", "p99_ms", "room_p99_median_ms", "ack_p99_ms", "server_cpu_s", "rss_per_conn_bytes")}
        s["ratios"] = r
        out.append(
            f"| {scen} | {r['deliveries_per_s']} | {r['p99_ms']} | {r['room_p99_median_ms']} | {r['ack_p99_ms']} "
            f"| {r['server_cpu_s']} | {r['rss_per_conn_bytes']} |"
        )
    for note in sitting.get("notes", []):
        out += ["", f"Note: {note}"]
    if loads:
        out += ["", f"Machine load (1-min load average at run starts and ends): {min(loads):.2f}–{max(loads):.2f} on {os.cpu_count()} cores."]
    if failures:
        out += ["", "**FAILED RUNS** (their numbers are in the table but must not be quoted):"]
        out += [f"- {f}" for f in failures]
    text = "\n".join(out) + "\n"
    with open(os.path.join(root, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(root, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(text, end="")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
