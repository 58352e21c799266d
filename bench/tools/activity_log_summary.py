#!/usr/bin/env python3
"""The summary of bench/activity-log-cost.sh: summary.txt from its records.

    activity_log_summary.py wall DIR          DIR/results/<scenario>-log-<on|off>-<rep>.json
    activity_log_summary.py instructions DIR  DIR/instructions.txt (and the same results)

Wall: per scenario and setting, the median with min-max of deliveries (calls) per second and of
the server's CPU nanoseconds per delivery (call), the ratio of the medians log on / log off, and
the same ratio within each repetition (the two runs of a repetition are back to back).
Instructions: per scenario, setting and repetition, (I(big) - I(small)) / (D(big) - D(small)),
the server's instructions per delivery (call) once start-up, connections and shut-down are
cancelled out, and the ratio log on / log off.
"""

import json
import re
import statistics
import sys
from pathlib import Path

UNIT = {"fanout": "delivery", "relay": "delivery", "rpc": "call"}
UNITS = {"delivery": "deliveries", "call": "calls", "unit": "units"}


def fmt(x, digits=0):
    return f"{x:,.{digits}f}"


def med_range(xs, digits=0):
    return f"{fmt(statistics.median(xs), digits)} ({fmt(min(xs), digits)}-{fmt(max(xs), digits)})"


def recorded_events(metrics):
    """Events the activity log is offered in a run: a relayed message is recorded twice (received,
    sent), a walker call once (received)."""
    if "calls" in metrics:
        return metrics["calls"]
    return 2 * metrics.get("messages_sent", 0)


def dropped_share(dropped, events):
    return f"{dropped:,} of {events:,} ({100 * dropped / events:.0f}%)" if events else f"{dropped:,}"


def wall(out: Path):
    drops = {}
    drops_file = out / "drops.txt"
    if drops_file.exists():
        for line in drops_file.read_text().splitlines():
            name, _, value = line.partition(" activity_log_dropped_at_least=")
            drops[name] = int(value or 0)
    syscalls = {}
    syscalls_file = out / "syscalls.txt"
    if syscalls_file.exists():
        for line in syscalls_file.read_text().splitlines():
            name, r0, w0, r1, w1 = line.split()
            syscalls[name] = (int(r1) - int(r0), int(w1) - int(w0))
    runs = {}
    name = re.compile(r"^(\w+)-log-(on|off)-(\d+)\.json$")
    for path in sorted((out / "results").glob("*.json")):
        m = name.match(path.name)
        if not m:
            continue
        scenario, log, rep = m.group(1), m.group(2), int(m.group(3))
        metrics = json.loads(path.read_text())["metrics"]
        if scenario == "rpc":
            rate = metrics["calls_per_sec"]
            cpu_ns = metrics["server_cpu_us_per_call"] * 1000
            bad = metrics.get("errors", 0)
        else:
            rate = metrics["deliveries_per_sec"]
            cpu_ns = metrics["server_cpu_ns_per_delivery"]
            bad = metrics.get("lost", 0)
        runs.setdefault(scenario, {}).setdefault(log, {})[rep] = {
            "rate": rate,
            "cpu_ns": cpu_ns,
            "bad": bad,
            "niced": metrics.get("server_core_niced_other"),
            "events": recorded_events(metrics) if log == "on" else 0,
            "dropped": drops.get(path.stem, 0),
            # Write system calls per delivery (call): how many frames each write carried.
            "writes": syscalls[path.stem][1] / max(metrics.get("deliveries_received", metrics.get("calls", 0)), 1)
            if path.stem in syscalls
            else None,
            "busy": metrics.get("server_core_busy"),
        }
    print("Wall clock: one fresh server per run, log on and off alternating.")
    print("rate = deliveries/s (rpc: calls/s); cpu = server CPU ns per delivery (rpc: per call),")
    print("every thread of the server process; median (min-max).\n")
    for scenario, by_log in runs.items():
        unit = UNIT.get(scenario, "unit")
        print(f"## {scenario}")
        for log in ("on", "off"):
            reps = by_log.get(log, {})
            if not reps:
                continue
            rates = [r["rate"] for r in reps.values()]
            cpus = [r["cpu_ns"] for r in reps.values()]
            bad = sum(r["bad"] for r in reps.values())
            niced = [r["niced"] for r in reps.values() if r["niced"] is not None]
            print(
                f"log {log:<3}: {len(reps)} runs, {UNITS[unit]}/s {med_range(rates)}, "
                f"cpu ns/{unit} {med_range(cpus)}, lost or errors {bad}"
                + (f", server core taken by niced work {med_range(niced, 3)}" if niced else "")
            )
            writes = [r["writes"] for r in reps.values() if r["writes"] is not None]
            if writes:
                print(f"         server write syscalls per {unit}: {med_range(writes, 4)}")
            if log == "on":
                dropped = sum(r["dropped"] for r in reps.values())
                events = sum(r["events"] for r in reps.values())
                print(f"         log events dropped (at least): {dropped_share(dropped, events)}")
        on, off = by_log.get("on", {}), by_log.get("off", {})
        if on and off:
            r_rate = statistics.median(r["rate"] for r in on.values()) / statistics.median(
                r["rate"] for r in off.values()
            )
            r_cpu = statistics.median(r["cpu_ns"] for r in on.values()) / statistics.median(
                r["cpu_ns"] for r in off.values()
            )
            print(f"on/off of the medians: {UNITS[unit]}/s {r_rate:.3f}, cpu ns/{unit} {r_cpu:.3f}")
            pairs = sorted(set(on) & set(off))
            if pairs:
                pr = [on[k]["rate"] / off[k]["rate"] for k in pairs]
                pc = [on[k]["cpu_ns"] / off[k]["cpu_ns"] for k in pairs]
                print(
                    f"on/off within each repetition: {UNITS[unit]}/s "
                    + " ".join(f"{x:.3f}" for x in pr)
                    + f"; cpu ns/{unit} "
                    + " ".join(f"{x:.3f}" for x in pc)
                )
        print()


