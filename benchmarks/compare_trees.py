"""Compare the hot path of two source trees, back to back in one run: A/B, alternating.

``python -m benchmarks.compare_trees BEFORE AFTER [--rounds N]`` runs, for each
tree in turn (the order flips every round, so drift on a shared machine hits
both), `benchmarks.hot_path` (CPU per message to produce and to consume),
in-process W1 and W2 (pinned to one core) and cross-process W1 and W2
(`tierd run` and `tierd.Client`). Each tree runs its own copy of these
benchmarks with its own ``src`` first on ``sys.path``, so a tree from before
a refactoring is measured with the code it had. It prints the medians and
the ratios AFTER / BEFORE.

Make the BEFORE tree with ``git worktree add /tmp/before <commit>``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_MEASURE = r"""
import json, os
from tierd.logging import configure
configure("console", "warning")
from benchmarks import crossprocess, hot_path, inprocess
everything = os.sched_getaffinity(0)
os.sched_setaffinity(0, {min(everything)})
produce, consume = hot_path.measure(50_000)
w1 = inprocess.tierd_one_way(60_000)
w2, _ = inprocess.tierd_request_reply(20_000, 1, 1)
os.sched_setaffinity(0, everything)
with crossprocess.tierd_server() as endpoint:
    x2, _ = crossprocess.tierd_round_trips(endpoint, 3000, 1)
    x1 = crossprocess.tierd_one_way(endpoint, 3000)
print(json.dumps({
    "hot path produce (us)": produce, "hot path consume (us)": consume,
    "in-process W1 (msg/s)": w1, "in-process W2 (rt/s)": w2,
    "cross-process W1 (msg/s)": x1, "cross-process W2 (rt/s)": x2,
}))
"""


def measure(tree: Path) -> dict[str, float]:
    """One run of every figure in ``tree``, in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=f"{tree / 'src'}{os.pathsep}{tree}")
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{tree}: the measurement failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    """Measure both trees ``--rounds`` times, alternating; print medians and ratios."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_trees", description=__doc__)
    parser.add_argument("before", type=Path, help="the tree to compare against")
    parser.add_argument("after", type=Path, help="the tree with the change")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each tree (default 5)")
    args = parser.parse_args(argv)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for round_number in range(args.rounds):
        order = ["before", "after"] if round_number % 2 == 0 else ["after", "before"]
        for name in order:
            runs[name].append(measure(trees[name]))
    medians = {
        name: {key: statistics.median(run[key] for run in rows) for key in rows[0]}
        for name, rows in runs.items()
    }
    print(f"{'figure':<28} {'before':>12} {'after':>12} {'after/before':>13}")
    for key, before in medians["before"].items():
        after = medians["after"][key]
        print(f"{key:<28} {before:>12.2f} {after:>12.2f} {after / before:>13.3f}")
    print(f"medians of {args.rounds} alternating runs each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
