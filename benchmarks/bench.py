"""Run every workload for tierd and its baselines in one process, print ratios, write JSON.

Usage::

    python -m benchmarks.bench            # the full run, a few minutes on 2 cores
    python -m benchmarks.bench --quick    # tiny sizes: checks that every workload runs

Each figure is the median of ``--repeat`` runs; tierd and its baseline run
alternately so that a slow moment of the machine hits both. In-process
workloads run with every thread pinned to one core (``--no-pin`` turns that
off): Python threads share one GIL anyway, and on this kind of VM a wake-up
across cores costs three times as much and varies four-fold between runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from tierd.logging import configure as configure_logging

from . import crossprocess, events, inprocess, peers, processes, scaling, stores, web
from .measure import median, percentile

RESULTS = Path(__file__).with_name("results.json")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much work each workload does."""

    one_way: int
    round_trips: int
    concurrent: int
    scaling: list[int]
    repeat: int
    processes: int = 10_000
    finished: int = 1_000_000
    pending: int = 1_000_000
    get_calls: int = 2_000
    http_per_client: int = 300
    """H1: submit+get pairs per HTTP (and per ZeroMQ) client, 16 clients."""
    shared: int = 3_000
    event_messages: int = 10_000
    batch_items: int = 100_000


FULL = Sizes(
    one_way=100_000,
    round_trips=10_000,
    concurrent=20_000,
    scaling=[1_000, 10_000, 100_000, 1_000_000],
    repeat=3,
)
QUICK = Sizes(
    one_way=2_000, round_trips=300, concurrent=640, scaling=[100, 1_000], repeat=1,
    processes=300, finished=2_000, pending=2_000, get_calls=100, http_per_client=5,
    event_messages=2_000, batch_items=2_000, shared=300,
)  # fmt: skip

TARGETS = {
    "in-process W1": 0.50,
    "in-process W2": 0.80,
    "in-process W3": 0.70,
    "cross-process W1 send_many": 0.30,
    "cross-process W1 send_many durable": 0.50,
    "cross-process W2": 0.50,
    "cross-process W3": 0.40,
    "AsyncClient, 16 in flight": 0.80,
    "pool of 4, 2 ms handler, 16 in flight": 3.50,
}
"""Each workload's target ratio, tierd over its baseline (higher is better)."""


def _alternate(tierd_run: Any, baseline_run: Any, repeat: int) -> tuple[list[Any], list[Any]]:
    tierd_results, baseline_results = [], []
    for _ in range(repeat):
        tierd_results.append(tierd_run())
        baseline_results.append(baseline_run())
    return tierd_results, baseline_results


def _rate_row(
    name: str, baseline: str, tierd_rates: list[float], baseline_rates: list[float], unit: str
) -> dict[str, Any]:
    tierd_value, baseline_value = median(tierd_rates), median(baseline_rates)
    return {
        "workload": name,
        "baseline": baseline,
        "unit": unit,
        "tierd": tierd_value,
        "baseline_value": baseline_value,
        "ratio": tierd_value / baseline_value,
        "target": TARGETS.get(name),
        "runs": {"tierd": tierd_rates, "baseline": baseline_rates},
    }


def _latency_extra(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_us": percentile(latencies, 0.50) * 1e6,
        "p99_us": percentile(latencies, 0.99) * 1e6,
    }