def instructions(out: Path):
    rows = []
    events = {}
    for path in (out / "results").glob("*.json"):
        events[path.stem] = recorded_events(json.loads(path.read_text())["metrics"])
    for line in (out / "instructions.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        scenario, log, size, rep, total, units, drops = line.split()
        if total == "missing" or units == "missing":
            print(f"incomplete run: {line}")
            continue
        rows.append((scenario, log, int(size), int(rep), int(total), int(units), int(drops)))
    print("Instructions (valgrind --tool=callgrind, the whole server process, every thread).")
    print("per unit = (I(big) - I(small)) / (units(big) - units(small)): start-up, connections,")
    print("login and shut-down cancel out; units are deliveries (rpc: calls answered).\n")
    scenarios = []
    for row in rows:
        if row[0] not in scenarios:
            scenarios.append(row[0])
    for scenario in scenarios:
        unit = UNIT.get(scenario, "unit")
        print(f"## {scenario}")
        per_log = {}
        for log in ("on", "off"):
            mine = [r for r in rows if r[0] == scenario and r[1] == log]
            sizes = sorted({r[2] for r in mine})
            if len(sizes) != 2:
                continue
            small, big = sizes
            for rep in sorted({r[3] for r in mine}):
                a = [r for r in mine if r[2] == small and r[3] == rep]
                b = [r for r in mine if r[2] == big and r[3] == rep]
                if not a or not b:
                    continue
                a, b = a[0], b[0]
                ea = events.get(f"{scenario}-x{small}-log-{log}-{rep}", 0) if log == "on" else 0
                eb = events.get(f"{scenario}-x{big}-log-{log}-{rep}", 0) if log == "on" else 0
                marginal = (b[4] - a[4]) / (b[5] - a[5])
                per_log.setdefault(log, []).append(marginal)
                print(
                    f"log {log:<3} rep {rep}: small {a[5]:,} {UNITS[unit]} {a[4]:,} instr "
                    f"({a[4] / a[5]:,.0f}/{unit} overall), big {b[5]:,} {UNITS[unit]} {b[4]:,} instr "
                    f"({b[4] / b[5]:,.0f}/{unit} overall); marginal {marginal:,.1f} instr/{unit}; "
                    f"log events dropped (at least) {dropped_share(a[6], ea)} and {dropped_share(b[6], eb)}"
                )
        if "on" in per_log and "off" in per_log:
            on = statistics.mean(per_log["on"])
            off = statistics.mean(per_log["off"])
            print(
                f"mean marginal: on {on:,.1f}, off {off:,.1f} instr/{unit}; on/off {on / off:.4f} "
                f"(+{on - off:,.1f} instr/{unit}, {100 * (on / off - 1):+.2f}%)"
            )
            print(
                "spread of the marginal figure: on "
                + ", ".join(f"{x:,.1f}" for x in per_log["on"])
                + "; off "
                + ", ".join(f"{x:,.1f}" for x in per_log["off"])
            )
        print()


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    {"wall": wall, "instructions": instructions}[mode](out)
