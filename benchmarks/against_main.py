"""Training speed of this tree against another revision (default: the previous main), in one run on this machine.

Each revision is checked out into a temporary git worktree and timed in a subprocess of its own, the two
alternating ``--rounds`` times; a group's time per step is (time of k2 steps - time of k1 steps) / (k2 - k1), with
k2 - k1 = 240 steps at laptop widths and 60 at fig4b's paper widths, through that revision's ``train_group`` (so set-up
and scoring cancel out). Reported: the fastest round of each (``speedup``) and, less sensitive to a shared machine's
drifts, the median and range of the rounds' paired ratios (each round times both revisions back to back, in
alternating order: ``paired_speedup``). Groups: the 24-member GAN group of ``make sweep`` (laptop widths, mixed Adam
and SGD), the largest laptop-balanced EBGAN group (7 members: G 5x100, D 2x64) and fig4b at paper widths with 4
members and alone (a group of one, as ``ebgan train`` runs it), and alone at laptop widths (as an adaptive search's
trials run). Prints member-steps/s of each and the ratio, and
writes them as JSON.

    python benchmarks/against_main.py [--baseline REV] [--rounds 2] [--groups NAME,...] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Runs inside a revision's tree: both layouts (before and after ebgan_core/table1/) are understood.
MEASURE = r"""
import json, sys, time
import torch
try:
    from ebgan_core.table1.config import TrialConfig
    from ebgan_core.table1.classifier import load_classifier
    from ebgan_core.table1.train import train_group
except ImportError:
    from ebgan_core.config import TrialConfig
    from ebgan_core.classifier import load_classifier
    from ebgan_core.train import train_group
from ebgan_core.data import load_mnist

groups, k1 = json.loads(sys.argv[1]), 8
TIMED_STEPS = {"fig4b_4": 60, "fig4b_1": 60}  # k2 - k1; 240 at laptop widths: several seconds of training each
data, judge = load_mnist("train")[0], load_classifier()[0]
rates = {}
for name, members in groups.items():
    configs = [TrialConfig.from_dict(m) for m in members]

    def run(steps):
        group = [c.replace(steps=steps, score_samples=2) for c in configs]
        started = time.perf_counter()
        train_group(group, data, judge, memory_budget=2**62)
        return time.perf_counter() - started

    k2 = k1 + TIMED_STEPS.get(name, 240)
    run(k1)  # warm-up (allocator, compilation)
    seconds = (run(k2) - run(k1)) / (k2 - k1)
    rates[name] = len(configs) / seconds
print(json.dumps(rates))
"""


def benchmark_groups() -> dict[str, list[dict]]:
    """The groups timed: laptop widths (GAN 24 mixed, the largest EBGAN group, fig4b alone) and fig4b at paper widths
    (4 members, and one)."""
    from ebgan_core.table1.config import PRESETS
    from sweeps.studies import pack_groups
    from sweeps.table1.grids import grid

    gan = grid("gan", "laptop-mini")
    ebgan = max(pack_groups([c for c in grid("all", "laptop-balanced") if c.family == "ebgan"], 24),
                key=lambda g: (len(g), g[0].size_g * g[0].n_layer_g))
    fig4b = [PRESETS["fig4b"].replace(seed=s) for s in range(4)]  # paper widths
    # The baseline packs members in grid order; this tree sorts them by optimiser and rate (so do both here).
    order = lambda c: (c.optim_d, c.lr, c.optim_g)  # noqa: E731
    return {name: [c.to_dict() for c in sorted(configs, key=order)]
            for name, configs in (("laptop_gan_24", gan), ("laptop_ebgan_largest", ebgan), ("fig4b_4", fig4b),
                                  ("fig4b_1", fig4b[:1]), ("laptop_fig4b_1", [fig4b[0].widths_divided_by(16)]))}


def run_in_tree(tree: Path, code: str, *args: str) -> dict:
    """Run ``code`` with ``args`` in a subprocess importing ``tree``'s packages; its last line of output, as JSON."""
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=tree, capture_output=True, text=True,
                          env=os.environ | {"PYTHONPATH": str(tree)})
    if done.returncode != 0:
        raise RuntimeError(f"measuring in {tree} failed: {done.stderr[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def checked_out(revision: str) -> Iterator[Path]:
    """``revision`` in a temporary git worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="ebgan-baseline-") as folder:
        tree = Path(folder) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), revision], cwd=REPO, check=True,
                       capture_output=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)


def measure(tree: Path, groups: dict[str, list[dict]]) -> dict[str, float]:
    return run_in_tree(tree, MEASURE, json.dumps(groups))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="90f1daf", help="the revision to compare with (default: the main "
                        "before the shared group runner and the stacked optimiser)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--groups", help="comma-separated names of the groups to time (default: all)")
    parser.add_argument("--json", type=Path, default=Path("results/benchmarks/against_main.json"))
    args = parser.parse_args()
    groups = benchmark_groups()
    if args.groups:
        unknown = sorted(set(args.groups.split(",")) - set(groups))
        if unknown:
            parser.error(f"unknown group {unknown[0]!r}; use some of {', '.join(groups)}")
        groups = {name: groups[name] for name in args.groups.split(",")}
    rounds: list[dict[str, dict[str, float]]] = []
    with checked_out(args.baseline) as baseline:
        for round_ in range(args.rounds):
            trees = [("baseline", baseline), ("this tree", REPO)]
            rounds.append({})
            for label, tree in trees if round_ % 2 == 0 else trees[::-1]:
                rounds[-1][label] = rates = measure(tree, groups)
                print(f"round {round_ + 1}, {label}: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()),
                      flush=True)
    best = {label: {name: max(r[label][name] for r in rounds) for name in groups} for label in rounds[0]}
    paired = {name: [r["this tree"][name] / r["baseline"][name] for r in rounds] for name in groups}
    report = {"baseline": args.baseline, "member_steps_per_s": best, "rounds": rounds,
              "speedup": {name: best["this tree"][name] / best["baseline"][name] for name in groups},
              "paired_speedup": {name: {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
                                 for name, ratios in paired.items()}}
    for name, ratio in report["speedup"].items():
        spread = report["paired_speedup"][name]
        print(f"{name}: {best['baseline'][name]:.1f} -> {best['this tree'][name]:.1f} member-steps/s ({ratio:.2f}x); "
              f"paired rounds {spread['median']:.2f}x ({spread['min']:.2f}-{spread['max']:.2f})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