def in_process_rows(sizes: Sizes) -> list[dict[str, Any]]:
    """W1, W2, W3 and W5 in one process, against raw Pykka."""
    rows = []
    tierd_rates, pykka_rates = _alternate(
        lambda: inprocess.tierd_one_way(sizes.one_way),
        lambda: inprocess.pykka_one_way(sizes.one_way),
        sizes.repeat,
    )
    rows.append(_rate_row("in-process W1", "raw Pykka tell", tierd_rates, pykka_rates, "msg/s"))
    for label, concurrency, targets, total, baseline in [
        ("in-process W2", 1, 1, sizes.round_trips, "raw Pykka ask"),
        ("in-process W3", 16, 4, sizes.concurrent, "raw Pykka ask, 16 in flight"),
    ]:
        tierd_runs, pykka_runs = _alternate(
            lambda c=concurrency, t=targets, n=total: inprocess.tierd_request_reply(n, c, t),
            lambda c=concurrency, t=targets, n=total: inprocess.pykka_request_reply(n, c, t),
            sizes.repeat,
        )
        row = _rate_row(
            label, baseline, [r[0] for r in tierd_runs], [r[0] for r in pykka_runs], "rt/s"
        )
        row["tierd_latency"] = _latency_extra(tierd_runs[-1][1])
        row["baseline_latency"] = _latency_extra(pykka_runs[-1][1])
        rows.append(row)
    for size in (4096, 65536):
        tierd_rates, pykka_rates = _alternate(
            lambda s=size: inprocess.tierd_one_way(sizes.one_way // 4, s),
            lambda s=size: inprocess.pykka_one_way(sizes.one_way // 4, s),
            sizes.repeat,
        )
        rows.append(
            _rate_row(
                f"in-process W5 {size} B", "raw Pykka tell", tierd_rates, pykka_rates, "msg/s"
            )
        )
    return rows


def _print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'workload':<30} {'tierd':>12} {'baseline':>12}  {'ratio':>6}  {'target':>7}  baseline")
    for row in rows:
        target = row.get("target")
        mark = "" if target is None else ("ok" if row["ratio"] >= target else "MISS")
        target_text = "" if target is None else f">={target:.2f}"
        print(
            f"{row['workload']:<30} {row['tierd']:>12,.0f} {row['baseline_value']:>12,.0f}  "
            f"{row['ratio']:>6.2f}  {target_text:>7} {mark:<4} {row['baseline']}"
        )
        for key in ("tierd_latency", "baseline_latency"):
            if key in row:
                lat = row[key]
                who = "tierd" if key.startswith("tierd") else "baseline"
                print(
                    f"{'':<30} {who} latency p50 {lat['p50_us']:.0f} µs, p99 {lat['p99_us']:.0f} µs"
                )


def _print_scaling(curve: dict[str, Any]) -> None:
    print("\nW4 scaling (one level, one thread)")
    print(f"{'queued':>10} {'dispatch µs':>12} {'empty sweep µs':>15}")
    for size, dispatch, sweep in zip(
        curve["sizes"], curve["dispatch_us"], curve["empty_sweep_us"], strict=True
    ):
        print(f"{size:>10,} {dispatch:>12.2f} {sweep:>15.2f}")
    dispatch_ratio = curve["dispatch_us"][-1] / curve["dispatch_us"][0]
    sweep_ratio = curve["empty_sweep_us"][-1] / curve["empty_sweep_us"][0]
    print(
        f"largest/smallest: dispatch {dispatch_ratio:.2f}x, empty sweep {sweep_ratio:.2f}x "
        "(target <= 2x)"
    )
    memory = curve["memory_bytes_per_message"]
    print(f"memory per queued 64-byte message: {memory:.0f} bytes (target <= 1024)")


def _print_processes(figures: dict[str, Any], sizes: Sizes) -> None:
    print(f"\nProcesses ({sizes.processes:,} three-step, max_concurrent 64, SQLite store)")
    tierd_rate, celery = figures["P1 tierd processes/s"], figures["P1 Celery chains/s"]
    print(f"P1 tierd {tierd_rate:,.0f} processes/s (target >= 1,000)")
    if isinstance(celery, float):
        ratio = figures["P1 ratio"]
        print(f"P1 Celery chains of 3 on Redis {celery:,.0f}/s; ratio {ratio:.1f} (target >= 10)")
    else:
        print(f"P1 Celery chains: {celery}")
    get = figures["P2 get"]
    print(f"P2 get over ZeroMQ p50 {get['p50_ms']:.2f} ms, p99 {get['p99_ms']:.2f} ms "
          "(target p99 <= 2 ms)")  # fmt: skip
    listing = figures["P3 list"]
    print(f"P3 list first page over {listing['finished']:,} finished: {listing['list_ms']:.2f} ms, "
          f"by status {listing['list_by_status_ms']:.2f} ms, by kind "
          f"{listing['list_by_kind_ms']:.2f} ms (target <= 50 ms)")  # fmt: skip
    rss = figures["P4 rss"]
    print(f"P4 RSS over {rss['pending']:,} pending: +{rss['rss_growth_mib']:.1f} MiB against an "
          "empty store (target < 100 MiB)")  # fmt: skip
    batch = figures["P5 batch"]
    print(f"P5 one batch of {batch['items']:,} trivial items, max_concurrent 64: "
          f"{batch['items_per_s']:,.0f} items/s; plain tierd notifications "
          f"{batch['messages_per_s']:,.0f}/s; ratio {batch['ratio']:.2f} "
          "(target >= 0.5)")  # fmt: skip


def _print_http(figures: dict[str, Any], sizes: Sizes) -> None:
    print("\nHTTP API (runtime.http)")
    hot = figures["H0 hot path"]
    print(f"H0 in-process W1 with http on {hot['on_per_s']:,.0f} msg/s, off "
          f"{hot['off_per_s']:,.0f} msg/s; ratio {hot['ratio']:.2f} (target >= 0.95)")  # fmt: skip
    pairs = figures["H1 submit+get"]
    http, client = pairs["http"], pairs["client"]
    print(f"H1 POST /api/processes + GET, {web.CLIENTS} clients: {http['pairs_per_s']:,.0f}/s, "
          f"p99 {http['p99_ms']:.1f} ms; tierd.Client {client['pairs_per_s']:,.0f} pairs/s, "
          f"p99 {client['p99_ms']:.1f} ms ({client['refused_busy']:,} busy refusals retried); "
          f"ratio {pairs['ratio']:.2f}; 8 tierd.Clients {pairs['client_8']['pairs_per_s']:,.0f}/s, "
          f"p99 {pairs['client_8']['p99_ms']:.1f} ms")  # fmt: skip
    viewers = figures["H2 viewers"]
    got = viewers["received"]
    print(f"H2 {sizes.processes:,} processes: {viewers['no_viewer_per_s']:,.0f}/s with no viewer, "
          f"{viewers['viewers_per_s']:,.0f}/s with {viewers['viewers']} SSE viewers; ratio "
          f"{viewers['ratio']:.2f} (target >= 0.90); against events made and dropped "
          f"{viewers['events_built_per_s']:,.0f}/s, ratio {viewers['ratio_to_built']:.2f}; "
          f"runtime CPU per process {viewers['no_viewer_cpu_us_per_process']:.0f} µs alone, "
          f"{viewers['events_built_cpu_us_per_process']:.0f} µs events made, "
          f"{got['runtime_cpu_us_per_process']:.0f} µs watched; the viewers got "
          f"{got['events']:,} events, {got['dropped']} drops")  # fmt: skip


def _print_report(report: dict[str, Any], sizes: Sizes) -> None:
    _print_rows(report["rows"])
    for name, figure in report.get("peers", {}).items():
        print(f"{name:<30} {figure}")
    if "scaling" in report:
        _print_scaling(report["scaling"])
    if "processes" in report:
        _print_processes(report["processes"], sizes)
    if "http" in report:
        _print_http(report["http"], sizes)
    if "stores" in report:
        stores.print_figures(report["stores"], sizes.processes, sizes.shared)
    if "events" in report:
        events.print_figures(report["events"])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; return 0 (speed is reported, never asserted)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one core")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated: inprocess,crossprocess,scaling,peers,processes,events,stores,http",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    parts = (
        set(args.only.split(","))
        if args.only
        else {
            "inprocess",
            "crossprocess",
            "scaling",
            "peers",
            "processes",
            "events",
            "stores",
            "http",
        }
    )
    configure_logging("console", "warning")
    pinned = None
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        pinned = min(os.sched_getaffinity(0))
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "in_process_pinned_to_cpu": pinned,
        },
        "quick": args.quick,
        "rows": [],
    }
    started = time.perf_counter()
    if "inprocess" in parts:
        everything = os.sched_getaffinity(0) if pinned is not None else None
        if pinned is not None:
            os.sched_setaffinity(0, {pinned})
        try:
            report["rows"] += in_process_rows(sizes)
        finally:
            if everything is not None:
                os.sched_setaffinity(0, everything)
    if "crossprocess" in parts:
        report["rows"] += crossprocess.rows(
            sizes.round_trips, sizes.concurrent, sizes.one_way, sizes.repeat
        )
    if "peers" in parts:
        report["peers"] = peers.measure(sizes.concurrent // 4)
    if "scaling" in parts:
        report["scaling"] = scaling.scaling_curve(sizes.scaling)
    if "processes" in parts:
        report["processes"] = processes.measure(
            sizes.processes, sizes.finished, sizes.pending, sizes.get_calls, sizes.batch_items
        )
    if "http" in parts:
        report["http"] = web.measure(
            sizes.http_per_client, sizes.processes, sizes.one_way, sizes.repeat
        )
    if "stores" in parts:
        report["stores"] = stores.measure(sizes.processes, sizes.shared)
    if "events" in parts:
        report["events"] = events.measure(sizes.processes, sizes.event_messages, sizes.repeat)
    report["seconds"] = time.perf_counter() - started
    _print_report(report, sizes)
    print(f"\n{report['seconds']:.0f} s; results written to {args.output}")
    args.output.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
